#!/usr/bin/python3
"""Integration: `agora dataset export` of synthetic studies with planted (fake) identity through
the real sandboxed de-identification, then `agora dataset verify`: no planted value survives in
any exported byte (files, manifest, signature), the signed manifest verifies, a flipped byte in
each file in turn, a missing and an extra file are each found and named, a changed manifest
breaks the signature, --study selects one study, and the ledger, usage and statement show the
export as one line whose units are the exported instances."""
import json
import os
import subprocess
import sys
import tempfile

AGORA = sys.argv[1]
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run(args, expect=0, env=None):
    r = subprocess.run([AGORA] + args, capture_output=True, text=True, env=env)
    if expect is not None and r.returncode != expect:
        print(r.stdout, r.stderr)
        raise SystemExit("agora %s exited %d, expected %d" % (" ".join(args), r.returncode, expect))
    return r


def all_bytes(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = fh.read()
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="agora-dataset-")
    env = dict(os.environ, AGORA_HOME=os.path.join(tmp, "home"))
    os.environ["AGORA_HOME"] = env["AGORA_HOME"]
    run(["keygen", "--out", os.path.join(tmp, "op")])
    run(["keygen", "--out", os.path.join(tmp, "recipient")])
    run(["init", "--trust", os.path.join(tmp, "op.pub")])
    planted = []
    studies = []
    for i, (mod, seed) in enumerate((("CT", "11"), ("MR", "12"))):
        r = run(["dicom", "synth", "--modality", mod, "--slices", "4", "--rows", "32", "--cols",
                 "32", "--seed", seed, "--patient-name", "ZQXPLANTED%d^NAMEVALUE" % i,
                 "--patient-id", "PID-PLANTED-99%d" % i, "-o", os.path.join(tmp, "in%d" % i),
                 "--json"])
        p = json.loads(r.stdout)["planted"]
        check(len(p) >= 8, "synth --json names the planted identities")
        planted += [v for v in p.values() if len(v) >= 4]
        studies.append(p["StudyInstanceUID"])
    ins = [os.path.join(tmp, "in0"), os.path.join(tmp, "in1")]
    ds = os.path.join(tmp, "ds")
    r = run(["dataset", "export"] + ins + ["-o", ds, "--purpose", "research", "--recipient",
                                             os.path.join(tmp, "recipient.pub"), "--json"])
    out = json.loads(r.stdout)
    check(out["instances"] == 8, "8 instances exported: %r" % out)
    files = all_bytes(ds)
    check(len([f for f in files if f.startswith("files/")]) == 8, "8 files written")
    for name, data in files.items():
        for v in planted:
            check(v.encode() not in data, "planted %r absent from %s" % (v, name))
            check(v.encode() not in name.encode(), "planted %r absent from the name %s" % (v, name))
    man = json.loads(files["manifest.json"])
    check(man["purpose"] == "research" and man["instances"] == 8, "manifest purpose, count")
    check(len(man["files"]) == 8 and all(len(f["sha256"]) == 64 for f in man["files"]),
          "manifest lists every file with its sha256")
    check(man["deidentification"]["profile"].startswith("PS3.15"), "profile named")
    check(man["terms"]["source"] == "default" and man["terms"]["text"], "default terms")
    check(files["manifest.json"] == json.dumps(man, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=True).encode(),
          "manifest is canonical JSON (sorted keys, compact)")
    clinic_pub = os.path.join(env["AGORA_HOME"], "clinic.pub")
    v = json.loads(run(["dataset", "verify", ds, "--clinic-key", clinic_pub, "--json"]).stdout)
    check(v["ok"] and v["signature"] and v["origin_checked"] and v["files"] == 8,
          "verify passes: %r" % v)

    # A flipped byte in each file in turn is found, naming that file.
    for f in man["files"]:
        p = os.path.join(ds, f["path"])
        with open(p, "r+b") as fh:
            data = bytearray(fh.read())
            at = len(data) // 2
            data[at] ^= 0x01
            fh.seek(0)
            fh.write(data)
        r = run(["dataset", "verify", ds, "--clinic-key", clinic_pub], expect=1)
        check(f["path"] in r.stderr and "sha256" in r.stderr, "flip in %s named" % f["path"])
        with open(p, "r+b") as fh:
            data[at] ^= 0x01
            fh.seek(0)
            fh.write(data)
    run(["dataset", "verify", ds, "--clinic-key", clinic_pub])

    # A missing file, an extra file.
    victim = os.path.join(ds, man["files"][3]["path"])
    keep = open(victim, "rb").read()
    os.unlink(victim)
    r = run(["dataset", "verify", ds], expect=1)
    check(man["files"][3]["path"] in r.stderr and "missing" in r.stderr, "missing file named")
    open(victim, "wb").write(keep)
    extra = os.path.join(ds, "files", "1.2.3.dcm")
    open(extra, "wb").write(b"x")
    r = run(["dataset", "verify", ds], expect=1)
    check("files/1.2.3.dcm" in r.stderr and "extra" in r.stderr, "extra file named")
    os.unlink(extra)

    # A changed manifest breaks the signature; another clinic key is refused.
    mp = os.path.join(ds, "manifest.json")
    good = open(mp, "rb").read()
    open(mp, "wb").write(good.replace(b'"research"', b'"marketing"'))
    r = run(["dataset", "verify", ds], expect=1)
    check("manifest.sig" in r.stderr and "does not verify" in r.stderr, "changed manifest found")
    open(mp, "wb").write(good)
    r = run(["dataset", "verify", ds, "--clinic-key", os.path.join(tmp, "op.pub")], expect=1)
    check("not by the clinic key" in r.stderr, "a different clinic key is refused")
    run(["dataset", "verify", ds, "--clinic-key", clinic_pub])

    # A non-empty output directory is refused; --study selects one study.
    r = run(["dataset", "export"] + ins + ["-o", ds, "--purpose", "research", "--recipient",
                                             os.path.join(tmp, "recipient.pub")], expect=1)
    check("not empty" in r.stderr, "non-empty -o refused")
    ds2 = os.path.join(tmp, "ds2")
    r = run(["dataset", "export"] + ins + ["-o", ds2, "--purpose", "teaching", "--study",
                                             studies[1], "--recipient",
                                             os.path.join(tmp, "recipient.pub"), "--json"])
    check(json.loads(r.stdout)["instances"] == 4, "--study exports the one study's 4 instances")
    for name, data in all_bytes(ds2).items():
        for val in planted:
            check(val.encode() not in data, "planted %r absent from ds2/%s" % (val, name))
    run(["dataset", "verify", ds2, "--clinic-key", clinic_pub])
    r = run(["dataset", "export"] + ins + ["-o", os.path.join(tmp, "ds3"), "--purpose", "research",
                                             "--study", "1.2.3.4", "--recipient",
                                             os.path.join(tmp, "recipient.pub")], expect=1)
    check("nothing was exported" in r.stderr, "an unknown --study exports nothing")
    r = run(["dataset", "export", ins[0], "-o", os.path.join(tmp, "ds4"), "--purpose", "Bad Word",
             "--recipient", os.path.join(tmp, "recipient.pub")], expect=2)

    # Metering: two exports, 8 + 4 instances, in the ledger, usage and statement. The second
    # exports instances the first already counted this month: as a re-run of an app is billed
    # once per period, they are counted once (8 units, not 12).
    check("ledger ok: 2 rows" in run(["ledger", "verify"]).stdout, "ledger holds the two exports")
    period = man["created"][:7]
    st = run(["statement", "--period", period]).stdout
    check("agora.dataset@1 units=8" in st, "statement shows the export line: %s" % st)
    us = run(["usage", "--period", period, "--json"], expect=None).stdout
    check("agora.dataset" in us, "usage shows the export")
    # Audit: each export appended one entry, ids only (no planted value, no study UID).
    a = json.loads(run(["audit", "show", "--json"]).stdout)
    check([e["action"] for e in a] == ["dataset-export", "dataset-export"], "audit: %r" % a)
    check(json.loads(run(["audit", "verify", "--json"]).stdout)["entries"] == 2, "audit verifies")
    log = open(os.path.join(env["AGORA_HOME"], "audit.log"), "rb").read()
    for val in planted:
        check(val.encode() not in log, "planted %r absent from the audit log" % val)
    if FAILURES:
        print("%d failures" % len(FAILURES))
        sys.exit(1)
    print("ok: dataset export and verify")


main()
