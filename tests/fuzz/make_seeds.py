#!/usr/bin/python3
"""Write the initial checked-in seed corpus of every libFuzzer target into tests/fuzz/seeds/<target>/
(run_all.sh starts each target from its directory and `ninja fuzz-long` merges what it finds
back into it). Small on purpose: each seed at most 64 KiB, the whole corpus a few MB.

usage: tests/fuzz/make_seeds.py BUILD_DIR    (a build with host/cli/agora and plugins-examples)

Seeds per target:
  fuzz_dicom, fuzz_deid_apply   the small files of the pydicom test corpus and a synthetic CT and
                                MR from `agora dicom synth` (deid: with selector bytes in front)
  fuzz_codec_*                  tests/fuzz/codec/make_seeds.py (one compressed frame per file)
  fuzz_trust_bundle, _catalog   a bundle, a manifest, a catalog, a key, from `agora pack|certify`
  fuzz_runner_frames            hand-encoded runner -> host frames: Ready, Log, Error, Progress,
                                Results with findings, measurements, regions and masks, and
                                IngestReplies for every ingest op (see fuzz_runner_frames.c)
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
CORPUS = "/usr/lib/python3/dist-packages/pydicom/data/test_files"
MAX_SEED = 64 << 10


def put(target, data, name=None):
    if len(data) > MAX_SEED:
        return
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    # libFuzzer names corpus files by their SHA-1; do the same so merges do not duplicate.
    name = name or hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- protobuf encoding (just what the frames need) ------------------------------------------

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fv(n, v):  # varint field
    return varint(n << 3) + varint(v)


def fb(n, b):  # length-delimited field
    if isinstance(b, str):
        b = b.encode()
    return varint(n << 3 | 2) + varint(len(b)) + b


def fd(n, x):  # double field
    return varint(n << 3 | 1) + struct.pack("<d", x)


def fdp(n, xs):  # packed repeated double
    return fb(n, b"".join(struct.pack("<d", x) for x in xs))


def frame(case, body):
    return fb(case, body)


def prefixed(payload):
    return struct.pack("<I", len(payload)) + payload


def runner_frames():
    code = fb(1, "SCT") + fb(2, "123") + fb(3, "finding")
    finding = fb(1, code) + fd(2, 0.9) + fv(3, 0) + fv(4, 1)
    meas = fb(1, "volume") + fd(2, 12.5) + fb(3, "mm3") + fv(4, 0) + fv(5, 1)
    poly = fv(1, 1) + fv(2, 2) + fv(3, 0) + fdp(4, [1, 1, 5, 1, 5, 5]) + fb(5, "roi")
    mask = fv(1, 2) + fv(2, 4) + fv(3, 0) + fb(5, "mask") + fv(6, 1) + fv(7, 1) + fv(8, 0) + \
        fv(9, 8)
    results = [
        fv(1, 1) + fv(2, 1) + fb(8, "ok"),
        fv(1, 1) + fv(2, 1) + fb(5, finding) + fb(6, meas) + fb(7, poly) + fb(7, mask) +
        fb(8, "all kinds"),
        fv(1, 1) + fv(2, 2) + fv(3, (1 << 64) - 5) + fb(4, "plugin failed \x1b[31m"),
        fv(1, 1) + fv(2, 4) + fv(10, 9) + fv(11, 0),
    ]
    abi = 1 << 16
    ready = fv(1, 1) + fv(2, abi) + fb(3, "org.example.fuzz") + fb(4, "1.0.0") + \
        fb(5, "no user namespace") + fv(6, 42)
    log = fv(1, 1) + fv(2, 3) + fb(3, "a log line \xc2\x9b")
    err = fv(1, 5) + fv(2, (1 << 64) - 12) + fb(3, "init failed")
    prog = fv(1, 1) + fd(2, 0.5)
    geo = bytes([0, 63, 63, 0, 0, 64, 0, 0])  # plugin channel: 64x64, 1 frame, 16 KiB masks
    for r in results:
        put("fuzz_runner_frames", geo + prefixed(frame(8, r)))
    put("fuzz_runner_frames", geo + prefixed(frame(2, ready)) + prefixed(frame(6, prog)) +
        prefixed(frame(7, log)) + prefixed(frame(8, results[1])))
    put("fuzz_runner_frames", geo + prefixed(frame(9, err)))
    put("fuzz_runner_frames", geo + prefixed(frame(7, log)) * 3)

    # Ingest replies: header byte 1 picks the op (op = b1 % 5 + 1), b6 even = matching id.
    def ingest(op, reply):
        hdr = bytes([1, op - 1, 0, 0, 0x40, 0, 0, 0])
        put("fuzz_runner_frames", hdr + frame(11, reply))

    el = fv(1, 0x00100010) + fv(2, 0x504E) + fb(3, b"Doe^J")
    meta_core = fb(1, "1.2.840.10008.1.2.1") + fb(2, "1.2.3") + fb(3, "1.2.3.4") + \
        fb(4, "1.2.3.4.5") + fb(5, "1.2.840.10008.5.1.4.1.1.2") + fb(6, "CT") + fv(7, 1) + \
        fv(8, 3) + fv(9, 1) + fv(10, 64) + fv(11, 64) + fv(12, 1) + fv(13, 16) + fv(14, 12) + \
        fv(15, 11) + fv(16, 1) + fb(18, "MONOCHROME2") + fdp(19, [0, 0, 1]) + \
        fdp(20, [1, 0, 0, 0, 1, 0]) + fdp(21, [0.5, 0.5])
    meta = meta_core + fb(23, el) + fv(24, 2)
    fmt = fv(1, 4) + fv(2, 1) + fv(3, 2) + fv(4, 1) + fb(5, "MONOCHROME2") + fv(6, 8192)
    ingest(1, fv(1, 1) + fv(2, 1) + fb(5, meta) + fv(8, 100) + fv(9, 2000))
    ingest(2, fv(1, 1) + fv(2, 1) + fb(6, fmt) + fv(7, 1) + fb(5, meta_core))
    ingest(1, fv(1, 1) + fv(2, 2) + fv(3, (1 << 64) - 1) + fb(4, "unreadable: truncated"))
    ingest(3, fv(1, 1) + fv(2, 1) + fb(10, fb(1, "1.2.3") + fb(1, "1.2.3.4") + fb(2, "PID1")))
    ingest(3, fv(1, 1) + fv(2, 2) + fv(3, (1 << 64) - 3) + fb(10, fv(4, 1)))
    stats = fb(6, b"".join(varint(x) for x in [10, 5, 3, 2, 4, 0, 1, 0, 0, 2]))
    ingest(4, fv(1, 1) + fv(2, 1) + fv(11, 4096) + fb(10, fb(3, "2.25.1") + stats))
    ingest(4, fv(1, 1) + fv(2, 2) + fv(3, (1 << 64) - 1) + fb(10, fv(5, 1)))
    ingest(5, fv(1, 1) + fv(2, 1) + fv(11, 1000))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    agora = os.path.join(build, "host", "cli", "agora")
    shutil.rmtree(SEEDS, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix="agora-seeds-")
    env = dict(os.environ, AGORA_HOME=os.path.join(tmp, "home"),
               ASAN_OPTIONS="detect_leaks=0")
    try:
        dicoms = []
        if os.path.isdir(CORPUS):
            for n in sorted(os.listdir(CORPUS)):
                p = os.path.join(CORPUS, n)
                if os.path.isfile(p) and os.path.getsize(p) <= 48 << 10:
                    with open(p, "rb") as f:
                        dicoms.append(f.read())
        for mod, seed in (("CT", 3), ("MR", 4)):
            out = os.path.join(tmp, mod)
            subprocess.run([agora, "dicom", "synth", "--modality", mod, "--slices", "1",
                            "--rows", "32", "--cols", "32", "--seed", str(seed), "-o", out],
                           check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            for n in os.listdir(out):
                with open(os.path.join(out, n), "rb") as f:
                    dicoms.append(f.read())
        for i, d in enumerate(dicoms):
            put("fuzz_dicom", d)
            put("fuzz_deid_apply", bytes([(i * 37) & 0xFF]) + d)

        codec_tmp = os.path.join(tmp, "codec")
        r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "codec", "make_seeds.py"),
                            codec_tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            for dec in sorted(os.listdir(codec_tmp)):
                files = sorted(os.listdir(os.path.join(codec_tmp, dec)))
                kept = 0
                for n in files:
                    with open(os.path.join(codec_tmp, dec, n), "rb") as f:
                        data = f.read()
                    if len(data) <= 32 << 10 and kept < 12:
                        put("fuzz_codec_" + dec, data)
                        kept += 1

        plugins = os.path.join(build, "plugins-examples")
        op = os.path.join(tmp, "op")
        cat = os.path.join(tmp, "cat")
        bundle = os.path.join(tmp, "hello.agora")
        subprocess.run([agora, "keygen", "--out", op], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([agora, "pack", "--manifest", os.path.join(plugins, "hello.manifest.json"),
                        "--plugin", os.path.join(plugins, "hello.so"), "-o", bundle],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([agora, "certify", bundle, "--catalog", cat, "--key", op + ".key",
                        "--model", "per-series", "--price", "10", "--currency", "EUR",
                        "--vendor-share-bps", "7000"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in (bundle, os.path.join(plugins, "hello.manifest.json"),
                  os.path.join(plugins, "stats.manifest.json")):
            with open(p, "rb") as f:
                put("fuzz_trust_bundle", f.read())
        for p in (os.path.join(cat, "catalog.json"), os.path.join(cat, "catalog.sig"),
                  op + ".pub"):
            with open(p, "rb") as f:
                put("fuzz_trust_catalog", f.read())

        runner_frames()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = 0
    for t in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, t))
        size = sum(os.path.getsize(os.path.join(SEEDS, t, f)) for f in files)
        total += size
        print("%-26s %4d seeds, %7.1f KiB" % (t, len(files), size / 1024))
    print("total %.2f MiB" % (total / 2**20))


main()
