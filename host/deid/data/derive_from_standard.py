#!/usr/bin/env python3
"""Derive the committed Annex E tables from the reference JSON of the DICOM standard.

Run by hand when the edition changes (CI has only the repository, so the build reads the derived
TSV files committed next to this script, never ../shared):

    python3 derive_from_standard.py /path/to/shared/data

Inputs (see README.md for edition and origin):
  confidentiality_profile_attributes.json  PS3.15 2024b Table E.1-1
  attributes_2024b.json                    PS3.6 2024b data dictionary (keyword, VR)
  safe_private_attributes_2023b.json       PS3.15 2023b Table E.3.10-1
Outputs: annex_e_2024b.tsv, safe_private_2023b.tsv (sorted, tab separated, '#' comments).
"""
import json
import os
import sys

OPTIONS = ["rtnUIDsOpt", "rtnDevIdOpt", "rtnInstIdOpt", "rtnPatCharsOpt", "rtnLongFullDatesOpt",
           "rtnLongModifDatesOpt", "cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt",
           "rtnSafePrivOpt"]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "../../../../shared/data"
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(src, "confidentiality_profile_attributes.json")) as f:
        table = json.load(f)
    with open(os.path.join(src, "attributes_2024b.json")) as f:
        dictionary = {a["tag"].upper(): a for a in json.load(f)}
    with open(os.path.join(src, "safe_private_attributes_2023b.json")) as f:
        safe = json.load(f)

    rows = {}
    for row in table:
        tag = row["tag"].upper()
        if tag.startswith("(GGGG,EEEE)"):
            tag = "(ODD,PRIV)"  # every element of an odd group
        key = tag.strip("()")
        vr, keyword = "--", ""
        entry = dictionary.get(tag)
        if entry is not None:
            keyword = entry.get("keyword", "")
            vr = entry.get("valueRepresentation", "--")[:2] or "--"
        elif tag == "(50XX,XXXX)":
            vr = "--"
        elif tag in ("(60XX,3000)",):
            vr = "OW"
        elif tag in ("(60XX,4000)",):
            vr = "LT"
        actions = [row["basicProfile"]] + [row.get(o, "-") for o in OPTIONS]
        line = "\t".join([key, keyword or "-", vr] + actions + [" ".join(row["name"].split())])
        if key in rows and rows[key] != line:
            sys.exit("conflicting duplicate row for " + key)
        rows[key] = line  # the table lists "Private Attributes" twice, identically

    with open(os.path.join(here, "annex_e_2024b.tsv"), "w") as f:
        f.write("# PS3.15 2024b Table E.1-1 (Application Level Confidentiality Profile Attributes),\n")
        f.write("# derived by derive_from_standard.py; keyword and VR from PS3.6 2024b.\n")
        f.write("# columns: tag keyword vr basic " + " ".join(OPTIONS) + " name\n")
        for key in sorted(rows):
            f.write(rows[key] + "\n")

    safe_rows = set()
    for row in safe:
        tag = row["tag"].upper().strip("()")
        group, elem = tag.split(",")
        if not elem.startswith("XX"):
            sys.exit("unexpected safe private tag " + tag)
        safe_rows.add("\t".join([group, elem[2:], row["privateCreator"], row.get("vr", "--")[:2]]))
    with open(os.path.join(here, "safe_private_2023b.tsv"), "w") as f:
        f.write("# PS3.15 2023b Table E.3.10-1 (Safe Private Attributes), derived by\n")
        f.write("# derive_from_standard.py. columns: group element-low-byte private-creator vr\n")
        for r in sorted(safe_rows):
            f.write(r + "\n")


if __name__ == "__main__":
    main()
