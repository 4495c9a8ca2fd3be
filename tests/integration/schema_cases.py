"""Shared by the schema agreement tests (trust/schema_agree.py: manifests; rules/schema_agree.py:
routing rules): mutations of an example document, and the loop that checks a hand-written C
validator (a command of the `agora` tool) against a JSON Schema on each of them."""
import copy
import json
import os
import subprocess
import tempfile

DELETE = object()


def mutate(base, path, value):
    """A deep copy of base with the value at path (keys and indexes) replaced, or deleted."""
    doc = copy.deepcopy(base)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def disagreements(validator, cases, command, what, names):
    """Run command(path) (an argv) on each (name, doc) written to a file; print and count every
    case where the schema and the command disagree, or where a refusal's stderr lacks
    names(path)."""
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in cases:
            path = os.path.join(tmp, "doc.json")
            with open(path, "w") as f:
                json.dump(doc, f)
            schema_ok = validator.is_valid(doc)
            r = subprocess.run(command(path), capture_output=True, text=True)
            host_ok = r.returncode == 0
            if schema_ok != host_ok:
                failures += 1
                print(f"FAIL {name}: schema says {'valid' if schema_ok else 'invalid'}, {what} "
                      f"{'accepted' if host_ok else 'refused'}: {r.stderr.strip()}")
            elif not host_ok and names(path) not in r.stderr:
                failures += 1
                print(f"FAIL {name}: the refusal does not name {names(path)!r}: "
                      f"{r.stderr.strip()}")
    return failures
