/* The clinic home: where it is (one resolution rule for every command) and what lives in it
 * (one table of paths). Modules ask here instead of formatting "%s/secret" themselves, so the
 * layout documented in docs/clinic-guide.md has one owner. */
#ifndef AGORA_HOST_HOME_H
#define AGORA_HOST_HOME_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

/* The clinic home: `dir` (the --home value) if not NULL or empty, else $AGORA_HOME, else
 * $XDG_DATA_HOME/agora (absolute only), else $HOME/.local/share/agora. Writes into out (size
 * bytes). 0 or AGORA_EINVAL (no home: the message says pass --home or set AGORA_HOME) /
 * AGORA_ELIMIT (too long). */
int agora__home_dir(const char *dir, char *out, size_t size, struct agora__error *err);

/* The entries of a home (docs/clinic-guide.md, "Home layout"). */
typedef enum agora__home_entry {
    AGORA__HOME_CONFIG,       /* config.json: policy (0600) */
    AGORA__HOME_SECRET,       /* secret: the one clinic secret, every key derives from it (0600) */
    AGORA__HOME_DEID_SECRET,  /* deid.secret: legacy; folded into secret (home_secret.c) */
    AGORA__HOME_TRUST,        /* trust/: trusted operator keys */
    AGORA__HOME_CATALOG,      /* catalog/ */
    AGORA__HOME_CATALOG_HELD, /* catalog/current: the held catalog */
    AGORA__HOME_PLUGINS,      /* plugins/: installed builds */
    AGORA__HOME_CLINIC_KEY,   /* clinic.key: Ed25519 signing key for ledger exports (0600) */
    AGORA__HOME_CLINIC_PUB,   /* clinic.pub: its public half */
    AGORA__HOME_LEDGER,       /* ledger.db: the metering ledger */
    AGORA__HOME_RESULTS,      /* results/: stored results, results/<sha256 of the study UID>/ */
    AGORA__HOME_CATALOG_SRC,  /* catalog/source: the directory the held catalog came from */
    AGORA__HOME_SPOOL,        /* spool/: instances received by agora serve, and spool.db */
    AGORA__HOME_OUTBOX,       /* outbox/<job id>/: SR/SEG agora serve sends back */
    AGORA__HOME_AUDIT,        /* audit.log: the hash-chained audit trail (trust/audit.h) */
    AGORA__HOME_USERS,        /* users.json: dashboard users (host/dashboard/users.h, 0600) */
    AGORA__HOME_ENTRY_COUNT
} agora__home_entry;

/* HOME/<entry> into out. 0, AGORA_EINVAL (home NULL, entry out of range) or AGORA_ELIMIT. */
int agora__home_path(const char *home, agora__home_entry entry, char *out, size_t size,
                     struct agora__error *err);
/* HOME/<dir>/<name>, or HOME/<dir>/<name>/<file> when file is not NULL, for the directory
 * entries (AGORA__HOME_TRUST: <key id>.pub; AGORA__HOME_PLUGINS: <id>/{install.json, plugin.so,
 * manifest.json}; AGORA__HOME_RESULTS: <study hash>/...). name and file must each be one path
 * component (not empty, no '/', not "." or ".."), so a hostile id cannot leave the home.
 * 0, AGORA_EINVAL or AGORA_ELIMIT. */
int agora__home_entry_path(const char *home, agora__home_entry dir, const char *name,
                           const char *file, char *out, size_t size, struct agora__error *err);

/* The one clinic secret (HOME/secret, 0600) and the keys derived from it.
 *
 * File: 32 random bytes, the root key. A home migrated from a separate deid.secret holds 64:
 * the root key, then the old deid.secret key, kept as the key of AGORA__KEY_DEID so the
 * pseudonyms `agora deid` wrote before stay the same.
 *
 * KDF: key(label) = BLAKE2b-256 keyed with the root key over "agora-key/<label>"
 * (crypto_generichash; a keyed BLAKE2b is a PRF, the construction libsodium's crypto_kdf uses).
 * It is the derivation `agora run` has used since wave one for its UID and billing keys, kept so
 * existing pseudonyms and billing keys do not change. */
typedef enum agora__home_key_label {
    AGORA__KEY_UID,     /* "deid-uid": UID/pseudonym key of agora run's plugin views */
    AGORA__KEY_BILLING, /* "billing": the ledger's billing-key MAC (meter/ledger.h) */
    AGORA__KEY_DEID,    /* agora deid without --secret: the migrated deid.secret key, else
                         * the same key as AGORA__KEY_UID (one study, one set of pseudonyms) */
    AGORA__KEY_COUNT
} agora__home_key_label;

typedef struct agora__home_secret {
    uint8_t root[32];
    int have_deid_legacy;
    uint8_t deid_legacy[32];
} agora__home_secret;

enum {
    AGORA__SECRET_CREATE = 1u,  /* make a fresh secret when the home has none */
    AGORA__SECRET_MIGRATE = 2u, /* fold HOME/deid.secret into HOME/secret, then remove it */
};
/* What agora__home_secret_load did, for the caller to tell the user (libraries do not print). */
enum {
    AGORA__SECRET_CREATED = 1u,
    AGORA__SECRET_MIGRATED = 2u,
};

/* Read HOME/secret into *s (wipe it with agora__home_secret_wipe). flags: AGORA__SECRET_*;
 * *done (may be NULL) gets AGORA__SECRET_CREATED/MIGRATED bits. Refuses a secret other users
 * can read and one of the wrong size; without CREATE a missing secret is AGORA__ENOENT. */
int agora__home_secret_load(const char *home, unsigned flags, agora__home_secret *s, unsigned *done,
                            struct agora__error *err);
void agora__home_secret_wipe(agora__home_secret *s);
/* The 32-byte key for one label (see above). 0, or AGORA_EINVAL (label out of range) /
 * AGORA_EINTERNAL (libsodium failed to initialise). */
int agora__home_key(const agora__home_secret *s, agora__home_key_label label, uint8_t key[32]);
/* The label's name ("deid-uid", ...), or NULL out of range. */
const char *agora__home_key_name(agora__home_key_label label);

/* A 32-byte key file (the --secret FILE of agora deid, a migrated deid.secret): 32 raw bytes or
 * 64 hex digits (trailing newline allowed), not readable by group or others. */
int agora__key_file_read(const char *path, uint8_t key[32], struct agora__error *err);

/* Where an installed plugin's asset lives: HOME/plugins/<plugin_id>/assets/<asset> (asset NULL:
 * the assets directory itself). The caller has validated both names. 0 or AGORA_ELIMIT. */
int agora__home_asset_path(const char *home, const char *plugin_id, const char *asset, char *out,
                           size_t size, struct agora__error *err);

#endif
