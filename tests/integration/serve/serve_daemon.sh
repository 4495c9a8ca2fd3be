#!/bin/bash
# `agora serve` as the daemon (issue 12 items 1, 6, 9; i12-daemon): in the test's own network
# namespace, with the example apps threshold and stats installed and DCMTK's storescp as the
# destination PACS:
#   - --config FILE: the same keys as the long options (comments, quoted values), flags override
#     the file, an unknown key is refused naming its line, --check-config checks everything and
#     prints the settings without listening;
#   - storescu sends a synthetic CT: the SR and SEG of threshold and the SR of stats arrive at
#     storescp (sent by our AE title), `agora queue --json` has one done job per app, the ledger
#     one row per app, `agora ledger verify` passes, SIGTERM exits 0, no UID in the log;
#   - SIGTERM while a second study's jobs run (grace 0.1 s): exit 0, whatever was running goes
#     back to the queue; the restarted daemon finishes every job exactly once (one ledger row per
#     app and study, every job done, one set of result objects);
#   - the operator revokes threshold while its job runs (--sync-interval 1): the daemon's sync
#     cancels it (class revoked, not billed) unless it finished first, and a study that arrives
#     afterwards gets no threshold job.
# Usage: serve_daemon.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
. "$LIB/serve_daemon.sh"
peer_require dcmdump storescu storescp
netns_enter "$0" "$@"
AGORA=$(realpath "$1")
EXAMPLES=$(realpath "$2")
e2e_init serve-daemon
DEST_PORT=11114

clinic_home "$AGORA" "$W/keys" "$H" "$EXAMPLES" threshold stats || fail "clinic home"

# --- the config file ------------------------------------------------------------------------
cat >"$W/serve.conf" <<EOF
# agora serve configuration (the keys are the long options without --)
listen-dicom = 127.0.0.1:$AGORA_DICOM_PORT
ae-title = "$AGORA_AET"   # quoted values keep spaces and #
send-to = STORE@127.0.0.1:$DEST_PORT
home = $H

series-quiet = 1
study-quiet = 2
workers = 2
EOF
"$AGORA" serve --config "$W/serve.conf" --check-config >"$W/check" || fail "--check-config: $(cat "$W/check")"
grep -q "^ok: the configuration is valid" "$W/check" || fail "check: $(cat "$W/check")"
grep -q "^destination default: C-STORE STORE@127.0.0.1:$DEST_PORT" "$W/check" || fail "check: $(cat "$W/check")"
grep -q "^apps: 2 installed, 2 can run" "$W/check" || fail "check: $(cat "$W/check")"
grep -q "workers 2;" "$W/check" || fail "check: $(cat "$W/check")"
"$AGORA" serve --config "$W/serve.conf" --workers 1 --check-config | grep -q "workers 1;" ||
    fail "a flag does not override the file"
printf 'workers = 2\nlisten-dicom = 127.0.0.1:1\nbogus-key = 1\n' >"$W/bad.conf"
rc=0
"$AGORA" serve --config "$W/bad.conf" --check-config 2>"$W/err" || rc=$?
[ $rc = 2 ] || fail "an unknown key: exit $rc"
grep -q "bad.conf:3: unknown key 'bogus-key'" "$W/err" || fail "unknown key: $(cat "$W/err")"
"$AGORA" serve --home "$H" --rules /nonexistent.json --check-config 2>"$W/err" && fail "missing rules accepted"
grep -q "nonexistent.json" "$W/err" || fail "missing rules: $(cat "$W/err")"
ok "--config: keys, comments, quotes; flags override; unknown key refused with its line; --check-config"

# --- end to end with storescu and storescp --------------------------------------------------
storescp_start "$W/recv" STORE $DEST_PORT || fail "storescp"
serve_start "$W/serve.log" --config "$W/serve.conf" || fail "agora serve did not start"
STUDY=$(e2e_ct "$W/ct" 8) || fail "synth"
storescu -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W"/ct/*.dcm ||
    fail "storescu to agora serve"

# modality_count DIR MODALITY: result objects of that modality storescp received.
modality_count() {
    local f n=0
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        dcmdump +P 0008,0060 "$f" 2>/dev/null | grep -q "\[$2\]" && n=$((n + 1))
    done
    echo $n
}
for ((i = 0; i < 90; i++)); do
    [ "$(modality_count "$W/recv" SR)" = 2 ] && [ "$(modality_count "$W/recv" SEG)" = 1 ] && break
    sleep 0.5
done
[ "$(modality_count "$W/recv" SR)" = 2 ] || fail "SR at the destination: $(modality_count "$W/recv" SR)"
[ "$(modality_count "$W/recv" SEG)" = 1 ] || fail "SEG at the destination: $(modality_count "$W/recv" SEG)"
# in_study DIR STUDY: every object received is in the source study (a file storescp is still
# writing may not parse yet: asked again for a few seconds).
in_study() {
    local f k bad
    for ((k = 0; k < 20; k++)); do
        bad=0
        for f in "$1"/*; do
            dcmdump +P 0020,000d "$f" 2>/dev/null | grep -q "\[$2\]" || { bad=1; break; }
        done
        [ $bad = 0 ] && return 0
        sleep 0.25
    done
    return 1
}
in_study "$W/recv" "$STUDY" || fail "a result outside the source study"
ok "storescu -> agora serve -> storescp: 2 SR (threshold, stats) and 1 SEG (threshold) in the source study"

e2e_wait_jobs done 2 || fail "agora queue"
for app in threshold stats; do
    [ "$(qjobs "$H" count done org.agora.examples.$app)" = 1 ] || fail "no done job of $app"
    [ "$(ledger_rows "$H" org.agora.examples.$app)" = 1 ] || fail "ledger rows of $app"
done
"$AGORA" ledger verify --home "$H" >"$W/verify" || fail "ledger verify: $(cat "$W/verify")"
grep -q "ledger ok: 2 rows" "$W/verify" || fail "ledger: $(cat "$W/verify")"
ok "one done job and one ledger row per app; ledger verify passes"
serve_stop || fail "SIGTERM: exit status $?"
grep -q "daemon: stopped" "$W/serve.log" || fail "no clean stop in the log"
no_uids_in "$W/serve.log" || fail "a UID in the daemon's log"
ok "SIGTERM exits 0; no UID in the daemon's log"

# --- SIGTERM during a run, restart, exactly once ------------------------------------------
rm -f "$W"/recv/*
# 48 slices of 512x512: threshold needs over a second on it, far more than the 0.1 s grace.
STUDY2=$(e2e_ct "$W/ct2" 48 --rows 512 --cols 512) || fail "synth"
serve_start "$W/serve2.log" --config "$W/serve.conf" --workers 1 --shutdown-grace 0.1 ||
    fail "agora serve did not start"
storescu -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W"/ct2/*.dcm ||
    fail "storescu (second study)"
for ((i = 0; i < 600; i++)); do
    grep -q "running org.agora.examples.threshold" "$W/serve2.log" && break
    sleep 0.05
done
grep -q "running org.agora.examples.threshold" "$W/serve2.log" || fail "threshold's job did not start"
serve_stop || fail "SIGTERM during a run: exit status $?"
grep -q "cancelled in its pool" "$W/serve2.log" || fail "the running job was not cancelled after the grace"
requeued=$(sed -n 's/.*daemon: \([0-9]*\) job(s) requeued.*/\1/p' "$W/serve2.log")
[ -n "$requeued" ] || fail "nothing requeued at SIGTERM during a run"
ok "SIGTERM during a run: the job was cancelled after the 0.1 s grace and requeued ($requeued); exit 0"
[ "$(qjobs "$H" count running)" = 0 ] || fail "a job left running after SIGTERM: $(qjobs "$H" summary)"

serve_start "$W/serve3.log" --config "$W/serve.conf" || fail "agora serve did not restart"
e2e_wait_jobs done 4 60 || fail "the jobs of the second study did not finish after the restart"
for app in threshold stats; do
    [ "$(ledger_rows "$H" org.agora.examples.$app)" = 2 ] ||
        fail "$app: $(ledger_rows "$H" org.agora.examples.$app) ledger rows, expected 2 (one per study)"
done
for ((i = 0; i < 60; i++)); do
    [ "$(modality_count "$W/recv" SR)" = 2 ] && [ "$(modality_count "$W/recv" SEG)" = 1 ] && break
    sleep 0.5
done
[ "$(modality_count "$W/recv" SR)" = 2 ] && [ "$(modality_count "$W/recv" SEG)" = 1 ] ||
    fail "results of the second study: $(ls "$W/recv" | wc -l) object(s)"
"$AGORA" ledger verify --home "$H" | grep -q "ledger ok: 4 rows" || fail "ledger verify after the restart"
serve_stop || fail "SIGTERM: exit status $?"
no_uids_in "$W/serve2.log" && no_uids_in "$W/serve3.log" || fail "a UID in the daemon's log"
ok "after the restart every job ran exactly once: 4 jobs done, one ledger row per app and study, one SR/SEG set"

# --- revocation through the catalog sync timer ----------------------------------------------
serve_start "$W/serve4.log" --config "$W/serve.conf" --workers 1 --sync-interval 1 ||
    fail "agora serve did not start (sync)"
e2e_ct "$W/ct3" 96 --rows 512 --cols 512 >/dev/null || fail "synth"
storescu -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W"/ct3/*.dcm ||
    fail "storescu (third study)"
for ((i = 0; i < 600; i++)); do
    grep -q "running org.agora.examples.threshold" "$W/serve4.log" && break
    sleep 0.05
done
grep -q "running org.agora.examples.threshold" "$W/serve4.log" || fail "threshold's job did not start"
(cd "$W/keys" && "$AGORA" revoke org.agora.examples.threshold@1.0.0 --catalog cat \
    --key keys/op.key --reason "withdrawn by the vendor") >"$W/revoke.log" 2>&1 ||
    fail "agora revoke: $(cat "$W/revoke.log")"
for ((i = 0; i < 60; i++)); do
    [ "$(qjobs "$H" count cancelled org.agora.examples.threshold)" = 1 ] && break
    [ "$(qjobs "$H" count done org.agora.examples.threshold)" = 3 ] && break
    sleep 0.25
done
if [ "$(qjobs "$H" count cancelled org.agora.examples.threshold)" = 1 ]; then
    grep -q "org.agora.examples.threshold@1.0.0 revoked: 1 job(s) cancelled" "$W/serve4.log" ||
        fail "no revocation line in the log"
    [ "$(ledger_rows "$H" org.agora.examples.threshold)" = 2 ] || fail "the revoked run was recorded"
    ok "revoked while running: cancelled by the sync within its interval, not recorded in the ledger"
else
    [ "$(qjobs "$H" count done org.agora.examples.threshold)" = 3 ] ||
        fail "threshold's job neither cancelled nor done: $(qjobs "$H" summary)"
    ok "revoked while running: the job finished before the sync (not cancelled)"
fi
e2e_ct "$W/ct4" 4 >/dev/null || fail "synth"
storescu -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W"/ct4/*.dcm ||
    fail "storescu (fourth study)"
for ((i = 0; i < 120; i++)); do
    [ "$(qjobs "$H" count done org.agora.examples.stats)" = 4 ] && break
    sleep 0.25
done
[ "$(qjobs "$H" count done org.agora.examples.stats)" = 4 ] || fail "stats on the fourth study: $(qjobs "$H" summary)"
sleep 1
[ "$(qjobs "$H" count any org.agora.examples.threshold)" = 3 ] ||
    fail "a threshold job after its revocation: $(qjobs "$H" summary)"
serve_stop || fail "SIGTERM: exit status $?"
"$AGORA" ledger verify --home "$H" >/dev/null || fail "ledger verify at the end"
ok "after the revocation a new study gets no threshold job; ledger verify passes"
