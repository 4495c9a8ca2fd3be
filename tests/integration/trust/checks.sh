# What the trust CLI tests share (sourced by cli_test.sh and rotation_test.sh, after they
# resolved their arguments): a temp dir T, removed on exit, as the working directory; a default
# home that is never used; the counters n and fails; the checks, which print FAIL lines and count.
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export AGORA_HOME="$T/unused-default-home"
fails=0
n=0
ok() { # ok DESCRIPTION CMD... : must exit 0
    local what=$1
    shift
    n=$((n + 1))
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL: $what: exit $rc from: $*"
        cat "$T/out" "$T/err"
        fails=$((fails + 1))
        return 1
    fi
    return 0
}

refused() { # refused DESCRIPTION EXPECTED_SUBSTRING CMD... : must exit 1 naming the cause
    local what=$1 expect=$2
    shift 2
    n=$((n + 1))
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne 1 ]; then
        echo "FAIL: $what: expected exit 1, got $rc from: $*"
        cat "$T/out" "$T/err"
        fails=$((fails + 1))
        return 1
    fi
    if ! grep -qF -- "$expect" "$T/err"; then
        echo "FAIL: $what: message does not say '$expect':"
        cat "$T/err"
        fails=$((fails + 1))
        return 1
    fi
    return 0
}

usage_error() { # usage_error DESCRIPTION EXPECTED_SUBSTRING CMD... : must exit 2 saying why
    local what=$1 expect=$2
    shift 2
    n=$((n + 1))
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -ne 2 ] || ! grep -qF -- "$expect" "$T/err"; then
        echo "FAIL: $what: expected exit 2 saying '$expect', got $rc:"
        cat "$T/err"
        fails=$((fails + 1))
    fi
}

has() { # has DESCRIPTION FILE SUBSTRING
    n=$((n + 1))
    if ! grep -qF -- "$3" "$2"; then
        echo "FAIL: $1: '$3' not in output:"
        cat "$2"
        fails=$((fails + 1))
    fi
}

lacks() { # lacks DESCRIPTION FILE SUBSTRING
    n=$((n + 1))
    if grep -qF -- "$3" "$2"; then
        echo "FAIL: $1: '$3' must not be in:"
        cat "$2"
        fails=$((fails + 1))
    fi
}
