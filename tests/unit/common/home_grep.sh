#!/bin/sh
# One clinic home module (issue 9, item 7): paths under the clinic home come from
# host/common/home.{c,h} (agora__home_path, agora__home_entry_path), never from a module
# formatting "%s/plugins/%s", "%s/secret", ... itself. This fails when a format string names an
# entry of the home.
src="${1:?usage: home_grep.sh SOURCE_ROOT}"
entries='config\.json|secret|deid\.secret|trust|catalog/current|catalog/source|plugins|clinic\.key|clinic\.pub|clinic"|ledger\.db|results'
found=$(grep -rnE "\"%s/($entries)" "$src/host" --include='*.c' --include='*.h' |
    grep -v "^$src/host/common/home")
if [ -n "$found" ]; then
    echo "paths under the clinic home built outside host/common/home.c (use agora__home_path or"
    echo "agora__home_entry_path):"
    echo "$found"
    exit 1
fi
n=$(grep -rnE 'agora__home_(entry_)?path\(' "$src/host" --include='*.c' | grep -vc "^$src/host/common/")
[ "$n" -gt 20 ] || { echo "expected the home module at many call sites, found $n"; exit 1; }
echo "ok: no module formats a clinic home path itself ($n call sites ask host/common/home.c)"
