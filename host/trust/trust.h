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

#endif
