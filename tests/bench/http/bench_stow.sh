#!/bin/bash
# Benchmark (not a test; issue 12): STOW-RS receive time of a synthetic CT sent as ONE
# multipart/related request by curl on loopback: our HTTP listener (stow_driver: host/http with
# a spool; every part fsynced and recorded before the answer) against Orthanc's own STOW-RS
# server (DICOMweb plugin) receiving the same body in the same run. Orthanc cannot bind an
# address, so the run happens in a private network namespace holding only lo. Medians of
# REPEATS runs, alternating; each run starts from an empty home / empty Orthanc storage.
# Usage: bench_stow.sh AGORA STOW_DRIVER [REPEATS] [SLICES]
set -euo pipefail
AGORA=$1
DRIVER=$2
REPEATS=${3:-3}
SLICES=${4:-300}
if [ -z "${AGORA_BENCH_NETNS:-}" ]; then
    exec env AGORA_BENCH_NETNS=1 unshare --net --fork "$0" "$@"
fi
ip link set lo up
command -v Orthanc >/dev/null && command -v curl >/dev/null ||
    { echo "bench-stow: Orthanc and curl are needed (the baseline)"; exit 77; }
PLUGIN=$(ls /usr/lib/orthanc/libOrthancDicomWeb.so* 2>/dev/null | head -1 || true)
[ -n "$PLUGIN" ] || { echo "bench-stow: orthanc-dicomweb is needed (the baseline)"; exit 77; }
W=$(mktemp -d /tmp/agora-bench-stow.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
"$AGORA" dicom synth --modality CT --slices "$SLICES" --seed 7 -o "$W/ct" >/dev/null
/usr/bin/python3 - "$W" <<'PY'
import os, sys
w = sys.argv[1]
with open(os.path.join(w, "body"), "wb") as out:
    for f in sorted(os.listdir(os.path.join(w, "ct"))):
        out.write(b"--benchB\r\nContent-Type: application/dicom\r\n\r\n")
        out.write(open(os.path.join(w, "ct", f), "rb").read())
        out.write(b"\r\n")
    out.write(b"--benchB--\r\n")
PY
MB=$(( $(stat -c %s "$W/body") / 1048576 ))
post() { # seconds of one POST of the body; the answer must be 200
    local code
    code=$(curl -s -o "$W/answer" -w '%{http_code} %{time_total}' -X POST "$1" \
        -H 'Content-Type: multipart/related; type="application/dicom"; boundary=benchB' \
        -H 'Accept: application/dicom+json' --data-binary @"$W/body")
    [ "${code%% *}" = 200 ] || { echo "bench-stow: $1 answered ${code%% *}"; exit 1; }
    echo "${code#* }"
}
agora_run() {
    rm -rf "$W/home"
    "$DRIVER" "$W/home" port=18080 >"$W/drv.out" 2>"$W/drv.log" &
    PID=$!
    for _ in $(seq 1 100); do grep -q '^port' "$W/drv.out" && break; sleep 0.05; done
    post http://127.0.0.1:18080/dicomweb/studies
    kill -TERM $PID; wait $PID; PID=
}
orthanc_run() {
    rm -rf "$W/orthanc"; mkdir -p "$W/orthanc"
    cat >"$W/orthanc.json" <<JSON
{ "StorageDirectory": "$W/orthanc", "IndexDirectory": "$W/orthanc", "Plugins": [ "$PLUGIN" ],
  "HttpPort": 18042, "RemoteAccessAllowed": false, "DicomServerEnabled": false,
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
    Orthanc "$W/orthanc.json" >"$W/orthanc.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 200); do curl -sf http://127.0.0.1:18042/system >/dev/null && break; sleep 0.05; done
    post http://127.0.0.1:18042/dicom-web/studies
    kill -TERM $PID; wait $PID || true; PID=
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
A=(); O=()
for _ in $(seq 1 "$REPEATS"); do
    O+=("$(orthanc_run)")
    A+=("$(agora_run)")
done
ma=$(printf '%s\n' "${A[@]}" | median)
mo=$(printf '%s\n' "${O[@]}" | median)
echo "bench-stow: $SLICES instances, $MB MB in one STOW-RS request, medians of $REPEATS"
echo "  Orthanc STOW-RS (baseline): ${mo} s  (runs: ${O[*]})"
echo "  agora HTTP listener:        ${ma} s  (runs: ${A[*]})"
awk -v a="$ma" -v o="$mo" -v mb="$MB" 'BEGIN { printf "  ratio agora/Orthanc: %.2f; agora %.1f MB/s\n", a / o, mb / a }'
