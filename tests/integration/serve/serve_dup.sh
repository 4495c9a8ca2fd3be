#!/bin/bash
# Issue 12 acceptance, "No duplicates": Orthanc sends the same study to `agora serve` twice
# (the second time after its results were delivered): one job, one billable ledger row and one
# SR (and SEG) in Orthanc. A late series of the same study, arriving after completion (Orthanc
# sends the study's CT series again: the first series' instances are duplicates, the new
# series is new): exactly one amendment job; billing rule (docs, queue.h): a per-study app is not charged
# twice for an amendment in the same month, so the month's statement still shows 1 unit.
# Usage: serve_dup.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
. "$LIB/serve_daemon.sh"
peer_require dcmodify
e2e_begin serve-dup "$0" "$@"
APP=org.agora.examples.threshold

clinic_home "$AGORA" "$W/keys" "$H" "$EXAMPLES" threshold || fail "clinic home"
orthanc_start "$W/pacs" || fail "Orthanc"
STUDY=$(e2e_ct "$W/ct" 6 --patient-id PID-DUP-1 --patient-name "TEST^DUP") || fail "synth"
[ "$($PEER upload "$PACS_URL" "$W/ct")" = "$STUDY" ] || fail "upload to Orthanc"
e2e_serve --workers 1 || fail "agora serve did not start"

out=$($PEER store "$PACS_URL" agora "$STUDY") || fail "store: $out"
e2e_results "$STUDY" 1 1 45 || fail "results of the first send"
e2e_wait_jobs done 1 || fail "queue after the first send"
sr1=$($PEER sops "$PACS_URL" "$STUDY" SR)
ok "first send: one job done, one SR and one SEG in Orthanc"

# The study's CT series again (Orthanc's study now also holds our SR and SEG, which agora
# serve does not accept: i12-peers-bugs.md).
out=$($PEER store "$PACS_URL" agora "$STUDY" CT) || fail "second store: $out"
[ "$out" = "instances=6 failed=0 remote=$AGORA_AET" ] || fail "second store: $out"
# Nothing new may come of it: wait out both quiet periods and the intake tick, with margin.
sleep $((E2E_SERIES_QUIET + E2E_STUDY_QUIET + 5))
[ "$(qjobs "$H" count any)" = 1 ] || fail "after the same study again: $(qjobs "$H" summary)"
[ "$($PEER sops "$PACS_URL" "$STUDY" SR)" = "$sr1" ] || fail "a second SR in Orthanc"
[ "$($PEER instances "$PACS_URL" "$STUDY" SEG)" = 1 ] || fail "a second SEG in Orthanc"
[ "$(ledger_rows "$H" $APP billable)" = 1 ] || fail "billable ledger rows: $(ledger_rows "$H" $APP billable)"
[ "$(statement_units "$H" $APP)" = "1 250" ] || fail "statement: $(statement_units "$H" $APP)"
ok "the same study again: still one job, one billable ledger row (statement 1 unit, 250), one SR"

# A late series of the same study (same patient, the study's UID), after completion.
"$AGORA" dicom synth --modality CT --slices 3 --rows 64 --cols 64 --patient-id PID-DUP-1 \
    --patient-name "TEST^DUP" -o "$W/late" >/dev/null
dcmodify -nb -m "(0020,000D)=$STUDY" "$W"/late/*.dcm >/dev/null || fail "dcmodify"
[ "$($PEER upload "$PACS_URL" "$W/late")" = "$STUDY" ] || fail "the late series is not in the study in Orthanc"
out=$($PEER store "$PACS_URL" agora "$STUDY" CT) || fail "store with the late series: $out"
[ "$out" = "instances=9 failed=0 remote=$AGORA_AET" ] || fail "store with the late series: $out"
e2e_wait_jobs done 2 45 || fail "no amendment job done"
sleep $((E2E_STUDY_QUIET + 3))
[ "$(qjobs "$H" count any)" = 2 ] || fail "more than one amendment job: $(qjobs "$H" summary)"
ok "a late series after completion: exactly one amendment job, done"
[ "$(statement_units "$H" $APP)" = "1 250" ] ||
    fail "the amendment was charged again in the same month: statement $(statement_units "$H" $APP)"
"$AGORA" ledger verify --home "$H" >/dev/null || fail "ledger verify"
ok "billing: the per-study app's amendment is not charged again this month (statement 1 unit, 250); ledger verify ok"
serve_stop || fail "SIGTERM: exit status $?"
