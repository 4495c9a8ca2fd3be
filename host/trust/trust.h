/*
 * trust.h — what other host modules (chiefly `agora run`) use from the trust module: the clinic
 * home, the installed plugins with their certified manifests, grants and prices, and the one
 * function that hands out plugin bytes that were verified against the signed catalog.
 *
 * Ownership: every struct here is owned by the caller unless said otherwise. Strings inside the
 * structs are fixed arrays (no pointers to free) except `agora__trust_loaded.bytes`.
 *
 * Typical use by `agora run`:
 *
 *     agora__trust_home *home;
 *     if (agora__trust_home_open(NULL, &home, &err) != 0) ...      // AGORA_HOME or default
 *     agora__trust_loaded lp;
 *     if (agora__trust_load(home, "com.example.nodules", &lp, &err) != 0) ... // refused: err.msg
 *     // give lp.bytes/lp.len to the worker (sealed memfd); never re-open the installed path.
 *     // lp.info.granted: the PS3.15 options the job may see; lp.info.pricing: what to bill.
 *     ...
 *     // before dispatching each queued job (a sync may have revoked the build meanwhile):
 *     if (agora__trust_allowed(home, lp.info.id, lp.info.version, &err) != 0) cancel(...);
 *     agora__trust_loaded_free(&lp);
 *     agora__trust_home_close(home);
 *
 * Thread safety: a home handle is not thread-safe; use one per thread or lock around calls.
 */
#ifndef AGORA_HOST_TRUST_H
#define AGORA_HOST_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ps315.h"

/* ---- Limits ------------------------------------------------------------------------------- */

#define AGORA__TRUST_MANIFEST_MAX ((size_t)64 * 1024)         /* manifest.json bytes */
#define AGORA__TRUST_PLUGIN_MAX   ((size_t)256 * 1024 * 1024) /* plugin .so bytes */
#define AGORA__TRUST_ID_MAX       128                         /* reverse-DNS id */
#define AGORA__TRUST_VERSION_MAX  64                          /* semver text */
#define AGORA__TRUST_NAME_MAX     128                         /* name, vendor */
#define AGORA__TRUST_DESC_MAX     4096                        /* description */
#define AGORA__TRUST_REASON_MAX   512                         /* revocation reason */
#define AGORA__TRUST_LIST_MAX     32                          /* modalities, body parts */

/* ---- PS3.15 Annex E options a plugin may be granted (bit flags) ---------------------------- */
/* The bits are the host's one PS3.15 assignment (common/ps315.h), the same the de-identification
 * rules use. Only options that make sense for a plugin's image view can be named in a manifest,
 * the catalog and the clinic policy (AGORA__PS315_NAMED); rtnUIDsOpt is absent on purpose (a
 * plugin never sees real UIDs). cleanDescOpt is named but never given (AGORA__OPT_GRANTABLE):
 * certify and init refuse it, and the grant of an older catalog or policy drops it. */
/* rtnPatCharsOpt: age, sex, size, weight */
#define AGORA__OPT_RTN_PAT_CHARS AGORA__PS315_BIT(AGORA__PS315_RTN_PAT_CHARS)
/* rtnDevIdOpt: device identity */
#define AGORA__OPT_RTN_DEV_ID AGORA__PS315_BIT(AGORA__PS315_RTN_DEV_ID)
/* rtnInstIdOpt: institution and department name, institution address */
#define AGORA__OPT_RTN_INST_ID AGORA__PS315_BIT(AGORA__PS315_RTN_INST_ID)
/* rtnLongFullDatesOpt: real dates */
#define AGORA__OPT_RTN_LONG_FULL_DATES AGORA__PS315_BIT(AGORA__PS315_RTN_LONG_FULL_DATES)
/* rtnLongModifDatesOpt: dates shifted per patient */
#define AGORA__OPT_RTN_LONG_MODIF_DATES AGORA__PS315_BIT(AGORA__PS315_RTN_LONG_MODIF_DATES)
/* cleanDescOpt: named, never granted */
#define AGORA__OPT_CLEAN_DESC AGORA__PS315_BIT(AGORA__PS315_CLEAN_DESC)
/* Bit positions to scan (for i < AGORA__OPT_COUNT: mask & (1u << i)). */
#define AGORA__OPT_COUNT     AGORA__PS315_COUNT
#define AGORA__OPT_ALL       agora__ps315_mask(AGORA__PS315_NAMED)
#define AGORA__OPT_GRANTABLE agora__ps315_mask(AGORA__PS315_NAMED | AGORA__PS315_GRANT)

/* The PS3.15 name ("rtnPatCharsOpt") of option bit `index` when a plugin's files may name it,
 * else NULL. */
const char *agora__trust_option_name(unsigned index);
/* Parse a PS3.15 option name into its bit. 0 or AGORA_EINVAL (unknown, or not one a plugin's
 * files may name). */
int agora__trust_option_parse(const char *name, uint32_t *bit);
/* Why option bit(s) cannot be given to a plugin (static text saying what to do), or NULL when
 * every bit in `bits` can. Certify (--grant) and init (--allow) refuse with it. */
const char *agora__trust_option_refusal(uint32_t bits);
/* Write the options as "a,b,c" ("none" when empty) into buf (always terminated). */
void agora__trust_options_format(uint32_t options, char *buf, size_t size);

/* ---- Outputs a plugin declares --------------------------------------------------------------- */
#define AGORA__OUT_FINDINGS     (1u << 0)
#define AGORA__OUT_MEASUREMENTS (1u << 1)
#define AGORA__OUT_REGIONS      (1u << 2)
#define AGORA__OUT_MASKS        (1u << 3)
#define AGORA__OUT_SUMMARY      (1u << 4)
#define AGORA__OUT_COUNT        5

/* ---- A parsed, validated manifest (schemas/manifest.schema.json) --------------------------- */
typedef struct agora__manifest {
    char id[AGORA__TRUST_ID_MAX + 1];
    char name[AGORA__TRUST_NAME_MAX + 1];
    char vendor[AGORA__TRUST_NAME_MAX + 1];
    char version[AGORA__TRUST_VERSION_MAX + 1];
    uint32_t abi_major, abi_minor;
    char description[AGORA__TRUST_DESC_MAX + 1];
    int any_modality; /* inputs.modalities == ["*"] */
    char modalities[AGORA__TRUST_LIST_MAX][17];
    uint32_t n_modalities;
    char body_parts[AGORA__TRUST_LIST_MAX][17]; /* empty list: any body part */
    uint32_t n_body_parts;
    uint32_t min_frames, max_frames; /* defaults 1 and 100000 */
    uint32_t permissions;            /* AGORA__OPT_* the plugin asks for */
    uint32_t memory_mb, time_s, threads;
    uint32_t outputs; /* AGORA__OUT_* */
    int has_pricing;  /* the vendor's proposal; the catalog's pricing is what counts */
    char pricing_model[16];
    uint64_t pricing_price_minor;
    char pricing_currency[4];
    int study_scope; /* inputs.scope == "study": one job per study (org.agora.study/1) */
    /* "assets": the files the bundle must carry (names unique, agora__asset_name_valid). */
    char assets[AGORA__ASSETS_MAX][AGORA__ASSET_NAME_MAX + 1];
    uint32_t n_assets;
} agora__manifest;

/* Parse and validate manifest bytes. On error the message names the field, e.g.
 * "manifest.resources.memory_mb: must be an integer 16..65536". */
int agora__manifest_parse(const uint8_t *buf, size_t len, agora__manifest *out, agora__error *err);
/* Index of asset `name` among the manifest's declared assets, or -1 when it declares none so. */
int agora__manifest_asset_index(const agora__manifest *m, const char *name);

/* ---- Catalog pricing of a certified build ---------------------------------------------------- */
typedef struct agora__trust_pricing {
    char model[16];            /* per-study | per-series | per-instance | subscription | free */
    uint64_t price_minor;      /* integer minor units of `currency` (0 for free) */
    char currency[4];          /* ISO 4217, "XXX" for free builds without a currency */
    uint32_t vendor_share_bps; /* vendor's share in basis points, 0..10000 */
} agora__trust_pricing;

/* ---- Installed plugins ----------------------------------------------------------------------- */
#define AGORA__TRUST_OK              0
#define AGORA__TRUST_REVOKED         1 /* the held catalog revokes this build */
#define AGORA__TRUST_EXPIRED_CATALOG 2 /* the held catalog expired (beyond the clinic's grace) */
#define AGORA__TRUST_NOT_IN_CATALOG  3 /* the build is not in the held catalog */
#define AGORA__TRUST_TAMPERED        4 /* installed bytes differ from the catalog pins */
/* "ok", "revoked", "expired-catalog", "not-in-catalog", "tampered". */
const char *agora__trust_status_name(int status);

typedef struct agora__trust_plugin {
    char id[AGORA__TRUST_ID_MAX + 1];
    char version[AGORA__TRUST_VERSION_MAX + 1];
    int status;      /* AGORA__TRUST_* */
    int manifest_ok; /* manifest below was parsed from the installed, pinned bytes */
    agora__manifest manifest;
    uint32_t requested; /* options the manifest asks for */
    uint32_t certified; /* options the catalog grants this build */
    uint32_t policy;    /* options the clinic allows any plugin */
    uint32_t granted;   /* requested & certified & policy: what the job may see */
    int in_catalog;     /* fields below are valid */
    agora__trust_pricing pricing;
    char level[16];         /* research | clinical */
    int64_t certified_at;   /* UTC seconds the catalog entry was certified */
    char report_sha256[65]; /* the pinned certification report, hex; "" when not checked */
    char plugin_sha256[65]; /* the catalog's pins, hex */
    char manifest_sha256[65];
    char revoked_reason[AGORA__TRUST_REASON_MAX + 1];
    int64_t revoked_at;      /* UTC seconds, 0 when not revoked */
    int64_t catalog_expires; /* UTC seconds */
    uint64_t catalog_version;
} agora__trust_plugin;

typedef struct agora__trust_home agora__trust_home;

/* Resolve the clinic home: `dir` if not NULL, else $AGORA_HOME, else $XDG_DATA_HOME/agora, else
 * $HOME/.local/share/agora. Writes into out (size bytes). 0 or AGORA_EINVAL/AGORA_ELIMIT. */
int agora__trust_home_resolve(const char *dir, char *out, size_t size, agora__error *err);

/* Open an initialised home (see docs/clinic-guide.md for the layout): checks permissions (no
 * group/other write, owned by us), reads config, secret, trusted keys, and the held catalog,
 * verifying its signature before parsing it. A home without a catalog yet opens fine (every
 * plugin is then not-in-catalog). *out is freed with agora__trust_home_close. */
int agora__trust_home_open(const char *dir, agora__trust_home **out, agora__error *err);
void agora__trust_home_close(agora__trust_home *home);
/* The resolved home directory (owned by the handle). */
const char *agora__trust_home_dir(const agora__trust_home *home);

/* The 32-byte clinic secret. Prefer agora__trust_derive_key for a purpose-specific key. */
void agora__trust_secret(const agora__trust_home *home, uint8_t secret[32]);
/* The 32-byte key for one label (AGORA__KEY_UID, AGORA__KEY_BILLING, ...; the KDF is in
 * common/home.h). Same home + same label => same key. 0 or AGORA_EINVAL. */
int agora__trust_derive_key(const agora__trust_home *home, agora__home_key_label label,
                            uint8_t key[32]);

/* Re-read the held catalog from disk (verify before parse). Call after a sync may have happened;
 * agora__trust_allowed calls it itself. */
int agora__trust_refresh(agora__trust_home *home, agora__error *err);

/* Every installed plugin, sorted by id, with its status, judged by the held catalog on disk
 * (refreshed first).
 * Hashes ARE checked (reads the binaries). *out is a malloc'ed array of *n items (NULL when
 * none); free with free(). */
int agora__trust_list(agora__trust_home *home, agora__trust_plugin **out, size_t *n,
                      agora__error *err);

/* The installed build of `id`, its status and entry, without reading the binary (fast). Uses
 * the catalog as of the last open/refresh. */
int agora__trust_get(agora__trust_home *home, const char *id, agora__trust_plugin *out,
                     agora__error *err);

typedef struct agora__trust_loaded {
    agora__trust_plugin info; /* status is AGORA__TRUST_OK; granted is the intersection */
    uint8_t *bytes;           /* the verified plugin binary, malloc'ed, owned by this struct */
    size_t len;
    uint8_t *manifest_bytes; /* the verified manifest.json bytes, owned by this struct */
    size_t manifest_len;
    /* The build's assets, each verified against the catalog's pin while it was copied into a
     * sealed memfd (agora__asset_load_file): hand them to the pool (agora__plugin_spec.assets),
     * never re-open the installed paths. malloc'ed, descriptors owned by this struct. */
    agora__asset *assets;
    uint32_t n_assets;
} agora__trust_loaded;

/* Refresh the held catalog from disk, then read the installed plugin `id` into memory and
 * check, in order: the held catalog is valid and
 * not expired (beyond the grace), the build is in it and not revoked, sha256(manifest) and
 * sha256(binary) equal the catalog's pins, the manifest parses and names the same id@version,
 * and every asset the catalog pins hashes to its pin (streamed into a sealed memfd: once per
 * load, so once per host process, never per worker start).
 * Only then returns the bytes. Any failure: a negative code, out zeroed, and a message that
 * names the cause ("revoked: <reason>", "tampered: ...", "catalog expired ..."). */
int agora__trust_load(agora__trust_home *home, const char *id, agora__trust_loaded *out,
                      agora__error *err);
void agora__trust_loaded_free(agora__trust_loaded *loaded);

/* Is build id@version still allowed to run now? Re-reads the held catalog first. 0 when
 * allowed; otherwise a negative code with the reason (revoked, expired catalog, not in catalog,
 * no longer installed at that version). */
int agora__trust_allowed(agora__trust_home *home, const char *id, const char *version,
                         agora__error *err);

/* ---- Statements across clinics: the clinic's signing key and the operator's registry -------
 * Each clinic home holds an Ed25519 key pair, HOME/clinic.key (0600) and HOME/clinic.pub, made
 * by `agora init` (or on first need for older homes). The clinic signs its ledger exports with
 * it; the operator registers each clinic's clinic.pub next to its catalog, in
 * CATALOG/clinics/NAME.pub, and verifies exports against those keys only. */
#define AGORA__CLINIC_NAME_MAX 64
#define AGORA__CLINICS_MAX     1000 /* registered clinics per catalog directory */

/* Make HOME/clinic.key and HOME/clinic.pub unless they exist. *created (may be NULL) is set to
 * 1 when they were made now. key_id (17 bytes, may be NULL) receives the public key's id. */
int agora__trust_clinic_key_ensure(const char *home_dir, int *created, char *key_id,
                                   agora__error *err);
/* Sign msg with the home's clinic key (made first when missing, *created = 1). sig_line (at
 * least 256 bytes) receives "agora-signature v1 ed25519 KEYID HEX\n"; key_id (17) and pk_hex
 * (65) the signer's public key. */
int agora__trust_clinic_sign(const char *home_dir, const uint8_t *msg, size_t len, char *sig_line,
                             size_t sig_size, char *key_id, char *pk_hex, int *created,
                             agora__error *err);

typedef struct agora__trust_clinic {
    char name[AGORA__CLINIC_NAME_MAX + 1];
    char key_id[17];
    char pk_hex[65];
} agora__trust_clinic;

/* NAME: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int agora__trust_clinic_name_valid(const char *name);
/* Register clinic NAME with the public key file pub_path in catalog_dir/clinics/. Refuses a
 * name already registered with another key and a key already registered under another name;
 * registering the same name and key again is a no-op (*already = 1). */
int agora__trust_clinic_register(const char *catalog_dir, const char *name, const char *pub_path,
                                 agora__trust_clinic *out, int *already, agora__error *err);
/* Every registered clinic, sorted by name. *out is malloc'ed (NULL when none); free(). */
int agora__trust_clinic_list(const char *catalog_dir, agora__trust_clinic **out, size_t *n,
                             agora__error *err);
/* Check a signature line over msg against the registered clinics. AGORA_EUNSUPPORTED when no
 * registered clinic has the signing key id (the message says so); AGORA_EINVAL when the
 * signature does not verify. out receives the clinic. */
int agora__trust_clinic_verify(const char *catalog_dir, const uint8_t *sig_line, size_t sig_len,
                               const uint8_t *msg, size_t len, agora__trust_clinic *out,
                               agora__error *err);
/* Path of the operator's per-clinic state file CATALOG/clinics/NAME.SUFFIX. */
int agora__trust_clinic_state_path(const char *catalog_dir, const char *name, const char *suffix,
                                   char *out, size_t size, agora__error *err);

/* The operator's signed catalog as a price list. trust_pub (may be NULL) verifies the catalog
 * signature; without it the catalog is read unverified and *verified is 0. */
typedef struct agora__trust_price_book agora__trust_price_book;
int agora__trust_price_book_open(const char *catalog_dir, const char *trust_pub,
                                 agora__trust_price_book **out, int *verified, agora__error *err);
/* Pricing and vendor of build id@version; AGORA_EINVAL when the catalog does not hold it. */
int agora__trust_price_book_find(const agora__trust_price_book *pb, const char *id,
                                 const char *version, agora__trust_pricing *pricing,
                                 char vendor[AGORA__TRUST_NAME_MAX + 1], uint64_t *catalog_version);
void agora__trust_price_book_close(agora__trust_price_book *pb);

/* ==== The trust commands' side ===============================================================
 * What the operator's and developer's commands (keygen, pack, certify, revoke, catalog, init,
 * sync, install, list, remove) use: keys, bundles, the catalog and the home operations. The CLI
 * includes this header only; trust_int.h is private to host/trust. */

/* ---- time (UTC seconds since the epoch, text "YYYY-MM-DDTHH:MM:SSZ") ----------------------- */
#define AGORA__TIME_TEXT 21
void agora__time_format(int64_t t, char out[AGORA__TIME_TEXT]);
int agora__time_parse(const char *s, int64_t *t); /* 0 or -1 */
/* --expires: DAYS (1..3650) from now, a date YYYY-MM-DD (00:00:00Z of that day), or a full
 * timestamp. Must lie after now. */
int agora__expires_parse(const char *arg, int64_t now, int64_t *out, agora__error *err);
/* Wall clock in UTC seconds; tests of the library may override it (never from the CLI). */
int64_t agora__trust_now(void);

/* ---- names a catalog entry carries -------------------------------------------------------- */
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
#define AGORA__BUNDLE_MAGIC          "AGORABND"
#define AGORA__BUNDLE_VERSION        1u   /* no assets */
#define AGORA__BUNDLE_VERSION_ASSETS 2u   /* with the asset table */
#define AGORA__BUNDLE_HEADER         96u  /* version 1 header */
#define AGORA__BUNDLE_HEADER_V2      136u /* + asset count, reserved, sha256(asset table) */
#define AGORA__BUNDLE_ASSET_ENTRY    168u /* name (128, NUL-padded) || size (8) || sha256 (32) */
#define AGORA__BUNDLE_SIG            104u /* key id (8) || public key (32) || signature (64) */

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
#define AGORA__CERT_REPORT_PIN_MAX ((uint64_t)4 * 1024 * 1024) /* bytes of a pinned report */

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
    /* The certification report `agora certify --check` made and the operator signed, pinned
     * like the binary ("certification_report"; absent for entries certified without --check,
     * so older catalogs load unchanged). The report itself is in DIR/blobs/<sha256>. */
    int has_report;
    uint8_t report_sha[32];
    uint64_t report_size;
    /* The assets the build carries, each pinned like the binary ("assets" in the catalog; absent
     * when none, so catalogs of builds without assets are unchanged). */
    uint32_t n_assets;
    struct {
        char name[AGORA__ASSET_NAME_MAX + 1];
        uint8_t sha[32];
        uint64_t size;
    } assets[AGORA__ASSETS_MAX];
} agora__cat_entry;

/* A vendor's pinned signing keys ("vendors" in the catalog; absent when none is pinned, so
 * catalogs without pins are unchanged). A bundle whose manifest names a vendor with pins must be
 * signed by one of them (certify), and an entry of such a vendor must name one of them as its
 * vendor_key_id (install). */
#define AGORA__CATALOG_VENDORS_MAX 1000
#define AGORA__VENDOR_KEYS_MAX     8
typedef struct agora__cat_vendor {
    char name[AGORA__TRUST_NAME_MAX + 1];
    uint32_t n_keys;
    agora__pubkey keys[AGORA__VENDOR_KEYS_MAX];
} agora__cat_vendor;

typedef struct agora__catalog {
    uint64_t version;
    int64_t issued, expires;
    char key_id[AGORA__KEY_ID_HEX];
    agora__cat_entry *entries; /* malloc'ed, n used of cap */
    size_t n, cap;
    agora__cat_vendor *vendors; /* malloc'ed, n_vendors used, sorted by name when serialised */
    size_t n_vendors;
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
/* The vendor pin check. key_id is the key that signed the build ("" when unsigned); pk (may be
 * NULL) its public key when known (certify), else the id is compared (install, from the
 * entry). 0 when `vendor` has no pinned key in c, or the key is one of its pins; otherwise
 * AGORA_EINVAL with a message that starts "vendor pin check:" and names `what` (the build). */
int agora__catalog_vendor_check(const agora__catalog *c, const char *vendor, const char *key_id,
                                const uint8_t *pk, const char *what, agora__error *err);
/* The vendor (other than `vendor`) that has pk pinned, or NULL. */
const agora__cat_vendor *agora__catalog_key_owner(const agora__catalog *c, const char *vendor,
                                                  const uint8_t pk[32]);
/* Pin key for vendor (no-op when pinned already; *added = 1 when it was added). */
int agora__catalog_vendor_pin(agora__catalog *c, const char *vendor, const agora__pubkey *key,
                              int *added, agora__error *err);

/* The catalog as published: DIR/catalog.signed, one file replaced by rename(2) holding the
 * signature line and then the exact catalog bytes (so a reader always sees a matching pair),
 * and, for hosts older than this format, the same two parts as DIR/catalog.json and
 * DIR/catalog.sig. Readers prefer catalog.signed and fall back to the pair. */
#define AGORA__CATALOG_SIGNED "catalog.signed"
/* Read the published bytes without verifying: *doc (the catalog bytes) and *sig (the signature
 * line), both malloc'ed. A directory without a catalog sets *missing and returns AGORA_EINVAL. */
int agora__catalog_read_dir(const char *dir, uint8_t **doc, size_t *doc_len, uint8_t **sig,
                            size_t *sig_len, int *missing, agora__error *err);
/* Copy the operator's catalog directory src to dest, where clinics read it: the blobs its
 * entries pin (checked against their pins; ones already there with the right size are kept),
 * new root versions (an existing one must be identical), then catalog.signed by rename, then
 * the older two-file pair. Refuses to replace a newer catalog in dest. Never copies clinics/. */
typedef struct agora__publish_stats {
    unsigned blobs, roots; /* copied now */
    uint64_t version;      /* the catalog version published */
} agora__publish_stats;
int agora__catalog_publish(const char *src, const char *dest, agora__publish_stats *st,
                           agora__error *err);
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

/* ---- root documents: the keys that may sign catalogs, and who may change them -------------
 * (docs/operator-guide.md, "Rotating keys"). A root names its root keys with a threshold and
 * the catalog-signing keys with their expiry. Published as DIR/root/<version>.root: signature
 * lines (one per signing key), then the exact canonical JSON. Root N+1 is accepted only when a
 * threshold of root N's keys AND a threshold of its own keys signed it. A home or catalog
 * directory without roots has the implicit root v0: its trusted operator keys are root and
 * catalog keys, threshold 1, never expiring. Catalogs carry one signature (threshold 1). */
#define AGORA__ROOT_MAX       ((size_t)64 * 1024) /* bytes of a root file */
#define AGORA__ROOT_KEYS_MAX  16                  /* root keys, and catalog keys, per root */
#define AGORA__ROOT_SIGS_MAX  32                  /* signature lines per root file */
#define AGORA__ROOT_CHAIN_MAX 64                  /* root versions one sync walks */
#define AGORA__ROOT_DIR       "root"

typedef struct agora__root {
    uint64_t version;        /* 0: the implicit root */
    int64_t issued, expires; /* expires 0: never (the implicit root only) */
    uint32_t threshold;
    agora__pubkey root_keys[AGORA__ROOT_KEYS_MAX];
    size_t n_root;
    agora__pubkey catalog_keys[AGORA__ROOT_KEYS_MAX];
    int64_t catalog_expires[AGORA__ROOT_KEYS_MAX];
    size_t n_catalog;
} agora__root;

/* The implicit root v0 of keys (n of them, 1..AGORA__ROOT_KEYS_MAX used). */
void agora__root_implicit(const agora__pubkey *keys, size_t n, agora__root *out);
int agora__root_serialize(const agora__root *r, char **out, size_t *len, agora__error *err);
/* Strict parse of root bytes (call only on verified bytes). */
int agora__root_parse(const uint8_t *buf, size_t len, agora__root *out, agora__error *err);
/* A signed root file (signature lines then the document) for r, signed by every key of
 * signers. *out malloc'ed. */
int agora__root_sign(const agora__root *r, const agora__seckey *signers, size_t n, uint8_t **out,
                     size_t *out_len, agora__error *err);
/* How many distinct keys of keys[] signed the document of a signed file (-1: malformed). */
int agora__root_signers(const uint8_t *file, size_t len, const agora__pubkey *keys, size_t n_keys,
                        agora__error *err);
/* Verify a signed root file as the successor of cur: version cur+1, a threshold of cur's root
 * keys and a threshold of its own signed it. Expiry is not checked here (only the last root
 * of a walk must be current). */
int agora__root_verify_next(const agora__root *cur, const uint8_t *file, size_t len,
                            agora__root *next, agora__error *err);
/* Verify a signed root file on its own (its own threshold): what a home re-reads. */
int agora__root_verify_self(const uint8_t *file, size_t len, agora__root *out, agora__error *err);
/* Walk DIR/root/(cur+1).root, (cur+2).root, ... from cur (at most AGORA__ROOT_CHAIN_MAX steps),
 * each verified by its predecessor; then the last root must not be expired at now. *out is the
 * last root (cur when DIR has no newer one), *file and *file_len its signed bytes (NULL when cur)
 * and *walked the number of versions followed. */
int agora__root_walk(const char *dir, const agora__root *cur, int64_t now, agora__root *out,
                     uint8_t **file, size_t *file_len, unsigned *walked, agora__error *err);
/* The catalog keys of r not expired at now (now 0: all of them), into out; returns the count. */
size_t agora__root_catalog_keys(const agora__root *r, int64_t now,
                                agora__pubkey out[AGORA__ROOT_KEYS_MAX]);
/* The operator's side: the newest root in DIR (each version verified by its predecessor from
 * root 1, whose own threshold is checked). 1 when DIR holds no root (out zeroed). */
int agora__root_latest(const char *dir, agora__root *out, agora__error *err);
/* Write DIR/root/VERSION.root (never replacing an existing version). */
int agora__root_write(const char *dir, uint64_t version, const uint8_t *file, size_t len,
                      agora__error *err);
/* Operator publish check: 0 when DIR holds no root, or key is a catalog key of its newest
 * root, not expired at now; else an error saying which key to use. */
int agora__root_publish_check(const char *dir, const agora__pubkey *key, int64_t now,
                              agora__error *err);

/* ---- the clinic home ------------------------------------------------------------------------ */
/* The held catalog (NULL when the home holds none yet) and the operator keys the home trusts
 * (*n of them), as of the last open/refresh. Both owned by the handle. */
const agora__catalog *agora__trust_home_catalog(const agora__trust_home *home);
const agora__pubkey *agora__trust_home_trusted(const agora__trust_home *home, size_t *n);

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
/* The root the home holds (version 0: the implicit root of its trusted keys), as of the last
 * open or sync. Owned by the handle. */
const agora__root *agora__trust_home_root(const agora__trust_home *home);

#endif
