#!/bin/sh
# `agora init` with the default home (a fresh HOME, no AGORA_HOME, no XDG_DATA_HOME), then the
# clinic commands with no --home and no AGORA_HOME: every one finds ~/.local/share/agora (the
# ones that need a catalog or a plugin fail for that reason, not for the home).
set -u
agora="$1"
tmp=$(mktemp -d /tmp/agora-default-home-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
run() { # expected-exit command words...
    want=$1; shift
    env -u AGORA_HOME -u XDG_DATA_HOME HOME="$tmp/home" "$agora" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -eq "$want" ] || bad "agora $*: exit $rc, expected $want: $(head -c 400 "$tmp/err")"
    if grep -q "no clinic home" "$tmp/err"; then bad "agora $* lost the home"; fi
}
mkdir -p "$tmp/home"
run 0 keygen --out "$tmp/op"
run 0 init --trust "$tmp/op.pub"
[ -d "$tmp/home/.local/share/agora" ] || bad "init did not create ~/.local/share/agora"
period=$(date -u +%Y-%m)
run 0 list
run 0 list --json
run 0 usage
run 0 usage --json --period "$period"
run 0 statement --period "$period"
run 0 results studies
run 0 ledger verify
run 0 ledger export --period "$period" -o "$tmp/export.json"
[ -s "$tmp/export.json" ] || bad "ledger export wrote nothing"
run 0 ledger export
run 0 ledger verify --json
run 0 results studies --json
run 0 results show 1.2.3
run 0 results export 1.2.3 --format json -o "$tmp/results.json"
run 0 results export 1.2.3 --format fhir
# The commands that need a catalog or a plugin fail for that reason (exit 1), never for the home.
mkdir -p "$tmp/in"
run 1 run "$tmp/in"
grep -q "no installed plugin can run" "$tmp/err" || bad "run: $(head -c 300 "$tmp/err")"
run 1 sync "$tmp/no-catalog"
run 1 install com.example.none
run 1 remove com.example.none
exit $fail
