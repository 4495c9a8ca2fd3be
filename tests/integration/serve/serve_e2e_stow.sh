#!/bin/bash
# Issue 12 acceptance, "End to end" through STOW-RS: Orthanc's DICOMweb client sends a synthetic
# CT study to `agora serve --listen-http` (POST /dicom-web/servers/agora/stow, one multipart
# request to /dicomweb/studies); within the quiet periods plus a few seconds threshold's SR and
# SEG and stats' SR are in Orthanc in the source study (QIDO-RS), sent back by C-STORE with the
# daemon's AE title, dciodvfy clean. Then the daemon is restarted sending results by STOW-RS
# (--send-stow, Orthanc's own STOW-RS endpoint) and a second study sent by STOW-RS gets its
# results into Orthanc that way. Above the spool watermark STOW-RS answers 503 + Retry-After
# (and storage associations are rejected transient, congestion; C-ECHO still works) while the daemon keeps serving
# (GET /healthz); a wrong content type gets 415.
# Usage: serve_e2e_stow.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
. "$LIB/serve_daemon.sh"
E2E_FLAGS+=(--send-stow --listen-http --spool-watermark)
e2e_begin serve-e2e-stow "$0" "$@"

clinic_home "$AGORA" "$W/keys" "$H" "$EXAMPLES" threshold stats || fail "clinic home"
orthanc_start "$W/pacs" || fail "Orthanc"
STUDY=$(e2e_ct "$W/ct" 8) || fail "synth"
[ "$($PEER upload "$PACS_URL" "$W/ct")" = "$STUDY" ] || fail "upload to Orthanc"
e2e_serve --listen-http "127.0.0.1:$AGORA_HTTP_PORT" --workers 2 || fail "agora serve did not start"
peer_wait_port "$AGORA_HTTP_PORT" 10 || fail "the HTTP listener does not accept"

out=$($PEER stow "$PACS_URL" agora "$STUDY") || fail "Orthanc's STOW-RS to agora: $out"
[ "$out" = "instances=8" ] || fail "stow: $out"
ok "Orthanc sent the 8-instance CT to agora serve by STOW-RS"
e2e_results "$STUDY" 2 1 45 || fail "results in Orthanc"
ok "after ${E2E_TOOK} s: 2 SR and 1 SEG in the source study, sent back by C-STORE as $AGORA_AET, dciodvfy clean"
e2e_wait_jobs done 2 || fail "agora queue"
serve_stop || fail "SIGTERM: exit status $?"

STUDY2=$(e2e_ct "$W/ct2" 6) || fail "synth"
[ "$($PEER upload "$PACS_URL" "$W/ct2")" = "$STUDY2" ] || fail "upload to Orthanc"
e2e_serve --listen-http "127.0.0.1:$AGORA_HTTP_PORT" --send-stow "$PACS_URL/dicom-web" ||
    fail "agora serve --send-stow did not start"
peer_wait_port "$AGORA_HTTP_PORT" 10 || fail "the HTTP listener does not accept"
out=$($PEER stow "$PACS_URL" agora "$STUDY2") || fail "Orthanc's STOW-RS to agora: $out"
e2e_results "$STUDY2" 2 1 45 "" || fail "results sent back by STOW-RS"
ok "with --send-stow: the second study's 2 SR and 1 SEG reached Orthanc by STOW-RS, dciodvfy clean"
serve_stop || fail "SIGTERM: exit status $?"

# Back-pressure over HTTP: above the spool watermark STOW-RS answers 503 with Retry-After and
# the daemon keeps serving (C-ECHO); a wrong content type gets 415.
e2e_serve --listen-http "127.0.0.1:$AGORA_HTTP_PORT" --spool-watermark 1K ||
    fail "agora serve --spool-watermark 1K did not start"
peer_wait_port "$AGORA_HTTP_PORT" 10 || fail "the HTTP listener does not accept"
STOW=http://127.0.0.1:$AGORA_HTTP_PORT/dicomweb/studies
out=$($PEER stow-post "$STOW" multipart "$W/ct2/IM00001.dcm")
case "$out" in "status=503 retry-after="[0-9]*) ;; *) fail "over the watermark, STOW-RS: $out" ;; esac
out=$($PEER stow-post "$STOW" application/dicom "$W/ct2/IM00001.dcm")
case "$out" in status=415*) ;; *) fail "STOW-RS with Content-Type application/dicom: $out" ;; esac
status=$($PY -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).status)' \
    "http://127.0.0.1:$AGORA_HTTP_PORT/healthz") || fail "GET /healthz after the 503"
[ "$status" = 200 ] || fail "GET /healthz: $status"
# A Verification-only association (a health check) is still admitted; one proposing storage is
# rejected transient (congestion).
echoscu -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" || fail "C-ECHO over the watermark"
if storescu -aet MODALITY -aec "$AGORA_AET" 127.0.0.1 "$AGORA_DICOM_PORT" "$W/ct2/IM00001.dcm" >"$W/store.txt" 2>&1; then
    fail "a storage association was accepted over the watermark"
fi
grep -qi "congestion" "$W/store.txt" || fail "over the watermark, C-STORE: $(cat "$W/store.txt")"
kill -0 "$SERVE_PID" || fail "the daemon died"
ok "over the watermark STOW-RS answers 503 with Retry-After, a wrong type 415, a storage association RJ transient (congestion), C-ECHO and /healthz still answer"
serve_stop || fail "SIGTERM: exit status $?"
no_uids_in "$W/serve.log" || fail "a UID in the daemon's log"
ok "SIGTERM exits 0; no UID in the daemon's log"
