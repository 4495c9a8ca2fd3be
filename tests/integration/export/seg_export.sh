#!/bin/bash
# DICOM export end to end on the real binaries: the example plugins (threshold, stats, inspect)
# and the results fixture (points, boxes, polygons, 8- and 16-bit masks, findings with
# confidence, measurements, summary, urgent flag) run in the real sandbox on synthetic CT and
# MR; `agora results export --format dicom` writes one SEG per result with masks and one
# Comprehensive 3D SR (TID 1500) per result. Checks on every object: dciodvfy (no "Error" line
# on stderr, rc 0, warnings only from ALLOW below); a second export is byte-identical; real
# Study/source UIDs only, no pseudonymous UID of the plugin view in the bytes. SEG: pydicom
# round trip (the unpacked frames rebuild the stored label mask byte for byte, 8- and 16-bit,
# exact PixelData length, references to the real source series/instances). SR: `dsrdump +Pt`
# shows TID 1500 (DCMR), and sr_check.py checks the content tree against the stored result.
# Orthanc (started here inside a private network namespace, stopped by pid) stores one
# result's SR and SEG sent with dcmsend, and its QIDO-RS (orthanc-dicomweb) finds one SR and
# one SEG series in the study.
# Usage: seg_export.sh AGORA EXAMPLES_DIR VIEW_KEY_HELPER FIXTURES_DIR
set -euo pipefail
A=$1 P=$2 VIEW_KEY=$3 FX=$4
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/agora-segx.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
command -v dciodvfy >/dev/null || { echo "SKIP: dciodvfy (Debian dicom3tools) not installed; run scripts/deps.sh"; exit 77; }
command -v dsrdump >/dev/null || { echo "SKIP: dsrdump (Debian dcmtk) not installed; run scripts/deps.sh"; exit 77; }
$PY -c 'import pydicom, numpy' 2>/dev/null || { echo "SKIP: python3-pydicom/numpy not installed"; exit 77; }
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
q() { "$@" >/dev/null 2>&1 || { echo "command failed: $*"; "$@"; exit 1; }; }

q "$A" keygen --out keys/op
q "$A" keygen --out keys/acme
PLUGINS="$P/threshold $P/stats $P/inspect $FX/results_fixture"
for pl in $PLUGINS; do
    q "$A" pack --manifest "$pl.manifest.json" --plugin "$pl.so" --sign keys/acme.key -o "$(basename "$pl").agora"
    q "$A" certify "$(basename "$pl").agora" --catalog cat --key keys/op.key --vendor-key keys/acme.pub --model free
done
q "$A" init --home "$T/home" --trust keys/op.pub
q "$A" sync cat --home "$T/home"
for id in org.agora.examples.threshold org.agora.examples.stats org.agora.examples.inspect \
    org.agora.tests.results-fixture; do
    q "$A" install $id --home "$T/home"
done
export AGORA_HOME=$T/home
q "$A" dicom synth --modality CT --slices 6 --rows 48 --cols 40 -o studies/ct
q "$A" dicom synth --modality MR --slices 4 --rows 32 --cols 32 -o studies/mr
q "$A" run studies
# A line is the study UID, then a tab and URGENT for urgent studies.
"$A" results studies | cut -f1 >studies.txt
# The pseudonymous UIDs of the plugin view: agora deid with the key `agora run` uses for it.
q "$VIEW_KEY" "$T/home" view.key
q "$A" deid studies -o pseudo --secret view.key
[ "$(wc -l <studies.txt)" -ge 2 ] || fail "expected results for 2 studies, got: $(cat studies.txt)"

# dciodvfy writes everything to stderr; its exit code is not reliable, so check both.
# ALLOW: warnings accepted, one pattern a line, each with its reason.
ALLOW=(
    # IHE AIR asks for Device UID in Contributing Equipment; the IOD does not list it there.
    'Attribute is not present in standard DICOM IOD - \(0x0018,0x1002\) UI Device UID'
    # ... which makes the object a Standard Extended SOP Class (follows from the line above).
    'Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class'
    # SR: private coding schemes (PS3.16 8.2: designators beginning with "99"): 99AGORA names
    # measurements the plugin gave no code, others are the plugin's own (inspect's
    # 99AGORA-INSPECT); each is declared in CodingSchemeIdentificationSequence, but dciodvfy
    # knows only the standard designators.
    'Unrecognized defined term <99[A-Za-z0-9._+-]*> for value 1 of attribute <Coding Scheme Designator>'
)
# The pseudonymous UIDs of the plugin view (from agora deid with the view key), one a line.
$PY - pseudo >pseudo.txt <<'PY'
import glob, sys, pydicom
seen = set()
for p in glob.glob(sys.argv[1] + '/**/*.dcm', recursive=True):
    d = pydicom.dcmread(p, stop_before_pixels=True)
    for k in ('StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'FrameOfReferenceUID'):
        if k in d:
            seen.add(str(getattr(d, k)))
print('\n'.join(sorted(seen)))
PY
[ "$(wc -l <pseudo.txt)" -ge 3 ] || fail "pseudonyms not collected from agora deid"
n=0 n_sr=0 n_seg=0 n_seg16=0
while read -r study; do
    n=$((n + 1))
    out=out$n
    "$A" results export "$study" --format dicom -o "$out" --source studies >list$n.txt 2>err$n.txt ||
        { cat err$n.txt; fail "export dicom of study $n"; continue; }
    "$A" results export "$study" --format dicom -o "${out}b" --source studies >/dev/null 2>&1 ||
        fail "second export of study $n"
    "$A" results show "$study" --json >show$n.json
    n_ok=$($PY -c 'import json,sys; print(sum(r["status"] == "ok" for r in json.load(open(sys.argv[1]))["results"]))' show$n.json)
    [ "$(ls "$out"/sr-*.dcm | wc -l)" -eq "$n_ok" ] || fail "study $n: expected one SR per ok result ($n_ok)"
    ! grep -qxF "$study" pseudo.txt || fail "the real study UID is among the pseudonyms"
    for f in "$out"/*.dcm; do
        base=$(basename "$f" .dcm) kind=${base%%-*} inv=${base#*-}
        cmp -s "$f" "${out}b/$(basename "$f")" || fail "re-export of $(basename "$f") is not byte-identical"
        rc=0
        dciodvfy "$f" >dv.out 2>dv.err || rc=$?
        [ $rc -eq 0 ] || fail "dciodvfy rc $rc on $f: $(cat dv.err)"
        if grep -q '^Error' dv.err; then fail "dciodvfy errors on $f:"; grep '^Error' dv.err; fi
        grep '^Warning' dv.err | grep -Ev "$(IFS='|'; echo "${ALLOW[*]}")" >dv.warn || true
        [ ! -s dv.warn ] || { fail "dciodvfy warnings not in the allow-list on $f:"; cat dv.warn; }
        ! grep -a -F -q -f pseudo.txt "$f" || fail "a pseudonymous UID of the plugin view is in $f"
        grep -a -F -q "$study" "$f" || fail "the real study UID is not in $f"
        if [ "$kind" = seg ]; then
            n_seg=$((n_seg + 1))
            grep -q '^Segmentation' dv.err || fail "dciodvfy did not recognise $f as Segmentation"
            $PY "$HERE/seg_check.py" "$f" "$inv" show$n.json "$T/home" studies "$study" >seg.out ||
                { cat seg.out; fail "pydicom SEG checks on $f"; }
            cat seg.out
            grep -q '16-bit' seg.out && n_seg16=$((n_seg16 + 1))
        else
            n_sr=$((n_sr + 1))
            grep -q '^Comprehensive3DSR' dv.err || fail "dciodvfy did not recognise $f as Comprehensive3DSR"
            dsrdump +Pt "$f" >dsr.out 2>&1 || fail "dsrdump failed on $f"
            grep -q '# TID 1500 (DCMR)' dsr.out || fail "dsrdump +Pt does not show TID 1500 (DCMR) in $f"
            $PY "$HERE/sr_check.py" "$f" "$inv" show$n.json "$T/home" studies "$study" "$out" >sr.out ||
                { cat sr.out; fail "pydicom SR checks on $f"; }
            cat sr.out
        fi
    done
done <studies.txt
[ $n -ge 2 ] || fail "no study exported"
# 4 plugins on 2 studies; threshold and the fixture have masks, the fixture's include 16 bits.
[ $n_sr -eq 8 ] || fail "expected 8 SRs (4 plugins x 2 studies), got $n_sr"
[ $n_seg -eq 4 ] || fail "expected 4 SEGs (threshold and fixture x 2 studies), got $n_seg"
[ $n_seg16 -eq 2 ] || fail "expected the fixture's 16-bit mask in 2 SEGs, got $n_seg16"
echo "ok: $n_sr SR, $n_seg SEG checked"

# A real PACS: Orthanc + DICOMweb inside a private network namespace.
if ! command -v Orthanc >/dev/null || ! ls /usr/lib/orthanc/libOrthancDicomWeb.so* >/dev/null 2>&1 ||
    ! command -v dcmsend >/dev/null || ! command -v curl >/dev/null; then
    echo "SKIPPED PART: Orthanc/orthanc-dicomweb/dcmsend/curl not installed (scripts/deps.sh)"
elif ! unshare --net --fork true 2>/dev/null; then
    echo "SKIPPED PART: cannot create a network namespace (unshare --net) here"
else
    # One result's SR and SEG (the fixture's, on the first study): QIDO must find exactly one
    # series of each in the source study.
    study=$(head -1 studies.txt)
    inv=$($PY -c 'import json,sys; print([r["invocation_id"] for r in json.load(open(sys.argv[1]))["results"] if r["plugin"]["id"] == "org.agora.tests.results-fixture"][0])' show1.json)
    unshare --net --fork bash "$HERE/pacs_store.sh" "$T/pacs" "$study" studies out1/sr-$inv.dcm \
        out1/seg-$inv.dcm >pacs.txt 2>&1 || { cat pacs.txt; fail "storing into Orthanc"; }
    grep -q '^SEG=1 ' pacs.txt || { cat pacs.txt; fail "QIDO-RS must find one SEG series in the study"; }
    grep -q ' SR=1$' pacs.txt || { cat pacs.txt; fail "QIDO-RS must find one SR series in the study"; }
    echo "ok: PACS: $(tail -1 pacs.txt)"
fi
echo "$fails failure(s)"
[ $fails -eq 0 ]
