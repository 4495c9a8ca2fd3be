#!/usr/bin/python3
"""Keep docs/dicom-coverage.md equal to the refusals in the code.

A refusal is an error with AGORA_EUNSUPPORTED: input that is valid (or plausible) DICOM but that
Agora does not decode. In host/dicom and host/codec every such message is written as
AGORA_REFUSAL("literal") (host/common/refusal.h). This check
  1. fails when an agora__error_set(..., AGORA_EUNSUPPORTED, ...) call there has a message not
     wrapped in AGORA_REFUSAL (so a new refusal cannot slip past the list);
  2. extracts every AGORA_REFUSAL message and every message listed in the doc's refusal table
     (first column, in backticks) and fails unless the two sets are equal, naming what to add
     or remove;
  3. does the same for the transfer syntaxes host/codec/codec.c knows but does not decode
     (decoder NULL, native syntaxes aside) and the doc's "not decoded" table.

usage: refusals_check.py SOURCE_ROOT
"""
import os
import re
import sys

DIRS = ("host/dicom", "host/codec")
DOC = "docs/dicom-coverage.md"

STRING = r'"(?:[^"\\\n]|\\.)*"'
REFUSAL = re.compile(r"AGORA_REFUSAL\s*\(\s*((?:" + STRING + r"\s*)+)\)")
UNSUPPORTED_CALL = re.compile(r"agora__error_set\s*\(\s*[^,()]+,\s*AGORA_EUNSUPPORTED\s*,\s*")


def strip_comments(src):
    """Remove /* */ and // comments, keeping string literals (and line numbers) intact."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '"':
            m = re.compile(STRING).match(src, i)
            j = m.end() if m else i + 1
            out.append(src[i:j])
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def literal(pieces):
    """Concatenate adjacent C string literals (only simple escapes occur in messages)."""
    text = "".join(p[1:-1] for p in re.findall(STRING, pieces))
    return text.replace('\\"', '"').replace("\\\\", "\\")


def code_refusals(root):
    found, unmarked = {}, []
    for d in DIRS:
        base = os.path.join(root, d)
        for dirpath, _, names in os.walk(base):
            for name in sorted(names):
                if not name.endswith((".c", ".h")) or name == "refusal.h":
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                src = strip_comments(open(path, encoding="utf-8").read())
                for m in UNSUPPORTED_CALL.finditer(src):
                    if not src.startswith("AGORA_REFUSAL", m.end()):
                        line = src.count("\n", 0, m.start()) + 1
                        unmarked.append(f"{rel}:{line}")
                for m in REFUSAL.finditer(src):
                    line = src.count("\n", 0, m.start()) + 1
                    found.setdefault(literal(m.group(1)), []).append(f"{rel}:{line}")
    return found, unmarked


NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99",
          "1.2.840.10008.1.2.2"}  # decoded by host/dicom, not by a codec


def code_undecoded(root):
    src = strip_comments(open(os.path.join(root, "host/codec/codec.c"), encoding="utf-8").read())
    uids = re.findall(r'\{\s*"([0-9.]+)",(?:\s*' + STRING + r')+,\s*NULL\s*\}', src)
    return set(uids) - NATIVE


def doc_table(root, heading, column):
    """Backticked cells of the given column (0-based) in the table under '## heading'."""
    path = os.path.join(root, DOC)
    listed, in_table = {}, False
    for i, line in enumerate(open(path, encoding="utf-8"), 1):
        if line.startswith("## "):
            in_table = line.strip().lower().startswith("## " + heading)
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") \
            else []
        if in_table and len(cells) > column:
            m = re.fullmatch(r"`([^`]+)`", cells[column])
            if m:
                listed.setdefault(m.group(1), []).append(f"{DOC}:{i}")
    return listed


def doc_refusals(root):
    return doc_table(root, "refusals", 0)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    code, unmarked = code_refusals(root)
    doc = doc_refusals(root)
    bad = 0
    for where in unmarked:
        print(f"not ok: {where}: an AGORA_EUNSUPPORTED message is not wrapped in "
              "AGORA_REFUSAL(\"...\"); wrap it and list it in " + DOC)
        bad += 1
    for msg in sorted(set(code) - set(doc)):
        print(f"not ok: refusal in {', '.join(code[msg])} is missing from {DOC} "
              f"(add a row: | `{msg}` | why | what to do |)")
        bad += 1
    for msg in sorted(set(doc) - set(code)):
        print(f"not ok: {', '.join(doc[msg])} lists `{msg}`, which no AGORA_REFUSAL in "
              f"{' or '.join(DIRS)} says; remove or update the row")
        bad += 1
    for msg, rows in sorted(doc.items()):
        if len(rows) > 1:
            print(f"not ok: `{msg}` is listed twice ({', '.join(rows)})")
            bad += 1
    if not code:
        print("not ok: no AGORA_REFUSAL found; is SOURCE_ROOT right?")
        bad += 1
    undecoded, listed = code_undecoded(root), doc_table(root, "transfer syntaxes not decoded", 1)
    for uid in sorted(undecoded - set(listed)):
        print(f"not ok: {uid} has no decoder in host/codec/codec.c but is missing from the "
              f"'not decoded' table of {DOC}")
        bad += 1
    for uid in sorted(set(listed) - undecoded):
        print(f"not ok: {DOC} lists {uid} as not decoded, but host/codec/codec.c decodes it "
              "(or does not know it); remove the row")
        bad += 1
    if not undecoded:
        print("not ok: found no undecoded syntax in host/codec/codec.c; has the table moved?")
        bad += 1
    print(f"{len(code)} refusals in the code, {len(doc)} in {DOC}; {len(undecoded)} syntaxes "
          f"not decoded, {len(listed)} listed")
    print(f"{0 if bad else 1} passed, {1 if bad else 0} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
