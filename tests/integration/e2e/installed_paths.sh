#!/bin/bash
# Installed binaries carry no path of the source tree they were built from (the build tree may
# have tests that use it; an installed agora must not look there). Installs the build into a
# temporary DESTDIR, stripped of debug info as a package would be, and searches every installed
# executable and shared object for the source root.
# Usage: installed_paths.sh BUILD_ROOT SOURCE_ROOT
set -euo pipefail
BUILD=$1 SRC=$2
T=$(mktemp -d /tmp/agora-inst.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "not ok: $*"; exit 1; }
meson install -C "$BUILD" --destdir "$T/root" --no-rebuild --quiet --strip >"$T/install.log" 2>&1 ||
    { tail -20 "$T/install.log"; fail "meson install --destdir"; }
n=0
while IFS= read -r -d '' f; do
    head -c 4 "$f" | grep -q $'\x7fELF' || continue
    n=$((n + 1))
    if strings -a "$f" | grep -F -- "$SRC/" | grep -v -F -- "$BUILD" >"$T/hits"; then
        fail "${f#"$T/root"} carries source paths: $(head -3 "$T/hits" | tr '\n' ' ')"
    fi
done < <(find "$T/root" -type f -print0)
[ "$n" -ge 2 ] || fail "found only $n installed ELF files (expected agora and agora-runner at least)"
[ -x "$(find "$T/root" -path '*/libexec/agora/agora-runner' | head -1)" ] ||
    fail "agora-runner not installed under <libexecdir>/agora"
echo "ok: $n installed ELF files carry no path under $SRC"
