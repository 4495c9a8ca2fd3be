#!/bin/bash
# Benchmark (not a test; issue 12): receive time of a 300-slice 512x512 CT over C-STORE on
# loopback, `agora serve` against DCMTK's storescp receiving the same files in the same run,
# both sent by dcmsend with the same max PDU (128 KiB). storescp cannot bind an address, so the
# whole run happens in a private network namespace holding only lo (test-peers.md). Medians
# of REPEATS runs, alternating; every agora run starts from an empty home (no duplicates).
# Note: agora serve fsyncs every file, its directory and its SQLite row before it answers;
# storescp (as run by peers) writes without fsync.
# Then studies per hour end to end: STUDIES synthetic CT studies (STUDY_SLICES slices of
# 256x256 each, one dcmsend association per study, back to back) go into `agora serve` with the
# example app `stats` installed (no rules: it runs on every series), 2 workers (both cores),
# short quiet periods (1 s); the clock runs from the first C-STORE to the last SR received by a
# storescp standing in for the PACS. MONAI Deploy's stated requirement (400 studies/h) is the
# reference line.
# Usage: bench_serve.sh AGORA EXAMPLES_DIR [REPEATS] [SLICES] [STUDIES] [STUDY_SLICES]
set -euo pipefail
AGORA=$(realpath "$1")
EXAMPLES=$(realpath "$2")
REPEATS=${3:-3}
SLICES=${4:-300}
STUDIES=${5:-20}
STUDY_SLICES=${6:-64}
LIB=$(cd "$(dirname "$(realpath "$0")")/../../lib" && pwd)
if [ -z "${AGORA_BENCH_NETNS:-}" ]; then
    exec env AGORA_BENCH_NETNS=1 unshare --net --fork "$0" "$@"
fi
ip link set lo up
for t in storescp dcmsend; do
    command -v $t >/dev/null || { echo "bench-serve: $t not installed (dcmtk)"; exit 77; }
done
W=$(mktemp -d /tmp/agora-bench-serve.XXXXXX)
PID=
RX=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    [ -n "$RX" ] && kill "$RX" 2>/dev/null && wait "$RX" 2>/dev/null || true
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

# --- studies per hour, end to end ------------------------------------------------------------
if ! "$AGORA" serve --help 2>&1 | grep -q -- --send-to; then
    echo "bench-serve: studies per hour not measured: agora serve has no --send-to yet"
    exit 0
fi
. "$LIB/clinic_home.sh"
PACS_PORT=11191
for i in $(seq 1 "$STUDIES"); do
    "$AGORA" dicom synth --modality CT --slices "$STUDY_SLICES" --rows 256 --cols 256 --seed $((100 + i)) \
        -o "$W/studies/$i" >/dev/null
done
SMB=$(du -sm "$W/studies" | cut -f1)
run_studies() { # seconds from the first C-STORE to the last SR at the receiver
    local t0 t1 n home=$W/shome.$1
    clinic_home "$AGORA" "$W/skeys.$1" "$home" "$EXAMPLES" stats >/dev/null
    rm -rf "$W/rx"; mkdir -p "$W/rx"
    storescp -aet PACS -od "$W/rx" $PACS_PORT >/dev/null 2>&1 &
    RX=$!
    "$AGORA" serve --home "$home" --listen-dicom 127.0.0.1:$PORT --ae-title AGORA \
        --send-to PACS@127.0.0.1:$PACS_PORT --workers 2 --series-quiet 1 --study-quiet 1 \
        2>"$W/serve-studies.log" &
    PID=$!
    wait_port
    t0=$(date +%s.%N)
    for i in $(seq 1 "$STUDIES"); do
        dcmsend -aet MODALITY -aec AGORA 127.0.0.1 $PORT "$W/studies/$i"/*.dcm
    done
    for _ in $(seq 1 36000); do
        n=$(find "$W/rx" -name 'SR*' -type f | wc -l)
        [ "$n" -ge "$STUDIES" ] && break
        kill -0 $PID 2>/dev/null || { echo "bench-serve: agora serve exited" >&2; tail -5 "$W/serve-studies.log" >&2; exit 1; }
        sleep 0.1
    done
    t1=$(date +%s.%N)
    [ "$n" -ge "$STUDIES" ] || { echo "bench-serve: $n of $STUDIES results after 1 h" >&2; exit 1; }
    kill $PID; wait $PID || true; PID=
    kill $RX; wait $RX 2>/dev/null || true; RX=
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
: >"$W/e"
for r in $(seq 1 "$REPEATS"); do run_studies "$r" >>"$W/e"; done
E=$(median <"$W/e")
printf 'bench-serve: %d CT studies of %d slices 256x256 (%d MB), app stats, 2 workers, quiet 1 s, median of %d\n' \
    "$STUDIES" "$STUDY_SLICES" "$SMB" "$REPEATS"
printf '  end to end (first C-STORE to last SR at the PACS) %6.2f s   runs: %s\n' "$E" "$(tr '\n' ' ' <"$W/e")"
printf '  studies per hour     %6.0f   (MONAI Deploy requirement: 400/h; ratio %.2f)\n' \
    "$(awk -v n="$STUDIES" -v t="$E" 'BEGIN { print n * 3600 / t }')" \
    "$(awk -v n="$STUDIES" -v t="$E" 'BEGIN { print n * 3600 / t / 400 }')"
