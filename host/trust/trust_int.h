/*
 * Private header of the trust module: keys, bundles, the signed catalog, the clinic home
 * internals and small helpers shared by the CLI commands. Not used outside host/trust and its
 * tests.
 */
#ifndef AGORA_HOST_TRUST_INT_H
#define AGORA_HOST_TRUST_INT_H

#include <stdio.h>

#include "trust.h"

/* ---- time (UTC seconds since the epoch, text "YYYY-MM-DDTHH:MM:SSZ") ----------------------- */
#define AGORA__TIME_TEXT 21
void agora__time_format(int64_t t, char out[AGORA__TIME_TEXT]);
int agora__time_parse(const char *s, int64_t *t); /* 0 or -1 */
/* --expires: DAYS (1..3650) from now, a date YYYY-MM-DD (00:00:00Z of that day), or a full
 * timestamp. Must lie after now. */
int agora__expires_parse(const char *arg, int64_t now, int64_t *out, agora__error *err);
/* Wall clock in UTC seconds; tests of the library may override it (never from the CLI). */
int64_t agora__trust_now(void);
void agora__trust_set_clock_for_tests(int64_t fixed_now /* 0: real clock */);

/* ---- names ---------------------------------------------------------------------------------- */
int agora__semver_valid(const char *s);
int agora__semver_cmp(const char *a, const char *b); /* <0, 0, >0 by semver precedence */
int agora__reverse_dns_valid(const char *s);
const char *agora__output_name(unsigned index);
int agora__pricing_model_valid(const char *s);
int agora__currency_valid(const char *s);

/* ---- keys ----------------------------------------------------------------------------------- */
#define AGORA__KEY_ID_HEX 17 /* 16 hex chars + NUL: first 8 bytes of sha256(public key) */
typedef struct agora__pubkey {
    uint8_t pk[32];
    char id[AGORA__KEY_ID_HEX];
} agora__pubkey;
typedef struct agora__seckey {
    uint8_t sk[64]; /* libsodium layout: seed || public key */
    agora__pubkey pub;
} agora__seckey;

void agora__key_id(const uint8_t pk[32], char id[AGORA__KEY_ID_HEX]);
/* Generate a key pair and write PREFIX.key (0600, O_EXCL) and PREFIX.pub. pass may be NULL. */
int agora__keygen_files(const char *prefix, const char *pass, size_t passlen, agora__pubkey *pub,
                        agora__error *err);
int agora__pubkey_parse(const uint8_t *buf, size_t len, agora__pubkey *out, agora__error *err);
int agora__pubkey_read(const char *path, agora__pubkey *out, agora__error *err);
/* Text form of a public key file, NUL terminated. */
void agora__pubkey_format(const agora__pubkey *pub, char *buf, size_t size);
/* Read a secret key file; pass (may be NULL) decrypts an encrypted one. */
int agora__seckey_read(const char *path, const char *pass, size_t passlen, agora__seckey *out,
                       agora__error *err);
void agora__seckey_wipe(agora__seckey *key);
/* Read a passphrase file (first line, at most 1 KiB, no trailing newline) into buf. */
int agora__passphrase_read(const char *path, char *buf, size_t size, size_t *len,
                           agora__error *err);

/* Detached signature file: one line "agora-signature v1 ed25519 <key id> <128 hex>\n". */
#define AGORA__SIG_TEXT_MAX 256
void agora__sig_format(const agora__pubkey *signer, const uint8_t sig[64], char *buf, size_t size);
int agora__sig_parse(const uint8_t *buf, size_t len, char key_id[AGORA__KEY_ID_HEX],
                     uint8_t sig[64], agora__error *err);

/* ---- bundles (docs/bundle-format.md) ------------------------------------------------------ */
#define AGORA__BUNDLE_MAGIC   "AGORABND"
#define AGORA__BUNDLE_VERSION        1u   /* no assets */
#define AGORA__BUNDLE_VERSION_ASSETS 2u   /* with the asset table */
#define AGORA__BUNDLE_HEADER         96u  /* version 1 header */
#define AGORA__BUNDLE_HEADER_V2      136u /* + asset count, reserved, sha256(asset table) */
#define AGORA__BUNDLE_ASSET_ENTRY    168u /* name (128, NUL-padded) || size (8) || sha256 (32) */
#define AGORA__BUNDLE_SIG     104u /* key id (8) || public key (32) || signature (64) */

/* One asset of a version-2 bundle, from its table. */
typedef struct agora__bundle_asset {
    char name[AGORA__ASSET_NAME_MAX + 1];
    uint64_t size;
    uint8_t sha256[32];
    uint64_t offset; /* of its bytes in the bundle file */
} agora__bundle_asset;

/* Views into a buffer the caller owns and keeps alive. */
typedef struct agora__bundle {
    uint32_t format_version; /* 1 or 2 */
    uint32_t n_assets;
    agora__bundle_asset assets[AGORA__ASSETS_MAX];
    const uint8_t *manifest;
    size_t manifest_len;
    const uint8_t *plugin;
    size_t plugin_len;
    uint8_t manifest_sha[32];
    uint8_t plugin_sha[32];
    int is_signed;
    agora__pubkey vendor; /* valid when is_signed: the signature verified with this key */
    agora__manifest parsed;
} agora__bundle;

/* Check the ELF header: 64-bit little-endian x86_64 shared object. Never loads it. */
int agora__elf_check(const uint8_t *p, size_t len, agora__error *err);
/* agora__elf_check, then: the dynamic symbol table (read from the bytes, never loaded) defines
 * agora_plugin_entry as an exported (global or weak, default visibility) function. What
 * certification requires, with the manifest's supported "abi" (docs/bundle-format.md). */
int agora__elf_plugin_check(const uint8_t *p, size_t len, agora__error *err);
/* Build a bundle (manifest and plugin are validated first). *out is malloc'ed. */
int agora__bundle_build(const uint8_t *manifest, size_t manifest_len, const uint8_t *plugin,
                        size_t plugin_len, const agora__seckey *signer, uint8_t **out,
                        size_t *out_len, agora__error *err);
/* Parse exactly: sizes, hashes, the vendor signature when present, the ELF header, the manifest
 * and that the manifest's abi is one this host runs. */
int agora__bundle_parse(const uint8_t *buf, size_t len, agora__bundle *out, agora__error *err);

/* A bundle read from a file without reading its assets: the front (header, asset table,
 * manifest, plugin; bounded) is in memory and verified as by agora__bundle_parse, the assets
 * are streamed on demand by agora__bundle_asset_copy, which checks each against its table. */
typedef struct agora__bundle_file {
    agora__bundle b; /* views into front */
    uint8_t *front;
    int fd;
    uint64_t file_len;
} agora__bundle_file;
int agora__bundle_open(const char *path, agora__bundle_file *out, agora__error *err);
/* Stream asset i to out_fd (-1: only check) while hashing; AGORA_EINVAL when it does not match
 * the sha256 its table pins (whatever was written must then be discarded). */
int agora__bundle_asset_copy(const agora__bundle_file *bf, uint32_t i, int out_fd,
                             agora__error *err);
void agora__bundle_close(agora__bundle_file *bf);
/* Write a version-2 bundle with the assets names[i] = files[i] (n >= 1), streaming each file
 * (hashed while copied, never read whole), signed with signer when not NULL, atomically to
 * out_path. The manifest and plugin are checked as by agora__bundle_build; the names must be
 * the manifest's declared assets (agora__cli_assets checked them). *size receives the length. */
int agora__bundle_write_assets(const char *out_path, const uint8_t *manifest, size_t manifest_len,
                               const uint8_t *plugin, size_t plugin_len,
                               const char (*names)[AGORA__ASSET_NAME_MAX + 1],
                               const char *const *files, size_t n, const agora__seckey *signer,
                               uint64_t *size, agora__error *err);

/* ---- the catalog ---------------------------------------------------------------------------- */
#define AGORA__CATALOG_MAX         ((size_t)16 * 1024 * 1024)
#define AGORA__CATALOG_ENTRIES_MAX 10000

typedef struct agora__cat_entry {
    char id[AGORA__TRUST_ID_MAX + 1];
    char version[AGORA__TRUST_VERSION_MAX + 1];
    char name[AGORA__TRUST_NAME_MAX + 1];
    char vendor[AGORA__TRUST_NAME_MAX + 1];
    int revoked;
    char reason[AGORA__TRUST_REASON_MAX + 1];
    int64_t revoked_at;
    char level[16];
    uint8_t plugin_sha[32];
    uint64_t plugin_size;
    uint8_t manifest_sha[32];
    uint64_t manifest_size;
    char vendor_key_id[AGORA__KEY_ID_HEX]; /* "" when the bundle was not signed */
    uint32_t granted;
    agora__trust_pricing pricing;
    int64_t certified_at;
    /* The assets the build carries, each pinned like the binary ("assets" in the catalog; absent
     * when none, so catalogs of builds without assets are unchanged). */
    uint32_t n_assets;
    struct {
        char name[AGORA__ASSET_NAME_MAX + 1];
        uint8_t sha[32];
        uint64_t size;
    } assets[AGORA__ASSETS_MAX];
} agora__cat_entry;

typedef struct agora__catalog {
    uint64_t version;
    int64_t issued, expires;
    char key_id[AGORA__KEY_ID_HEX];
    agora__cat_entry *entries; /* malloc'ed, n used of cap */
    size_t n, cap;
} agora__catalog;

void agora__catalog_free(agora__catalog *c);
agora__cat_entry *agora__catalog_find(const agora__catalog *c, const char *id, const char *version);
/* Append (grows the array). Returns the new slot (zeroed) or NULL on ENOMEM / too many. */
agora__cat_entry *agora__catalog_add(agora__catalog *c, agora__error *err);
/* Canonical bytes: sorted keys, entries sorted by id then semver, 2-space indent, final LF. */
int agora__catalog_serialize(const agora__catalog *c, char **out, size_t *len, agora__error *err);
/* Strict parse of (already verified) catalog bytes. */
int agora__catalog_parse(const uint8_t *buf, size_t len, agora__catalog *out, agora__error *err);
/* Verify sig_text over json with one of keys (matched by key id), THEN parse. */
int agora__catalog_verify_parse(const uint8_t *json, size_t json_len, const uint8_t *sig_text,
                                size_t sig_len, const agora__pubkey *keys, size_t n_keys,
                                agora__catalog *out, agora__error *err);
/* Read DIR/catalog.json + DIR/catalog.sig and verify+parse. A missing catalog.json sets
 * *missing (when not NULL) and returns AGORA_EINVAL. raw/sig (optional) receive the bytes. */
int agora__catalog_load_dir(const char *dir, const agora__pubkey *keys, size_t n_keys,
                            agora__catalog *out, uint8_t **raw, size_t *raw_len, char **sig,
                            size_t *sig_len, int *missing, agora__error *err);
/* The operator's side of "not trusted": 0 unless DIR/catalog.sig names a key other than key,
 * then an error with operator advice (which: "--key", "--trust"). */
int agora__catalog_operator_check(const char *dir, const agora__pubkey *key, const char *which,
                                  agora__error *err);
/* Serialize, sign and write DIR/catalog.json and DIR/catalog.sig. */
int agora__catalog_write_dir(const char *dir, const agora__catalog *c, const agora__seckey *key,
                             agora__error *err);
int agora__catalog_entry_cmp(const void *a, const void *b);

/* ---- clinic home internals ------------------------------------------------------------------ */
#define AGORA__HOME_TRUST_MAX 16
struct agora__trust_home {
    char dir[4096];
    agora__home_secret secret;
    agora__pubkey trusted[AGORA__HOME_TRUST_MAX];
    size_t n_trusted;
    int64_t grace_s;
    uint32_t policy;
    int have_catalog;
    agora__catalog cat;
    /* Identity of catalog/current when cat was verified: refresh skips re-verifying an unchanged
     * file (a sync replaces it by rename, so its inode changes). */
    uint64_t held_ino, held_size;
    int64_t held_mtime_ns;
};

typedef struct agora__init_opts {
    const char *dir;          /* NULL: resolve */
    const char **trust_paths; /* public key files */
    size_t n_trust;
    uint32_t policy; /* AGORA__OPT_* the clinic allows */
    int64_t grace_s;
    unsigned *secret_done; /* may be NULL: gets AGORA__SECRET_CREATED/MIGRATED (home.h) */
} agora__init_opts;

int agora__home_init(const agora__init_opts *opts, char *dir_out, size_t dir_size,
                     agora__error *err);
/* Path helper: snprintf into buf, AGORA_ELIMIT when it does not fit. */
int agora__path(char *buf, size_t size, agora__error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Accept DIR's catalog into the home (trusted key, strictly newer, not expired). old receives
 * the previously held catalog (empty when none) so the caller can print what changed. */
int agora__home_sync(agora__trust_home *home, const char *dir, agora__catalog *old,
                     agora__error *err);
/* Install id (version NULL: the highest certified, non-revoked version) from source_dir (NULL:
 * the directory of the last sync). version_out receives the version installed. */
int agora__home_install(agora__trust_home *home, const char *id, const char *version,
                        const char *source_dir, char *version_out, size_t version_size,
                        agora__error *err);
int agora__home_remove(agora__trust_home *home, const char *id, agora__error *err);

#endif
