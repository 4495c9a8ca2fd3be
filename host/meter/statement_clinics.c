/*
 * The operator's statement across clinics (`agora statement --from EXPORT... --catalog DIR`).
 * Every export is refused or accepted as a whole, before anything is printed:
 *   1. its signature (over the exact body bytes) is a registered clinic's, checked before the
 *      body is parsed;
 *   2. its chain verifies on its own (agora__ledger_export_check) and is of the period asked;
 *   3. it continues the chain the operator accepted from that clinic before: the operator keeps,
 *      per clinic and period, the segment it accepted (CATALOG/clinics/NAME.accepted.json:
 *      first and last seq, the link before it, its head). An export runs from its period's
 *      first row to the clinic's chain head, so it contains the head (or the link) of every
 *      segment accepted before that it overlaps, and those rows must be the same; it must
 *      overlap or touch at least one (no gap of rows nobody saw); a later export of an accepted
 *      period must extend it; the same export accepted again is fine (a re-print);
 *   4. no file is given twice, no clinic twice, no row or invocation appears in two exports;
 *   5. every row of the period names a build the signed catalog holds, at the catalog's price,
 *      currency, vendor share and vendor.
 * Only when every export passes are the accepted segments recorded.
 *
 * Rounding: each clinic's line is rounded by the one rule (ledger.h), exactly as the clinic's
 * own `agora statement` does; a line across clinics is the sum of the clinics' lines, so the
 * operator's statement equals the sum of the clinics' statements, line by line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger_period.h"
#include "ledger_private.h"
#include "statement_clinics.h"
#include "trust.h"

#define STATE_FORMAT "agora.clinic-accepted/1"
#define STATE_MAX    ((size_t)16 * 1024 * 1024)
#define PROBES_MAX   (2 * 1200) /* two per accepted period (100 years) */

/* A seq whose hash continuity needs, and the hash the export has there (when it has it). */
typedef struct probe {
    int64_t seq;
    int found;
    char hash[65];
} probe;

typedef struct export_file {
    const char *path;
    char sha[65];
    agora__trust_clinic clinic;
    agora__export_info info;
    json_t *state; /* the clinic's accepted segments, owned (new object when none) */
    char state_path[4096];
    probe *probes; /* owned */
    size_t n_probes;
} export_file;

typedef struct cell {
    char *vendor, *currency, *plugin_id, *plugin_version; /* owned */
    const char *clinic;                                   /* the file's clinic name */
    int64_t bps;
    int64_t rows, units, gross;
} cell;

typedef struct seen {
    char *key; /* owned: a row hash or an invocation id of the period */
    size_t file;
} seen;

/* Everything the row callback adds to while one export is checked. */
typedef struct pass {
    export_file *f;
    size_t fi;
    const agora__trust_price_book *pb;
    cell *cells;
    size_t n_cells, cap_cells, hit;
    seen *seen;
    size_t n_seen, cap_seen;
} pass;

static void files_free(export_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(f[i].state);
        free(f[i].probes);
    }
    free(f);
}

static void pass_free(pass *ps)
{
    for (size_t i = 0; i < ps->n_cells; i++) {
        free(ps->cells[i].vendor);
        free(ps->cells[i].currency);
        free(ps->cells[i].plugin_id);
        free(ps->cells[i].plugin_version);
    }
    free(ps->cells);
    for (size_t i = 0; i < ps->n_seen; i++)
        free(ps->seen[i].key);
    free(ps->seen);
}

static int load_state(const char *catalog_dir, export_file *f, agora__error *err)
{
    int rc = agora__trust_clinic_state_path(catalog_dir, f->clinic.name, "accepted.json",
                                            f->state_path, sizeof f->state_path, err);
    if (rc != 0)
        return rc;
    uint8_t *buf;
    size_t len;
    rc = agora__read_file(f->state_path, STATE_MAX, &buf, &len, err);
    if (rc == AGORA__ENOENT) {
        agora__error_clear(err);
        f->state = json_pack("{s:s,s:s,s:s,s:{}}", "format", STATE_FORMAT, "clinic", f->clinic.name,
                             "key_id", f->clinic.key_id, "periods");
        return f->state ? 0 : agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    if (rc != 0)
        return rc;
    f->state = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    const char *fmt = json_string_value(json_object_get(f->state, "format"));
    const char *kid = json_string_value(json_object_get(f->state, "key_id"));
    json_t *periods = json_object_get(f->state, "periods");
    if (!json_is_object(periods) || fmt == NULL || strcmp(fmt, STATE_FORMAT) != 0 || kid == NULL ||
        json_object_size(periods) > PROBES_MAX / 2)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is damaged; restore it from a backup of the catalog directory",
                                f->state_path);
    if (strcmp(kid, f->clinic.key_id) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s records key %.16s, but clinic %s is registered with key %s; "
                                "the registry was changed by hand",
                                f->state_path, kid, f->clinic.name, f->clinic.key_id);
    return 0;
}

static int64_t rec_int(const json_t *rec, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(rec, key));
}

static const char *rec_str(const json_t *rec, const char *key)
{
    const char *s = json_string_value(json_object_get(rec, key));
    return s ? s : "";
}

/* The seqs whose hashes continuity compares: each accepted segment's head and the row before
 * its first. */
static int make_probes(export_file *f, agora__error *err)
{
    json_t *periods = json_object_get(f->state, "periods");
    size_t n = 2 * json_object_size(periods);
    f->probes = n ? calloc(n, sizeof *f->probes) : NULL;
    if (n && f->probes == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    const char *k;
    json_t *rec;
    json_object_foreach(periods, k, rec)
    {
        f->probes[f->n_probes++].seq = rec_int(rec, "last_seq");
        f->probes[f->n_probes++].seq = rec_int(rec, "first_seq") - 1;
    }
    return 0;
}

/* Hash of row `seq` in the export, NULL when outside it. */
static const char *hash_at(const export_file *f, int64_t seq)
{
    const agora__export_info *in = &f->info;
    if (in->n_rows == 0)
        return NULL;
    if (seq == in->first_seq - 1)
        return in->prev_hash;
    for (size_t i = 0; i < f->n_probes; i++)
        if (f->probes[i].seq == seq && f->probes[i].found)
            return f->probes[i].hash;
    return NULL;
}

/* Step 3: does the export continue the chain accepted from this clinic before? */
static int check_continuity(const export_file *f, agora__error *err)
{
    const agora__export_info *in = &f->info;
    const char *name = f->clinic.name;
    if (in->n_rows == 0)
        return 0; /* an empty period: nothing to link, nothing counted */
    json_t *periods = json_object_get(f->state, "periods");
    json_t *same = json_object_get(periods, in->period);
    if (same != NULL) {
        if (strcmp(rec_str(same, "export_sha256"), f->sha) == 0)
            return 0; /* the export accepted before: a re-print */
        const char *h = hash_at(f, rec_int(same, "last_seq"));
        if (rec_int(same, "first_seq") == in->first_seq && h != NULL &&
            strcmp(h, rec_str(same, "head")) == 0)
            return 0; /* a later export of the same period that extends the accepted one */
        if (rec_int(same, "first_seq") == in->first_seq && in->last_seq < rec_int(same, "last_seq"))
            return agora__error_set(err, AGORA_EINVAL,
                                    "broken chain: clinic %s's export of %s ends at seq %lld, "
                                    "before the head of the export of %s accepted already (seq "
                                    "%lld..%lld): give the newer export, or, if this is the "
                                    "clinic's newest, its ledger was rewritten or restored from "
                                    "an old backup",
                                    name, in->period, (long long)in->last_seq, in->period,
                                    (long long)rec_int(same, "first_seq"),
                                    (long long)rec_int(same, "last_seq"));
        return agora__error_set(err, AGORA_EINVAL,
                                "broken chain: clinic %s's export of %s does not continue the "
                                "export of %s accepted before (seq %lld..%lld); its ledger was "
                                "rewritten or restored from an old backup",
                                name, in->period, in->period, (long long)rec_int(same, "first_seq"),
                                (long long)rec_int(same, "last_seq"));
    }
    const char *k;
    json_t *rec;
    int linked = 0, any = 0;
    int64_t max_last = 0;
    json_object_foreach(periods, k, rec)
    {
        any = 1;
        int64_t last = rec_int(rec, "last_seq"), first = rec_int(rec, "first_seq");
        if (last > max_last)
            max_last = last;
        /* The accepted segment's head inside (or just before) this export must be the same
         * row; and an accepted segment that starts inside this export must link into it. */
        const char *h = hash_at(f, last);
        if (h != NULL) {
            if (strcmp(h, rec_str(rec, "head")) != 0)
                return agora__error_set(
                    err, AGORA_EINVAL,
                    "broken chain: clinic %s's row seq %lld differs from the one accepted in its "
                    "%s export; its ledger was rewritten",
                    name, (long long)last, k);
            linked = 1;
        }
        h = hash_at(f, first - 1);
        if (h != NULL) {
            if (strcmp(h, rec_str(rec, "prev_hash")) != 0)
                return agora__error_set(
                    err, AGORA_EINVAL,
                    "broken chain: clinic %s's row seq %lld differs from the one its accepted %s "
                    "export links to; its ledger was rewritten",
                    name, (long long)(first - 1), k);
            linked = 1;
        }
    }
    if (!any || linked)
        return 0;
    if (max_last < in->first_seq - 1)
        return agora__error_set(err, AGORA_EINVAL,
                                "broken chain: clinic %s's rows %lld..%lld are in no accepted "
                                "export; accept the exports of the periods in between first",
                                name, (long long)(max_last + 1), (long long)(in->first_seq - 1));
    return agora__error_set(err, AGORA_EINVAL,
                            "broken chain: clinic %s's export (seq %lld..%lld) does not link to "
                            "any export accepted from it before",
                            name, (long long)in->first_seq, (long long)in->last_seq);
}

static int seen_add(pass *ps, const char *key, agora__error *err)
{
    if (ps->n_seen == ps->cap_seen) {
        size_t nc = ps->cap_seen ? ps->cap_seen * 2 : 1024;
        seen *g = realloc(ps->seen, nc * sizeof *g);
        if (g == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        ps->seen = g;
        ps->cap_seen = nc;
    }
    char *k = strdup(key);
    if (k == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    ps->seen[ps->n_seen++] = (seen){k, ps->fi};
    return 0;
}

static int cell_is(const cell *c, const char *clinic, const agora__export_row *r)
{
    return c->clinic == clinic && c->bps == r->vendor_share_bps &&
           strcmp(c->plugin_id, r->plugin_id) == 0 &&
           strcmp(c->plugin_version, r->plugin_version) == 0 && strcmp(c->vendor, r->vendor) == 0 &&
           strcmp(c->currency, r->currency) == 0;
}

/* Called for every verified row: the hashes continuity needs; for rows of the period, the
 * duplicate keys, the catalog's price (step 5) and the statement's cells. */
static int on_row(const agora__export_row *r, void *ctx, agora__error *err)
{
    pass *ps = ctx;
    export_file *f = ps->f;
    for (size_t i = 0; i < f->n_probes; i++)
        if (f->probes[i].seq == r->seq) {
            f->probes[i].found = 1;
            agora__strlcpy(f->probes[i].hash, r->hash, sizeof f->probes[i].hash);
        }
    if (strcmp(r->period, f->info.period) != 0)
        return 0;
    int rc = seen_add(ps, r->hash, err);
    if (rc == 0 && strcmp(r->kind, "invocation") == 0)
        rc = seen_add(ps, r->invocation_id, err);
    if (rc != 0)
        return rc;
    agora__trust_pricing p;
    char vendor[AGORA__TRUST_NAME_MAX + 1];
    uint64_t cv;
    if (agora__trust_price_book_find(ps->pb, r->plugin_id, r->plugin_version, &p, vendor, &cv) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "row seq %lld bills %.128s@%.64s, which the catalog does not "
                                "hold; refused (is this the catalog the clinic synced?)",
                                (long long)r->seq, r->plugin_id, r->plugin_version);
    if (strcmp(p.model, r->model) != 0 || (int64_t)p.price_minor != r->price_minor ||
        strcmp(p.currency, r->currency) != 0 ||
        (int64_t)p.vendor_share_bps != r->vendor_share_bps || strcmp(vendor, r->vendor) != 0)
        return agora__error_set(
            err, AGORA_EINVAL,
            "row seq %lld bills %.128s@%.64s as %s %lld %s at %lld bps (vendor '%.60s'), but the "
            "catalog (version %llu) says %s %llu %s at %u bps (vendor '%.60s'); refused",
            (long long)r->seq, r->plugin_id, r->plugin_version, r->model, (long long)r->price_minor,
            r->currency, (long long)r->vendor_share_bps, r->vendor, (unsigned long long)cv, p.model,
            (unsigned long long)p.price_minor, p.currency, p.vendor_share_bps, vendor);
    const char *clinic = f->clinic.name;
    cell *c = NULL;
    if (ps->hit < ps->n_cells && cell_is(&ps->cells[ps->hit], clinic, r))
        c = &ps->cells[ps->hit];
    for (size_t k = 0; c == NULL && k < ps->n_cells; k++)
        if (cell_is(&ps->cells[k], clinic, r)) {
            c = &ps->cells[k];
            ps->hit = k;
        }
    if (c == NULL) {
        if (ps->n_cells == ps->cap_cells) {
            size_t nc = ps->cap_cells ? ps->cap_cells * 2 : 64;
            cell *g = realloc(ps->cells, nc * sizeof *g);
            if (g == NULL)
                return agora__error_set(err, AGORA_ENOMEM, "out of memory");
            ps->cells = g;
            ps->cap_cells = nc;
        }
        c = &ps->cells[ps->n_cells];
        *c = (cell){strdup(r->vendor),
                    strdup(r->currency),
                    strdup(r->plugin_id),
                    strdup(r->plugin_version),
                    clinic,
                    r->vendor_share_bps,
                    0,
                    0,
                    0};
        ps->hit = ps->n_cells++;
        if (!c->vendor || !c->currency || !c->plugin_id || !c->plugin_version)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    c->rows++;
    if (__builtin_add_overflow(c->units, r->units, &c->units) ||
        __builtin_add_overflow(c->gross, r->amount_minor, &c->gross))
        return agora__error_set(err, AGORA_ELIMIT, "statement amounts overflow");
    return 0;
}

/* Steps 1 to 3 and 5 for one file: read it, verify the signature, then check the body row by
 * row (the file is the only large allocation; it is freed before the next one is read). */
static int load_export(const char *catalog_dir, const char *period, export_file *files, size_t fi,
                       pass *ps, agora__error *err)
{
    export_file *f = &files[fi];
    uint8_t *buf = NULL;
    size_t len;
    int rc = agora__read_file(f->path, AGORA__EXPORT_MAX, &buf, &len, err);
    if (rc != 0)
        return rc;
    uint8_t sha[32];
    agora__sha256(buf, len, sha);
    agora__hex(sha, 32, f->sha);
    const uint8_t *nl = memchr(buf, '\n', len < 300 ? len : 300);
    if (nl == NULL)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "not a signed ledger export (no signature line); make one with "
                              "agora ledger export --period P -o FILE");
    size_t sig_len = nl ? (size_t)(nl - buf) + 1 : 0;
    if (rc == 0)
        rc = agora__trust_clinic_verify(catalog_dir, buf, sig_len, buf + sig_len, len - sig_len,
                                        &f->clinic, err);
    for (size_t j = 0; rc == 0 && j < fi; j++) {
        if (strcmp(f->sha, files[j].sha) == 0)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "duplicate: it is the same export as %s (given twice); give "
                                  "each export once",
                                  files[j].path);
        else if (strcmp(f->clinic.name, files[j].clinic.name) == 0)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "duplicate: clinic %s's export of %s is given twice (also %s); "
                                  "give the newest export only",
                                  f->clinic.name, period, files[j].path);
    }
    if (rc == 0)
        rc = load_state(catalog_dir, f, err);
    if (rc == 0)
        rc = make_probes(f, err);
    if (rc == 0) {
        ps->f = f;
        ps->fi = fi;
        ps->hit = 0;
        rc = agora__ledger_export_check(buf + sig_len, len - sig_len, period, &f->info, on_row, ps,
                                        err);
    }
    if (rc == 0 && strcmp(f->info.clinic_key_id, f->clinic.key_id) != 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "the export names clinic key %.16s but is signed by %s; refused",
                              f->info.clinic_key_id, f->clinic.key_id);
    if (rc == 0)
        rc = check_continuity(f, err);
    free(buf);
    return rc;
}

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const seen *)a)->key, ((const seen *)b)->key);
}

/* Step 4 for rows: a row hash or an invocation id of the period in two exports. */
static int check_duplicates(const export_file *f, pass *ps, agora__error *err)
{
    if (ps->n_seen > 1)
        qsort(ps->seen, ps->n_seen, sizeof *ps->seen, seen_cmp);
    for (size_t i = 1; i < ps->n_seen; i++)
        if (strcmp(ps->seen[i - 1].key, ps->seen[i].key) == 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "overlap: %s and %s hold the same invocation or row (%.32s); "
                                    "an invocation is billed once, refused",
                                    f[ps->seen[i - 1].file].path, f[ps->seen[i].file].path,
                                    ps->seen[i].key);
    return 0;
}

static int cell_cmp(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    int c;
    if ((c = strcmp(x->vendor, y->vendor)) != 0 || (c = strcmp(x->currency, y->currency)) != 0 ||
        (c = strcmp(x->plugin_id, y->plugin_id)) != 0 ||
        (c = strcmp(x->plugin_version, y->plugin_version)) != 0)
        return c;
    if (x->bps != y->bps)
        return x->bps < y->bps ? -1 : 1;
    return strcmp(x->clinic, y->clinic);
}

static int same_line(const cell *a, const cell *b)
{
    return strcmp(a->vendor, b->vendor) == 0 && strcmp(a->currency, b->currency) == 0 &&
           strcmp(a->plugin_id, b->plugin_id) == 0 &&
           strcmp(a->plugin_version, b->plugin_version) == 0 && a->bps == b->bps;
}

static void add_money(json_t *o, const char *key, int64_t v)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + v));
}

static void add_shares(json_t *o, int64_t gross, int64_t vs, int64_t ps)
{
    add_money(o, "gross_minor", gross);
    add_money(o, "vendor_share_minor", vs);
    add_money(o, "platform_share_minor", ps);
}

static json_t *find_by(json_t *arr, const char *key, const char *value, json_t *fresh)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, key)), value) == 0) {
            json_decref(fresh);
            return v;
        }
    }
    json_array_append_new(arr, fresh);
    return fresh;
}

static json_t *money_obj(const char *key, const char *value)
{
    return json_pack("{s:s,s:I,s:I,s:I}", key, value, "gross_minor", (json_int_t)0,
                     "vendor_share_minor", (json_int_t)0, "platform_share_minor", (json_int_t)0);
}

static json_t *build_doc(const char *period, const export_file *f, size_t n, cell *cells,
                         size_t n_cells, int verified)
{
    if (n_cells > 1)
        qsort(cells, n_cells, sizeof *cells, cell_cmp);
    json_t *clinics = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            clinics, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "clinic", f[i].clinic.name,
                               "key_id", f[i].clinic.key_id, "export", f[i].path, "export_sha256",
                               f[i].sha, "first_seq", (json_int_t)f[i].info.first_seq, "last_seq",
                               (json_int_t)f[i].info.last_seq, "head", f[i].info.head));
    json_t *doc = json_pack("{s:s,s:s,s:b,s:o,s:[],s:[]}", "period", period, "rounding",
                            "per clinic and line: vendor_share = floor(gross * vendor_share_bps / "
                            "10000); platform_share = gross - vendor_share; a line across clinics "
                            "and every total are sums",
                            "catalog_verified", verified, "clinics", clinics, "vendors", "totals");
    json_t *vendors = json_object_get(doc, "vendors"), *totals = json_object_get(doc, "totals");
    json_t *vend = NULL, *line = NULL;
    for (size_t i = 0; i < n_cells; i++) {
        const cell *c = &cells[i];
        int64_t vs = agora__ledger_share_floor(c->gross, c->bps), ps = c->gross - vs;
        if (vend == NULL ||
            strcmp(json_string_value(json_object_get(vend, "vendor")), c->vendor) != 0 ||
            strcmp(json_string_value(json_object_get(vend, "currency")), c->currency) != 0) {
            vend = json_pack("{s:s,s:s,s:[],s:[],s:I,s:I,s:I}", "vendor", c->vendor, "currency",
                             c->currency, "lines", "clinics", "gross_minor", (json_int_t)0,
                             "vendor_share_minor", (json_int_t)0, "platform_share_minor",
                             (json_int_t)0);
            json_array_append_new(vendors, vend);
            line = NULL;
        }
        if (line == NULL || !same_line(&cells[i - 1], c)) {
            line = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:[]}", "plugin_id", c->plugin_id,
                             "plugin_version", c->plugin_version, "vendor_share_bps",
                             (json_int_t)c->bps, "rows", (json_int_t)0, "units", (json_int_t)0,
                             "gross_minor", (json_int_t)0, "vendor_share_minor", (json_int_t)0,
                             "platform_share_minor", (json_int_t)0, "clinics");
            json_array_append_new(json_object_get(vend, "lines"), line);
        }
        add_money(line, "rows", c->rows);
        add_money(line, "units", c->units);
        add_shares(line, c->gross, vs, ps);
        json_array_append_new(json_object_get(line, "clinics"),
                              json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "clinic", c->clinic, "rows",
                                        (json_int_t)c->rows, "units", (json_int_t)c->units,
                                        "gross_minor", (json_int_t)c->gross, "vendor_share_minor",
                                        (json_int_t)vs, "platform_share_minor", (json_int_t)ps));
        add_shares(vend, c->gross, vs, ps);
        add_shares(find_by(json_object_get(vend, "clinics"), "clinic", c->clinic,
                           money_obj("clinic", c->clinic)),
                   c->gross, vs, ps);
        add_shares(find_by(totals, "currency", c->currency, money_obj("currency", c->currency)),
                   c->gross, vs, ps);
    }
    return doc;
}

/* Record the accepted segments (after every export passed). */
static int save_states(export_file *f, size_t n, agora__error *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (size_t i = 0; i < n; i++) {
        const agora__export_info *in = &f[i].info;
        if (in->n_rows == 0)
            continue;
        json_t *rec = json_pack("{s:I,s:I,s:s,s:s,s:s,s:I}", "first_seq", (json_int_t)in->first_seq,
                                "last_seq", (json_int_t)in->last_seq, "prev_hash", in->prev_hash,
                                "head", in->head, "export_sha256", f[i].sha, "accepted_ms",
                                (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (rec == NULL ||
            json_object_set_new(json_object_get(f[i].state, "periods"), in->period, rec) != 0)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        char *text = json_dumps(f[i].state, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (text == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        int rc = agora__write_file_atomic(f[i].state_path, text, strlen(text), 0644, err);
        free(text);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int agora__statement_clinics(const char *catalog_dir, const char *trust_pub, const char *period,
                             const char *const *paths, size_t n, json_t **out, int *verified,
                             agora__error *err)
{
    *out = NULL;
    *verified = 0;
    if (n == 0 || n > AGORA__EXPORT_FILES)
        return agora__error_set(err, AGORA_EINVAL, "give 1..%d --from exports",
                                AGORA__EXPORT_FILES);
    agora__trust_price_book *pb = NULL;
    int rc = agora__trust_price_book_open(catalog_dir, trust_pub, &pb, verified, err);
    if (rc != 0)
        return rc;
    export_file *f = calloc(n, sizeof *f);
    if (f == NULL) {
        agora__trust_price_book_close(pb);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        f[i].path = paths[i];
    pass ps = {.pb = pb};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = load_export(catalog_dir, period, f, i, &ps, err);
        if (rc != 0)
            agora__error_prefix(err, "%s", f[i].path);
    }
    if (rc == 0)
        rc = check_duplicates(f, &ps, err);
    json_t *doc = NULL;
    if (rc == 0) {
        doc = build_doc(period, f, n, ps.cells, ps.n_cells, *verified);
        if (doc == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = save_states(f, n, err);
    pass_free(&ps);
    if (rc == 0)
        *out = doc;
    else
        json_decref(doc);
    files_free(f, n);
    agora__trust_price_book_close(pb);
    return rc;
}
