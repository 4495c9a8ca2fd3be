#!/bin/bash
# agora dev run against plugins that misbehave at its edges (issue 8):
#  - an init that never returns ends within --timeout (no 30 s setup, no retries), clearly;
#  - C1 control characters from a plugin never reach the terminal raw (escaped as \u{9b});
#  - --json says which mechanism enforces the memory cap.
# Usage: dev_run_limits.sh AGORA HANG_SO C1_SO
set -euo pipefail
AGORA=$1 HANG=$2 C1=$3
T=$(mktemp -d /tmp/agora-e2e-limits.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "not ok: $*"; exit 1; }

"$AGORA" dicom synth --modality CT --slices 2 --rows 16 --cols 16 --seed 3 -o "$T/in" >/dev/null
cat >"$T/manifest.json" <<'JSON'
{"id": "org.agora.tests.misbehave", "name": "Misbehave", "vendor": "Agora tests",
 "version": "1.0.0", "abi": "1.0", "description": "Edge cases of dev run",
 "inputs": {"modalities": ["*"]}, "permissions": [],
 "resources": {"memory_mb": 64, "time_s": 60, "threads": 1}, "outputs": ["findings", "summary"]}
JSON

# 1. init that never returns, --timeout 5: well under 20 s, non-zero, says why.
start=$(date +%s%N)
if "$AGORA" dev run --plugin "$HANG" --manifest "$T/manifest.json" --timeout 5 "$T/in" \
    >"$T/hang.out" 2>"$T/hang.err"; then
    fail "a plugin whose init hangs succeeded"
fi
ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$T/hang.err"
# One 5 s setup attempt, not three (15 s) nor 30 s ones: well under 20 s, with slack for load.
[ "$ms" -lt 12000 ] || fail "dev run --timeout 5 with a hanging init took $ms ms"
grep -q "did not become ready within 5000 ms" "$T/hang.err" || fail "hang: no clear message"
grep -q "not retried" "$T/hang.err" || fail "hang: message does not say it was not retried"
echo "ok: hanging init stopped after $ms ms"

# 2. C1 controls: escaped in the text output, never raw, on stdout or stderr.
AGORA_LOG=info "$AGORA" dev run --plugin "$C1" --manifest "$T/manifest.json" "$T/in" \
    >"$T/c1.out" 2>"$T/c1.err" || { cat "$T/c1.err"; fail "dev run of the C1 plugin"; }
cat "$T/c1.out"
for f in "$T/c1.out" "$T/c1.err"; do
    if LC_ALL=C grep -q -P '\xc2[\x80-\x9f]|[\x00-\x08\x0b-\x1f\x7f]' "$f"; then
        fail "a raw control character reached $(basename "$f")"
    fi
done
grep -qF 'summary     summary \u{9b}31m tab\u{09}here \\ done' "$T/c1.out" || fail "summary not escaped"
grep -qF 'meaning \u{9b}2J cleared' "$T/c1.out" || fail "finding meaning not escaped"
grep -qF 'name \u{9b}1m' "$T/c1.out" || fail "measurement name not escaped"
echo "ok: C1 controls escaped"

# 3. --json names the memory-cap mechanism, and the JSON keeps the plugin's text intact.
"$AGORA" dev run --plugin "$C1" --manifest "$T/manifest.json" --json "$T/in" >"$T/c1.json" \
    2>/dev/null || fail "dev run --json"
/usr/bin/env python3 - "$T/c1.json" <<'PY' || fail "json output"
import json, sys
doc = json.load(open(sys.argv[1]))
cap = doc["sandbox"]["memory_cap"]
assert cap["mechanism"] in ("rlimit", "cgroup-v2"), cap
assert cap["memory_mb"] == 64, cap
assert cap["detail"], cap
assert doc["jobs"][0]["result"]["summary"].startswith("summary \u009b31m"), doc["jobs"][0]
print("ok: memory cap mechanism:", cap["mechanism"], "-", cap["detail"])
PY
