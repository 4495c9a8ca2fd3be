#!/usr/bin/python3
"""Write libFuzzer seeds for fuzz_codec_* from the pydicom corpus (plus lossless JPEG made with
dcmcjpeg): one file per frame, prefixed with the 10-byte attribute header fuzz_codec.c reads.

usage: make_seeds.py OUT_DIR   (creates OUT_DIR/<decoder>/...)
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import pydicom
from pydicom.encaps import generate_pixel_data_frame

CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
DECODER = {"1.2.840.10008.1.2.5": "rle", "1.2.840.10008.1.2.4.57": "jpeg_lossless",
           "1.2.840.10008.1.2.4.70": "jpeg_lossless", "1.2.840.10008.1.2.4.50": "jpeg_baseline",
           "1.2.840.10008.1.2.4.51": "jpeg_baseline", "1.2.840.10008.1.2.4.80": "jpegls",
           "1.2.840.10008.1.2.4.81": "jpegls", "1.2.840.10008.1.2.4.90": "j2k",
           "1.2.840.10008.1.2.4.91": "j2k"}
PMS = ["MONOCHROME2", "MONOCHROME1", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
       "PALETTE COLOR"]


def header(ds):
    spp = {1: 0, 3: 1, 4: 2}[int(ds.SamplesPerPixel)]
    ba = {8: 0, 16: 1, 32: 2}[int(ds.BitsAllocated)]
    pm = str(ds.PhotometricInterpretation)
    return struct.pack(">HHBBBBBB", int(ds.Rows) - 1, int(ds.Columns) - 1, spp, ba,
                       int(ds.BitsStored) - 1, int(ds.PixelRepresentation),
                       PMS.index(pm) if pm in PMS else 0, 0)


def main():
    out = sys.argv[1]
    files = [os.path.join(CORPUS, f) for f in sorted(os.listdir(CORPUS)) if f.endswith(".dcm")]
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("dcmcjpeg"):
            for i, opts in enumerate((["+e1"], ["+el", "+sv", "5"])):
                dst = os.path.join(tmp, f"lossless{i}.dcm")
                if subprocess.run(["dcmcjpeg", *opts, os.path.join(CORPUS, "CT_small.dcm"), dst],
                                  capture_output=True).returncode == 0:
                    files.append(dst)
        n = 0
        for path in files:
            try:
                ds = pydicom.dcmread(path)
                dec = DECODER.get(str(ds.file_meta.TransferSyntaxUID))
                if dec is None or int(ds.Rows) > 1024 or int(ds.Columns) > 1024:
                    continue
                frame = next(generate_pixel_data_frame(ds.PixelData, 1))
                hdr = header(ds)
            except Exception:
                continue
            os.makedirs(os.path.join(out, dec), exist_ok=True)
            with open(os.path.join(out, dec, os.path.basename(path) + ".seed"), "wb") as f:
                f.write(hdr + frame)
            n += 1
    print(f"{n} seeds written under {out}")


if __name__ == "__main__":
    main()
