#!/usr/bin/python3
"""Integration: `agora dicom dump --json` and the text dump of every file of pydicom's
charset_files corpus show the values pydicom decodes, value by value, for every element of the
VRs Specific Character Set governs (PN LO SH ST LT UT UC), at every sequence depth.

Known, documented differences are normalised on both sides: trailing empty PN component groups
(pydicom drops "=" at the end of a name) and trailing spaces. Private elements of implicit VR
are compared only when agora knows their VR (pydicom has a private dictionary; we show UN)."""
import glob
import json
import os
import subprocess
import sys
import warnings

AGORA = sys.argv[1]
CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/charset_files"
try:
    import pydicom
except ImportError:
    print("skip: pydicom is not installed for /usr/bin/python3")
    sys.exit(77)
if not os.path.isdir(CORPUS):
    print("skip: pydicom charset corpus not found at " + CORPUS)
    sys.exit(77)
warnings.simplefilter("ignore")

TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}


def norm(vr, v):
    s = str(v)
    if vr == "PN":
        s = s.rstrip("=")
    return s.rstrip(" ")


def expected(ds, path, out):
    for e in ds:
        key = path + ("(%04x,%04x)" % (e.tag.group, e.tag.element),)
        if e.VR == "SQ":
            for i, item in enumerate(e.value):
                expected(item, key + (i,), out)
        elif e.VR in TEXT_VRS:
            if e.value is None or e.value == "":
                out[key] = []
            elif isinstance(e.value, (list, pydicom.multival.MultiValue)):
                out[key] = [norm(e.VR, v) for v in e.value]
            else:
                out[key] = [norm(e.VR, e.value)]


def actual(elements, path, out):
    for e in elements:
        key = path + (e["tag"],)
        if "items" in e:
            for i, item in enumerate(e["items"]):
                actual(item, key + (i,), out)
        elif e["vr"] in TEXT_VRS:
            v = e.get("value")
            vals = [] if v is None else (v if isinstance(v, list) else [v])
            out[key] = [norm(e["vr"], x) for x in vals]


def main():
    files = sorted(glob.glob(os.path.join(CORPUS, "*.dcm")))
    if len(files) < 15:
        print("FAIL: expected the 17 files of charset_files, found %d" % len(files))
        return 1
    fails, compared, non_ascii = [], 0, 0
    for p in files:
        name = os.path.basename(p)
        ds = pydicom.dcmread(p)
        want = {}
        expected(ds, (), want)
        r = subprocess.run([AGORA, "dicom", "dump", "--json", p], capture_output=True)
        if r.returncode != 0:
            fails.append("%s: dump --json exit %d: %s" % (name, r.returncode, r.stderr[-300:]))
            continue
        got = {}
        actual(json.loads(r.stdout.decode("utf-8"))["dataset"], (), got)
        t = subprocess.run([AGORA, "dicom", "dump", p], capture_output=True)
        text = t.stdout.decode("utf-8")  # must be UTF-8: raises otherwise
        for key, vals in want.items():
            if key not in got and int(key[-1][1:5], 16) % 2 == 1:
                continue  # private element of implicit VR: pydicom's private dictionary knows
                #           its VR, we show it as UN (no charset applies to UN)
            compared += 1
            if got.get(key) != vals:
                fails.append("%s %s: pydicom %r, agora %r" % (name, "/".join(map(str, key)),
                                                               vals, got.get(key)))
                continue
            joined = "\\".join(vals)
            if any(ord(c) > 0x7F for c in joined):
                non_ascii += 1
                if "[" + joined not in text:
                    fails.append("%s %s: text dump lacks %r" % (name, key, joined))
            if "\ufffd" in joined:
                fails.append("%s %s: replacement character in a corpus value" % (name, key))
        for key in got:
            if key not in want:
                fails.append("%s %s: agora shows an element pydicom does not" % (name, key))
    print("%d files, %d text elements compared, %d with non-ASCII values" % (len(files),
                                                                            compared, non_ascii))
    if non_ascii < 20:
        fails.append("only %d non-ASCII values compared: the corpus was not exercised" %
                     non_ascii)
    for f in fails:
        print("FAIL: " + f)
    return 1 if fails else 0


sys.exit(main())
