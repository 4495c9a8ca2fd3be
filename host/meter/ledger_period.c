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
#include <stdlib.h>
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

/* Growing output buffer; the first `reserve` bytes stay free for the signature line. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
} outbuf;

static int out_put(outbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 65536;
        while (nc < b->len + n + 1)
            nc *= 2;
        if (nc > AGORA__EXPORT_MAX + 65536)
            return AGORA_ELIMIT;
        char *g = realloc(b->p, nc);
        if (g == NULL)
            return AGORA_ENOMEM;
        b->p = g;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Append o as one compact line (sorted keys; JSON strings escape newlines). */
static int out_line(outbuf *b, const json_t *o);

/* The export body's row writer (agora__ledger_rows callback). */
typedef struct row_sink {
    outbuf *body;
    int64_t written;
    agora__error *err;
} row_sink;

static int sink_row(const json_t *row, void *ctx)
{
    row_sink *s = ctx;
    int w = out_line(s->body, row);
    if (w != 0)
        return agora__error_set(s->err, w, "the export does not fit in %zu bytes or memory",
                                AGORA__EXPORT_MAX);
    s->written++;
    return 0;
}

static int out_line(outbuf *b, const json_t *o)
{
    char *t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (t == NULL)
        return AGORA_ENOMEM;
    int rc = out_put(b, t, strlen(t));
    free(t);
    return rc == 0 ? out_put(b, "\n", 1) : rc;
}

int agora__ledger_period_export(agora__ledger *l, const char *period, const char *key_id,
                                char **out, size_t *out_len, agora__export_info *summary,
                                agora__error *err)
{
    *out = NULL;
    *out_len = 0;
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
    char head_hash[65], prev_hash[65] = "", seg_head[65] = "";
    rc = period_bounds(l, period, &first, &last, &count, err);
    if (rc == 0)
        rc = ledger_head(l, &head_seq, head_hash, err);
    last = head_seq; /* the segment runs to the chain head */
    if (rc == 0 && count > 0 && last - first + 1 > AGORA__EXPORT_MAX_ROWS)
        rc = agora__error_set(err, AGORA_ELIMIT,
                              "period %s spans %lld rows, more than an export holds (%d)", period,
                              (long long)(last - first + 1), AGORA__EXPORT_MAX_ROWS);
    /* The header is known before the rows (the segment ends at the head; its link is the first
     * row's prev_hash), so header and rows go straight into one buffer, a line each: memory is
     * the file, not a JSON tree of it. */
    sqlite3_stmt *st = NULL;
    if (rc == 0 && count > 0) {
        if (sqlite3_prepare_v2(l->db, "SELECT prev_hash FROM entries WHERE seq = ?1", -1, &st,
                               NULL) != SQLITE_OK)
            rc = agora__ledger_sql_error(l, err, "preparing the export");
        else {
            sqlite3_bind_int64(st, 1, first);
            const unsigned char *h =
                sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
            if (h == NULL)
                rc = agora__ledger_sql_error(l, err, "reading the period's first row");
            else
                agora__strlcpy(prev_hash, (const char *)h, sizeof prev_hash);
        }
        sqlite3_finalize(st);
        st = NULL;
        agora__strlcpy(seg_head, head_hash, sizeof seg_head);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t n = count > 0 ? last - first + 1 : 0;
    json_t *hdr =
        rc != 0
            ? NULL
            : json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:{s:I,s:s}}", "format",
                        AGORA__EXPORT_FORMAT, "period", period, "clinic_key_id", key_id,
                        "exported_ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                        "first_seq", (json_int_t)(count > 0 ? first : 0), "last_seq",
                        (json_int_t)(count > 0 ? last : 0), "rows", (json_int_t)n, "rows_in_period",
                        (json_int_t)count, "prev_hash", prev_hash, "head", seg_head, "ledger_head",
                        "seq", (json_int_t)head_seq, "hash", head_hash);
    outbuf body = {0};
    if (rc == 0 && hdr == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory exporting the ledger");
    /* The signature line is fixed-length: reserve it so the caller signs in place. */
    char blank[AGORA__EXPORT_SIG_LINE];
    memset(blank, ' ', sizeof blank);
    if (rc == 0 && (out_put(&body, blank, sizeof blank) != 0 || out_line(&body, hdr) != 0))
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory exporting the ledger");
    json_decref(hdr);
    row_sink sink = {&body, 0, err};
    if (rc == 0 && count > 0)
        rc = agora__ledger_rows(l, first, last, sink_row, &sink, err);
    int64_t written = sink.written;
    sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
    /* One read transaction: the rows are those the header announced. */
    if (rc == 0 && written != n)
        rc = agora__error_set(err, AGORA_EINTERNAL,
                              "the ledger changed its rows while exporting; export again");
    if (rc != 0) {
        free(body.p);
        return rc;
    }
    if (summary != NULL) {
        memset(summary, 0, sizeof *summary);
        agora__strlcpy(summary->period, period, sizeof summary->period);
        agora__strlcpy(summary->clinic_key_id, key_id, sizeof summary->clinic_key_id);
        summary->first_seq = count > 0 ? first : 0;
        summary->last_seq = count > 0 ? last : 0;
        summary->rows_in_period = count;
        summary->n_rows = (size_t)n;
        agora__strlcpy(summary->prev_hash, prev_hash, sizeof summary->prev_hash);
        agora__strlcpy(summary->head, seg_head, sizeof summary->head);
    }
    *out = body.p;
    *out_len = body.len;
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

static int str_copy(const json_t *o, const char *key, char *dst, size_t size)
{
    const char *v = str_field(o, key, size - 1);
    if (v == NULL)
        return -1;
    agora__strlcpy(dst, v, size);
    return 0;
}

static int parse_header(const char *line, size_t len, const char *period, agora__export_info *info,
                        agora__error *err)
{
    json_t *h = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    const char *fmt = str_field(h, "format", 64);
    int rc = 0;
    int64_t n = 0;
    if (!json_is_object(h) || fmt == NULL || strcmp(fmt, AGORA__EXPORT_FORMAT) != 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "not a ledger export (format is not " AGORA__EXPORT_FORMAT
                              "); make one with agora ledger export --period P -o FILE");
    else if (str_copy(h, "period", info->period, sizeof info->period) != 0 ||
             !agora__ledger_period_valid(info->period))
        rc = agora__error_set(err, AGORA_EINVAL, "the export names no valid period");
    else if (strcmp(info->period, period) != 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "wrong period: the export is for %s, not %s; ask the clinic for "
                              "agora ledger export --period %s",
                              info->period, period, period);
    else if (str_copy(h, "clinic_key_id", info->clinic_key_id, sizeof info->clinic_key_id) ||
             str_copy(h, "prev_hash", info->prev_hash, sizeof info->prev_hash) ||
             str_copy(h, "head", info->head, sizeof info->head) ||
             int_field(h, "first_seq", &info->first_seq) ||
             int_field(h, "last_seq", &info->last_seq) ||
             int_field(h, "rows_in_period", &info->rows_in_period) || int_field(h, "rows", &n))
        rc = agora__error_set(err, AGORA_EINVAL, "the export lacks its chain links or counts");
    else if (n < 0 || n > AGORA__EXPORT_MAX_ROWS)
        rc = agora__error_set(err, AGORA_ELIMIT, "the export announces %lld rows, at most %d",
                              (long long)n, AGORA__EXPORT_MAX_ROWS);
    else if (n == 0 && (info->first_seq != 0 || info->last_seq != 0 || info->rows_in_period != 0))
        rc = agora__error_set(err, AGORA_EINVAL,
                              "broken chain: the export announces rows it does not hold");
    else if (n > 0 && (info->first_seq < 1 || info->last_seq < info->first_seq ||
                       info->last_seq - info->first_seq + 1 != n))
        rc = agora__error_set(err, AGORA_EINVAL,
                              "broken chain: the export announces seq %lld..%lld but %lld rows",
                              (long long)info->first_seq, (long long)info->last_seq, (long long)n);
    info->n_rows = (size_t)n;
    json_decref(h);
    return rc;
}

int agora__ledger_export_check(const uint8_t *body, size_t len, const char *period,
                               agora__export_info *info, agora__export_row_fn fn, void *ctx,
                               agora__error *err)
{
    memset(info, 0, sizeof *info);
    const char *p = (const char *)body, *end = p + len;
    const char *nl = memchr(p, '\n', len < AGORA__EXPORT_LINE_MAX ? len : AGORA__EXPORT_LINE_MAX);
    if (nl == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "not a ledger export (no header line); make one with agora "
                                "ledger export --period P -o FILE");
    int rc = parse_header(p, (size_t)(nl - p), period, info, err);
    if (rc != 0)
        return rc;
    p = nl + 1;
    char want_prev[65];
    agora__strlcpy(want_prev, info->prev_hash, sizeof want_prev);
    int64_t counted = 0;
    for (size_t i = 0; i < info->n_rows; i++) {
        int64_t seq = info->first_seq + (int64_t)i;
        size_t left = (size_t)(end - p);
        nl = memchr(p, '\n', left < AGORA__EXPORT_LINE_MAX ? left : AGORA__EXPORT_LINE_MAX);
        if (nl == NULL)
            return bad_row(err, "broken chain", seq, "is missing or longer than a row can be");
        json_t *row = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, NULL);
        p = nl + 1;
        agora__ledger_row r;
        const char *stored = NULL; /* set by row_from_json; NULL keeps -O2 -Wmaybe-uninitialized quiet */
        char hash[65];
        if (row == NULL || row_from_json(row, &r, &stored) != 0)
            rc = bad_row(err, "malformed row", seq,
                         "is not a ledger row (missing or mistyped "
                         "fields)");
        else if (r.seq != seq)
            rc = bad_row(err, "broken chain", r.seq, "is out of sequence");
        else if (strcmp(r.prev_hash, want_prev) != 0)
            rc = bad_row(err, "broken chain", r.seq, "does not link to its predecessor");
        if (rc == 0) {
            agora__ledger_row_hash(&r, hash);
            int is_inv = strcmp(r.kind, "invocation") == 0;
            if (strcmp(hash, stored) != 0)
                rc = bad_row(err, "edited row", r.seq,
                             "does not match its hash (a field was changed after it was "
                             "recorded)");
            else if ((!is_inv && strcmp(r.kind, "correction") != 0) ||
                     (is_inv && r.amount_minor != r.units * r.price_minor))
                rc = bad_row(err, "inconsistent row", r.seq,
                             "has an unknown kind or a wrong amount");
            else if (i == 0 && strcmp(r.period, info->period) != 0)
                rc = bad_row(err, "wrong period", r.seq,
                             "starts the segment but is of another period");
        }
        if (rc == 0) {
            counted += strcmp(r.period, info->period) == 0;
            agora__strlcpy(want_prev, stored, sizeof want_prev);
            agora__export_row x = {r.seq,    r.kind,        r.invocation_id,
                                   r.period, r.plugin_id,   r.plugin_version,
                                   r.vendor, r.model,       r.currency,
                                   stored,   r.price_minor, r.vendor_share_bps,
                                   r.units,  r.amount_minor};
            if (fn != NULL)
                rc = fn(&x, ctx, err);
        }
        json_decref(row);
        if (rc != 0)
            return rc;
    }
    if (p != end)
        return agora__error_set(err, AGORA_EINVAL,
                                "the export has bytes after its %zu announced rows; refused",
                                info->n_rows);
    if (info->n_rows > 0 && strcmp(want_prev, info->head) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "broken chain: the export's head is not the hash of its last row");
    if (counted != info->rows_in_period)
        return agora__error_set(err, AGORA_EINVAL,
                                "the export announces %lld rows of %s but holds %lld",
                                (long long)info->rows_in_period, info->period, (long long)counted);
    return 0;
}
