#!/bin/sh
# Integration: `agora deid --keep cleanDescOpt|cleanStructContOpt|cleanGraphOpt` is refused before
# any file is written (exit 2, the reason and what to do on stderr), never silently downgraded to
# the Basic Profile; without the option the same input is written.
AGORA="$1"
IN=/usr/lib/python3/dist-packages/pydicom/data/charset_files/chrFren.dcm
if [ ! -f "$IN" ]; then
    echo "skip: pydicom charset corpus not found ($IN)"
    exit 77
fi
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
head -c 32 /dev/urandom >"$TMP/secret" && chmod 600 "$TMP/secret"
fail=0
for opt in cleanDescOpt cleanStructContOpt cleanGraphOpt; do
    "$AGORA" deid "$IN" -o "$TMP/out-$opt" --secret "$TMP/secret" --allow-burned-in \
        --keep rtnDevIdOpt --keep "$opt" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then
        echo "FAIL: --keep $opt exited $rc, expected 2"; fail=1
    fi
    if ! grep -q "$opt is not performed" "$TMP/err" || ! grep -q "leave the option out" "$TMP/err"; then
        echo "FAIL: --keep $opt: message does not say why and what to do:"; cat "$TMP/err"; fail=1
    fi
    if [ -n "$(ls -A "$TMP/out-$opt" 2>/dev/null)" ]; then
        echo "FAIL: --keep $opt wrote output"; fail=1
    fi
done
"$AGORA" deid "$IN" -o "$TMP/out-basic" --secret "$TMP/secret" --allow-burned-in \
    --keep rtnDevIdOpt 2>"$TMP/err" || { echo "FAIL: basic run failed:"; cat "$TMP/err"; fail=1; }
[ "$(ls "$TMP/out-basic" | wc -l)" -eq 1 ] || { echo "FAIL: basic run wrote no file"; fail=1; }
"$AGORA" deid --help | grep -q "cleanGraphOpt are refused" || { echo "FAIL: --help"; fail=1; }
[ $fail -eq 0 ] && echo "clean* options refused with a reason; basic run writes"
exit $fail
