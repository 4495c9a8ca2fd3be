#!/bin/sh
# Short libFuzzer run (~20 s) of the DICOM reader + native decoder, seeded with the pydicom corpus
# (read-only; new inputs go to a temp dir that is removed afterwards).
set -eu
fuzzer="$1"
seeds="${2:-/usr/lib/python3/dist-packages/pydicom/data/test_files}"
if [ ! -d "$seeds" ]; then
    echo "SKIP: seed corpus $seeds not found (install python3-pydicom)"
    exit 77
fi
work=$(mktemp -d /tmp/agora-fuzz-dicom-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$fuzzer" -max_total_time=20 -rss_limit_mb=2048 -max_len=1048576 -timeout=10 \
    -print_final_stats=1 "$work" "$seeds"
