#!/bin/bash
# Study scope (ABI 1.1, org.agora.study/1) end to end on the real binaries and sandbox: a study
# of 3 MR series of different sizes and a study of 2 CT series (synthetic, joined into studies
# with pydicom). The study fixture (manifest "inputs": {"scope": "study"}) gets ONE job per
# study and reads every series; hello (series scope) still gets one job per series. Through
# `agora dev run` and the clinic path (pack, certify, install, `agora run`). Checks: per-series
# frame counts and sizes as the plugin saw them; the finding on frame 0 of the second series
# and the mask on the last series are stored with the REAL SOP Instance and Series UIDs of the
# right series; a mask across two series and a series index past the end are refused; a
# manifest asking for study scope with ABI 1.0 is refused.
# Usage: study_scope.sh AGORA STUDY_FIXTURE_SO STUDY_MANIFEST HELLO_SO HELLO_MANIFEST
set -euo pipefail
A=$1 SF=$2 SFM=$3 HELLO=$4 HELLOM=$5
export A
T=$(mktemp -d /tmp/agora-study.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
$PY -c 'import pydicom, numpy' 2>/dev/null || { echo "SKIP: python3-pydicom or python3-numpy not installed (scripts/deps.sh)"; exit 77; }
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
q() { "$@" >q.out 2>&1 || { echo "command failed: $*"; cat q.out; exit 1; }; }

q "$A" dicom synth --modality MR --slices 4 --rows 32 --cols 32 --seed 31 -o raw/a1
q "$A" dicom synth --modality MR --slices 3 --rows 24 --cols 40 --seed 32 -o raw/a2
q "$A" dicom synth --modality MR --slices 2 --rows 16 --cols 16 --seed 33 -o raw/a3
q "$A" dicom synth --modality CT --slices 3 --rows 20 --cols 20 --seed 34 -o raw/b1
q "$A" dicom synth --modality CT --slices 2 --rows 28 --cols 20 --seed 35 -o raw/b2
# Join series into studies: the patient and study of each study's first series.
$PY - <<'PY'
import glob, os, pydicom
keys = ("StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
        "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "StudyDescription")
for study, parts in (("A", ("a1", "a2", "a3")), ("B", ("b1", "b2"))):
    first = pydicom.dcmread(sorted(glob.glob(f"raw/{parts[0]}/*.dcm"))[0])
    for k, part in enumerate(parts):
        os.makedirs(f"in/{study}/{part}", exist_ok=True)
        for p in sorted(glob.glob(f"raw/{part}/*.dcm")):
            ds = pydicom.dcmread(p)
            for key in keys:
                if key in first:
                    setattr(ds, key, getattr(first, key))
            ds.SeriesNumber = k + 1
            ds.save_as(f"in/{study}/{part}/{os.path.basename(p)}")
PY

# --- dev run ---------------------------------------------------------------------------------
"$A" dev run --plugin "$SF" --manifest "$SFM" --json in >dev.json 2>dev.err ||
    { cat dev.err; fail "dev run of the study fixture"; }
"$A" dev run --plugin "$HELLO" --manifest "$HELLOM" --json in >hello.json 2>hello.err ||
    { cat hello.err; fail "dev run of hello"; }
$PY - <<'PY' && ok "dev run: one job per study with every series; hello one job per series" ||
import json
d = json.load(open("dev.json"))
assert d["ok"] == 2 and d["failed"] == 0, d
seen = []
for j in d["jobs"]:
    r = j["result"]
    m = {x["name"]: x["value"] for x in r["measurements"]}
    n = sum(1 for k in m if k.endswith(" frames"))
    dims = sorted((m[f"series {i} frames"], m[f"series {i} rows"], m[f"series {i} columns"])
                  for i in range(n))
    seen.append(dims)
    assert r["summary"].endswith("past-the-end series_image EINVAL (image NULL), series_frame "
                                 "NULL; mask across series EINVAL"), r["summary"]
    (f,) = r["findings"]
    assert f["frame"] == m["series 1 first"] == m["series 0 frames"], (f, m)
assert sorted(seen) == sorted([[(2, 16, 16), (3, 24, 40), (4, 32, 32)],
                               [(2, 28, 20), (3, 20, 20)]]), seen
h = json.load(open("hello.json"))
assert h["ok"] == 5 and h["failed"] == 0, h
PY
    fail "dev run checks"

# A study-scope manifest for ABI 1.0 is refused before anything runs.
sed 's/"abi": "1.1"/"abi": "1.0"/' "$SFM" >old.manifest.json
if "$A" dev run --plugin "$SF" --manifest old.manifest.json in >old.out 2>&1; then
    fail "study scope with ABI 1.0 accepted"
else
    grep -q 'inputs.scope' old.out && ok "study scope needs ABI 1.1 (refused, names inputs.scope)" ||
        { cat old.out; fail "study scope with ABI 1.0: unclear message"; }
fi

# A study of 17 series (more than AGORA_STUDY_MAX_SERIES): the study plugin's job is not run,
# one input-error that names the bound; the series-scope plugin still runs on every series.
for k in $(seq 1 17); do
    q "$A" dicom synth --modality CT --slices 1 --rows 8 --cols 8 --seed $((100 + k)) -o raw/c$k
done
$PY - <<'PY'
import glob, os, pydicom
first = pydicom.dcmread(glob.glob("raw/c1/*.dcm")[0])
for k in range(1, 18):
    os.makedirs(f"big/c{k}", exist_ok=True)
    for p in glob.glob(f"raw/c{k}/*.dcm"):
        ds = pydicom.dcmread(p)
        for key in ("StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "StudyTime"):
            setattr(ds, key, getattr(first, key))
        ds.save_as(f"big/c{k}/{os.path.basename(p)}")
PY
if "$A" dev run --plugin "$SF" --manifest "$SFM" --json big >big.json 2>big.err; then
    fail "a 17-series study job ran"
else
    $PY - <<'PY' && ok "17 series: the study job is refused naming the bound of 16" ||
import json
d = json.load(open("big.json"))
assert d["ok"] == 0 and d["failed"] == 1 and len(d["jobs"]) == 1, d
j = d["jobs"][0]
assert j["status"] == "input-error" and "at most 16" in json.dumps(j), j
PY
        { cat big.err; fail "17-series study: outcome"; }
fi

# --- the clinic path -------------------------------------------------------------------------
q "$A" keygen --out keys/op
q "$A" keygen --out keys/vendor
q "$A" pack --manifest "$SFM" --plugin "$SF" --sign keys/vendor.key -o sf.agora
q "$A" pack --manifest "$HELLOM" --plugin "$HELLO" --sign keys/vendor.key -o hello.agora
q "$A" certify sf.agora --catalog cat --key keys/op.key --vendor-key keys/vendor.pub --model per-series --price 5 --currency EUR --vendor-share-bps 7000
q "$A" certify hello.agora --catalog cat --key keys/op.key --vendor-key keys/vendor.pub --model free
q "$A" init --home "$T/home" --trust keys/op.pub
q "$A" sync cat --home "$T/home"
export AGORA_HOME=$T/home
q "$A" install org.agora.tests.study-fixture
q "$A" install org.agora.examples.hello
"$A" run in --json >run.json 2>run.err || { cat run.err; fail "agora run"; }
"$A" results studies --json >studies.json
"$A" usage --json >usage.json
$PY - <<'PY' && ok "run: stored results map job-wide frames to the real SOP instances and series" ||
import glob, json, subprocess, sys, os
import pydicom
real = {}  # SOP UID -> (series UID, study UID, rows, columns)
for p in glob.glob("in/*/*/*.dcm"):
    ds = pydicom.dcmread(p, stop_before_pixels=True)
    real[ds.SOPInstanceUID] = (ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Rows, ds.Columns)
studies = [s["study_uid"] for s in json.load(open("studies.json"))]
assert len(studies) == 2, studies
n_study_jobs = n_hello = 0
for st in studies:
    res = json.loads(subprocess.run([os.environ["A"], "results", "show", st, "--json"],
                                    check=True, capture_output=True).stdout)["results"]
    for r in res:
        assert r["status"] == "ok", r
        if r["plugin"]["id"] == "org.agora.examples.hello":
            n_hello += 1
            assert all("series_uid" not in e for e in r["frames"]), r["frames"]
            continue
        n_study_jobs += 1
        m = {x["name"]: x["value"] for x in r["measurements"]}
        frames = {e["frame"]: e for e in r["frames"]}
        (f,) = r["findings"]
        e = frames[f["frame"]]
        ser, study, rows, cols = real[e["sop_instance_uid"]]
        assert study == st and e["series_uid"] == ser, (e, ser)
        # the frame is in the series the plugin called series 1 (its size says which)
        assert (rows, cols) == (m["series 1 rows"], m["series 1 columns"]), (rows, cols, m)
        assert ser != r["series_uid"], "the finding's frame is in the first series"
        # series 1's frame 0: the first of that series' frames in the host's (position) order
        same = sorted(s for s, v in real.items() if v[0] == ser)
        assert e["sop_instance_uid"] in same and e["frame_number"] == 1
        # the mask lies on the last series, every one of its frames mapped to that series
        (mask,) = [x for x in r["regions"] if x["kind"] == "mask"]
        mk = mask["mask"]
        last = int(max(k.split()[1] for k in m if k.endswith(" frames")))
        assert mk["first_frame"] == m[f"series {last} first"], (mk, m)
        assert (mk["rows"], mk["columns"]) == (m[f"series {last} rows"], m[f"series {last} columns"])
        mask_series = {frames[i]["series_uid"] for i in range(mk["first_frame"],
                                                              mk["first_frame"] + mk["frames"])}
        assert len(mask_series) == 1, mask_series
        (ms,) = mask_series
        assert all(real[frames[i]["sop_instance_uid"]][0] == ms
                   for i in range(mk["first_frame"], mk["first_frame"] + mk["frames"]))
        # the first series is the result's series_uid; its frames carry it too
        assert any(v[0] == r["series_uid"] for v in real.values())
        # every series' pixels reached the plugin unchanged: its sum equals the source files'
        sums = sorted(m[k] for k in m if k.endswith(" sum"))
        want = sorted(float(sum(int(pydicom.dcmread(p).pixel_array.astype("int64").sum())
                                for p in glob.glob(f"in/*/{d}/*.dcm")))
                      for d in {os.path.basename(os.path.dirname(p)) for p in glob.glob("in/*/*/*.dcm")}
                      if pydicom.dcmread(glob.glob(f"in/*/{d}/*.dcm")[0]).StudyInstanceUID == st)
        assert sums == want, (sums, want)
assert n_study_jobs == 2 and n_hello == 5, (n_study_jobs, n_hello)
run = json.load(open("run.json"))
u = {p["plugin_id"]: p for p in json.load(open("usage.json"))["plugins"]}
assert u["org.agora.tests.study-fixture"]["invocations"] == 2, u
# per-series pricing of a study job bills every series of it: 3 + 2
assert u["org.agora.tests.study-fixture"]["billable_units"] == 5, u
assert u["org.agora.examples.hello"]["invocations"] == 5, u
PY
    fail "run checks"

# SEG export of a study-scope mask on another series than the first: refused, clearly.
st=$($PY -c 'import json; print(json.load(open("studies.json"))[0]["study_uid"])')
if "$A" results export "$st" --format seg --source in -o segout >seg.out 2>&1; then
    fail "SEG export of a mask on another series of the study succeeded"
else
    grep -q "another series of the study" seg.out && ok "SEG export of a study-scope mask refused" ||
        { cat seg.out; fail "SEG export refusal: unclear message"; }
fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all study-scope checks passed"
