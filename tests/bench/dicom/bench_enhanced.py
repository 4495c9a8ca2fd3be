#!/usr/bin/python3
"""Benchmark (not a test): what reading the enhanced multi-frame functional groups costs.

Makes an Enhanced CT of N frames (default 2000; 2 stacks, shuffled, oblique, per-frame rescale;
tiny 8x6 pixels so the figure is the metadata path) with tests/integration/e2e/make_enhanced.py's
writer, then times, median of 15 runs each:
  baseline  `agora dicom scan` of the same bytes with the Per-Frame Functional Groups Sequence
            moved to a private tag: the parser reads exactly as much, the scanner finds no
            per-frame groups (one unordered multi-frame instance)
  enhanced  `agora dicom scan` of the object: parse + resolve every frame's functional groups +
            split into volumes + order each along its normal
and prints both medians and their ratio. Build with an optimized, unsanitized build for figures.

usage: bench_enhanced.py AGORA [FRAMES]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration", "e2e"))
import make_enhanced as me  # noqa: E402
import pydicom  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402


def median_time(cmd, runs=15):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    agora = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    half = n // 2
    o1, o2 = me.oblique(20, 15), me.oblique(-35, 10)
    frames = (me.volume_frames([0, 0, 0], o1, 1.0, half, "1", 0, 100, lambda k: (1.0, -1024.0 + k))
              + me.volume_frames([5, 5, 5], o2, 1.0, n - half, "2", 0, 200,
                                 lambda k: (2.0, -1000.0 - k)))
    import random
    random.Random(1).shuffle(frames)
    for f in frames:
        f["ori_per_frame"] = True
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([me.seq_item(PixelSpacing=["1", "1"])])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "enh", "ct.dcm")
        me.write(path, me.ENH_CT, "CT", frames, shared, [0x00209056, 0x00209057], "2.25.99")
        base = os.path.join(d, "base", "ct.dcm")
        ds = pydicom.dcmread(path)
        el = ds[0x52009230]
        del ds[0x52009230]
        ds.add_new(0x00091010, "LO", "AGORA BENCH")  # private creator of block 0x10
        ds.add_new(0x00091030, "SQ", el.value)
        os.makedirs(os.path.dirname(base))
        ds.save_as(base, write_like_original=False)
        t_base = median_time([agora, "dicom", "scan", base, "--json"])
        t_enh = median_time([agora, "dicom", "scan", path, "--json"])
    print("enhanced CT of %d frames (2 stacks, per-frame position/orientation/rescale)" % n)
    print("  baseline (groups not read) %8.1f ms" % (t_base * 1e3))
    print("  enhanced (groups read)     %8.1f ms   ratio %.2f" % (t_enh * 1e3, t_enh / t_base))


if __name__ == "__main__":
    main()
