#!/bin/sh
# `agora dev new`: scaffolds a project that builds against the SDK with pkg-config and exports
# exactly one symbol; refuses bad names and existing directories.
# usage: dev_new.sh AGORA_EXE SDK_INCLUDE_DIR
set -eu
agora=$1
sdk_inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$tmp"
out=$("$agora" dev new my_plug --json) || fail "dev new failed"
echo "$out" | grep -q '"id":"com.example.my-plug"' || fail "unexpected json: $out"
for f in meson.build src/my_plug.c manifest.json README.md; do
    [ -s "my_plug/$f" ] || fail "missing my_plug/$f"
done
grep -q '@NAME@\|@ID@' -r my_plug && fail "unsubstituted token left"
/usr/bin/python3 -c 'import json,sys; m=json.load(open("my_plug/manifest.json")); assert m["id"]=="com.example.my-plug" and m["abi"]=="1.0" and m["inputs"]["modalities"]==["*"] and m["permissions"]==[] and m["resources"]=={"memory_mb":256,"time_s":30,"threads":1} and m["outputs"]==["measurements"] and "pricing" in m' \
    || fail "manifest content"

# Refusals: existing directory (nothing overwritten), bad names, usage.
echo keep > my_plug/README.md
if "$agora" dev new my_plug 2>err.txt; then fail "overwrote an existing project"; fi
grep -q "already exists" err.txt || fail "no 'already exists' message"
[ "$(cat my_plug/README.md)" = keep ] || fail "existing file was modified"
for bad in 9lives Upper has-dash "" aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "../x"; do
    set +e
    "$agora" dev new "$bad" 2>/dev/null
    rc=$?
    set -e
    [ $rc -eq 2 ] || fail "name '$bad' gave exit $rc, expected 2"
done
"$agora" dev --help | grep -q "dev new NAME" || fail "--help"

# The scaffold builds against the SDK found through pkg-config.
if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
    echo "meson/ninja not available: build check skipped"
    exit 0
fi
mkdir pc
cat > pc/agora-sdk.pc <<PC
Name: agora-sdk
Description: Agora plugin SDK (test copy pointing at the source tree)
Version: 0.1.0
Cflags: -I$sdk_inc -fvisibility=hidden
PC
(cd my_plug && PKG_CONFIG_PATH="$tmp/pc" meson setup build >/dev/null && ninja -C build >/dev/null) \
    || fail "the scaffold does not build"
syms=$(nm -D --defined-only my_plug/build/my_plug.so | awk '{print $3}')
[ "$syms" = agora_plugin_entry ] || fail "exported symbols: $syms"
echo "ok"
