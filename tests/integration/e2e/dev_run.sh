#!/bin/bash
# agora dev run, end to end through the real sandbox: every example plugin and the plugin built
# against the frozen ABI 1.0 header run on synthetic CT and MR series; a failing plugin gives a
# non-zero exit and one clear line; --json is machine-readable.
# Usage: dev_run.sh AGORA PLUGIN_DIR ABI_V1_SO ABI_V1_SRC_DIR
set -euo pipefail
AGORA=$1 PLUGINS=$2 V1=$3
T=$(mktemp -d /tmp/agora-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "not ok: $*"; exit 1; }

"$AGORA" dicom synth --modality CT --slices 12 --rows 96 --cols 96 --seed 11 -o "$T/in/ct" >/dev/null
"$AGORA" dicom synth --modality MR --slices 6 --rows 64 --cols 80 --seed 12 -o "$T/in/mr" >/dev/null

for p in hello stats threshold inspect; do
    "$AGORA" dev run --plugin "$PLUGINS/$p.so" --json "$T/in" >"$T/$p.json" 2>"$T/$p.err" ||
        { cat "$T/$p.err"; fail "dev run $p"; }
    /usr/bin/env python3 - "$T/$p.json" "$p" <<'PY' || fail "dev run $p output"
import json, sys
doc, name = json.load(open(sys.argv[1])), sys.argv[2]
assert doc["failed"] == 0 and doc["ok"] == 2, doc
for job in doc["jobs"]:
    assert job["status"] == "ok", job
    r = job["result"]
    if name == "hello":
        assert any(m["name"] == "frames" for m in r["measurements"])
    if name == "stats":
        names = {m["name"] for m in r["measurements"]}
        assert {"minimum", "maximum", "mean", "median"} <= names, names
    if name == "threshold":
        assert any(x["kind"] == "mask" for x in r["regions"]), r["regions"]
        assert any(m["name"] == "largest component volume" and m["unit"] == "mL" and m["value"] > 0
                   for m in r["measurements"])
    if name == "inspect":
        codes = {f["code"]["code"]: f["code"]["meaning"] for f in r["findings"]}
        for forbidden in ("PatientName", "PatientID", "StudyDate", "InstitutionName",
                          "StudyDescription", "AccessionNumber"):
            assert forbidden not in codes, forbidden
        assert codes["image.study_uid"].startswith("2.25."), codes["image.study_uid"]
print("ok:", name)
PY
done

# The isolating modes give the same results: a runner per job, and a fork of the zygote per job.
for mode in --fresh-per-job --fork-per-job; do
    "$AGORA" dev run --plugin "$PLUGINS/threshold.so" --json $mode "$T/in" >"$T/m.json" 2>"$T/m.err" ||
        { cat "$T/m.err"; fail "dev run $mode"; }
    /usr/bin/env python3 - "$T/m.json" "$T/threshold.json" "$mode" <<'PY' || fail "dev run $mode output"
import json, sys
doc, warm = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert doc["failed"] == 0 and doc["ok"] == 2, doc
def vols(d):
    return sorted(m["value"] for j in d["jobs"] for m in j["result"]["measurements"]
                  if m["name"] == "largest component volume")
assert vols(doc) == vols(warm), (vols(doc), vols(warm))
print("ok: threshold", sys.argv[3])
PY
done
if "$AGORA" dev run --plugin "$PLUGINS/hello.so" --fresh-per-job --fork-per-job "$T/in" \
    >"$T/both.out" 2>&1; then
    fail "--fresh-per-job with --fork-per-job accepted"
fi
grep -q "choose one" "$T/both.out" || fail "--fresh-per-job with --fork-per-job: no clear line"
echo "ok: --fresh-per-job and --fork-per-job exclude each other"

# A plugin compiled against the frozen v1.0 header still loads and exercises every service.
cat >"$T/v1.manifest.json" <<'JSON'
{"id": "org.agora.tests.abi-v1", "name": "ABI v1", "vendor": "Agora tests", "version": "1.0.0",
 "abi": "1.0", "description": "Frozen ABI 1.0 plugin", "inputs": {"modalities": ["*"]},
 "permissions": [], "resources": {"memory_mb": 64, "time_s": 20, "threads": 1},
 "outputs": ["findings", "measurements", "regions", "summary"]}
JSON
"$AGORA" dev run --plugin "$V1" --manifest "$T/v1.manifest.json" "$T/in/mr" >"$T/v1.out" 2>&1 ||
    { cat "$T/v1.out"; fail "frozen v1 plugin"; }
grep -q "v1.0 plugin ran" "$T/v1.out" || fail "frozen v1 plugin summary"
echo "ok: frozen ABI 1.0 plugin"

# A manifest whose id differs from the descriptor's is refused at load, with a clear line.
sed 's/org.agora.tests.abi-v1/org.agora.tests.other/' "$T/v1.manifest.json" >"$T/bad.manifest.json"
if "$AGORA" dev run --plugin "$V1" --manifest "$T/bad.manifest.json" "$T/in/mr" >"$T/bad.out" 2>&1; then
    fail "id mismatch accepted"
fi
grep -q "they must match" "$T/bad.out" || { cat "$T/bad.out"; fail "id mismatch reason"; }
echo "ok: id mismatch refused"

# No input series: non-zero with a message.
mkdir "$T/empty"
if "$AGORA" dev run --plugin "$PLUGINS/hello.so" "$T/empty" 2>"$T/empty.err"; then fail "empty input"; fi
grep -q "no DICOM series" "$T/empty.err" || fail "empty input message"
echo "ok: empty input refused"
