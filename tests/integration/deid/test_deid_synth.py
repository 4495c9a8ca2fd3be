#!/usr/bin/python3
"""Integration: synthesise studies with planted (fake) identity, de-identify them with the real
`agora deid`, then check that every output re-reads cleanly (dcmdump, pydicom), that none of the
planted values survives anywhere in the output bytes, that pixels are untouched and that UIDs are
consistent across the study (including nested references) and depend on the clinic secret."""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

AGORA = sys.argv[1]
try:
    import pydicom
except ImportError:
    print("skip: pydicom is not installed for /usr/bin/python3")
    sys.exit(77)
HAVE_DCMDUMP = shutil.which("dcmdump") is not None

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run(args, expect=0):
    r = subprocess.run([AGORA] + args, capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout, r.stderr)
        raise SystemExit("agora %s exited %d, expected %d" % (" ".join(args), r.returncode, expect))
    return r


def secret(path, byte):
    with open(path, "wb") as f:
        f.write(bytes([byte]) * 16 + os.urandom(0) + bytes(range(16)))
    os.chmod(path, 0o600)
    return path


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def synth(tmp, name, modality, extra=()):
    out = os.path.join(tmp, name)
    r = run(["dicom", "synth", "--modality", modality, "--slices", "6", "--rows", "64",
             "--cols", "48", "--seed", "4242", "--patient-name", "ZQXPLANTED^NAMEVALUE",
             "--patient-id", "PID-PLANTED-9931", "-o", out, "--json"] + list(extra))
    return out, json.loads(r.stdout)


def dcmdump_all(paths):
    """dcmdump reads every file without an error or a warning (one process for all)."""
    if HAVE_DCMDUMP and paths:
        r = subprocess.run(["dcmdump", "-q"] + list(paths), capture_output=True, text=True)
        check(r.returncode == 0 and "E:" not in r.stderr and "W:" not in r.stderr,
              "dcmdump complains: %s" % r.stderr[:300])


def reread(path):
    """pydicom reads every element."""
    ds = pydicom.dcmread(path)
    for _ in ds.iterall():
        pass
    return ds


def main():
    tmp = tempfile.mkdtemp(prefix="agora-deid-it-")
    try:
        s1 = secret(os.path.join(tmp, "s1"), 1)
        s2 = secret(os.path.join(tmp, "s2"), 2)
        for modality in ("CT", "MR"):
            src, info = synth(tmp, "in-" + modality, modality)
            inputs = sorted(glob.glob(os.path.join(src, "*.dcm")))
            check(len(inputs) == 6, "synth wrote 6 files")
            before = {p: sha(p) for p in inputs}
            src_ds = [pydicom.dcmread(p) for p in inputs]
            planted = dict(info["planted"])
            # Everything identifying the synth plants, including nested and private copies.
            secrets_text = list(planted.values()) + [
                "OTHER-MRN-31415926", "REQUESTER^RITA", "RP-SYN-777", "Fictional General",
                "Imaginary Lane", "REFERRER^ROBERTA", "PERFORMER^PAT", "OPERATOR^OTTO",
                "Nonexistent Road", "555-0100", "prefers mornings", "Scanned for Jane",
                "Annotation for JANE", "AGORA SYNTH PRIVATE", "SN-FAKE-0042", "SYNTHSTATION7",
                "Department of Fake", "CHEST ABDOMEN FOR"]
            secrets_text += [str(d.SOPInstanceUID) for d in src_ds]
            for key in ("StudyDate",):
                check(planted[key] in secrets_text, "planted date listed")

            out1 = os.path.join(tmp, "out1-" + modality)
            r = run(["deid", src, "-o", out1, "--secret", s1, "--json"])
            summary = json.loads(r.stdout)
            check(summary["written"] == 6 and summary["failed"] == 0, "6 written")
            check(summary["elements"]["private_removed"] > 0, "private removed counted")
            check(summary["elements"]["overlay_curve_removed"] > 0, "overlay removed counted")
            outputs = sorted(glob.glob(os.path.join(out1, "*.dcm")))
            check(len(outputs) == 6, "6 outputs")
            check({p: sha(p) for p in inputs} == before, "inputs unchanged")

            # Raw byte search: no planted value anywhere (UTF-8 and UTF-16LE renderings).
            for p in outputs:
                with open(p, "rb") as f:
                    data = f.read()
                check(data[:128] == b"\0" * 128 and data[128:132] == b"DICM", "preamble")
                for s in secrets_text:
                    for enc in ("utf-8", "utf-16-le"):
                        check(s.encode(enc) not in data,
                              "%s: planted value found in %s (%s)" % (modality, p, enc))
                # Parts of the name too (family/given names on their own).
                for part in ("ZQXPLANTED", "NAMEVALUE", "PLANTED-9931"):
                    check(part.encode() not in data, "name part %s in %s" % (part, p))

            dcmdump_all(outputs)
            out_ds = [reread(p) for p in outputs]
            by_number = {int(d.InstanceNumber): d for d in out_ds}
            src_by_number = {int(d.InstanceNumber): d for d in src_ds}
            studies = {str(d.StudyInstanceUID) for d in out_ds}
            series = {str(d.SeriesInstanceUID) for d in out_ds}
            fors = {str(d.FrameOfReferenceUID) for d in out_ds}
            check(len(studies) == 1 and len(series) == 1 and len(fors) == 1,
                  "one study/series/frame of reference after mapping")
            check(len({str(d.SOPInstanceUID) for d in out_ds}) == 6, "distinct instances")
            for d in out_ds:
                for uid in (d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID,
                            d.FrameOfReferenceUID, d.file_meta.MediaStorageSOPInstanceUID):
                    check(UID_RE.match(str(uid)) and len(str(uid)) <= 64 and
                          str(uid).startswith("2.25."), "valid pseudonymous UID")
                check(d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID,
                      "meta instance UID matches")
                check(os.path.basename(d.filename) == str(d.SOPInstanceUID) + ".dcm",
                      "named by pseudonym")
                check(d.PatientIdentityRemoved == "YES", "PatientIdentityRemoved")
                check(d.DeidentificationMethodCodeSequence[0].CodeValue == "113100",
                      "method code 113100")
                check(str(d.get("PatientName", "")) == "", "name emptied")
                check(not any(e.tag.group % 2 for e in d.iterall()), "no private tags")
                check(not any(0x6000 <= e.tag.group <= 0x601E for e in d), "no overlay")
                check("PatientBirthDate" not in d or d.PatientBirthDate == "", "birth date")
                check("OtherPatientIDsSequence" not in d, "other IDs removed")
                check(d.Rows == 64 and d.Columns == 48 and d.Modality == modality, "geometry")
            # Nested references point at the mapped instance of the previous slice.
            for n, d in by_number.items():
                if n == 1:
                    continue
                ref = d.ReferencedImageSequence[0].ReferencedSOPInstanceUID
                check(ref == by_number[n - 1].SOPInstanceUID, "nested reference remapped")
                check((d.pixel_array == src_by_number[n].pixel_array).all(), "pixels untouched")
                check(list(d.ImagePositionPatient) == list(src_by_number[n].ImagePositionPatient),
                      "geometry kept")

            # Stable: same secret, same bytes. Keyed: another secret, other UIDs.
            out1b = os.path.join(tmp, "out1b-" + modality)
            run(["deid", src, "-o", out1b, "--secret", s1, "--json"])
            check(sorted(os.listdir(out1b)) == sorted(os.listdir(out1)), "stable names")
            for name in os.listdir(out1):
                check(sha(os.path.join(out1, name)) == sha(os.path.join(out1b, name)),
                      "stable bytes")
            out2 = os.path.join(tmp, "out2-" + modality)
            run(["deid", src, "-o", out2, "--secret", s2, "--json"])
            o2 = [pydicom.dcmread(p) for p in glob.glob(os.path.join(out2, "*.dcm"))]
            check({str(d.StudyInstanceUID) for d in o2}.isdisjoint(studies),
                  "another secret, another study UID")
            check(set(os.listdir(out2)).isdisjoint(os.listdir(out1)), "another secret, names")

            # Options: patient characteristics kept, name still gone; modified dates shifted.
            out3 = os.path.join(tmp, "out3-" + modality)
            run(["deid", src, "-o", out3, "--secret", s1, "--keep", "rtnPatCharsOpt", "--keep",
                 "rtnLongModifDatesOpt", "--json"])
            dcmdump_all(glob.glob(os.path.join(out3, "*.dcm")))
            for p in glob.glob(os.path.join(out3, "*.dcm")):
                d = reread(p)
                check(d.PatientAge == "057Y" and d.PatientSex == "F", "rtnPatCharsOpt keeps")
                check(str(d.get("PatientName", "")) == "", "rtnPatCharsOpt keeps no name")
                check(len(d.StudyDate) == 8 and d.StudyDate != planted["StudyDate"],
                      "study date shifted")
                check(d.LongitudinalTemporalInformationModified == "MODIFIED", "MODIFIED flag")
                codes = {i.CodeValue for i in d.DeidentificationMethodCodeSequence}
                check({"113100", "113107", "113108"} <= codes, "option codes")
                with open(p, "rb") as f:
                    data = f.read()
                check(planted["PatientName"].encode() not in data, "name gone with options")

        # Burned-in: refused by default, nothing written; allowed when told.
        src, _ = synth(tmp, "in-burned", "CT", ["--burned-in", "yes"])
        out4 = os.path.join(tmp, "out4")
        r = run(["deid", src, "-o", out4, "--secret", s1, "--json"], expect=1)
        summary = json.loads(r.stdout)
        check(summary["refused"] == 6 and summary["written"] == 0, "burned-in refused")
        check("burned-in" in r.stderr, "refusal says why")
        check(not glob.glob(os.path.join(out4, "*")), "nothing written when refused")
        run(["deid", src, "-o", out4, "--secret", s1, "--allow-burned-in", "--json"])
        check(len(glob.glob(os.path.join(out4, "*.dcm"))) == 6, "allowed when told")

        # Safe private attributes (PS3.15 E.3.10) are kept only under rtnSafePrivOpt, private
        # attributes nested in sequences are removed, unsafe ones always.
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence
        src, _ = synth(tmp, "in-priv", "MR")
        one = sorted(glob.glob(os.path.join(src, "*.dcm")))[0]
        d = pydicom.dcmread(one)
        block = d.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0C, "IS", "42")
        block.add_new(0x99, "LO", "PLANTED-PRIV-SECRET")
        item = Dataset()
        item.add_new(0x00291010, "LO", "NESTED CREATOR")
        item.add_new(0x00291011, "LO", "NESTED-PRIV-SECRET")
        item.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.9"
        d.add_new(0x00081115, "SQ", Sequence([item]))  # ReferencedSeriesSequence
        privdir = os.path.join(tmp, "in-priv2")
        os.makedirs(privdir)
        d.save_as(os.path.join(privdir, "x.dcm"))
        for keep, kept in (([], False), (["--keep", "rtnSafePrivOpt"], True)):
            outp = os.path.join(tmp, "outp%d" % len(keep))
            run(["deid", privdir, "-o", outp, "--secret", s1, "--json"] + keep)
            [p] = glob.glob(os.path.join(outp, "*.dcm"))
            with open(p, "rb") as f:
                data = f.read()
            for planted_text in (b"PLANTED-PRIV-SECRET", b"NESTED-PRIV-SECRET", b"NESTED CREATOR",
                                 b"1.2.3.4.5.6.7.8.9"):
                check(planted_text not in data, "private/nested value gone (%s)" % keep)
            o = reread(p)
            check((b"SIEMENS MR HEADER" in data) == kept, "safe creator kept iff option")
            if kept:
                check(o[0x0019, 0x100C].value == 42, "safe private value kept")
            check(o.ReferencedSeriesSequence[0].ReferencedSOPInstanceUID.startswith("2.25."),
                  "nested UID remapped")

        # Without --secret: the home's one secret $AGORA_HOME/secret is created (mode 600) and
        # reused; no second secret file (deid.secret) appears.
        home = os.path.join(tmp, "home")
        env = dict(os.environ, AGORA_HOME=home)
        # ... but never when the input is missing: fail before creating any state.
        r = subprocess.run([AGORA, "deid", os.path.join(tmp, "no-such-input"), "-o",
                            os.path.join(tmp, "never")], capture_output=True, text=True, env=env)
        check(r.returncode == 1 and "no-such-input" in r.stderr, "missing input fails (1)")
        check(not os.path.exists(os.path.join(home, "secret")),
              "a missing input creates no secret")
        outs = []
        for i in range(2):
            o = os.path.join(tmp, "home-out%d" % i)
            r = subprocess.run([AGORA, "deid", privdir, "-o", o], capture_output=True, text=True,
                               env=env)
            check(r.returncode == 0, "deid with AGORA_HOME secret")
            outs.append(sorted(os.listdir(o)))
        st = os.stat(os.path.join(home, "secret"))
        check(st.st_size == 32 and (st.st_mode & 0o077) == 0, "secret created private")
        check(not os.path.exists(os.path.join(home, "deid.secret")), "one secret file")
        check(outs[0] == outs[1], "the created secret is reused")
        # Without AGORA_HOME: the default clinic home (~/.local/share/agora), as every command.
        base = {k: v for k, v in os.environ.items() if k not in ("AGORA_HOME", "XDG_DATA_HOME")}
        fresh = os.path.join(tmp, "fresh-user")
        r = subprocess.run([AGORA, "deid", privdir, "-o", os.path.join(tmp, "default-out")],
                           capture_output=True, text=True, env=dict(base, HOME=fresh))
        st = os.stat(os.path.join(fresh, ".local", "share", "agora", "secret"))
        check(r.returncode == 0 and (st.st_mode & 0o077) == 0, "default home secret, private")
        # No home at all (no HOME either): refused, saying how to give a secret.
        no_home = {k: v for k, v in base.items() if k != "HOME"}
        r = subprocess.run([AGORA, "deid", privdir, "-o", os.path.join(tmp, "nohome")],
                           capture_output=True, text=True, env=no_home)
        check(r.returncode == 1 and "--secret" in r.stderr, "no secret, no run")

        # Usage errors and bad secrets.
        run(["deid", src], expect=2)
        run(["deid", src, "-o", out4, "--secret", s1, "--keep", "bogusOpt"], expect=2)
        loose = os.path.join(tmp, "loose")
        with open(loose, "wb") as f:
            f.write(b"x" * 32)
        os.chmod(loose, 0o644)
        r = run(["deid", src, "-o", out4, "--secret", loose], expect=1)
        check("chmod 600" in r.stderr, "loose secret refused")
        # Defined-length encoding reads back the same.
        out5 = os.path.join(tmp, "out5")
        run(["deid", src, "-o", out5, "--secret", s1, "--allow-burned-in", "--defined-lengths"])
        dcmdump_all(glob.glob(os.path.join(out5, "*.dcm")))
        for p in glob.glob(os.path.join(out5, "*.dcm")):
            reread(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    print("ok")


main()
