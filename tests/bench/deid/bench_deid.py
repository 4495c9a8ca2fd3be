#!/usr/bin/env python3
"""Benchmark: `agora deid` on a 300-file 512x512 uncompressed CT series (made with `agora dicom
synth`) against three baselines measured in the same run on the same files:
  - before: the same profile applied in the host process, as `agora deid` did before the rule of
    two moved parsing into the ingest sandbox (deid_inprocess, built next to this script;
    --inprocess PATH);
  - DCMTK dcmodify rewriting the files in place (on a fresh copy each run): erase the identity
    tags, all private tags and the overlay, new SOP Instance UIDs;
  - GDCM gdcmanon --dumb over the directory, removing/emptying the same tags.
Targets: agora no slower than dcmodify, and at most 1/3 of gdcmanon's time.
Not a test (not registered with meson test). Use an optimised build WITHOUT sanitizers:
    meson setup build-bench --buildtype=release && ninja -C build-bench
    python3 tests/bench/deid/bench_deid.py build-bench/host/cli/agora \
        [--inprocess build-bench/tests/bench/deid/deid_inprocess] [--runs 5] [--slices 300]
Prints medians (wall time, seconds) and the ratios.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TAGS = ["0010,0010", "0010,0020", "0010,0030", "0008,0050", "0008,0080", "0008,0081",
        "0008,0090", "0008,1010", "0008,1030", "0008,1040", "0008,1050", "0008,1070",
        "0010,1040", "0010,2154", "0010,4000", "0018,1000", "0020,0010", "0020,4000",
        "6000,3000", "6000,0022", "0010,1002", "0040,0275"]


CPU = {}


def timed(cmd, **kw):
    """Wall time of cmd; its CPU time (user + system, children) is recorded in CPU[cmd[0]]."""
    # Start every tool from the same state: no dirty pages left by the previous one.
    os.sync()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(cmd[0], []).append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    if r.returncode != 0:
        sys.exit("benchmark command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd[:4]),
                                                           r.stderr.decode()[-800:]))
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("agora")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--inprocess", help="deid_inprocess: the in-process 'before'")
    a = ap.parse_args()
    agora = os.path.abspath(a.agora)
    tmp = tempfile.mkdtemp(prefix="agora-bench-deid-")
    try:
        src = os.path.join(tmp, "in")
        subprocess.run([agora, "dicom", "synth", "--modality", "CT", "--slices", str(a.slices),
                        "-o", src], check=True, stderr=subprocess.DEVNULL)
        files = sorted(os.listdir(src))
        total = sum(os.path.getsize(os.path.join(src, f)) for f in files)
        print("series: %d files, %.1f MiB, 512x512 CT, Explicit VR LE" % (len(files),
                                                                          total / 2**20))
        secret = os.path.join(tmp, "secret")
        with open(secret, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(secret, 0o600)

        results = {"agora deid": [], "before (in-process)": [], "dcmodify": [],
                   "gdcmanon --dumb": [], "cp -r (floor)": []}
        inproc = os.path.abspath(a.inprocess) if a.inprocess else None
        have_dcmodify = shutil.which("dcmodify") is not None
        have_gdcmanon = shutil.which("gdcmanon") is not None
        # Warm the page cache once so that every tool reads from memory.
        subprocess.run(["cat"] + [os.path.join(src, f) for f in files],
                       stdout=subprocess.DEVNULL)
        for run in range(a.runs):
            out = os.path.join(tmp, "agora-%d" % run)
            results["agora deid"].append(
                timed([agora, "deid", src, "-o", out, "--secret", secret]))
            shutil.rmtree(out)
            if inproc:
                out = os.path.join(tmp, "before-%d" % run)
                results["before (in-process)"].append(timed([inproc, secret, out, src]))
                shutil.rmtree(out)
            # The floor: copying the same bytes without looking at them.
            out = os.path.join(tmp, "cp-%d" % run)
            results["cp -r (floor)"].append(timed(["cp", "-r", src, out]))
            shutil.rmtree(out)
            if have_dcmodify:
                copy = os.path.join(tmp, "dcm-%d" % run)
                shutil.copytree(src, copy)  # dcmodify edits in place: not timed
                cmd = ["dcmodify", "-nb", "-ie", "-imt", "-ep", "-gin"]
                for t in TAGS:
                    cmd += ["-ea", "(%s)" % t]
                results["dcmodify"].append(timed(cmd + [os.path.join(copy, f) for f in files]))
                shutil.rmtree(copy)
            if have_gdcmanon:
                out = os.path.join(tmp, "gdcm-%d" % run)
                os.makedirs(out)
                cmd = ["gdcmanon", "--dumb", "--continue", "-i", src, "-o", out]
                for t in TAGS:
                    if t.startswith("6000"):
                        continue  # gdcmanon --dumb refuses repeating-group tags
                    g, e = t.split(",")
                    cmd += ["--remove", "%d,%d" % (int(g, 16), int(e, 16))]
                results["gdcmanon --dumb"].append(timed(cmd))
                shutil.rmtree(out)
        med = {k: statistics.median(v) for k, v in results.items() if v}
        for k, v in results.items():
            if v:
                print("%-20s median %.3f s  (runs: %s)" % (k, med[k],
                                                        " ".join("%.3f" % x for x in v)))
            else:
                print("%-20s not available; baseline skipped" % k)
        # CPU time does not depend on what else the machine is doing (shared CI runners).
        cpu = {k: statistics.median(v) for k, v in CPU.items()}
        names = {"agora": "agora deid", "dcmodify": "dcmodify", "gdcmanon": "gdcmanon --dumb",
                 "cp": "cp -r (floor)", "deid_inprocess": "before (in-process)"}
        for k, v in cpu.items():
            print("%-20s median CPU (user+sys) %.3f s" % (names.get(os.path.basename(k), k), v))
        cpu_agora = cpu.get(agora)
        for k in ("dcmodify", "gdcmanon"):
            if k in cpu and cpu_agora is not None:
                print("agora / %-15s CPU = %.3f" % (names[k], cpu_agora / cpu[k]))
        ag = med["agora deid"]
        if "before (in-process)" in med:
            print("agora / before (in-process) = %.3f  (what sandboxed parsing costs)" % (
                ag / med["before (in-process)"]))
        if "dcmodify" in med:
            r = ag / med["dcmodify"]
            print("agora / dcmodify        = %.3f  (target <= 1.0: %s)" % (
                r, "met" if r <= 1.0 else "MISSED"))
        if "gdcmanon --dumb" in med:
            r = ag / med["gdcmanon --dumb"]
            print("agora / gdcmanon --dumb = %.3f  (target <= 0.333: %s)" % (
                r, "met" if r <= 1 / 3 else "MISSED"))
        if "cp -r (floor)" in med and "gdcmanon --dumb" in med:
            print("cp -r / gdcmanon --dumb = %.3f  (what merely copying the bytes costs here)" % (
                med["cp -r (floor)"] / med["gdcmanon --dumb"]))
        print("agora throughput: %.0f files/s, %.0f MiB/s" % (len(files) / ag,
                                                              total / 2**20 / ag))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
