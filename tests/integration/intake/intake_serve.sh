#!/bin/bash
# The intake on what the real listener spooled: DCMTK's dcmsend sends a synthetic CT series to
# `agora serve`; the intake (driven by intake_drive, as the daemon's timer will) groups every
# instance through the sandboxed reader with the announced SOP Instance UIDs confirmed, and
# emits one study only once its timers have passed; a late series sent after the dispatch makes
# generation 2 with both series, a resend changes nothing; nothing is rejected and no UID is
# logged.
# Usage: intake_serve.sh AGORA INTAKE_DRIVE
set -euo pipefail
AGORA=$1
DRIVE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
for t in dcmsend sqlite3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh installs dcmtk, sqlite3)"; exit 77; }
done
W=$(mktemp -d /tmp/agora-intake-serve.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
fail() {
    echo "not ok: $*"
    echo "--- serve.log"; tail -20 "$W/serve.log" || true
    echo "--- intake.log"; tail -20 "$W/intake.log" || true
    exit 1
}
ok() { echo "ok: $*"; }
PORT=$($PY -c 'import sys; sys.path.insert(0, sys.argv[1]); import dul; print(dul.free_port())' \
    "$HERE/../serve")
H=$W/home
DB=$H/spool/spool.db

start() {
    local before
    before=$(grep -c "listening on" "$W/serve.log" 2>/dev/null || true)
    "$AGORA" serve --home "$H" --listen-dicom 127.0.0.1:$PORT --ae-title AGORA \
        --allow-ae MODALITY 2>>"$W/serve.log" &
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
    wait $PID || fail "agora serve: exit status $?"
    PID=
}
send() { dcmsend -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$@" >>"$W/dcmsend.log" 2>&1 ||
    fail "dcmsend failed"; }
drive() { "$DRIVE" "$H" "$1" >"$W/out.txt" 2>>"$W/intake.log" || fail "intake_drive failed"; }

"$AGORA" dicom synth --modality CT --slices 12 --rows 32 --cols 32 --seed 41 -o "$W/a" >/dev/null
"$AGORA" dicom synth --modality CT --slices 4 --rows 32 --cols 32 --seed 41 --series 2 \
    -o "$W/b" >/dev/null

start
send "$W"/a/*.dcm
stop
# Inside the quiet timers: grouped, not emitted.
drive 0
grep -qx "poll grouped=12 rejected=0 backlog=0 emitted=0" "$W/out.txt" ||
    fail "first poll: $(cat "$W/out.txt")"
ok "12 instances received by agora serve are grouped by the sandboxed reader, nothing emitted yet"
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM spool_instance WHERE state = 'grouped' AND
      study_instance_uid IS NOT NULL AND modality = 'CT' AND calling_ae = 'MODALITY'")" = 12 ] ||
    fail "grouped rows"
# A day later: complete, emitted once.
drive 86400
grep -q "^study [0-9a-f]\{16\} generation=1 series=1 instances=12 reason=quiet$" "$W/out.txt" ||
    fail "emission: $(cat "$W/out.txt")"
grep -q "^  series modality=CT body=CHEST frames=1 rows=32 cols=32 origin=dimse calling=MODALITY n=12 sops_ok=1$" \
    "$W/out.txt" || fail "series: $(cat "$W/out.txt")"
KEY=$(sed -n 's/^study \([0-9a-f]*\) .*/\1/p' "$W/out.txt")
drive 86401
grep -qx "poll grouped=0 rejected=0 backlog=0 emitted=0" "$W/out.txt" || fail "emitted twice"
ok "the study is emitted once its timers passed, once (key $KEY)"

# A resend of the same series (duplicates) and a late series.
start
send "$W"/a/*.dcm
send "$W"/b/*.dcm
stop
[ "$(sqlite3 "$DB" 'SELECT COUNT(*) FROM spool_instance')" = 16 ] || fail "resend stored twice"
drive 86400
grep -q "^study $KEY generation=2 series=2 instances=16 reason=quiet$" "$W/out.txt" ||
    fail "amendment: $(cat "$W/out.txt")"
drive 86401
grep -qx "poll grouped=0 rejected=0 backlog=0 emitted=0" "$W/out.txt" || fail "amendment twice"
ok "a late series gives generation 2 with both series, once; the resend adds nothing"

[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM spool_instance WHERE state = 'rejected'")" = 0 ] ||
    fail "rejected rows"
# No UID in what the intake logged.
if grep -q "2\.25\." "$W/intake.log"; then fail "a UID in the intake log"; fi
ok "nothing rejected; no UID in the intake's log"
