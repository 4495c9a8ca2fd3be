#!/usr/bin/python3
"""Integration: `agora deid` on every file of pydicom's charset_files corpus (Latin, Cyrillic,
Greek, Arabic, Hebrew, ISO 2022 Japanese/Korean, GB18030, UTF-8, per-item character sets).

For each file: it is written; none of its original person names survives in any encoding
(the raw value bytes, each raw component group, and every decoded component group and name
component as UTF-8 and UTF-16LE); the output's Specific Character Set is the input's (top level
and in kept items), and every text value of the output decodes in that set, in pydicom (strict)
and in `agora dicom dump` (no U+FFFD)."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}
MIN_NEEDLE = 4  # shorter byte strings occur by chance in pixel data


def raw_values(e):
    """Raw bytes of a PN element as read from the file (pydicom keeps them for PN)."""
    v = e.value
    vals = v if isinstance(v, (list, pydicom.multival.MultiValue)) else [v]
    return [x.original_string for x in vals if getattr(x, "original_string", None)]


def needles(ds):
    out = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in ds.iterall():
            if e.VR != "PN" or not e.value:
                continue
            for raw in raw_values(e):
                out.add(raw)
                out.update(raw.split(b"="))
            vals = e.value if isinstance(e.value, (list, pydicom.multival.MultiValue)) else [
                e.value]
            for v in vals:
                s = str(v)
                parts = {s} | set(s.split("="))
                for g in list(parts):
                    parts.update(g.split("^"))
                for p in parts:
                    out.add(p.encode("utf-8"))
                    out.add(p.encode("utf-16-le"))
    return {n for n in out if len(n) >= MIN_NEEDLE and n.strip(b" ^=\x00")}


def charsets(ds, path=()):
    """(path -> SpecificCharacterSet) of the dataset and every item that declares one."""
    out = {}
    if "SpecificCharacterSet" in ds:
        v = ds.SpecificCharacterSet
        out[path] = list(v) if isinstance(v, (list, pydicom.multival.MultiValue)) else [v]
    for e in ds:
        if e.VR == "SQ":
            for i, item in enumerate(e.value):
                out.update(charsets(item, path + (str(e.tag), i)))
    return out


def main():
    files = sorted(glob.glob(os.path.join(CORPUS, "*.dcm")))
    if len(files) < 15:
        print("FAIL: expected the 17 files of charset_files, found %d" % len(files))
        return 1
    tmp = tempfile.mkdtemp(prefix="agora-deid-charset-")
    fails = []
    checked_needles = 0
    try:
        sec = os.path.join(tmp, "secret")
        with open(sec, "wb") as f:
            f.write(bytes(range(32)))
        os.chmod(sec, 0o600)
        for n, p in enumerate(files):
            name = os.path.basename(p)
            out = os.path.join(tmp, "out%d" % n)
            r = subprocess.run([AGORA, "deid", p, "-o", out, "--secret", sec,
                                "--allow-burned-in", "--json"], capture_output=True, text=True)
            if r.returncode != 0 or json.loads(r.stdout)["written"] != 1:
                fails.append("%s: not written (%d): %s" % (name, r.returncode, r.stderr[-400:]))
                continue
            outs = glob.glob(os.path.join(out, "*.dcm"))
            data = open(outs[0], "rb").read()
            src = pydicom.dcmread(p)
            ns = needles(src)
            raw_in = open(p, "rb").read()
            if not any(x in raw_in for x in ns):  # the search itself must be able to hit
                fails.append("%s: no person name found in the input to check" % name)
            for needle in ns:
                checked_needles += 1
                if needle in data:
                    fails.append("%s: a name survives (%d bytes)" % (name, len(needle)))
            # Consistent Specific Character Set, and every value decodes in it.
            dst = pydicom.dcmread(outs[0])
            if charsets(src) != charsets(dst):
                fails.append("%s: Specific Character Set changed: %r -> %r" % (
                    name, charsets(src), charsets(dst)))
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    for e in dst.iterall():
                        if e.VR in TEXT_VRS:
                            str(e.value)
                except Exception as ex:  # pydicom warns or raises on undecodable bytes
                    fails.append("%s: output text does not decode in its set: %s" % (name, ex))
            d = subprocess.run([AGORA, "dicom", "dump", outs[0]], capture_output=True)
            if d.returncode != 0 or "\ufffd" in d.stdout.decode("utf-8"):
                fails.append("%s: dump of the output has undecodable text" % name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d files de-identified, %d name needles checked" % (len(files), checked_needles))
    for f in fails:
        print("FAIL: " + f)
    return 1 if fails else 0


sys.exit(main())
