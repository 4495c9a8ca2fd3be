#!/usr/bin/env bash
# `agora certify --check` (issue 16): each certification fixture is refused, exit 1, with a
# message and a report naming exactly the check(s) it violates (a forbidden call also fails the
# job, so policy comes with outcome); the four examples pass; a passing
# check is signed and pinned in the catalog entry (report in blobs/, sha256 in the entry), shown
# by `agora catalog show` and the clinic's `agora list`; a failing one leaves the catalog as it
# was. Runs the real sandbox. Writes only under a temp dir.
# usage: certify_check.sh AGORA SCHEMA.json FIXTURE.so... -- EXAMPLE.so...
#   (each .so has NAME.manifest.json next to it)
set -u
AGORA=$(realpath "$1")
SCHEMA=$(realpath "$2")
shift 2
FIXTURES=()
while [ "$1" != "--" ]; do FIXTURES+=("$(realpath "$1")"); shift; done
shift
EXAMPLES=()
for p in "$@"; do EXAMPLES+=("$(realpath "$p")"); done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export AGORA_HOME="$T/home"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The report's checks that failed, as "a,b" (python3: the report is JSON), and schema validity.
failed_checks() {
    python3 - "$1" "$SCHEMA" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
try:
    import jsonschema
    jsonschema.validate(r, json.load(open(sys.argv[2])))
except ImportError:
    pass
print(",".join(c["name"] for c in r["checks"] if not c["passed"]))
PY
}

"$AGORA" keygen --out operator >/dev/null || { echo "keygen failed"; exit 1; }
pack() { # pack PLUGIN.so OUT.agora
    "$AGORA" pack --manifest "${1%.so}.manifest.json" --plugin "$1" -o "$2" >/dev/null 2>"$T/err" ||
        { fail "pack $1"; cat "$T/err"; }
}

# ---- each fixture is refused, naming its check ------------------------------------------------
declare -A EXPECT=([certify_wrong_outputs]=outputs [certify_over_memory]=memory
    [certify_nondeterministic]=determinism [certify_crash_refused]=refusal
    [certify_policy]=outcome,policy)
for so in "${FIXTURES[@]}"; do
    name=$(basename "${so%.so}")
    want=${EXPECT[$name]:-}
    [ -n "$want" ] || { fail "unknown fixture $name"; continue; }
    pack "$so" "$name.agora"
    "$AGORA" certify --check "$name.agora" --report "$name.json" --key operator.key \
        >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] || { fail "$name: expected exit 1, got $rc"; cat "$T/out" "$T/err"; continue; }
    grep -qE "failed the checks? ${want//,/, };" "$T/err" || { fail "$name: message does not name $want"; cat "$T/err"; }
    grep -qE "^  FAIL  ${want##*,} " "$T/out" || { fail "$name: the check lines do not show ${want##*,} failing"; cat "$T/out"; }
    got=$(failed_checks "$name.json") || { fail "$name: report is not valid"; continue; }
    [ "$got" = "$want" ] || fail "$name: report's failed checks are '$got', expected exactly '$want'"
    [ -s "$name.json.sig" ] || fail "$name: no signature next to the report"
    # The same failing bundle with --catalog: refused, nothing published.
    "$AGORA" certify "$name.agora" --check --catalog cat --key operator.key --model free \
        >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] || fail "$name: certify --check --catalog: expected exit 1, got $rc"
    [ ! -e cat/catalog.json ] || fail "$name: a refused check must not publish a catalog"
done
[ ${#FIXTURES[@]} -eq 5 ] || fail "expected 5 fixtures, got ${#FIXTURES[@]}"
# The policy violation is named, trapped by the runner (trap mode, as dev run).
grep -qF "forbidden system call: socket" certify_policy.json ||
    fail "the policy report does not name the forbidden call"

# ---- the four examples pass --------------------------------------------------------------------
for so in "${EXAMPLES[@]}"; do
    name=$(basename "${so%.so}")
    pack "$so" "$name.agora"
    "$AGORA" certify --check "$name.agora" --report "$name.json" >"$T/out" 2>"$T/err" ||
        { fail "$name: check failed"; cat "$T/out" "$T/err"; continue; }
    got=$(failed_checks "$name.json") || { fail "$name: report is not valid"; continue; }
    [ -z "$got" ] || fail "$name: checks failed: $got"
    [ "$(grep -c '^  pass  ' "$T/out")" -eq 8 ] || { fail "$name: expected 8 passing check lines"; cat "$T/out"; }
    want=$(sha256sum "$name.agora" | cut -c1-64)
    grep -qF "\"sha256\": \"$want\"" "$name.json" || fail "$name: report does not pin the bundle's sha256"
done
[ ${#EXAMPLES[@]} -eq 4 ] || fail "expected 4 examples, got ${#EXAMPLES[@]}"

# ---- --reference DIR: the operator's folder joins the reference set, its path unreported -----
"$AGORA" dicom synth --modality CT --slices 5 --patient-name "CERT^PLANTED" \
    --patient-id PID-CERT-42 -o "$T/PID-CERT-42-folder" >/dev/null 2>&1 || fail "dicom synth"
"$AGORA" certify --check stats.agora --reference "$T/PID-CERT-42-folder" --json \
    >stats-ref.json 2>"$T/err" || { fail "certify --check --reference"; cat "$T/err"; }
python3 - stats-ref.json <<'PY' || fail "--reference: the operator's jobs are not in the --json report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["passed"], r["checks"]
ops = [j for j in r["jobs"] if j["input"] == "operator"]
assert len(ops) == 2 and all(j["status"] == "ok" for j in ops), r["jobs"]
assert any(i["role"] == "operator" for i in r["reference_set"]), r["reference_set"]
PY
! grep -qE "PID-CERT-42|CERT\^PLANTED" stats-ref.json || fail "the report names the operator's folder or a planted identity"

# ---- a passing check is signed into the catalog and shown ------------------------------------
"$AGORA" certify hello.agora --check --report hello-cert.json --catalog cat --key operator.key \
    --model free --level clinical --json >"$T/out" 2>"$T/err" ||
    { fail "certify --check hello"; cat "$T/out" "$T/err"; }
rsha=$(sha256sum hello-cert.json | cut -c1-64)
grep -qF "\"certification_report_sha256\":\"$rsha\"" "$T/out" ||
    grep -qF "\"certification_report_sha256\": \"$rsha\"" "$T/out" ||
    { fail "certify --json does not give the report's sha256"; cat "$T/out"; }
cmp -s hello-cert.json "cat/blobs/$rsha" || fail "the report is not stored in blobs/<sha256>"
python3 - cat/catalog.json "$rsha" <<'PY' || fail "the catalog entry does not pin the report"
import json, sys
c = json.load(open(sys.argv[1]))
e = [e for e in c["entries"] if e["id"] == "org.agora.examples.hello"][0]
assert e["certification_report"]["sha256"] == sys.argv[2], e
assert e["level"] == "clinical", e
PY
"$AGORA" catalog show cat --trust operator.pub >"$T/out" 2>"$T/err" || fail "catalog show"
grep -qE "checked and certified [0-9-]+T[0-9:]+Z \(clinical\): report sha256 $rsha" "$T/out" ||
    { fail "catalog show does not show the certification"; cat "$T/out"; }
# A bundle certified without --check loads next to it (older entries have no report).
"$AGORA" certify stats.agora --catalog cat --key operator.key --model free >/dev/null 2>&1 ||
    fail "certify without --check"
"$AGORA" init --trust operator.pub >/dev/null 2>&1 || fail "init"
"$AGORA" sync cat >/dev/null 2>&1 || fail "sync"
"$AGORA" install org.agora.examples.hello >/dev/null 2>&1 || fail "install hello"
"$AGORA" install org.agora.examples.stats >/dev/null 2>&1 || fail "install stats"
"$AGORA" list >"$T/out" 2>&1 || fail "list"
grep -qE "^org.agora.examples.hello .* clinical checked [0-9]{4}-[0-9]{2}-[0-9]{2}, free" "$T/out" ||
    { fail "agora list does not show the certification date and level"; cat "$T/out"; }
grep -qE "^org.agora.examples.stats .* research, free" "$T/out" ||
    { fail "agora list changed for an entry without a report"; cat "$T/out"; }
"$AGORA" list --json >"$T/out" 2>&1 || fail "list --json"
grep -qF "\"certification_report_sha256\":\"$rsha\"" "$T/out" ||
    { fail "agora list --json lacks the report's sha256"; cat "$T/out"; }

# ---- usage ----------------------------------------------------------------------------------
"$AGORA" certify hello.agora --report x.json --catalog cat --key operator.key --model free \
    >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -qF -- "--report go with --check" "$T/err" ||
    fail "--report without --check is not a usage error"

[ $fails -eq 0 ] && echo "certify --check: all assertions held" || echo "$fails failure(s)"
[ $fails -eq 0 ]
