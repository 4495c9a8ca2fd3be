#!/bin/bash
# Inner part of seg_export.sh, run inside `unshare --net --fork` (a private network namespace
# holding only lo, so Orthanc's 0.0.0.0 sockets are loopback-only). Starts Orthanc, stores the
# source study (storescu) and the exported objects (dcmsend, as AE AGORA), asks QIDO-RS for the
# SEG (and SR) series of the study, stops Orthanc by pid.
# Usage: pacs_store.sh WORKDIR STUDY_UID SOURCE_DIR FILE... ; prints "SEG=<n> SR=<n>".
set -euo pipefail
W=$1 STUDY=$2 SRC=$3
shift 3
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
ip link set lo up
mkdir -p "$W/db"
PLUGIN=$(ls /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null | head -1)
cat >"$W/orthanc.json" <<JSON
{ "Name": "AGORA_TEST_PACS", "StorageDirectory": "$W/db", "IndexDirectory": "$W/db",
  "Plugins": ["$PLUGIN"], "HttpServerEnabled": true, "HttpPort": 18042,
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomServerEnabled": true, "DicomAet": "PACS", "DicomPort": 14242,
  "DicomCheckCalledAet": true, "DicomAlwaysAllowStore": true, "DicomAlwaysAllowEcho": true,
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
H=http://127.0.0.1:18042
Orthanc "$W/orthanc.json" >"$W/orthanc.log" 2>&1 &
OPID=$!
trap 'kill $OPID 2>/dev/null; wait $OPID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do curl -sf $H/system >/dev/null && break; sleep 0.05; done
curl -sf $H/system >/dev/null || { echo "Orthanc did not start"; tail -20 "$W/orthanc.log"; exit 1; }
find "$SRC" -type f -print0 | xargs -0 storescu -aet MODALITY -aec PACS 127.0.0.1 14242
dcmsend -aet AGORA -aec PACS 127.0.0.1 14242 "$@"
count() {
    curl -sf "$H/dicom-web/studies/$STUDY/series?Modality=$1" |
        $PY -c 'import json,sys; t=sys.stdin.read(); print(len(json.loads(t)) if t.strip() else 0)'
}
echo "SEG=$(count SEG) SR=$(count SR)"
