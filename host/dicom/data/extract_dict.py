#!/usr/bin/env python3
"""One-time extraction (not run by the build): PS3.6 attributes JSON -> dictionary.tsv.

Usage: extract_dict.py ../../../../shared/data/attributes_2024b.json > dictionary.tsv
Keeps tag (8 hex digits, 'x' for repeating-group wildcards), VR, VM, keyword, retired flag.
Entries without a keyword (a few placeholder rows) are dropped.
"""
import json
import sys


def main():
    rows = json.load(open(sys.argv[1], encoding="utf-8"))
    out = []
    for r in rows:
        kw = r.get("keyword", "").strip()
        tag = r["tag"].strip("()").replace(",", "").lower()
        if not kw or len(tag) != 8:
            continue
        vr = r.get("valueRepresentation", "").strip()
        vrs = [v.strip() for v in vr.split(" or ") if len(v.strip()) == 2 and v.strip().isupper()]
        vm = r.get("valueMultiplicity", "").strip() or "1"
        ret = "R" if r.get("retired", "N") == "Y" else "-"
        out.append((tag, "/".join(vrs) or "-", vm.replace(" ", ""), kw, ret))
    out.sort()
    sys.stdout.write("# tag\tvr\tvm\tkeyword\tretired  (source: see README.md)\n")
    for t in out:
        sys.stdout.write("\t".join(t) + "\n")


main()
