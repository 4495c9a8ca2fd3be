#!/usr/bin/python3
"""Held-out synthetic CT studies with known lesion truth, for the AI examples' tests.

    make_phantoms.py OUT_DIR SEED COUNT [ROWS COLS SLICES]

Each study K (from plugins-examples/models/phantom.py, with a seed that training never used)
is written as:
  OUT_DIR/dicom/study-K/IM*.dcm  a classic CT series, int16 HU (slope 1, intercept 0)
  OUT_DIR/study-K.raw            the same voxels for the standalone harness (ai_harness.c):
                                 "AGORAW1\\0", uint32 rows, cols, frames, 0, float64 row
                                 spacing, column spacing, slice spacing, then int16 LE samples
  OUT_DIR/study-K.truth          the lesion mask, one byte per voxel (frames, rows, columns)
  OUT_DIR/truth.json             per study: voxels, volume in mL, spacing
The patient name/ID are fake and fixed; UIDs are derived from the seed.
"""
import json
import os
import struct
import sys

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "plugins-examples", "models"))
import phantom  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"


def write_series(path, hu, ps, thick, origin, seed, k):
    os.makedirs(path, exist_ok=True)
    root = "2.25.%d" % (10 ** 30 + seed * 1000 + k)
    x0, y0, zs = origin
    for s in range(hu.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT
        meta.MediaStorageSOPInstanceUID = "%s.3.%d" % (root, s + 1)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(os.path.join(path, "IM%05d.dcm" % (s + 1)), {}, file_meta=meta,
                         preamble=b"\0" * 128)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = root + ".1"
        ds.SeriesInstanceUID = root + ".2"
        ds.FrameOfReferenceUID = root + ".4"
        ds.Modality = "CT"
        ds.PatientName = "PHANTOM^LESION"
        ds.PatientID = "PHANTOM-%d" % k
        ds.InstanceNumber = s + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.BurnedInAnnotation = "NO"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.PixelSpacing = ["%.6f" % ps, "%.6f" % ps]
        ds.SliceThickness = "%.6f" % thick
        ds.ImagePositionPatient = ["%.6f" % x0, "%.6f" % y0, "%.6f" % zs[s]]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "HU"
        ds.PixelData = hu[s].astype("<i2").tobytes()
        ds.save_as(ds.filename, write_like_original=False)


def main():
    if len(sys.argv) not in (4, 7):
        sys.exit(__doc__)
    out, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rows, cols, slices = (int(v) for v in sys.argv[4:7]) if len(sys.argv) == 7 else (256, 256, 16)
    ps, thick = 360.0 / max(rows, cols), 2.5
    rng = np.random.default_rng(seed)
    truth = {}
    for k in range(count):
        hu, mask, origin = phantom.study(rng, rows, cols, slices, ps, thick)
        name = "study-%d" % k
        write_series(os.path.join(out, "dicom", name), hu, ps, thick, origin, seed, k)
        with open(os.path.join(out, name + ".raw"), "wb") as f:
            f.write(b"AGORAW1\0" + struct.pack("<4I3d", rows, cols, slices, 0, ps, ps, thick))
            f.write(hu.astype("<i2").tobytes())
        with open(os.path.join(out, name + ".truth"), "wb") as f:
            f.write(mask.astype(np.uint8).tobytes())
        truth[name] = {"voxels": int(mask.sum()), "volume_ml": float(mask.sum()) * ps * ps * thick / 1000,
                       "rows": rows, "columns": cols, "frames": slices}
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)


if __name__ == "__main__":
    main()
