#!/bin/sh
# Install what Agora needs to build and test on Debian 12 (run as root). Idempotent: does
# nothing when everything is present. Required packages must install; optional ones (used only
# by some tests, which then skip with a reason) are installed best-effort.
set -eu
REQUIRED="build-essential clang meson ninja-build pkg-config protobuf-c-compiler libprotobuf-c-dev
libuv1-dev libseccomp-dev libjansson-dev libcmocka-dev libsodium-dev libsqlite3-dev sqlite3
zlib1g-dev libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev libclang-rt-14-dev
libmicrohttpd-dev libcurl4-openssl-dev
dcmtk libgdcm-tools python3 python3-pydicom python3-numpy bubblewrap util-linux"
# The AI examples (plugins-examples/onnx-segment, torch-segment; their test skips without them):
# OpenCV's DNN module and libtorch, about 800 MB installed with their dependencies.
# postgresql: the job queue's SQL checked on PostgreSQL (queue-sql-postgres skips without it).
OPTIONAL="python3-jsonschema libopenjph-dev hyperfine dicom3tools orthanc orthanc-dicomweb curl
libopencv-dnn-dev libtorch-dev postgresql"

missing() {
    out=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p"
    done
    echo "$out"
}

need=$(missing $REQUIRED)
want=$(missing $OPTIONAL)
# Node.js and npm (FHIR schema validation) may come from Debian or from elsewhere: check commands.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    want="$want nodejs npm"
fi
[ -z "$need$want" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    if [ -n "$need" ]; then
        echo "deps: missing packages:$need -- run this script as root to install them" >&2
        exit 1
    fi
    echo "deps: optional packages missing:$want (some tests will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ -n "$need" ]; then
    echo "deps: installing$need"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
for p in $want; do
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $p >/dev/null 2>&1 ||
        echo "deps: optional package $p could not be installed; the tests that need it will skip" >&2
done
