/*
 * Walking the chain: verification (every row's hash, its link to the predecessor, contiguous
 * seq, and the billing keys each row charged) and export as JSON lines.
 */
#include <sodium.h>
#include <string.h>

#include "ledger_private.h"

typedef struct charge_cursor {
    sqlite3_stmt *st;
    int has;     /* st is on a row */
    int64_t seq; /* that row's seq */
} charge_cursor;

static int cursor_step(agora__ledger *l, charge_cursor *c, agora__error *err)
{
    int s = sqlite3_step(c->st);
    if (s == SQLITE_ROW) {
        c->has = 1;
        c->seq = sqlite3_column_int64(c->st, 0);
        return 0;
    }
    c->has = 0;
    return s == SQLITE_DONE ? 0 : agora__ledger_sql_error(l, err, "reading billing keys");
}

static int bad(agora__error *err, int64_t *bad_seq, int64_t seq, const char *id, const char *what)
{
    *bad_seq = seq;
    return agora__error_set(err, AGORA_EINTERNAL,
                            "ledger row seq %lld (invocation %s) %s; the ledger was modified "
                            "outside agora: restore it from a backup or export",
                            (long long)seq, id, what);
}

int agora__ledger_verify(agora__ledger *l, int64_t *bad_seq, int64_t *rows_out, agora__error *err)
{
    int64_t dummy;
    if (bad_seq == NULL)
        bad_seq = &dummy;
    *bad_seq = 0;
    if (rows_out)
        *rows_out = 0;
    sqlite3_stmt *st = NULL;
    charge_cursor cc = {0};
    int rc = 0;
    /* One read transaction: a consistent snapshot even while others append. */
    if ((rc = agora__ledger_exec(l, "BEGIN", err)) != 0)
        return rc;
    if (sqlite3_prepare_v2(l->db, "SELECT " AGORA__LEDGER_COLUMNS " FROM entries ORDER BY seq", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, "SELECT seq, key FROM charges ORDER BY seq, key", -1, &cc.st,
                           NULL) != SQLITE_OK)
        rc = agora__ledger_sql_error(l, err, "preparing verification");
    if (rc == 0)
        rc = cursor_step(l, &cc, err);
    char prev[65];
    memset(prev, '0', 64);
    prev[64] = '\0';
    int64_t expect = 1, rows = 0;
    while (rc == 0) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = agora__ledger_sql_error(l, err, "reading the ledger");
            break;
        }
        agora__ledger_row r;
        const char *stored;
        agora__ledger_row_read(st, &r, &stored);
        char hash[65];
        agora__ledger_row_hash(&r, hash);
        if (cc.has && cc.seq < r.seq) {
            rc = bad(err, bad_seq, cc.seq, "-", "is missing but charged a billing key");
            break;
        }
        if (r.seq != expect) {
            rc = bad(err, bad_seq, expect, "-", "is missing (the sequence has a gap)");
            break;
        }
        if (strcmp(r.prev_hash, prev) != 0) {
            rc = bad(err, bad_seq, r.seq, r.invocation_id,
                     "does not link to its predecessor (prev_hash differs)");
            break;
        }
        if (strcmp(hash, stored) != 0) {
            rc = bad(err, bad_seq, r.seq, r.invocation_id,
                     "does not match its hash (a column was edited)");
            break;
        }
        /* The billing keys this row charged must be exactly those its digest names. */
        crypto_generichash_state h;
        crypto_generichash_init(&h, NULL, 0, 32);
        int64_t nkeys = 0;
        while (rc == 0 && cc.has && cc.seq == r.seq) {
            const unsigned char *k = sqlite3_column_text(cc.st, 1);
            size_t kl = k ? strlen((const char *)k) : 0;
            crypto_generichash_update(&h, k ? k : (const unsigned char *)"", kl);
            nkeys++;
            rc = cursor_step(l, &cc, err);
        }
        if (rc != 0)
            break;
        uint8_t d[32];
        char dhex[65];
        crypto_generichash_final(&h, d, sizeof d);
        agora__hex(d, 32, dhex);
        if (strcmp(dhex, r.keys_digest) != 0 || nkeys != r.units) {
            rc = bad(err, bad_seq, r.seq, r.invocation_id,
                     "does not match the billing keys it charged (charges table edited)");
            break;
        }
        int kind_ok = strcmp(r.kind, "invocation") == 0 || strcmp(r.kind, "correction") == 0;
        if (!kind_ok ||
            (strcmp(r.kind, "invocation") == 0 && r.amount_minor != r.units * r.price_minor)) {
            rc = bad(err, bad_seq, r.seq, r.invocation_id, "is inconsistent (kind or amount)");
            break;
        }
        memcpy(prev, hash, sizeof prev);
        expect++;
        rows++;
    }
    if (rc == 0 && cc.has)
        rc = bad(err, bad_seq, cc.seq, "-", "is missing but charged a billing key");
    sqlite3_finalize(st);
    sqlite3_finalize(cc.st);
    sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
    if (rows_out)
        *rows_out = rows;
    return rc;
}

int agora__ledger_rows(agora__ledger *l, int64_t first, int64_t last, agora__ledger_row_fn fn,
                       void *ctx, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT " AGORA__LEDGER_COLUMNS
                           " FROM entries WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return agora__ledger_sql_error(l, err, "preparing the export");
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, last);
    int rc = 0;
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = agora__ledger_sql_error(l, err, "reading the ledger");
            break;
        }
        agora__ledger_row r;
        const char *hash;
        agora__ledger_row_read(st, &r, &hash);
        json_t *o = agora__ledger_row_json(&r, hash);
        if (o == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory exporting the ledger");
            break;
        }
        rc = fn(o, ctx);
        json_decref(o);
        if (rc != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

int agora__ledger_export(agora__ledger *l, int64_t since_seq, agora__ledger_row_fn fn, void *ctx,
                         agora__error *err)
{
    if (since_seq == INT64_MAX)
        return 0;
    return agora__ledger_rows(l, since_seq + 1, INT64_MAX, fn, ctx, err);
}
