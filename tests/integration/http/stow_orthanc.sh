#!/bin/bash
# Orthanc's STOW-RS client (the DICOMweb plugin) stores 2 synthetic CT instances into the HTTP
# listener (stow_driver: host/http with a spool in a temporary home): Orthanc reports
# InstancesCount 2, both instances are rows of spool.db with the STOW origin marker. Orthanc
# 1.10 cannot bind to loopback only, so everything runs in a private network namespace
# (unshare --net) holding only lo.
# Usage: stow_orthanc.sh AGORA STOW_DRIVER
set -euo pipefail
AGORA=$1
DRIVER=$2
if [ -z "${AGORA_IN_NETNS:-}" ]; then
    command -v Orthanc >/dev/null || { echo "SKIP: Orthanc is not installed (scripts/deps.sh: orthanc, orthanc-dicomweb)"; exit 77; }
    PLUGIN=$(ls /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null | head -1 || true)
    [ -n "$PLUGIN" ] || { echo "SKIP: orthanc-dicomweb is not installed (its STOW-RS client is the peer)"; exit 77; }
    for t in curl sqlite3 ip; do
        command -v $t >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
    done
    unshare --net true 2>/dev/null || { echo "SKIP: cannot create a network namespace (unshare --net needs root)"; exit 77; }
    exec unshare --net --fork env AGORA_IN_NETNS=1 PLUGIN="$PLUGIN" bash "$0" "$@"
fi
ip link set lo up
W=$(mktemp -d /tmp/agora-stow-orthanc.XXXXXX)
OPID=
DPID=
cleanup() {
    [ -n "$OPID" ] && kill "$OPID" 2>/dev/null && wait "$OPID" 2>/dev/null || true
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
fail() {
    echo "not ok: $*"
    echo "--- driver log"; tail -20 "$W/driver.log" || true
    echo "--- orthanc log"; tail -20 "$W/orthanc.log" || true
    exit 1
}
ok() { echo "ok: $*"; }
HTTP=18042
STOW=18080
"$AGORA" dicom synth --modality CT --slices 2 --rows 32 --cols 32 -o "$W/ct" >/dev/null
AGORA_LOG=debug "$DRIVER" "$W/home" port=$STOW >"$W/driver.out" 2>"$W/driver.log" &
DPID=$!
for _ in $(seq 1 100); do grep -q "^port $STOW" "$W/driver.out" && break; sleep 0.1; done
grep -q "^port $STOW" "$W/driver.out" || fail "the listener did not start"
mkdir -p "$W/orthanc"
cat >"$W/orthanc.json" <<JSON
{ "Name": "AGORA_TEST_PACS", "StorageDirectory": "$W/orthanc", "IndexDirectory": "$W/orthanc",
  "Plugins": [ "$PLUGIN" ], "HttpServerEnabled": true, "HttpPort": $HTTP,
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "DicomServerEnabled": false,
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/",
                "Servers": { "agora": [ "http://127.0.0.1:$STOW/dicomweb/" ] } } }
JSON
Orthanc "$W/orthanc.json" >"$W/orthanc.log" 2>&1 &
OPID=$!
for _ in $(seq 1 200); do curl -sf http://127.0.0.1:$HTTP/system >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:$HTTP/system >/dev/null || fail "Orthanc did not start"
IDS=()
for f in "$W"/ct/*; do
    id=$(curl -sf -X POST http://127.0.0.1:$HTTP/instances --data-binary @"$f" |
        sed -n 's/.*"ID" *: *"\([^"]*\)".*/\1/p' | head -1)
    [ -n "$id" ] || fail "uploading a file to Orthanc"
    IDS+=("\"$id\"")
done
RES=$(IFS=,; echo "${IDS[*]}")
ANSWER=$(curl -s -X POST http://127.0.0.1:$HTTP/dicom-web/servers/agora/stow \
    -d "{\"Resources\":[$RES],\"Synchronous\":true}") || fail "Orthanc's STOW-RS call failed"
echo "$ANSWER" | tr -d ' \n' | grep -q '"InstancesCount":"\?2"\?' ||
    fail "Orthanc did not report 2 instances stored: $ANSWER"
N=$(sqlite3 "$W/home/spool/spool.db" "SELECT COUNT(*) FROM spool_instance WHERE calling_ae = 'STOW' AND called_ae = ''")
[ "$N" = 2 ] || fail "spool.db holds $N STOW rows, not 2"
grep -q "2 stored (0 duplicate), 0 refused -> 200" "$W/driver.log" || fail "the listener did not log one request of 2 stored"
echo "note: Orthanc sent a $(grep -o "boundary of [0-9]* characters" "$W/driver.log" | head -1)"
ok "Orthanc's STOW-RS client stored 2 instances (InstancesCount 2, 2 rows in spool.db)"
kill -TERM $DPID
wait $DPID || fail "the listener did not stop cleanly"
DPID=
ok "SIGTERM: clean stop"
