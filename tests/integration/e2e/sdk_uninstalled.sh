#!/bin/bash
# A plugin built against the uninstalled SDK runs: `agora dev new` scaffolds from the build
# tree's template copy, meson finds agora-sdk through the build's meson-uninstalled/ pkg-config
# file (which must carry -I for the SDK header), and `agora dev run` runs the result in the
# sandbox. Needs pkg-config and meson (both required by scripts/deps.sh).
# Usage: sdk_uninstalled.sh AGORA BUILD_ROOT
set -euo pipefail
AGORA=$1 BUILD=$2
T=$(mktemp -d /tmp/agora-sdk-unin.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "not ok: $*"; exit 1; }
command -v pkg-config >/dev/null || { echo "skip: pkg-config not installed (scripts/deps.sh)"; exit 77; }
command -v meson >/dev/null || { echo "skip: meson not on PATH"; exit 77; }
unset AGORA_TEMPLATE_DIR
export PKG_CONFIG_PATH="$BUILD/meson-uninstalled" PKG_CONFIG_LIBDIR=/nonexistent

# The uninstalled file names the SDK header's directory.
cflags=$(pkg-config --cflags agora-sdk) || fail "pkg-config finds no agora-sdk in $PKG_CONFIG_PATH"
inc=""
for f in $cflags; do
    case $f in -I*) [ -f "${f#-I}/agora/agora.h" ] && inc=${f#-I} ;; esac
done
[ -n "$inc" ] || fail "uninstalled agora-sdk.pc has no -I to agora/agora.h (cflags: $cflags)"
echo "ok: uninstalled agora-sdk.pc: -I$inc"

# The pkg-config variables advertise the header's ABI version.
major=$(sed -n 's/^#define AGORA_ABI_VERSION_MAJOR \([0-9]*\).*/\1/p' "$inc/agora/agora.h")
minor=$(sed -n 's/^#define AGORA_ABI_VERSION_MINOR \([0-9]*\).*/\1/p' "$inc/agora/agora.h")
[ "$(pkg-config --variable=abi_major agora-sdk).$(pkg-config --variable=abi_minor agora-sdk)" = \
  "$major.$minor" ] || fail "agora-sdk.pc abi_major/abi_minor differ from agora.h's $major.$minor"
"$AGORA" --version | grep -q "(plugin ABI $major.$minor)" || fail "agora --version ABI is not $major.$minor"
echo "ok: ABI $major.$minor in agora.h, agora-sdk.pc and agora --version"

cd "$T"
"$AGORA" dev new unplug >new.out 2>&1 || { cat new.out; fail "dev new from the build tree"; }
(cd unplug && meson setup build >"$T/setup.out" 2>&1 && ninja -C build >"$T/ninja.out" 2>&1) ||
    { cat "$T/setup.out" "$T/ninja.out" 2>/dev/null | tail -30; fail "building the scaffold against the uninstalled SDK"; }
[ -f unplug/build/unplug.so ] || fail "no unplug.so built"
echo "ok: scaffold built with meson against meson-uninstalled/agora-sdk"

"$AGORA" dicom synth --modality CT --slices 4 --rows 32 --cols 32 --seed 5 -o "$T/in" >/dev/null
"$AGORA" dev run --plugin unplug/build/unplug.so --manifest unplug/manifest.json --json "$T/in" \
    >run.json 2>run.err || { cat run.err; fail "dev run of the uninstalled-SDK plugin"; }
python3 - run.json <<'PY' || fail "dev run output"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["failed"] == 0 and doc["ok"] == 1, doc
assert doc["jobs"][0]["status"] == "ok", doc["jobs"][0]
assert doc["jobs"][0]["result"]["measurements"], doc["jobs"][0]["result"]
PY
echo "ok: the plugin runs under dev run"
