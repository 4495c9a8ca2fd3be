#!/usr/bin/env python3
"""Crash safety of the ledger: SIGKILL a batch of invocations at random points many times,
resume it each time, and after every kill check that each invocation is recorded at most
once, nothing is charged twice and the statements reconcile with the rows (crash_batch check);
at the end, everything is recorded exactly once and `agora ledger verify` / `agora statement`
agree. usage: test_crash.py CRASH_BATCH AGORA [RUNS] [N]"""
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time

batch, agora = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 50
n = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
deadline = time.monotonic() + 60  # bounded: stop killing after this, then finish
rng = random.Random(int(os.environ.get("AGORA_TEST_SEED", "0")) or None)

def check(home, full=False):
    args = [batch, "check", home, str(n)] + (["full"] if full else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit(f"FAIL check after kill: {p.stderr.strip()}")
    return json.loads(p.stdout)

with tempfile.TemporaryDirectory() as home:
    killed = completed = 0
    progress = []
    for r in range(runs):
        if time.monotonic() > deadline:
            break
        p = subprocess.Popen([batch, "run", home, str(n)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        # Kill after a random number of group commits (0..8) plus a random delay, so the
        # kill points do not depend on how loaded the machine is: during open, between mint
        # and record, inside a commit, during a retry.
        let_through = rng.randint(0, 8)
        t_end = time.monotonic() + 20
        while let_through > 0 and time.monotonic() < t_end:
            ready, _, _ = select.select([p.stdout], [], [], 1.0)
            if ready and not p.stdout.readline():
                break  # finished
            let_through -= bool(ready)
        time.sleep(rng.uniform(0.0, 0.02))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)  # our own child, by pid
            killed += 1
        rc = p.wait()
        err = p.stderr.read().decode()
        if rc not in (0, -signal.SIGKILL):
            sys.exit(f"FAIL run {r}: exit {rc}: {err.strip()}")
        completed += rc == 0
        state = check(home)
        progress.append(state["recorded"])
    print(f"ok   {len(progress)} runs, {killed} killed mid-batch, {completed} finished; "
          f"recorded after each: {progress[:10]}...{progress[-3:]}")
    if killed < min(10, runs):
        sys.exit(f"FAIL only {killed} runs were killed mid-batch: the test did not test crashes")
    # Finish the batch, then everything must be recorded exactly once.
    p = subprocess.run([batch, "run", home, str(n)], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        sys.exit(f"FAIL final run: {p.stderr.strip()}")
    state = check(home, full=True)
    assert state["recorded"] == n, state
    print(f"ok   all {n} invocations recorded exactly once, {state['rows']} rows")
    v = subprocess.run([agora, "ledger", "verify", "--home", home], capture_output=True, text=True)
    if v.returncode != 0:
        sys.exit(f"FAIL agora ledger verify: {v.stderr.strip()}")
    print(f"ok   agora ledger verify: {v.stdout.strip()}")
    for period, totals in state["period_totals"].items():
        s = subprocess.run([agora, "statement", "--period", period, "--json", "--home", home],
                           capture_output=True, text=True)
        if s.returncode != 0 or json.loads(s.stdout)["totals"] != totals:
            sys.exit(f"FAIL agora statement {period} disagrees with the ledger rows")
        stmt = json.loads(s.stdout)
        for v in stmt["vendors"]:
            lines = v["lines"]
            for key in ("gross_minor", "vendor_share_minor", "platform_share_minor"):
                if sum(l[key] for l in lines) != v[key]:
                    sys.exit(f"FAIL vendor {key} is not the sum of its lines")
            for l in lines:
                if l["vendor_share_minor"] != (l["gross_minor"] * l["vendor_share_bps"]) // 10000:
                    sys.exit("FAIL vendor share does not follow the rounding rule")
        print(f"ok   statement {period} reconciles: {totals}")
print("3 passed, 0 failed")
