#!/bin/bash
# Brief libFuzzer runs of every fuzz target in the build (the test command's fuzz stage):
# each target runs SECONDS, seeded with the pydicom corpus when it is installed. Longer runs:
#   tests/fuzz/run_all.sh BUILD/tests/fuzz 600
# A crash, leak or timeout fails the test; the reproducer is left in the work directory.
set -uo pipefail
DIR=${1:?usage: run_all.sh FUZZ_BUILD_DIR [SECONDS]}
SECS=${2:-8}
CORPUS=/usr/lib/python3/dist-packages/pydicom/data/test_files
SEEDS=$(cd "$(dirname "$0")" && pwd)/seeds
WORK=$(mktemp -d /tmp/agora-fuzz.XXXXXX)
mapfile -t targets < <(find "$DIR" -maxdepth 2 -type f -name 'fuzz_*' -perm -u+x | sort)
if [ ${#targets[@]} -eq 0 ]; then
    echo "no fuzz targets under $DIR (configure with CC=clang -Dfuzz=true)"
    exit 77
fi
failed=0
for t in "${targets[@]}"; do
    name=$(basename "$t")
    mkdir -p "$WORK/$name/corpus"
    seeds=()
    [ -d "$CORPUS" ] && seeds=("$CORPUS")
    # Checked-in seeds, tests/fuzz/seeds/<target>/, where a target has them.
    [ -d "$SEEDS/$name" ] && seeds+=("$SEEDS/$name")
    if (cd "$WORK/$name" && "$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
        -max_len=1048576 corpus "${seeds[@]}" >log.txt 2>&1); then
        echo "ok: $name ($(grep -c . "$WORK/$name/log.txt") log lines, ${SECS}s)"
    else
        echo "not ok: $name — see $WORK/$name/log.txt"
        tail -20 "$WORK/$name/log.txt"
        failed=1
    fi
done
[ $failed = 0 ] && rm -rf "$WORK"
exit $failed
