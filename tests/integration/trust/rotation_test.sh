#!/usr/bin/env bash
# Key rotation and vendor pinning through the real CLI (issue 16): a clinic that synced under
# the implicit root (its trusted operator key) and then root v1 follows v1 -> v2 -> v3 and takes
# the catalog the v3 catalog key signed; an under-signed root, a catalog signed by a key a root
# removed, and everything an attacker holding only the old catalog key can write are refused; a
# bundle signed by a key not pinned for its vendor is refused at certify and at install; syncs
# through the CLI during publishes through the CLI never refuse a published catalog.
# Writes only under a temp dir.
# usage: rotation_test.sh AGORA DUMMY_PLUGIN.so MANIFEST.json
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
AGORA=$(realpath "$1")
PLUGIN=$(realpath "$2")
MANIFEST=$(realpath "$3")
# shellcheck source=checks.sh
source "$HERE/checks.sh" # T (the temp dir, now the cwd), the counters, the checks

manifest() { # manifest VERSION VENDOR OUT
    sed -e "s/\"version\": \"1.0.0\"/\"version\": \"$1\"/" -e "s/\"Example Imaging\"/\"$2\"/" \
        "$MANIFEST" >"$3"
}

for k in op ra rb rc vx vy; do ok "keygen $k" "$AGORA" keygen --out $k; done
H=(--home home)
manifest 1.0.0 "Example Imaging" m1.json
ok "pack x 1.0.0" "$AGORA" pack --manifest m1.json --plugin "$PLUGIN" --sign vx.key -o x1.agora
ok "certify under the operator key" "$AGORA" certify x1.agora --catalog cat --key op.key \
    --vendor-key vx.pub --model free
has "the first --vendor-key is pinned" "$T/out" "now pinned for vendor 'Example Imaging'"
ok "init trusting the operator key" "$AGORA" init "${H[@]}" --trust op.pub
ok "sync under the implicit root" "$AGORA" sync cat "${H[@]}"
lacks "no root yet" "$T/out" "root version"

# ---- root v1: two of three root keys, the operator key stays the catalog key ----------------
refused "root 1 without the key clinics trust" "give it as one --key" \
    "$AGORA" root sign --catalog cat --key ra.key --key rb.key --root-pub ra.pub \
    --root-pub rb.pub --root-pub rc.pub --threshold 2 --catalog-pub op.pub
refused "root 1 below its own threshold" "root threshold check" \
    "$AGORA" root sign --catalog cat --key op.key --key ra.key --root-pub ra.pub \
    --root-pub rb.pub --root-pub rc.pub --threshold 2 --catalog-pub op.pub
[ ! -e cat/root/1.root ] || { echo "FAIL: a refused root sign wrote a root"; fails=$((fails + 1)); }
ok "root sign v1" "$AGORA" root sign --catalog cat --key op.key --key ra.key --key rb.key \
    --root-pub ra.pub --root-pub rb.pub --root-pub rc.pub --threshold 2 --catalog-pub op.pub
has "root v1 printed" "$T/out" "signed root version 1"
ok "refresh under root v1" "$AGORA" catalog refresh cat --key op.key
ok "sync follows v0 -> v1" "$AGORA" sync cat "${H[@]}"
has "sync names the root step" "$T/out" "root version 0 -> 1"
cp -r cat snap-v1

# ---- v2: rotate the catalog key; v3: rotate again --------------------------------------------
cp op.key old-catalog.key && cp op.pub old-catalog.pub
ok "keys rotate -> v2" "$AGORA" keys rotate --catalog cat --key ra.key --key rc.key --out cat2
has "rotate names the new key" "$T/out" "new catalog key"
cp cat/root/2.root good-2.root
cp -r cat snap-v2 # what the operator published after v2 (for the removed-key checks below)
ok "keys rotate -> v3" "$AGORA" keys rotate --catalog cat --key rb.key --key rc.key --out cat3
ok "certify with the v3 catalog key" "$AGORA" certify x1.agora --catalog cat --key cat3.key \
    --vendor-key vx.pub --model per-study --price 5 --currency EUR --vendor-share-bps 7000
refused "signing with a catalog key v2 removed" "catalog key check" \
    "$AGORA" catalog refresh cat --key op.key
# The operator's tools refuse to publish with a key the newest root does not name:
mkdir -p stale && cp -r cat/root snap-v1/catalog.signed stale/
refused "publishing with a catalog key v2 removed" "catalog key check" \
    "$AGORA" catalog refresh stale --key op.key
ok "sync follows v1 -> v2 -> v3" "$AGORA" sync cat "${H[@]}" --json
has "root version 3 held" "$T/out" '"root_version":3'
has "from root version 1" "$T/out" '"held_root_version":1'
ok "catalog show with the v3 key" "$AGORA" catalog show cat --trust cat3.pub
has "v3 key signed the catalog" "$T/out" "(verified)"
has "catalog show lists the pinned vendor keys" "$T/out" \
    "vendor Example Imaging: pinned key $(cut -d' ' -f4 vx.pub)"
ok "install under v3" "$AGORA" install com.example.nodules "${H[@]}"

# ---- refusals -------------------------------------------------------------------------------
# A root v2 signed by fewer than the threshold of v1's keys: a fresh clinic still on v1.
ok "init a second clinic" "$AGORA" init --home home2 --trust op.pub
cp -r snap-v1 under
ok "sync v1 into the second clinic" "$AGORA" sync under --home home2
has "second clinic at root v1" "$T/out" "root version 0 -> 1"
# good-2.root carries the signatures of ra and rc (2 of 3): drop one signature line.
sed '1d' good-2.root >under/root/2.root
cp snap-v2/catalog.signed under/
refused "root v2 signed by fewer than the threshold" "root threshold check" \
    "$AGORA" sync under --home home2
# An attacker holding only the old catalog key (op, no longer a catalog key after v2):
mkdir -p evil && cp -r cat/root evil/ && cp -r cat/blobs evil/
ok "attacker certifies with the old catalog key" "$AGORA" certify x1.agora --catalog evil-new \
    --key old-catalog.key --vendor-key vx.pub --model free
cp evil-new/catalog.signed evil/
# ...a catalog signed by the key v2 removed:
refused "catalog signed by a key v2 removed" "catalog key check (root version 3)" \
    "$AGORA" sync evil "${H[@]}"
# ...a root v4 signed by the old catalog key, naming itself as catalog and root key:
ok "attacker signs a root with the old key" "$AGORA" root sign --catalog evil-new \
    --key old-catalog.key --root-pub old-catalog.pub --catalog-pub old-catalog.pub
cp evil-new/root/1.root evil/root/4.root
refused "root v4 from the old catalog key" "root threshold check" "$AGORA" sync evil "${H[@]}"
# ...and a rollback to root v2 by renaming it v4:
cp good-2.root evil/root/4.root
refused "an older root replayed as the next version" "root version check" \
    "$AGORA" sync evil "${H[@]}"
rm -f evil/root/4.root

# ---- vendor pins ----------------------------------------------------------------------------
# Vendor Y's key signs a bundle that names vendor X (Example Imaging):
manifest 2.0.0 "Example Imaging" m2.json
ok "pack x 2.0.0 with vendor y's key" "$AGORA" pack --manifest m2.json --plugin "$PLUGIN" \
    --sign vy.key -o x2-by-y.agora
refused "certify: signed by a key not pinned for its vendor" "vendor pin check" \
    "$AGORA" certify x2-by-y.agora --catalog cat --key cat3.key --vendor-key vy.pub --model free
lacks "the message names the check, not key bytes" "$T/err" "$(cut -d' ' -f5 vy.pub)"
refused "certify without --vendor-key: still pinned" "vendor pin check" \
    "$AGORA" certify x2-by-y.agora --catalog cat --key cat3.key --model free
manifest 1.0.0 "Other Vendor" my.json
sed -i 's/com.example.nodules/com.other.app/' my.json
ok "pack other vendor" "$AGORA" pack --manifest my.json --plugin "$PLUGIN" --sign vy.key -o y1.agora
ok "certify other vendor pins vy" "$AGORA" certify y1.agora --catalog cat --key cat3.key \
    --vendor-key vy.pub --model free
refused "a key pinned for one vendor signs for another" "pinned for vendor 'Other Vendor'" \
    "$AGORA" certify x2-by-y.agora --catalog cat --key cat3.key --vendor-key vy.pub \
    --pin-vendor-key --model free
# At install: a build certified before its vendor had a pin (signed by another vendor's key),
# then the vendor's own key pinned.
manifest 1.0.0 "Late Vendor" ml.json
sed -i 's/com.example.nodules/com.late.app/' ml.json
ok "pack late 1.0.0 with vx" "$AGORA" pack --manifest ml.json --plugin "$PLUGIN" --sign vx.key \
    -o late1.agora
# (Late Vendor has no pin yet, and no --vendor-key is given: certified, signed by vendor x's key.)
ok "certify late 1.0.0 unpinned" "$AGORA" certify late1.agora --catalog cat --key cat3.key \
    --model free
ok "sync the late build" "$AGORA" sync cat "${H[@]}"
ok "keygen late vendor's real key" "$AGORA" keygen --out vl2
sed 's/"version": "1.0.0"/"version": "1.1.0"/' ml.json >ml2.json
ok "pack late 1.1.0 with vl2" "$AGORA" pack --manifest ml2.json --plugin "$PLUGIN" \
    --sign vl2.key -o late2.agora
ok "certify late 1.1.0 pins vl2" "$AGORA" certify late2.agora --catalog cat --key cat3.key \
    --vendor-key vl2.pub --model free
has "vl2 pinned" "$T/out" "now pinned for vendor 'Late Vendor'"
ok "sync the pin" "$AGORA" sync cat "${H[@]}"
refused "install: a build signed by a key not pinned for its vendor" "vendor pin check" \
    "$AGORA" install com.late.app@1.0.0 "${H[@]}"
ok "install the pinned build" "$AGORA" install com.late.app@1.1.0 "${H[@]}"

# ---- syncs through the CLI during publishes through the CLI ---------------------------------
# The operator re-signs in its own directory and publishes to where clinics read (catalog
# publish: blobs, new roots, then catalog.signed by one rename); the clinic syncs from there.
ok "init a third clinic" "$AGORA" init --home home3 --trust op.pub
ok "first publish" "$AGORA" catalog publish cat published
has "publish copies the roots" "$T/out" "3 new root versions"
[ ! -e published/clinics ] || { echo "FAIL: publish copied clinics/"; fails=$((fails + 1)); }
(for i in $(seq 1 40); do
    "$AGORA" catalog refresh cat --key cat3.key >/dev/null || exit 1
    "$AGORA" catalog publish cat published >/dev/null || exit 1
done) &
pub=$!
bad=0
for i in $(seq 1 40); do
    if ! "$AGORA" sync published --home home3 >/dev/null 2>"$T/sync-err"; then
        bad=$((bad + 1))
        cat "$T/sync-err"
    fi
done
n=$((n + 1))
if ! wait $pub; then
    echo "FAIL: a publish failed"
    fails=$((fails + 1))
fi
if [ $bad -ne 0 ]; then
    echo "FAIL: $bad of 40 CLI syncs during publishes were refused"
    fails=$((fails + 1))
fi

ok "sync after the publishes" "$AGORA" sync published --home home3 --json
has "the clinic follows the roots from the published copy" "$T/out" '"root_version":3'
refused "publishing an older catalog over a newer one" "would be a rollback" \
    "$AGORA" catalog publish snap-v1 published

echo "$n checks, $fails failed"
[ $fails -eq 0 ]
