#!/bin/bash
# The developer guide's loop, verbatim in spirit: agora dev new, build with pkg-config (against
# this build tree's agora-sdk.pc), agora dev run on a synthetic folder.
# Usage: newcomer.sh AGORA BUILD_SDK_DIR
set -euo pipefail
AGORA=$1 SDKPC=$2
T=$(mktemp -d /tmp/agora-newcomer.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
"$AGORA" dev new brightness >/dev/null
cd brightness
PKG_CONFIG_PATH=$SDKPC meson setup build >/dev/null
ninja -C build >/dev/null
"$AGORA" dicom synth --modality CT --slices 4 --rows 32 --cols 32 -o "$T/samples" >/dev/null
"$AGORA" dev run --plugin build/brightness.so "$T/samples" >out.txt 2>err.txt || { cat err.txt; exit 1; }
grep -q "ok" err.txt
echo "ok: scaffold -> pkg-config build -> sandboxed run"
