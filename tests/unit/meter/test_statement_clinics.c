/* Unit tests of the operator's statement across clinics (statement_clinics.c) on real signed
 * exports of ledgers filled in past months: continuity across periods (an export of a later
 * period links to the accepted one through the rows they share), a gap refused, a re-export
 * that extends an accepted one, rows priced differently from the catalog or naming a build it
 * lacks, and the same invocation in two clinics' exports (signed by both). */
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
#include "statement_clinics.h"
#include "trust_int.h"

#define MAR_MS 1773576000000ULL /* 2026-03-15T12:00:00Z */
#define APR_MS 1776254400000ULL /* 2026-04-15T12:00:00Z */
#define MAY_MS 1778846400000ULL /* 2026-05-15T12:00:00Z */

typedef struct fixture {
    char dir[64];
    char cat[128];
    char home[2][128];
    agora__ledger *l[2];
    int units; /* distinct billing units so far */
} fixture;

static void make_catalog(fixture *f)
{
    char prefix[160], key_path[170];
    agora__error err = {0};
    agora__pubkey pub;
    agora__seckey key;
    snprintf(prefix, sizeof prefix, "%s/op", f->dir);
    snprintf(key_path, sizeof key_path, "%s/op.key", f->dir);
    assert_int_equal(agora__keygen_files(prefix, NULL, 0, &pub, &err), 0);
    assert_int_equal(agora__seckey_read(key_path, NULL, 0, &key, &err), 0);
    agora__catalog c = {0};
    c.version = 1;
    c.issued = 1770000000;
    c.expires = 4102444800; /* 2100 */
    memcpy(c.key_id, key.pub.id, sizeof c.key_id);
    agora__cat_entry *e = agora__catalog_add(&c, &err);
    assert_non_null(e);
    strcpy(e->id, "org.example.nodule");
    strcpy(e->version, "1.2.0");
    strcpy(e->name, "Nodule");
    strcpy(e->vendor, "Example Vendor");
    strcpy(e->level, "research");
    e->plugin_size = 100;
    e->manifest_size = 100;
    strcpy(e->pricing.model, "per-study");
    e->pricing.price_minor = 150;
    strcpy(e->pricing.currency, "EUR");
    e->pricing.vendor_share_bps = 7000;
    e->certified_at = 1770000000;
    assert_int_equal(agora__mkdirs(f->cat, 0700, &err), 0);
    if (agora__catalog_write_dir(f->cat, &c, &key, &err) != 0)
        fail_msg("catalog: %s", err.msg);
    agora__catalog_free(&c);
    agora__seckey_wipe(&key);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/agora-stmt-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cat, sizeof f->cat, "%s/cat", f->dir);
    make_catalog(f);
    static const char *const names[2] = {"north", "south"};
    for (int i = 0; i < 2; i++) {
        agora__error err = {0};
        snprintf(f->home[i], sizeof f->home[i], "%s/%s", f->dir, names[i]);
        assert_int_equal(agora__mkdirs(f->home[i], 0700, &err), 0);
        uint8_t secret[32] = {(uint8_t)(i + 1)};
        assert_int_equal(agora__ledger_open(f->home[i], secret, &f->l[i], &err), 0);
        assert_int_equal(agora__trust_clinic_key_ensure(f->home[i], NULL, NULL, &err), 0);
        char pub[200];
        snprintf(pub, sizeof pub, "%s/clinic.pub", f->home[i]);
        agora__trust_clinic c;
        int already;
        if (agora__trust_clinic_register(f->cat, names[i], pub, &c, &already, &err) != 0)
            fail_msg("register: %s", err.msg);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    agora__ledger_close(f->l[0]);
    agora__ledger_close(f->l[1]);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void record(fixture *f, int clinic, uint64_t ms, int64_t price)
{
    agora__ledger_pricing p = {.plugin_id = "org.example.nodule",
                               .plugin_version = "1.2.0",
                               .vendor = "Example Vendor",
                               .catalog_version = 1,
                               .model = AGORA__MODEL_PER_STUDY,
                               .price_minor = price,
                               .currency = "EUR",
                               .vendor_share_bps = 7000};
    char id[AGORA__LEDGER_ID_LEN + 1], unit[32];
    agora__error err = {0};
    assert_int_equal(agora__ledger_mint_at(ms, id, &err), 0);
    snprintf(unit, sizeof unit, "1.2.826.0.%d", ++f->units);
    const char *units[] = {unit};
    agora__ledger_outcome o = {.invocation_id = id,
                               .status = "ok",
                               .validated = 1,
                               .units = units,
                               .n_units = 1,
                               .pricing = &p};
    if (agora__ledger_record(f->l[clinic], &o, NULL, &err) != 0)
        fail_msg("record: %s", err.msg);
}

/* Export clinic `data`'s ledger for period, naming and signed by clinic `signer`'s key (the
 * same clinic, except when a test forges), and write it to DIR/name. */
static void export_as(fixture *f, int data, int signer, const char *period, const char *name,
                      char *path)
{
    char sig[256], kid[17], pk[65];
    agora__error err = {0};
    assert_int_equal(agora__trust_clinic_key_ensure(f->home[signer], NULL, kid, &err), 0);
    char *buf = NULL;
    size_t len = 0;
    if (agora__ledger_period_export(f->l[data], period, kid, &buf, &len, NULL, &err) != 0)
        fail_msg("export: %s", err.msg);
    assert_int_equal(agora__trust_clinic_sign(
                         f->home[signer], (const uint8_t *)buf + AGORA__EXPORT_SIG_LINE,
                         len - AGORA__EXPORT_SIG_LINE, sig, sizeof sig, kid, pk, NULL, &err),
                     0);
    assert_int_equal(strlen(sig), AGORA__EXPORT_SIG_LINE);
    memcpy(buf, sig, AGORA__EXPORT_SIG_LINE);
    sprintf(path, "%s/%s", f->dir, name);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, len, out), len);
    fclose(out);
    free(buf);
}

static void export_to(fixture *f, int clinic, const char *period, const char *name, char *path)
{
    export_as(f, clinic, clinic, period, name, path);
}

static int statement(fixture *f, const char *period, const char *a, const char *b,
                     agora__error *err, json_t **doc)
{
    const char *paths[2] = {a, b};
    int verified;
    json_t *d = NULL;
    int rc = agora__statement_clinics(f->cat, NULL, period, paths, b ? 2 : 1, &d, &verified, err);
    if (doc != NULL)
        *doc = d;
    else
        json_decref(d);
    return rc;
}

static void expect_refused(fixture *f, const char *period, const char *a, const char *b,
                           const char *why)
{
    agora__error err = {0};
    json_t *doc = NULL;
    assert_int_not_equal(statement(f, period, a, b, &err, &doc), 0);
    assert_null(doc);
    if (strstr(err.msg, why) == NULL)
        fail_msg("expected '%s' in: %s", why, err.msg);
}

static void expect_ok(fixture *f, const char *period, const char *a, const char *b)
{
    agora__error err = {0};
    if (statement(f, period, a, b, &err, NULL) != 0)
        fail_msg("refused: %s", err.msg);
}

static int64_t gross(const json_t *doc)
{
    return (int64_t)json_integer_value(
        json_object_get(json_array_get(json_object_get(doc, "totals"), 0), "gross_minor"));
}

static void test_periods_interleaved(void **state)
{
    fixture *f = *state;
    char mar[200], apr[200], mar2[200];
    record(f, 0, MAR_MS, 150);
    record(f, 0, APR_MS, 150);
    record(f, 0, MAR_MS + 1, 150);
    export_to(f, 0, "2026-03", "mar", mar);
    expect_ok(f, "2026-03", mar, NULL);
    record(f, 0, APR_MS + 1, 150);
    export_to(f, 0, "2026-04", "apr", apr);
    agora__error err = {0};
    json_t *doc = NULL;
    assert_int_equal(statement(f, "2026-04", apr, NULL, &err, &doc), 0);
    assert_int_equal(gross(doc), 300); /* April's two rows, not March's inside the segment */
    json_decref(doc);
    /* March again, later: it extends the accepted March export. */
    record(f, 0, MAR_MS + 2, 150);
    export_to(f, 0, "2026-03", "mar2", mar2);
    assert_int_equal(statement(f, "2026-03", mar2, NULL, &err, &doc), 0);
    assert_int_equal(gross(doc), 450);
    json_decref(doc);
    /* The old March export is no longer the accepted one, and it does not extend it. */
    expect_refused(f, "2026-03", mar, NULL, "ends at seq 3, before the head");
}

static void test_gap(void **state)
{
    fixture *f = *state;
    char mar[200], may[200];
    record(f, 0, MAR_MS, 150);
    export_to(f, 0, "2026-03", "mar", mar);
    expect_ok(f, "2026-03", mar, NULL);
    record(f, 0, APR_MS, 150); /* seq 2: never exported */
    record(f, 0, MAY_MS, 150);
    export_to(f, 0, "2026-05", "may", may);
    expect_refused(f, "2026-05", may, NULL, "rows 2..2 are in no accepted export");
}

static void test_catalog_prices(void **state)
{
    fixture *f = *state;
    char a[200];
    record(f, 0, MAR_MS, 149);
    export_to(f, 0, "2026-03", "a", a);
    expect_refused(f, "2026-03", a, NULL, "but the catalog (version 1) says per-study 150 EUR");
}

static void test_same_invocation_in_two_clinics(void **state)
{
    fixture *f = *state;
    char a[200], b[200];
    record(f, 0, MAR_MS, 150);
    export_to(f, 0, "2026-03", "a", a);
    /* South signs north's rows as its own. */
    export_as(f, 0, 1, "2026-03", "b", b);
    expect_refused(f, "2026-03", a, b, "overlap");
    /* Nothing was recorded by the refusal: north's export alone is still a first export. */
    expect_ok(f, "2026-03", a, NULL);
}

static void test_two_clinics_sum(void **state)
{
    fixture *f = *state;
    char a[200], b[200];
    record(f, 0, MAR_MS, 150);
    record(f, 0, MAR_MS + 1, 150);
    record(f, 1, MAR_MS, 150);
    export_to(f, 0, "2026-03", "a", a);
    export_to(f, 1, "2026-03", "b", b);
    agora__error err = {0};
    json_t *doc = NULL;
    assert_int_equal(statement(f, "2026-03", a, b, &err, &doc), 0);
    json_t *line = json_array_get(
        json_object_get(json_array_get(json_object_get(doc, "vendors"), 0), "lines"), 0);
    /* 300 -> 210 vendor; 150 -> 105: per clinic floors, summed. */
    assert_int_equal(json_integer_value(json_object_get(line, "gross_minor")), 450);
    assert_int_equal(json_integer_value(json_object_get(line, "vendor_share_minor")), 315);
    assert_int_equal(json_array_size(json_object_get(line, "clinics")), 2);
    json_decref(doc);
    expect_refused(f, "2026-03", a, a, "given twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_periods_interleaved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_prices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_invocation_in_two_clinics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_clinics_sum, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
