/*
 * The ledger database: opening it (schema, durability pragmas) and appending rows (invocations
 * and corrections) to the hash chain. See ledger.h for the model.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger_private.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('format', 'agora.ledger/1');"
    /* One row per invocation (kind 'invocation') or correction; never updated. */
    "CREATE TABLE IF NOT EXISTS entries("
    " seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, invocation_id TEXT NOT NULL,"
    " recorded_ms INTEGER NOT NULL, period TEXT NOT NULL, plugin_id TEXT NOT NULL,"
    " plugin_version TEXT NOT NULL, vendor TEXT NOT NULL, catalog_version INTEGER NOT NULL,"
    " model TEXT NOT NULL, price_minor INTEGER NOT NULL, currency TEXT NOT NULL,"
    " vendor_share_bps INTEGER NOT NULL, status TEXT NOT NULL, billable INTEGER NOT NULL,"
    " units INTEGER NOT NULL, units_total INTEGER NOT NULL, amount_minor INTEGER NOT NULL,"
    " keys_digest TEXT NOT NULL, corrects INTEGER, reason TEXT NOT NULL,"
    " wall_ms INTEGER NOT NULL, cpu_us INTEGER NOT NULL, peak_rss_kb INTEGER NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    /* The id minted before dispatch is unique among invocations: the retry guard. */
    "CREATE UNIQUE INDEX IF NOT EXISTS entries_invocation ON entries(invocation_id)"
    " WHERE kind = 'invocation';"
    /* Covering index for usage and statements of one period. */
    "CREATE INDEX IF NOT EXISTS entries_period ON entries(period, vendor, currency, plugin_id,"
    " plugin_version, vendor_share_bps, amount_minor, units, status, billable);"
    /* Billing keys already charged (keyed hashes, no UIDs): a key is charged once, by the row
     * named in seq. Covered by the chain through each row's keys_digest. */
    "CREATE TABLE IF NOT EXISTS charges(key TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS charges_seq ON charges(seq, key);";

int agora__ledger_sql_error(agora__ledger *l, agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA_EINTERNAL,
                            "ledger database: %s failed: %s; check the disk "
                            "and that HOME/ledger.db is a ledger",
                            what, sqlite3_errmsg(l->db));
}

int agora__ledger_exec(agora__ledger *l, const char *sql, agora__error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(l->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = agora__error_set(err, AGORA_EINTERNAL,
                                  "ledger database: %s; check the disk and "
                                  "that HOME/ledger.db is a ledger",
                                  msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

void agora__ledger_close(agora__ledger *l)
{
    if (l == NULL)
        return;
    sqlite3_finalize(l->st_last);
    sqlite3_finalize(l->st_find);
    sqlite3_finalize(l->st_charge);
    sqlite3_finalize(l->st_insert);
    sqlite3_close(l->db);
    sodium_memzero(l->secret, sizeof l->secret);
    free(l);
}

static int prepare(agora__ledger *l, const char *sql, sqlite3_stmt **st, agora__error *err)
{
    if (sqlite3_prepare_v2(l->db, sql, -1, st, NULL) != SQLITE_OK)
        return agora__ledger_sql_error(l, err, "preparing a statement");
    return 0;
}

int agora__ledger_open_path(const char *db_path, const uint8_t *secret, agora__ledger **out,
                            agora__error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    agora__ledger *l = calloc(1, sizeof *l);
    if (l == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (secret != NULL) {
        memcpy(l->secret, secret, 32);
        l->have_secret = 1;
    }
    /* Create the file ourselves, 0600: SQLite would use the umask (0644), and the ledger is
     * private to the clinic (docs/results-and-billing.md). Its -wal and -shm files copy this
     * mode. An existing file is left as it is. */
    agora__error ce = {0};
    if (agora__create_private_file(db_path, &ce) != 0) {
        free(l);
        return agora__error_set(err, ce.code,
                                "cannot open the ledger %s: %s; check the path and "
                                "permissions",
                                db_path, ce.msg);
    }
    int rc = sqlite3_open_v2(
        db_path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "cannot open the ledger %s: %s; check the path "
                              "and permissions",
                              db_path, l->db ? sqlite3_errmsg(l->db) : "out of memory");
        agora__ledger_close(l);
        return rc;
    }
    sqlite3_busy_timeout(l->db, 10000);
    /* WAL + FULL: a committed append survives power loss; readers never block the writer. */
    /* cache_size: 64 MiB keeps the indexes of a month of invocations in memory; without it
     * appends and verify of 10^6 rows are bound by page-cache misses. */
    rc = agora__ledger_exec(l,
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                            "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384; "
                            "PRAGMA mmap_size=1073741824;",
                            err);
    if (rc == 0)
        rc = agora__ledger_exec(l, schema_sql, err);
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        rc = prepare(l, "SELECT v FROM meta WHERE k = 'format'", &st, err);
        if (rc == 0 && (sqlite3_step(st) != SQLITE_ROW ||
                        strcmp((const char *)sqlite3_column_text(st, 0), "agora.ledger/1") != 0))
            rc = agora__error_set(err, AGORA_EUNSUPPORTED,
                                  "%s has an unknown ledger format; use a matching agora", db_path);
        sqlite3_finalize(st);
    }
    if (rc == 0)
        rc =
            prepare(l, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", &l->st_last, err);
    if (rc == 0)
        rc = prepare(l, "SELECT seq FROM entries WHERE kind = 'invocation' AND invocation_id = ?1",
                     &l->st_find, err);
    if (rc == 0)
        rc = prepare(l, "INSERT OR IGNORE INTO charges(key, seq) VALUES (?1, ?2)", &l->st_charge,
                     err);
    if (rc == 0)
        rc = prepare(l,
                     "INSERT OR IGNORE INTO entries(" AGORA__LEDGER_COLUMNS ") VALUES (?1, ?2, ?3, "
                     "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
                     "?20, ?21, ?22, ?23, ?24, ?25, ?26)",
                     &l->st_insert, err);
    if (rc != 0) {
        agora__ledger_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

int agora__ledger_open(const char *home, const uint8_t *secret, agora__ledger **out,
                       agora__error *err)
{
    char path[4096];
    int rc = agora__home_path(home, AGORA__HOME_LEDGER, path, sizeof path, err);
    if (rc != 0)
        return rc;
    return agora__ledger_open_path(path, secret, out, err);
}

/* ---- validation of what the caller passes ---------------------------------------------- */

static int token_ok(const char *s, size_t max, const char *extra)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (extra == NULL ? (c >= 0x20 && c < 0x7f) : strchr(extra, c) != NULL);
        if (!ok)
            return 0;
    }
    return 1;
}

static int pricing_check(const agora__ledger_pricing *p, agora__error *err)
{
    if (p == NULL)
        return agora__error_set(err, AGORA_EINVAL, "no pricing given; pass the catalog entry");
    if (!token_ok(p->plugin_id, 128, "._-"))
        return agora__error_set(err, AGORA_EINVAL,
                                "pricing.plugin_id must be 1..128 of "
                                "[A-Za-z0-9._-]; pass the catalog entry's id");
    if (!token_ok(p->plugin_version, 64, "._+-"))
        return agora__error_set(err, AGORA_EINVAL,
                                "pricing.plugin_version must be 1..64 of "
                                "[A-Za-z0-9._+-]; pass the catalog entry's version");
    if (!token_ok(p->vendor, 128, NULL))
        return agora__error_set(err, AGORA_EINVAL,
                                "pricing.vendor must be 1..128 printable ASCII characters");
    if ((unsigned)p->model > AGORA__MODEL_SUBSCRIPTION)
        return agora__error_set(err, AGORA_EINVAL, "pricing.model is not a known pricing model");
    if (p->price_minor < 0 || p->price_minor > AGORA__LEDGER_MAX_PRICE)
        return agora__error_set(err, AGORA_EINVAL, "pricing.price_minor must be 0..10^12");
    if (strlen(p->currency) != 3 || p->currency[0] < 'A' || p->currency[0] > 'Z' ||
        p->currency[1] < 'A' || p->currency[1] > 'Z' || p->currency[2] < 'A' ||
        p->currency[2] > 'Z')
        return agora__error_set(err, AGORA_EINVAL,
                                "pricing.currency must be an ISO 4217 code such as EUR");
    if (p->vendor_share_bps > 10000)
        return agora__error_set(err, AGORA_EINVAL, "pricing.vendor_share_bps must be 0..10000");
    if (p->catalog_version > (uint64_t)INT64_MAX)
        return agora__error_set(err, AGORA_EINVAL, "pricing.catalog_version out of range");
    return 0;
}

static int64_t clamp_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- appending --------------------------------------------------------------------------- */

typedef struct chain_head {
    int64_t seq;
    char hash[65];
} chain_head;

static int read_head(agora__ledger *l, chain_head *h, agora__error *err)
{
    sqlite3_reset(l->st_last);
    int rc = sqlite3_step(l->st_last);
    if (rc == SQLITE_ROW) {
        h->seq = sqlite3_column_int64(l->st_last, 0);
        const unsigned char *t = sqlite3_column_text(l->st_last, 1);
        agora__strlcpy(h->hash, t ? (const char *)t : "", sizeof h->hash);
    } else if (rc == SQLITE_DONE) {
        h->seq = 0;
        memset(h->hash, '0', 64); /* genesis: 64 zeros */
        h->hash[64] = '\0';
    } else {
        sqlite3_reset(l->st_last);
        return agora__ledger_sql_error(l, err, "reading the chain head");
    }
    sqlite3_reset(l->st_last);
    return 0;
}

static int find_seq(agora__ledger *l, const char *id, int64_t *seq, agora__error *err)
{
    sqlite3_reset(l->st_find);
    sqlite3_bind_text(l->st_find, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(l->st_find);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(l->st_find, 0) : 0;
    sqlite3_reset(l->st_find);
    sqlite3_clear_bindings(l->st_find);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return agora__ledger_sql_error(l, err, "looking up an invocation");
    return 0;
}

int agora__ledger_seq_of(agora__ledger *l, const char *invocation_id, int64_t *seq,
                         agora__error *err)
{
    int rc = find_seq(l, invocation_id, seq, err);
    if (rc == 0 && *seq == 0)
        return agora__error_set(err, AGORA_EINVAL, "invocation id is not in the ledger");
    return rc;
}

static int insert_row(agora__ledger *l, chain_head *head, agora__ledger_row *r, agora__error *err)
{
    r->seq = head->seq + 1;
    r->prev_hash = head->hash;
    char hash[65];
    agora__ledger_row_hash(r, hash);
    sqlite3_stmt *st = l->st_insert;
    int c = 1;
    sqlite3_bind_int64(st, c++, r->seq);
    sqlite3_bind_text(st, c++, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c++, r->invocation_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, c++, r->recorded_ms);
    sqlite3_bind_text(st, c++, r->period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c++, r->plugin_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c++, r->plugin_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c++, r->vendor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, c++, r->catalog_version);
    sqlite3_bind_text(st, c++, r->model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, c++, r->price_minor);
    sqlite3_bind_text(st, c++, r->currency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, c++, r->vendor_share_bps);
    sqlite3_bind_text(st, c++, r->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, c++, r->billable);
    sqlite3_bind_int64(st, c++, r->units);
    sqlite3_bind_int64(st, c++, r->units_total);
    sqlite3_bind_int64(st, c++, r->amount_minor);
    sqlite3_bind_text(st, c++, r->keys_digest, -1, SQLITE_STATIC);
    if (r->corrects > 0)
        sqlite3_bind_int64(st, c++, r->corrects);
    else
        sqlite3_bind_null(st, c++);
    sqlite3_bind_text(st, c++, r->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, c++, r->wall_ms);
    sqlite3_bind_int64(st, c++, r->cpu_us);
    sqlite3_bind_int64(st, c++, r->peak_rss_kb);
    sqlite3_bind_text(st, c++, r->prev_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, c++, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(l->db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return agora__ledger_sql_error(l, err, "appending a row");
    if (changed != 1)
        return agora__error_set(err, AGORA_EINTERNAL,
                                "ledger append was ignored (duplicate invocation); retry");
    head->seq = r->seq;
    memcpy(head->hash, hash, sizeof hash);
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, 64);
}

/* Charge the outcome's billing keys not charged before; fills units and keys_digest. */
static int charge_keys(agora__ledger *l, const agora__ledger_outcome *o, const char *period,
                       int64_t seq, int64_t *units, char digest[65], agora__error *err)
{
    const agora__ledger_pricing *p = o->pricing;
    const char *model = agora__ledger_model_name(p->model);
    size_t n = p->model == AGORA__MODEL_SUBSCRIPTION ? 1 : o->n_units;
    char(*keys)[65] = n ? calloc(n, sizeof *keys) : NULL;
    if (n && keys == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    size_t fresh = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *unit = p->model == AGORA__MODEL_SUBSCRIPTION ? "" : o->units[i];
        crypto_generichash_state h;
        uint8_t k[32];
        crypto_generichash_init(&h, l->secret, 32, 32);
        static const char domain[] = "agora.billing/1";
        crypto_generichash_update(&h, (const uint8_t *)domain, sizeof domain); /* with NUL */
        crypto_generichash_update(&h, (const uint8_t *)p->plugin_id, strlen(p->plugin_id) + 1);
        crypto_generichash_update(&h, (const uint8_t *)model, strlen(model) + 1);
        crypto_generichash_update(&h, (const uint8_t *)unit, strlen(unit) + 1);
        crypto_generichash_update(&h, (const uint8_t *)period, strlen(period) + 1);
        crypto_generichash_final(&h, k, sizeof k);
        char hex[65];
        agora__hex(k, 32, hex);
        sqlite3_bind_text(l->st_charge, 1, hex, -1, SQLITE_STATIC);
        sqlite3_bind_int64(l->st_charge, 2, seq);
        int s = sqlite3_step(l->st_charge);
        int changed = sqlite3_changes(l->db);
        sqlite3_reset(l->st_charge);
        sqlite3_clear_bindings(l->st_charge);
        if (s != SQLITE_DONE)
            rc = agora__ledger_sql_error(l, err, "recording a billing key");
        else if (changed == 1)
            memcpy(keys[fresh++], hex, sizeof hex);
    }
    if (rc == 0) {
        qsort(keys, fresh, sizeof *keys, cmp_key);
        crypto_generichash_state h;
        crypto_generichash_init(&h, NULL, 0, 32);
        for (size_t i = 0; i < fresh; i++)
            crypto_generichash_update(&h, (const uint8_t *)keys[i], 64);
        uint8_t d[32];
        crypto_generichash_final(&h, d, sizeof d);
        agora__hex(d, 32, digest);
        *units = (int64_t)fresh;
    }
    free(keys);
    return rc;
}

static int status_ok(const char *s)
{
    return token_ok(s, 32, "-");
}

static int record_one(agora__ledger *l, chain_head *head, const agora__ledger_outcome *o,
                      int64_t recorded_ms, agora__ledger_receipt *rcpt, agora__error *err)
{
    agora__ledger_receipt local;
    if (rcpt == NULL)
        rcpt = &local;
    memset(rcpt, 0, sizeof *rcpt);
    char period[8];
    int rc = agora__ledger_id_period(o->invocation_id, period, err);
    if (rc != 0)
        return rc;
    if ((rc = pricing_check(o->pricing, err)) != 0)
        return rc;
    if (!status_ok(o->status))
        return agora__error_set(err, AGORA_EINVAL,
                                "outcome status must be \"ok\" or a failure classification");
    int billable = o->validated && strcmp(o->status, "ok") == 0;
    if (billable && o->pricing->model != AGORA__MODEL_SUBSCRIPTION) {
        if (o->n_units == 0 || o->n_units > AGORA__LEDGER_MAX_UNITS || o->units == NULL)
            return agora__error_set(err, AGORA_EINVAL,
                                    "a billable %s invocation needs 1..%d "
                                    "billing units (UIDs)",
                                    agora__ledger_model_name(o->pricing->model),
                                    AGORA__LEDGER_MAX_UNITS);
        for (size_t i = 0; i < o->n_units; i++)
            if (!token_ok(o->units[i], 64, "."))
                return agora__error_set(err, AGORA_EINVAL, "billing unit %zu is not a DICOM UID",
                                        i);
    }
    if (billable && !l->have_secret)
        return agora__error_set(err, AGORA_EINVAL,
                                "the ledger was opened without the clinic "
                                "secret; it cannot record billable work");
    int64_t existing = 0;
    if ((rc = find_seq(l, o->invocation_id, &existing, err)) != 0)
        return rc;
    if (existing != 0) {
        rcpt->seq = existing;
        rcpt->duplicate = 1;
        return 0;
    }
    const agora__ledger_pricing *p = o->pricing;
    agora__ledger_row r = {0};
    r.kind = "invocation";
    r.invocation_id = o->invocation_id;
    r.recorded_ms = recorded_ms;
    r.period = period;
    r.plugin_id = p->plugin_id;
    r.plugin_version = p->plugin_version;
    r.vendor = p->vendor;
    r.catalog_version = (int64_t)p->catalog_version;
    r.model = agora__ledger_model_name(p->model);
    r.price_minor = p->model == AGORA__MODEL_FREE ? 0 : p->price_minor;
    r.currency = p->currency;
    r.vendor_share_bps = p->vendor_share_bps;
    r.status = o->status;
    r.billable = billable;
    r.reason = "";
    r.wall_ms = clamp_u64(o->wall_ms);
    r.cpu_us = clamp_u64(o->cpu_us);
    r.peak_rss_kb = clamp_u64(o->peak_rss_kb);
    char digest[65];
    int64_t units = 0;
    if (billable) {
        r.units_total = p->model == AGORA__MODEL_SUBSCRIPTION ? 1 : (int64_t)o->n_units;
        rc = charge_keys(l, o, period, head->seq + 1, &units, digest, err);
        if (rc != 0)
            return rc;
    } else {
        agora__ledger_empty_digest(digest);
    }
    r.units = units;
    r.keys_digest = digest;
    /* units <= 10^5 and price <= 10^12: the product fits in int64. */
    r.amount_minor = units * r.price_minor;
    if ((rc = insert_row(l, head, &r, err)) != 0)
        return rc;
    rcpt->seq = r.seq;
    rcpt->units = units;
    rcpt->amount_minor = r.amount_minor;
    return 0;
}

int agora__ledger_record_batch(agora__ledger *l, const agora__ledger_outcome *o, size_t n,
                               agora__ledger_receipt *receipts, agora__error *err)
{
    if (n == 0)
        return 0;
    if (n > AGORA__LEDGER_MAX_BATCH)
        return agora__error_set(err, AGORA_EINVAL,
                                "batch of %zu invocations is more than the "
                                "%d one commit may hold; split it",
                                n, AGORA__LEDGER_MAX_BATCH);
    /* IMMEDIATE: take the write lock now so the chain head read below stays the head. */
    int rc = agora__ledger_exec(l, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    chain_head head;
    rc = read_head(l, &head, err);
    int64_t t = now_ms();
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = record_one(l, &head, &o[i], t, receipts ? &receipts[i] : NULL, err);
        if (rc != 0)
            agora__error_prefix(err, "invocation %zu of the batch", i);
    }
    if (rc == 0)
        rc = agora__ledger_exec(l, "COMMIT", err);
    if (rc != 0)
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int agora__ledger_record(agora__ledger *l, const agora__ledger_outcome *o,
                         agora__ledger_receipt *receipt, agora__error *err)
{
    return agora__ledger_record_batch(l, o, 1, receipt, err);
}

int agora__ledger_record_with(agora__ledger *l, const agora__ledger_outcome *o,
                              int (*in_txn)(void *arg, struct sqlite3 *db, agora__error *err),
                              void *arg, agora__ledger_receipt *receipt, agora__error *err)
{
    if (in_txn == NULL)
        return agora__error_set(err, AGORA_EINVAL, "ledger: record_with needs a callback");
    int rc = agora__ledger_exec(l, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    chain_head head;
    rc = read_head(l, &head, err);
    if (rc == 0)
        rc = record_one(l, &head, o, now_ms(), receipt, err);
    if (rc == 0) {
        rc = in_txn(arg, l->db, err);
        /* A callback that failed without saying why must still fail the append. */
        if (rc > 0)
            rc = agora__error_set(err, AGORA_EINTERNAL,
                                  "ledger: the work committed with the row failed");
    }
    /* The one COMMIT of the row and the callback's writes: both or neither survive a crash. */
    if (rc == 0)
        rc = agora__ledger_exec(l, "COMMIT", err);
    if (rc != 0)
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int agora__ledger_correct(agora__ledger *l, const char *invocation_id, int64_t amount_minor,
                          const char *reason, int64_t *seq_out, agora__error *err)
{
    if (!token_ok(reason, 200, NULL))
        return agora__error_set(err, AGORA_EINVAL,
                                "correction reason must be 1..200 printable ASCII characters");
    if (amount_minor < -AGORA__LEDGER_MAX_PRICE * AGORA__LEDGER_MAX_UNITS ||
        amount_minor > AGORA__LEDGER_MAX_PRICE * AGORA__LEDGER_MAX_UNITS)
        return agora__error_set(err, AGORA_EINVAL, "correction amount out of range");
    int rc = agora__ledger_exec(l, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(l->db,
                            "SELECT " AGORA__LEDGER_COLUMNS " FROM entries WHERE kind = "
                            "'invocation' AND invocation_id = ?1",
                            -1, &st, NULL) == SQLITE_OK
             ? 0
             : agora__ledger_sql_error(l, err, "preparing a statement");
    chain_head head;
    if (rc == 0)
        rc = read_head(l, &head, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, invocation_id, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "invocation id is not in the ledger; "
                                  "only recorded invocations can be corrected");
        else if (s != SQLITE_ROW)
            rc = agora__ledger_sql_error(l, err, "reading the corrected row");
    }
    if (rc == 0) {
        agora__ledger_row orig, r;
        const char *ohash;
        agora__ledger_row_read(st, &orig, &ohash);
        char period[8];
        agora__ledger_period_now(period);
        r = orig;
        r.kind = "correction";
        r.recorded_ms = now_ms();
        r.period = period;
        r.status = "correction";
        r.billable = 0;
        r.units = 0;
        r.units_total = 0;
        r.amount_minor = amount_minor;
        char digest[65];
        agora__ledger_empty_digest(digest);
        r.keys_digest = digest;
        r.corrects = orig.seq;
        r.reason = reason;
        r.wall_ms = r.cpu_us = r.peak_rss_kb = 0;
        rc = insert_row(l, &head, &r, err);
        if (rc == 0 && seq_out)
            *seq_out = r.seq;
    }
    sqlite3_finalize(st);
    if (rc == 0)
        rc = agora__ledger_exec(l, "COMMIT", err);
    if (rc != 0)
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
