#!/usr/bin/python3
"""Train the lesion segmentation model of the onnx-segment and torch-segment examples.

    /usr/bin/python3 plugins-examples/models/train_phantom.py [--out DIR] [--steps N]

Needs Debian's python3-torch and python3-numpy (no PyPI). Trains a small 2-D U-Net (about
6 k parameters) on synthetic CT slices from phantom.py, whose truth is known, with a fixed seed,
then writes next to this script (or into --out):

    lesion-unet.onnx   ONNX (opset 11, any batch/height/width divisible by 4), for OpenCV DNN
    lesion-unet.pt     TorchScript (torch.jit.trace), for libtorch
    lesion-unet.json   how it was made: seed, steps, time, validation Dice

Input: float32 N x 1 x H x W, HU normalized as phantom.normalize; output: N x 1 x H x W lesion
probability. The tests never retrain; they use the committed files.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import phantom  # noqa: E402

SEED = 20261202
PATCH = 64


class UNet(nn.Module):
    """Two down, two up; 4/8/16 channels (small enough to train in minutes on two CPU cores)."""

    def __init__(self):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(o, o, 3, padding=1), nn.ReLU())

        self.e0, self.e1, self.mid = block(1, 4), block(4, 8), block(8, 16)
        self.pool = nn.MaxPool2d(2)
        self.u1, self.d1 = nn.ConvTranspose2d(16, 8, 2, stride=2), block(16, 8)
        self.u0, self.d0 = nn.ConvTranspose2d(8, 4, 2, stride=2), block(8, 4)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        a = self.e0(x)
        b = self.e1(self.pool(a))
        c = self.mid(self.pool(b))
        d = self.d1(torch.cat([self.u1(c), b], 1))
        e = self.d0(torch.cat([self.u0(d), a], 1))
        return torch.sigmoid(self.head(e))


def batch(rng, n):
    xs, ys = [], []
    for _ in range(n):
        hu, m = phantom.training_slice(rng, PATCH)
        xs.append(phantom.normalize(hu))
        ys.append(m.astype(np.float32))
    return torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ys)[:, None])


def dice(p, t):
    inter = (p * t).sum()
    return float(2 * inter / (p.sum() + t.sum() + 1e-6))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(SEED)
    model = UNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    t0 = time.time()
    for step in range(args.steps):
        x, y = batch(rng, 16)
        p = model(x)
        soft_dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        loss = nn.functional.binary_cross_entropy(p, y) + soft_dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    train_s = time.time() - t0

    # Validation on slices from another seed.
    model.eval()
    vrng = np.random.default_rng(SEED + 1)
    with torch.no_grad():
        x, y = batch(vrng, 256)
        p = (model(x) > 0.5).float()
    val = dice(p, y)
    print(f"validation Dice (256 held-out slices): {val:.4f}")

    os.makedirs(args.out, exist_ok=True)
    example = torch.zeros(1, 1, PATCH, PATCH)
    torch.onnx.export(model, example, os.path.join(args.out, "lesion-unet.onnx"),
                      input_names=["hu"], output_names=["lesion"], opset_version=11,
                      dynamic_axes={"hu": {0: "n", 2: "h", 3: "w"},
                                    "lesion": {0: "n", 2: "h", 3: "w"}})
    traced = torch.jit.trace(model, example)
    traced.save(os.path.join(args.out, "lesion-unet.pt"))
    info = {"seed": SEED, "steps": args.steps, "batch": 16, "patch": PATCH,
            "threads": args.threads, "train_seconds": round(train_s, 1),
            "torch": torch.__version__, "validation_dice": round(val, 4),
            "parameters": sum(p.numel() for p in model.parameters()),
            "input": "float32 Nx1xHxW, clip((HU - %g) / %g, -%g, %g), H and W multiples of 4"
                     % (phantom.HU_CENTER, phantom.HU_SCALE, phantom.HU_CLIP, phantom.HU_CLIP),
            "output": "float32 Nx1xHxW lesion probability"}
    with open(os.path.join(args.out, "lesion-unet.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
