#!/bin/bash
# The three user journeys end to end on the built binaries, in a throw-away directory:
# developer (pack + sign), operator (certify, price, publish, revoke), clinic (trust, sync,
# install, run on synthetic studies with fake identities, results, usage, statement).
# Usage: scripts/demo-journeys.sh BUILD_DIR        (scripts/demo.sh builds and calls this)
set -euo pipefail
BUILD=$(cd "${1:?usage: demo-journeys.sh BUILD_DIR}" && pwd)
A=$BUILD/host/cli/agora
P=$BUILD/plugins-examples
DEMO=$(mktemp -d /tmp/agora-demo.XXXXXX)
export AGORA_HOME=$DEMO/clinic
PERIOD=$(date -u +%Y-%m)
EXAMPLES="hello stats threshold inspect"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Show each command as a user would type it, then run it.
run() {
    printf '\033[2m$ %s\033[0m\n' "$(echo "$*" | sed "s|$A|agora|g; s|$DEMO|\$DEMO|g; s|$BUILD|\$BUILD|g")"
    "$@"
}

echo "Agora end-to-end demo. Working directory: $DEMO (deleted at the end unless KEEP=1)"
mkdir -p "$DEMO/vendor" "$DEMO/operator" "$DEMO/studies"

say "1. Developer: the example plugins, packed with their manifests and signed by the vendor"
run "$A" keygen --out "$DEMO/vendor/acme"
for p in $EXAMPLES; do
    run "$A" pack --manifest "$P/$p.manifest.json" --plugin "$P/$p.so" \
        --sign "$DEMO/vendor/acme.key" -o "$DEMO/vendor/$p.agora"
done

say "2. Operator: run each app in the sandbox (certify --check), certify it under a pricing model, publish a signed catalog"
run "$A" keygen --out "$DEMO/operator/op"
mkdir -p "$DEMO/operator/reports"
certify() { # bundle model price [extra...]
    local b=$1 model=$2 price=$3
    shift 3
    # --check: runs the app over synthetic CT and MR studies first and signs only when every
    # check passes; the signed report is pinned in the catalog entry.
    run "$A" certify "$DEMO/vendor/$b.agora" --check --report "$DEMO/operator/reports/$b.json" \
        --catalog "$DEMO/catalog" --key "$DEMO/operator/op.key" \
        --vendor-key "$DEMO/vendor/acme.pub" --model "$model" --price "$price" --currency EUR \
        --vendor-share-bps 7000 "$@"
}
certify hello free 0
certify stats per-series 10
certify threshold per-study 250 --level clinical
certify inspect per-instance 1 --grant rtnPatCharsOpt
run "$A" catalog show "$DEMO/catalog"

say "3. Clinic: trust the operator's key, sync the catalog, install the apps"
run "$A" init --trust "$DEMO/operator/op.pub" --allow rtnPatCharsOpt
run "$A" sync "$DEMO/catalog"
for p in $EXAMPLES; do run "$A" install "org.agora.examples.$p"; done
run "$A" list

say "4. Clinic: two studies of synthetic patients with fake but realistic identities"
run "$A" dicom synth --modality CT --slices 32 --patient-name "DEMO^JANE^Q" \
    --patient-id "PID-DEMO-0001" --seed 1 -o "$DEMO/studies/ct"
run "$A" dicom synth --modality MR --slices 16 --patient-name "SAMPLE^JOHN" \
    --patient-id "PID-DEMO-0002" --seed 2 -o "$DEMO/studies/mr"

say "5. Clinic: every installed app runs on every series it declares, each in its sandbox"
run "$A" run "$DEMO/studies"

say "6. Clinic: results, attached to the real studies"
run "$A" results studies
STUDY=$("$A" results studies | head -n 1)
run "$A" results show "$STUDY" | grep -v 99AGORA-INSPECT
echo "(the inspect plugin's item-by-item listing is summarised in step 7)"
run "$A" results export "$STUDY" --format fhir -o "$DEMO/report-fhir.json"
echo "FHIR R4 Bundle written: $(wc -c <"$DEMO/report-fhir.json") bytes"

say "7. Proof: no identity reached a plugin"
# inspect reports, as results, every attribute and buffer property it was handed. Everything a
# plugin produced (findings, measurements, regions, summary) is searched for the planted names
# and IDs and for the real Study/Series/SOP Instance UIDs the host attached afterwards.
leaks=0
python3 - "$AGORA_HOME/results" "DEMO^JANE" "PID-DEMO-0001" "SAMPLE^JOHN" "PID-DEMO-0002" <<'PY' || leaks=1
import glob, json, os, sys
root, planted = sys.argv[1], sys.argv[2:]
seen, bad, n = set(), [], 0
for f in glob.glob(os.path.join(root, "*", "*.json")):
    doc = json.load(open(f))
    if "invocation_id" not in doc:
        continue
    n += 1
    real = [doc["study_uid"], doc["series_uid"]] + [fr.get("sop_instance_uid", "") for fr in doc.get("frames", [])]
    produced = json.dumps([doc.get(k) for k in ("findings", "measurements", "regions", "summary")])
    for v in planted + [u for u in real if u]:
        if v in produced:
            bad.append(v)
    if doc["plugin"]["id"] == "org.agora.examples.inspect":
        seen |= {it["code"]["code"] for it in doc["findings"] if not it["code"]["code"].startswith(("image.", "frame"))}
print("attributes the inspect plugin received (allowlist + rtnPatCharsOpt, granted by the operator")
print("and allowed by the clinic):\n  " + " ".join(sorted(seen)))
if bad:
    print("LEAK: plugin output contains identifying values:", sorted(set(bad)))
    sys.exit(1)
print("checked %d results: no patient name, patient ID or real UID appears in any plugin output" % n)
PY

say "8. Operator revokes a build; the clinic syncs; the build is refused"
run "$A" revoke org.agora.examples.threshold@1.0.0 --catalog "$DEMO/catalog" \
    --key "$DEMO/operator/op.key" --reason "demo: wrong volume on MR"
run "$A" sync "$DEMO/catalog"
run "$A" run --plugin org.agora.examples.threshold "$DEMO/studies/ct" || echo "(refused, as it must be)"

say "9. This month's usage and revenue-share statement"
run "$A" usage --period "$PERIOD"
run "$A" statement --period "$PERIOD"
run "$A" ledger verify

if [ "${KEEP:-0}" = 1 ]; then echo "kept $DEMO"; else rm -rf "$DEMO"; fi
[ "$leaks" = 0 ]
