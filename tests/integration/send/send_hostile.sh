#!/bin/bash
# `agora dicom send` against a hostile SCP (fake_scp.py, in a private network namespace): each
# malformed, oversize, stalled or trickled answer gives a clean error with its class, within
# the --timeout (2 s) plus a margin, and never a crash (ASan/UBSan build).
# Usage: send_hostile.sh AGORA
set -euo pipefail
A=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib/netns_peer.sh"
netns_enter "$0" "$@"
. "$HERE/send_lib.sh"
send_workdir send-hostile
"$A" dicom synth --modality CT --slices 2 --rows 16 --cols 16 -o ct >/dev/null
PORT=11200
# mode, expected exit, expected class
while read -r MODE EXIT CLASS; do
    PORT=$((PORT + 1))
    $PY "$HERE/fake_scp.py" "$MODE" $PORT &
    FAKE=$!
    netns_wait_port $PORT || { fail "$MODE: the fake SCP did not start"; continue; }
    t0=$(date +%s%N)
    rc=0
    "$A" dicom send ct --to PACS@127.0.0.1:$PORT --timeout 2 --json >"$MODE.json" 2>"$MODE.err" || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    got=$(field "$MODE.json" class 2>/dev/null || echo "?")
    if [ $rc = "$EXIT" ] && [ "$got" = "$CLASS" ] && [ $ms -lt 6000 ]; then
        ok "$MODE: exit $rc, class $got, ${ms} ms"
    else
        fail "$MODE: exit $rc (want $EXIT), class $got (want $CLASS), ${ms} ms; $(cat "$MODE.err") $(head -c 600 "$MODE.json")"
    fi
    netns_stop "$FAKE"
    FAKE=
done <<'CASES'
garbage 1 protocol-error
oversize 1 protocol-error
big-ac 1 protocol-error
silent 75 timeout
trickle 75 timeout
close 75 connection-reset
abort 75 association-aborted
rj-transient 75 association-rejected-transient
rj-permanent 1 configuration-error
ac-stall 75 timeout
ac-garbage 1 protocol-error
ac-wrongid 1 protocol-error
CASES
# The timeouts: a stalled peer costs about --timeout, not the default 30 s.
grep -h '"message"' silent.json | head -1 | grep -q "in time" && ok "the timeout message says what happened" ||
    fail "silent message: $(cat silent.json)"
send_done send-hostile
