#!/usr/bin/env python3
"""The job queue under SIGKILL at random points: queue_drive's `churn` plays the daemon's loop
(enqueue, claim, run settled in the ledger transaction, deliver) and is killed again and again.
After every kill, in the database as the next start finds it:
  - every job past its run (phase 'send') has exactly its ledger row, and no job still in its
    run phase has one: the row and the state change never come apart;
  - phase and state agree; the ledger's hash chain verifies (`agora ledger verify`).
At the end, a run without kills finishes every job: all done, one ledger row each, and no job
took more attempts than there were kills.

usage: queue_crash.py QUEUE_DRIVE AGORA [KILLS] [JOBS]
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time


def check(db, kills):
    c = sqlite3.connect(db, timeout=10)
    try:
        q = lambda sql: c.execute(sql).fetchone()[0]
        rowless = q("SELECT COUNT(*) FROM queue_job j WHERE phase = 'send' AND NOT EXISTS "
                    "(SELECT 1 FROM entries e WHERE e.kind = 'invocation' AND "
                    "e.invocation_id = j.invocation_id)")
        early = q("SELECT COUNT(*) FROM queue_job j WHERE phase = 'run' AND EXISTS "
                  "(SELECT 1 FROM entries e WHERE e.kind = 'invocation' AND "
                  "e.invocation_id = j.invocation_id)")
        rows = q("SELECT COUNT(*) FROM entries WHERE kind = 'invocation'")
        sent = q("SELECT COUNT(*) FROM queue_job WHERE phase = 'send'")
        bad = q("SELECT COUNT(*) FROM queue_job WHERE NOT ((phase = 'send' AND state IN "
                "('sending','done')) OR (phase = 'run' AND state IN "
                "('waiting','running','retryable')))")
        return rowless, early, rows, sent, bad
    except sqlite3.OperationalError:  # killed before the first table existed
        return 0, 0, 0, 0, 0
    finally:
        c.close()


def main():
    drive, agora = sys.argv[1], sys.argv[2]
    kills = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    jobs = int(sys.argv[4]) if len(sys.argv) > 4 else 150
    rng = random.Random(int(os.environ.get("AGORA_TEST_SEED", "12")))
    fails = 0
    with tempfile.TemporaryDirectory() as home:
        db = os.path.join(home, "ledger.db")
        killed = 0
        for i in range(kills):
            p = subprocess.Popen([drive, home, "churn", str(jobs)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.02, 0.3))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            _, errs = p.communicate()
            if p.returncode not in (0, -signal.SIGKILL):
                print(f"FAIL churn exited {p.returncode}: {errs.decode(errors='replace')}")
                return 1
            rowless, early, rows, sent, bad = check(db, killed)
            ok = rowless == 0 and early == 0 and rows == sent and bad == 0
            v = subprocess.run([agora, "ledger", "verify", "--home", home],
                               capture_output=True, text=True)
            ok = ok and (v.returncode == 0 or rows == 0)
            print(f"{'ok  ' if ok else 'FAIL'} kill {i + 1}: {sent} jobs settled, {rows} ledger "
                  f"rows, {rowless} settled without a row, {early} rows before the settle, "
                  f"{bad} inconsistent states; verify exit {v.returncode}")
            fails += not ok
        done = subprocess.run([drive, home, "churn", str(jobs)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"FAIL the last churn: {done.stderr}")
            return 1
        print(f"ok   last run: {done.stdout.strip()}")
        out = subprocess.run([agora, "queue", "--home", home, "--json", "--limit", "10000"],
                             capture_output=True, text=True, check=True)
        j = json.loads(out.stdout)
        rowless, early, rows, sent, bad = check(db, killed)
        most = max((x["run_attempts"] for x in j["jobs"]), default=0)
        rerun = sum(1 for x in j["jobs"] if x["run_attempts"] > 1)
        final = (j["total"] == jobs and j["counts"]["done"] == jobs and rows == jobs and
                 rowless == 0 and early == 0 and most <= killed + 1 and killed >= min(3, kills))
        print(f"{'ok  ' if final else 'FAIL'} after {killed} kills mid-work: "
              f"{j['counts']['done']}/{jobs} done, {rows} ledger rows, {rerun} jobs run again "
              f"after a kill (most run attempts {most})")
        fails += not final
        v = subprocess.run([agora, "ledger", "verify", "--home", home], capture_output=True,
                           text=True)
        print(f"{'ok  ' if v.returncode == 0 else 'FAIL'} ledger verify: {v.stdout.strip()}")
        fails += v.returncode != 0
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
