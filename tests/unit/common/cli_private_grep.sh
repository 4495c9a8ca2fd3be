#!/bin/sh
# The CLI is option parsing and printing on top of the libraries' interfaces (issue 9): no file
# under host/cli includes another module's private header (NAME_int.h, NAME_private.h,
# NAME_internal.h, which live next to that module's sources). What the CLI needs belongs in the
# module's own header (trust.h, results.h, ...). The CLI's own headers have none of these names.
src="${1:?usage: cli_private_grep.sh SOURCE_ROOT}"
[ -d "$src/host/cli" ] || { echo "no $src/host/cli"; exit 1; }
found=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?[^">/]*_(int|private|internal)\.h[">]' \
    "$src/host/cli" --include='*.c' --include='*.h')
if [ -n "$found" ]; then
    echo "host/cli includes a module's private header (move what it needs into the module's"
    echo "public header, e.g. host/trust/trust.h, or give the module a function that does it):"
    echo "$found"
    exit 1
fi
# The pattern must see the headers it is meant to catch: a private header that exists.
n=$(find "$src/host" -path "$src/host/cli" -prune -o -type f \
    \( -name '*_int.h' -o -name '*_private.h' -o -name '*_internal.h' \) -print | wc -l)
[ "$n" -ge 1 ] || { echo "expected private headers under host/, found none"; exit 1; }
echo "ok: no host/cli file includes one of the $n private module headers"
