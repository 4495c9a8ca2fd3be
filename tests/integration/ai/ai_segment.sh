#!/bin/bash
# The AI examples end to end (issue 10): onnx-segment (OpenCV DNN) and torch-segment (libtorch)
# on held-out synthetic CT studies whose lesion truth is known (make_phantoms.py, a seed that
# training never used), each
#   - outside the sandbox, in the standalone harness: the mask reaches Dice >= 0.9;
#   - under `agora dev run --asset` in the real sandbox: every job succeeds with a mask, a volume
#     in mL and a coded finding, and the masks are byte-identical to the harness's;
#   - through the clinic path (pack --asset -> certify -> install -> run) in the real sandbox:
#     the stored masks are byte-identical to the harness's, so they reach the same Dice.
# A plugin run without its asset fails at init with a line naming it. The committed models are
# used as they are: nothing retrains.
# Usage: ai_segment.sh AGORA HARNESS PLUGIN_DIR MODEL_DIR
# Exit 77 (skip) when neither example was built (no libopencv-dnn-dev nor libtorch-dev at
# configure time) or when NumPy/pydicom are missing.
set -euo pipefail
A=$1 H=$2 P=$3 M=$4
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/agora-ai.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "not ok: $*"; exit 1; }

"$PY" -c 'import numpy, pydicom' 2>/dev/null ||
    { echo "skip: python3-numpy and python3-pydicom are needed to make the phantoms (scripts/deps.sh)"; exit 77; }
engines=""
for e in onnx torch; do
    if [ -f "$P/$e-segment.so" ]; then
        engines="$engines $e"
    else
        echo "skip: $e-segment was not built (its framework, libopencv-dnn-dev or libtorch-dev, was missing when meson was configured; scripts/deps.sh installs both)"
    fi
done
[ -n "$engines" ] || { echo "skip: neither AI example was built"; exit 77; }

N=3
SEED=4242 # training used 20261202 and validated on 20261203
"$PY" "$HERE/make_phantoms.py" "$T/ph" $SEED $N 256 256 16 || fail "make_phantoms"
asset_name() { [ "$1" = onnx ] && echo model.onnx || echo model.pt; }
asset_file() { [ "$1" = onnx ] && echo "$M/lesion-unet.onnx" || echo "$M/lesion-unet.pt"; }
sha() { sha256sum "$1" | cut -c1-64; }

"$A" keygen --out "$T/keys/op" >/dev/null
"$A" keygen --out "$T/keys/vendor" >/dev/null
for e in $engines; do
    so="$P/$e-segment.so" man="$P/$e-segment.manifest.json" id="org.agora.examples.$e-segment"
    an=$(asset_name $e) af=$(asset_file $e)

    # ---- outside: the harness -------------------------------------------------------------------
    for k in $(seq 0 $((N - 1))); do
        "$H" --plugin "$so" --asset "$an=$af" --input "$T/ph/study-$k.raw" \
            --mask-out "$T/$e-$k.mask" >"$T/$e-$k.json" 2>"$T/$e-$k.err" ||
            { cat "$T/$e-$k.err" "$T/$e-$k.json"; fail "$e harness on study $k"; }
        d=$("$PY" "$HERE/dice.py" "$T/ph/study-$k.truth" "$T/$e-$k.mask" 0.9) ||
            fail "$e harness study $k: Dice $d < 0.9"
        echo "ok: $e outside the sandbox, study $k: Dice $d"
        sha "$T/$e-$k.mask" >>"$T/$e-harness.sums"
    done

    # ---- inside: dev run ------------------------------------------------------------------------
    "$A" dev run --plugin "$so" --manifest "$man" --asset "$an=$af" --json --quiet "$T/ph/dicom" \
        >"$T/$e-dev.json" 2>"$T/$e-dev.err" || { cat "$T/$e-dev.err"; fail "$e dev run"; }
    "$PY" - "$T/$e-dev.json" "$T/$e-harness.sums" "$N" <<'PY' || fail "$e dev run output"
import json, sys
doc, want, n = json.load(open(sys.argv[1])), sorted(open(sys.argv[2]).read().split()), int(sys.argv[3])
assert doc["ok"] == n and doc["failed"] == 0, doc
got = []
for job in doc["jobs"]:
    r = job["result"]
    masks = [x for x in r["regions"] if x["kind"] == "mask"]
    assert len(masks) == 1, r["regions"]
    got.append(masks[0]["mask"]["sha256"])
    vol = [m for m in r["measurements"] if m["name"] == "lesion volume"]
    assert len(vol) == 1 and vol[0]["unit"] == "mL" and vol[0]["value"] > 1, r["measurements"]
    f = [f for f in r["findings"] if f["code"]["code"] == "4147007"]
    assert len(f) == 1 and 0.5 < f[0]["confidence"] <= 1, r["findings"]
assert sorted(got) == want, ("masks inside differ from outside", sorted(got), want)
print("ok: dev run: %d jobs, masks byte-identical to the harness's" % n)
PY
    "$A" dev run --plugin "$so" --manifest "$man" --quiet "$T/ph/dicom/study-0" >"$T/noasset.out" 2>&1 &&
        fail "$e without its asset succeeded"
    grep -qF "$an" "$T/noasset.out" || { cat "$T/noasset.out"; fail "$e without its asset: no line naming $an"; }
    echo "ok: $e without its asset is refused: $(grep -F "$an" "$T/noasset.out" | head -1 | cut -c1-200)"
    # A manifest that forgets to declare the model: the plugin's init says what is missing (a
    # plugin's log lines show from level warn: the host caps what a plugin may log at).
    "$PY" -c 'import json,sys; m = json.load(open(sys.argv[1])); del m["assets"]; json.dump(m, open(sys.argv[2], "w"))' \
        "$man" "$T/$e-undeclared.json"
    AGORA_LOG=warn "$A" dev run --plugin "$so" --manifest "$T/$e-undeclared.json" --quiet "$T/ph/dicom/study-0" \
        >"$T/undeclared.out" 2>&1 && fail "$e with an undeclared model succeeded"
    grep -qF "asset $an is missing" "$T/undeclared.out" ||
        { cat "$T/undeclared.out"; fail "$e with an undeclared model: the plugin's line is not shown"; }
    echo "ok: $e with an undeclared model fails at init, saying so"

    # ---- inside: the clinic path ----------------------------------------------------------------
    "$A" pack --manifest "$man" --plugin "$so" --asset "$an=$af" --sign "$T/keys/vendor.key" \
        -o "$T/$e.agora" >/dev/null || fail "$e pack --asset"
    "$A" certify "$T/$e.agora" --catalog "$T/cat" --key "$T/keys/op.key" \
        --vendor-key "$T/keys/vendor.pub" --model per-study --price 400 --currency EUR --vendor-share-bps 7000 \
        >/dev/null || fail "$e certify"
    home="$T/home-$e"
    "$A" init --home "$home" --trust "$T/keys/op.pub" >/dev/null || fail "init"
    "$A" sync "$T/cat" --home "$home" >/dev/null || fail "$e sync"
    "$A" install "$id" --home "$home" >/dev/null || fail "$e install"
    AGORA_HOME=$home "$A" run --quiet --plugin "$id" "$T/ph/dicom" >"$T/$e-run.out" 2>&1 ||
        { cat "$T/$e-run.out"; fail "$e run"; }
    for k in $(seq 0 $((N - 1))); do
        uid=$("$PY" -c "print('2.25.%d.1' % (10**30 + $SEED * 1000 + $k))")
        "$A" results show "$uid" --json --home "$home" >"$T/$e-res-$k.json" ||
            fail "$e: no results for study $k"
        s=$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
rs = d if isinstance(d, list) else d.get("results", [d])
print(" ".join(x["mask"]["sha256"] for r in rs for x in r["regions"] if x["kind"] == "mask"))' \
            "$T/$e-res-$k.json")
        [ "$(echo "$s" | wc -w)" = 1 ] || fail "$e study $k: expected one stored mask, got '$s'"
        stored=$(find "$home/results" -name "$s.mask" | head -1)
        [ -n "$stored" ] || fail "$e study $k: mask $s not stored"
        cmp -s "$stored" "$T/$e-$k.mask" || fail "$e study $k: the clinic's mask differs from the harness's"
        d=$("$PY" "$HERE/dice.py" "$T/ph/study-$k.truth" "$stored" 0.9) ||
            fail "$e clinic study $k: Dice $d < 0.9"
        echo "ok: $e clinic path (pack --asset, certify, install, run), study $k: Dice $d, identical to outside"
    done
done
echo "ok: AI examples:$engines"
