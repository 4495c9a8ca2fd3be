#!/usr/bin/env python3
"""Hostile peers against `agora serve` (issue 12): malformed, oversize, unexpected and
unknown PDUs get an A-ABORT and a closed connection; a silent connection is closed after the
ARTIM timeout and a trickling one after the idle timeout; a connection flood is bounded; and
after every case the daemon still answers C-ECHO. Loopback only; the daemon is ours.
Usage: serve_hostile.py AGORA"""
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dul  # noqa: E402

AGORA = sys.argv[1]
WORK = tempfile.mkdtemp(prefix="agora-serve-hostile.")
failures = []


def check(name, ok, detail=""):
    print(("ok: " if ok else "not ok: ") + name + ((" — " + detail) if detail and not ok else ""))
    if not ok:
        failures.append(name)


def expect_abort(name, payload, after_assoc=False, **kw):
    """Send payload (optionally inside an association); expect A-ABORT then close."""
    try:
        c = dul.associate(port, **kw) if after_assoc else dul.Conn(port)
        c.send(payload)
        t, body = c.read_pdu()
        ok = t == 0x07 and c.closed_within(5)
        check(name, ok, "got PDU 0x%02x %s" % (t, body[:16].hex()))
        c.close()
    except (EOFError, ConnectionResetError) as e:
        check(name, False, "closed without A-ABORT: %s" % e)
    check(name + ": C-ECHO afterwards", dul.echo(port) == 0)


port = dul.free_port()
log = open(os.path.join(WORK, "serve.log"), "w")
proc = subprocess.Popen([AGORA, "serve", "--home", os.path.join(WORK, "home"),
                         "--listen-dicom", "127.0.0.1:%d" % port, "--max-pdu", "16K",
                         "--max-associations", "4", "--artim-timeout", "1.5",
                         "--idle-timeout", "2"], stderr=log)
try:
    if not dul.wait_echo(port):
        print("not ok: agora serve did not answer C-ECHO")
        sys.exit(1)
    check("C-ECHO", dul.echo(port) == 0)

    expect_abort("unknown PDU type", dul.pdu(0x09, bytes(8)))
    expect_abort("P-DATA before association", dul.pdata(1, 3, dul.command(0x30)))
    expect_abort("A-ASSOCIATE-RQ claiming 100 MB", struct.pack(">BBI", 1, 0, 100 << 20))
    rq = bytearray(dul.assoc_rq())
    rq[6 + 68 + 2:6 + 68 + 4] = struct.pack(">H", 0xFFFF)  # application context item length
    expect_abort("A-ASSOCIATE-RQ with an item past its end", bytes(rq))
    expect_abort("A-ASSOCIATE-RQ with an even context id",
                 dul.assoc_rq(contexts=[(2, dul.VERIFICATION, [dul.IMPLICIT])]))
    expect_abort("A-ASSOCIATE-RQ with a bad UID",
                 dul.assoc_rq(contexts=[(1, "1.2..3", [dul.IMPLICIT])]))
    expect_abort("A-ASSOCIATE-RQ of 68 bytes and no items", dul.pdu(1, bytes(68)))
    expect_abort("A-RELEASE-RQ of 40 bytes", dul.pdu(5, bytes(40)))
    expect_abort("oversize P-DATA (1 MiB > 16K)", struct.pack(">BBI", 4, 0, 1 << 20),
                 after_assoc=True)
    expect_abort("A-ASSOCIATE-AC sent to an acceptor", dul.pdu(2, bytes(4)), after_assoc=True)
    expect_abort("second A-ASSOCIATE-RQ", dul.assoc_rq(), after_assoc=True)
    expect_abort("command set of another group",
                 dul.pdata(1, 3, struct.pack("<HHI", 8, 0x18, 2) + b"XX"), after_assoc=True)
    expect_abort("command element past the set",
                 dul.pdata(1, 3, struct.pack("<HHI", 0, 0x100, 1000) + b"XX"),
                 after_assoc=True)
    expect_abort("command set over 16 KiB",
                 dul.pdata(1, 1, bytes(15000)) + dul.pdata(1, 1, bytes(15000)),
                 after_assoc=True)
    expect_abort("data set fragment without a command", dul.pdata(1, 2, b"\x08\x00"),
                 after_assoc=True)
    expect_abort("PDV on a context that was not proposed", dul.pdata(3, 3, dul.command(0x30)),
                 after_assoc=True)
    expect_abort("PDV item longer than its PDU",
                 dul.pdu(4, struct.pack(">IBB", 5000, 1, 3) + b"x"), after_assoc=True)
    expect_abort("unsupported DIMSE command (C-FIND)", dul.pdata(1, 3, dul.command(0x20)),
                 after_assoc=True)

    # A peer that says nothing: closed by the ARTIM timer (1.5 s), others served meanwhile.
    quiet = dul.Conn(port)
    check("C-ECHO while a silent connection is open", dul.echo(port) == 0)
    t0 = time.time()
    check("silent connection closed by ARTIM", quiet.closed_within(6))
    check("ARTIM took about 1.5 s", 1.0 <= time.time() - t0 <= 6, "%.1f s" % (time.time() - t0))
    quiet.close()

    # Slow loris: one byte of a PDU every 0.4 s never completes a PDU: idle timeout (2 s).
    slow = dul.associate(port)
    t0 = time.time()
    msg = dul.pdata(1, 3, dul.command(0x30))
    closed = False
    for b in msg * 10:
        try:
            slow.s.send(bytes([b]))
        except OSError:
            closed = True
            break
        if slow.closed_within(0.4):
            closed = True
            break
        if time.time() - t0 > 8:
            break
    check("trickling peer closed by the idle timeout", closed and time.time() - t0 < 8,
          "%.1f s" % (time.time() - t0))
    slow.close()

    # Half a PDU, then the peer goes away.
    h = dul.Conn(port)
    h.send(dul.assoc_rq()[:30])
    h.close()
    check("truncated A-ASSOCIATE-RQ then close: C-ECHO", dul.echo(port) == 0)

    # Connection flood: at most max_associations + 8 (12) are kept; the rest closed at once.
    t0 = time.time()
    flood = [dul.Conn(port) for _ in range(20)]
    time.sleep(0.3)
    closed_now = sum(1 for c in flood if c.closed_within(0.02))
    # Before the ARTIM timer (1.5 s) closes the others, exactly 20 - 12 are closed.
    quick = time.time() - t0 < 1.2
    check("connection flood bounded (%d of 20 closed at once)" % closed_now,
          closed_now == 8 if quick else closed_now >= 8)
    for c in flood:
        c.close()
    time.sleep(0.3)
    check("after the flood: C-ECHO", dul.wait_echo(port, 10))

    # Random bytes (fixed seed): whatever comes back, the daemon keeps serving.
    rnd = random.Random(12)
    for i in range(40):
        n = rnd.randrange(1, 300)
        data = bytes([rnd.randrange(1, 8), 0]) + bytes(rnd.randrange(256) for _ in range(n))
        try:
            c = dul.Conn(port)
            c.send(data)
            c.closed_within(0.2)
            c.close()
        except OSError:
            pass
    check("after 40 random inputs: C-ECHO", dul.wait_echo(port, 10))
    check("daemon still running", proc.poll() is None)
finally:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = -9
    log.close()
check("SIGTERM: clean exit", rc == 0, "rc=%s" % rc)
text = open(os.path.join(WORK, "serve.log")).read()
check("log names the oversize PDU", "over its limit" in text)
check("log has no UIDs", "1.2.840.10008" not in text, "a UID in the log")
if failures:
    print("FAILED: %d check(s)" % len(failures))
    print(text[-3000:])
    sys.exit(1)
shutil.rmtree(WORK)
