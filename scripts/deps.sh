#!/bin/sh
# Install what Agora needs to build and test on Debian 12 (run as root). Idempotent: does
# nothing when everything is present.
set -eu
PKGS="build-essential clang meson ninja-build pkg-config protobuf-c-compiler libprotobuf-c-dev
libuv1-dev libseccomp-dev libjansson-dev libcmocka-dev libsodium-dev libsqlite3-dev sqlite3
zlib1g-dev libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev libclang-rt-14-dev
dcmtk libgdcm-tools python3 python3-pydicom python3-numpy python3-jsonschema libopenjph-dev
bubblewrap hyperfine nodejs npm util-linux"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages:$missing -- run this script as root to install them" >&2
        exit 1
    fi
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
