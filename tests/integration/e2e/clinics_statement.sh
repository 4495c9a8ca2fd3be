#!/bin/bash
# Statements across clinics, end to end on the real binaries: an operator certifies the example
# apps; two clinics (two homes) run them in the same period on `agora dicom synth` studies in
# the real sandbox; each exports its signed period ledger; the operator registers both clinics
# and computes the statement from the two exports. It must equal the sum of the two clinics' own
# statements, line by line (--json). Then every refusal: an edited export, an unregistered
# clinic, the same export twice, the wrong period, a rewritten chain; and what must be accepted:
# the same exports again (a re-print) and a later export that extends the accepted one.
# Usage: clinics_statement.sh AGORA EXAMPLES_DIR
set -euo pipefail
A=$1 P=$2
T=$(mktemp -d /tmp/agora-clinics.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
PERIOD=$(date -u +%Y-%m)
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
q() { "$@" >/dev/null 2>&1 || { echo "command failed: $*"; "$@"; exit 1; }; }
# refused DESCRIPTION EXPECTED_SUBSTRING CMD...: exit 1, the message names the cause, no stdout.
refused() {
    local what=$1 expect=$2 rc=0
    shift 2
    "$@" >out.txt 2>err.txt || rc=$?
    if [ $rc -ne 1 ]; then
        fail "$what: expected exit 1, got $rc"
        cat out.txt err.txt
    elif ! grep -qF -- "$expect" err.txt; then
        fail "$what: message does not say '$expect':"
        cat err.txt
    elif [ -s out.txt ]; then
        fail "$what: a refused statement must print nothing on stdout"
    else
        echo "ok: $what: $(head -c 300 err.txt)"
    fi
}

# ---- operator and vendor: the example apps under four pricing models ---------------------------
q "$A" keygen --out keys/op
q "$A" keygen --out keys/acme
for p in hello stats threshold inspect; do
    q "$A" pack --manifest "$P/$p.manifest.json" --plugin "$P/$p.so" --sign keys/acme.key -o "$p.agora"
done
cert() { q "$A" certify "$1.agora" --catalog cat --key keys/op.key --vendor-key keys/acme.pub "${@:2}"; }
cert hello --model free
cert stats --model per-series --price 10 --currency EUR --vendor-share-bps 7000
cert threshold --model per-study --price 250 --currency EUR --vendor-share-bps 6667
cert inspect --model per-instance --price 3 --currency EUR --vendor-share-bps 3333 --grant rtnPatCharsOpt

# ---- two clinics, each with its own studies -----------------------------------------------------
for c in north south rogue; do
    "$A" init --home "$T/$c" --trust keys/op.pub --allow rtnPatCharsOpt >"init-$c.txt"
    grep -qF "clinic signing key: $T/$c/clinic.pub" "init-$c.txt" || fail "init must print the path of clinic.pub"
    q "$A" sync cat --home "$T/$c"
    for p in hello stats threshold inspect; do q "$A" install "org.agora.examples.$p" --home "$T/$c"; done
done
synth() { q "$A" dicom synth --modality "$1" --slices "$2" --rows 48 --cols 48 -o "$3"; }
synth CT 6 studies-north/ct
synth MR 4 studies-north/mr
synth CT 5 studies-south/ct
synth MR 3 studies-rogue/mr
AGORA_HOME=$T/north q "$A" run studies-north
AGORA_HOME=$T/south q "$A" run studies-south
AGORA_HOME=$T/rogue q "$A" run studies-rogue
[ "$(stat -c %a north/ledger.db)" = 600 ] || fail "ledger.db must be created 0600, is $(stat -c %a north/ledger.db)"

for c in north south; do
    "$A" statement --period "$PERIOD" --home "$c" --json >"own-$c.json"
    "$A" ledger export --period "$PERIOD" -o "$c.export" --home "$c" >"export-$c.txt"
    grep -q "signed by clinic key" "export-$c.txt" || fail "ledger export must say it signed"
done
q "$A" ledger export --period "$PERIOD" -o rogue.export --home rogue
q "$A" clinic add north north/clinic.pub --catalog cat
q "$A" clinic add south south/clinic.pub --catalog cat
"$A" clinic list --catalog cat --json >clinics.json
"$A" statement --period "$PERIOD" --from north.export --from south.export --catalog cat \
    --trust keys/op.pub --json >operator.json

# ---- the operator's statement equals the sum of the clinics' own, line by line ------------------
$PY - own-north.json own-south.json operator.json clinics.json <<'PY' || fail "operator statement != sum of clinic statements"
import json, sys
north, south, op, reg = (json.load(open(f)) for f in sys.argv[1:5])
F = ("rows", "units", "gross_minor", "vendor_share_minor", "platform_share_minor")
def lines(doc):
    out = {}
    for v in doc["vendors"]:
        for l in v["lines"]:
            out[(v["vendor"], v["currency"], l["plugin_id"], l["plugin_version"], l["vendor_share_bps"])] = l
    return out
want = {}
for own, name in ((north, "north"), (south, "south")):
    for k, l in lines(own).items():
        w = want.setdefault(k, {f: 0 for f in F})
        for f in F:
            w[f] += l[f]
        w.setdefault("clinics", {})[name] = {f: l[f] for f in F}
got = lines(op)
assert set(got) == set(want), (sorted(got), sorted(want))
assert len(want) >= 3, "expected at least three billed lines, got %r" % sorted(want)
for k, w in want.items():
    g = got[k]
    for f in F:
        assert g[f] == w[f], (k, f, g[f], w[f])
    per = {c["clinic"]: {f: c[f] for f in F if f in c} for c in g["clinics"]}
    for name, sub in w["clinics"].items():
        for f in F:
            assert per[name][f] == sub[f], (k, name, f)
for cur in {k[1] for k in want}:
    t = [x for x in op["totals"] if x["currency"] == cur][0]
    for f in ("gross_minor", "vendor_share_minor", "platform_share_minor"):
        s = sum(x[f] for own in (north, south) for x in own["totals"] if x["currency"] == cur)
        assert t[f] == s, (cur, f, t[f], s)
assert op["catalog_verified"] is True
assert sorted(c["clinic"] for c in op["clinics"]) == ["north", "south"]
names = {c["name"]: c for c in reg["clinics"]}
assert set(names) == {"north", "south"} and all(op_c for op_c in names.values())
print("ok: %d lines, operator statement == north + south (gross %d)" % (
    len(want), sum(t["gross_minor"] for t in op["totals"])))
PY
"$A" statement --period "$PERIOD" --from north.export --from south.export --catalog cat --csv >op.csv
[ "$(head -1 op.csv | cut -d, -f7)" = clinic ] || fail "csv has a clinic column"
grep -q ',"north",' op.csv && grep -q ',"south",' op.csv || fail "csv has per-clinic rows"
"$A" statement --period "$PERIOD" --from north.export --from south.export --catalog cat >op.txt 2>op.err
grep -q "subtotal north" op.txt && grep -q "subtotal south" op.txt || fail "text shows per-clinic subtotals"
grep -q "not verified" op.err || fail "without --trust the statement warns that the catalog was not verified"
"$A" clinic list --catalog cat | grep -q "north .*accepted: $PERIOD" || fail "clinic list shows the accepted period"

# ---- refusals -----------------------------------------------------------------------------------
# An edited row: one amount changed in the signed body.
$PY - north.export edited.export <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
i = b.index(b'"amount_minor":')
j = i + len(b'"amount_minor":')
b = b[:j] + (b"9" if b[j:j+1] != b"9" else b"8") + b[j+1:]
open(sys.argv[2], "wb").write(b)
PY
refused "an export with an edited row" "bad signature" \
    "$A" statement --period "$PERIOD" --from edited.export --from south.export --catalog cat
refused "an export from an unregistered clinic" "unregistered clinic" \
    "$A" statement --period "$PERIOD" --from north.export --from rogue.export --catalog cat
refused "the same export given twice" "duplicate" \
    "$A" statement --period "$PERIOD" --from north.export --from north.export --catalog cat
cp north.export north-copy.export
refused "the same export under another name" "same export as north.export" \
    "$A" statement --period "$PERIOD" --from north.export --from north-copy.export --catalog cat
refused "the wrong period" "wrong period" \
    "$A" statement --period 2001-01 --from north.export --catalog cat
# A row edited in the clinic's database: the clinic refuses to sign it.
cp north/ledger.db ledger-backup.db
$PY - north/ledger.db <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE entries SET amount_minor = amount_minor + 1 WHERE seq = 1")
db.commit()
PY
refused "the clinic exports an edited ledger" "not exporting" \
    "$A" ledger export --period "$PERIOD" -o never.export --home north
[ ! -e never.export ] || fail "a refused export must not write a file"
cp ledger-backup.db north/ledger.db

# ---- accepted again: a re-print, and a later export that extends the accepted one ---------------
"$A" statement --period "$PERIOD" --from south.export --from north.export --catalog cat --json >again.json ||
    fail "the same exports must be accepted again (a re-print)"
# The clinic's isolation mode (docs/sandbox.md, Modes): a fresh sandboxed worker per job gives the
# same verdicts, and bills the same way, as warm workers.
AGORA_HOME=$T/north "$A" run --fresh-per-job --json studies-south >fresh.json 2>fresh.err ||
    fail "agora run --fresh-per-job failed: $(tail -3 fresh.err)"
python3 -c 'import json,sys; d=json.load(open("fresh.json")); sys.exit(0 if d["jobs"] > 0 and d["ok"] == d["jobs"] and d["failed"] == 0 else 1)' ||
    fail "agora run --fresh-per-job: every job must succeed ($(cat fresh.json | head -c 300))"
q "$A" ledger export --period "$PERIOD" -o north2.export --home north
"$A" statement --period "$PERIOD" --from north2.export --catalog cat --json >ext.json ||
    fail "a later export of the period that extends the accepted chain must be accepted"
# A rewritten chain: the clinic starts a new ledger; its export no longer contains the head the
# operator accepted.
mv north/ledger.db north/ledger.old
rm -f north/ledger.db-wal north/ledger.db-shm
synth CT 3 studies-new/ct
AGORA_HOME=$T/north q "$A" run studies-new
q "$A" ledger export --period "$PERIOD" -o rewritten.export --home north
refused "a rewritten chain" "broken chain" \
    "$A" statement --period "$PERIOD" --from rewritten.export --catalog cat

# ---- usage errors are 2 -------------------------------------------------------------------------
rc=0
"$A" statement --period "$PERIOD" --from north.export 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "statement --from without --catalog is a usage error (2), got $rc"
rc=0
"$A" clinic add 'bad name' north/clinic.pub --catalog cat 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "clinic add with a bad name is a usage error (2), got $rc"
refused "clinic add: one key, two names" "already registered as clinic north" \
    "$A" clinic add north-again north/clinic.pub --catalog cat

# An old home without a clinic key gets one on first need, with a message.
rm north/clinic.key north/clinic.pub
"$A" ledger export --period "$PERIOD" -o fresh.export --home north 2>fresh.err >/dev/null ||
    fail "ledger export on a home without a clinic key"
grep -q "had no clinic signing key" fresh.err || fail "making the clinic key on first need says so"
[ "$(stat -c %a north/clinic.key)" = 600 ] || fail "clinic.key made on first need must be 0600"

[ $fails -eq 0 ] && echo "ok: statements across clinics"
[ $fails -eq 0 ]
