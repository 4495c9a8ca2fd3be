#!/bin/bash
# Benchmark (not a test; issue 12): receive time of a 300-slice 512x512 CT over C-STORE on
# loopback, `agora serve` against DCMTK's storescp receiving the same files in the same run,
# both sent by dcmsend with the same max PDU (128 KiB). storescp cannot bind an address, so the
# whole run happens in a private network namespace holding only lo (test-peers.md). Medians
# of REPEATS runs, alternating; every agora run starts from an empty home (no duplicates).
# Note: agora serve fsyncs every file, its directory and its SQLite row before it answers;
# storescp (as run by peers) writes without fsync.
# Usage: bench_serve.sh AGORA [REPEATS] [SLICES]
set -euo pipefail
AGORA=$1
REPEATS=${2:-3}
SLICES=${3:-300}
if [ -z "${AGORA_BENCH_NETNS:-}" ]; then
    exec env AGORA_BENCH_NETNS=1 unshare --net --fork "$0" "$@"
fi
ip link set lo up
for t in storescp dcmsend; do
    command -v $t >/dev/null || { echo "bench-serve: $t not installed (dcmtk)"; exit 77; }
done
W=$(mktemp -d /tmp/agora-bench-serve.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
"$AGORA" dicom synth --modality CT --slices "$SLICES" --seed 7 -o "$W/ct" >/dev/null
MB=$(du -sm "$W/ct" | cut -f1)
PORT=11190
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-serve: receiver did not listen"
    exit 1
}
send() { # seconds of one dcmsend of the whole series
    local t0 t1
    t0=$(date +%s.%N)
    dcmsend -aet MODALITY -aec AGORA --max-pdu 131072 127.0.0.1 $PORT "$W"/ct/*.dcm
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
run_agora() {
    rm -rf "$W/home"
    "$AGORA" serve --home "$W/home" --listen-dicom 127.0.0.1:$PORT --max-pdu 128K 2>"$W/serve.log" &
    PID=$!
    wait_port
    send
    kill $PID; wait $PID; PID=
    n=$(find "$W/home/spool/in" -type f | wc -l)
    [ "$n" = "$SLICES" ] || { echo "bench-serve: agora stored $n of $SLICES" >&2; exit 1; }
}
run_storescp() {
    rm -rf "$W/scp"; mkdir -p "$W/scp"
    storescp -aet AGORA --max-pdu 131072 -od "$W/scp" $PORT &
    PID=$!
    wait_port
    send
    kill $PID; wait $PID 2>/dev/null || true; PID=
    n=$(find "$W/scp" -type f | wc -l)
    [ "$n" = "$SLICES" ] || { echo "bench-serve: storescp stored $n of $SLICES" >&2; exit 1; }
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$W/a"; : >"$W/s"
for _ in $(seq 1 "$REPEATS"); do
    run_storescp >>"$W/s"
    run_agora >>"$W/a"
done
A=$(median <"$W/a")
S=$(median <"$W/s")
printf 'bench-serve: %d-slice CT, %d MB, dcmsend over loopback, median of %d\n' "$SLICES" "$MB" "$REPEATS"
printf '  storescp (baseline)  %6.2f s  %6.1f MB/s   runs: %s\n' "$S" "$(awk -v m="$MB" -v t="$S" 'BEGIN { print m / t }')" "$(tr '\n' ' ' <"$W/s")"
printf '  agora serve          %6.2f s  %6.1f MB/s   runs: %s\n' "$A" "$(awk -v m="$MB" -v t="$A" 'BEGIN { print m / t }')" "$(tr '\n' ' ' <"$W/a")"
printf '  ratio agora/storescp %6.2f   (target <= 1.2)\n' "$(awk -v a="$A" -v s="$S" 'BEGIN { print a / s }')"
