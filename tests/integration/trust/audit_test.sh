#!/usr/bin/env bash
# The audit trail through the real CLI: certify and revoke append to the operator's log
# (CATALOG_DIR/audit.log), sync, install and remove to the clinic's (HOME/audit.log); both
# verify; an edited line breaks verification at that line (named); audit show lists the
# entries (--json, --limit). Writes only under a temp dir.
# usage: audit_test.sh AGORA DUMMY_PLUGIN.so MANIFEST.json
set -u
AGORA=$(realpath "$1")
PLUGIN=$(realpath "$2")
MANIFEST=$(realpath "$3")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export AGORA_HOME="$T/home"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { "$AGORA" "$@" >out 2>err || { fail "agora $* exited $?"; cat out err; }; }

run keygen --out op
run keygen --out vendor
run pack --manifest "$MANIFEST" --plugin "$PLUGIN" --sign vendor.key -o n.agora
CERT=(--catalog cat --key op.key --model per-study --price 150 --currency EUR --vendor-share-bps 7000)
run certify n.agora "${CERT[@]}" --vendor-key vendor.pub
run init --trust op.pub
run sync cat
run sync cat # unchanged: no entry
run install com.example.nodules
run remove com.example.nodules
run revoke com.example.nodules@1.0.0 --catalog cat --key op.key --reason "test recall"
run sync cat

# Operator log: certify, revoke.
run audit verify --catalog cat --json
grep -q '"entries": 2' out || fail "operator log holds 2 entries: $(cat out)"
run audit show --catalog cat --json
python3 - out <<'PY' || fail "operator entries are certify then revoke, by the operator key"
import json, sys
e = json.load(open(sys.argv[1]))
assert [x["action"] for x in e] == ["certify", "revoke"], e
assert e[0]["object"].startswith("com.example.nodules@1.0.0 catalog v1"), e
assert e[1]["prev"] == e[0]["hash"] and len(e[0]["actor"]) == 16, e
PY
# Clinic log: sync, install, remove, sync (the unchanged sync appended nothing).
run audit verify --json
grep -q '"entries": 4' out || fail "clinic log holds 4 entries: $(cat out)"
run audit show --json
python3 - out <<'PY' || fail "clinic entries are sync install remove sync"
import json, sys
e = json.load(open(sys.argv[1]))
assert [x["action"] for x in e] == ["sync", "install", "remove", "sync"], e
assert e[1]["object"] == "com.example.nodules@1.0.0", e
assert e[3]["object"].startswith("catalog v1 -> v2"), e
PY
run audit show --limit 1
[ "$(wc -l <out)" = 1 ] && grep -q " sync " out || fail "--limit 1 shows the last entry: $(cat out)"

# Editing line 2 of the clinic log breaks verification at line 2.
sed -i '2s/com.example.nodules/com.example.nodulez/' home/audit.log
"$AGORA" audit verify >out 2>err && fail "an edited log must not verify"
grep -q "line 2 " err || fail "verify names line 2: $(cat err)"
"$AGORA" audit show >out 2>err && fail "show refuses a broken log"
sed 's/"1.0.0"/"1.1.0"/' "$MANIFEST" >m11.json
run pack --manifest m11.json --plugin "$PLUGIN" --sign vendor.key -o n11.agora
run certify n11.agora "${CERT[@]}" --vendor-key vendor.pub
"$AGORA" sync cat >out 2>err && fail "a sync with a broken audit log must exit 1"
grep -q "audit log could not be appended" err || fail "sync says the audit was not appended: $(cat err)"
"$AGORA" audit show --home home --catalog cat >out 2>err
[ $? = 2 ] || fail "--home and --catalog exclude each other"

if [ $fails -ne 0 ]; then
    echo "$fails failures"
    exit 1
fi
echo "ok: audit trail"
