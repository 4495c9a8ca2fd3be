#!/usr/bin/env python3
"""schemas/rules.schema.json documents what the C loader (host/daemon/route_rules.c, the
authority) accepts: for the clinic guide's example rules file (taken verbatim from
docs/clinic-guide.md, "Routing rules") and a set of mutations of it, `agora rules check` accepts
exactly the files the JSON Schema accepts, and each refusal names the file. The loader's own
bounds that JSON Schema cannot express (file size, unique ids, condition count and depth) are
the unit tests'. Skips (77) when the jsonschema module is missing.
usage: schema_agree.py AGORA SCHEMA.json CLINIC_GUIDE.md"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from schema_cases import DELETE, disagreements  # noqa: E402
from schema_cases import mutate as mutate_doc  # noqa: E402

try:
    import jsonschema
except ImportError:
    print("skip: python module jsonschema is not installed (apt-get install python3-jsonschema)")
    sys.exit(77)

agora, schema_path, guide_path = sys.argv[1:4]
schema = json.load(open(schema_path))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
m = re.search(r"^cat > rules\.json <<'EOF'\n(.*?)\nEOF$", open(guide_path).read(), re.S | re.M)
if m is None:
    print(f"FAIL: no `cat > rules.json <<'EOF'` block in {guide_path}")
    sys.exit(1)
base = json.loads(m.group(1))


def mutate(path, value):
    return mutate_doc(base, path, value)


def cond(c):
    return mutate(["rules", 0, "when"], c)


W = ["rules", 0]
cases = [
    ("guide example", base),
    ("no rules", {"schema": "agora.rules/1", "rules": []}),
    ("no fallback", mutate(["fallback"], DELETE)),
    ("null fallback", mutate(["fallback"], None)),
    ("fallback discard", mutate(["fallback"], {"action": "discard"})),
    ("fallback run", mutate(["fallback"], {"run": ["org.example.a"], "send_to": []})),
    ("fallback default priority", mutate(["fallback"], {"action": "default", "priority": "urgent"})),
    ("fallback default with run", mutate(["fallback"], {"action": "default", "run": ["org.example.a"]})),
    ("fallback with when", mutate(["fallback"], {"run": ["org.example.a"], "when": {"all": []}})),
    ("fallback empty", mutate(["fallback"], {})),
    ("schema 2", mutate(["schema"], "agora.rules/2")),
    ("no schema", mutate(["schema"], DELETE)),
    ("extra key", mutate(["extra"], 1)),
    ("rules not a list", mutate(["rules"], {})),
    ("rule no id", mutate(W + ["id"], DELETE)),
    ("rule id space", mutate(W + ["id"], "a b")),
    ("rule id reserved", mutate(W + ["id"], "default")),
    ("rule id long", mutate(W + ["id"], "x" * 65)),
    ("rule no when", mutate(W + ["when"], DELETE)),
    ("rule no run", mutate(W + ["run"], DELETE)),
    ("rule run empty", mutate(W + ["run"], [])),
    ("rule run upper", mutate(W + ["run"], ["Org.Example.A"])),
    ("rule run no dot", mutate(W + ["run"], ["example"])),
    ("rule run version", mutate(W + ["run"], ["org.example.a@1.2.3-rc.1"])),
    ("rule run empty version", mutate(W + ["run"], ["org.example.a@"])),
    ("rule run dup", mutate(W + ["run"], ["org.example.a", "org.example.a"])),
    ("rule run 33", mutate(W + ["run"], [f"org.example.p{i}" for i in range(33)])),
    ("rule scope bad", mutate(W + ["scope"], "patient")),
    ("rule priority bad", mutate(W + ["priority"], "high")),
    ("rule send_to empty", mutate(W + ["send_to"], [])),
    ("rule send_to bad", mutate(W + ["send_to"], ["pacs/1"])),
    ("rule send_to dup", mutate(W + ["send_to"], ["a", "a"])),
    ("rule action run", mutate(W + ["action"], "run")),
    ("rule action bogus", mutate(W + ["action"], "route")),
    ("discard with run", mutate(W + ["action"], "discard")),
    ("discard alone", {"schema": "agora.rules/1", "rules": [
        {"id": "d", "when": {"attr": "Rows", "lt": 64}, "action": "discard"}]}),
    ("rule description long", mutate(W + ["description"], "x" * 513)),
    ("rule extra key", mutate(W + ["colour"], "red")),
    ("SeriesDescription", cond({"attr": "SeriesDescription", "eq": "CINE"})),
    ("PatientName", cond({"attr": "PatientName", "eq": "DOE"})),
    ("StudyDate", cond({"attr": "StudyDate", "eq": "20260101"})),
    ("PatientID", cond({"attr": "PatientID", "in": ["X"]})),
    ("tag number", cond({"attr": "(0008,103E)", "eq": "X"})),
    ("tag key", cond({"tag": "Modality", "eq": "CT"})),
    ("modality lower", cond({"attr": "Modality", "eq": "ct"})),
    ("modality inner space", cond({"attr": "BodyPartExamined", "eq": "LEFT HAND"})),
    ("modality edge space", cond({"attr": "Modality", "eq": "CT "})),
    ("modality number", cond({"attr": "Modality", "eq": 1})),
    ("modality lt", cond({"attr": "Modality", "lt": "CT"})),
    ("modality 17", cond({"attr": "Modality", "eq": "A" * 17})),
    ("uid ok", cond({"attr": "SOPClassUID", "eq": "1.2.840.10008.5.1.4.1.1.4"})),
    ("uid text", cond({"attr": "SOPClassUID", "eq": "MR Image"})),
    ("ae ok", cond({"attr": "CallingAETitle", "in": ["CT 01", "MR-2"]})),
    ("ae backslash", cond({"attr": "CalledAETitle", "eq": "A\\B"})),
    ("ae 17", cond({"attr": "CalledAETitle", "eq": "A" * 17})),
    ("origin ok", cond({"attr": "Origin", "eq": "stow"})),
    ("origin bad", cond({"attr": "Origin", "eq": "ftp"})),
    ("thickness int", cond({"attr": "SliceThickness", "gt": 2})),
    ("thickness text", cond({"attr": "SliceThickness", "le": "2.5"})),
    ("rows real", cond({"attr": "Rows", "eq": 1.5})),
    ("rows integral real", cond({"attr": "Rows", "eq": 512.0})),
    ("rows negative", cond({"attr": "Rows", "ge": -1})),
    ("rows huge", cond({"attr": "Columns", "le": 4294967296})),
    ("frames in", cond({"attr": "NumberOfFrames", "in": [1, 2, 3]})),
    ("in empty", cond({"attr": "Rows", "in": []})),
    ("in 33", cond({"attr": "Rows", "in": list(range(33))})),
    ("exists ok", cond({"attr": "BodyPartExamined", "exists": False})),
    ("exists 1", cond({"attr": "Rows", "exists": 1})),
    ("no operator", cond({"attr": "Rows"})),
    ("two operators", cond({"attr": "Rows", "gt": 1, "lt": 9})),
    ("unknown operator", cond({"attr": "Rows", "like": 1})),
    ("all empty", cond({"all": []})),
    ("any ok", cond({"any": [{"attr": "Rows", "gt": 1}, {"not": {"attr": "Rows", "gt": 9}}]})),
    ("all and any", cond({"all": [{"attr": "Rows", "gt": 1}], "any": [{"attr": "Rows", "gt": 1}]})),
    ("not list", cond({"not": [{"attr": "Rows", "gt": 1}]})),
    ("condition list", cond([{"attr": "Rows", "gt": 1}])),
]

# A refusal is exit 2 (checked in rules_cli.sh) and names the file.
failures = disagreements(validator, cases, lambda path: [agora, "rules", "check", path],
                         "agora rules check", lambda path: path + ": ")
if not validator.is_valid(base):
    failures += 1
    print("FAIL: the guide's example is not valid against the schema")
print(f"{len(cases)} rules files, {failures} disagreements")
sys.exit(1 if failures else 0)
