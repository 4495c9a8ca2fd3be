#!/bin/bash
# Crash safety of `agora run` itself: a clinic batch (2 studies x 2 plugins, per-series and
# per-study pricing) is SIGKILLed at random points ROUNDS times, then run to completion. After
# that: the ledger chain verifies; no invocation id appears twice; every billable invocation has
# its stored result (no lost billable result); each study/series was charged exactly once for the
# period (re-runs are never billed twice); the statement reconciles with the ledger rows.
# Usage: run_crash.sh AGORA PLUGIN_DIR [ROUNDS]
set -euo pipefail
A=$1 P=$2 ROUNDS=${3:-12}
T=$(mktemp -d /tmp/agora-crash.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AGORA_HOME=$T/clinic
q() { "$@" >/dev/null 2>&1 || { echo "setup failed: $*"; "$@"; exit 1; }; }
q "$A" keygen --out "$T/op"
for p in stats threshold; do
    q "$A" pack --manifest "$P/$p.manifest.json" --plugin "$P/$p.so" -o "$T/$p.agora"
done
q "$A" certify "$T/stats.agora" --catalog "$T/cat" --key "$T/op.key" --model per-series \
    --price 10 --currency EUR --vendor-share-bps 7000
q "$A" certify "$T/threshold.agora" --catalog "$T/cat" --key "$T/op.key" --model per-study \
    --price 250 --currency EUR --vendor-share-bps 7000
q "$A" init --trust "$T/op.pub"
q "$A" sync "$T/cat"
q "$A" install org.agora.examples.stats
q "$A" install org.agora.examples.threshold
q "$A" dicom synth --modality CT --slices 10 --rows 128 --cols 128 --seed 21 -o "$T/in/a"
q "$A" dicom synth --modality MR --slices 8 --rows 128 --cols 128 --seed 22 -o "$T/in/b"

for i in $(seq 1 "$ROUNDS"); do
    "$A" run --quiet "$T/in" >/dev/null 2>&1 &
    pid=$!
    # a random point between 0 and ~1.5 s into the batch
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    [ $((RANDOM % 3)) = 0 ] && sleep 0.7
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done
"$A" run --quiet "$T/in" >/dev/null
"$A" ledger verify >/dev/null || { "$A" ledger verify; exit 1; }
"$A" ledger export >"$T/rows.jsonl"
"$A" statement --period "$(date -u +%Y-%m)" --json >"$T/statement.json"
python3 - "$T/rows.jsonl" "$T/statement.json" "$AGORA_HOME/results" "$ROUNDS" <<'PY'
import glob, json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
stmt = json.load(open(sys.argv[2]))
stored = {os.path.basename(f)[:-5] for f in glob.glob(os.path.join(sys.argv[3], "*", "*.json"))}
inv = [r for r in rows if r["kind"] == "invocation"]
ids = [r["invocation_id"] for r in inv]
assert len(ids) == len(set(ids)), "an invocation id was recorded twice"
lost = [r["invocation_id"] for r in inv if r["billable"] and r["invocation_id"] not in stored]
assert not lost, "billable invocations without a stored result: %s" % lost
charged = {}
for r in inv:
    charged[r["plugin"]["id"]] = charged.get(r["plugin"]["id"], 0) + r["units"]
# 2 series (per-series) and 2 studies (per-study): each charged exactly once this period
assert charged.get("org.agora.examples.stats") == 2, charged
assert charged.get("org.agora.examples.threshold") == 2, charged
gross = sum(r["amount_minor"] for r in inv)
assert gross == 2 * 10 + 2 * 250, gross
assert stmt["totals"][0]["gross_minor"] == gross, stmt["totals"]
t = stmt["totals"][0]
assert t["vendor_share_minor"] + t["platform_share_minor"] == gross
print("ok: %s SIGKILLs, %d invocations recorded (%d billable), each unit charged once, "
      "gross %d = statement" % (sys.argv[4], len(inv), sum(r["billable"] for r in inv), gross))
PY
