#!/usr/bin/python3
"""Write the initial checked-in seed corpus of every libFuzzer target into tests/fuzz/seeds/<target>/
(run_all.sh starts each target from its directory and `ninja fuzz-long` merges what it finds
back into it). Small on purpose: each seed at most 64 KiB, the whole corpus a few MB.

usage: tests/fuzz/make_seeds.py BUILD_DIR [TARGET...]
       (a build with host/cli/agora, sandbox/agora-runner and plugins-examples). With TARGETs,
       only those seed directories are rewritten (fuzz_dcm_writer, fuzz_charset,
       fuzz_meter_export); without, every directory is.

Seeds per target:
  fuzz_dicom, fuzz_deid_apply   the small files of the pydicom test corpus and a synthetic CT and
                                MR from `agora dicom synth` (deid: with selector bytes in front)
  fuzz_codec_*                  tests/fuzz/codec/make_seeds.py (one compressed frame per file)
  fuzz_trust_bundle, _catalog   a bundle, a manifest, a catalog, a key, from `agora pack|certify`
  fuzz_runner_frames            hand-encoded runner -> host frames: Ready, Log, Error, Progress,
                                Results with findings, measurements, regions and masks, and
                                IngestReplies for every ingest op (see fuzz_runner_frames.c)
  fuzz_dcm_writer               writer programs (see fuzz_dcm_writer.c): every op, nested
                                sequences, replacements, invalid values, a small output cap, and
                                pseudo-random programs from a fixed seed
  fuzz_charset                  text in each character set the decoder knows (Latin-1, Cyrillic,
                                Greek, Thai, ISO 2022 Japanese and Korean escapes, UTF-8, GB18030)
                                and a raw (0008,0005) value
  fuzz_meter_export             bodies of real ledger exports (`agora run` of hello in the real
                                sandbox, then `agora ledger export`) and edited copies
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


def dcm_writer():
    """Programs for fuzz_dcm_writer: byte 0 the output cap (< 200: none), then per dataset a
    count byte and per element group, element, op and the op's bytes."""
    t = "fuzz_dcm_writer"
    lo = [0, 3, 7, 4, 0, 5, 1, 2, 3, 4, 5]            # LO "bcXYZ"
    cs = [1, 1, 0, 1, 6, 3, 4, 5, 6, 7, 8]            # CS of 6
    ui = [2, 2, 2, 12, 3, 1, 2, 3, 4, 5, 6, 7, 8, 1]  # UI 2.25.x
    us = [3, 3, 3, 2, 1, 2, 3, 4, 5, 6]               # US x3
    ul = [4, 4, 4, 1, 9, 9, 9, 9, 1, 2, 3, 4]         # UL x2
    fd = [5, 5, 5, 0] + list(range(8))                # FD x1
    ob = [6, 6, 6, 5, 1, 2, 3, 4, 5]                  # OB odd length
    is_ = [7, 7, 7, 0xFF, 0xFF, 0xFF, 0x7F]           # IS max int32
    st = [0, 9, 9, 30] + [1] * 150                    # ST
    put(t, bytes([0, 9] + lo + cs + ui + us + ul + fd + ob + is_ + st), "every-op")
    seq = [0, 8, 8, 2]                                # SQ of 2 items, each one LO
    put(t, bytes([0, 1] + seq + [1] + lo + [1] + lo), "sequence")
    nest = [0]
    for _ in range(17):                               # deeper than the writer allows
        nest += [1, 0, 0x20, 8, 1]
    put(t, bytes(nest + [1] + lo), "too-deep")
    put(t, bytes([0, 3] + lo + [0, 3, 0, 2, 1, 1] + seq[:3] + [1, 1] + lo), "replace")
    put(t, bytes([0, 2] + lo + [3, 0, 10, 1]), "forbidden-tag")
    put(t, bytes([0, 1, 1, 1, 1, 8] + [35] * 8), "bad-cs")
    put(t, bytes([0, 1, 0, 1, 0, 100] + [1] * 100), "long-lo")
    put(t, bytes([0, 1] + [2, 2, 2, 70] + [1] * 80), "long-ui")
    put(t, bytes([0, 1, 0, 9, 9, 250] + [2] * 1300), "long-st")
    put(t, bytes([201, 1, 0, 6, 6, 190] + list(range(190))), "small-cap")
    import random
    rng = random.Random(1500)
    for i in range(16):
        put(t, bytes([rng.randrange(200)] + [rng.randrange(256) for _ in range(64 + 48 * i)]),
            "random-%02d" % i)


def charset():
    """Inputs for fuzz_charset: byte 0 the set (index into its table, 0xFF raw), byte 1 the VR."""
    t = "fuzz_charset"
    cases = [
        (0, 1, b"plain ASCII^NAME"),
        (1, 0, "Müller^Jörg=Mueller".encode("latin-1")),
        (2, 0, "Люксембург^Петр".encode("iso8859-5")),
        (3, 1, "ﾔﾏﾀﾞ^ﾀﾛｳ".encode("shift_jis")),
        (4, 3, "ภาษาไทย".encode("tis-620")),
        (5, 0, b"Dupont\x1b-F\xc1\xe8\xe2\xdf\x1b-A^Jean"),
        (6, 0, b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"),
        (7, 0, b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J"),
        (8, 3, b"\x1b$(D\x2b\x21\x1b(B text"),
        (9, 0, b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7"),
        (10, 3, b"\x1b$)A\xd6\xd0\xce\xc4"),
        (11, 5, "Grüße ✓ 日本語 \U0001F600".encode()),
        (12, 3, "中文 GB18030 ".encode("gb18030") + b"\x81\x30\x81\x30"),
        (13, 3, "中文".encode("gbk")),
        (11, 5, b"\xc3\x28 broken \xe2\x82 utf8 \xff"),
        (6, 0, b"\x1b$B\x1b(B\x1b$B;3" + b"\x1b" * 3),
        (1, 6, bytes(range(256))),
    ]
    for i, (set_, vr, text) in enumerate(cases):
        put(t, bytes([set_, vr]) + text, "case-%02d" % i)
    put(t, bytes([0xFF, 0]) + b"ISO 2022 IR 6\\ISO 2022 IR 100\x00Caf\x1b-A\xe9", "raw-set")
    put(t, bytes([0xFF, 2]) + b"ISO_IR 999\x00unknown set", "raw-unknown")


def meter_export(agora, plugins, tmp, env):
    """Bodies of real ledger exports (the signature line dropped) and edited copies."""
    t = "fuzz_meter_export"
    runner = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(agora))), "sandbox",
                          "agora-runner")
    env = dict(env, AGORA_RUNNER=runner, AGORA_LOG="error")
    d = os.path.join(tmp, "meter")
    home = os.path.join(d, "home")

    def run(*args):
        subprocess.run([agora] + list(args), check=True, env=env, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    os.makedirs(d)
    run("keygen", "--out", "op")
    run("pack", "--manifest", os.path.join(plugins, "hello.manifest.json"), "--plugin",
        os.path.join(plugins, "hello.so"), "-o", "h.agora")
    run("certify", "h.agora", "--catalog", "cat", "--key", "op.key", "--model", "per-series",
        "--price", "10", "--currency", "EUR", "--vendor-share-bps", "7000")
    run("init", "--home", home, "--trust", "op.pub")
    run("sync", "cat", "--home", home)
    run("install", "org.agora.examples.hello", "--home", home)
    period = subprocess.run(["date", "-u", "+%Y-%m"], check=True, capture_output=True,
                            text=True).stdout.strip()
    bodies = []
    for n in range(3):
        run("dicom", "synth", "--modality", "CT", "--slices", "2", "--rows", "32", "--cols", "32",
            "--seed", str(40 + n), "-o", "s%d" % n)
        run("run", "s%d" % n, "--quiet", "--home", home)
        run("ledger", "export", "--period", period, "-o", "e%d.txt" % n, "--home", home)
        with open(os.path.join(d, "e%d.txt" % n), "rb") as f:
            bodies.append(f.read().split(b"\n", 1)[1])
    for i, b in enumerate(bodies):
        put(t, b, "export-%d-rows" % (i + 1))
    b = bodies[-1]
    put(t, b.replace(b'"amount_minor":10', b'"amount_minor":11', 1), "edited-amount")
    put(t, b.replace(period.encode(), b"2026-13", 1), "wrong-period")
    put(t, b[: len(b) // 2], "truncated")
    lines = b.split(b"\n")
    put(t, b"\n".join([lines[0]] + lines[2:]), "row-missing")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    only = sys.argv[2:]
    if only:
        build = os.path.abspath(sys.argv[1])
        agora = os.path.join(build, "host", "cli", "agora")
        tmp = tempfile.mkdtemp(prefix="agora-seeds-")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        try:
            for t in only:
                shutil.rmtree(os.path.join(SEEDS, t), ignore_errors=True)
                if t == "fuzz_dcm_writer":
                    dcm_writer()
                elif t == "fuzz_charset":
                    charset()
                elif t == "fuzz_meter_export":
                    meter_export(agora, os.path.join(build, "plugins-examples"), tmp, env)
                else:
                    sys.exit("make_seeds.py: no generator for %s alone; run without targets" % t)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
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
        subprocess.run([agora, "root", "sign", "--catalog", cat, "--key", op + ".key",
                        "--root-pub", op + ".pub", "--catalog-pub", op + ".pub"], check=True,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for p in (os.path.join(cat, "catalog.json"), os.path.join(cat, "catalog.sig"),
                  os.path.join(cat, "catalog.signed"), os.path.join(cat, "root", "1.root"),
                  op + ".pub"):
            with open(p, "rb") as f:
                put("fuzz_trust_catalog", f.read())

        runner_frames()
        dcm_writer()
        charset()
        meter_export(agora, plugins, tmp, env)
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
