/*
 * Private to the meter module: the ledger handle, the row layout that is hashed, and the
 * helpers shared by the ledger's files.
 */
#ifndef AGORA_METER_LEDGER_PRIVATE_H
#define AGORA_METER_LEDGER_PRIVATE_H

#include <sqlite3.h>

#include "ledger.h"

struct agora__ledger {
    sqlite3 *db;
    int have_secret;
    uint8_t secret[32];
    sqlite3_stmt *st_last;   /* last row's seq and hash */
    sqlite3_stmt *st_find;   /* seq of an invocation id */
    sqlite3_stmt *st_charge; /* insert-or-ignore a billing key */
    sqlite3_stmt *st_insert; /* append a row */
};

/* One ledger row, as stored and as hashed. Strings are borrowed. corrects is 0 when none. */
typedef struct agora__ledger_row {
    int64_t seq;
    const char *kind;
    const char *invocation_id;
    int64_t recorded_ms;
    const char *period;
    const char *plugin_id;
    const char *plugin_version;
    const char *vendor;
    int64_t catalog_version;
    const char *model;
    int64_t price_minor;
    const char *currency;
    int64_t vendor_share_bps;
    const char *status;
    int64_t billable;
    int64_t units;
    int64_t units_total;
    int64_t amount_minor;
    const char *keys_digest;
    int64_t corrects;
    const char *reason;
    int64_t wall_ms;
    int64_t cpu_us;
    int64_t peak_rss_kb;
    const char *prev_hash;
} agora__ledger_row;

/* The column list in canonical (hash) order, shared by INSERT and the readers. */
#define AGORA__LEDGER_COLUMNS                                                                      \
    "seq, kind, invocation_id, recorded_ms, period, plugin_id, plugin_version, vendor, "           \
    "catalog_version, model, price_minor, currency, vendor_share_bps, status, billable, units, "   \
    "units_total, amount_minor, keys_digest, corrects, reason, wall_ms, cpu_us, peak_rss_kb, "     \
    "prev_hash, hash"

/* hex (65 bytes) = BLAKE2b-256 over the row's canonical bytes (see ledger_hash.c). */
void agora__ledger_row_hash(const agora__ledger_row *r, char hex[65]);
/* keys_digest of a row that charged no billing key: BLAKE2b-256 of nothing. */
void agora__ledger_empty_digest(char hex[65]);
/* Fill r from a statement positioned on a row selected with AGORA__LEDGER_COLUMNS (strings
 * borrowed from the statement until it steps); *hash gets the stored hash column. */
void agora__ledger_row_read(sqlite3_stmt *st, agora__ledger_row *r, const char **hash);
/* Row -> new JSON object (export format). */
json_t *agora__ledger_row_json(const agora__ledger_row *r, const char *hash);

/* The one rounding rule: floor(gross * bps / 10000), toward -infinity, without overflow. */
int64_t agora__ledger_share_floor(int64_t gross, int64_t bps);

int agora__ledger_sql_error(agora__ledger *l, agora__error *err, const char *what);
int agora__ledger_exec(agora__ledger *l, const char *sql, agora__error *err);

/* Call fn for each row with first <= seq <= last, in order, as its export JSON (the one row
 * walk of agora__ledger_export and the period export). fn's non-zero return stops the walk and
 * is returned. */
int agora__ledger_rows(agora__ledger *l, int64_t first, int64_t last, agora__ledger_row_fn fn,
                       void *ctx, agora__error *err);

#endif
