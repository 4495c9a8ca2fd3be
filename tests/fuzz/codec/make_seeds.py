#!/usr/bin/python3
"""Write libFuzzer seeds for fuzz_codec_* from the pydicom corpus (plus lossless and 12-bit JPEG
made with dcmcjpeg): one file per frame, prefixed with the 10-byte attribute header fuzz_codec.c
reads. 12-bit JPEG Extended frames go to jpeg_ext12 (our own decoder), 8-bit ones to
jpeg_baseline (libjpeg-turbo).

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


def sof_precision(stream):
    """Sample precision of a JPEG stream's frame header, or 0."""
    i = 2
    while i + 4 < len(stream) and stream[i] == 0xFF:
        m, n = stream[i + 1], stream[i + 2] << 8 | stream[i + 3]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            return stream[i + 4]
        i += 2 + n
    return 0


def main():
    out = sys.argv[1]
    files = [os.path.join(CORPUS, f) for f in sorted(os.listdir(CORPUS)) if f.endswith(".dcm")]
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("dcmcjpeg"):
            for i, (src, opts) in enumerate((("CT_small.dcm", ["+e1"]),
                                             ("CT_small.dcm", ["+el", "+sv", "5"]),
                                             ("MR_small.dcm", ["+ee"]),
                                             ("SC_rgb_small_odd.dcm", ["+ee", "+bt", "+s2"]),
                                             ("SC_rgb_small_odd.dcm", ["+ee", "+bt", "+n1"]))):
                dst = os.path.join(tmp, f"made{i}.dcm")
                if subprocess.run(["dcmcjpeg", *opts, os.path.join(CORPUS, src), dst],
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
                if dec == "jpeg_baseline" and sof_precision(frame) == 12:
                    dec = "jpeg_ext12"
            except Exception:
                continue
            os.makedirs(os.path.join(out, dec), exist_ok=True)
            with open(os.path.join(out, dec, os.path.basename(path) + ".seed"), "wb") as f:
                f.write(hdr + frame)
            n += 1
    print(f"{n} seeds written under {out}")


if __name__ == "__main__":
    main()
