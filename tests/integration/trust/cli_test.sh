#!/usr/bin/env bash
# End-to-end test of the trust chain through the real CLI: the clean path (keygen -> pack ->
# certify -> init -> sync -> install -> list) and every refusal, each checked for exit status 1
# and a message naming the cause. Writes only under a temp dir.
# usage: cli_test.sh AGORA DUMMY_PLUGIN.so MANIFEST.json NO_ENTRY_PLUGIN.so
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
AGORA=$(realpath "$1")
PLUGIN=$(realpath "$2")
MANIFEST=$(realpath "$3")
NOENTRY=$(realpath "$4")
# shellcheck source=checks.sh
source "$HERE/checks.sh" # T (the temp dir, now the cwd), the counters, the checks

# Make every damaged variant of a bundle in one interpreter start (python start-up is slow on a
# loaded machine). /usr/bin/python3 when present: only the standard library is needed.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
damage_bundle() { # damage_bundle IN : writes t-<mode>.agora for each mode
    "$PY" - "$1" <<'PY'
import hashlib, struct, sys
src = sys.argv[1]
orig = open(src, 'rb').read()
mlen, plen = struct.unpack_from('<QQ', orig, 16)
m0, p0 = 96, 96 + mlen
for mode in ['flip-plugin', 'flip-manifest', 'rehash-plugin', 'trailing', 'truncate', 'oversize']:
    b = bytearray(orig)
    if mode == 'flip-plugin':
        b[p0 + plen // 2] ^= 1
    elif mode == 'flip-manifest':
        i = b.index(b'"memory_mb": 512', m0)
        b[i + 13:i + 16] = b'999'
    elif mode == 'rehash-plugin':      # change the plugin AND fix the header hash: only the
        b[p0 + plen // 2] ^= 1         # vendor signature can notice
        b[64:96] = hashlib.sha256(b[p0:p0 + plen]).digest()
    elif mode == 'trailing':
        b += b'\0'
    elif mode == 'truncate':
        b = b[:len(b) - 10]
    elif mode == 'oversize':
        struct.pack_into('<Q', b, 24, 300 * 1024 * 1024)
    open('t-' + mode + '.agora', 'wb').write(b)
PY
}

# ---- keys ------------------------------------------------------------------------------------
ok "keygen operator" "$AGORA" keygen --out op
has "keygen prints key id" "$T/out" "key id:"
OPID=$(awk '{print $4}' op.pub)
ok "keygen vendor" "$AGORA" keygen --out vendor
ok "keygen rogue operator" "$AGORA" keygen --out rogue
printf 'correct horse battery staple\n' >pass
printf 'wrong\n' >badpass
ok "keygen encrypted" "$AGORA" keygen --out enc --passphrase-file pass
n=$((n + 1))
if [ "$(stat -c %a op.key)" != 600 ] || [ "$(stat -c %a enc.key)" != 600 ]; then
    echo "FAIL: secret keys must be mode 0600"
    fails=$((fails + 1))
fi
has "encrypted key file" enc.key "argon2id13"
# keygen --out DIR/NAME makes DIR (0700: it holds a secret) when missing, nested too.
ok "keygen into a missing directory" "$AGORA" keygen --out newdir/sub/vendor
n=$((n + 1))
if [ "$(stat -c %a newdir/sub)" != 700 ] || [ ! -f newdir/sub/vendor.key ] ||
    [ "$(stat -c %a newdir/sub/vendor.key)" != 600 ]; then
    echo "FAIL: keygen must create the missing key directory 0700 and the key 0600"
    fails=$((fails + 1))
fi
touch notadir
refused "keygen under a file" "is not a directory" "$AGORA" keygen --out notadir/x
refused "keygen never overwrites" "File exists" "$AGORA" keygen --out op
chmod 644 rogue.key
refused "world-readable secret key refused" "chmod 600" "$AGORA" pack --manifest "$MANIFEST" \
    --plugin "$PLUGIN" --sign rogue.key -o x.agora
chmod 600 rogue.key

# ---- pack ------------------------------------------------------------------------------------
ok "pack signed bundle" "$AGORA" pack --manifest "$MANIFEST" --plugin "$PLUGIN" --sign vendor.key \
    -o n.agora
has "pack names the build" "$T/out" "com.example.nodules@1.0.0"
refused "pack: plugin is not ELF" "not an ELF" "$AGORA" pack --manifest "$MANIFEST" \
    --plugin "$MANIFEST" -o x.agora
sed 's/"memory_mb": 512/"memory_mb": 8/' "$MANIFEST" >bad-mem.json
refused "pack: manifest field out of range" "manifest.resources.memory_mb: must be an integer 16..65536" \
    "$AGORA" pack --manifest bad-mem.json --plugin "$PLUGIN" -o x.agora
sed 's/"rtnDevIdOpt"/"rtnUIDsOpt"/' "$MANIFEST" >bad-perm.json
refused "pack: permission not grantable" "manifest.permissions" \
    "$AGORA" pack --manifest bad-perm.json --plugin "$PLUGIN" -o x.agora
refused "pack: encrypted key, wrong passphrase" "wrong passphrase" "$AGORA" pack \
    --manifest "$MANIFEST" --plugin "$PLUGIN" --sign enc.key --passphrase-file badpass -o x.agora
ok "pack: encrypted key, right passphrase" "$AGORA" pack --manifest "$MANIFEST" --plugin "$PLUGIN" \
    --sign enc.key --passphrase-file pass -o enc.agora
sed 's/"1.0.0"/"1.1.0"/' "$MANIFEST" >m11.json
ok "pack v1.1.0 unsigned" "$AGORA" pack --manifest m11.json --plugin "$PLUGIN" -o n11.agora
has "unsigned bundle says so" "$T/out" "not signed"

# ---- bundles that must be refused ------------------------------------------------------------
CERT=(--catalog cat --key op.key --model per-study --price 150 --currency EUR --vendor-share-bps 7000)
damage_bundle n.agora
refused "bundle: binary does not match its header" "plugin binary does not match the sha256" \
    "$AGORA" certify t-flip-plugin.agora "${CERT[@]}"
refused "bundle: manifest does not match its header" "manifest does not match the sha256" \
    "$AGORA" certify t-flip-manifest.agora "${CERT[@]}"
refused "bundle: contents do not match the vendor signature" "vendor signature does not verify" \
    "$AGORA" certify t-rehash-plugin.agora "${CERT[@]}"
refused "bundle: truncated" "truncated" "$AGORA" certify t-truncate.agora "${CERT[@]}"
head -c 50 n.agora >t-short.agora
refused "bundle: shorter than its header" "truncated" "$AGORA" certify t-short.agora "${CERT[@]}"
refused "bundle: trailing bytes" "trailing bytes" "$AGORA" certify t-trailing.agora "${CERT[@]}"
refused "bundle: header announces an oversize plugin" "must be 64..268435456" \
    "$AGORA" certify t-oversize.agora "${CERT[@]}"
truncate -s 300M t-huge.agora
# Bundles with assets may be several GiB: a huge file is judged by its bounded front (header,
# table, manifest, plugin), never read whole.
refused "bundle: huge file of zeros" "not an Agora bundle" "$AGORA" certify t-huge.agora "${CERT[@]}"
rm -f t-huge.agora
n=$((n + 1))
if [ -e cat/catalog.json ]; then
    echo "FAIL: a refused certify must not publish a catalog"
    fails=$((fails + 1))
fi

# ---- certify ---------------------------------------------------------------------------------
# A .so without agora_plugin_entry (the operator guide's practice .so): pack warns, certify
# refuses before signing, saying what is missing and what to do.
ok "pack a plugin without the entry (warns)" "$AGORA" pack --manifest "$MANIFEST" \
    --plugin "$NOENTRY" -o noentry.agora
has "pack warns about the missing entry" "$T/err" "does not export agora_plugin_entry"
refused "certify: plugin does not export agora_plugin_entry" \
    "does not export agora_plugin_entry, so the worker could never load it; define" \
    "$AGORA" certify noentry.agora "${CERT[@]}"
has "certify says what to do" "$T/err" "AGORA_PLUGIN_EXPORT"
n=$((n + 1))
if [ -e cat/catalog.json ]; then
    echo "FAIL: certify of a plugin without the entry must not publish a catalog"
    fails=$((fails + 1))
fi
refused "certify: grant more than the manifest asks" "the manifest does not ask for it" \
    "$AGORA" certify n.agora "${CERT[@]}" --grant rtnPatCharsOpt rtnInstIdOpt
refused "certify: vendor key mismatch" "not by vendor key" \
    "$AGORA" certify n.agora "${CERT[@]}" --vendor-key rogue.pub
usage_error "certify: share out of range" "--vendor-share-bps must be an integer 0..10000" \
    "$AGORA" certify n.agora "${CERT[@]}" --vendor-share-bps 10001
usage_error "certify: unknown option name in --grant" "not a grantable PS3.15 option" \
    "$AGORA" certify n.agora "${CERT[@]}" --grant rtnUIDsOpt
usage_error "certify: cleanDescOpt is never given to a plugin" \
    "cleanDescOpt cannot be given to a plugin: cleanDescOpt is not performed" \
    "$AGORA" certify n.agora "${CERT[@]}" --grant cleanDescOpt
usage_error "init: cleanDescOpt is not a policy a clinic can set" \
    "cleanDescOpt cannot be given to a plugin" \
    "$AGORA" init --home never-made --trust op.pub --allow cleanDescOpt
ok "certify" "$AGORA" certify n.agora "${CERT[@]}" --grant rtnPatCharsOpt --vendor-key vendor.pub
has "certify reports version 1" "$T/out" "catalog version 1"
has "certify pins the binary" "$T/out" "plugin   sha256"
cp -r cat cat-v1
ok "catalog show verified" "$AGORA" catalog show cat --trust op.pub
has "catalog show lists the entry" "$T/out" "com.example.nodules@1.0.0  certified"
# Operator-side refusals give operator advice (not the clinic's "agora init --trust").
refused "catalog show with the wrong key" "not by the --trust key" "$AGORA" catalog show cat --trust rogue.pub
has "operator advice for catalog show" "$T/err" "use the operator key that signed this catalog"
refused "certify into a catalog signed by another operator key" "not by your --key" \
    "$AGORA" certify n.agora --catalog cat --key rogue.key --model free
n=$((n + 1))
if grep -q "agora init" "$T/err"; then
    echo "FAIL: the operator-side error must not give clinic advice"
    fails=$((fails + 1))
fi
# The vendor's key is pinned now (the --vendor-key above): an unsigned build of it is refused.
refused "unsigned bundle of a vendor with a pinned key" "vendor pin check" \
    "$AGORA" certify n11.agora "${CERT[@]}" --model per-series --price 90
ok "pack v1.1.0 signed" "$AGORA" pack --manifest m11.json --plugin "$PLUGIN" --sign vendor.key \
    -o n11.agora
ok "certify second version" "$AGORA" certify n11.agora "${CERT[@]}" --model per-series --price 90
has "catalog version 2" "$T/out" "catalog version 2"

# ---- clinic ----------------------------------------------------------------------------------
ok "init" "$AGORA" init --home home --trust op.pub --allow rtnPatCharsOpt rtnDevIdOpt
has "init names the trusted key" "$T/out" "$OPID"
n=$((n + 1))
if [ "$(stat -c %a home)" != 700 ] || [ "$(stat -c %a home/secret)" != 600 ] ||
    [ "$(stat -c %s home/secret)" != 32 ]; then
    echo "FAIL: home must be 0700 with a 32-byte 0600 secret"
    fails=$((fails + 1))
fi
has "init prints the clinic's public key path" "$T/out" "clinic signing key: home/clinic.pub"
n=$((n + 1))
if [ "$(stat -c %a "home/trust/$OPID.pub")" != 600 ] || [ "$(stat -c %a home/clinic.key)" != 600 ] ||
    ! grep -q '^agora-public-key v1 ed25519 ' home/clinic.pub; then
    echo "FAIL: trust/*.pub and clinic.key must be 0600, clinic.pub a public key"
    ls -la home home/trust
    fails=$((fails + 1))
fi
refused "init twice" "already a clinic home" "$AGORA" init --home home --trust op.pub
H=(--home home)
ok "sync v1" "$AGORA" sync cat-v1 "${H[@]}"
has "sync prints the new entry" "$T/out" "new      com.example.nodules@1.0.0"
ok "sync v2" "$AGORA" sync cat "${H[@]}"
has "sync prints the version change" "$T/out" "catalog version 1 -> 2"
has "sync prints the new version" "$T/out" "new      com.example.nodules@1.1.0"
refused "rollback to an older catalog" "not newer than the held version 2" "$AGORA" sync cat-v1 "${H[@]}"
ok "install latest" "$AGORA" install com.example.nodules "${H[@]}"
has "install picks the highest version" "$T/out" "installed com.example.nodules@1.1.0"
ok "install pinned version" "$AGORA" install com.example.nodules@1.0.0 "${H[@]}"
has "install grants the intersection" "$T/out" "may see: rtnPatCharsOpt;"
ok "list" "$AGORA" list "${H[@]}" --json
has "list status ok" "$T/out" '"status":"ok"'
has "list granted intersection" "$T/out" '"granted":["rtnPatCharsOpt"]'

# The older two-file layout (no catalog.signed) is still read.
cp -r cat nonl && rm nonl/catalog.signed && truncate -s -1 nonl/catalog.sig
ok "signature line without final newline" "$AGORA" sync nonl "${H[@]}"
has "the same catalog is recognised as held" "$T/out" "catalog version 2 is already held"

# Refusals on the clinic side.
mkdir -p unsigned && cp cat/catalog.json unsigned/
refused "unsigned catalog" "not signed" "$AGORA" sync unsigned "${H[@]}"
mkdir -p rogue-cat
ok "rogue operator certifies" "$AGORA" certify n.agora --catalog rogue-cat --key rogue.key \
    --model free
refused "catalog signed by an untrusted key" "not trusted here" "$AGORA" sync rogue-cat "${H[@]}"
cp -r cat altered && sed -i 's/"price": 150/"price": 1/' altered/catalog.signed
refused "catalog altered after signing" "signature does not verify" "$AGORA" sync altered "${H[@]}"
cp -r cat altered2 && rm altered2/catalog.signed && sed -i 's/"price": 150/"price": 1/' altered2/catalog.json
refused "catalog altered after signing (two-file layout)" "signature does not verify" \
    "$AGORA" sync altered2 "${H[@]}"
cp -r cat badblob
for f in badblob/blobs/*; do chmod u+w "$f"; printf 'X' | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null; done
refused "tampered blob in the catalog store" "does not match the catalog's sha256" \
    "$AGORA" install com.example.nodules@1.0.0 "${H[@]}" --from badblob

# Tampering inside the home after install.
cp home/plugins/com.example.nodules/plugin.so saved.so
printf 'X' | dd of=home/plugins/com.example.nodules/plugin.so bs=1 seek=300 conv=notrunc 2>/dev/null
ok "list after tampering the binary" "$AGORA" list "${H[@]}"
has "tampered binary is reported" "$T/out" "tampered"
cp saved.so home/plugins/com.example.nodules/plugin.so
sed -i 's/"memory_mb": 512/"memory_mb": 513/' home/plugins/com.example.nodules/manifest.json
ok "list after tampering the manifest" "$AGORA" list "${H[@]}"
has "tampered manifest is reported" "$T/out" "tampered"
ok "reinstall repairs" "$AGORA" install com.example.nodules@1.0.0 "${H[@]}"
ok "list after reinstall" "$AGORA" list "${H[@]}"
has "status ok again" "$T/out" " ok "

# Revocation.
ok "revoke" "$AGORA" revoke com.example.nodules@1.0.0 --catalog cat --key op.key \
    --reason "wrong measurements on contrast CT"
has "revoke publishes version 3" "$T/out" "catalog version 3"
refused "revoke twice" "already revoked" "$AGORA" revoke com.example.nodules@1.0.0 --catalog cat \
    --key op.key --reason again
refused "re-certify a revoked build" "stays revoked" "$AGORA" certify n.agora "${CERT[@]}"
ok "catalog refresh" "$AGORA" catalog refresh cat --key op.key --expires 10
has "refresh bumps the version" "$T/out" "catalog version 4"
ok "sync the revocation" "$AGORA" sync cat "${H[@]}"
has "sync from 2 to 4" "$T/out" "catalog version 2 -> 4"
has "sync reports the revocation" "$T/out" "revoked  com.example.nodules@1.0.0: wrong measurements"
has "sync warns about the installed build" "$T/out" "is now revoked: it will not run"
ok "list after revocation" "$AGORA" list "${H[@]}" --json
has "list says revoked" "$T/out" '"status":"revoked"'
refused "install a revoked build" "is revoked" "$AGORA" install com.example.nodules@1.0.0 "${H[@]}"
ok "install moves to the certified version" "$AGORA" install com.example.nodules "${H[@]}"
has "installed 1.1.0" "$T/out" "com.example.nodules@1.1.0"
ok "remove" "$AGORA" remove com.example.nodules "${H[@]}"
refused "remove twice" "not installed" "$AGORA" remove com.example.nodules "${H[@]}"
ok "list empty" "$AGORA" list "${H[@]}" --json
has "no plugins" "$T/out" '"plugins":[]'

# Expired catalog (freeze attack): a catalog that expires a few seconds from now. home2 accepts
# it in time and installs; once it has expired, list says expired-catalog, install is refused,
# and home3 (syncing late) refuses the catalog itself.
EXP_EPOCH=$(($(date +%s) + 8))
EXP=$(date -u -d "@$EXP_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
ok "certify a short-lived catalog" "$AGORA" certify n.agora --catalog short --key op.key \
    --model free --expires "$EXP"
ok "init second home" "$AGORA" init --home home2 --trust op.pub
ok "init third home" "$AGORA" init --home home3 --trust op.pub
if "$AGORA" sync short --home home2 >/dev/null 2>&1 &&
    "$AGORA" install com.example.nodules --home home2 >/dev/null 2>&1; then
    while [ "$(date +%s)" -le "$EXP_EPOCH" ]; do sleep 1; done
    ok "list after expiry" "$AGORA" list --home home2
    has "list says expired-catalog" "$T/out" "expired-catalog"
    refused "install from an expired catalog" "has expired" "$AGORA" install com.example.nodules \
        --home home2
else
    echo "note: machine too slow to sync before the 8 s expiry; skipped the expired-catalog list check"
    while [ "$(date +%s)" -le "$EXP_EPOCH" ]; do sleep 1; done
fi
refused "expired catalog" "expired" "$AGORA" sync short --home home3
usage_error "expires in the past" "lies in the past" "$AGORA" certify n.agora --catalog short \
    --key op.key --model free --expires 2020-01-01

# A home other users can write is refused.
chmod 770 home2
refused "group-writable home" "writable by group" "$AGORA" list --home home2
chmod 700 home2

# Help and usage.
for c in keygen pack certify revoke catalog init sync install list remove; do
    ok "$c --help" "$AGORA" "$c" --help
done
usage_error "certify without arguments" "are required" "$AGORA" certify

echo "$n checks, $fails failed"
[ $fails -eq 0 ]
