#!/usr/bin/env python3
"""The one table of result limits: read them from schemas/result.schema.json (the source) and
derive the rest.

  gen_result_limits.py SCHEMA --header OUT.h     C header used by the runner's host API
                                                  (sandbox/hostapi.c), the worker-side decoder
                                                  (host/worker/validate.c) and the results
                                                  validator (host/results/result_validate.c)
  gen_result_limits.py SCHEMA --markdown         the limits table of docs/abi.md
  gen_result_limits.py SCHEMA --check-doc DOC    exit 1 unless DOC holds that table verbatim
                                                  between the result-limits markers

Each limit names the place in the schema that holds its value (a JSON pointer). A pointer that
no longer resolves, a non-integer count, or two places that must agree and do not, fail the
build: the schema cannot drift away from the C code or the docs. Bounds a schema cannot express
(totals across a result) live in the schema's "x-agora-limits" annotation.
"""
import json
import sys

# (C name, JSON pointer into the schema, unit, what it bounds). Appending a row is all a new
# limit needs; AGORA__RESULT_<name> appears in the header and a row in docs/abi.md.
LIMITS = [
    ("ITEMS_MAX", "/x-agora-limits/items_per_job", "items",
     "findings + measurements + regions of one job"),
    ("FINDINGS_MAX", "/properties/findings/maxItems", "items", "findings of one result"),
    ("MEASUREMENTS_MAX", "/properties/measurements/maxItems", "items",
     "measurements of one result"),
    ("REGIONS_MAX", "/properties/regions/maxItems", "items",
     "regions (points, boxes, polygons, masks) of one result"),
    ("SUMMARY_MAX", "/properties/summary/maxLength", "bytes", "`set_summary` text"),
    ("ERROR_MAX", "/properties/error/maxLength", "bytes",
     "`set_error` text as stored (longer text is cut, not refused)"),
    ("SCHEME_MAX", "/$defs/code/properties/scheme/maxLength", "bytes",
     "coding scheme designator (`agora_finding.scheme`, `agora_measurement.code_scheme`)"),
    ("CODE_MAX", "/$defs/code/properties/code/maxLength", "bytes",
     "code value (`agora_finding.code`, `agora_measurement.code`)"),
    ("MEANING_MAX", "/$defs/code/properties/meaning/maxLength", "bytes",
     "code meaning (`agora_finding.meaning`, `agora_measurement.code_meaning`)"),
    ("NAME_MAX", "/$defs/measurement/properties/name/maxLength", "bytes",
     "`agora_measurement.name`"),
    ("UNIT_MAX", "/$defs/measurement/properties/unit/maxLength", "bytes",
     "`agora_measurement.unit` (UCUM)"),
    ("VALUE_MAX", "/$defs/measurement/properties/value/maximum", "absolute value",
     "`agora_measurement.value` (finite, within plus or minus this)"),
    ("LABEL_MAX", "/$defs/region/properties/label/maxLength", "bytes",
     "`agora_region.label`, `agora_mask.label`"),
    ("POINTS_MAX", "/$defs/region/properties/points/maxItems", "points",
     "points of one polygon"),
    ("POINTS_TOTAL_MAX", "/x-agora-limits/points_per_result", "points",
     "points of all regions of one result"),
    ("COORD_MAX", "/$defs/point/items/maximum", "absolute value",
     "a point coordinate (pixels; the host also keeps points inside the image)"),
    ("FRAME_MAX", "/$defs/frame/maximum", "index", "a frame index"),
    ("MASK_FRAMES_MAX", "/$defs/region/properties/mask/properties/frames/maximum", "frames",
     "frames of one mask"),
    ("MASK_ROWS_MAX", "/$defs/region/properties/mask/properties/rows/maximum", "rows",
     "rows of a mask (must equal the image's)"),
    ("MASK_COLUMNS_MAX", "/$defs/region/properties/mask/properties/columns/maximum", "columns",
     "columns of a mask (must equal the image's)"),
    ("MASK_BYTES_MAX", "/x-agora-limits/mask_bytes", "bytes",
     "`n_frames * rows * columns * bits / 8` of one mask"),
    ("PLUGIN_ID_MAX", "/properties/plugin/properties/id/maxLength", "bytes",
     "plugin id (from the manifest)"),
    ("PLUGIN_VERSION_MAX", "/properties/plugin/properties/version/maxLength", "bytes",
     "plugin version (from the manifest)"),
    ("TRIAGE_REASON_MAX", "/properties/triage/properties/reason/maxLength", "bytes",
     "triage reason (UTF-8, no control characters)"),
]

# Places that must hold the same number as a limit above (one value, several schema spots).
SAME_AS = [
    ("/$defs/frame/maximum", "/$defs/region/properties/mask/properties/first_frame"),
    ("/properties/findings/maxItems", "/properties/measurements/maxItems"),
    ("/properties/findings/maxItems", "/properties/regions/maxItems"),
    ("/$defs/measurement/properties/value/maximum",
     "/$defs/measurement/properties/value/minimum", -1),
    ("/$defs/point/items/maximum", "/$defs/point/items/minimum", -1),
]

# Sets of accepted values (an enum in the schema): a C predicate and a docs row each.
ENUMS = [
    ("MASK_BITS", "/$defs/region/properties/mask/properties/bits/enum", "bits",
     "`agora_mask.bits`: labels are 8- or 16-bit little-endian"),
]

BEGIN = "<!-- result-limits: generated by schemas/gen_result_limits.py; edit the schema -->"
END = "<!-- /result-limits -->"


def resolve(schema, pointer):
    node = schema
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            sys.exit("gen_result_limits: %s does not resolve in the result schema" % pointer)
        node = node[part]
    return node


def number(schema, pointer):
    v = resolve(schema, pointer)
    if isinstance(v, dict) and "$ref" in v:  # e.g. first_frame -> #/$defs/frame
        v = resolve(schema, v["$ref"][1:] + "/maximum")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        sys.exit("gen_result_limits: %s is not a number" % pointer)
    return v


def c_literal(v):
    if isinstance(v, float) or abs(v) >= 2**31:
        return repr(float(v))  # a double bound (1e15), or a count written as a double
    return str(v)


def load(path):
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    values = {name: number(schema, ptr) for name, ptr, _, _ in LIMITS}
    for name, ptr, _, _ in LIMITS:
        if values[name] < 0 or (values[name] != int(values[name]) and "VALUE" not in name):
            sys.exit("gen_result_limits: %s (%s) must be a non-negative count" % (name, ptr))
    for entry in SAME_AS:
        a, b = entry[0], entry[1]
        sign = entry[2] if len(entry) > 2 else 1
        if number(schema, a) != sign * number(schema, b):
            sys.exit("gen_result_limits: %s and %s disagree" % (a, b))
    enums = {}
    for name, ptr, _, _ in ENUMS:
        vals = resolve(schema, ptr)
        if not isinstance(vals, list) or not vals or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in vals):
            sys.exit("gen_result_limits: %s is not a list of integers" % ptr)
        enums[name] = vals
    return values, enums


def header(values, enums):
    out = ["/* Generated by schemas/gen_result_limits.py from schemas/result.schema.json: edit the",
           " * schema, not this file. The limits of a plugin result, one table for the runner's",
           " * host API, the worker-side decoder and the results validator (docs/abi.md). */",
           "#ifndef AGORA_RESULT_LIMITS_H", "#define AGORA_RESULT_LIMITS_H", ""]
    for name, ptr, unit, what in LIMITS:
        out.append("/* %s, %s (%s) */" % (what.replace("`", ""), unit, ptr))
        out.append("#define AGORA__RESULT_%s %s" % (name, c_literal(values[name])))
    for name, ptr, unit, what in ENUMS:
        vals = enums[name]
        out.append("/* %s (%s) */" % (what.replace("`", ""), ptr))
        out.append("#define AGORA__RESULT_%s_OK(v) (%s)" %
                   (name, " || ".join("(v) == %d" % v for v in vals)))
        out.append('#define AGORA__RESULT_%s_TEXT "%s"' %
                   (name, " or ".join(str(v) for v in vals)))
        out.append("#define AGORA__RESULT_%s_MAX %d" % (name, max(vals)))
    out += ["", "#endif /* AGORA_RESULT_LIMITS_H */", ""]
    return "\n".join(out)


def fmt(v):
    if isinstance(v, float) and v >= 1e6:
        return "%g" % v
    return "{:,}".format(int(v)) if v == int(v) else str(v)


def markdown(values, enums):
    rows = [BEGIN, "", "| Limit | Value | Unit |", "|---|---|---|"]
    for name, _, unit, what in LIMITS:
        rows.append("| %s | %s | %s |" % (what, fmt(values[name]), unit))
    for name, _, unit, what in ENUMS:
        rows.append("| %s | %s | %s |" % (what, " or ".join(str(v) for v in enums[name]), unit))
    rows += ["", END]
    return "\n".join(rows) + "\n"


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    values, enums = load(argv[1])
    if argv[2] == "--header" and len(argv) == 4:
        with open(argv[3], "w", encoding="utf-8") as f:
            f.write(header(values, enums))
    elif argv[2] == "--markdown":
        sys.stdout.write(markdown(values, enums))
    elif argv[2] == "--check-doc" and len(argv) == 4:
        with open(argv[3], encoding="utf-8") as f:
            doc = f.read()
        want = markdown(values, enums)
        if want not in doc:
            sys.stderr.write("%s: the result limits table is missing or out of date; replace "
                             "the block between the result-limits markers with the output of\n"
                             "  python3 schemas/gen_result_limits.py schemas/result.schema.json "
                             "--markdown\n" % argv[3])
            return 1
        print("ok: %s states the %d result limits of the schema" %
              (argv[3], len(LIMITS) + len(ENUMS)))
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
