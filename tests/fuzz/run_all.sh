#!/bin/bash
# libFuzzer runs of every fuzz target in the build: each target runs SECONDS, starting from its
# checked-in seed corpus tests/fuzz/seeds/<target>/ (read-only here) and, for the targets that
# parse DICOM, the pydicom test files when installed. New inputs land in a scratch corpus.
#   run_all.sh BUILD/tests/fuzz [SECONDS] [merge]
# The test command's fuzz stage runs 8 s per target; `ninja -C BUILD fuzz-long` runs 300 s per
# target with `merge`: afterwards the inputs that add coverage are merged back into the seed
# directories (libFuzzer -merge=1; files over 64 KiB are left out), so that every later run,
# CI's included, starts from what earlier runs found. Commit the grown seeds/ afterwards.
# A crash, leak or timeout fails the run; the reproducer is left in the work directory.
set -uo pipefail
DIR=${1:?usage: run_all.sh FUZZ_BUILD_DIR [SECONDS] [merge]}
SECS=${2:-8}
MERGE=${3:-}
SEEDS=$(cd "$(dirname "$0")" && pwd)/seeds
CORPUS=/usr/lib/python3/dist-packages/pydicom/data/test_files
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
    [ -d "$SEEDS/$name" ] && seeds+=("$SEEDS/$name")
    case $name in
    fuzz_dicom | fuzz_deid_apply) [ -d "$CORPUS" ] && seeds+=("$CORPUS") ;;
    esac
    [ -d "$SEEDS/$name" ] || echo "note: $name has no seed directory (tests/fuzz/make_seeds.py)"
    if (cd "$WORK/$name" && "$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
        -max_len=1048576 corpus "${seeds[@]}" >log.txt 2>&1); then
        echo "ok: $name ($(grep -c . "$WORK/$name/log.txt") log lines, ${SECS}s)"
    else
        echo "not ok: $name — see $WORK/$name/log.txt"
        tail -20 "$WORK/$name/log.txt"
        failed=1
        continue
    fi
    if [ "$MERGE" = merge ]; then
        mkdir -p "$SEEDS/$name"
        # Small inputs only: the seed corpus is checked in.
        find "$WORK/$name/corpus" -type f -size +64k -delete
        before=$(find "$SEEDS/$name" -type f | wc -l)
        if (cd "$WORK/$name" && "$t" -merge=1 -rss_limit_mb=2048 -timeout=10 "$SEEDS/$name" \
            corpus >merge.txt 2>&1); then
            find "$SEEDS/$name" -type f -size +64k -delete
            after=$(find "$SEEDS/$name" -type f | wc -l)
            echo "   merged: $name seeds $before -> $after"
        else
            echo "not ok: merging $name — see $WORK/$name/merge.txt"
            failed=1
        fi
    fi
done
[ $failed = 0 ] && rm -rf "$WORK"
exit $failed
