#!/bin/bash
# A plugin killed for a forbidden system call (issue 10): `agora dev run` names the call
# ("forbidden system call: execve (59)"), the development-mode trap; `agora run` (the clinic
# path: pack, certify, install, run) keeps the kernel's plain kill and says SIGSYS without a
# name. Both classify it as a policy violation.
# Usage: dev_run_trap.sh AGORA HOSTILE_EXEC_SO
set -euo pipefail
A=$1 SO=$2
T=$(mktemp -d /tmp/agora-e2e-trap.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "not ok: $*"; exit 1; }
q() { "$@" >/dev/null 2>&1 || { echo "command failed: $*"; "$@"; exit 1; }; }

"$A" dicom synth --modality CT --slices 2 --rows 16 --cols 16 --seed 5 -o "$T/in" >/dev/null
cat >"$T/manifest.json" <<'JSON'
{"id": "org.agora.test.hostile", "name": "Hostile exec", "vendor": "Agora tests",
 "version": "1.0.0", "abi": "1.0", "description": "Calls execve from process()",
 "inputs": {"modalities": ["*"]}, "permissions": [],
 "resources": {"memory_mb": 64, "time_s": 30, "threads": 1}, "outputs": ["summary"],
 "pricing": {"model": "free", "price": 0, "currency": "EUR"}}
JSON

# 1. dev run: the message names the call.
if "$A" dev run --plugin "$SO" --manifest "$T/manifest.json" "$T/in" >"$T/dev.out" 2>"$T/dev.err"; then
    fail "dev run of a plugin calling execve succeeded"
fi
cat "$T/dev.out" "$T/dev.err"
grep -q "forbidden system call: execve (59)" "$T/dev.out" "$T/dev.err" ||
    fail "dev run does not name the forbidden call"
echo "ok: dev run names the call"

# 2. The clinic path: same plugin, certified and installed; the plain kill, no name.
export AGORA_HOME=$T/clinic
q "$A" keygen --out "$T/op"
q "$A" pack --manifest "$T/manifest.json" --plugin "$SO" -o "$T/h.agora"
q "$A" certify "$T/h.agora" --catalog "$T/cat" --key "$T/op.key" --model per-series --price 0 \
    --currency EUR --vendor-share-bps 7000
q "$A" init --trust "$T/op.pub"
q "$A" sync "$T/cat"
q "$A" install org.agora.test.hostile
"$A" run "$T/in" >"$T/run.out" 2>"$T/run.err" || true
cat "$T/run.out" "$T/run.err"
grep -q "forbidden system call (SIGSYS)" "$T/run.out" "$T/run.err" ||
    fail "agora run does not report the SIGSYS kill"
if grep -q "forbidden system call: " "$T/run.out" "$T/run.err"; then
    fail "agora run trapped instead of killing (production must keep kill-by-default)"
fi
echo "ok: agora run keeps the plain kill"
