#!/bin/bash
# Issue 12 acceptance, "Nothing lost", the whole daemon: `agora serve` (threshold and stats
# installed, results to Orthanc) is SIGKILLed at random points three times while DCMTK's
# dcmsend streams a 50-instance CT (twice mid-stream at a random instance count, once at a
# random moment after the study was complete, while its jobs run or send). After each restart
# every instance dcmsend saw acknowledged with success is in the spool (row and file, data set
# byte-identical: check_spool.py); at the end each app ran exactly once on the study (one job
# each, done; one ledger row each; one SR per app in Orthanc), `agora ledger verify` passes and
# the month's statement reconciles with the ledger. (serve-crash does the spool half alone.)
# Usage: serve_crash2.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
. "$LIB/serve_daemon.sh"
peer_require sqlite3
e2e_begin serve-crash2 "$0" "$@"
# Quiet periods long enough that a restart between rounds never completes a partial study.
E2E_SERIES_QUIET=8
E2E_STUDY_QUIET=8
DB=$H/spool/spool.db
rows() { sqlite3 "$DB" 'SELECT COUNT(*) FROM spool_instance' 2>/dev/null || echo 0; }
SEND=
clinic_home "$AGORA" "$W/keys" "$H" "$EXAMPLES" threshold stats || fail "clinic home"
orthanc_start "$W/pacs" || fail "Orthanc"
STUDY=$("$AGORA" dicom synth --modality CT --slices 50 --rows 160 --cols 160 -o "$W/ct" >/dev/null &&
    dcmdump +P 0020,000d "$W/ct/IM00001.dcm" | sed 's/.*\[\(.*\)\].*/\1/') || fail "synth"

e2e_serve --workers 2 || fail "agora serve did not start"
kills=""
for round in 1 2 3; do
    before=$(rows)
    dcmsend -d -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W"/ct/*.dcm \
        >"$W/r$round.log" 2>&1 &
    SEND=$!
    E2E_PIDS=$SEND
    if [ $round -lt 3 ]; then
        # mid-stream: once a random number (1..12) of new instances is in the spool
        target=$((before + 1 + RANDOM % 12))
        for _ in $(seq 1 1000); do
            [ "$(rows)" -ge $target ] && break
            kill -0 $SEND 2>/dev/null || break
            sleep 0.01
        done
        at="$(rows) rows"
    else
        # after the study is complete: once a job exists, a random 0..1.5 s later
        wait $SEND 2>/dev/null || true
        for _ in $(seq 1 300); do
            [ "$(qjobs "$H" count any 2>/dev/null || echo 0)" -ge 1 ] && break
            sleep 0.1
        done
        sleep "$((RANDOM % 16 / 10)).$((RANDOM % 10))"
        at="study complete, queue $(qjobs "$H" summary 2>/dev/null || echo '?')"
    fi
    serve_kill
    wait $SEND 2>/dev/null || true
    SEND= E2E_PIDS=
    kills="$kills [$round: $at]"
    e2e_serve --workers 2 || fail "agora serve did not restart after kill $round"
    out=$($PY "$HERE/check_spool.py" --log "$W/r$round.log" "$W/ct" "$H/spool") || fail "round $round: $out"
    ok "kill $round at $at; after restart: $out, every acknowledged instance in the spool"
done
dcmsend -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W"/ct/*.dcm \
    --create-report-file "$W/final.txt" >/dev/null 2>&1 || fail "final dcmsend"
out=$($PY "$HERE/check_spool.py" "$W/final.txt" "$H/spool") || fail "final: $out"
[ "$out" = "acked=50 refused=0 rows=50" ] || fail "final: $out"
ok "a last dcmsend: $out"

# Each app exactly once: wait for both SRs, then for the quiet periods again (no second job).
e2e_results "$STUDY" 2 1 120 || fail "results in Orthanc"
e2e_wait_jobs done 2 20 || fail "jobs"
sleep $((E2E_STUDY_QUIET + 3))
[ "$(qjobs "$H" count done)" = 2 ] && [ "$(qjobs "$H" count any)" = 2 ] ||
    fail "jobs: $(qjobs "$H" summary) (expected 2 done, no other)"
for app in threshold stats; do
    [ "$(qjobs "$H" count done org.agora.examples.$app)" = 1 ] || fail "$app: not one done job"
    n=$(ledger_rows "$H" org.agora.examples.$app)
    [ "$n" = 1 ] || fail "$app: $n ledger rows"
done
ok "each app ran exactly once: one job done and one ledger row each; 2 SR + 1 SEG in Orthanc"
"$AGORA" ledger verify --home "$H" >"$W/verify" || fail "ledger verify: $(cat "$W/verify")"
out=$(statement_reconciles "$H") || fail "statement: $out"
ok "ledger verify passes; $out"
serve_stop || fail "SIGTERM: exit status $?"
echo "kills:$kills"
