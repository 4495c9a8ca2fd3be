/* Unit tests of the ledger: idempotent recording, billing once per period, pricing models,
 * corrections, the hash chain and the statement's rounding rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ledger.h"

static const uint8_t secret[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* 2026-03-15T12:00:00Z: a past month, so corrections (recorded now) land elsewhere */
#define MAR_MS 1773576000000ULL

typedef struct fixture {
    char dir[64];
    char db[128];
    agora__ledger *l;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/agora-ledger-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/ledger.db", f->dir);
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

static agora__ledger_pricing pricing(agora__ledger_model m, int64_t price, uint32_t bps)
{
    agora__ledger_pricing p = {.plugin_id = "org.example.nodule",
                               .plugin_version = "1.2.0",
                               .vendor = "Example Vendor",
                               .catalog_version = 7,
                               .model = m,
                               .price_minor = price,
                               .currency = "EUR",
                               .vendor_share_bps = bps};
    return p;
}

static agora__ledger_receipt rec(fixture *f, const char *id, const char *status,
                                 const agora__ledger_pricing *p, const char *const *units, size_t n)
{
    agora__ledger_outcome o = {.invocation_id = id,
                               .status = status,
                               .validated = strcmp(status, "ok") == 0,
                               .units = units,
                               .n_units = n,
                               .wall_ms = 10,
                               .pricing = p};
    agora__ledger_receipt r;
    agora__error err = {0};
    int rc = agora__ledger_record(f->l, &o, &r, &err);
    if (rc != 0)
        fail_msg("record: %s", err.msg);
    return r;
}

static void test_mint_and_period(void **state)
{
    (void)state;
    char a[33], b[33], period[8];
    agora__error err = {0};
    assert_int_equal(agora__ledger_mint_at(MAR_MS, a, &err), 0);
    assert_int_equal(agora__ledger_mint_at(MAR_MS, b, &err), 0);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    assert_int_equal(agora__ledger_id_period(a, period, &err), 0);
    assert_string_equal(period, "2026-03");
    assert_int_not_equal(agora__ledger_id_period("0123", period, &err), 0);
    assert_int_not_equal(agora__ledger_id_period("0123456789abcdef0123456789abcdef", period, &err),
                         0);
    assert_true(agora__ledger_period_valid("2026-12"));
    assert_false(agora__ledger_period_valid("2026-13"));
    assert_false(agora__ledger_period_valid("2026-1"));
}

static void test_idempotent_and_rerun(void **state)
{
    fixture *f = *state;
    agora__ledger_pricing p = pricing(AGORA__MODEL_PER_STUDY, 250, 7000);
    const char *study[] = {"1.2.3.4"};
    char id1[33], id2[33];
    agora__error err = {0};
    assert_int_equal(agora__ledger_mint_at(MAR_MS, id1, &err), 0);
    assert_int_equal(agora__ledger_mint_at(MAR_MS + 1000, id2, &err), 0);
    agora__ledger_receipt r = rec(f, id1, "ok", &p, study, 1);
    assert_int_equal(r.duplicate, 0);
    assert_int_equal(r.amount_minor, 250);
    /* The same id again (a retry): nothing appended, nothing charged. */
    r = rec(f, id1, "ok", &p, study, 1);
    assert_int_equal(r.duplicate, 1);
    assert_int_equal(r.seq, 1);
    /* A re-run of the same study in the same period: a row, but no charge. */
    r = rec(f, id2, "ok", &p, study, 1);
    assert_int_equal(r.duplicate, 0);
    assert_int_equal(r.seq, 2);
    assert_int_equal(r.amount_minor, 0);
    /* Next month: billed again. */
    char id3[33];
    assert_int_equal(agora__ledger_mint_at(MAR_MS + 31ULL * 86400000ULL, id3, &err), 0);
    r = rec(f, id3, "ok", &p, study, 1);
    assert_int_equal(r.amount_minor, 250);
    int64_t bad = -1, rows = 0;
    assert_int_equal(agora__ledger_verify(f->l, &bad, &rows, &err), 0);
    assert_int_equal(rows, 3);
}

static void test_models_and_failures(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    char id[33];
    const char *inst[] = {"1.2.3.4.1", "1.2.3.4.2", "1.2.3.4.3"};
    agora__ledger_pricing pi = pricing(AGORA__MODEL_PER_INSTANCE, 10, 5000);
    agora__ledger_mint_at(MAR_MS, id, &err);
    assert_int_equal(rec(f, id, "ok", &pi, inst, 3).amount_minor, 30);
    agora__ledger_mint_at(MAR_MS, id, &err);
    assert_int_equal(rec(f, id, "ok", &pi, inst + 1, 2).amount_minor, 0);

    agora__ledger_pricing ps = pricing(AGORA__MODEL_SUBSCRIPTION, 9900, 5000);
    ps.plugin_id = "org.example.sub";
    agora__ledger_mint_at(MAR_MS, id, &err);
    assert_int_equal(rec(f, id, "ok", &ps, NULL, 0).amount_minor, 9900);
    agora__ledger_mint_at(MAR_MS, id, &err);
    assert_int_equal(rec(f, id, "ok", &ps, NULL, 0).amount_minor, 0);

    agora__ledger_pricing pf = pricing(AGORA__MODEL_FREE, 500, 5000);
    pf.plugin_id = "org.example.free";
    const char *study[] = {"1.2.9"};
    agora__ledger_mint_at(MAR_MS, id, &err);
    agora__ledger_receipt r = rec(f, id, "ok", &pf, study, 1);
    assert_int_equal(r.amount_minor, 0);
    assert_int_equal(r.units, 1);

    /* A failure is recorded but never billable. */
    agora__ledger_pricing pst = pricing(AGORA__MODEL_PER_STUDY, 100, 5000);
    pst.plugin_id = "org.example.fails";
    agora__ledger_mint_at(MAR_MS, id, &err);
    r = rec(f, id, "timeout", &pst, study, 1);
    assert_int_equal(r.amount_minor, 0);
    assert_int_equal(r.units, 0);
    agora__ledger_mint_at(MAR_MS, id, &err);
    assert_int_equal(rec(f, id, "ok", &pst, study, 1).amount_minor, 100);

    json_t *u = NULL;
    assert_int_equal(agora__ledger_usage(f->l, "2026-03", &u, &err), 0);
    json_t *plugins = json_object_get(u, "plugins");
    assert_int_equal(json_array_size(plugins), 4);
    json_t *fails = json_array_get(plugins, 0); /* sorted: fails, free, nodule, sub */
    assert_string_equal(json_string_value(json_object_get(fails, "plugin_id")),
                        "org.example.fails");
    assert_int_equal(json_integer_value(json_object_get(fails, "invocations")), 2);
    assert_int_equal(json_integer_value(json_object_get(fails, "failures")), 1);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(fails, "failures_by_reason"), "timeout")),
                     1);
    json_decref(u);

    /* A billable outcome without units is refused. */
    agora__ledger_mint_at(MAR_MS, id, &err);
    agora__ledger_outcome o = {
        .invocation_id = id, .status = "ok", .validated = 1, .pricing = &pst};
    assert_int_not_equal(agora__ledger_record(f->l, &o, NULL, &err), 0);
    /* Bad pricing is refused. */
    agora__ledger_pricing bad = pst;
    bad.vendor_share_bps = 10001;
    o.pricing = &bad;
    o.units = study;
    o.n_units = 1;
    assert_int_not_equal(agora__ledger_record(f->l, &o, NULL, &err), 0);
    assert_int_equal(agora__ledger_verify(f->l, NULL, NULL, &err), 0);
}

static void test_statement_rounding(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    /* 3 studies at 333 with 3333 bps: gross 999, vendor floor(999*3333/10000)=332. */
    agora__ledger_pricing p = pricing(AGORA__MODEL_PER_STUDY, 333, 3333);
    char uid[3][16], id[33];
    for (int i = 0; i < 3; i++) {
        snprintf(uid[i], sizeof uid[i], "1.2.%d", i + 1);
        const char *u[] = {uid[i]};
        agora__ledger_mint_at(MAR_MS, id, &err);
        rec(f, id, "ok", &p, u, 1);
    }
    /* Another vendor in USD, and a refund correction of one study. */
    agora__ledger_pricing q = pricing(AGORA__MODEL_PER_STUDY, 1001, 7001);
    q.vendor = "Other";
    q.currency[0] = 'U', q.currency[1] = 'S', q.currency[2] = 'D';
    const char *u1[] = {"1.9.1"};
    char qid[33];
    agora__ledger_mint_at(MAR_MS, qid, &err);
    rec(f, qid, "ok", &q, u1, 1);
    json_t *s = NULL;
    assert_int_equal(agora__ledger_statement(f->l, "2026-03", &s, &err), 0);
    json_t *v0 = json_array_get(json_object_get(s, "vendors"), 0);
    assert_string_equal(json_string_value(json_object_get(v0, "vendor")), "Example Vendor");
    assert_int_equal(json_integer_value(json_object_get(v0, "gross_minor")), 999);
    assert_int_equal(json_integer_value(json_object_get(v0, "vendor_share_minor")), 332);
    assert_int_equal(json_integer_value(json_object_get(v0, "platform_share_minor")), 667);
    json_t *v1 = json_array_get(json_object_get(s, "vendors"), 1);
    assert_int_equal(json_integer_value(json_object_get(v1, "vendor_share_minor")),
                     (1001 * 7001) / 10000);
    assert_int_equal(json_array_size(json_object_get(s, "totals")), 2);
    json_decref(s);

    /* The correction counts in the period it is recorded in (now), negative and floored. */
    int64_t cseq = 0;
    assert_int_equal(
        agora__ledger_correct(f->l, qid, -1001, "refund: duplicate order", &cseq, &err), 0);
    assert_int_equal(cseq, 5);
    char now[8];
    agora__ledger_period_now(now);
    assert_int_equal(agora__ledger_statement(f->l, now, &s, &err), 0);
    json_t *t = json_array_get(json_object_get(s, "totals"), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "gross_minor")), -1001);
    assert_int_equal(json_integer_value(json_object_get(t, "vendor_share_minor")), -701);
    assert_int_equal(json_integer_value(json_object_get(t, "platform_share_minor")), -300);
    json_decref(s);
    assert_int_not_equal(agora__ledger_correct(f->l, "0123", 1, "x", NULL, &err), 0);
    assert_int_equal(agora__ledger_verify(f->l, NULL, NULL, &err), 0);
}

static void tamper(fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void fill(fixture *f, int n)
{
    agora__error err = {0};
    agora__ledger_pricing p = pricing(AGORA__MODEL_PER_STUDY, 100, 5000);
    for (int i = 0; i < n; i++) {
        char uid[32], id[33];
        snprintf(uid, sizeof uid, "1.2.%d", i % 3);
        const char *u[] = {uid};
        agora__ledger_mint_at(MAR_MS, id, &err);
        rec(f, id, "ok", &p, u, 1);
    }
}

static void test_tamper_amount(void **state)
{
    fixture *f = *state;
    fill(f, 6);
    tamper(f, "UPDATE entries SET amount_minor = 1, units = 0 WHERE seq = 4");
    int64_t bad = 0;
    agora__error err = {0};
    assert_int_not_equal(agora__ledger_verify(f->l, &bad, NULL, &err), 0);
    assert_int_equal(bad, 4);
    assert_non_null(strstr(err.msg, "seq 4"));
}

static void test_tamper_delete_and_charges(void **state)
{
    fixture *f = *state;
    fill(f, 6);
    tamper(f, "DELETE FROM entries WHERE seq = 3");
    int64_t bad = 0;
    agora__error err = {0};
    /* Row 3 charged a study key: the orphan key or the gap names seq 3. */
    assert_int_not_equal(agora__ledger_verify(f->l, &bad, NULL, &err), 0);
    assert_int_equal(bad, 3);
}

static void test_tamper_charges(void **state)
{
    fixture *f = *state;
    fill(f, 6);
    /* Deleting a charged key would let the study be billed again: detected at its row. */
    tamper(f, "DELETE FROM charges WHERE seq = 2");
    int64_t bad = 0;
    agora__error err = {0};
    assert_int_not_equal(agora__ledger_verify(f->l, &bad, NULL, &err), 0);
    assert_int_equal(bad, 2);
}

static int count_rows(const json_t *row, void *ctx)
{
    (void)row;
    (*(int *)ctx)++;
    return 0;
}

static void test_batch_and_export(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    agora__ledger_pricing p = pricing(AGORA__MODEL_PER_SERIES, 5, 5000);
    enum { N = 100 };
    char ids[N][33], uids[N][32];
    const char *units[N][1];
    agora__ledger_outcome o[N];
    agora__ledger_receipt r[N];
    for (int i = 0; i < N; i++) {
        agora__ledger_mint_at(MAR_MS, ids[i], &err);
        snprintf(uids[i], sizeof uids[i], "1.3.%d", i % 10);
        units[i][0] = uids[i];
        o[i] = (agora__ledger_outcome){.invocation_id = ids[i],
                                       .status = "ok",
                                       .validated = 1,
                                       .units = units[i],
                                       .n_units = 1,
                                       .pricing = &p};
    }
    o[N - 1].invocation_id = ids[0]; /* a duplicate inside the batch */
    assert_int_equal(agora__ledger_record_batch(f->l, o, N, r, &err), 0);
    assert_int_equal(r[N - 1].duplicate, 1);
    int64_t charged = 0;
    for (int i = 0; i < N; i++)
        charged += r[i].amount_minor;
    assert_int_equal(charged, 10 * 5);
    int n = 0;
    assert_int_equal(agora__ledger_export(f->l, 90, count_rows, &n, &err), 0);
    assert_int_equal(n, N - 1 - 90);
    /* A bad outcome in a batch rolls the whole batch back. */
    char nid[33];
    agora__ledger_mint_at(MAR_MS, nid, &err);
    o[0].invocation_id = nid;
    o[1].invocation_id = "nope";
    assert_int_not_equal(agora__ledger_record_batch(f->l, o, 2, r, &err), 0);
    int64_t seq;
    assert_int_not_equal(agora__ledger_seq_of(f->l, nid, &seq, &err), 0);
    assert_int_equal(agora__ledger_verify(f->l, NULL, NULL, &err), 0);
}

/* Two handles on one database (two host processes): appends interleave on one chain. */
static void test_two_writers(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    agora__ledger *other = NULL;
    assert_int_equal(agora__ledger_open(f->dir, secret, &other, &err), 0);
    agora__ledger_pricing p = pricing(AGORA__MODEL_PER_STUDY, 100, 5000);
    const char *study[] = {"1.2.3"};
    for (int i = 0; i < 10; i++) {
        char id[33];
        agora__ledger_mint_at(MAR_MS, id, &err);
        agora__ledger_outcome o = {.invocation_id = id,
                                   .status = "ok",
                                   .validated = 1,
                                   .units = study,
                                   .n_units = 1,
                                   .pricing = &p};
        agora__ledger_receipt r;
        assert_int_equal(agora__ledger_record(i % 2 ? other : f->l, &o, &r, &err), 0);
        assert_int_equal(r.seq, i + 1);
        assert_int_equal(r.amount_minor, i == 0 ? 100 : 0);
        /* the other handle sees the id as recorded */
        assert_int_equal(agora__ledger_record(i % 2 ? f->l : other, &o, &r, &err), 0);
        assert_int_equal(r.duplicate, 1);
    }
    agora__ledger_close(other);
    int64_t rows = 0;
    assert_int_equal(agora__ledger_verify(f->l, NULL, &rows, &err), 0);
    assert_int_equal(rows, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mint_and_period),
        cmocka_unit_test_setup_teardown(test_idempotent_and_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models_and_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_rounding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_amount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_and_charges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_charges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
