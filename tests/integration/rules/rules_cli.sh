#!/bin/bash
# `agora rules test|check` on the real binaries, the real sandboxed reader and synthetic DICOM
# (`agora dicom synth`): per series which rule matched and why, the jobs, --json, the exit
# codes (0 routed, 1 nothing matched, 2 usage/invalid rules, 3 nothing readable), simulated
# origin and AE titles, refused identifying attributes, and, with a clinic home holding two
# installed apps, the default rule by modality and the skipped plugins. Attribute values of the
# files reach stdout only: with AGORA_LOG=debug nothing the command or its reader logs holds one.
# Usage: rules_cli.sh AGORA HELLO_SO HELLO_MANIFEST THRESHOLD_SO THRESHOLD_MANIFEST
set -euo pipefail
A=$1 HELLO=$2 HELLOM=$3 THR=$4 THRM=$5
T=$(mktemp -d /tmp/agora-rules.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
unset AGORA_HOME
export HOME=$T/nohome XDG_DATA_HOME=$T/nohome/data
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
q() { "$@" >q.out 2>&1 || { echo "command failed: $*"; cat q.out; exit 1; }; }
# status CMD...: run, keep stdout in out.txt and stderr in err.txt, print the exit status.
status() { set +e; "$@" >out.txt 2>err.txt; echo $? >rc.txt; set -e; cat rc.txt; }

q "$A" dicom synth --modality CT --slices 3 --rows 64 --cols 64 --seed 11 -o in/ct
q "$A" dicom synth --modality MR --slices 2 --rows 32 --cols 48 --seed 12 -o in/mr
echo "not dicom" >in/readme.txt

cat >rules.json <<'EOF'
{
  "schema": "agora.rules/1",
  "rules": [
    {"id": "ct-chest-thin",
     "when": {"all": [{"attr": "Modality", "eq": "CT"},
                      {"attr": "BodyPartExamined", "in": ["CHEST", "THORAX"]},
                      {"attr": "SliceThickness", "le": 2.5}]},
     "run": ["org.agora.examples.threshold"], "priority": "urgent", "send_to": ["pacs-main"]},
    {"id": "everything",
     "when": {"attr": "Rows", "exists": true},
     "run": ["org.agora.examples.threshold", "org.agora.examples.hello"], "priority": "offpeak"},
    {"id": "stow-mr", "when": {"all": [{"attr": "Modality", "eq": "MR"},
                                        {"attr": "Origin", "eq": "stow"}]},
     "action": "discard"},
    {"id": "from-ct01", "when": {"attr": "CallingAETitle", "eq": "CT01"},
     "run": ["org.example.not-installed", "org.agora.examples.hello@9.9.9"], "scope": "study"}
  ]
}
EOF

# --- check -------------------------------------------------------------------------------------
[ "$(status "$A" rules check rules.json)" = 0 ] &&
    grep -qx 'rules.json: valid, 4 rules: ct-chest-thin, everything, stow-mr, from-ct01' out.txt &&
    grep -qx 'fallback: none' out.txt && grep -qx 'destinations: pacs-main default' out.txt &&
    ok "rules check: valid, ids, fallback, destinations" || { cat out.txt err.txt; fail "rules check"; }
"$A" rules check --json rules.json >check.json
python3 - <<'PY' && ok "rules check --json" || fail "rules check --json"
import json
d = json.load(open("check.json"))
assert d == {"file": "rules.json", "valid": True, "fallback": "none",
             "rules": ["ct-chest-thin", "everything", "stow-mr", "from-ct01"],
             "destinations": ["pacs-main", "default"]}, d
PY

# --- test, no home: rules as written ------------------------------------------------------------
[ "$(status "$A" rules test --no-home rules.json in)" = 0 ] || { cat out.txt err.txt; fail "rules test exit"; }
cp out.txt text.txt
python3 - <<'PY' && ok "rules test: series, attributes, per-condition verdicts, merged jobs" ||
t = open("text.txt").read()
ct, mr = t.split("series 2: ")
assert ct.startswith("series 1: 3 files, first in/ct/IM00001.dcm\n"), ct
assert "  attributes: Modality=CT BodyPartExamined=CHEST SliceThickness=1.25 NumberOfFrames=1 " \
       "Rows=64 Columns=64 SOPClassUID=1.2.840.10008.5.1.4.1.1.2 CallingAETitle=(absent) " \
       "CalledAETitle=(absent) Origin=dimse\n" in ct, ct
assert "  rule ct-chest-thin: matched\n    all: pass\n      Modality eq: pass\n" \
       "      BodyPartExamined in: pass\n      SliceThickness le: pass\n" in ct, ct
assert "  rule everything: matched\n    Rows exists: pass\n" in ct, ct
assert "  rule from-ct01: not matched\n    CallingAETitle eq: absent\n" in ct, ct
assert "  result: run (rule ct-chest-thin): 2 jobs\n" in ct, ct
# threshold from two rules: once, urgent, both destinations; hello from `everything` only.
assert "    org.agora.examples.threshold: scope series, priority urgent, send to pacs-main, " \
       "default (rule ct-chest-thin)\n" in ct, ct
assert "    org.agora.examples.hello: scope series, priority offpeak, send to default " \
       "(rule everything)\n" in ct, ct
assert mr.startswith("2 files, first in/mr/IM00001.dcm\n"), mr
assert "Modality=MR" in mr and "Rows=32 Columns=48" in mr, mr
assert "  rule ct-chest-thin: not matched\n    all: fail\n      Modality eq: fail\n" in mr, mr
assert "  rule stow-mr: not matched\n" in mr and "      Origin eq: fail\n" in mr, mr
assert "  result: run (rule everything): 2 jobs\n" in mr, mr
assert "not read: in/readme.txt: " in t, t
assert t.endswith("2 series: 2 routed, 0 matched no rule\n"), t
PY
    { cat text.txt; fail "rules test text"; }
grep -q "no clinic home" err.txt || true

# --- --json, origin stow: the MR is discarded ----------------------------------------------------
[ "$(status "$A" rules test --no-home --json --origin stow --calling-ae CT01 rules.json in)" = 0 ] ||
    { cat out.txt err.txt; fail "rules test --json exit"; }
cp out.txt test.json
python3 - <<'PY' && ok "rules test --json: stow MR discarded, CT01 study rule, steps by name" ||
import json
d = json.load(open("test.json"))
assert d["apps_checked"] is False and d["unmatched"] == 0, d
assert [f["file"] for f in d["not_read"]] == ["in/readme.txt"], d["not_read"]
ct, mr = d["series"]
assert ct["files"] == ["in/ct/IM0000%d.dcm" % i for i in (1, 2, 3)], ct["files"]
assert ct["attributes"]["Origin"] == "stow" and ct["attributes"]["CallingAETitle"] == "CT01"
assert ct["attributes"]["SliceThickness"] == 1.25 and ct["attributes"]["Rows"] == 64
assert ct["action"] == "run" and ct["rule"] == "ct-chest-thin", ct
jobs = {j["plugin"]: j for j in ct["jobs"]}
assert set(jobs) == {"org.agora.examples.threshold", "org.agora.examples.hello",
                     "org.example.not-installed"}, jobs
# hello and hello@9.9.9 are two builds without a home to resolve them.
assert [j["version"] for j in ct["jobs"] if j["plugin"] == "org.agora.examples.hello"] == [None, "9.9.9"]
assert jobs["org.example.not-installed"]["scope"] == "study"
assert jobs["org.example.not-installed"]["rule"] == "from-ct01"
assert jobs["org.agora.examples.threshold"]["priority"] == "urgent"
assert jobs["org.agora.examples.threshold"]["send_to"] == ["pacs-main", "default"]
r = {x["id"]: x for x in ct["rules"]}
assert r["from-ct01"]["matched"] and r["from-ct01"]["conditions"] == [
    {"attr": "CallingAETitle", "op": "eq", "depth": 1, "outcome": "pass"}], r["from-ct01"]
assert [c.get("attr", c.get("group")) for c in r["ct-chest-thin"]["conditions"]] == \
       ["all", "Modality", "BodyPartExamined", "SliceThickness"]
assert mr["action"] == "discard" and mr["rule"] == "stow-mr" and mr["jobs"] == [], mr
for s in d["series"]:
    for x in s["rules"]:
        for c in x["conditions"]:
            assert set(c) <= {"attr", "op", "group", "depth", "outcome"}, c
PY
    { cat test.json; fail "rules test --json"; }

# --- exit codes ------------------------------------------------------------------------------------
cat >ct-only.json <<'EOF'
{"schema": "agora.rules/1",
 "rules": [{"id": "ct", "when": {"attr": "Modality", "eq": "CT"}, "run": ["org.agora.examples.hello"]}]}
EOF
[ "$(status "$A" rules test --no-home ct-only.json in)" = 1 ] &&
    grep -q "  result: nothing matched (no fallback): nothing runs" out.txt &&
    grep -q "2 series: 1 routed, 1 matched no rule" out.txt &&
    ok "exit 1 when a series matches nothing" || { cat out.txt err.txt; fail "exit 1"; }
[ "$(status "$A" rules test --no-home ct-only.json in/ct)" = 0 ] && ok "exit 0 when all match" ||
    fail "exit 0 on CT only"
sed 's/}]}$/}], "fallback": {"action": "discard"}}/' ct-only.json >fb.json
[ "$(status "$A" rules test --no-home fb.json in/mr)" = 0 ] &&
    grep -q "  no rule matched: fallback discard" out.txt &&
    grep -q "  result: discard (rule fallback): nothing runs" out.txt &&
    ok "fallback discard" || { cat out.txt err.txt; fail "fallback discard"; }
cat >phi.json <<'EOF'
{"schema": "agora.rules/1",
 "rules": [{"id": "cine", "when": {"attr": "SeriesDescription", "eq": "CINE"}, "run": ["org.agora.examples.hello"]}]}
EOF
[ "$(status "$A" rules test --no-home phi.json in)" = 2 ] && [ ! -s out.txt ] &&
    grep -q "rules\[0\].when.attr: SeriesDescription is free text" err.txt &&
    [ "$(status "$A" rules check phi.json)" = 2 ] && grep -q "SeriesDescription is free text" err.txt &&
    ok "exit 2: SeriesDescription refused with the reason" || { cat out.txt err.txt; fail "exit 2 phi"; }
[ "$(status "$A" rules test --no-home rules.json)" = 2 ] && grep -q "rules test --help" err.txt &&
    [ "$(status "$A" rules test --no-home --origin ftp rules.json in)" = 2 ] &&
    [ "$(status "$A" rules test --no-home --calling-ae 'A B' rules.json in)" = 2 ] &&
    [ "$(status "$A" rules frobnicate)" = 2 ] &&
    ok "exit 2: usage errors" || { cat out.txt err.txt; fail "usage errors"; }
[ "$(status "$A" rules test --no-home rules.json in/readme.txt)" = 3 ] &&
    grep -q "no DICOM file could be read" err.txt && ok "exit 3: nothing readable" ||
    { cat out.txt err.txt; fail "exit 3"; }
[ "$(status "$A" rules test --home "$T/missing" rules.json in)" = 3 ] && ok "exit 3: --home missing" ||
    { cat out.txt err.txt; fail "exit 3 home"; }
"$A" rules test --help | grep -q "Exit status: 0 every series routed" && ok "--help" || fail "--help"

# --- no values in logs: debug logging, nothing on stderr holds a value of the files --------------
AGORA_LOG=debug "$A" rules test --no-home --calling-ae QWERTY01 rules.json in >/dev/null 2>log.txt || true
if grep -E 'CHEST|ABDOMEN|QWERTY01|(^|[^0-9.])1\.25([^0-9]|$)|1\.2\.840\.10008\.5\.1\.4\.1\.1\.[24]' log.txt; then
    fail "a value of the files is on stderr with AGORA_LOG=debug"
else
    ok "stderr (debug log) holds no attribute value"
fi

# --- with a clinic home: installed apps, default rule by modality, skips ---------------------------
q "$A" keygen --out keys/op
q "$A" keygen --out keys/vendor
q "$A" pack --manifest "$HELLOM" --plugin "$HELLO" --sign keys/vendor.key -o hello.agora
q "$A" pack --manifest "$THRM" --plugin "$THR" --sign keys/vendor.key -o thr.agora
q "$A" certify hello.agora --catalog cat --key keys/op.key --vendor-key keys/vendor.pub --model free
q "$A" certify thr.agora --catalog cat --key keys/op.key --vendor-key keys/vendor.pub --model free
q "$A" init --home "$T/home" --trust keys/op.pub
q "$A" sync cat --home "$T/home"
q "$A" install org.agora.examples.hello --home "$T/home"
q "$A" install org.agora.examples.threshold --home "$T/home"
[ "$(status "$A" rules test --home "$T/home" --calling-ae CT01 --json rules.json in/ct)" = 0 ] ||
    { cat out.txt err.txt; fail "rules test with a home"; }
cp out.txt home.json
python3 - <<'PY' && ok "with a home: installed versions, skips not installed / other version" ||
import json
d = json.load(open("home.json"))
assert d["apps_checked"] is True, d
(s,) = d["series"]
jobs = {j["plugin"]: j for j in s["jobs"]}
assert set(jobs) == {"org.agora.examples.threshold", "org.agora.examples.hello"}, jobs
assert jobs["org.agora.examples.hello"]["version"] == "1.0.0", jobs
skipped = {(k["plugin"], k["reason"]) for k in s["skipped"]}
assert skipped == {("org.example.not-installed", "not installed"),
                   ("org.agora.examples.hello", "installed at another version")}, skipped
PY
    { cat home.json; fail "home skips"; }
echo '{"schema": "agora.rules/1", "rules": [], "fallback": {"action": "default", "priority": "urgent"}}' >default.json
[ "$(status "$A" rules test --home "$T/home" default.json in)" = 0 ] &&
    grep -q "  default rule: org.agora.examples.threshold accepts the series' modality" out.txt &&
    grep -q "    org.agora.examples.threshold@1.0.0: scope series, priority urgent, send to default (rule default)" out.txt &&
    grep -q "    org.agora.examples.hello@1.0.0: scope series, priority urgent, send to default (rule default)" out.txt &&
    [ "$(grep -c 'result: run (rule default): 2 jobs' out.txt)" = 2 ] &&
    ok "fallback default: every installed app accepting the modality" || { cat out.txt err.txt; fail "default"; }

echo "$fails failure(s)"
[ "$fails" = 0 ]
