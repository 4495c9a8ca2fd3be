#!/bin/sh
# One error space (issue 9, item 4): host code returns AGORA_E* or AGORA__ERR(errno), never a
# bare -errno, and compares against the named codes (AGORA__ENOENT), never against -ENOENT —
# that comparison once made an allocation failure (AGORA_ENOMEM == -2 == -ENOENT) read as
# "file missing". Comments are left out of the check (they may name -errno to explain it).
src="${1:?usage: errspace_grep.sh SOURCE_ROOT}"
found=$(grep -rnE '(^|[^A-Za-z0-9_>])-(errno\b|E[A-Z0-9]{2,}\b)' "$src/host" --include='*.c' --include='*.h' |
    grep -vE '^[^:]+:[0-9]+:\s*(/?\*|//)')
if [ -n "$found" ]; then
    echo "bare -errno / -E* codes in host/ (use AGORA__ERR(errno) and AGORA__E*, host/common/common.h):"
    echo "$found"
    exit 1
fi
n=$(grep -rn 'AGORA__ERR(errno)' "$src/host" --include='*.c' | wc -l)
[ "$n" -gt 50 ] || { echo "expected the errno mapping at many call sites, found $n"; exit 1; }
echo "ok: no bare -errno or -E* code in host/ ($n call sites map errno with AGORA__ERR)"
