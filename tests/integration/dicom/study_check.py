#!/usr/bin/python3
"""Study assembly end to end: `agora dicom scan --json` on a folder of CT slices made with
pydicom from the corpus file CT_small.dcm (shuffled names and instance numbers, a tilted
orientation, one gap, one duplicate SOP, one non-DICOM file), then checks the order and the
warnings; and checks that peak RSS does not grow with the file count (20 vs 400 files).

Usage: study_check.py AGORA_BINARY. Exit 77 (skip) without pydicom or the corpus file.
"""
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile

SRC = "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm"


def make_series(folder, n, gap_at=None, dup=False):
    import pydicom
    os.makedirs(folder, exist_ok=True)
    ds0 = pydicom.dcmread(SRC)
    c, s = 0.8, 0.6  # row (1,0,0), column (0,c,s): normal (0,-s,c)
    order = list(range(n))
    random.Random(7).shuffle(order)
    for k, i in enumerate(order):
        ds = ds0.copy()
        d = 2.0 * i + (3.0 if gap_at is not None and i >= gap_at else 0.0)
        ds.ImageOrientationPatient = [1, 0, 0, 0, c, s]
        ds.ImagePositionPatient = [10.0, 4 * c - d * s, 4 * s + d * c]
        ds.InstanceNumber = n - i  # reversed: must not decide the order
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.9.9999.%d" % i
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.9999.1"
        ds.save_as(os.path.join(folder, "f%05d.dcm" % k), write_like_original=False)
        if dup and k == 0:
            ds.save_as(os.path.join(folder, "zz_dup.dcm"), write_like_original=False)
    with open(os.path.join(folder, "readme.txt"), "w") as f:
        f.write("not DICOM\n")


def scan(agora, folder):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ASan keeps freed blocks in a quarantine (256 MB by default), which would look like growth.
    env = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=0:" + os.environ.get("ASAN_OPTIONS", ""))
    r = subprocess.run([agora, "dicom", "scan", "--json", folder], capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if r.returncode != 0:
        raise SystemExit("scan failed: " + r.stderr.decode())
    return json.loads(r.stdout), max(before, after)


def main():
    agora = sys.argv[1]
    try:
        import pydicom  # noqa: F401
    except ImportError:
        print("SKIP: pydicom not importable by /usr/bin/python3")
        return 77
    if not os.path.exists(SRC):
        print("SKIP: %s not found (install python3-pydicom)" % SRC)
        return 77
    tmp = tempfile.mkdtemp(prefix="agora-dicom-study-")
    fails = []
    try:
        small = os.path.join(tmp, "small")
        make_series(small, 20, gap_at=10, dup=True)
        js, rss_small = scan(agora, small)
        if len(js["series"]) != 1:
            fails.append("expected 1 series, got %d" % len(js["series"]))
        s = js["series"][0]
        dist = [f["distance"] for f in s["frame_order"]]
        if dist != sorted(dist) or s["frames"] != 20:
            fails.append("frames not ordered along the normal: %s" % dist)
        if abs(s["normal"][1] + 0.6) > 1e-6 or abs(s["normal"][2] - 0.8) > 1e-6:
            fails.append("normal %s, expected (0,-0.6,0.8)" % s["normal"])
        codes = [w["code"] for w in s["warnings"]]
        gaps = [w for w in s["warnings"] if w["code"] == "gap"]
        if len(gaps) != 1 or abs(gaps[0]["value"] - 5.0) > 1e-3 or abs(s["median_spacing"] - 2.0) > 1e-3:
            fails.append("gap not reported as 5 mm vs median 2 mm: %s" % gaps)
        if "duplicate_sop" not in codes:
            fails.append("duplicate SOP not reported: %s" % codes)
        if not any("readme.txt" in n["path"] and n["reason"] == "not DICOM" for n in js["skipped"]):
            fails.append("non-DICOM file not noted: %s" % js["skipped"])
        large = os.path.join(tmp, "large")
        make_series(large, 400)
        js2, rss_large = scan(agora, large)
        if js2["series"][0]["frames"] != 400:
            fails.append("400-file series has %d frames" % js2["series"][0]["frames"])
        # Each file is ~39 KB: reading them all at once would add ~15 MB. Metadata per instance is
        # a few hundred bytes, so the growth must stay far below that.
        grow_kb = rss_large - rss_small
        print("peak RSS: 20 files %d KiB, 400 files %d KiB (growth %d KiB)" % (rss_small, rss_large, grow_kb))
        if grow_kb > 4096:
            fails.append("peak RSS grew by %d KiB from 20 to 400 files" % grow_kb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print("FAIL: " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
