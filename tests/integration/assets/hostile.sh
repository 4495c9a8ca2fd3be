#!/bin/bash
# Hostile: a plugin cannot write to its asset's mapping (issue 10). The probe plugin reports
# each attempt (mprotect to PROT_WRITE, a mremap duplicate made writable, writable mappings or
# writes of any sealed memfd it holds) and that the bytes are unchanged; the store plugin writes
# into the mapping and must be killed by the fault. Usage: hostile.sh AGORA PROBE.so STORE.so
set -euo pipefail
A=$1 PROBE=$2 STORE=$3
T=$(mktemp -d /tmp/agora-assets-hostile.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "not ok: $*"; exit 1; }
"$A" dicom synth --modality CT --slices 2 --rows 16 --cols 16 --seed 9 -o in >/dev/null
head -c 1000000 /dev/urandom >weights.bin
cp weights.bin weights.orig
cat >manifest.json <<'JSON'
{"id": "org.agora.tests.asset-write", "name": "Asset writer", "vendor": "Agora tests",
 "version": "1.0.0", "abi": "1.1", "inputs": {"modalities": ["*"]}, "permissions": [],
 "resources": {"memory_mb": 64, "time_s": 30, "threads": 1}, "outputs": ["summary"],
 "assets": [{"name": "weights.bin"}]}
JSON
"$A" dev run --plugin "$PROBE" --manifest manifest.json --asset weights.bin=weights.bin --json in \
    >probe.json 2>probe.err || { cat probe.err; fail "probe run"; }
sum=$(python3 -c 'import json; print(json.load(open("probe.json"))["jobs"][0]["result"]["summary"])')
echo "probe: $sum"
case "$sum" in
"mprotect=refused mremap=refused fds=refused memfds="*" intact=1") ;;
*) fail "the plugin got write access or changed its asset: $sum" ;;
esac
echo "ok: mprotect, mremap and memfd descriptors give no write access; the asset is intact"
if "$A" dev run --plugin "$STORE" --manifest manifest.json --asset weights.bin=weights.bin \
    --json in >store.json 2>store.err; then
    fail "a plugin storing into its asset succeeded"
fi
python3 - store.json <<'PY' || fail "store: every job must fail with a signal, none may report success"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] == 0 and d["failed"] == len(d["jobs"]) > 0, d
for j in d["jobs"]:
    assert "GRANTED" not in json.dumps(j), j
    assert j["status"] in ("signal", "crashed", "quarantined"), j["status"]
print("ok: a store into the asset mapping faults (" + d["jobs"][0]["status"] + ")")
PY
cmp -s weights.bin weights.orig || fail "the asset file changed"
