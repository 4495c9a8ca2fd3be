#!/bin/bash
# The limit walk (issue 9): every result limit of the one table at value-1, value and value+1,
# through `agora dev run` and `agora run`, must get the same verdict from both (ok at or below,
# refused above); a 16-bit mask succeeds in both and is stored and exported (JSON and FHIR).
# The plugin (limit_walk.c) picks its case from the number of frames of the series.
# Usage: limit_walk.sh AGORA PLUGIN_SO
set -euo pipefail
A=$1 SO=$2
T=$(mktemp -d /tmp/agora-limit-walk.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AGORA_HOME=$T/clinic
fail() { echo "not ok: $*"; exit 1; }
q() { "$@" >"$T/q.out" 2>&1 || { echo "setup failed: $*"; cat "$T/q.out"; exit 1; }; }
CASES=31 # 10 limits x 3, then the 16-bit mask (MASK16_CASE)
cat >"$T/manifest.json" <<'JSON'
{"id": "org.agora.tests.limitwalk", "name": "Limit walk", "vendor": "Agora tests",
 "version": "1.0.0", "abi": "1.1", "description": "Walks every result limit",
 "inputs": {"modalities": ["*"]}, "permissions": [],
 "resources": {"memory_mb": 256, "time_s": 60, "threads": 1},
 "outputs": ["findings", "measurements", "regions", "summary"]}
JSON
q "$A" keygen --out "$T/op"
q "$A" pack --manifest "$T/manifest.json" --plugin "$SO" -o "$T/walk.agora"
q "$A" certify "$T/walk.agora" --catalog "$T/cat" --key "$T/op.key" --model per-series \
    --price 1 --currency EUR --vendor-share-bps 7000
q "$A" init --trust "$T/op.pub"
q "$A" sync "$T/cat"
q "$A" install org.agora.tests.limitwalk
for c in $(seq 0 $((CASES - 1))); do
    q "$A" dicom synth --modality CT --slices $((c + 1)) --rows 16 --cols 16 --seed $((c + 100)) \
        -o "$T/in/$c"
done
verdict() { # status -> ok | refused
    case "$1" in ok) echo ok ;; invalid-result | plugin-error) echo refused ;; *) echo "other:$1" ;; esac
}
n_ok=0
for c in $(seq 0 $((CASES - 1))); do
    "$A" dev run --plugin "$SO" --manifest "$T/manifest.json" --json "$T/in/$c" \
        >"$T/dev.json" 2>"$T/dev.err" || true
    dev=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["status"])' \
        "$T/dev.json") || fail "case $c: dev run gave no JSON: $(cat "$T/dev.err")"
    "$A" run --quiet --json "$T/in/$c" >"$T/run.json" 2>"$T/run.err" || true
    run=$(python3 -c '
import json, sys
inv = [i for i in json.load(open(sys.argv[1]))["invocations"] if i["plugin"] == "org.agora.tests.limitwalk"]
print(inv[0]["status"] if len(inv) == 1 else "missing")' "$T/run.json") ||
        fail "case $c: run gave no JSON: $(cat "$T/run.err")"
    if [ "$c" -lt 30 ]; then
        want=ok
        [ $((c % 3)) = 2 ] && want=refused # value+1
    else
        want=ok # a 16-bit mask
    fi
    [ "$(verdict "$dev")" = "$want" ] || fail "case $c: dev run says $dev, the table says $want: $(cat "$T/dev.err")"
    [ "$(verdict "$run")" = "$want" ] || fail "case $c: agora run says $run, the table says $want: $(cat "$T/run.err")"
    [ "$(verdict "$dev")" = "$(verdict "$run")" ] || fail "case $c: dev run $dev, agora run $run"
    [ "$want" = ok ] && n_ok=$((n_ok + 1))
done
echo "ok: $CASES cases, dev run and agora run agree ($n_ok ok, $((CASES - n_ok)) refused)"

# The 16-bit mask is stored (with its mask file) and exported as JSON and FHIR.
study=$(python3 - "$AGORA_HOME/results" <<'PY'
import glob, json, os, sys
for f in glob.glob(os.path.join(sys.argv[1], "*", "*.json")):
    d = json.load(open(f))
    if d.get("schema") == "agora.result/1":
        for r in d.get("regions", []):
            if r.get("mask", {}).get("bits") == 16:
                print(d["study_uid"])
                sys.exit(0)
sys.exit(1)
PY
) || fail "no stored result carries a 16-bit mask"
"$A" results export "$study" --format json -o "$T/export.json" >/dev/null ||
    fail "results export json of the 16-bit mask study"
"$A" results export "$study" --format fhir -o "$T/bundle.json" >/dev/null ||
    fail "results export fhir of the 16-bit mask study"
python3 - "$T/export.json" "$T/bundle.json" <<'PY' || fail "16-bit mask export content"
import json, sys
e = json.load(open(sys.argv[1]))
masks = [r["mask"] for res in e["results"] for r in res["regions"] if "mask" in r]
assert masks and masks[0]["bits"] == 16, masks
b = json.load(open(sys.argv[2]))
assert b["resourceType"] == "Bundle" and b["entry"], "empty FHIR bundle"
print("ok: 16-bit mask stored and exported (JSON bits=16, FHIR bundle of %d entries)" % len(b["entry"]))
PY
