#!/usr/bin/env python3
"""Checks a spool against what dcmsend reports: every instance dcmsend saw acknowledged with
success (DIMSE status 0x0000) has a row in spool.db and a spool file whose data set is
byte-identical to the data set of the file sent (the file meta group is the daemon's own).
Prints "acked=N refused=M rows=R".
Usage: check_spool.py REPORT SPOOL_DIR          (dcmsend --create-report-file)
       check_spool.py --log LOG DIR SPOOL_DIR   (dcmsend -d output; DIR holds the files sent)
dcmsend writes its report file only when it ends normally; when the receiver is killed under
it, its debug log of the C-STORE responses is the record of what was acknowledged."""
import hashlib
import os
import re
import sqlite3
import struct
import sys


def dataset(path):
    """The bytes after the Part 10 file meta group (preamble, DICM, group 0002)."""
    b = open(path, "rb").read()
    if b[128:132] != b"DICM":
        raise SystemExit("%s: not a Part 10 file" % path)
    group, elem, vr, n = struct.unpack("<HH2sH", b[132:140])
    assert (group, elem, vr) == (2, 0, b"UL"), path
    glen = struct.unpack("<I", b[140:144])[0]
    return b[144 + glen:]


def meta_uid(path):
    """(0002,0003) MediaStorageSOPInstanceUID from the explicit-VR file meta group."""
    b = open(path, "rb").read(4096)
    off = 132
    while off + 8 <= len(b):
        group, elem, vr = struct.unpack("<HH2s", b[off:off + 6])
        if group != 2:
            break
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            n, hl = struct.unpack("<I", b[off + 8:off + 12])[0], 12
        else:
            n, hl = struct.unpack("<H", b[off + 6:off + 8])[0], 8
        if elem == 3:
            return b[off + hl:off + hl + n].rstrip(b"\0 ").decode()
        off += hl + n
    raise SystemExit("%s: no SOP Instance UID in the file meta" % path)


if sys.argv[1] == "--log":
    log, folder, spool = sys.argv[2], sys.argv[3], sys.argv[4]
    files = {}
    for f in os.listdir(folder):
        files[meta_uid(os.path.join(folder, f))] = os.path.join(folder, f)
    entries = []
    for block in open(log, errors="replace").read().split("INCOMING DIMSE MESSAGE")[1:]:
        block = block.split("END DIMSE MESSAGE")[0]
        if "C-STORE RSP" not in block:
            continue
        uid = re.search(r"Affected SOP Instance UID\s*:\s*(\S+)", block).group(1)
        st = re.search(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})", block).group(1)
        entries.append((files[uid], uid, "DIMSE Status : 0x" + st))
else:
    report, spool = sys.argv[1], sys.argv[2]
    text = open(report).read()
    entries = re.findall(
        r"Filename\s*:\s*(\S+)\s*\nSOP Instance\s*:\s*(\S+)(.*?)(?=\nNumber|\Z)", text, re.S)
db = sqlite3.connect(os.path.join(spool, "spool.db"))
rows = db.execute("SELECT COUNT(*) FROM spool_instance").fetchone()[0]
acked = refused = 0
bad = []
for fname, uid, rest in entries:
    m = re.search(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})", rest)
    if not m:
        continue  # not sent (association gone first): not acknowledged
    status = int(m.group(1), 16)
    if status != 0:
        refused += 1
        continue
    acked += 1
    row = db.execute("SELECT path, dataset_sha256, dataset_bytes FROM spool_instance "
                     "WHERE sop_instance_uid = ?", (uid,)).fetchone()
    if row is None:
        bad.append("acknowledged instance #%d has no row" % acked)
        continue
    sent = dataset(fname)
    got = dataset(os.path.join(spool, row[0]))
    if got != sent or hashlib.sha256(sent).hexdigest() != row[1] or len(sent) != row[2]:
        bad.append("instance from %s differs in the spool" % os.path.basename(fname))
print("acked=%d refused=%d rows=%d" % (acked, refused, rows))
for b in bad:
    print("not ok:", b)
sys.exit(1 if bad else 0)
