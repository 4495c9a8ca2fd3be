#!/usr/bin/env python3
"""The host's hand-written manifest validator and schemas/manifest.schema.json must agree:
for the example manifest and a set of mutations of it, `agora pack` accepts exactly the
manifests the JSON Schema accepts. Skips (77) when the jsonschema module is missing.
usage: schema_agree.py AGORA PLUGIN.so MANIFEST.json SCHEMA.json"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from schema_cases import DELETE, disagreements  # noqa: E402
from schema_cases import mutate as mutate_doc  # noqa: E402

try:
    import jsonschema
except ImportError:
    print("skip: python module jsonschema is not installed (apt-get install python3-jsonschema)")
    sys.exit(77)

agora, plugin, manifest_path, schema_path = sys.argv[1:5]
schema = json.load(open(schema_path))
base = json.load(open(manifest_path))
validator = jsonschema.Draft202012Validator(schema)


def mutate(path, value):
    return mutate_doc(base, path, value)


cases = [
    ("valid", base),
    ("any modality", mutate(["inputs", "modalities"], ["*"])),
    ("star mixed", mutate(["inputs", "modalities"], ["CT", "*"])),
    ("lower-case modality", mutate(["inputs", "modalities"], ["ct"])),
    ("memory too small", mutate(["resources", "memory_mb"], 8)),
    ("memory max", mutate(["resources", "memory_mb"], 65536)),
    ("memory too big", mutate(["resources", "memory_mb"], 65537)),
    ("threads 0", mutate(["resources", "threads"], 0)),
    ("time float", mutate(["resources", "time_s"], 1.5)),
    ("no resources", mutate(["resources"], DELETE)),
    ("no description", mutate(["description"], DELETE)),
    ("no pricing", mutate(["pricing"], DELETE)),
    ("id upper", mutate(["id"], "Com.Example.X")),
    ("id one label", mutate(["id"], "example")),
    ("id dash end", mutate(["id"], "com.example-")),
    ("version prerelease", mutate(["version"], "1.0.0-rc.1+b7")),
    ("version leading zero", mutate(["version"], "1.01.0")),
    ("version short", mutate(["version"], "1.0")),
    ("abi text", mutate(["abi"], "one")),
    ("perm unknown", mutate(["permissions"], ["rtnUIDsOpt"])),
    ("perm dup", mutate(["permissions"], ["cleanDescOpt", "cleanDescOpt"])),
    ("perm empty", mutate(["permissions"], [])),
    ("outputs empty", mutate(["outputs"], [])),
    ("outputs bad", mutate(["outputs"], ["pictures"])),
    ("pricing model", mutate(["pricing", "model"], "per-minute")),
    ("pricing currency", mutate(["pricing", "currency"], "euro")),
    ("pricing negative", mutate(["pricing", "price"], -5)),
    ("extra field", mutate(["extra"], 1)),
    ("extra input field", mutate(["inputs", "colour"], "red")),
    ("min frames 0", mutate(["inputs", "min_frames"], 0)),
    ("body part bad", mutate(["inputs", "body_parts"], ["chest"])),
    ("name empty", mutate(["name"], "")),
    ("name long", mutate(["name"], "x" * 129)),
    ("description long", mutate(["description"], "x" * 4097)),
]

failures = disagreements(
    validator, cases,
    lambda path: [agora, "pack", "--manifest", path, "--plugin", plugin, "-o",
                  os.path.join(os.path.dirname(path), "b.agora")],
    "agora pack", lambda path: "manifest")
print(f"{len(cases)} manifests, {failures} disagreements")
sys.exit(1 if failures else 0)
