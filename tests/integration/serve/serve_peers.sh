#!/bin/bash
# `agora serve` against real DCMTK peers on loopback (issue 12, first slice): C-ECHO; a
# synthetic CT sent with dcmsend and storescu lands in the spool and in spool.db, data sets
# byte-identical; a duplicate is stored once; AE titles outside the allow-list and a wrong
# called AE are rejected; with --max-associations 2 a third association is rejected transient
# (local limit exceeded); a spool over its watermark rejects new associations (temporary
# congestion) and refuses C-STOREs crossing it with 0xA700 while acknowledged ones are kept;
# SIGTERM stops cleanly and a restart deletes nothing.
# Usage: serve_peers.sh AGORA
set -euo pipefail
AGORA=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
for t in echoscu storescu dcmsend sqlite3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh installs dcmtk, sqlite3)"; exit 77; }
done
W=$(mktemp -d /tmp/agora-serve-peers.XXXXXX)
PID=
HOLD=
cleanup() {
    [ -n "$HOLD" ] && kill "$HOLD" 2>/dev/null && wait "$HOLD" 2>/dev/null || true
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
fail() {
    echo "not ok: $*"
    echo "--- serve.log"; tail -30 "$W/serve.log" || true
    exit 1
}
ok() { echo "ok: $*"; }
PORT=$($PY -c 'import sys; sys.path.insert(0, sys.argv[1]); import dul; print(dul.free_port())' "$HERE")
H=$W/home
DB=$H/spool/spool.db
rows() { sqlite3 "$DB" 'SELECT COUNT(*) FROM spool_instance'; }

start() {
    local before
    before=$(grep -c "listening on" "$W/serve.log" 2>/dev/null || true)
    "$AGORA" serve --home "$H" --listen-dicom 127.0.0.1:$PORT --ae-title AGORA \
        --allow-ae MODALITY --allow-ae ECHOSCU --allow-ae PYTEST --max-associations 2 \
        "$@" 2>>"$W/serve.log" &
    PID=$!
    for _ in $(seq 1 100); do
        [ "$(grep -c "listening on 127.0.0.1 port $PORT" "$W/serve.log")" -gt "${before:-0}" ] &&
            return 0
        kill -0 $PID 2>/dev/null || fail "agora serve exited at start"
        sleep 0.1
    done
    fail "agora serve did not start listening"
}
stop() {
    kill -TERM $PID
    local rc=0
    wait $PID || rc=$?
    PID=
    [ $rc = 0 ] || fail "SIGTERM: exit status $rc"
}

"$AGORA" serve --help | grep -q -- '--listen-dicom' || fail "--help does not list --listen-dicom"
"$AGORA" serve --home "$H" --ae-title "WAY_TOO_LONG_AE_TITLE" --check-config 2>"$W/err" &&
    fail "--check-config accepted a 21-character AE title"
grep -q "1 to 16" "$W/err" || fail "the AE title error does not say the limit"
"$AGORA" serve --home "$H" --listen-dicom 127.0.0.1:$PORT --check-config | grep -q '^ok:' ||
    fail "--check-config"
ok "--help and --check-config"

"$AGORA" dicom synth --modality CT --slices 20 --rows 64 --cols 64 -o "$W/ct" >/dev/null
"$AGORA" dicom synth --modality CT --slices 10 --rows 64 --cols 64 -o "$W/ct2" >/dev/null
start
echoscu -aet ECHOSCU -aec AGORA 127.0.0.1 $PORT || fail "C-ECHO"
ok "C-ECHO from echoscu"

if echoscu -aet INTRUDER -aec AGORA 127.0.0.1 $PORT >"$W/out" 2>&1; then
    fail "a calling AE outside the allow-list was accepted"
fi
grep -qi "rejected" "$W/out" || fail "echoscu did not see a rejection: $(cat "$W/out")"
grep -qi "calling AE title not recognized\|Calling AE Title Not Recognized" "$W/out" ||
    fail "the rejection does not name the calling AE title: $(cat "$W/out")"
if echoscu -aet ECHOSCU -aec NOTAGORA 127.0.0.1 $PORT >"$W/out" 2>&1; then
    fail "a wrong called AE was accepted"
fi
grep -qi "called AE title not recognized" "$W/out" || fail "wrong called AE: $(cat "$W/out")"
ok "AE allow-list and called AE enforced (permanent rejections)"

dcmsend -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W"/ct/*.dcm --create-report-file "$W/r1.txt" ||
    fail "dcmsend"
out=$($PY "$HERE/check_spool.py" "$W/r1.txt" "$H/spool") || fail "spool check: $out"
[ "$out" = "acked=20 refused=0 rows=20" ] || fail "after dcmsend: $out"
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM spool_instance WHERE calling_ae='MODALITY' AND called_ae='AGORA' AND sop_class_uid='1.2.840.10008.5.1.4.1.1.2' AND study_instance_uid IS NULL AND state='received'")" = 20 ] ||
    fail "rows do not record AE titles, SOP class and state"
ok "dcmsend: 20 instances acknowledged, all in the spool and spool.db, data sets identical"

dcmsend -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W"/ct/*.dcm --create-report-file "$W/r2.txt" ||
    fail "dcmsend (again)"
out=$($PY "$HERE/check_spool.py" "$W/r2.txt" "$H/spool") || fail "spool check: $out"
[ "$out" = "acked=20 refused=0 rows=20" ] || fail "duplicates: $out"
[ "$(find "$H/spool/in" -type f | wc -l)" = 20 ] || fail "duplicates left extra files"
ok "the same 20 instances again: success, stored once"

storescu -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W/ct2/IM00001.dcm" || fail "storescu"
[ "$(rows)" = 21 ] || fail "storescu: $(rows) rows"
ok "storescu"

# Two associations held open by a test client; the third is rejected transient.
$PY -c '
import sys, time
sys.path.insert(0, sys.argv[1]); import dul
a = dul.associate(int(sys.argv[2])); b = dul.associate(int(sys.argv[2]))
print("held", flush=True); time.sleep(20)' "$HERE" $PORT >"$W/hold" &
HOLD=$!
for _ in $(seq 1 100); do grep -q held "$W/hold" && break; sleep 0.1; done
grep -q held "$W/hold" || fail "the test client could not open two associations"
if echoscu -aet ECHOSCU -aec AGORA 127.0.0.1 $PORT >"$W/out" 2>&1; then
    fail "a third association was accepted with --max-associations 2"
fi
grep -qi "transient" "$W/out" && grep -qi "local limit exceeded" "$W/out" ||
    fail "third association: $(cat "$W/out")"
kill $HOLD; wait $HOLD 2>/dev/null || true
HOLD=
for _ in $(seq 1 50); do echoscu -aet ECHOSCU -aec AGORA 127.0.0.1 $PORT 2>/dev/null && break; sleep 0.1; done
echoscu -aet ECHOSCU -aec AGORA 127.0.0.1 $PORT || fail "C-ECHO after the two were released"
ok "max associations 2: the third is rejected transient (local limit exceeded), later ones work"

stop
grep -q "stopped spool_instances=21" "$W/serve.log" || fail "no clean stop line"
# A watermark the spool is already over: new associations rejected transient.
start --spool-watermark 1K
grep -q "spool_instances=21 " "$W/serve.log" || fail "restart does not see the 21 instances"
if storescu -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W/ct2/IM00002.dcm" >"$W/out" 2>&1; then
    fail "storescu was accepted above the watermark"
fi
grep -qi "transient" "$W/out" && grep -qi "congestion" "$W/out" || fail "watermark: $(cat "$W/out")"
kill -0 $PID || fail "the daemon died above the watermark"
[ "$(rows)" = 21 ] || fail "watermark: rows changed"
stop
# A watermark crossed during an association: the C-STOREs after it get 0xA700.
bytes=$(sqlite3 "$DB" 'SELECT SUM(size_bytes) FROM spool_instance')
start --spool-watermark $((bytes + 30000))
dcmsend -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W"/ct2/*.dcm --create-report-file "$W/r3.txt" \
    >/dev/null 2>&1 || true
out=$($PY "$HERE/check_spool.py" "$W/r3.txt" "$H/spool") || fail "spool check: $out"
# ct2/IM00001 is a duplicate (storescu above), answered success; three new ones (about 11 KB
# each) cross the 30000-byte margin; the six after them are refused.
[ "$out" = "acked=4 refused=6 rows=24" ] || fail "crossing the watermark: $out"
grep -qi "0xa700" "$W/r3.txt" || fail "the refusals are not 0xA700"
kill -0 $PID || fail "the daemon died crossing the watermark"
stop
ok "spool watermark: associations rejected transient (congestion), C-STOREs crossing it 0xA700"
! grep -E '2\.25\.[0-9]{10}|1\.2\.826\.' "$W/serve.log" || fail "a UID in the log"
ok "no UIDs in the log"
