/* The clinic home: where it is (one resolution rule for every command) and what lives in it
 * (one table of paths). Modules ask here instead of formatting "%s/secret" themselves, so the
 * layout documented in docs/clinic-guide.md has one owner. */
#ifndef AGORA_HOST_HOME_H
#define AGORA_HOST_HOME_H

#include <stddef.h>

struct agora__error;

/* The clinic home: `dir` (the --home value) if not NULL or empty, else $AGORA_HOME, else
 * $XDG_DATA_HOME/agora (absolute only), else $HOME/.local/share/agora. Writes into out (size
 * bytes). 0 or AGORA_EINVAL (no home: the message says pass --home or set AGORA_HOME) /
 * AGORA_ELIMIT (too long). */
int agora__home_dir(const char *dir, char *out, size_t size, struct agora__error *err);

/* The entries of a home (docs/clinic-guide.md, "Home layout"). */
typedef enum agora__home_entry {
    AGORA__HOME_CONFIG,       /* config.json: policy (0600) */
    AGORA__HOME_SECRET,       /* secret: 32 random bytes, the clinic's keys derive from it */
    AGORA__HOME_DEID_SECRET,  /* deid.secret: agora deid's key when no --secret is given */
    AGORA__HOME_TRUST,        /* trust/: trusted operator keys */
    AGORA__HOME_CATALOG,      /* catalog/ */
    AGORA__HOME_CATALOG_HELD, /* catalog/current: the held catalog */
    AGORA__HOME_PLUGINS,      /* plugins/: installed builds */
    AGORA__HOME_CLINIC_KEY,   /* clinic.key: Ed25519 signing key for ledger exports (0600) */
    AGORA__HOME_CLINIC_PUB,   /* clinic.pub: its public half */
    AGORA__HOME_LEDGER,       /* ledger.db: the metering ledger */
    AGORA__HOME_RESULTS,      /* results/: stored results */
    AGORA__HOME_ENTRY_COUNT
} agora__home_entry;

/* HOME/<entry> into out. 0, AGORA_EINVAL (home NULL, entry out of range) or AGORA_ELIMIT. */
int agora__home_path(const char *home, agora__home_entry entry, char *out, size_t size,
                     struct agora__error *err);

/* Where an installed plugin's asset lives: HOME/plugins/<plugin_id>/assets/<asset> (asset NULL:
 * the assets directory itself). The caller has validated both names. 0 or AGORA_ELIMIT. */
int agora__home_asset_path(const char *home, const char *plugin_id, const char *asset, char *out,
                           size_t size, struct agora__error *err);

#endif
