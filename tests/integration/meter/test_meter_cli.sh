#!/bin/bash
# Integration test of `agora usage|statement|ledger` over a ledger filled through the API
# (crash_batch run), and of tamper detection: a row edited with sqlite3 is named by
# `agora ledger verify` (exit 1).
# usage: test_meter_cli.sh AGORA CRASH_BATCH
set -u
agora=$1 batch=$2
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
sql() { # run SQL on the ledger: sqlite3 CLI, else Python's sqlite3 module
    if command -v sqlite3 >/dev/null; then sqlite3 "$home/ledger.db" "$1"
    else python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()' "$home/ledger.db" "$1"; fi
}

"$batch" run "$home" 200 || { echo "crash_batch run failed"; exit 1; }
period=$(date -u +%Y-%m)

expect_rc 0 "ledger verify" "$agora" ledger verify --home "$home"
grep -q 'ledger ok: 200 rows' "$tmp/out" && ok "verify counts 200 rows" || bad "verify output: $(cat "$tmp/out")"
AGORA_HOME=$home expect_rc 0 "usage --json via AGORA_HOME" "$agora" usage --json
python3 - "$tmp/out" <<'PY' && ok "usage: 4 plugins, 200 invocations, failures by reason" || bad "usage json"
import json, sys
u = json.load(open(sys.argv[1]))
assert len(u["plugins"]) == 4
assert sum(p["invocations"] for p in u["plugins"]) == 200
reasons = {}
for p in u["plugins"]:
    for k, v in p["failures_by_reason"].items(): reasons[k] = reasons.get(k, 0) + v
assert reasons == {"timeout": sum(1 for i in range(200) if i % 11 == 5),
                   "protocol-error": sum(1 for i in range(200) if i % 11 != 5 and i % 13 == 7)}, reasons
PY
expect_rc 0 "usage text" "$agora" usage --period "$period" --home "$home"
grep -q 'org.example.study' "$tmp/out" && ok "usage text lists plugins" || bad "usage text"
expect_rc 0 "statement --json" "$agora" statement --period "$period" --json --home "$home"
cp "$tmp/out" "$tmp/statement.json"
expect_rc 0 "statement --csv" "$agora" statement --period "$period" --csv --home "$home"
python3 - "$tmp/statement.json" "$tmp/out" <<'PY' && ok "csv lines match json lines, shares add up" || bad "statement csv/json"
import csv, json, sys
s = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
lines = [l for v in s["vendors"] for l in v["lines"]]
assert len(rows) == len(lines) == 4
for r in rows:
    assert int(r["gross_minor"]) == int(r["vendor_share_minor"]) + int(r["platform_share_minor"])
    assert int(r["vendor_share_minor"]) == int(r["gross_minor"]) * int(r["vendor_share_bps"]) // 10000
assert sum(t["gross_minor"] for t in s["totals"]) == sum(int(r["gross_minor"]) for r in rows)
PY
expect_rc 0 "statement text" "$agora" statement --period "$period" --home "$home"
expect_rc 2 "statement without --period" "$agora" statement --home "$home"
expect_rc 2 "statement with a bad period" "$agora" statement --period 2026-13 --home "$home"
expect_rc 2 "statement --json --csv" "$agora" statement --period "$period" --json --csv --home "$home"
expect_rc 0 "ledger export" "$agora" ledger export --home "$home"
[ "$(wc -l <"$tmp/out")" = 200 ] && ok "export: 200 JSON lines" || bad "export line count"
id=$(sed -n 150p "$tmp/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["invocation_id"])')
expect_rc 0 "ledger export --since ID" "$agora" ledger export --since "$id" --home "$home"
[ "$(wc -l <"$tmp/out")" = 50 ] && ok "export --since an id: 50 lines" || bad "export --since id"
expect_rc 0 "ledger export --since SEQ" "$agora" ledger export --since 190 --home "$home"
[ "$(wc -l <"$tmp/out")" = 10 ] && ok "export --since 190: 10 lines" || bad "export --since seq"
expect_rc 1 "export --since unknown" "$agora" ledger export --since nope --home "$home"
expect_rc 2 "ledger without subcommand" "$agora" ledger
expect_rc 0 "ledger --help" "$agora" ledger --help
expect_rc 0 "usage --help" "$agora" usage --help
expect_rc 1 "no home" env -u AGORA_HOME -u XDG_DATA_HOME -u HOME "$agora" usage
[ "$(stat -c %a "$home/ledger.db")" = 600 ] && ok "ledger.db is 0600" || bad "ledger.db mode $(stat -c %a "$home/ledger.db")"

# Tamper: lower the amount of row 37 as someone editing the database would.
cp "$home/ledger.db" "$tmp/pristine.db"
sql "UPDATE entries SET amount_minor = amount_minor + 1 WHERE seq = 37"
expect_rc 1 "verify after editing row 37" "$agora" ledger verify --home "$home"
grep -q 'seq 37 ' "$tmp/err" && ok "verify names row 37" || bad "verify message: $(cat "$tmp/err")"
expect_rc 1 "verify --json after tamper" "$agora" ledger verify --json --home "$home"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and d["bad_seq"]==37' "$tmp/out" \
    && ok "verify --json bad_seq 37" || bad "verify --json: $(cat "$tmp/out")"
sql "UPDATE entries SET amount_minor = amount_minor - 1 WHERE seq = 37"
expect_rc 0 "verify after undoing the edit" "$agora" ledger verify --home "$home"
sql "DELETE FROM entries WHERE seq = 120"
expect_rc 1 "verify after deleting row 120" "$agora" ledger verify --home "$home"
grep -q 'seq 120 ' "$tmp/err" && ok "verify names row 120" || bad "verify message: $(cat "$tmp/err")"
cp "$tmp/pristine.db" "$home/ledger.db"; rm -f "$home/ledger.db-wal" "$home/ledger.db-shm"
sql "UPDATE entries SET vendor_share_bps = 9000 WHERE seq = 5"
expect_rc 1 "verify after changing a share" "$agora" ledger verify --home "$home"
grep -q 'seq 5 ' "$tmp/err" && ok "verify names row 5" || bad "verify message: $(cat "$tmp/err")"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
