/* The bundle: one file holding a manifest, a plugin binary and an optional vendor signature.
 * Layout (all integers little-endian; docs/bundle-format.md is the reference):
 *
 *    0  8  magic "AGORABND"
 *    8  4  format version (1)
 *   12  4  signature section length: 0 (unsigned) or 104
 *   16  8  manifest length (1..65536)
 *   24  8  plugin length (64..268435456)
 *   32 32  sha256(manifest)
 *   64 32  sha256(plugin)
 *   96     manifest bytes, then plugin bytes, then the signature section:
 *          key id (8 bytes) || Ed25519 public key (32) || Ed25519 signature (64) over bytes 0..95
 *
 * The file must be exactly that long. The signature covers the header, which pins both hashes,
 * so it covers the contents. */
#include "trust_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

/* The manifest must parse and declare an ABI this host can run. */
static int check_manifest(const uint8_t *m, size_t len, agora__manifest *out, agora__error *err)
{
    int rc = agora__manifest_parse(m, len, out, err);
    if (rc != 0)
        return rc;
    if (out->abi_major != AGORA_ABI_VERSION_MAJOR || out->abi_minor > AGORA_ABI_VERSION_MINOR)
        return agora__error_set(err, AGORA_EVERSION,
                                "manifest.abi: %u.%u is not supported by this host (ABI %d.%d); "
                                "build against the host's SDK",
                                out->abi_major, out->abi_minor, AGORA_ABI_VERSION_MAJOR,
                                AGORA_ABI_VERSION_MINOR);
    return 0;
}

int agora__bundle_build(const uint8_t *manifest, size_t manifest_len, const uint8_t *plugin,
                        size_t plugin_len, const agora__seckey *signer, uint8_t **out,
                        size_t *out_len, agora__error *err)
{
    *out = NULL;
    *out_len = 0;
    if (manifest_len == 0 || manifest_len > AGORA__TRUST_MANIFEST_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "manifest must be 1..%zu bytes",
                                AGORA__TRUST_MANIFEST_MAX);
    if (plugin_len > AGORA__TRUST_PLUGIN_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "plugin is larger than %zu bytes",
                                AGORA__TRUST_PLUGIN_MAX);
    agora__manifest parsed;
    int rc = check_manifest(manifest, manifest_len, &parsed, err);
    if (rc == 0)
        rc = agora__elf_check(plugin, plugin_len, err);
    if (rc != 0)
        return rc;
    size_t sig_len = signer != NULL ? AGORA__BUNDLE_SIG : 0;
    size_t total = AGORA__BUNDLE_HEADER + manifest_len + plugin_len + sig_len;
    uint8_t *b = malloc(total);
    if (b == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory building the bundle");
    memcpy(b, AGORA__BUNDLE_MAGIC, 8);
    put32(b + 8, AGORA__BUNDLE_VERSION);
    put32(b + 12, (uint32_t)sig_len);
    put64(b + 16, manifest_len);
    put64(b + 24, plugin_len);
    agora__sha256(manifest, manifest_len, b + 32);
    agora__sha256(plugin, plugin_len, b + 64);
    memcpy(b + AGORA__BUNDLE_HEADER, manifest, manifest_len);
    memcpy(b + AGORA__BUNDLE_HEADER + manifest_len, plugin, plugin_len);
    if (signer != NULL) {
        uint8_t *s = b + AGORA__BUNDLE_HEADER + manifest_len + plugin_len;
        uint8_t idbytes[8];
        (void)agora__unhex(signer->pub.id, idbytes, 8);
        memcpy(s, idbytes, 8);
        memcpy(s + 8, signer->pub.pk, 32);
        crypto_sign_detached(s + 40, NULL, b, AGORA__BUNDLE_HEADER, signer->sk);
    }
    *out = b;
    *out_len = total;
    return 0;
}

int agora__bundle_parse(const uint8_t *buf, size_t len, agora__bundle *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (len < AGORA__BUNDLE_HEADER)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle is truncated: %zu bytes, shorter than its %u-byte header; "
                                "copy it again",
                                len, AGORA__BUNDLE_HEADER);
    if (memcmp(buf, AGORA__BUNDLE_MAGIC, 8) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not an Agora bundle (bad magic); make one with agora pack");
    uint32_t version = get32(buf + 8);
    if (version != AGORA__BUNDLE_VERSION)
        return agora__error_set(err, AGORA_EVERSION,
                                "bundle format version %u is not supported (this host reads %u)",
                                version, AGORA__BUNDLE_VERSION);
    uint32_t sig_len = get32(buf + 12);
    uint64_t mlen = get64(buf + 16), plen = get64(buf + 24);
    if (sig_len != 0 && sig_len != AGORA__BUNDLE_SIG)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle signature section is %u bytes, must be 0 or %u", sig_len,
                                AGORA__BUNDLE_SIG);
    if (mlen == 0 || mlen > AGORA__TRUST_MANIFEST_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "bundle manifest is %llu bytes, must be 1..%zu; refused",
                                (unsigned long long)mlen, AGORA__TRUST_MANIFEST_MAX);
    if (plen < 64 || plen > AGORA__TRUST_PLUGIN_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "bundle plugin is %llu bytes, must be 64..%zu; refused",
                                (unsigned long long)plen, AGORA__TRUST_PLUGIN_MAX);
    /* Bounded above, so the sum cannot overflow 64 bits. */
    uint64_t total = (uint64_t)AGORA__BUNDLE_HEADER + mlen + plen + sig_len;
    if ((uint64_t)len < total)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle is truncated: %zu bytes, its header announces %llu; copy "
                                "it again",
                                len, (unsigned long long)total);
    if ((uint64_t)len > total)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle has %llu trailing bytes after its announced end; refused "
                                "(re-pack it)",
                                (unsigned long long)((uint64_t)len - total));
    out->manifest = buf + AGORA__BUNDLE_HEADER;
    out->manifest_len = (size_t)mlen;
    out->plugin = out->manifest + mlen;
    out->plugin_len = (size_t)plen;
    if (sig_len != 0) {
        const uint8_t *s = out->plugin + plen;
        char claimed[AGORA__KEY_ID_HEX];
        if (sodium_init() < 0)
            return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
        memcpy(out->vendor.pk, s + 8, 32);
        agora__key_id(out->vendor.pk, out->vendor.id);
        agora__hex(s, 8, claimed);
        if (strcmp(claimed, out->vendor.id) != 0 ||
            crypto_sign_verify_detached(s + 40, buf, AGORA__BUNDLE_HEADER, out->vendor.pk) != 0)
            return agora__error_set(
                err, AGORA_EINVAL,
                "bundle's vendor signature does not verify (key id %s): the "
                "bundle was altered after signing; ask the vendor for a new one",
                claimed);
        out->is_signed = 1;
    }
    agora__sha256(out->manifest, out->manifest_len, out->manifest_sha);
    agora__sha256(out->plugin, out->plugin_len, out->plugin_sha);
    if (memcmp(out->manifest_sha, buf + 32, 32) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle's manifest does not match the sha256 in its header: the "
                                "bundle is damaged or was altered; refused");
    if (memcmp(out->plugin_sha, buf + 64, 32) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle's plugin binary does not match the sha256 in its header: "
                                "the bundle is damaged or was altered; refused");
    int rc = agora__elf_check(out->plugin, out->plugin_len, err);
    if (rc == 0)
        rc = check_manifest(out->manifest, out->manifest_len, &out->parsed, err);
    if (rc != 0)
        agora__error_prefix(err, "bundle");
    return rc;
}
