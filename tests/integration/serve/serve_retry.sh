#!/bin/bash
# Issue 12 acceptance, "Retry and dead letter": with Orthanc (the destination) down, a study's
# job shows `sending`, its attempt count and next attempt time in `agora queue` (and --json),
# last error class connection-refused; after Orthanc comes back the job is delivered at a next
# attempt (SR and SEG in Orthanc). A permanent rejection (the daemon restarted with a wrong
# called AE in --send-to: Orthanc answers A-ASSOCIATE-RJ permanent, called AE title not
# recognized) fails the job at once (one attempt) with its class; with the configuration fixed
# (restart with the right --send-to) `agora queue retry JOB` delivers it.
# Usage: serve_retry.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
. "$LIB/serve_daemon.sh"
e2e_begin serve-retry "$0" "$@"
clinic_home "$AGORA" "$W/keys" "$H" "$EXAMPLES" threshold || fail "clinic home"
send() { dcmsend -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$1"/*.dcm >/dev/null 2>&1; }
# wait_job STATE SECONDS: until a job is in STATE; prints its id.
wait_job() {
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        id=$(qjobs "$H" ids "$1" | head -1)
        [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.2
    done
    return 1
}

# 1. The destination is down.
STUDY=$(e2e_ct "$W/ct" 6) || fail "synth"
e2e_serve || fail "agora serve did not start"
send "$W/ct" || fail "dcmsend to agora serve"
JOB=$(wait_job sending 40) || fail "no job reached sending: $(qjobs "$H" summary)"
for _ in $(seq 1 100); do
    [ "$(qjobs "$H" field "$JOB" attempts)" -ge 1 ] 2>/dev/null &&
        [ -n "$(qjobs "$H" field "$JOB" last_error_class)" ] && break
    sleep 0.2
done
att=$(qjobs "$H" field "$JOB" attempts)
next=$(qjobs "$H" field "$JOB" next_attempt_at)
cls=$(qjobs "$H" field "$JOB" last_error_class)
[ "$att" -ge 1 ] 2>/dev/null || fail "attempts after a failed delivery: '$att'"
[ "${next:-0}" != 0 ] || fail "no next attempt time: '$next'"
[ "$cls" = connection-refused ] || fail "error class with Orthanc down: '$cls'"
[ "$(qjobs "$H" field "$JOB" state)" = sending ] || fail "the job left sending with Orthanc down"
# The operator's view: the table row (state, attempt n/max, next attempt time) and `show`.
"$AGORA" queue --home "$H" >"$W/q.txt" || fail "agora queue"
grep -Eq "^$JOB +sending +[^ ]+ +$att/[0-9]+ +20[0-9-]+T[0-9:]+Z " "$W/q.txt" ||
    fail "agora queue does not show 'sending, attempt $att, next at T': $(cat "$W/q.txt")"
"$AGORA" queue show "$JOB" --home "$H" >"$W/show.txt" || fail "agora queue show"
grep -Eq "attempt +$att/" "$W/show.txt" && grep -Eq "next attempt +20[0-9-]+T" "$W/show.txt" &&
    grep -q "connection-refused" "$W/show.txt" || fail "agora queue show: $(cat "$W/show.txt")"
ok "Orthanc down: job $JOB sending, attempt $att, next at $next, class $cls (agora queue shows it)"

t0=$(date +%s.%N)
orthanc_start "$W/pacs" || fail "Orthanc"
# The backoff is 30 s doubling (deliver.h): the next attempt comes within about 30 s.
e2e_results "$STUDY" 1 1 120 || fail "not delivered within 120 s of Orthanc's start"
e2e_wait_jobs done 1 || fail "job $JOB not done"
ok "Orthanc back: delivered $(elapsed "$t0") s after its start (attempt $(qjobs "$H" field "$JOB" attempts)), job done"
serve_stop || fail "SIGTERM: exit status $?"

# 2. A permanent rejection: the wrong called AE.
STUDY2=$(e2e_ct "$W/ct2" 6) || fail "synth"
e2e_serve --send-to "WRONG_AE@127.0.0.1:$PACS_DICOM_PORT" || fail "agora serve (wrong AE) did not start"
send "$W/ct2" || fail "dcmsend to agora serve"
JOB2=$(wait_job failed 40) || fail "the job did not fail: $(qjobs "$H" summary)"
att=$(qjobs "$H" field "$JOB2" attempts)
cls=$(qjobs "$H" field "$JOB2" last_error_class)
[ "$att" = 1 ] || fail "a permanent rejection took $att attempts, not 1"
# deliver.h: A-ASSOCIATE-RJ permanent "called AE title not recognized" is configuration-error.
[ "$cls" = configuration-error ] || fail "permanent rejection class: '$cls'"
[ "$($PEER instances "$PACS_URL" "$STUDY2" SR)" = 0 ] || fail "an SR arrived despite the wrong AE"
ok "wrong called AE: job $JOB2 failed at once (1 attempt), class $cls"
serve_stop || fail "SIGTERM: exit status $?"

e2e_serve || fail "agora serve (fixed) did not start"
"$AGORA" queue retry "$JOB2" --home "$H" >"$W/retry.txt" 2>&1 || fail "agora queue retry: $(cat "$W/retry.txt")"
e2e_results "$STUDY2" 1 1 60 || fail "not delivered after the retry"
e2e_wait_jobs done 2 || fail "job $JOB2 not done after the retry"
[ "$(ledger_rows "$H" org.agora.examples.threshold)" = 2 ] || fail "ledger rows: $(ledger_rows "$H" org.agora.examples.threshold)"
ok "configuration fixed, agora queue retry $JOB2: delivered, done; one ledger row per study"
serve_stop || fail "SIGTERM: exit status $?"
