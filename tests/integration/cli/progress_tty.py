#!/usr/bin/env python3
"""Progress of long work, on a terminal and on a pipe (docs/clinic-guide.md, "Progress").

A 200-series study made with `agora dicom synth` goes through `agora dev run`, and its 200
files through `agora deid`:
  - with stderr on a pseudo-terminal, progress is ONE line updated in place: every update is
    "\\r" + clear-to-end ("\\x1b[K"), the progress writes no newline until the end, and the line
    left on screen is the last job's;
  - with stderr on a pipe, a line for the first and the last job and at most one per 5 s in
    between: a handful of lines for 200 series, not 200;
  - with --quiet, no progress at all.
Usage: progress_tty.py AGORA PLUGINS_DIR
"""
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time

# What a terminal shows, as the guide test models it (one model of "\r" and ESC [ K).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guides"))
from run_guides import terminal_lines  # noqa: E402

AGORA, PLUGINS = sys.argv[1], sys.argv[2]
N_SERIES = 200
INTERVAL_S = 5  # AGORA__PROGRESS_INTERVAL_S (host/cli/progress.h)
fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


def run_on_pty(args):
    """Run with stderr on a pseudo-terminal (stdout discarded); returns (rc, stderr bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 1.0)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    return p.wait(timeout=60), out


with tempfile.TemporaryDirectory(prefix="agora-progress-") as tmp:
    study = os.path.join(tmp, "study")
    for i in range(N_SERIES):
        r = subprocess.run([AGORA, "dicom", "synth", "--modality", "CT", "--slices", "1",
                            "--rows", "16", "--cols", "16", "--seed", str(i + 1), "-o",
                            os.path.join(study, "s%03d" % i)], capture_output=True)
        if r.returncode != 0:
            sys.exit("dicom synth failed: %s" % r.stderr.decode(errors="replace"))
    dev = [AGORA, "dev", "run", "--plugin", os.path.join(PLUGINS, "hello.so"), study]

    # 1. A terminal: one updating line.
    rc, err = run_on_pty(dev)
    text = err.decode(errors="replace").replace("\r\n", "\n")  # the pty's own newline mapping
    check(rc == 0, "dev run on a terminal exits 0 (rc %d)" % rc)
    updates = text.count("\r\x1b[K")
    check(updates >= N_SERIES, "every job updates the line with \\r + clear-to-end (%d updates)"
          % updates)
    job_lines = [l for l in terminal_lines(text) if re.match(r"\[\d+/%d\]" % N_SERIES, l)]
    check(len(job_lines) == 1, "the terminal shows ONE progress line, not one per job (%d)"
          % len(job_lines))
    check(bool(job_lines) and job_lines[-1].startswith("[%d/%d]" % (N_SERIES, N_SERIES))
          and job_lines[-1].endswith(")") and " ... ok (" in job_lines[-1],
          "the line left on screen is the last job's: %r" % (job_lines[-1:] or ""))
    check(re.search(r"\n%d job\(s\): %d ok, 0 failed\n?$" % (N_SERIES, N_SERIES), text) is not None,
          "the summary starts on a line of its own after the progress line")

    # 2. A pipe: a few lines, throttled by time.
    t0 = time.monotonic()
    r = subprocess.run(dev, capture_output=True)
    elapsed = time.monotonic() - t0
    perr = r.stderr.decode(errors="replace")
    check(r.returncode == 0, "dev run on a pipe exits 0")
    check("\r" not in perr and "\x1b" not in perr, "a pipe gets no carriage return or escape")
    n = len([l for l in perr.splitlines() if re.match(r"\[\d+/%d\]" % N_SERIES, l)])
    most = 2 + int(elapsed / INTERVAL_S) + 1
    check(2 <= n <= most, "a pipe gets the first, the last and at most one per %d s: %d lines "
          "in %.1f s (at most %d)" % (INTERVAL_S, n, elapsed, most))
    check(perr.splitlines()[-1] == "%d job(s): %d ok, 0 failed" % (N_SERIES, N_SERIES)
          if perr else False, "the pipe ends with the summary")

    # 3. --quiet: nothing but the summary.
    r = subprocess.run(dev[:3] + ["--quiet"] + dev[3:], capture_output=True)
    qerr = r.stderr.decode(errors="replace")
    check(r.returncode == 0 and not re.search(r"\[\d+/", qerr),
          "--quiet prints no progress line")

    # 4. deid of 200 files: the same updating line on a terminal.
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write("ab" * 32)
    os.chmod(secret, 0o600)
    rc, err = run_on_pty([AGORA, "deid", study, "-o", os.path.join(tmp, "deid"), "--secret",
                          secret, "--allow-burned-in"])
    text = err.decode(errors="replace").replace("\r\n", "\n")
    check(rc == 0, "deid on a terminal exits 0 (rc %d)" % rc)
    lines = [l for l in terminal_lines(text) if l.startswith("agora deid: ") and "files" in l
             and "/" in l and "written" not in l]
    check(lines == ["agora deid: %d/%d files" % (N_SERIES, N_SERIES)],
          "deid shows one updating line ending at %d/%d: %r" % (N_SERIES, N_SERIES, lines[:3]))
    check(text.count("\r\x1b[K") >= N_SERIES, "deid updates it with \\r + clear-to-end")
    r = subprocess.run([AGORA, "deid", study, "-o", os.path.join(tmp, "deid2"), "--secret",
                        secret, "--allow-burned-in", "--quiet"], capture_output=True)
    check(r.returncode == 0 and b"files" not in r.stderr, "deid --quiet prints no progress")

sys.exit(1 if fails else 0)
