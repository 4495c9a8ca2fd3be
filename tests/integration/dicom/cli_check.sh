#!/bin/sh
# `agora dicom` command line: help, usage errors (exit 2), failures (exit 1) with one-line
# messages, and pixels/dump on a corpus file (OUT.json fields).
set -u
agora="$1"
ct=/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm
fail=0
check() { # expected-exit description command...
    want=$1; what=$2; shift 2
    "$@" >/tmp/agora-dicom-cli.$$ 2>&1
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $what: exit $got, expected $want"; cat /tmp/agora-dicom-cli.$$; fail=1
    fi
}
check 0 "dicom --help" "$agora" dicom --help
check 2 "dicom without subcommand" "$agora" dicom
check 2 "unknown subcommand" "$agora" dicom frobnicate
for sub in dump pixels scan; do
    check 0 "$sub --help" "$agora" dicom "$sub" --help
    check 2 "$sub unknown option" "$agora" dicom "$sub" --bogus
done
check 2 "dump without file" "$agora" dicom dump
check 1 "dump missing file" "$agora" dicom dump /nonexistent/file.dcm
lines=$("$agora" dicom dump /nonexistent/file.dcm 2>&1 | wc -l)
[ "$lines" -eq 1 ] || { echo "FAIL: error is not one line"; fail=1; }
tmp=$(mktemp -d /tmp/agora-dicom-cli-XXXXXX)
trap 'rm -rf "$tmp" /tmp/agora-dicom-cli.$$' EXIT
printf 'not dicom' > "$tmp/x.txt"
check 1 "dump of a text file" "$agora" dicom dump "$tmp/x.txt"
if [ -f "$ct" ]; then
    check 0 "dump CT" "$agora" dicom dump "$ct"
    check 0 "dump CT json" "$agora" dicom dump --json "$ct"
    check 0 "pixels CT" "$agora" dicom pixels "$ct" -o "$tmp/ct.raw"
    size=$(stat -c %s "$tmp/ct.raw")
    [ "$size" -eq 32768 ] || { echo "FAIL: CT_small decoded to $size bytes, expected 32768"; fail=1; }
    grep -q '"pixel_type": "i16"' "$tmp/ct.raw.json" || { echo "FAIL: pixel_type"; cat "$tmp/ct.raw.json"; fail=1; }
    grep -q '"rows": 128' "$tmp/ct.raw.json" || { echo "FAIL: rows"; fail=1; }
    check 2 "pixels frame out of range" "$agora" dicom pixels "$ct" -o "$tmp/f" --frame 5
fi
exit $fail
