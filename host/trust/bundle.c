/* The bundle: one file holding a manifest, a plugin binary, the plugin's assets (version 2) and
 * an optional vendor signature. docs/bundle-format.md is the reference; in short (all integers
 * little-endian):
 *
 *    0  8  magic "AGORABND"
 *    8  4  format version: 1 (no assets) or 2
 *   12  4  signature section length: 0 (unsigned) or 104
 *   16  8  manifest length (1..65536)
 *   24  8  plugin length (64..268435456)
 *   32 32  sha256(manifest)
 *   64 32  sha256(plugin)
 *   version 2 only:
 *   96  4  asset count (0..64)
 *  100  4  reserved, 0
 *  104 32  sha256(asset table)
 *  136     asset table: per asset 168 bytes = name (128, NUL-padded) || size (8) || sha256 (32)
 *   then the manifest bytes, the plugin bytes, each asset's bytes in table order, and the
 *   signature section: key id (8) || Ed25519 public key (32) || signature (64) over the header.
 *
 * The file must be exactly that long. The signature covers the header, which pins the manifest,
 * the plugin and the asset table, which pins every asset: so it covers the contents. Everything
 * before the assets is small (bounded) and read into memory; assets are only ever streamed. */
#include "trust_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Bytes 0..95 of either version. */
static void fill_header(uint8_t *b, uint32_t version, size_t sig_len, size_t mlen, size_t plen,
                        const uint8_t *manifest, const uint8_t *plugin)
{
    memcpy(b, AGORA__BUNDLE_MAGIC, 8);
    put32(b + 8, version);
    put32(b + 12, (uint32_t)sig_len);
    put64(b + 16, mlen);
    put64(b + 24, plen);
    agora__sha256(manifest, mlen, b + 32);
    agora__sha256(plugin, plen, b + 64);
}

/* The signature section over the hlen header bytes. */
static void sign_header(const uint8_t *header, size_t hlen, const agora__seckey *signer,
                        uint8_t s[AGORA__BUNDLE_SIG])
{
    uint8_t idbytes[8];
    (void)agora__unhex(signer->pub.id, idbytes, 8);
    memcpy(s, idbytes, 8);
    memcpy(s + 8, signer->pub.pk, 32);
    crypto_sign_detached(s + 40, NULL, header, hlen, signer->sk);
}

/* What pack checks before writing either version. */
static int check_parts(const uint8_t *manifest, size_t manifest_len, const uint8_t *plugin,
                       size_t plugin_len, agora__manifest *parsed, agora__error *err)
{
    if (manifest_len == 0 || manifest_len > AGORA__TRUST_MANIFEST_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "manifest must be 1..%zu bytes",
                                AGORA__TRUST_MANIFEST_MAX);
    if (plugin_len > AGORA__TRUST_PLUGIN_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "plugin is larger than %zu bytes",
                                AGORA__TRUST_PLUGIN_MAX);
    int rc = check_manifest(manifest, manifest_len, parsed, err);
    if (rc == 0)
        rc = agora__elf_check(plugin, plugin_len, err);
    return rc;
}

int agora__bundle_build(const uint8_t *manifest, size_t manifest_len, const uint8_t *plugin,
                        size_t plugin_len, const agora__seckey *signer, uint8_t **out,
                        size_t *out_len, agora__error *err)
{
    *out = NULL;
    *out_len = 0;
    agora__manifest parsed;
    int rc = check_parts(manifest, manifest_len, plugin, plugin_len, &parsed, err);
    if (rc != 0)
        return rc;
    if (parsed.n_assets != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "the manifest declares %u asset(s) (%s...); pass each with --asset "
                                "NAME=FILE",
                                parsed.n_assets, parsed.assets[0]);
    size_t sig_len = signer != NULL ? AGORA__BUNDLE_SIG : 0;
    size_t total = AGORA__BUNDLE_HEADER + manifest_len + plugin_len + sig_len;
    uint8_t *b = malloc(total);
    if (b == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory building the bundle");
    fill_header(b, AGORA__BUNDLE_VERSION, sig_len, manifest_len, plugin_len, manifest, plugin);
    memcpy(b + AGORA__BUNDLE_HEADER, manifest, manifest_len);
    memcpy(b + AGORA__BUNDLE_HEADER + manifest_len, plugin, plugin_len);
    if (signer != NULL)
        sign_header(b, AGORA__BUNDLE_HEADER, signer,
                    b + AGORA__BUNDLE_HEADER + manifest_len + plugin_len);
    *out = b;
    *out_len = total;
    return 0;
}

int agora__bundle_write_assets(const char *out_path, const uint8_t *manifest, size_t manifest_len,
                               const uint8_t *plugin, size_t plugin_len,
                               const char (*names)[AGORA__ASSET_NAME_MAX + 1],
                               const char *const *files, size_t n, const agora__seckey *signer,
                               uint64_t *size, agora__error *err)
{
    *size = 0;
    agora__manifest parsed;
    int rc = check_parts(manifest, manifest_len, plugin, plugin_len, &parsed, err);
    if (rc != 0)
        return rc;
    if (n == 0 || n > AGORA__ASSETS_MAX || n != parsed.n_assets)
        return agora__error_set(err, AGORA_EINVAL,
                                "the manifest declares %u asset(s), %zu were given; pass each "
                                "with --asset NAME=FILE",
                                parsed.n_assets, n);
    size_t table_len = n * AGORA__BUNDLE_ASSET_ENTRY;
    size_t front = AGORA__BUNDLE_HEADER_V2 + table_len;
    uint8_t *head = calloc(1, front);
    if (head == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory building the bundle");
    agora__atomic_file f;
    rc = agora__atomic_open(out_path, 0644, &f, err);
    if (rc != 0) {
        free(head);
        return rc;
    }
    /* Header and table go in last, once every asset's size and hash is known. */
    if ((rc = agora__write_all(f.fd, head, front)) == 0 &&
        (rc = agora__write_all(f.fd, manifest, manifest_len)) == 0)
        rc = agora__write_all(f.fd, plugin, plugin_len);
    if (rc != 0)
        rc = agora__error_set(err, rc, "cannot write %s: %s", out_path, agora__strerror(rc));
    uint64_t total = front + manifest_len + plugin_len, sum = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int in = -1;
        uint64_t asz = 0;
        uint8_t *t = head + AGORA__BUNDLE_HEADER_V2 + i * AGORA__BUNDLE_ASSET_ENTRY;
        rc = agora__asset_open(files[i], names[i], &in, &asz, err);
        if (rc == 0 && asz > AGORA__ASSETS_TOTAL_MAX - sum)
            rc = agora__error_set(err, AGORA_ELIMIT,
                                  "the assets add up to more than %llu bytes; refused",
                                  (unsigned long long)AGORA__ASSETS_TOTAL_MAX);
        if (rc == 0) {
            char what[4096 + 160];
            snprintf(what, sizeof what, "asset %s (%s)", names[i], files[i]);
            rc = agora__copy_hash(in, 0, asz, f.fd, t + AGORA__ASSET_NAME_MAX + 8, what, err);
        }
        if (in >= 0)
            close(in);
        memcpy(t, names[i], strlen(names[i]));
        put64(t + AGORA__ASSET_NAME_MAX, asz);
        sum += asz;
        total += asz;
    }
    if (rc == 0) {
        fill_header(head, AGORA__BUNDLE_VERSION_ASSETS, signer != NULL ? AGORA__BUNDLE_SIG : 0,
                    manifest_len, plugin_len, manifest, plugin);
        put32(head + 96, (uint32_t)n);
        agora__sha256(head + AGORA__BUNDLE_HEADER_V2, table_len, head + 104);
        if (pwrite(f.fd, head, front, 0) != (ssize_t)front)
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot write %s: %s", out_path,
                                  strerror(errno));
    }
    if (rc == 0 && signer != NULL) {
        uint8_t sig[AGORA__BUNDLE_SIG];
        sign_header(head, AGORA__BUNDLE_HEADER_V2, signer, sig);
        if ((rc = agora__write_all(f.fd, sig, sizeof sig)) != 0)
            rc = agora__error_set(err, rc, "cannot write %s: %s", out_path, agora__strerror(rc));
        total += sizeof sig;
    }
    free(head);
    if (rc != 0) {
        agora__atomic_abort(&f);
        return rc;
    }
    rc = agora__atomic_commit(&f, err);
    if (rc == 0)
        *size = total;
    return rc;
}

/* Lengths announced by the fixed header. */
typedef struct layout {
    uint32_t version, sig_len, n_assets;
    uint64_t mlen, plen, hlen, table_len, front_len;
} layout;

static int truncated(agora__error *err, uint64_t have, uint64_t want)
{
    return agora__error_set(err, AGORA_EINVAL,
                            "bundle is truncated: %llu bytes, its header announces %llu; copy it "
                            "again",
                            (unsigned long long)have, (unsigned long long)want);
}

static int parse_header(const uint8_t *buf, size_t avail, uint64_t file_len, layout *L,
                        agora__error *err)
{
    memset(L, 0, sizeof *L);
    if (avail < AGORA__BUNDLE_HEADER)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle is truncated: %llu bytes, shorter than its %u-byte header; "
                                "copy it again",
                                (unsigned long long)file_len, AGORA__BUNDLE_HEADER);
    if (memcmp(buf, AGORA__BUNDLE_MAGIC, 8) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not an Agora bundle (bad magic); make one with agora pack");
    L->version = get32(buf + 8);
    if (L->version != AGORA__BUNDLE_VERSION && L->version != AGORA__BUNDLE_VERSION_ASSETS)
        return agora__error_set(err, AGORA_EVERSION,
                                "bundle format version %u is not supported (this host reads %u and "
                                "%u)",
                                L->version, AGORA__BUNDLE_VERSION, AGORA__BUNDLE_VERSION_ASSETS);
    L->sig_len = get32(buf + 12);
    L->mlen = get64(buf + 16);
    L->plen = get64(buf + 24);
    if (L->sig_len != 0 && L->sig_len != AGORA__BUNDLE_SIG)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle signature section is %u bytes, must be 0 or %u", L->sig_len,
                                AGORA__BUNDLE_SIG);
    if (L->mlen == 0 || L->mlen > AGORA__TRUST_MANIFEST_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "bundle manifest is %llu bytes, must be 1..%zu; refused",
                                (unsigned long long)L->mlen, AGORA__TRUST_MANIFEST_MAX);
    if (L->plen < 64 || L->plen > AGORA__TRUST_PLUGIN_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "bundle plugin is %llu bytes, must be 64..%zu; refused",
                                (unsigned long long)L->plen, AGORA__TRUST_PLUGIN_MAX);
    L->hlen = AGORA__BUNDLE_HEADER;
    if (L->version == AGORA__BUNDLE_VERSION_ASSETS) {
        L->hlen = AGORA__BUNDLE_HEADER_V2;
        if (avail < AGORA__BUNDLE_HEADER_V2)
            return truncated(err, file_len, AGORA__BUNDLE_HEADER_V2);
        L->n_assets = get32(buf + 96);
        if (L->n_assets > AGORA__ASSETS_MAX)
            return agora__error_set(err, AGORA_ELIMIT,
                                    "bundle announces %u assets, at most %u are allowed; refused",
                                    L->n_assets, AGORA__ASSETS_MAX);
        if (get32(buf + 100) != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "bundle header bytes 100..103 must be 0; refused");
    }
    L->table_len = (uint64_t)L->n_assets * AGORA__BUNDLE_ASSET_ENTRY;
    /* Bounded above, so the sums cannot overflow 64 bits. */
    L->front_len = L->hlen + L->table_len + L->mlen + L->plen;
    return 0;
}

/* The asset table (front holds at least hlen + table_len bytes); *total receives the exact file
 * length the header and table announce. */
static int parse_table(const uint8_t *front, const layout *L, agora__bundle *out, uint64_t *total,
                       agora__error *err)
{
    uint64_t off = L->front_len, sum = 0;
    out->n_assets = L->n_assets;
    for (uint32_t i = 0; i < L->n_assets; i++) {
        const uint8_t *t = front + L->hlen + (uint64_t)i * AGORA__BUNDLE_ASSET_ENTRY;
        agora__bundle_asset *a = &out->assets[i];
        size_t nlen = strnlen((const char *)t, AGORA__ASSET_NAME_MAX);
        int padded = 1;
        for (size_t k = nlen; k < AGORA__ASSET_NAME_MAX; k++)
            padded &= t[k] == 0;
        memcpy(a->name, t, nlen);
        a->name[nlen] = '\0';
        if (!padded || !agora__asset_name_valid(a->name))
            return agora__error_set(err, AGORA_EINVAL,
                                    "bundle asset %u has no valid name (1..%u bytes of "
                                    "[A-Za-z0-9._-], NUL-padded); refused",
                                    i, AGORA__ASSET_NAME_MAX);
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(out->assets[k].name, a->name) == 0)
                return agora__error_set(err, AGORA_EINVAL,
                                        "bundle carries asset %s twice; refused", a->name);
        a->size = get64(t + AGORA__ASSET_NAME_MAX);
        memcpy(a->sha256, t + AGORA__ASSET_NAME_MAX + 8, 32);
        if (a->size == 0 || a->size > AGORA__ASSET_SIZE_MAX ||
            a->size > AGORA__ASSETS_TOTAL_MAX - sum)
            return agora__error_set(err, AGORA_ELIMIT,
                                    "bundle asset %s is %llu bytes; assets must be 1..%llu bytes, "
                                    "%llu in total; refused",
                                    a->name, (unsigned long long)a->size,
                                    (unsigned long long)AGORA__ASSET_SIZE_MAX,
                                    (unsigned long long)AGORA__ASSETS_TOTAL_MAX);
        a->offset = off;
        off += a->size;
        sum += a->size;
    }
    *total = off + L->sig_len;
    return 0;
}

static int check_length(uint64_t len, uint64_t total, agora__error *err)
{
    if (len < total)
        return truncated(err, len, total);
    if (len > total)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle has %llu trailing bytes after its announced end; refused "
                                "(re-pack it)",
                                (unsigned long long)(len - total));
    return 0;
}

/* Everything but the asset bytes: signature over the header, section hashes, ELF, manifest, and
 * that the assets carried are exactly the ones the manifest declares. */
static int verify_front(const uint8_t *front, const layout *L, const uint8_t *sig,
                        agora__bundle *out, agora__error *err)
{
    out->format_version = L->version;
    out->manifest = front + L->hlen + L->table_len;
    out->manifest_len = (size_t)L->mlen;
    out->plugin = out->manifest + L->mlen;
    out->plugin_len = (size_t)L->plen;
    if (L->sig_len != 0) {
        char claimed[AGORA__KEY_ID_HEX];
        if (sodium_init() < 0)
            return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
        memcpy(out->vendor.pk, sig + 8, 32);
        agora__key_id(out->vendor.pk, out->vendor.id);
        agora__hex(sig, 8, claimed);
        if (strcmp(claimed, out->vendor.id) != 0 ||
            crypto_sign_verify_detached(sig + 40, front, L->hlen, out->vendor.pk) != 0)
            return agora__error_set(
                err, AGORA_EINVAL,
                "bundle's vendor signature does not verify (key id %s): the "
                "bundle was altered after signing; ask the vendor for a new one",
                claimed);
        out->is_signed = 1;
    }
    agora__sha256(out->manifest, out->manifest_len, out->manifest_sha);
    agora__sha256(out->plugin, out->plugin_len, out->plugin_sha);
    if (memcmp(out->manifest_sha, front + 32, 32) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle's manifest does not match the sha256 in its header: the "
                                "bundle is damaged or was altered; refused");
    if (memcmp(out->plugin_sha, front + 64, 32) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "bundle's plugin binary does not match the sha256 in its header: "
                                "the bundle is damaged or was altered; refused");
    if (L->version == AGORA__BUNDLE_VERSION_ASSETS) {
        uint8_t tsha[32];
        agora__sha256(front + L->hlen, (size_t)L->table_len, tsha);
        if (memcmp(tsha, front + 104, 32) != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "bundle's asset table does not match the sha256 in its "
                                    "header: the bundle is damaged or was altered; refused");
    }
    int rc = agora__elf_check(out->plugin, out->plugin_len, err);
    if (rc == 0)
        rc = check_manifest(out->manifest, out->manifest_len, &out->parsed, err);
    if (rc != 0)
        return agora__error_prefix(err, "bundle");
    for (uint32_t i = 0; i < out->n_assets; i++)
        if (agora__manifest_asset_index(&out->parsed, out->assets[i].name) < 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "bundle carries asset %s, which its manifest does not declare; "
                                    "refused (declare it in the manifest's \"assets\" and "
                                    "re-pack)",
                                    out->assets[i].name);
    for (uint32_t d = 0; d < out->parsed.n_assets; d++) {
        uint32_t i = 0;
        while (i < out->n_assets && strcmp(out->assets[i].name, out->parsed.assets[d]) != 0)
            i++;
        if (i == out->n_assets)
            return agora__error_set(err, AGORA_EINVAL,
                                    "the manifest declares asset %s but the bundle does not carry "
                                    "it; refused (re-pack with --asset %s=FILE)",
                                    out->parsed.assets[d], out->parsed.assets[d]);
    }
    return 0;
}

int agora__bundle_parse(const uint8_t *buf, size_t len, agora__bundle *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    layout L;
    uint64_t total = 0;
    int rc = parse_header(buf, len, len, &L, err);
    if (rc == 0 && (uint64_t)len < L.hlen + L.table_len)
        rc = truncated(err, len, L.hlen + L.table_len);
    if (rc == 0)
        rc = parse_table(buf, &L, out, &total, err);
    if (rc == 0)
        rc = check_length(len, total, err);
    if (rc == 0)
        rc = verify_front(buf, &L, buf + total - L.sig_len, out, err);
    /* In memory, the asset bytes are at hand: check them too. */
    for (uint32_t i = 0; rc == 0 && i < out->n_assets; i++) {
        uint8_t sha[32];
        agora__sha256(buf + out->assets[i].offset, (size_t)out->assets[i].size, sha);
        if (memcmp(sha, out->assets[i].sha256, 32) != 0)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "bundle asset %s does not match the sha256 in its table: the "
                                  "bundle is damaged or was altered; refused",
                                  out->assets[i].name);
    }
    return rc;
}

static int pread_all(int fd, uint8_t *buf, size_t len, uint64_t off, agora__error *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return agora__error_set(err, AGORA__ERR(errno), "cannot read the bundle: %s",
                                    strerror(errno));
        if (n == 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "bundle is truncated: it changed while being read");
        got += (size_t)n;
    }
    return 0;
}

int agora__bundle_open(const char *path, agora__bundle_file *bf, agora__error *err)
{
    memset(bf, 0, sizeof *bf);
    bf->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (bf->fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open %s: %s", path,
                                strerror(errno));
    struct stat st;
    uint8_t head[AGORA__BUNDLE_HEADER_V2];
    layout L;
    uint64_t total = 0;
    int rc = 0;
    if (fstat(bf->fd, &st) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = agora__error_set(err, AGORA_EINVAL, "%s is not a regular file", path);
    uint64_t len = rc == 0 ? (uint64_t)st.st_size : 0;
    size_t hl = len < sizeof head ? (size_t)len : sizeof head;
    if (rc == 0)
        rc = pread_all(bf->fd, head, hl, 0, err);
    if (rc == 0)
        rc = parse_header(head, hl, len, &L, err);
    /* The front (header, table, manifest, plugin) is bounded by the caps just checked. */
    if (rc == 0 && len < L.front_len)
        rc = truncated(err, len, L.front_len);
    if (rc == 0 && (bf->front = malloc((size_t)L.front_len)) == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory reading the bundle");
    if (rc == 0)
        rc = pread_all(bf->fd, bf->front, (size_t)L.front_len, 0, err);
    if (rc == 0)
        rc = parse_table(bf->front, &L, &bf->b, &total, err);
    if (rc == 0)
        rc = check_length(len, total, err);
    uint8_t sig[AGORA__BUNDLE_SIG];
    if (rc == 0 && L.sig_len != 0)
        rc = pread_all(bf->fd, sig, sizeof sig, total - L.sig_len, err);
    if (rc == 0)
        rc = verify_front(bf->front, &L, sig, &bf->b, err);
    if (rc == 0)
        bf->file_len = len;
    else
        agora__bundle_close(bf);
    return rc;
}

int agora__bundle_asset_copy(const agora__bundle_file *bf, uint32_t i, int out_fd,
                             agora__error *err)
{
    if (i >= bf->b.n_assets)
        return agora__error_set(err, AGORA_EINVAL, "no asset %u in the bundle", i);
    const agora__bundle_asset *a = &bf->b.assets[i];
    char what[AGORA__ASSET_NAME_MAX + 32];
    snprintf(what, sizeof what, "bundle asset %s", a->name);
    uint8_t sha[32];
    int rc = agora__copy_hash(bf->fd, a->offset, a->size, out_fd, sha, what, err);
    if (rc == 0 && memcmp(sha, a->sha256, 32) != 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "bundle asset %s does not match the sha256 in its table: the bundle "
                              "is damaged or was altered; refused",
                              a->name);
    return rc;
}

void agora__bundle_close(agora__bundle_file *bf)
{
    if (bf->fd > 0)
        close(bf->fd);
    free(bf->front);
    memset(bf, 0, sizeof *bf);
    bf->fd = -1;
}
