#!/usr/bin/python3
"""Synthetic enhanced multi-frame objects with known per-frame geometry and rescale.

Writes into OUT_DIR:
  ct_stacks/ct.dcm  Enhanced CT, two stacks of 5 slices, oblique, frames stored shuffled,
                    per-frame Pixel Value Transformation (every frame its own slope/intercept),
                    a Dimension Organization of (StackID, InStackPositionNumber).
  ct_shared/ct.dcm  Enhanced CT, one stack of 4 slices, shuffled, rescale only in the SHARED
                    functional group (slope 1, intercept -1024): the regression case.
  mr_time/mr.dcm    Enhanced MR (RLE Lossless), two temporal positions of 4 slices, oblique, shuffled,
                    per-frame rescale, a Dimension Organization of (TemporalPositionIndex,
                    InStackPositionNumber), no StackID.
  mr_dims/mr.dcm    Enhanced MR, two diffusion b-value indexes of the same 3 slices, told apart
                    only by the Dimension Organization; shared Frame VOI LUT.
  pet_classic/*.dcm three classic PET instances whose RescaleSlope differs.
  mr_rle/mr.dcm     Enhanced MR, RLE Lossless, 6 temporal positions x 3 slices, interleaved.
  truth.json        for each object, the expected volumes in output order, each a list of the
                    expected frames in spatial order: position, orientation, rescale, and the
                    stored value of the frame's pixels (unique per frame, to check pixel order).

Positions are written with 6 decimals, and the truth is parsed back from the same text, so the
comparison at 1e-6 mm tests the host, not DS rounding.
"""
import json
import math
import os
import random
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

ENH_CT = "1.2.840.10008.5.1.4.1.1.2.1"
ENH_MR = "1.2.840.10008.5.1.4.1.1.4.1"
ROWS, COLS = 8, 6


def ds_text(v):
    return "%.6f" % v


def oblique(a_deg, b_deg):
    """Row and column direction cosines rotated about z by a, then tilted about x by b."""
    a, b = math.radians(a_deg), math.radians(b_deg)
    row = [math.cos(a), math.sin(a) * math.cos(b), math.sin(a) * math.sin(b)]
    col = [-math.sin(a), math.cos(a) * math.cos(b), math.cos(a) * math.sin(b)]
    return [float("%.8f" % x) for x in row + col]


def normal(o):
    r, c = o[:3], o[3:]
    return [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]]


def seq_item(**kw):
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def write(path, sop_class, modality, frames, shared, dims, uid_root, rle=False):
    """frames: list (stored order) of dicts with pos, ori, rescale (or None), stack, in_stack,
    temporal, value. shared: Dataset of the shared functional groups item."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid_root + ".3"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid_root + ".3"
    ds.StudyInstanceUID = uid_root + ".1"
    ds.SeriesInstanceUID = uid_root + ".2"
    ds.Modality = modality
    ds.PatientName = "Synthetic^Enhanced"
    ds.PatientID = "ENH-TEST"
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.FrameOfReferenceUID = uid_root + ".4"
    if dims:
        ds.DimensionOrganizationSequence = Sequence(
            [seq_item(DimensionOrganizationUID=uid_root + ".5")])
        ds.DimensionIndexSequence = Sequence([
            seq_item(DimensionOrganizationUID=uid_root + ".5", DimensionIndexPointer=tag,
                     FunctionalGroupPointer=0x00209111) for tag in dims])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    items = []
    for f in frames:
        it = Dataset()
        it.PlanePositionSequence = Sequence(
            [seq_item(ImagePositionPatient=[ds_text(x) for x in f["pos"]])])
        if f.get("ori_per_frame"):
            it.PlaneOrientationSequence = Sequence(
                [seq_item(ImageOrientationPatient=["%.8f" % x for x in f["ori"]])])
        fc = Dataset()
        if f.get("stack_id"):
            fc.StackID = f["stack_id"]
        fc.InStackPositionNumber = f["in_stack"]
        if f.get("temporal"):
            fc.TemporalPositionIndex = f["temporal"]
        if dims:
            names = {0x00209056: f.get("stack_id"), 0x00209057: f["in_stack"],
                     0x00209128: f.get("temporal"), 0x00189087: f.get("bvalue_index")}
            fc.DimensionIndexValues = [int(names[t]) for t in dims]
        it.FrameContentSequence = Sequence([fc])
        if f.get("rescale") is not None:
            s, b = f["rescale"]
            it.PixelValueTransformationSequence = Sequence([seq_item(
                RescaleSlope=repr(s), RescaleIntercept=repr(b), RescaleType="HU" if modality == "CT"
                else "US")])
        items.append(it)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    px = np.zeros((len(frames), ROWS, COLS), dtype="<u2")
    for i, f in enumerate(frames):
        px[i, :, :] = f["value"]
    if rle:
        ds.compress(RLELossless, px)
    else:
        ds.PixelData = px.tobytes()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


def write_classic(path, f, uid_root):
    """One classic single-frame PET image (top-level geometry and rescale)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    meta.MediaStorageSOPInstanceUID = "%s.3.%d" % (uid_root, f["inst"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid_root + ".1"
    ds.SeriesInstanceUID = uid_root + ".2"
    ds.Modality = "PT"
    ds.PatientName = "Synthetic^Pet"
    ds.InstanceNumber = f["inst"]
    ds.BurnedInAnnotation = "NO"
    ds.ImagePositionPatient = [ds_text(x) for x in f["pos"]]
    ds.ImageOrientationPatient = ["%.8f" % x for x in f["ori"]]
    ds.PixelSpacing = ["2", "2"]
    ds.RescaleSlope = repr(f["rescale"][0])
    ds.RescaleIntercept = "0"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.full((ROWS, COLS), f["value"], dtype="<u2").tobytes()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


def volume_frames(origin, ori, spacing, n, stack_id, temporal, value_base, rescale_fn):
    nv = normal(ori)
    out = []
    for k in range(n):
        pos = [float(ds_text(origin[j] + k * spacing * nv[j])) for j in range(3)]
        out.append({"pos": pos, "ori": ori, "stack_id": stack_id, "in_stack": k + 1,
                    "temporal": temporal, "value": value_base + k,
                    "rescale": rescale_fn(k) if rescale_fn else None})
    return out


def truth_of(volume, default_rescale):
    return [{"position": f["pos"], "orientation": f["ori"],
             "rescale": list(f["rescale"]) if f["rescale"] else list(default_rescale),
             "value": f["value"]} for f in volume]


def main():
    out = sys.argv[1]
    rng = random.Random(17)
    truth = {}

    # Enhanced CT, two stacks (different oblique planes), per-frame rescale.
    o1, o2 = oblique(20, 15), oblique(-35, 10)
    s1 = volume_frames([-40.123456, 12.5, 80.25], o1, 2.5, 5, "1", 0, 1100,
                       lambda k: (1.0 + 0.25 * k, -1024.0 + 10 * k))
    s2 = volume_frames([10.0, -60.5, 30.75], o2, 3.0, 5, "2", 0, 1200,
                       lambda k: (0.5 + 0.5 * k, -1000.0 - 7 * k))
    stored = s1 + s2
    rng.shuffle(stored)
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([seq_item(PixelSpacing=["0.7", "0.8"],
                                                      SliceThickness="2.5")])
    # Each stack has its own plane: the orientation is per frame (Plane Orientation per frame).
    for f in stored:
        f["ori_per_frame"] = True
    write(os.path.join(out, "ct_stacks", "ct.dcm"), ENH_CT, "CT", stored, shared,
          [0x00209056, 0x00209057], "2.25.1701")
    truth["ct_stacks"] = {"spacing": [2.5, 3.0], "volumes": [truth_of(s1, (1, 0)),
                                                             truth_of(s2, (1, 0))]}

    # Enhanced CT, shared rescale only (the -1024 regression).
    o3 = oblique(0, 30)
    v3 = volume_frames([-100.0, -100.0, 50.0], o3, 1.25, 4, "1", 0, 1300, None)
    stored3 = list(v3)
    rng.shuffle(stored3)
    shared3 = Dataset()
    shared3.PixelMeasuresSequence = Sequence([seq_item(PixelSpacing=["0.5", "0.5"],
                                                       SliceThickness="1.25")])
    shared3.PlaneOrientationSequence = Sequence(
        [seq_item(ImageOrientationPatient=["%.8f" % x for x in o3])])
    shared3.PixelValueTransformationSequence = Sequence(
        [seq_item(RescaleSlope="1", RescaleIntercept="-1024", RescaleType="HU")])
    write(os.path.join(out, "ct_shared", "ct.dcm"), ENH_CT, "CT", stored3, shared3, None,
          "2.25.1702")
    truth["ct_shared"] = {"spacing": [1.25],
                          "volumes": [truth_of(v3, (1.0, -1024.0))]}

    # Enhanced MR, two temporal positions of the same 4 slices, per-frame rescale.
    o4 = oblique(10, -25)
    t1 = volume_frames([5.5, 6.5, -7.5], o4, 4.0, 4, None, 1, 1400,
                       lambda k: (2.0, 10.0 * k))
    t2 = volume_frames([5.5, 6.5, -7.5], o4, 4.0, 4, None, 2, 1500,
                       lambda k: (3.0, -5.0 * k))
    stored4 = t1 + t2
    rng.shuffle(stored4)
    shared4 = Dataset()
    shared4.PixelMeasuresSequence = Sequence([seq_item(PixelSpacing=["1.0", "1.0"],
                                                       SliceThickness="4")])
    shared4.PlaneOrientationSequence = Sequence(
        [seq_item(ImageOrientationPatient=["%.8f" % x for x in o4])])
    write(os.path.join(out, "mr_time", "mr.dcm"), ENH_MR, "MR", stored4, shared4,
          [0x00209128, 0x00209057], "2.25.1703", rle=True)
    truth["mr_time"] = {"spacing": [4.0, 4.0], "volumes": [truth_of(t1, (1, 0)),
                                                           truth_of(t2, (1, 0))]}
    # Enhanced MR whose volumes differ only in a dimension of the Dimension Organization
    # (diffusion b-value index): the same 3 positions twice, no StackID, no temporal index.
    # Without the Dimension Index Sequence these would be one stack with duplicate positions.
    o5 = oblique(-15, 5)
    b1 = volume_frames([1.0, 2.0, 3.0], o5, 5.0, 3, None, 0, 1600, None)
    b2 = volume_frames([1.0, 2.0, 3.0], o5, 5.0, 3, None, 0, 1700, None)
    for f in b1:
        f["bvalue_index"] = 1
    for f in b2:
        f["bvalue_index"] = 2
    stored5 = b1 + b2
    rng.shuffle(stored5)
    shared5 = Dataset()
    shared5.PixelMeasuresSequence = Sequence([seq_item(PixelSpacing=["1.5", "1.5"],
                                                       SliceThickness="5")])
    shared5.PlaneOrientationSequence = Sequence(
        [seq_item(ImageOrientationPatient=["%.8f" % x for x in o5])])
    shared5.FrameVOILUTSequence = Sequence([seq_item(WindowCenter="300", WindowWidth="600")])
    write(os.path.join(out, "mr_dims", "mr.dcm"), ENH_MR, "MR", stored5, shared5,
          [0x00189087, 0x00209057], "2.25.1704")
    truth["mr_dims"] = {"spacing": [5.0, 5.0], "window": [300, 600],
                        "volumes": [truth_of(b1, (1, 0)), truth_of(b2, (1, 0))]}

    # Classic PET: three single-frame instances whose RescaleSlope differs (as PET scanners
    # scale each slice), stored with instance numbers out of spatial order.
    o6 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    pet = []
    for k, inst in enumerate([2, 3, 1]):
        z = -50.0 + 3.27 * (inst - 1)
        slope = 0.001 * (k + 1) + 0.0005 * inst
        pet.append({"pos": [-100.0, -100.0, float(ds_text(z))], "ori": o6,
                    "rescale": (slope, 0.0), "value": 1800 + inst, "inst": inst})
    for f in pet:
        write_classic(os.path.join(out, "pet_classic", "pet%d.dcm" % f["inst"]), f, "2.25.1705")
    pet_sorted = sorted(pet, key=lambda f: f["pos"][2])
    truth["pet_classic"] = {"spacing": [3.27], "volumes": [truth_of(pet_sorted, (1, 0))]}

    # Enhanced MR, RLE Lossless, six temporal positions of 3 slices stored slice by slice (each
    # volume's frames interleave with the others': the compressed, sparse decode path; mr_time,
    # also RLE, takes the compressed, dense one).
    o7 = oblique(25, -10)
    vols7 = [volume_frames([-3.0, 4.0, 5.0], o7, 2.0, 3, None, t + 1, 1900 + 10 * t,
                           lambda k, t=t: (1.0 + t, -10.0 * k)) for t in range(6)]
    stored7 = [vols7[t][k] for k in range(3) for t in range(6)]
    shared7 = Dataset()
    shared7.PixelMeasuresSequence = Sequence([seq_item(PixelSpacing=["0.9", "0.9"])])
    shared7.PlaneOrientationSequence = Sequence(
        [seq_item(ImageOrientationPatient=["%.8f" % x for x in o7])])
    write(os.path.join(out, "mr_rle", "mr.dcm"), ENH_MR, "MR", stored7, shared7, None,
          "2.25.1706", rle=True)
    truth["mr_rle"] = {"spacing": [2.0] * 6, "volumes": [truth_of(v, (1, 0)) for v in vols7]}

    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)


if __name__ == "__main__":
    main()
