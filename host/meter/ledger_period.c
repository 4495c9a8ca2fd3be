/*
 * A period's ledger export (docs/results-and-billing.md, "Ledger exports"): the contiguous
 * segment of the hash chain from the period's first row to the chain head at export time, with
 * the link to the rows before it (prev_hash of the first row), so whoever receives it can
 * recompute every row's hash and check every link without the clinic's database. Rows of other
 * periods inside the segment (later months, or an invocation minted late in a month and
 * recorded early in the next) are there for the chain and are not counted. Ending at the head
 * means every export contains the head of any export made before it from the same or a later
 * start, which is how the operator checks that the chain was not rewritten in between.
 *
 * Signing is the caller's (cmd_meter.c, with the clinic key from host/trust); this file builds
 * the body and checks a received one.
 */
#include <string.h>
#include <time.h>

#include "ledger_period.h"
#include "ledger_private.h"

static const char zero_hash[] = "0000000000000000000000000000000000000000000000000000000000000000";

static int period_bounds(agora__ledger *l, const char *period, int64_t *first, int64_t *last,
                         int64_t *count, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT min(seq), max(seq), count(*) FROM entries WHERE period = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return agora__ledger_sql_error(l, err, "preparing the export");
    sqlite3_bind_text(st, 1, period, -1, SQLITE_TRANSIENT);
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = agora__ledger_sql_error(l, err, "reading the period's rows");
    } else {
        *first = sqlite3_column_int64(st, 0);
        *last = sqlite3_column_int64(st, 1);
        *count = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return rc;
}

static int ledger_head(agora__ledger *l, int64_t *seq, char hash[65], agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", -1,
                           &st, NULL) != SQLITE_OK)
        return agora__ledger_sql_error(l, err, "preparing the export");
    int s = sqlite3_step(st), rc = 0;
    if (s == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        const unsigned char *h = sqlite3_column_text(st, 1);
        agora__strlcpy(hash, h ? (const char *)h : "", 65);
    } else if (s == SQLITE_DONE) {
        *seq = 0;
        agora__strlcpy(hash, zero_hash, 65);
    } else {
        rc = agora__ledger_sql_error(l, err, "reading the chain head");
    }
    sqlite3_finalize(st);
    return rc;
}

int agora__ledger_period_export(agora__ledger *l, const char *period, json_t **out,
                                agora__error *err)
{
    *out = NULL;
    if (!agora__ledger_period_valid(period))
        return agora__error_set(err, AGORA_EINVAL, "period must be YYYY-MM, e.g. 2026-11");
    /* Never sign a chain that does not verify: the operator would refuse it anyway, and the
     * clinic must learn first. */
    int64_t bad = 0, total = 0;
    int rc = agora__ledger_verify(l, &bad, &total, err);
    if (rc != 0)
        return agora__error_prefix(err, "not exporting: run agora ledger verify");
    if ((rc = agora__ledger_exec(l, "BEGIN", err)) != 0)
        return rc;
    int64_t first = 0, last = 0, count = 0, head_seq = 0;
    char head_hash[65];
    rc = period_bounds(l, period, &first, &last, &count, err);
    if (rc == 0)
        rc = ledger_head(l, &head_seq, head_hash, err);
    last = head_seq; /* the segment runs to the chain head */
    if (rc == 0 && count > 0 && last - first + 1 > AGORA__EXPORT_MAX_ROWS)
        rc = agora__error_set(err, AGORA_ELIMIT,
                              "period %s spans %lld rows, more than an export holds (%d)", period,
                              (long long)(last - first + 1), AGORA__EXPORT_MAX_ROWS);
    json_t *rows = json_array();
    sqlite3_stmt *st = NULL;
    if (rc == 0 && rows == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (rc == 0 && count > 0 &&
        sqlite3_prepare_v2(l->db,
                           "SELECT " AGORA__LEDGER_COLUMNS
                           " FROM entries WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        rc = agora__ledger_sql_error(l, err, "preparing the export");
    char prev_hash[65] = "", seg_head[65] = "";
    if (rc == 0 && count > 0) {
        sqlite3_bind_int64(st, 1, first);
        sqlite3_bind_int64(st, 2, last);
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
            if (r.seq == first)
                agora__strlcpy(prev_hash, r.prev_hash, sizeof prev_hash);
            agora__strlcpy(seg_head, hash, sizeof seg_head);
            json_t *o = agora__ledger_row_json(&r, hash);
            if (o == NULL || json_array_append_new(rows, o) != 0) {
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory exporting the ledger");
                break;
            }
        }
    }
    sqlite3_finalize(st);
    sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *doc = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:{s:I,s:s},s:o}", "format",
                            AGORA__EXPORT_FORMAT, "period", period, "exported_ms",
                            (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "first_seq",
                            (json_int_t)(count > 0 ? first : 0), "last_seq",
                            (json_int_t)(count > 0 ? last : 0), "rows_in_period", (json_int_t)count,
                            "prev_hash", prev_hash, "head", seg_head, "ledger_head", "seq",
                            (json_int_t)head_seq, "hash", head_hash, "rows", rows);
    if (doc == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory exporting the ledger");
    *out = doc;
    return 0;
}

/* ---- checking a received export ----------------------------------------------------------- */

/* "<what> row seq N of the export <why>". */
static int bad_row(agora__error *err, const char *what, int64_t seq, const char *why)
{
    return agora__error_set(err, AGORA_EINVAL, "%s: row seq %lld of the export %s", what,
                            (long long)seq, why);
}

static const char *str_field(const json_t *o, const char *key, size_t max)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

static int int_field(const json_t *o, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Rebuild the hashed row from its export JSON (strings borrowed from row). */
static int row_from_json(const json_t *row, agora__ledger_row *r, const char **hash)
{
    memset(r, 0, sizeof *r);
    const json_t *plugin = json_object_get(row, "plugin");
    const json_t *pricing = json_object_get(row, "pricing");
    const json_t *metrics = json_object_get(row, "metrics");
    const json_t *billable = json_object_get(row, "billable");
    if (!json_is_object(row) || !json_is_object(plugin) || !json_is_object(pricing) ||
        !json_is_object(metrics) || !json_is_boolean(billable))
        return -1;
    r->kind = str_field(row, "kind", 16);
    r->invocation_id = str_field(row, "invocation_id", 64);
    r->period = str_field(row, "period", 7);
    r->plugin_id = str_field(plugin, "id", 128);
    r->plugin_version = str_field(plugin, "version", 64);
    r->vendor = str_field(row, "vendor", 128);
    r->model = str_field(pricing, "model", 16);
    r->currency = str_field(pricing, "currency", 3);
    r->status = str_field(row, "status", 64);
    r->keys_digest = str_field(row, "keys_digest", 64);
    r->reason = str_field(row, "reason", 512);
    r->prev_hash = str_field(row, "prev_hash", 64);
    *hash = str_field(row, "hash", 64);
    r->billable = json_is_true(billable);
    if (!r->kind || !r->invocation_id || !r->period || !r->plugin_id || !r->plugin_version ||
        !r->vendor || !r->model || !r->currency || !r->status || !r->keys_digest || !r->reason ||
        !r->prev_hash || !*hash)
        return -1;
    if (int_field(row, "seq", &r->seq) || int_field(row, "recorded_ms", &r->recorded_ms) ||
        int_field(row, "catalog_version", &r->catalog_version) ||
        int_field(pricing, "price_minor", &r->price_minor) ||
        int_field(pricing, "vendor_share_bps", &r->vendor_share_bps) ||
        int_field(row, "units", &r->units) || int_field(row, "units_total", &r->units_total) ||
        int_field(row, "amount_minor", &r->amount_minor) ||
        int_field(metrics, "wall_ms", &r->wall_ms) || int_field(metrics, "cpu_us", &r->cpu_us) ||
        int_field(metrics, "peak_rss_kb", &r->peak_rss_kb))
        return -1;
    if (json_object_get(row, "corrects") != NULL &&
        (int_field(row, "corrects", &r->corrects) != 0 || r->corrects <= 0))
        return -1;
    return 0;
}

int agora__ledger_export_check(const json_t *doc, const char *period, agora__export_info *info,
                               agora__error *err)
{
    memset(info, 0, sizeof *info);
    const char *fmt = str_field(doc, "format", 64);
    if (!json_is_object(doc) || fmt == NULL || strcmp(fmt, AGORA__EXPORT_FORMAT) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not a ledger export (format is not " AGORA__EXPORT_FORMAT
                                "); make one with agora ledger export --period P -o FILE");
    const char *p = str_field(doc, "period", 7);
    if (p == NULL || !agora__ledger_period_valid(p))
        return agora__error_set(err, AGORA_EINVAL, "the export names no valid period");
    if (strcmp(p, period) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "wrong period: the export is for %s, not %s; ask the clinic for "
                                "agora ledger export --period %s",
                                p, period, period);
    const json_t *rows = json_object_get(doc, "rows");
    const char *prev = str_field(doc, "prev_hash", 64), *head = str_field(doc, "head", 64);
    int64_t first, last, in_period;
    if (!json_is_array(rows) || prev == NULL || head == NULL ||
        int_field(doc, "first_seq", &first) || int_field(doc, "last_seq", &last) ||
        int_field(doc, "rows_in_period", &in_period))
        return agora__error_set(err, AGORA_EINVAL, "the export lacks its rows or chain links");
    size_t n = json_array_size(rows);
    if (n > AGORA__EXPORT_MAX_ROWS)
        return agora__error_set(err, AGORA_ELIMIT, "the export holds more than %d rows",
                                AGORA__EXPORT_MAX_ROWS);
    if (n == 0) {
        if (in_period != 0 || first != 0 || last != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "broken chain: the export announces rows it does not hold");
        info->period = p;
        return 0;
    }
    if (first < 1 || last < first || (uint64_t)(last - first + 1) != n)
        return agora__error_set(err, AGORA_EINVAL,
                                "broken chain: the export announces seq %lld..%lld but holds %zu "
                                "rows",
                                (long long)first, (long long)last, n);
    const char *want_prev = prev;
    int64_t counted = 0;
    for (size_t i = 0; i < n; i++) {
        agora__ledger_row r;
        const char *stored;
        const json_t *row = json_array_get(rows, i);
        if (row_from_json(row, &r, &stored) != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "row %zu of the export is malformed (missing or mistyped "
                                    "fields)",
                                    i + 1);
        if (r.seq != first + (int64_t)i)
            return bad_row(err, "broken chain", r.seq, "is out of sequence");
        if (strcmp(r.prev_hash, want_prev) != 0)
            return bad_row(err, "broken chain", r.seq, "does not link to its predecessor");
        char hash[65];
        agora__ledger_row_hash(&r, hash);
        if (strcmp(hash, stored) != 0)
            return bad_row(err, "edited row", r.seq,
                           "does not match its hash (a field was changed after it was recorded)");
        int is_inv = strcmp(r.kind, "invocation") == 0;
        if ((!is_inv && strcmp(r.kind, "correction") != 0) ||
            (is_inv && r.amount_minor != r.units * r.price_minor))
            return bad_row(err, "inconsistent row", r.seq, "has an unknown kind or a wrong amount");
        if (i == 0 && strcmp(r.period, p) != 0)
            return bad_row(err, "wrong period", r.seq,
                           "starts the segment but is of another period");
        if (strcmp(r.period, p) == 0)
            counted++;
        want_prev = stored;
    }
    if (strcmp(want_prev, head) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "broken chain: the export's head is not the hash of its last row");
    if (counted != in_period)
        return agora__error_set(err, AGORA_EINVAL,
                                "the export announces %lld rows of %s but holds %lld",
                                (long long)in_period, p, (long long)counted);
    info->period = p;
    info->first_seq = first;
    info->last_seq = last;
    info->prev_hash = prev;
    info->head = head;
    info->rows = rows;
    return 0;
}

int agora__ledger_export_row(const agora__export_info *info, size_t i, agora__export_row *out)
{
    agora__ledger_row r;
    const char *hash;
    if (info->rows == NULL || i >= json_array_size(info->rows) ||
        row_from_json(json_array_get(info->rows, i), &r, &hash) != 0)
        return AGORA_EINVAL;
    out->seq = r.seq;
    out->kind = r.kind;
    out->invocation_id = r.invocation_id;
    out->period = r.period;
    out->plugin_id = r.plugin_id;
    out->plugin_version = r.plugin_version;
    out->vendor = r.vendor;
    out->model = r.model;
    out->price_minor = r.price_minor;
    out->currency = r.currency;
    out->vendor_share_bps = r.vendor_share_bps;
    out->units = r.units;
    out->amount_minor = r.amount_minor;
    out->hash = hash;
    return 0;
}
