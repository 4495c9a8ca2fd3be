#!/bin/bash
# The peer harness of the `agora serve` end-to-end tests (tests/lib/netns_peer.sh, peer.py),
# checked against DCMTK alone, without the daemon, so a broken peer setup is told apart from a
# daemon bug: the test runs in its own network namespace (only lo, up; Orthanc and storescp
# listen on loopback of that namespace only); Orthanc starts from the generated config and
# answers REST; a synthetic CT uploaded over REST is found by QIDO-RS; Orthanc's C-STORE to its
# "agora" modality reaches DCMTK's storescp listening as the agora AE; DCMTK storescu into
# Orthanc is recorded with its calling AE (RemoteAET); Orthanc's STOW-RS client reaches the
# "agora" DICOMweb server entry; Orthanc stopped refuses connections and, restarted on the
# same storage, still holds the study; the "refusing" config rejects the agora AE's C-STOREs.
# The result checks of the daemon tests (results_check: SR/SEG instances in the source study by
# QIDO-RS, sent by the agora AE, dciodvfy clean) are checked on what the daemon will do by hand:
# `agora run` + `agora results export --format dicom` + dcmsend as the agora AE.
# Usage: serve_harness.sh AGORA EXAMPLES_DIR
set -euo pipefail
LIB=$(cd "$(dirname "$0")/../../lib" && pwd)
. "$LIB/serve_daemon.sh"
peer_require_orthanc
peer_require storescu storescp dcmsend
netns_enter "$0" "$@"
AGORA=$(realpath "$1") EXAMPLES=$(realpath "$2")
W=$(mktemp -d /tmp/agora-serve-harness.XXXXXX)
SINK=
cleanup() {
    [ -n "$SINK" ] && kill "$SINK" 2>/dev/null && wait "$SINK" 2>/dev/null || true
    peer_cleanup
    rm -rf "$W"
}
trap cleanup EXIT
fail() {
    echo "not ok: $*"
    for f in "$W"/pacs/orthanc.log "$W"/scp.log; do
        [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }
    done
    exit 1
}
ok() { echo "ok: $*"; }

[ -n "$(ip netns identify $$)" ] || fail "not inside a named network namespace"
[ "$(ip -o link show | grep -vc ': lo:')" = 0 ] || fail "the namespace has links other than lo"
ip -o link show lo | grep -q 'UP' || fail "lo is not up"
ok "own network namespace $(ip netns identify $$), only lo, up"

t0=$(date +%s.%N)
orthanc_start "$W/pacs" || fail "Orthanc did not start"
ok "Orthanc answers REST after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s"

"$AGORA" dicom synth --modality CT --slices 6 --rows 32 --cols 32 -o "$W/ct" >/dev/null
"$AGORA" dicom synth --modality MR --slices 3 --rows 32 --cols 32 -o "$W/mr" >/dev/null
STUDY=$($PEER upload "$PACS_URL" "$W/ct") || fail "REST upload"
[ "$(echo "$STUDY" | wc -l)" = 1 ] || fail "upload: expected one study, got: $STUDY"
[ "$($PEER instances "$PACS_URL" "$STUDY" CT)" = 6 ] || fail "QIDO: CT instances"
[ "$($PEER series "$PACS_URL" "$STUDY" SR)" = 0 ] || fail "QIDO: an SR series in a new study"
ok "REST upload of a 6-slice CT; QIDO-RS finds 6 CT instances and no SR"

storescp_start "$W/scp" "$AGORA_AET" "$AGORA_DICOM_PORT" || fail "storescp"
out=$($PEER store "$PACS_URL" agora "$STUDY") || fail "Orthanc C-STORE to the agora modality: $out"
[ "$out" = "instances=6 failed=0 remote=$AGORA_AET" ] || fail "store: $out"
[ "$(find "$W/scp" -type f | wc -l)" = 6 ] || fail "storescp received $(find "$W/scp" -type f | wc -l) files"
storescp_stop
ok "Orthanc POST /modalities/agora/store: 6 instances to the agora AE (storescp)"

clinic_home "$AGORA" "$W/keys" "$W/home" "$EXAMPLES" threshold stats || fail "clinic home"
"$AGORA" run "$W/ct" --home "$W/home" --quiet >/dev/null || fail "agora run"
"$AGORA" results export "$STUDY" --format dicom --source "$W/ct" -o "$W/results" --home "$W/home" \
    >/dev/null || fail "agora results export"
dcmsend -aet "$AGORA_AET" -aec "$PACS_AET" 127.0.0.1 "$PACS_DICOM_PORT" "$W"/results/*.dcm ||
    fail "dcmsend of the results"
results_check "$STUDY" 2 1 || fail "results_check on results sent by hand"
if results_check "$STUDY" 1 1 2>/dev/null; then fail "results_check accepted a wrong SR count"; fi
ok "by hand (run, export, dcmsend): QIDO-RS finds 2 SR + 1 SEG in the source study, sent by $AGORA_AET, dciodvfy clean"

MR=$("$PY" -c 'import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).StudyInstanceUID)' "$W/mr/IM00001.dcm")
storescu -aet "$AGORA_AET" -aec "$PACS_AET" 127.0.0.1 "$PACS_DICOM_PORT" "$W"/mr/*.dcm ||
    fail "storescu into Orthanc"
[ "$($PEER instances "$PACS_URL" "$MR" MR)" = 3 ] || fail "QIDO: MR instances"
[ "$($PEER remote-aets "$PACS_URL" "$MR" MR)" = "$AGORA_AET" ] || fail "RemoteAET: $($PEER remote-aets "$PACS_URL" "$MR" MR)"
[ "$($PEER sops "$PACS_URL" "$MR" MR | wc -l)" = 3 ] || fail "sops"
n=$($PEER download "$PACS_URL" "$MR" MR "$W/dl") && [ "$n" = 3 ] || fail "download: $n"
ok "storescu into Orthanc as $AGORA_AET: QIDO-RS finds 3 MR instances, RemoteAET is $AGORA_AET"

"$PY" "$LIB/peer.py" stow-sink "$AGORA_HTTP_PORT" "$W/stow.txt" &
SINK=$!
peer_wait_port "$AGORA_HTTP_PORT" 10 || fail "stow sink"
out=$($PEER stow "$PACS_URL" agora "$STUDY") || fail "Orthanc STOW-RS client: $out"
[ "$out" = "instances=9" ] || fail "stow: $out"
grep -q "path=/dicomweb/studies parts=9 type=multipart/related" "$W/stow.txt" ||
    fail "the STOW receiver saw: $(cat "$W/stow.txt")"
kill "$SINK"; wait "$SINK" 2>/dev/null || true; SINK=
ok "Orthanc POST /dicom-web/servers/agora/stow: one multipart/related POST of 9 parts (CT, SR, SEG) to /dicomweb/studies"

orthanc_stop
if storescu -aet "$AGORA_AET" -aec "$PACS_AET" 127.0.0.1 "$PACS_DICOM_PORT" "$W/mr/IM00001.dcm" >"$W/out" 2>&1; then
    fail "storescu succeeded with Orthanc stopped"
fi
grep -qi "refused" "$W/out" || fail "Orthanc stopped: $(cat "$W/out")"
orthanc_start "$W/pacs" || fail "Orthanc restart"
[ "$($PEER instances "$PACS_URL" "$STUDY" CT)" = 6 ] || fail "the study is gone after a restart"
ok "Orthanc stopped: connection refused; restarted on the same storage: the study is still there"
orthanc_stop -9

ORTHANC_ALLOW_AGORA=0 orthanc_config "$W/refuse"
orthanc_start "$W/refuse" || fail "Orthanc (refusing config)"
if storescu -aet "$AGORA_AET" -aec "$PACS_AET" 127.0.0.1 "$PACS_DICOM_PORT" "$W/mr/IM00001.dcm" >"$W/out" 2>&1; then
    fail "the refusing Orthanc accepted a C-STORE from $AGORA_AET"
fi
[ "$($PEER instances "$PACS_URL" "$MR" MR)" = 0 ] || fail "the refusing Orthanc stored the instance"
# Orthanc 1.10 accepts the association and aborts it at the C-STORE (not an RJ): the daemon's
# SCU sees an abort, so the retry test's permanent case uses the wrong called AE below.
grep -qi "aborted" "$W/out" || fail "refusing config: $(cat "$W/out")"
ok "refusing config: Orthanc aborts the association at $AGORA_AET's C-STORE"
if storescu -aet "$AGORA_AET" -aec WRONG_AE 127.0.0.1 "$PACS_DICOM_PORT" "$W/mr/IM00001.dcm" >"$W/out" 2>&1; then
    fail "Orthanc accepted a wrong called AE"
fi
grep -qi "called AE title not recognized" "$W/out" || fail "wrong called AE: $(cat "$W/out")"
ok "wrong called AE: association rejected (called AE title not recognized)"
