#!/bin/sh
# Every command listed by `agora --help`, and every subcommand a command's --help lists under
# "subcommands:", answers --help with exit 0 and an unknown option with exit 2 and a message
# naming the option, and every option that takes a value, given without one, with exit 2 and a
# message naming it. The lists are read from the tool itself (its --help, generated from the
# option tables), so a new command or option is covered.
set -u
agora="$1"
tmp=$(mktemp -d /tmp/agora-help-walk-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
v=0
bad() { echo "FAIL: $*"; fail=1; }

check() { # words of the command...
    n=$((n + 1))
    "$agora" "$@" --help >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -eq 0 ] || bad "agora $* --help: exit $rc, expected 0: $(head -c 300 "$tmp/err")"
    grep -q "usage" "$tmp/out" || bad "agora $* --help printed no usage line on stdout"
    cp "$tmp/out" "$tmp/help"
    "$agora" "$@" --no-such-option-x >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] || bad "agora $* --no-such-option-x: exit $rc, expected 2"
    grep -q -- "--no-such-option-x" "$tmp/err" ||
        bad "agora $* --no-such-option-x: the error does not name the option: $(head -c 300 "$tmp/err")"
    # Every option that takes a value, read from the help ("  -o, --out FILE  ..."), given
    # last with no value: exit 2 and the error names it.
    for o in $(sed -n 's/^  \(-., \)\{0,1\} *\(--[a-z][a-z-]*\) [A-Z][A-Za-z0-9_.|@-]* .*/\2/p' "$tmp/help"); do
        v=$((v + 1))
        "$agora" "$@" "$o" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [ $rc -eq 2 ] || bad "agora $* $o (no value): exit $rc, expected 2"
        grep -q -- "$o needs a value" "$tmp/err" ||
            bad "agora $* $o (no value): the error does not name the option: $(head -c 300 "$tmp/err")"
    done
}

"$agora" --help >"$tmp/top" || bad "agora --help failed"
cmds=$(sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p' "$tmp/top")
[ -n "$cmds" ] || bad "agora --help lists no command"
for c in $cmds; do
    check "$c"
    subs=$(sed -n '/^subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' "$tmp/help")
    for s in $subs; do
        check "$c" "$s"
    done
done
[ $n -ge 19 ] || bad "only $n commands and subcommands walked"
[ $v -ge 40 ] || bad "only $v options with a value checked"
echo "walked $n commands and subcommands, $v options with a value"
exit $fail
