#!/usr/bin/python3
"""Decode every compressed file of the pydicom test corpus (plus lossless JPEG files made here with
dcmcjpeg) with codec_tool and compare byte for byte with DCMTK/GDCM decompression of the same
file. Prints a table file -> match / refused(reason) / MISMATCH and exits 1 on any mismatch or
unexpected failure, 77 (skip) when pydicom, its corpus or the reference tools are missing.

usage: compare_corpus.py CODEC_TOOL [CORPUS_DIR] [--htj2k-encoder HTJ2K_ENCODE]

With --htj2k-encoder (a test-only OpenJPH encoder), corpus images are also re-encoded as
lossless HTJ2K and must decode back to the original pixels.
"""
import concurrent.futures
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import pydicom
    from pydicom.encaps import generate_pixel_data
except ImportError as e:  # pragma: no cover
    print(f"SKIP: needs /usr/bin/python3 with pydicom and numpy ({e})")
    sys.exit(77)

CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

JPEG = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70"}
JPEGLS = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
J2K = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
       "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"}
RLE = {"1.2.840.10008.1.2.5"}
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}


def reference(path, ts, tmp):
    """Decompress with the reference tool; returns (dataset, tool) or (None, reason)."""
    out = os.path.join(tmp, "ref.dcm")
    if ts in JPEG:
        cmd = ["dcmdjpeg", path, out]
    elif ts in RLE:
        cmd = ["dcmdrle", path, out]
    elif ts in JPEGLS:
        cmd = ["dcmdjpls", path, out]
    else:
        cmd = ["gdcmconv", "--raw", path, out]
    if shutil.which(cmd[0]) is None:
        return None, f"{cmd[0]} not installed"
    r = subprocess.run(cmd, capture_output=True, text=True)
    if (r.returncode != 0 or not os.path.exists(out)) and cmd[0] != "gdcmconv":
        # DCMTK refuses some files (e.g. a JPEG stream missing its EOI); fall back to GDCM.
        why = f"{cmd[0]} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
        cmd = ["gdcmconv", "--raw", path, out]
        if shutil.which(cmd[0]) is None:
            return None, why
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(out):
        return None, f"{cmd[0]} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
    return pydicom.dcmread(out), cmd[0]


def interleaved(ds, nframes):
    """Reference Pixel Data as little-endian, color-by-pixel bytes."""
    arr = np.frombuffer(ds.PixelData, dtype=np.uint8)
    ba = int(ds.BitsAllocated)
    if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2" and ba > 8:
        arr = arr.reshape(-1, ba // 8)[:, ::-1].reshape(-1)
    rows, cols, spp = int(ds.Rows), int(ds.Columns), int(ds.SamplesPerPixel)
    fb = rows * cols * spp * (ba // 8)
    arr = arr[: fb * nframes]
    if spp > 1 and int(getattr(ds, "PlanarConfiguration", 0)) == 1:
        arr = arr.reshape(nframes, spp, rows * cols, ba // 8).transpose(0, 2, 1, 3).reshape(-1)
    return arr.tobytes()


def masked_equal(a, b, ba, bs):
    """Equal in the Bits Stored low bits (what native Pixel Data defines)."""
    dt = {8: np.uint8, 16: np.uint16, 32: np.uint32}[ba]
    x, y = np.frombuffer(a, dt), np.frombuffer(b, dt)
    m = dt((1 << bs) - 1)
    return x.shape == y.shape and bool(np.all((x & m) == (y & m)))


def write_frames(ds, path):
    nframes = int(getattr(ds, "NumberOfFrames", 1) or 1)
    with open(path, "wb") as f:
        n = 0
        for frags in generate_pixel_data(ds.PixelData, nframes):
            f.write(struct.pack("<I", len(frags)))
            for fr in frags:
                f.write(struct.pack("<I", len(fr)))
                f.write(fr)
            n += 1
    return n


def decode(tool, ds, tmp):
    frames = os.path.join(tmp, "frames.bin")
    out = os.path.join(tmp, "out.raw")
    nframes = write_frames(ds, frames)
    ts = str(ds.file_meta.TransferSyntaxUID)
    args = [tool, ts, str(ds.Rows), str(ds.Columns), str(ds.SamplesPerPixel),
            str(ds.BitsAllocated), str(ds.BitsStored), str(ds.PixelRepresentation),
            str(getattr(ds, "PlanarConfiguration", 0)), str(ds.PhotometricInterpretation),
            out, frames]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return r.returncode, r.stderr.strip(), None, nframes
    with open(out, "rb") as f:
        return 0, r.stdout.strip(), f.read(), nframes


def make_extra(tmp, corpus):
    """Files the corpus lacks, made here with DCMTK/GDCM encoders: lossless JPEG (Process 14, SV1..7,
    point transform), JPEG-LS interleave modes and near-lossless, multi-fragment frames, and
    multi-frame color JPEG 2000."""
    jobs = [("MR_small.dcm", "dcmcjpeg", ["+e1"]), ("MR_small.dcm", "dcmcjpeg", ["+el", "+sv", "7"]),
            ("MR_small.dcm", "dcmcjpeg", ["+el"]), ("CT_small.dcm", "dcmcjpeg", ["+el", "+sv", "4"]),
            ("CT_small.dcm", "dcmcjpeg", ["+el", "+sv", "5"]),
            ("MR_small.dcm", "dcmcjpeg", ["+el", "+sv", "2"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpeg", ["+el", "+sv", "3"]),
            ("SC_rgb_rle_2frame.dcm", "dcmcjpeg", ["+el"]),
            ("SC_rgb_rle_16bit_2frame.dcm", "dcmcjpeg", ["+el", "+sv", "1"]),
            ("MR_small.dcm", "dcmcjpeg", ["+e1", "+pt", "3"]),
            ("CT_small.dcm", "dcmcjpeg", ["+el", "+sv", "6", "+pt", "2"]),
            ("CT_small.dcm", "dcmcjpeg", ["+e1", "+fs", "1"]),
            ("CT_small.dcm", "dcmcjpeg", ["+eb"]),
            ("MR_small.dcm", "dcmcjpls", ["+el"]), ("SC_rgb_rle_2frame.dcm", "dcmcjpls", ["+en", "+md", "3"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpls", ["+el", "+in"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpls", ["+el", "+is"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpls", ["+en", "+il"]),
            ("SC_rgb_rle_2frame.dcm", "dcmcjpls", ["+el", "+fs", "1"]),
            ("SC_rgb_rle_16bit_2frame.dcm", "dcmcjpls", ["+en", "+in"]),
            ("SC_rgb_rle_2frame.dcm", "gdcmconv", ["--j2k"]),
            ("CT_small.dcm", "gdcmconv", ["--j2k"]),
            ("SC_rgb_small_odd.dcm", "dcmcrle", []),
            # 12-bit JPEG Extended (Process 4): grey, and colour 4:4:4 / 4:2:2 / 2x2 subsampled.
            ("MR_small.dcm", "dcmcjpeg", ["+ee"]), ("CT_small.dcm", "dcmcjpeg", ["+ee"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpeg", ["+ee", "+bt", "+s4"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpeg", ["+ee", "+bt", "+s2"]),
            ("SC_rgb_small_odd.dcm", "dcmcjpeg", ["+ee", "+bt", "+n1"]),
            ("SC_rgb_rle_2frame.dcm", "dcmcjpeg", ["+ee", "+bt", "+n2"]),
            ("SC_rgb_rle_16bit_2frame.dcm", "dcmcjpeg", ["+ee"])]
    # Encoders need uncompressed input: decompress the RLE sources once, then encode in parallel.
    raw = {}
    for src in {j[0] for j in jobs if "rle" in j[0]}:
        inp = os.path.join(tmp, "raw_" + src)
        if subprocess.run(["dcmdrle", os.path.join(corpus, src), inp],
                          capture_output=True).returncode == 0:
            raw[src] = inp

    def encode(job):
        src, tool, opts = job
        inp = raw.get(src, os.path.join(corpus, src))
        if not os.path.exists(inp) or shutil.which(tool) is None:
            return None
        name = f"gen_{tool}_{src[:-4]}_{''.join(o.strip('+-') for o in opts)}.dcm"
        dst = os.path.join(tmp, name)
        r = subprocess.run([tool, *opts, inp, dst], capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(dst):
            return dst
        print(f"note: {tool} {' '.join(opts)} {src} failed: {r.stderr.strip()[-100:]}")
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        made = [m for m in pool.map(encode, jobs) if m is not None]
    return made


def htj2k_rows(tool, encoder, corpus, tmp):
    """Re-encode corpus images as lossless HTJ2K with OpenJPH; decode must give the originals."""
    rows, failures = [], 0
    for src, pm in (("MR_small.dcm", "MONOCHROME2"), ("CT_small.dcm", "MONOCHROME2"),
                    ("SC_rgb_small_odd.dcm", "YBR_RCT"), ("SC_rgb.dcm", "YBR_RCT")):
        path = os.path.join(corpus, src)
        if not os.path.exists(path):
            continue
        ds = pydicom.dcmread(path)
        raw = interleaved(ds, 1)
        work = tempfile.mkdtemp(dir=tmp)
        rawp, j2c = os.path.join(work, "in.raw"), os.path.join(work, "out.j2c")
        with open(rawp, "wb") as f:
            f.write(raw)
        spp, bs = int(ds.SamplesPerPixel), int(ds.BitsStored)
        r = subprocess.run([encoder, str(ds.Columns), str(ds.Rows), str(spp), str(bs),
                            str(ds.PixelRepresentation), rawp, j2c], capture_output=True, text=True)
        name = f"htj2k({src})"
        if r.returncode != 0:
            rows.append((name, "1.2.840.10008.1.2.4.201", f"encoder failed: {r.stderr[-80:]}"))
            continue
        with open(j2c, "rb") as f:
            code = f.read()
        frames = os.path.join(work, "frames.bin")
        with open(frames, "wb") as f:
            f.write(struct.pack("<II", 1, len(code)) + code)
        out = os.path.join(work, "out.raw")
        r = subprocess.run([tool, "1.2.840.10008.1.2.4.201", str(ds.Rows), str(ds.Columns),
                            str(spp), str(ds.BitsAllocated), str(bs), str(ds.PixelRepresentation),
                            "0", pm, out, frames], capture_output=True, text=True)
        if r.returncode != 0:
            rows.append((name, "1.2.840.10008.1.2.4.201", f"FAILED ({r.stderr.strip()[-100:]})"))
            failures += 1
            continue
        with open(out, "rb") as f:
            data = f.read()
        if data == raw or masked_equal(data, raw, int(ds.BitsAllocated), bs):
            rows.append((name, "1.2.840.10008.1.2.4.201", f"identical to original; {r.stdout.strip()}"))
        else:
            rows.append((name, "1.2.840.10008.1.2.4.201", "DIFFERENT from original"))
            failures += 1
    return rows, failures


def check_file(tool, path, tmp):
    """Decode one file with ours and the reference; returns ((name, ts, verdict), failures) or
    None when the file has no compressed pixel data."""
    name = os.path.basename(path)
    try:
        ds = pydicom.dcmread(path)
        ts = str(ds.file_meta.TransferSyntaxUID)
        if ts in NATIVE or "PixelData" not in ds:
            return None
    except Exception:
        return None
    work = tempfile.mkdtemp(dir=tmp)
    rc, msg, data, nframes = decode(tool, ds, work)
    if rc == 3:
        return (name, ts, f"refused ({msg.split(': ', 2)[-1][:90]})"), 0
    ref, tool_name = reference(path, ts, work)
    if rc != 0:
        if ref is None:
            return (name, ts, f"both failed: ours: {msg[-80:]}"), 0
        return (name, ts, f"FAILED ({msg[-100:]})"), 1
    if ref is None:
        return (name, ts, f"decoded; no reference ({tool_name})"), 0
    want = interleaved(ref, nframes)
    ref_pm = str(ref.PhotometricInterpretation)
    failures = 0
    if data == want:
        verdict = f"match {tool_name}"
    elif masked_equal(data, want, int(ds.BitsAllocated), int(ds.BitsStored)):
        verdict = f"match {tool_name} (in Bits Stored)"
    else:
        verdict = f"MISMATCH vs {tool_name}"
        failures += 1
    if msg != ref_pm:
        verdict += f"; photometric {msg} vs {ref_pm}"
        failures += 1
    return (name, ts, verdict), failures


def main():
    args = sys.argv[1:]
    encoder = None
    if "--htj2k-encoder" in args:
        i = args.index("--htj2k-encoder")
        encoder = args[i + 1]
        del args[i:i + 2]
    if not args:
        print(__doc__)
        return 2
    tool = args[0]
    corpus = args[1] if len(args) > 1 else CORPUS
    if not os.path.isdir(corpus):
        print(f"SKIP: pydicom test corpus not found at {corpus}")
        return 77
    rows, failures = [], 0
    with tempfile.TemporaryDirectory(prefix="agora-codec-") as tmp:
        files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus) if f.endswith(".dcm"))
        files += make_extra(tmp, corpus)
        # Files are independent: check them on every CPU (the work is mostly subprocesses).
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for res in pool.map(lambda p: check_file(tool, p, tmp), files):
                if res is not None:
                    rows.append(res[0])
                    failures += res[1]

        # Lossless variants of MR_small must equal the uncompressed original pixel for pixel.
        orig_path = os.path.join(corpus, "MR_small.dcm")
        if os.path.exists(orig_path):
            orig = pydicom.dcmread(orig_path)
            want = interleaved(orig, 1)
            for v in ("MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
                      "MR_small_RLE.dcm"):
                p = os.path.join(corpus, v)
                if not os.path.exists(p):
                    rows.append((v, "-", "missing from corpus"))
                    continue
                work = tempfile.mkdtemp(dir=tmp)
                rc, msg, data, _ = decode(tool, pydicom.dcmread(p), work)
                ok = rc == 0 and data == want
                failures += 0 if ok else 1
                rows.append((v + " vs MR_small.dcm", "-", "identical" if ok else f"DIFFERENT {msg}"))

        if encoder:
            r, f = htj2k_rows(tool, encoder, corpus, tmp)
            rows += r
            failures += f
        else:
            rows.append(("htj2k", "1.2.840.10008.1.2.4.201", "not tested: no HTJ2K encoder "
                         "(install libopenjph-dev)"))

    w = max(len(r[0]) for r in rows) if rows else 10
    for name, ts, verdict in rows:
        print(f"{name:<{w}}  {ts:<24}  {verdict}")
    print(f"{len(rows)} files, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
