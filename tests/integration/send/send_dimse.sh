#!/bin/bash
# `agora dicom send` over DIMSE (issue 12 item 7) against real peers inside a private network
# namespace: a synthetic CT and the SR + SEG that `agora results export` writes for a real run
# of the threshold example go to DCMTK's storescp (bit-preserving, data sets only), and every
# data set it wrote is byte-identical to one we sent; a storescp that accepts only CT refuses
# the SR/SEG with the permanent class no-presentation-context while the CT is delivered; no
# listener gives transient connection-refused (exit 75); `agora serve` as the peer: a wrong
# called AE is permanent configuration-error (exit 1), the right one stores the CT (spool rows
# counted), and a spool over its watermark rejects the association transient.
# Usage: send_dimse.sh AGORA EXAMPLES_DIR
set -euo pipefail
A=$1 P=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib/netns_peer.sh"
for t in storescp sqlite3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh installs dcmtk, sqlite3)"; exit 77; }
done
[ -f /etc/dcmtk/storescp.cfg ] || { echo "SKIP: /etc/dcmtk/storescp.cfg (Debian dcmtk) missing"; exit 77; }
netns_enter "$0" "$@"
. "$HERE/send_lib.sh"
send_workdir send-dimse

# --- the files: a CT series, and the SR + SEG of a threshold run on it ---
make_send_files "$A" "$P"
N=$((N_CT + N_RES))

# --- 1. storescp (every class of its default profile, bit-preserving, data sets only) ---
mkdir recv
storescp -aet STORESCP +B -F -xf /etc/dcmtk/storescp.cfg Default -od recv 11112 >storescp.log 2>&1 &
SCP=$!
netns_wait_port 11112 || { cat storescp.log; echo "not ok: storescp did not start"; exit 1; }
rc=0
"$A" dicom send studies/ct results --to STORESCP@127.0.0.1:11112 --json >all.json 2>err.txt || rc=$?
[ $rc = 0 ] && ok "send of $N files to storescp exits 0" || { cat err.txt all.json; fail "send exit $rc"; }
[ "$(field all.json delivered)" = "$N" ] && ok "$N files delivered" || fail "delivered: $(field all.json delivered) of $N"
netns_stop "$SCP"
SCP=
# Sent data sets (the file minus preamble and group 0002) against what storescp wrote.
$PY - studies/ct results recv <<'PY' && ok "every received data set is byte-identical to a sent one (CT, SR, SEG)" || fail "data sets differ"
import hashlib, os, struct, sys
def dataset(b):
    assert b[128:132] == b"DICM"
    off = 132
    while struct.unpack_from("<H", b, off)[0] == 2:
        vr = b[off + 4:off + 6]
        if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV", b"SV", b"UV"):
            off += 12 + struct.unpack_from("<I", b, off + 8)[0]
        else:
            off += 8 + struct.unpack_from("<H", b, off + 6)[0]
    return b[off:]
def classes_of(b):
    i = b.find(b"\x02\x00\x02\x00UI")
    n = struct.unpack_from("<H", b, i + 6)[0]
    return b[i + 8:i + 8 + n].rstrip(b"\0").decode()
sent, kinds = set(), set()
for d in sys.argv[1:3]:
    for root, _, names in os.walk(d):
        for n in names:
            if n.endswith(".dcm") or d.endswith("ct"):
                b = open(os.path.join(root, n), "rb").read()
                sent.add(hashlib.sha256(dataset(b)).hexdigest())
                kinds.add(classes_of(b))
got = set()
for n in os.listdir(sys.argv[3]):
    got.add(hashlib.sha256(open(os.path.join(sys.argv[3], n), "rb").read()).hexdigest())
print("sent", len(sent), "received", len(got), "classes", sorted(kinds))
need = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.66.4"}
assert need <= kinds, "CT and SEG expected"
assert any(k.startswith("1.2.840.10008.5.1.4.1.1.88.") for k in kinds), "an SR expected"
assert sent == got, "received data sets differ from the sent ones"
PY

# --- 2. a storescp that accepts only CT: SR and SEG have no presentation context ---
cat >ct_only.cfg <<'CFG'
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[[PresentationContexts]]
[CTOnly]
PresentationContext1 = VerificationSOPClass\Uncompressed
PresentationContext2 = CTImageStorage\Uncompressed
[[Profiles]]
[CTOnly]
PresentationContexts = CTOnly
CFG
mkdir recv2
storescp -aet STORESCP +B -F -xf ct_only.cfg CTOnly -od recv2 11112 >storescp2.log 2>&1 &
SCP=$!
netns_wait_port 11112 || { cat storescp2.log; echo "not ok: storescp (CT only) did not start"; exit 1; }
rc=0
"$A" dicom send studies/ct results --to STORESCP@127.0.0.1:11112 --json >ctonly.json 2>/dev/null || rc=$?
[ $rc = 1 ] && ok "a refused context exits 1 (permanent)" || fail "CT-only peer: exit $rc"
[ "$(field ctonly.json class)" = no-presentation-context ] && ok "batch class no-presentation-context" ||
    fail "batch class $(field ctonly.json class)"
[ "$(field ctonly.json delivered)" = "$N_CT" ] && [ "$(field ctonly.json permanent)" = "$N_RES" ] &&
    ok "the $N_CT CT files delivered, the $N_RES results permanent" || fail "CT-only counts: $(cat ctonly.json)"
[ "$(ls recv2 | wc -l)" = "$N_CT" ] && ok "storescp (CT only) holds $N_CT files" || fail "recv2 holds $(ls recv2 | wc -l)"
"$A" dicom send results --to STORESCP@127.0.0.1:11112 >ctonly.txt 2>&1 || true
grep -q "permanent \[no-presentation-context\] the peer accepts no presentation context" ctonly.txt &&
    ok "the text output names the class and what to do" || { cat ctonly.txt; fail "text output"; }
netns_stop "$SCP"
SCP=

# --- 3. nothing listening: transient ---
rc=0
"$A" dicom send studies/ct --to STORESCP@127.0.0.1:11112 --json >refused.json 2>/dev/null || rc=$?
[ $rc = 75 ] && ok "connection refused exits 75 (transient)" || fail "refused: exit $rc"
[ "$(field refused.json class)" = connection-refused ] && [ "$(field refused.json transient)" = "$N_CT" ] &&
    ok "every file transient connection-refused" || fail "refused: $(cat refused.json)"
rc=0
"$A" dicom send --echo --to STORESCP@127.0.0.1:11112 >echo.txt 2>&1 || rc=$?
[ $rc = 75 ] && grep -q "connection-refused" echo.txt && ok "--echo with no listener: connection-refused" || fail "echo: $rc $(cat echo.txt)"

# --- 4. agora serve as the peer: called AE check, spool rows, watermark ---
"$A" serve --home "$T/shome" --listen-dicom 127.0.0.1:11113 --ae-title AGORA 2>serve.log &
SRV=$!
netns_wait_port 11113 || { cat serve.log; echo "not ok: agora serve did not start"; exit 1; }
rc=0
"$A" dicom send studies/ct --to WRONG@127.0.0.1:11113 --json >wrongae.json 2>/dev/null || rc=$?
[ $rc = 1 ] && [ "$(field wrongae.json class)" = configuration-error ] &&
    ok "a wrong called AE is permanent configuration-error" || fail "wrong AE: exit $rc $(cat wrongae.json)"
grep -q "called AE title not recognized" wrongae.json && ok "the message says the called AE was not recognized" ||
    fail "wrong AE message: $(cat wrongae.json)"
rc=0
"$A" dicom send --echo --to AGORA@127.0.0.1:11113 >echo2.txt 2>&1 || rc=$?
[ $rc = 0 ] && ok "--echo to agora serve answers 0x0000" || fail "echo to serve: $rc $(cat echo2.txt)"
rc=0
"$A" dicom send studies/ct --to AGORA@127.0.0.1:11113 --calling-ae SENDTEST >toserve.txt 2>&1 || rc=$?
ROWS=$(sqlite3 "$T/shome/spool/spool.db" "SELECT COUNT(*) FROM spool_instance WHERE calling_ae = 'SENDTEST'" 2>/dev/null || echo 0)
[ $rc = 0 ] && [ "$ROWS" = "$N_CT" ] && ok "agora serve stored the $N_CT CT files from our SCU (calling AE recorded)" ||
    fail "to serve: exit $rc, rows $ROWS: $(tail -3 toserve.txt)"
netns_stop "$SRV"
SRV=
"$A" serve --home "$T/shome" --listen-dicom 127.0.0.1:11113 --ae-title AGORA --spool-watermark 1 2>serve2.log &
SRV=$!
netns_wait_port 11113 || { cat serve2.log; echo "not ok: agora serve (watermark) did not start"; exit 1; }
rc=0
"$A" dicom send studies/ct --to AGORA@127.0.0.1:11113 --json >busy.json 2>/dev/null || rc=$?
[ $rc = 75 ] && [ "$(field busy.json class)" = association-rejected-transient ] &&
    ok "a spool over its watermark: association-rejected-transient (exit 75)" || fail "watermark: exit $rc $(cat busy.json)"
netns_stop "$SRV"
SRV=
# No UID in what the command prints except paths: messages never carry one.
if $PY -c 'import json,sys,re
for f in sys.argv[1:]:
    for x in json.load(open(f))["files"]:
        if re.search(r"\d+\.\d+\.\d+\.\d+\.\d+", x["message"]): sys.exit(1)' all.json ctonly.json refused.json wrongae.json; then
    ok "no UID in any message"
else
    fail "a message carries a UID"
fi
send_done send-dimse
