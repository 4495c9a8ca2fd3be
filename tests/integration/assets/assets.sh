#!/bin/bash
# Assets in the bundle (issue 10), through the real CLI, runner and sandbox:
#  - dev run --asset gives the plugin the declared assets, read-only, from init on;
#  - pack --asset writes a version-2 bundle (refusing an undeclared or a missing asset), certify
#    pins each asset in the catalog (refusing a bundle that carries an undeclared one or whose
#    asset bytes differ from its table), install stores them, run hands them to the worker: the
#    bytes the plugin sees are exactly the packed files;
#  - an installed asset flipped by one byte is refused at the next load;
#  - a version-1 bundle (no assets) still certifies, installs and runs.
# Usage: assets.sh AGORA ASSETS_PLUGIN.so MANIFEST.json V1_PLUGIN.so
set -euo pipefail
A=$1 PLUGIN=$2 MANIFEST=$3 V1=$4
T=$(mktemp -d /tmp/agora-assets.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
export AGORA_HOME="$T/home"
fail() { echo "not ok: $*"; exit 1; }
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
refused() { # refused WHAT EXPECTED CMD...: exit 1 with the message
    local what=$1 expect=$2
    shift 2
    if "$@" >out.txt 2>err.txt; then fail "$what: succeeded"; fi
    grep -qF -- "$expect" err.txt || { cat err.txt; fail "$what: message lacks '$expect'"; }
    echo "ok: $what refused ($(head -c 160 err.txt))"
}

"$A" dicom synth --modality CT --slices 2 --rows 16 --cols 16 --seed 5 -o in >/dev/null
head -c 3000001 /dev/urandom >weights.bin
printf 'background\nliver\n' >labels.txt
expect=$($PY - <<'PY'
def fnv(b):
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xffffffffffffffff
    return "%016x" % h
w, l = open("weights.bin", "rb").read(), open("labels.txt", "rb").read()
print("weights.bin size=%d fnv=%s; labels.txt size=%d fnv=%s; same=1 unknown=-1 null=-1"
      % (len(w), fnv(w), len(l), fnv(l)))
PY
)

# ---- dev run ---------------------------------------------------------------------------------
"$A" dev run --plugin "$PLUGIN" --manifest "$MANIFEST" --asset weights.bin=weights.bin \
    --asset labels.txt=labels.txt --json in >dev.json 2>dev.err || { cat dev.err; fail "dev run"; }
$PY -c 'import json,sys; d=json.load(open("dev.json")); print(d["jobs"][0]["result"]["summary"])' >dev.sum
[ "$(cat dev.sum)" = "$expect" ] || fail "dev run: plugin saw '$(cat dev.sum)', want '$expect'"
echo "ok: dev run --asset: the plugin sees the files' bytes"
refused "dev run without a declared asset" "declares asset labels.txt but no --asset labels.txt=FILE" \
    "$A" dev run --plugin "$PLUGIN" --manifest "$MANIFEST" --asset weights.bin=weights.bin in
refused "dev run with an undeclared asset" "does not declare this asset" \
    "$A" dev run --plugin "$PLUGIN" --manifest "$MANIFEST" --asset weights.bin=weights.bin \
    --asset labels.txt=labels.txt --asset extra.bin=labels.txt in

# ---- pack ------------------------------------------------------------------------------------
"$A" keygen --out op >/dev/null
"$A" keygen --out vendor >/dev/null
PACK=(--manifest "$MANIFEST" --plugin "$PLUGIN" --sign vendor.key)
refused "pack with an undeclared asset" "does not declare this asset" \
    "$A" pack "${PACK[@]}" --asset weights.bin=weights.bin --asset labels.txt=labels.txt \
    --asset extra.bin=labels.txt -o x.agora
refused "pack without the declared assets" "declares 2 asset(s)" \
    "$A" pack "${PACK[@]}" -o x.agora
refused "pack with a bad asset name" "not an asset name" \
    "$A" pack "${PACK[@]}" --asset ../w=weights.bin -o x.agora
[ ! -e x.agora ] || fail "a refused pack must not write the bundle"
"$A" pack "${PACK[@]}" --asset weights.bin=weights.bin --asset labels.txt=labels.txt \
    -o assets.agora --json >pack.json
$PY - pack.json weights.bin <<'PY' || fail "pack --json"
import hashlib, json, sys
d = json.load(open(sys.argv[1]))
w = open(sys.argv[2], "rb").read()
assert d["format_version"] == 2, d
a = {x["name"]: x for x in d["assets"]}
assert a["weights.bin"]["size"] == len(w) and a["weights.bin"]["sha256"] == hashlib.sha256(w).hexdigest(), a
b = open("assets.agora", "rb").read(140)
assert b[:8] == b"AGORABND" and int.from_bytes(b[8:12], "little") == 2, b[:12]
print("ok: pack wrote a version-2 bundle pinning each asset")
PY

# ---- certify: refusals, then the real one --------------------------------------------------------
CERT=(--catalog cat --key op.key --vendor-key vendor.pub --model free)
# An asset byte flipped inside the bundle (its table, header and signature untouched).
$PY - assets.agora flipped.agora <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[-104 - 5] ^= 1  # inside the last asset, before the signature section
open(sys.argv[2], "wb").write(b)
PY
refused "certify a bundle whose asset differs from its table" "does not match the sha256 in its table" \
    "$A" certify flipped.agora "${CERT[@]}"
# A bundle carrying an asset its manifest does not declare (a hostile packer): rebuilt with a
# consistent table, header and signature, so only the undeclared asset is wrong.
$PY - "$MANIFEST" "$PLUGIN" undeclared.agora <<'PY'
import hashlib, json, struct, sys
m = json.loads(open(sys.argv[1]).read())
m["assets"] = [{"name": "weights.bin"}]
mb = json.dumps(m).encode()
p = open(sys.argv[2], "rb").read()
assets = [(b"weights.bin", b"w" * 100), (b"labels.txt", b"l" * 10)]
table = b"".join(n.ljust(128, b"\0") + struct.pack("<Q", len(d)) + hashlib.sha256(d).digest() for n, d in assets)
h = b"AGORABND" + struct.pack("<IIQQ", 2, 0, len(mb), len(p)) + hashlib.sha256(mb).digest() + hashlib.sha256(p).digest()
h += struct.pack("<II", len(assets), 0) + hashlib.sha256(table).digest()
open(sys.argv[3], "wb").write(h + table + mb + p + b"".join(d for _, d in assets))
PY
refused "certify a bundle with an undeclared asset" "which its manifest does not declare" \
    "$A" certify undeclared.agora --catalog cat --key op.key --model free
[ ! -e cat/catalog.json ] || fail "a refused certify must not publish a catalog"
"$A" certify assets.agora "${CERT[@]}" >cert.txt || fail "certify"
grep -q "asset    sha256 .* weights.bin (3000001 bytes)" cert.txt || { cat cert.txt; fail "certify output"; }
$PY - cat/catalog.json weights.bin labels.txt <<'PY' || fail "catalog pins"
import hashlib, json, sys
c = json.load(open(sys.argv[1]))
e = [x for x in c["entries"] if x["id"] == "org.agora.tests.assets"][0]
pins = {a["name"]: (a["sha256"], a["size"]) for a in e["assets"]}
for f in sys.argv[2:]:
    b = open(f, "rb").read()
    assert pins[f] == (hashlib.sha256(b).hexdigest(), len(b)), (f, pins)
print("ok: the catalog entry pins every asset's sha256 and size")
PY

# ---- version-1 bundle: still certifies, installs and runs -------------------------------------
cat >v1.manifest.json <<'JSON'
{"id": "org.agora.tests.abi-v1", "name": "ABI v1", "vendor": "Agora tests", "version": "1.0.0",
 "abi": "1.0", "inputs": {"modalities": ["*"]}, "permissions": [],
 "resources": {"memory_mb": 64, "time_s": 60, "threads": 1}, "outputs": ["findings", "measurements", "summary"]}
JSON
# Signed: the vendor "Agora tests" has its key pinned since the first certify, and a vendor with
# a pinned key gets no unsigned build certified.
"$A" pack --manifest v1.manifest.json --plugin "$V1" --sign vendor.key -o v1.agora >/dev/null
$PY -c 'import sys; b=open("v1.agora","rb").read(12); sys.exit(0 if int.from_bytes(b[8:12],"little")==1 else 1)' ||
    fail "pack without assets must write a version-1 bundle"
"$A" certify v1.agora --catalog cat --key op.key --model free >/dev/null || fail "certify v1"

# ---- clinic: install, run, tamper ------------------------------------------------------------------
"$A" init --home "$AGORA_HOME" --trust op.pub >/dev/null
"$A" sync cat >/dev/null
"$A" install org.agora.tests.assets >/dev/null
"$A" install org.agora.tests.abi-v1 >/dev/null
inst="$AGORA_HOME/plugins/org.agora.tests.assets/assets"
cmp -s "$inst/weights.bin" weights.bin && cmp -s "$inst/labels.txt" labels.txt ||
    fail "install must store the assets under the home"
"$A" run --json in >run.json 2>run.err || { cat run.err; fail "agora run"; }
$PY - run.json "$expect" "$AGORA_HOME" <<'PY' || fail "agora run results"
import glob, json, os, sys
d = json.load(open(sys.argv[1]))
assert d["jobs"] == 2 and d["ok"] == 2, d
docs = [json.load(open(f)) for f in glob.glob(os.path.join(sys.argv[3], "results", "**", "*.json"), recursive=True)]
sums = [x.get("summary") for x in docs if x.get("plugin", {}).get("id") == "org.agora.tests.assets"]
assert sys.argv[2] in sums, (sums, sys.argv[2])
print("ok: agora run: the assets plugin sees exactly the certified bytes; the v1 bundle's plugin ran too")
PY
# One byte flipped in the installed asset: refused at the next load, the other plugin runs.
$PY - "$inst/weights.bin" <<'PY'
import sys
f = open(sys.argv[1], "r+b")
f.seek(1234567)
c = f.read(1)
f.seek(1234567)
f.write(bytes([c[0] ^ 0x01]))
PY
"$A" run --json in >tamper.json 2>tamper.err || true
grep -q "refusing org.agora.tests.assets@1.0.0: .*tampered: asset weights.bin" tamper.err ||
    { cat tamper.err; fail "a flipped asset byte must be refused at load"; }
$PY -c 'import json,sys; d=json.load(open("tamper.json")); sys.exit(0 if d["ok"] == 1 else 1)' ||
    fail "the untampered plugin must still run"
echo "ok: an asset flipped by one byte after install is refused at load"
# Truncated: also refused (size differs from the pin).
truncate -s 100 "$inst/labels.txt"
"$A" run in >/dev/null 2>trunc.err || true
grep -q "tampered" trunc.err || { cat trunc.err; fail "a truncated asset must be refused"; }
echo "ok: a truncated asset is refused at load"
"$A" list >list.txt 2>&1 || true
grep -q "org.agora.tests.assets.*tampered" list.txt || { cat list.txt; fail "list must show the plugin as tampered"; }
echo "ok: list shows a plugin with a damaged asset as tampered"
"$A" remove org.agora.tests.assets >/dev/null || fail "remove a plugin with assets"
[ ! -e "$AGORA_HOME/plugins/org.agora.tests.assets" ] || fail "remove must delete the assets"
echo "ok: remove deletes the plugin's assets"

# ---- streamed, never read whole: a 320 MiB asset (above the old 256 MiB bundle cap) packs and
# certifies with a peak resident size far below its size ------------------------------------------
truncate -s 320M big.bin
printf 'tail' >>big.bin
$PY - "$A" "$PLUGIN" <<'PY' || fail "large asset"
import json, resource, subprocess, sys
a, plugin = sys.argv[1], sys.argv[2]
m = json.load(open("v1.manifest.json"))
m.update(id="org.agora.tests.big", abi="1.1", assets=[{"name": "big.bin"}])
json.dump(m, open("big.manifest.json", "w"))
subprocess.run([a, "pack", "--manifest", "big.manifest.json", "--plugin", plugin,
                "--asset", "big.bin=big.bin", "-o", "big.agora"], check=True, capture_output=True)
subprocess.run([a, "certify", "big.agora", "--catalog", "bigcat", "--key", "op.key",
                "--model", "free"], check=True, capture_output=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
size = (320 << 20) + 4
assert peak < 150 << 20, "peak RSS %d MiB for a %d MiB asset" % (peak >> 20, size >> 20)
c = json.load(open("bigcat/catalog.json"))
assert c["entries"][0]["assets"][0]["size"] == size, c["entries"][0]
print("ok: a %d MiB asset packs and certifies streamed (peak RSS %d MiB)" % (size >> 20, peak >> 20))
PY
