#!/bin/bash
# The one clinic secret, through the real agora binary and sandbox: a wave-one home (HOME/secret
# for agora run and the ledger, HOME/deid.secret for agora deid) is migrated by agora deid with a
# message; afterwards the home holds one secret file, agora deid writes the same pseudonyms as
# before, agora run the same study UIDs, the ledger verifies and a re-run is not billed again
# (billing keys unchanged). A fresh home gets one 32-byte secret file and its own pseudonyms.
# Usage: secret_migrate.sh AGORA PLUGIN_DIR
set -euo pipefail
A=$1 P=$2
T=$(mktemp -d /tmp/agora-secret.XXXXXX)
trap 'rm -rf "$T"' EXIT
export AGORA_HOME=$T/clinic
fail() { echo "not ok: $*"; exit 1; }
q() { "$@" >/dev/null 2>&1 || { echo "setup failed: $*"; "$@"; exit 1; }; }
q "$A" keygen --out "$T/op"
q "$A" pack --manifest "$P/stats.manifest.json" --plugin "$P/stats.so" -o "$T/stats.agora"
q "$A" certify "$T/stats.agora" --catalog "$T/cat" --key "$T/op.key" --model per-series \
    --price 10 --currency EUR --vendor-share-bps 7000
q "$A" init --trust "$T/op.pub"
q "$A" sync "$T/cat"
q "$A" install org.agora.examples.stats
q "$A" dicom synth --modality CT --slices 4 --rows 64 --cols 64 --seed 31 -o "$T/in/a"

# ---- a wave-one home: a separate deid.secret next to secret ------------------------------------
head -c 32 /dev/urandom >"$AGORA_HOME/deid.secret"
chmod 600 "$AGORA_HOME/deid.secret"
# What wave-one `agora deid` wrote (it used deid.secret's bytes as its key).
q "$A" deid "$T/in" -o "$T/before" --secret "$AGORA_HOME/deid.secret"
q "$A" run --quiet "$T/in"
"$A" results studies --json >"$T/studies-before.json"
"$A" ledger verify >/dev/null || fail "ledger does not verify before the migration"

# ---- migration --------------------------------------------------------------------------------
"$A" deid "$T/in" -o "$T/after" 2>"$T/mig.err" >/dev/null || { cat "$T/mig.err"; fail "deid"; }
grep -q "^agora: migrated deid.secret into $AGORA_HOME/secret" "$T/mig.err" ||
    { cat "$T/mig.err"; fail "no migration message"; }
[ ! -e "$AGORA_HOME/deid.secret" ] || fail "deid.secret still there after the migration"
[ "$(ls "$AGORA_HOME" | grep -c secret)" = 1 ] || fail "more than one secret file: $(ls "$AGORA_HOME")"
[ "$(stat -c %s "$AGORA_HOME/secret")" = 64 ] || fail "migrated secret is not root + deid key"
[ "$(stat -c %a "$AGORA_HOME/secret")" = 600 ] || fail "migrated secret is not 0600"
diff <(cd "$T/before" && ls) <(cd "$T/after" && ls) >/dev/null || fail "pseudonymous names changed"
for f in "$T/before"/*.dcm; do
    cmp -s "$f" "$T/after/$(basename "$f")" || fail "$(basename "$f") differs after the migration"
done
n=$(ls "$T/after" | grep -c '\.dcm$')
[ "$n" -ge 4 ] || fail "expected the 4 de-identified slices, got $n"
# Once migrated, quiet and stable.
"$A" deid "$T/in" -o "$T/again" 2>"$T/again.err" >/dev/null || fail "deid after migration"
! grep -q migrated "$T/again.err" || fail "migrated twice"
diff <(cd "$T/before" && ls) <(cd "$T/again" && ls) >/dev/null || fail "pseudonyms not stable"

# ---- agora run and the ledger keep their keys -------------------------------------------------
"$A" ledger verify >/dev/null || { "$A" ledger verify; fail "ledger does not verify after"; }
q "$A" run --quiet "$T/in"
"$A" results studies --json >"$T/studies-after.json"
"$A" ledger verify >/dev/null || { "$A" ledger verify; fail "ledger does not verify after re-run"; }
"$A" ledger export >"$T/rows.jsonl"
python3 - "$T/studies-before.json" "$T/studies-after.json" "$T/rows.jsonl" <<'PY'
import json, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def uids(d):
    rows = d["studies"] if isinstance(d, dict) else d
    return sorted(r["study_uid"] if isinstance(r, dict) else r for r in rows)
assert len(uids(before)) == 1, before
assert uids(before) == uids(after), (before, after)  # the same pseudonymous study UID
inv = [json.loads(l) for l in open(sys.argv[3])]
inv = [r for r in inv if r["kind"] == "invocation"]
assert len(inv) == 2, len(inv)
units = sum(r["units"] for r in inv)
assert units == 1, "the re-run after the migration was billed again: %d units" % units
PY

# ---- a fresh home: one secret file, its own pseudonyms ---------------------------------------
export AGORA_HOME=$T/fresh
q "$A" init --trust "$T/op.pub"
q "$A" deid "$T/in" -o "$T/fresh-out"
[ "$(ls "$AGORA_HOME" | grep -c secret)" = 1 ] || fail "fresh home: $(ls "$AGORA_HOME")"
[ "$(stat -c %s "$AGORA_HOME/secret")" = 32 ] || fail "fresh secret is not 32 bytes"
[ "$(stat -c %a "$AGORA_HOME/secret")" = 600 ] || fail "fresh secret is not 0600"
cmp -s <(cd "$T/before" && ls) <(cd "$T/fresh-out" && ls) && fail "two homes gave the same UIDs"
echo "ok: deid.secret migrated (same pseudonyms, same study UIDs, ledger verifies, no re-billing)"
