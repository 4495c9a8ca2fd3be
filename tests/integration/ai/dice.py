#!/usr/bin/python3
"""Dice of a predicted mask against a phantom's truth (make_phantoms.py), both one byte per
voxel. Prints the Dice; exits 1 when it is below MIN or the sizes differ.

    dice.py TRUTH MASK MIN
"""
import sys

import numpy as np

truth, mask, lo = sys.argv[1], sys.argv[2], float(sys.argv[3])
t = np.fromfile(truth, dtype=np.uint8) != 0
m = np.fromfile(mask, dtype=np.uint8) != 0
if t.size != m.size:
    print("mask has %d voxels, truth %d" % (m.size, t.size))
    sys.exit(1)
d = 2.0 * np.logical_and(t, m).sum() / max(1, t.sum() + m.sum())
print("%.4f" % d)
sys.exit(0 if d >= lo else 1)
