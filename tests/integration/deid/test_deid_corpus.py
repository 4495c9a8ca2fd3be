#!/usr/bin/python3
"""Integration: `agora deid` over pydicom's test corpus (odd encodings, big endian, implicit VR,
deflated, encapsulated, private sequences, malformed files). It must never crash, every output
must re-read cleanly with pydicom and dcmdump, and no patient name of the inputs may survive."""
import glob
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

AGORA = sys.argv[1]
CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
try:
    import pydicom
except ImportError:
    print("skip: pydicom is not installed for /usr/bin/python3")
    sys.exit(77)
if not os.path.isdir(CORPUS):
    print("skip: pydicom test corpus not found at " + CORPUS)
    sys.exit(77)
warnings.simplefilter("ignore")


def main():
    tmp = tempfile.mkdtemp(prefix="agora-deid-corpus-")
    fails = []
    try:
        sec = os.path.join(tmp, "secret")
        with open(sec, "wb") as f:
            f.write(bytes(range(32)))
        os.chmod(sec, 0o600)
        names = set()
        for p in glob.glob(os.path.join(CORPUS, "**", "*"), recursive=True):
            try:
                d = pydicom.dcmread(p, stop_before_pixels=True)
                for e in d.iterall():
                    if e.VR == "PN" and e.value and len(str(e.value)) >= 6:
                        names.add(str(e.value))
            except Exception:
                continue
        for keep in ([], ["--keep", "rtnSafePrivOpt", "--keep", "rtnLongModifDatesOpt"]):
            out = os.path.join(tmp, "out%d" % len(keep))
            r = subprocess.run([AGORA, "deid", CORPUS, "-o", out, "--secret", sec,
                                "--allow-burned-in", "--json"] + keep,
                               capture_output=True, text=True)
            if r.returncode not in (0, 1) or "Sanitizer" in r.stderr or "runtime error" in r.stderr:
                fails.append("agora deid crashed or misbehaved (%d): %s" % (r.returncode,
                                                                         r.stderr[-2000:]))
                continue
            s = json.loads(r.stdout)
            print("corpus %s: %d files, %d written, %d refused, %d failed, %d skipped" % (
                " ".join(keep) or "basic", s["files"], s["written"], s["refused"], s["failed"],
                s["skipped_not_dicom"]))
            if "same SOP Instance UID" not in r.stderr:
                fails.append("duplicate SOP Instance UIDs in the corpus were not reported")
            if s["written"] < 100:
                fails.append("too few corpus files written: %d" % s["written"])
            outputs = sorted(glob.glob(os.path.join(out, "*.dcm")))
            if shutil.which("dcmdump") and outputs:
                # One dcmdump for all files (it takes ~0.1 s to start).
                rr = subprocess.run(["dcmdump", "-q"] + outputs, capture_output=True, text=True)
                if rr.returncode != 0 or "E:" in rr.stderr:
                    fails.append("dcmdump cannot re-read an output: %s" % rr.stderr[:500])
            for p in outputs:
                try:
                    d = pydicom.dcmread(p)
                    for _ in d.iterall():
                        pass
                    if d.get("PatientIdentityRemoved") != "YES":
                        fails.append("%s: PatientIdentityRemoved missing" % p)
                except Exception as ex:
                    fails.append("pydicom cannot re-read %s: %s" % (p, ex))
                with open(p, "rb") as f:
                    data = f.read()
                for n in names:
                    if n.encode("utf-8", "ignore") in data:
                        fails.append("%s: an input patient name survived" % p)
        # Pixels survive every encoding (big endian, implicit VR, deflated, encapsulated): map
        # each input to its output by recomputing the pseudonym (HMAC-SHA256 under the same
        # secret, as documented) and compare decoded pixel arrays where pydicom can decode both.
        out = os.path.join(tmp, "out0")
        compared = 0
        with open(sec, "rb") as f:
            key = f.read()
        # The corpus holds variants of one image under one SOP Instance UID: only the first is
        # written (the others are reported), so compare inputs whose UID is unique.
        uid_count = {}
        for p in glob.glob(os.path.join(CORPUS, "**", "*"), recursive=True):
            try:
                u = str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID).rstrip("\0 ")
            except Exception:
                continue
            uid_count[u] = uid_count.get(u, 0) + 1
        for p in glob.glob(os.path.join(CORPUS, "**", "*"), recursive=True):
            try:
                d = pydicom.dcmread(p)
                uid = str(d.SOPInstanceUID).rstrip("\0 ")
                if uid_count.get(uid) != 1:
                    continue
                a = d.pixel_array
            except Exception:
                continue
            mac = hmac.new(key, b"agora.deid.uid.v1\0" + uid.encode(), hashlib.sha256).digest()
            pseudo = "2.25.%d" % int.from_bytes(mac[:16], "big")
            q = os.path.join(out, pseudo + ".dcm")
            if not os.path.exists(q):
                continue  # refused (burned-in policy is off here) or failed: counted above
            try:
                b = pydicom.dcmread(q).pixel_array
            except Exception as ex:
                fails.append("%s: output pixels no longer decode: %s" % (p, ex))
                continue
            if a.shape != b.shape or not (a == b).all():
                fails.append("%s: pixels differ after de-identification" % p)
            compared += 1
        print("pixel arrays compared: %d" % compared)
        if compared < 30:
            fails.append("too few pixel comparisons (%d)" % compared)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        print("FAIL:", f)
    if fails:
        sys.exit(1)
    print("ok")


main()
