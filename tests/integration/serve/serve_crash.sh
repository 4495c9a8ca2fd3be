#!/bin/bash
# Nothing acknowledged is lost (issue 12): `agora serve` is SIGKILLed three times while
# dcmsend streams 50 instances; after each restart every instance dcmsend's report shows as
# acknowledged with success (its log of C-STORE responses) is in the spool (row and file, data set byte-identical), nothing
# recorded before the kill is gone, and a last dcmsend completes the study: 50 rows.
# Usage: serve_crash.sh AGORA
set -euo pipefail
AGORA=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
for t in dcmsend sqlite3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh installs dcmtk, sqlite3)"; exit 77; }
done
W=$(mktemp -d /tmp/agora-serve-crash.XXXXXX)
PID=
SEND=
cleanup() {
    [ -n "$SEND" ] && kill "$SEND" 2>/dev/null && wait "$SEND" 2>/dev/null || true
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
fail() {
    echo "not ok: $*"
    echo "--- serve.log"; tail -20 "$W/serve.log" || true
    exit 1
}
PORT=$($PY -c 'import sys; sys.path.insert(0, sys.argv[1]); import dul; print(dul.free_port())' "$HERE")
H=$W/home
DB=$H/spool/spool.db
rows() { sqlite3 "$DB" 'SELECT COUNT(*) FROM spool_instance' 2>/dev/null || echo 0; }
start() {
    local before
    before=$(grep -c "listening on" "$W/serve.log" 2>/dev/null || true)
    "$AGORA" serve --home "$H" --listen-dicom 127.0.0.1:$PORT 2>>"$W/serve.log" &
    PID=$!
    for _ in $(seq 1 100); do
        [ "$(grep -c "listening on" "$W/serve.log")" -gt "${before:-0}" ] && return 0
        sleep 0.1
    done
    fail "agora serve did not start"
}

"$AGORA" dicom synth --modality CT --slices 50 --rows 256 --cols 256 -o "$W/ct" >/dev/null
interrupted=0
for round in 1 2 3; do
    start
    before=$(rows)
    # -d: dcmsend logs every C-STORE response; its report file is not written when killed.
    dcmsend -d -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W"/ct/*.dcm >"$W/r$round.log" 2>&1 &
    SEND=$!
    # Kill once this round has stored a few new instances (or dcmsend is done).
    target=$((before + 4 + round * 3))
    for _ in $(seq 1 400); do
        [ "$(rows)" -ge $target ] && break
        kill -0 $SEND 2>/dev/null || break
        sleep 0.01
    done
    kill -9 $PID
    wait $PID 2>/dev/null || true
    PID=
    wait $SEND 2>/dev/null || true
    SEND=
    after_kill=$(rows)
    start
    out=$($PY "$HERE/check_spool.py" --log "$W/r$round.log" "$W/ct" "$H/spool") || fail "round $round: $out"
    acked=${out#acked=}
    acked=${acked%% *}
    [ "$acked" -lt 50 ] && interrupted=$((interrupted + 1))
    [ "$(rows)" -ge "$after_kill" ] || fail "round $round: rows went from $after_kill to $(rows)"
    echo "ok: round $round: killed with $after_kill rows; $out; all acknowledged instances kept"
    kill -TERM $PID
    wait $PID || fail "SIGTERM after round $round"
    PID=
done
[ $interrupted -ge 1 ] || fail "no round was interrupted mid-stream (dcmsend always finished first)"
start
dcmsend -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W"/ct/*.dcm --create-report-file "$W/final.txt" ||
    fail "final dcmsend"
out=$($PY "$HERE/check_spool.py" "$W/final.txt" "$H/spool") || fail "final: $out"
[ "$out" = "acked=50 refused=0 rows=50" ] || fail "final: $out"
echo "ok: after $interrupted interrupted round(s) a resend completes the study: $out"
kill -TERM $PID
wait $PID || fail "SIGTERM at the end"
PID=
if grep -q "without a record" "$W/serve.log"; then
    echo "note: a kill fell between a rename and its row: the orphan file was reported and kept"
fi
exit 0
