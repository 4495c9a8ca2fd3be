#!/bin/bash
# Triage (org.agora.triage/1) end to end on the real binaries: the results fixture calls
# set_urgent inside the real runner and sandbox, through `agora dev run` and through the clinic
# path (pack, certify, install, `agora run`). Checks: the stored result carries
# "triage": {"urgent": true, "reason"}; hostile reasons are refused by the runner (too long:
# ELIMIT; tab, ESC, C1 control, empty, NULL: EINVAL) and leave the result routine; set_urgent
# on a job that then fails stores nothing urgent; `agora results studies` lists the urgent study
# first (text: UID + tab + URGENT, never the reason; --json: the reason); `agora results show`
# prints the reason; `agora usage` counts urgent results per plugin; the FHIR DiagnosticReport
# carries the priority tag S and the conclusion code AA.
# Usage: triage_run.sh AGORA FIXTURE_SO HOSTILE_SO FAIL_SO FIXTURE_MANIFEST
set -euo pipefail
A=$1 FX=$2 HOSTILE=$3 FAIL=$4 MANIFEST=$5
T=$(mktemp -d /tmp/agora-triage.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
q() { "$@" >q.out 2>&1 || { echo "command failed: $*"; cat q.out; exit 1; }; }

# Two studies; the urgent one is the one whose Study UID sorts LAST, so "urgent first" cannot
# pass by the UID order.
"$A" dicom synth --modality CT --slices 3 --rows 32 --cols 32 --seed 21 -o s1 --json >s1.json
"$A" dicom synth --modality MR --slices 2 --rows 32 --cols 32 --seed 22 -o s2 --json >s2.json
read -r URGENT_DIR URGENT_UID ROUTINE_UID < <($PY - <<'PY'
import json
a = json.load(open("s1.json"))["planted"]["StudyInstanceUID"]
b = json.load(open("s2.json"))["planted"]["StudyInstanceUID"]
print(*(("s2", b, a) if b > a else ("s1", a, b)))
PY
)
mkdir studies
mv s1 s2 studies/

for v in hostile fail; do
    sed "s/org.agora.tests.results-fixture/org.agora.tests.results-fixture-$v/" "$MANIFEST" >$v.manifest.json
done

# --- dev run ---------------------------------------------------------------------------------
"$A" dev run --plugin "$FX" --manifest "$MANIFEST" --json "studies/$URGENT_DIR" >dev.json 2>dev.err ||
    { cat dev.err; fail "dev run of the fixture"; }
"$A" dev run --plugin "$HOSTILE" --manifest hostile.manifest.json --json "studies/$URGENT_DIR" \
    >devh.json 2>devh.err || { cat devh.err; fail "dev run of the hostile fixture"; }
"$A" dev run --plugin "$FAIL" --manifest fail.manifest.json --json "studies/$URGENT_DIR" \
    >devf.json 2>devf.err && fail "dev run of a failing job exited 0"
$PY - <<'PY' && ok "dev run: triage block, hostile reasons refused, failed job not urgent" || fail "dev run checks"
import json
d = json.load(open("dev.json"))
assert d["ok"] == 1 and d["failed"] == 0, d
r = d["jobs"][0]["result"]
assert r["triage"] == {"urgent": True, "reason": "fixture: suspected large lesion"}, r.get("triage")
h = json.load(open("devh.json"))
r = h["jobs"][0]["result"]
assert h["jobs"][0]["status"] == "ok", h
assert r["summary"] == "triage hostile: ELIMIT EINVAL EINVAL EINVAL EINVAL EINVAL", r["summary"]
assert "triage" not in r, r["triage"]
f = json.load(open("devf.json"))
j = f["jobs"][0]
assert f["failed"] == 1 and j["status"] != "ok", f
assert "triage" not in json.dumps(j), j
PY

# --- the clinic path: pack, certify, install, run in the full sandbox ------------------------
q "$A" keygen --out keys/op
q "$A" keygen --out keys/vendor
q "$A" pack --manifest "$MANIFEST" --plugin "$FX" --sign keys/vendor.key -o fx.agora
q "$A" pack --manifest hostile.manifest.json --plugin "$HOSTILE" --sign keys/vendor.key -o hostile.agora
q "$A" pack --manifest fail.manifest.json --plugin "$FAIL" --sign keys/vendor.key -o fail.agora
for b in fx hostile fail; do
    q "$A" certify $b.agora --catalog cat --key keys/op.key --vendor-key keys/vendor.pub --model free
done
q "$A" init --home "$T/home" --trust keys/op.pub
q "$A" sync cat --home "$T/home"
export AGORA_HOME=$T/home
for id in org.agora.tests.results-fixture org.agora.tests.results-fixture-hostile \
    org.agora.tests.results-fixture-fail; do
    q "$A" install $id
done
# Routine results for both studies first, then the urgent one on one study.
"$A" run studies --plugin org.agora.tests.results-fixture-hostile --quiet >run1.out 2>&1 ||
    { cat run1.out; fail "run of the hostile fixture"; }
"$A" run studies --plugin org.agora.tests.results-fixture-fail --quiet >run2.out 2>&1 &&
    fail "run of a failing fixture exited 0"
"$A" run "studies/$URGENT_DIR" --plugin org.agora.tests.results-fixture --quiet >run3.out 2>&1 ||
    { cat run3.out; fail "run of the fixture"; }

"$A" results studies >studies.txt
printf '%s\tURGENT\n%s\n' "$URGENT_UID" "$ROUTINE_UID" >studies.want
if cmp -s studies.txt studies.want; then
    ok "results studies: urgent study first, marked, no reason on the line"
else
    fail "results studies text:"; cat studies.txt
fi
grep -q "fixture" studies.txt && fail "results studies text prints the plugin's reason"
"$A" results studies --json >studies.json
"$A" results show "$URGENT_UID" --json >show.json
"$A" results show "$URGENT_UID" >show.txt
"$A" results export "$URGENT_UID" --format fhir -o fhir.json
$PY - "$URGENT_UID" "$ROUTINE_UID" <<'PY' && ok "stored triage, studies --json, FHIR priority" || fail "stored/json checks"
import json, sys
urgent, routine = sys.argv[1:]
w = json.load(open("studies.json"))
assert [s["study_uid"] for s in w] == [urgent, routine], w
assert w[0]["urgent"] is True and w[1]["urgent"] is False and w[1]["urgent_results"] == [], w
(u,) = w[0]["urgent_results"]
assert u["plugin_id"] == "org.agora.tests.results-fixture" and u["plugin_version"] == "1.0.0", u
assert u["reason"] == "fixture: suspected large lesion", u
res = json.load(open("show.json"))["results"]
by_plugin = {}
for r in res:
    by_plugin.setdefault(r["plugin"]["id"], []).append(r)
(fx,) = by_plugin["org.agora.tests.results-fixture"]
assert fx["status"] == "ok" and fx["triage"] == {"urgent": True, "reason": u["reason"]}, fx
assert u["invocation_id"] == fx["invocation_id"]
for pid in ("org.agora.tests.results-fixture-hostile", "org.agora.tests.results-fixture-fail"):
    for r in by_plugin.get(pid, []):
        assert "triage" not in r, (pid, r)
assert all(r["status"] == "ok" for r in by_plugin["org.agora.tests.results-fixture-hostile"])
assert all(r["status"] != "ok" for r in by_plugin.get("org.agora.tests.results-fixture-fail", []))
b = json.load(open("fhir.json"))
reps = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
pri = {}
for rep in reps:
    tags = [t for t in rep.get("meta", {}).get("tag", [])
            if t.get("system") == "http://terminology.hl7.org/CodeSystem/v3-ActPriority"]
    assert len(tags) == 1, rep
    pri[tags[0]["code"]] = rep
assert set(pri) == {"S", "R"}, pri.keys()
cc = pri["S"].get("conclusionCode", [])
assert any(c["code"] == "AA" for x in cc for c in x["coding"]), cc
assert "conclusionCode" not in pri["R"], pri["R"]
PY
grep -q "^  urgent   fixture: suspected large lesion$" show.txt && ok "results show prints the reason" ||
    fail "results show: no urgent line"

"$A" usage --json >usage.json
"$A" usage >usage.txt
$PY - <<'PY' && ok "usage counts urgent results per plugin" || fail "usage urgent counts"
import json
u = {p["plugin_id"]: p for p in json.load(open("usage.json"))["plugins"]}
assert u["org.agora.tests.results-fixture"]["urgent_results"] == 1, u
assert u["org.agora.tests.results-fixture-hostile"]["urgent_results"] == 0, u
assert u["org.agora.tests.results-fixture-fail"]["urgent_results"] == 0, u
lines = {l.split()[0]: l.split() for l in open("usage.txt") if l.startswith("org.")}
head = open("usage.txt").read().splitlines()[1].split()
col = head.index("urgent")
assert lines["org.agora.tests.results-fixture"][col] == "1", lines
assert lines["org.agora.tests.results-fixture-hostile"][col] == "0", lines
PY

# A damaged triage index entry is refused with a message naming the file.
mark=$(ls "$AGORA_HOME"/results/urgent/*.json | head -n 1)
cp "$mark" mark.bak
echo '{"study_uid": "1.2", "plugin_id": "x y", "plugin_version": "1"}' >"$mark"
if "$A" results studies >bad.out 2>bad.err; then
    fail "a damaged triage index entry was accepted"
else
    grep -q "not a triage index entry" bad.err && ok "damaged triage index entry refused" ||
        { cat bad.err; fail "damaged index: unclear message"; }
fi
cp mark.bak "$mark"

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all triage checks passed"
