/* Unit tests of period exports (ledger_period.c): the segment of the chain a period spans,
 * including other periods' rows inside it, and every way a received export is refused: an
 * edited row, an edited row whose hash was recomputed (the next link breaks), a removed row, a
 * forged head, the wrong period. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledger_period.h"
#include "ledger_private.h"

static const uint8_t secret[32] = {7};

#define MAR_MS 1773576000000ULL /* 2026-03-15T12:00:00Z */
#define APR_MS 1776254400000ULL /* 2026-04-15T12:00:00Z */

typedef struct fixture {
    char dir[64];
    agora__ledger *l;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/agora-export-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    agora__error err = {0};
    assert_int_equal(agora__ledger_open(f->dir, secret, &f->l, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    agora__ledger_close(f->l);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void record(fixture *f, uint64_t ms, const char *unit)
{
    agora__ledger_pricing p = {.plugin_id = "org.example.nodule",
                               .plugin_version = "1.2.0",
                               .vendor = "Example Vendor",
                               .catalog_version = 3,
                               .model = AGORA__MODEL_PER_STUDY,
                               .price_minor = 150,
                               .currency = "EUR",
                               .vendor_share_bps = 7000};
    char id[AGORA__LEDGER_ID_LEN + 1];
    agora__error err = {0};
    assert_int_equal(agora__ledger_mint_at(ms, id, &err), 0);
    const char *units[] = {unit};
    agora__ledger_outcome o = {.invocation_id = id,
                               .status = "ok",
                               .validated = 1,
                               .units = units,
                               .n_units = 1,
                               .pricing = &p};
    if (agora__ledger_record(f->l, &o, NULL, &err) != 0)
        fail_msg("record: %s", err.msg);
}

/* March, April, March, April, March: the March segment is seq 1..5 with two April rows. */
static void fill(fixture *f)
{
    record(f, MAR_MS, "1.2.3.1");
    record(f, APR_MS, "1.2.3.2");
    record(f, MAR_MS + 1000, "1.2.3.3");
    record(f, APR_MS + 1000, "1.2.3.4");
    record(f, MAR_MS + 2000, "1.2.3.5");
}

/* An export body as an array of JSON objects: [header, row, row, ...]. */
static json_t *export_of(fixture *f, const char *period)
{
    char *buf = NULL;
    size_t len = 0;
    agora__error err = {0};
    if (agora__ledger_period_export(f->l, period, "0123456789abcdef", &buf, &len, NULL, &err) != 0)
        fail_msg("export: %s", err.msg);
    json_t *lines = json_array();
    const char *p = buf + AGORA__EXPORT_SIG_LINE, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
        assert_non_null(o);
        json_array_append_new(lines, o);
        p = nl + 1;
    }
    free(buf);
    return lines;
}

/* The body bytes of such an array, as the clinic writes them. */
static char *body_of(const json_t *lines, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    for (size_t i = 0; i < json_array_size(lines); i++) {
        char *t = json_dumps(json_array_get(lines, i), JSON_COMPACT | JSON_SORT_KEYS);
        size_t tl = strlen(t);
        while (n + tl + 2 > cap)
            b = realloc(b, cap *= 2);
        memcpy(b + n, t, tl);
        n += tl;
        b[n++] = '\n';
        free(t);
    }
    *len = n;
    return b;
}

static int check(const json_t *lines, const char *period, agora__export_info *info,
                 agora__error *err)
{
    size_t len;
    char *b = body_of(lines, &len);
    int rc = agora__ledger_export_check((const uint8_t *)b, len, period, info, NULL, NULL, err);
    free(b);
    return rc;
}

static void expect_refused(const json_t *doc, const char *period, const char *why)
{
    agora__export_info info;
    agora__error err = {0};
    assert_int_not_equal(check(doc, period, &info, &err), 0);
    if (strstr(err.msg, why) == NULL)
        fail_msg("expected '%s' in: %s", why, err.msg);
}

static json_t *row(json_t *doc, size_t i)
{
    return json_array_get(doc, i + 1);
}

static json_t *header(json_t *doc)
{
    return json_array_get(doc, 0);
}

static const char *js(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t ji(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

/* What a forger would do: recompute the edited row's own hash. */
static void rehash(json_t *r)
{
    const json_t *pl = json_object_get(r, "plugin"), *pr = json_object_get(r, "pricing"),
                 *m = json_object_get(r, "metrics");
    agora__ledger_row x = {.seq = ji(r, "seq"),
                           .kind = js(r, "kind"),
                           .invocation_id = js(r, "invocation_id"),
                           .recorded_ms = ji(r, "recorded_ms"),
                           .period = js(r, "period"),
                           .plugin_id = js(pl, "id"),
                           .plugin_version = js(pl, "version"),
                           .vendor = js(r, "vendor"),
                           .catalog_version = ji(r, "catalog_version"),
                           .model = js(pr, "model"),
                           .price_minor = ji(pr, "price_minor"),
                           .currency = js(pr, "currency"),
                           .vendor_share_bps = ji(pr, "vendor_share_bps"),
                           .status = js(r, "status"),
                           .billable = json_is_true(json_object_get(r, "billable")),
                           .units = ji(r, "units"),
                           .units_total = ji(r, "units_total"),
                           .amount_minor = ji(r, "amount_minor"),
                           .keys_digest = js(r, "keys_digest"),
                           .corrects = ji(r, "corrects"),
                           .reason = js(r, "reason"),
                           .wall_ms = ji(m, "wall_ms"),
                           .cpu_us = ji(m, "cpu_us"),
                           .peak_rss_kb = ji(m, "peak_rss_kb"),
                           .prev_hash = js(r, "prev_hash")};
    char hex[65];
    agora__ledger_row_hash(&x, hex);
    json_object_set_new(r, "hash", json_string(hex));
}

typedef struct collected {
    int n;
    int64_t amounts;
    char second_period[8];
} collected;

static int collect(const agora__export_row *r, void *ctx, agora__error *err)
{
    (void)err;
    collected *c = ctx;
    if (c->n++ == 1)
        snprintf(c->second_period, sizeof c->second_period, "%s", r->period);
    c->amounts += r->amount_minor;
    return 0;
}

static void test_segment(void **state)
{
    fixture *f = *state;
    fill(f);
    json_t *mar = export_of(f, "2026-03");
    agora__export_info info;
    agora__error err = {0};
    assert_int_equal(check(mar, "2026-03", &info, &err), 0);
    assert_int_equal(info.first_seq, 1);
    assert_int_equal(info.last_seq, 5);
    assert_int_equal(info.rows_in_period, 3);
    assert_string_equal(info.clinic_key_id, "0123456789abcdef");
    assert_string_equal(info.prev_hash,
                        "0000000000000000000000000000000000000000000000000000000000000000");
    /* Rows reach the callback in order, verified; April's are inside, for the chain only. */
    size_t len;
    char *b = body_of(mar, &len);
    collected c = {0};
    assert_int_equal(
        agora__ledger_export_check((const uint8_t *)b, len, "2026-03", &info, collect, &c, &err),
        0);
    free(b);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.amounts, 750);
    assert_string_equal(c.second_period, "2026-04");
    /* April: seq 2 to the head (5), linked to row 1's hash. */
    json_t *apr = export_of(f, "2026-04");
    agora__export_info ai;
    assert_int_equal(check(apr, "2026-04", &ai, &err), 0);
    assert_int_equal(ai.first_seq, 2);
    assert_int_equal(ai.last_seq, 5);
    assert_string_equal(ai.head, info.head);
    assert_string_equal(ai.prev_hash, json_string_value(json_object_get(row(mar, 0), "hash")));
    /* A month without rows: an empty, valid export. */
    json_t *may = export_of(f, "2026-05");
    agora__export_info mi;
    assert_int_equal(check(may, "2026-05", &mi, &err), 0);
    assert_int_equal(mi.n_rows, 0);
    expect_refused(mar, "2026-04", "wrong period");
    json_decref(mar);
    json_decref(apr);
    json_decref(may);
}

static void test_edited_rows(void **state)
{
    fixture *f = *state;
    fill(f);
    json_t *mar = export_of(f, "2026-03");

    json_t *d = json_deep_copy(mar);
    json_object_set_new(row(d, 2), "units_total", json_integer(99));
    expect_refused(d, "2026-03", "edited row: row seq 3");
    json_decref(d);

    /* An edited row whose hash is recomputed: the next row no longer links to it. */
    d = json_deep_copy(mar);
    json_t *r = row(d, 2);
    json_object_set_new(json_object_get(r, "pricing"), "price_minor", json_integer(1));
    json_object_set_new(r, "amount_minor", json_integer(1));
    rehash(r);
    expect_refused(d, "2026-03", "broken chain: row seq 4 of the export does not link");
    json_decref(d);
    /* ... and when it is the last row, the head gives it away. */
    d = json_deep_copy(mar);
    r = row(d, 4);
    json_object_set_new(json_object_get(r, "pricing"), "price_minor", json_integer(1));
    json_object_set_new(r, "amount_minor", json_integer(1));
    rehash(r);
    expect_refused(d, "2026-03", "head is not the hash of its last row");
    json_decref(d);

    /* A removed row in the middle. */
    d = json_deep_copy(mar);
    json_array_remove(d, 2);
    expect_refused(d, "2026-03", "broken chain");
    json_decref(d);

    /* A forged head. */
    d = json_deep_copy(mar);
    json_object_set_new(header(d), "head",
                        json_string(json_string_value(json_object_get(row(d, 0), "hash"))));
    expect_refused(d, "2026-03", "broken chain");
    json_decref(d);

    /* A wrong link to the rows before. */
    json_t *apr = export_of(f, "2026-04");
    d = json_deep_copy(apr);
    json_object_set_new(header(d), "prev_hash",
                        json_string("00000000000000000000000000000000000000000000"
                                    "00000000000000000000"));
    expect_refused(d, "2026-04", "does not link to its predecessor");
    json_decref(d);
    /* An invocation whose amount is not units * price. */
    d = json_deep_copy(mar);
    json_object_set_new(row(d, 0), "amount_minor", json_integer(151));
    expect_refused(d, "2026-03", "row seq 1");
    json_decref(d);
    json_decref(apr);
    /* Bytes after the announced rows. */
    d = json_deep_copy(mar);
    json_array_append(d, row(d, 0));
    expect_refused(d, "2026-03", "after its 5 announced rows");
    json_decref(d);
    json_decref(mar);
}

static void test_refuses_to_sign_a_broken_ledger(void **state)
{
    fixture *f = *state;
    fill(f);
    char *e = NULL;
    assert_int_equal(
        sqlite3_exec(f->l->db, "UPDATE entries SET units = 5 WHERE seq = 2", NULL, NULL, &e),
        SQLITE_OK);
    char *buf = NULL;
    size_t len = 0;
    agora__error err = {0};
    assert_int_not_equal(
        agora__ledger_period_export(f->l, "2026-03", "0123456789abcdef", &buf, &len, NULL, &err),
        0);
    assert_null(buf);
    assert_non_null(strstr(err.msg, "not exporting"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_to_sign_a_broken_ledger, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
