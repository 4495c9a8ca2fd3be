#!/usr/bin/python3
"""Corpus check: `agora dicom dump` against DCMTK's dcmdump, and `agora dicom pixels --raw`
against the Pixel Data bytes of DCMTK's `dcmconv +te` output (read back with pydicom).

Usage: corpus_check.py AGORA_BINARY [CORPUS_DIR]
Corpus: the pydicom test files (Debian package python3-pydicom). Exit 77 (skip) when the corpus or
DCMTK is missing. Prints a table of refused files with the reason; fails on any disagreement that
is not listed in KNOWN_DIFFERENCES below.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

# VRs whose values are compared (text and numbers); binary VRs (OB, OW, UN...) compare by tag/VR.
TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "IS", "LO", "SH", "TM", "UI"}
NUM_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "DS"}

# Files where dump disagreement or refusal is expected, with the reason.
KNOWN_DIFFERENCES = {
    "DICOMDIR-nooffset": "deliberately broken item length (runs past its sequence): agora refuses, "
                         "dcmdump reads on leniently",
    "MR_truncated.dcm": "truncated file: agora refuses, dcmdump prints what it got",
    "rtplan_truncated.dcm": "truncated file: agora refuses, dcmdump prints what it got",
}
LOSSLESS = {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"}
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}
# 12-bit JPEG Extended (Process 4), decoded by our own decoder: compared with dcmdjpeg's output,
# within 1 grey level (issue 17's acceptance; the codec corpus test checks they are identical).
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"

START = re.compile(r"^\s*\([0-9a-f]{4},[0-9a-f]{4}\) ")
LINE = re.compile(r"^(\s*)\(([0-9a-f]{4}),([0-9a-f]{4})\) (\S\S) (.*?)\s+#\s*(\d+|u/l),\s*(\d+)", re.S)


def js_bits_stored(js):
    """Bits Stored (0028,0101) from `agora dicom dump --json` output, or 0."""
    for e in js["dataset"]:
        if e["tag"].lower() == "(0028,0101)":
            try:
                return int(str(e.get("value", "0")).split("\\")[0])
            except ValueError:
                return 0
    return 0


def dcmdump_elements(path):
    """(depth, tag, vr, value-text) for each element line of dcmdump, items/delimiters skipped."""
    r = subprocess.run(["dcmdump", "-q", "-M", "+L", "-Un", "+E", path], capture_output=True)
    out = []
    pending = ""
    for raw in r.stdout.decode("latin-1").splitlines():
        # Text values with line breaks span several lines: join until the "# len, vm" part.
        line = pending + ("\n" if pending else "") + raw
        m = LINE.match(line)
        if not m:
            pending = line if START.match(line) and len(line) < 100000 else ""
            continue
        pending = ""
        indent, g, e, vr, val = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
        if g == "fffe":
            continue
        depth = len(indent) // 4  # two spaces for the item, two for its elements
        out.append((depth, (g + e).lower(), vr, val.strip().replace("\x00", "")))
    return r.returncode, out


def agora_elements(js):
    out = []

    def walk(elems, depth):
        for el in elems:
            t = el["tag"][1:10].replace(",", "").lower()
            out.append((depth, t, el["vr"], el.get("value")))
            for item in el.get("items", []):
                walk(item, depth + 1)

    walk(js["meta"], 0)
    walk(js["dataset"], 0)
    return out


def norm_text(v):
    if v is None:
        return []
    if not isinstance(v, list):
        v = [v]
    return [("%s" % x).strip() for x in v]


def values_equal(vr, mine, theirs):
    if theirs.startswith("(no value"):
        return mine is None or norm_text(mine) in ([], [""])
    if vr in TEXT_VRS:
        m = re.match(r"^\[(.*)\]$", theirs)
        if not m:
            return True  # dcmdump printed something we do not parse (e.g. a UID name)
        t = [x.strip() for x in m.group(1).split("\\")]
        mv = mine if isinstance(mine, list) else [mine]
        mv = ["" if x is None else ("%s" % x) for x in mv]
        if vr in ("IS",):
            try:
                return [int(x) for x in mv] == [int(x) for x in t]
            except ValueError:
                return True
        return [x.strip() for x in mv] == t
    if vr in NUM_VRS:
        src = theirs
        m = re.match(r"^\[(.*)\]$", theirs)
        if m:
            src = m.group(1)
        try:
            t = [float(x) for x in src.split("\\") if x.strip() != ""]
        except ValueError:
            return True
        mv = mine if isinstance(mine, list) else [mine]
        if len(mv) > len(t):
            mv = mv[:len(t)]  # dcmdump may shorten long lists
        try:
            mv = [float(x) for x in mv]
        except (TypeError, ValueError):
            return False
        if len(mv) != len(t):
            return False
        return all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(mv, t))
    return True


def main():
    agora = sys.argv[1]
    corpus = sys.argv[2] if len(sys.argv) > 2 else CORPUS
    if not os.path.isdir(corpus):
        print("SKIP: pydicom test corpus not found at %s (install python3-pydicom)" % corpus)
        return 77
    for tool in ("dcmdump", "dcmconv"):
        if not shutil.which(tool):
            print("SKIP: %s not found (install dcmtk)" % tool)
            return 77
    try:
        import pydicom  # noqa: F401
    except ImportError:
        print("SKIP: pydicom not importable by /usr/bin/python3")
        return 77
    import pydicom

    files = []
    for root, _, names in os.walk(corpus):
        for n in sorted(names):
            files.append(os.path.join(root, n))
    files.sort()
    failures, refused, pix_ok, pix_refused, dump_ok, be32 = [], [], [], [], [], []
    comp_ok, comp_skipped, jpeg12_ok = [], [], []
    tmp = tempfile.mkdtemp(prefix="agora-dicom-corpus-")

    def check(idx, path):
        # One file: list appends are atomic, so threads can share the result lists.
        work = os.path.join(tmp, str(idx))
        os.mkdir(work)
        name = os.path.basename(path)
        if os.environ.get("AGORA_VERBOSE"):
            print(name, file=sys.stderr, flush=True)
        r = subprocess.run([agora, "dicom", "dump", "--json", path], capture_output=True)
        if r.returncode != 0:
            reason = r.stderr.decode(errors="replace").strip().split(": ")[-1]
            if r.returncode not in (1,) or not reason:
                failures.append("%s: dump exit %d without a clear reason" % (name, r.returncode))
            dc, dlines = dcmdump_elements(path)
            if dc == 0 and dlines and name not in KNOWN_DIFFERENCES:
                failures.append("%s: refused (%s) but dcmdump reads it" % (name, reason))
            refused.append((name, reason))
            return
        js = json.loads(r.stdout)
        mine = agora_elements(js)
        dc, theirs = dcmdump_elements(path)
        if dc != 0:
            refused.append((name, "read by agora; dcmdump fails (not compared)"))
            theirs = []
            mine = []
        mine_keys = sorted((d, t) for d, t, _, _ in mine)
        their_keys = sorted((d, t) for d, t, _, _ in theirs)
        if mine_keys != their_keys and name not in KNOWN_DIFFERENCES:
            a, b = set(mine_keys), set(their_keys)
            failures.append("%s: tag sets differ: only agora %s, only dcmdump %s" % (
                name, sorted(a - b)[:5], sorted(b - a)[:5]))
        else:
            # Values: pair elements in order by (depth, tag).
            bykey = {}
            for d, t, vr, v in mine:
                bykey.setdefault((d, t), []).append((vr, v))
            bad = 0
            for d, t, vr, v in theirs:
                lst = bykey.get((d, t))
                if not lst:
                    return
                mvr, mv = lst.pop(0)
                if vr in TEXT_VRS | NUM_VRS and mvr == vr and not values_equal(vr, mv, v):
                    bad += 1
                    if bad <= 3:
                        failures.append("%s: (%s) %s value differs: agora %r dcmdump %r" % (
                            name, t, vr, mv, v[:80]))
            if bad == 0:
                dump_ok.append(name)
        # Pixels: native syntaxes must match DCMTK's Explicit LE conversion exactly.
        ts = js["transfer_syntax"]
        has_pixels = any(e["tag"] == "(7fe0,0010)" for e in js["dataset"])
        if not has_pixels:
            return
        out = os.path.join(work, "px")
        r = subprocess.run([agora, "dicom", "pixels", path, "-o", out, "--raw"],
                           capture_output=True)
        if r.returncode != 0:
            pix_refused.append((name, ts, r.stderr.decode(errors="replace").strip()
                                .split(": ")[-1]))
            return
        if ts == JPEG_EXTENDED and js_bits_stored(js) > 8:
            ref_path = os.path.join(work, "dcmdjpeg.dcm")
            c = subprocess.run(["dcmdjpeg", path, ref_path], capture_output=True)
            if c.returncode != 0:
                comp_skipped.append((name, "dcmdjpeg failed"))
                return
            import numpy
            ref = pydicom.dcmread(ref_path)
            want = numpy.frombuffer(bytes(ref.PixelData), "<u2").astype(numpy.int32)
            got = numpy.frombuffer(open(out, "rb").read(), "<u2").astype(numpy.int32)
            want = want[:got.size]
            if got.size == 0 or got.size != want.size or int(numpy.abs(got - want).max()) > 1:
                failures.append("%s: 12-bit JPEG differs from dcmdjpeg by more than 1 level"
                                % name)
            else:
                jpeg12_ok.append("%s (max difference %d)" % (name, int(numpy.abs(got - want)
                                                                        .max())))
            return
        if ts not in NATIVE:
            # Lossless compressed data: the codec's output must equal pydicom's decode where
            # pydicom has a handler for the syntax (RLE always; others if plugins are installed).
            if ts not in LOSSLESS:
                return
            try:
                arr = pydicom.dcmread(path).pixel_array
            except Exception as e:  # no handler installed for this syntax
                comp_skipped.append((name, type(e).__name__))
                return
            ref = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            mine_px = open(out, "rb").read()
            if ref != mine_px and name not in KNOWN_DIFFERENCES:
                failures.append("%s: decoded %s differs from pydicom (%d vs %d bytes)" % (
                    name, ts, len(mine_px), len(ref)))
            elif ref == mine_px:
                comp_ok.append(name)
            return
        conv = os.path.join(work, "conv.dcm")
        c = subprocess.run(["dcmconv", "-q", "+te", path, conv], capture_output=True)
        if c.returncode != 0:
            return
        ref = pydicom.dcmread(conv)
        data = bytes(ref.PixelData)
        meta = json.load(open(out + ".json"))
        if ts == "1.2.840.10008.1.2.2" and meta["bits_allocated"] == 32:
            # DCMTK swaps 32-bit OW data of big-endian files as 16-bit words; pydicom (and
            # the little-endian twins of these files) agree with 32-bit swapping.
            import numpy
            arr = pydicom.dcmread(path).pixel_array
            data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            be32.append(name)
        mine_px = open(out, "rb").read()
        if meta["bits_allocated"] == 1 and (meta["rows"] * meta["columns"]) % 8:
            cmp_ref = None  # frames are not byte aligned: compare frame 0 only
            cmp_ref = data[:meta["frame_bytes"]]
            mine_px = mine_px[:meta["frame_bytes"]]
        else:
            cmp_ref = data[:len(mine_px)]
        if cmp_ref != mine_px:
            failures.append("%s: raw pixels differ from dcmconv +te (%d vs %d bytes)" % (
                name, len(mine_px), len(cmp_ref)))
        else:
            pix_ok.append(name)

    try:
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
            for fut in [ex.submit(check, i, p) for i, p in enumerate(files)]:
                fut.result()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("files: %d, dump agrees with dcmdump: %d, native pixels identical to DCMTK: %d"
          % (len(files), len(dump_ok), len(pix_ok)))
    print("lossless compressed frames identical to pydicom: %d (%s)"
          % (len(comp_ok), ", ".join(sorted(comp_ok))))
    print("12-bit JPEG within 1 grey level of dcmdjpeg: %d (%s)"
          % (len(jpeg12_ok), ", ".join(sorted(jpeg12_ok))))
    if not any(n.startswith("JPGExtended.dcm") for n in jpeg12_ok) and \
            os.path.exists(os.path.join(corpus, "JPGExtended.dcm")):
        failures.append("JPGExtended.dcm: the 12-bit JPEG file was not compared with dcmdjpeg")
    print("lossless compressed files pydicom cannot decode here (not compared): %s"
          % ", ".join("%s (%s)" % x for x in sorted(comp_skipped)))
    print("\nRefused by `agora dicom dump` (%d):" % len(refused))
    for n, why in sorted(refused):
        print("  %-40s %s" % (n, why))
    print("\nPixel decoding refused (%d):" % len(pix_refused))
    for n, ts, why in sorted(pix_refused):
        print("  %-40s %-24s %s" % (n, ts, why))
    print("\nKnown DCMTK differences:")
    for n in be32:
        print("  %-40s 32-bit big-endian OW pixels: compared with pydicom, not dcmconv +te (which "
              "swaps 16-bit words)" % n)
    for n, why in sorted(KNOWN_DIFFERENCES.items()):
        print("  %-40s %s" % (n, why))
    if failures:
        print("\nFAILURES (%d):" % len(failures))
        for f in failures:
            print("  " + f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
