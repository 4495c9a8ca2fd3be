#!/usr/bin/python3
"""Benchmark (not a test): AI inference inside the sandbox vs outside it (issue 10).

The same plugin .so (onnx-segment, torch-segment), the same model asset and the same voxels:
  outside  tests/integration/ai/ai_harness (the host side of agora.h, no sandbox)
  inside   agora dev run --asset (the real runner: namespaces, seccomp, Landlock, rlimits)
Both report the plugin's own figure, the time spent in the framework's forward passes for the
whole series (the "inference: ... in X ms" line every job logs), so that process start, DICOM
decoding and IPC are left out on both sides. Rounds alternate inside and outside so that load
on the machine hits both alike; prints medians and the ratio inside/outside (target <= 1.10).

usage: bench_ai.py AGORA HARNESS PLUGIN_DIR MODEL_DIR MAKE_PHANTOMS [ROUNDS [ROWS SLICES]]
Default: 5 rounds of one 512x512x20 series (the size issue 10 measured).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

LINE = re.compile(r"inference: (\d+) frames of \S+ in ([0-9.]+) ms")


def times(text):
    return [float(m.group(2)) for m in LINE.finditer(text)]


def main():
    if len(sys.argv) not in (6, 7, 9):
        sys.exit(__doc__)
    agora, harness, plugins, models, make = sys.argv[1:6]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    rows, slices = (int(sys.argv[7]), int(sys.argv[8])) if len(sys.argv) == 9 else (512, 20)
    tmp = tempfile.mkdtemp(prefix="agora-bench-ai.")
    try:
        subprocess.run(["/usr/bin/python3", make, tmp, "5150", "1", str(rows), str(rows), str(slices)],
                       check=True)
        env = dict(os.environ, AGORA_LOG="info")
        ran = 0
        for engine, asset, model in (("onnx", "model.onnx", "lesion-unet.onnx"),
                                     ("torch", "model.pt", "lesion-unet.pt")):
            so = os.path.join(plugins, engine + "-segment.so")
            if not os.path.exists(so):
                print("%s-segment: not built (framework missing at configure time), skipped" % engine)
                continue
            man = os.path.join(plugins, engine + "-segment.manifest.json")
            threads = json.load(open(man))["resources"]["threads"]
            spec = "%s=%s" % (asset, os.path.join(models, model))
            inside, outside = [], []
            for _ in range(rounds):
                out = subprocess.run([harness, "--plugin", so, "--asset", spec, "--threads",
                                      str(threads), "--input", os.path.join(tmp, "study-0.raw")],
                                     capture_output=True, text=True, check=True)
                outside += times(out.stderr)
                ins = subprocess.run([agora, "dev", "run", "--plugin", so, "--manifest", man,
                                      "--asset", spec, "--quiet", os.path.join(tmp, "dicom")],
                                     capture_output=True, text=True, env=env)
                if ins.returncode != 0:
                    sys.exit("%s-segment failed inside the sandbox:\n%s" % (engine, ins.stderr[-2000:]))
                inside += times(ins.stderr)
            if len(inside) != rounds or len(outside) != rounds:
                sys.exit("%s-segment: expected %d inference lines each side, got %d inside, %d outside"
                         % (engine, rounds, len(inside), len(outside)))
            mi, mo = statistics.median(inside), statistics.median(outside)
            print("%s-segment, %dx%dx%d, %d thread(s), %d rounds: inside %.1f ms, outside %.1f ms "
                  "(medians); ratio inside/outside %.3f (target <= 1.10)"
                  % (engine, rows, rows, slices, threads, rounds, mi, mo, mi / mo))
            ran += 1
        if ran == 0:
            sys.exit("no AI example was built: install libopencv-dnn-dev and libtorch-dev (scripts/deps.sh)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
