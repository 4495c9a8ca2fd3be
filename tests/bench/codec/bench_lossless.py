#!/usr/bin/python3
"""Benchmark: our JPEG Lossless (Process 14 SV1, SV6) and 12-bit JPEG Extended (Process 4)
decoders vs DCMTK's dcmdjpeg on the same file.

Makes a synthetic 512x512, 16-bit (12 stored), N-frame MONOCHROME2 image (smooth anatomy-like
gradients + noise, so Huffman codes look like real CT/MR), compresses it with `dcmcjpeg +e1`,
then times:
  ours-inproc   codec_tool decoding every frame, in-process median of passes (decode only)
  ours-process  codec_tool as a whole process (read frames + decode + write raw), hyperfine
  dcmdjpeg      dcmdjpeg in.dcm out.dcm (parse + decode + write DICOM), hyperfine
and prints medians and ratios. Verifies first that both decoders produce identical pixels (the
original for lossless; for 12-bit lossy, ours must equal dcmdjpeg's).

usage: bench_lossless.py CODEC_TOOL [FRAMES]
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_pixel_data
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def make_image(path, frames, size=512):
    rng = np.random.default_rng(1234)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(x - size / 2, y - size / 2)
    base = 1000 + 800 * np.exp(-(r / (size / 3)) ** 2) + 300 * np.sin(x / 23.0) * np.cos(y / 31.0)
    vol = np.empty((frames, size, size), dtype=np.uint16)
    for f in range(frames):
        img = base + 200 * np.sin((x + 7 * f) / 41.0) + rng.normal(0, 12, (size, size))
        vol[f] = np.clip(img, 0, 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"  # multi-frame grayscale word SC
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows = ds.Columns = size
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = vol.tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return vol


def hyperfine(cmds, runs, tmp):
    out = os.path.join(tmp, "hf.json")
    args = ["hyperfine", "-N", "--warmup", "1", "--runs", str(runs), "--export-json", out]
    subprocess.run(args + cmds, check=True, capture_output=True)
    with open(out) as f:
        # Wall-clock median, and mean CPU time (user + system), which is robust on a busy host.
        return [(r["median"], r["user"] + r["system"]) for r in json.load(f)["results"]]


def main():
    tool = sys.argv[1]
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    for t in ("dcmcjpeg", "dcmdjpeg", "hyperfine"):
        if shutil.which(t) is None:
            print(f"SKIP: {t} not installed")
            return 77
    with tempfile.TemporaryDirectory(prefix="agora-codec-bench-") as tmp:
        raw = os.path.join(tmp, "raw.dcm")
        vol = make_image(raw, frames)
        mpix = frames * 512 * 512 / 1e6
        print(f"input: {frames} frames 512x512 16-bit (12 stored), {mpix:.1f} Mpixel; "
              f"medians; ours = codec_tool (read frames, decode, write raw)")
        for label, opts in (("SV1 (.4.70)", ["+e1"]), ("SV6 (.4.57)", ["+el", "+sv", "6"]),
                            ("12-bit Extended (.4.51)", ["+ee"])):
            lossy = opts == ["+ee"]
            comp = os.path.join(tmp, "lossless.dcm")
            subprocess.run(["dcmcjpeg", *opts, raw, comp], check=True)
            ds = pydicom.dcmread(comp)
            framesbin = os.path.join(tmp, "frames.bin")
            with open(framesbin, "wb") as f:
                for frags in generate_pixel_data(ds.PixelData, frames):
                    f.write(struct.pack("<I", len(frags)))
                    for fr in frags:
                        f.write(struct.pack("<I", len(fr)) + fr)
            ours_out = os.path.join(tmp, "ours.raw")
            base = [tool, str(ds.file_meta.TransferSyntaxUID), "512", "512", "1", "16", "12", "0",
                    "0", "MONOCHROME2", ours_out, framesbin]
            r = subprocess.run(base + ["15"], check=True, capture_output=True, text=True)
            inproc = float(r.stdout.split("median_s")[1])
            with open(ours_out, "rb") as f:
                ours_px = f.read()
            if not lossy and ours_px != vol.tobytes():
                print("ERROR: our decoder output differs from the original pixels")
                return 1
            ref = os.path.join(tmp, "ref.dcm")
            subprocess.run(["dcmdjpeg", comp, ref], check=True)
            ref_px = pydicom.dcmread(ref).PixelData
            if ref_px != (ours_px if lossy else vol.tobytes()):
                print("ERROR: dcmdjpeg output differs from " + ("ours" if lossy else "the original"))
                return 1
            (ours_proc, ours_cpu), (dcmtk, dcmtk_cpu) = hyperfine(
                [" ".join(base), f"dcmdjpeg {comp} {ref}"], 10, tmp)
            print(f"{label}: {os.path.getsize(comp) / 1e6:.1f} MB compressed")
            print(f"  ours decode only (in-process) {inproc * 1e3:8.1f} ms  {mpix / inproc:7.1f} Mpix/s")
            print(f"  ours whole process            {ours_proc * 1e3:8.1f} ms  {mpix / ours_proc:7.1f} Mpix/s")
            print(f"  dcmdjpeg whole process        {dcmtk * 1e3:8.1f} ms  {mpix / dcmtk:7.1f} Mpix/s")
            print(f"  CPU time (user+sys, mean): ours {ours_cpu * 1e3:.1f} ms, dcmdjpeg "
                  f"{dcmtk_cpu * 1e3:.1f} ms")
            print(f"  ratio ours/dcmdjpeg: whole process wall {ours_proc / dcmtk:.2f}x, CPU "
                  f"{ours_cpu / dcmtk_cpu:.2f}x, our decode-only vs dcmdjpeg wall "
                  f"{inproc / dcmtk:.2f}x (target <= 2x)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
