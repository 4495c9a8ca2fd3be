#!/bin/bash
# `agora dicom synth`: without --seed every run is a new study (fresh Study, Series and SOP
# Instance UIDs, so a folder of two synthetic studies holds two); with the same --seed the files
# are byte-identical; a CT and an MR made with one seed are still different studies.
# Usage: synth_uids.sh AGORA
set -euo pipefail
A=$1
T=$(mktemp -d /tmp/agora-synth.XXXXXX)
trap 'rm -rf "$T"' EXIT
synth() { "$A" dicom synth --slices 3 --rows 16 --cols 16 "$@" >/dev/null 2>&1; }
# The three UIDs of a file, from agora dicom dump (tag (0020,000D), (0020,000E), (0008,0018)).
uids() {
    "$A" dicom dump "$1" | grep -iE '^\((0020,000d|0020,000e|0008,0018)\) UI' | sed 's/.*UI \[\([^]]*\)\].*/\1/' | sort
}
synth --modality CT -o "$T/a"
synth --modality CT -o "$T/b"
synth --modality CT --seed 7 -o "$T/s1"
synth --modality CT --seed 7 -o "$T/s2"
synth --modality MR --seed 7 -o "$T/m"
ua=$(uids "$T/a/IM00001.dcm")
ub=$(uids "$T/b/IM00001.dcm")
[ "$(echo "$ua" | wc -l)" -eq 3 ] || { echo "FAIL: dump did not show the three UIDs:"; echo "$ua"; exit 1; }
# No UID of one unseeded run may appear in the other.
common=$(comm -12 <(echo "$ua") <(echo "$ub") | wc -l)
[ "$common" -eq 0 ] || { echo "FAIL: two runs without --seed share $common UIDs"; echo "$ua"; exit 1; }
for f in "$T"/s1/*.dcm; do
    cmp -s "$f" "$T/s2/$(basename "$f")" || { echo "FAIL: --seed 7 twice differs in $(basename "$f")"; exit 1; }
done
[ "$(ls "$T/s1" | wc -l)" -eq 3 ] || { echo "FAIL: expected 3 files"; exit 1; }
um=$(uids "$T/m/IM00001.dcm")
us=$(uids "$T/s1/IM00001.dcm")
[ "$(comm -12 <(echo "$um") <(echo "$us") | wc -l)" -eq 0 ] ||
    { echo "FAIL: a CT and an MR with one seed share UIDs"; exit 1; }
echo "ok: fresh UIDs without --seed ($(echo "$ua" | head -1 | cut -c1-20)... vs $(echo "$ub" | head -1 | cut -c1-20)...), identical bytes with --seed"
