#!/bin/bash
# Issue 12 acceptance, "End to end" (C-STORE): Orthanc, the clinic PACS, sends a synthetic CT
# study to `agora serve` by C-STORE (POST /modalities/agora/store); within the quiet periods plus
# a few seconds the results of each routed example app are in Orthanc in the source study
# (QIDO-RS): threshold's SR and SEG and stats' SR, each sent by the daemon's AE title
# (Orthanc's RemoteAET), dciodvfy clean; `agora queue --json` shows one job per app, done;
# `agora ledger verify` passes; SIGTERM exits 0; no UID in the daemon's log.
# Everything runs in the test's own network namespace (tests/lib/netns_peer.sh).
# Usage: serve_e2e_dimse.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
. "$LIB/serve_daemon.sh"
e2e_begin serve-e2e-dimse "$0" "$@"

clinic_home "$AGORA" "$W/keys" "$H" "$EXAMPLES" threshold stats || fail "clinic home"
orthanc_start "$W/pacs" || fail "Orthanc"
STUDY=$(e2e_ct "$W/ct" 8) || fail "synth"
[ "$($PEER upload "$PACS_URL" "$W/ct")" = "$STUDY" ] || fail "upload to Orthanc"
e2e_serve --workers 2 || fail "agora serve did not start"
ok "Orthanc, agora serve (threshold, stats installed; no rules) in the test's namespace"

out=$($PEER store "$PACS_URL" agora "$STUDY") || fail "Orthanc's C-STORE to agora: $out"
[ "$out" = "instances=8 failed=0 remote=$AGORA_AET" ] || fail "store: $out"
ok "Orthanc sent the 8-instance CT to agora serve by C-STORE"

# quiet periods (series 1 s, study 2 s) + the intake tick + two runs + the sends: a few seconds;
# 45 s of margin for a loaded 2-core machine with sanitizers.
e2e_results "$STUDY" 2 1 45 || fail "results in Orthanc"
ok "after ${E2E_TOOK} s: 2 SR (threshold, stats) and 1 SEG (threshold) in the source study, sent by $AGORA_AET, dciodvfy clean"

e2e_wait_jobs done 2 || fail "agora queue"
[ "$(qjobs "$H" count any)" = 2 ] || fail "agora queue: $(qjobs "$H" summary), expected 2 jobs"
for app in threshold stats; do
    [ "$(qjobs "$H" count done org.agora.examples.$app)" = 1 ] || fail "no done job of $app"
done
ok "agora queue --json: one job per app, both done"

"$AGORA" ledger verify --home "$H" >"$W/verify" || fail "ledger verify: $(cat "$W/verify")"
grep -q "ledger ok: 2 rows" "$W/verify" || fail "ledger: $(cat "$W/verify")"
ok "ledger verify: 2 rows, chain intact"

serve_stop || fail "SIGTERM: exit status $?"
no_uids_in "$W/serve.log" || fail "a UID in the daemon's log"
ok "SIGTERM exits 0; no UID in the daemon's log"
