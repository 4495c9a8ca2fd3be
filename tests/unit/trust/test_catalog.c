/* The catalog: canonical serialisation round-trips, the signature is checked before parsing
 * and over the exact bytes, unknown keys are refused, and the small parsers it relies on
 * (semver, reverse-DNS, UTC time, --expires) are strict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "fixtures.h"

static agora__seckey op, rogue;

static void keypair(agora__seckey *k)
{
    crypto_sign_keypair(k->pub.pk, k->sk);
    agora__key_id(k->pub.pk, k->pub.id);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    keypair(&op);
    keypair(&rogue);
    return 0;
}

static void make_catalog(agora__catalog *c)
{
    memset(c, 0, sizeof *c);
    c->version = 7;
    c->issued = 1795000000;
    c->expires = 1797592000;
    agora__strlcpy(c->key_id, op.pub.id, sizeof c->key_id);
    const char *versions[] = {"1.10.0", "1.2.0", "1.2.0-beta"};
    for (int i = 0; i < 3; i++) {
        agora__cat_entry *e = agora__catalog_add(c, NULL);
        assert_non_null(e);
        agora__strlcpy(e->id, "com.example.nodules", sizeof e->id);
        agora__strlcpy(e->version, versions[i], sizeof e->version);
        agora__strlcpy(e->name, "Nodule \"finder\" \xc3\xa9", sizeof e->name);
        agora__strlcpy(e->vendor, "Example", sizeof e->vendor);
        agora__strlcpy(e->level, i == 0 ? "clinical" : "research", sizeof e->level);
        memset(e->plugin_sha, 0x11 * (i + 1), 32);
        memset(e->manifest_sha, 0x22 * (i + 1), 32);
        e->plugin_size = 1000 + (uint64_t)i;
        e->manifest_size = 500;
        e->granted = AGORA__OPT_RTN_PAT_CHARS;
        agora__strlcpy(e->pricing.model, "per-study", sizeof e->pricing.model);
        e->pricing.price_minor = 150;
        agora__strlcpy(e->pricing.currency, "EUR", sizeof e->pricing.currency);
        e->pricing.vendor_share_bps = 7000;
        e->certified_at = 1795000000;
    }
    c->entries[1].revoked = 1;
    c->entries[1].revoked_at = 1795000100;
    agora__strlcpy(c->entries[1].reason, "bad results", sizeof c->entries[1].reason);
    agora__strlcpy(c->entries[2].vendor_key_id, "0123456789abcdef",
                   sizeof c->entries[2].vendor_key_id);
}

static void test_roundtrip_canonical(void **state)
{
    (void)state;
    agora__catalog c, back;
    agora__error err = {0};
    make_catalog(&c);
    char *text, *again;
    size_t len, len2;
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    assert_int_equal(text[len - 1], '\n');
    assert_int_equal(agora__catalog_parse((const uint8_t *)text, len, &back, &err), 0);
    assert_int_equal(back.version, 7);
    assert_int_equal(back.expires, 1797592000);
    assert_int_equal(back.n, 3);
    /* Entries come back sorted by semver: 1.2.0-beta < 1.2.0 < 1.10.0. */
    assert_string_equal(back.entries[0].version, "1.2.0-beta");
    assert_string_equal(back.entries[1].version, "1.2.0");
    assert_string_equal(back.entries[2].version, "1.10.0");
    const agora__cat_entry *r = agora__catalog_find(&back, "com.example.nodules", "1.2.0");
    assert_non_null(r);
    assert_true(r->revoked);
    assert_string_equal(r->reason, "bad results");
    assert_int_equal(r->revoked_at, 1795000100);
    assert_string_equal(back.entries[0].vendor_key_id, "0123456789abcdef");
    assert_string_equal(back.entries[0].name, "Nodule \"finder\" \xc3\xa9");
    /* Serialising what was parsed gives the same bytes. */
    assert_int_equal(agora__catalog_serialize(&back, &again, &len2, &err), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(text, again, len);
    free(text);
    free(again);
    agora__catalog_free(&c);
    agora__catalog_free(&back);
}

/* The pinned certification report (issue 16): round-trips, is absent from entries without one
 * (so older catalogs load and serialise unchanged), and a malformed pin is refused. */
static void test_certification_report_pin(void **state)
{
    (void)state;
    agora__catalog c, back;
    agora__error err = {0};
    make_catalog(&c);
    c.entries[0].has_report = 1;
    memset(c.entries[0].report_sha, 0xab, 32);
    c.entries[0].report_size = 4321;
    char *text;
    size_t len;
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    assert_non_null(strstr(text, "\"certification_report\": {"));
    assert_int_equal(agora__catalog_parse((const uint8_t *)text, len, &back, &err), 0);
    const agora__cat_entry *e = agora__catalog_find(&back, "com.example.nodules", "1.10.0");
    assert_non_null(e);
    assert_true(e->has_report);
    assert_int_equal(e->report_size, 4321);
    uint8_t want[32];
    memset(want, 0xab, 32);
    assert_memory_equal(e->report_sha, want, 32);
    size_t with = 0;
    for (size_t i = 0; i < back.n; i++)
        with += back.entries[i].has_report != 0;
    assert_int_equal(with, 1);
    agora__catalog_free(&back);
    /* A size of 0 or over the bound, or a short hash, is refused. */
    const char *bad[] = {"\"size\": 4321", "\"sha256\": \"abababab"};
    const char *repl[] = {"\"size\": 0", "\"sha256\": \"abab"};
    for (size_t i = 0; i < 2; i++) {
        char *pin = strstr(text, "\"certification_report\"");
        assert_non_null(pin);
        char *at = strstr(pin, bad[i]);
        assert_non_null(at);
        size_t head = (size_t)(at - text), blen = strlen(bad[i]), rlen = strlen(repl[i]);
        char *mod = malloc(len + 1);
        assert_non_null(mod);
        memcpy(mod, text, head);
        memcpy(mod + head, repl[i], rlen);
        memcpy(mod + head + rlen, at + blen, len - head - blen + 1);
        assert_int_not_equal(agora__catalog_parse((const uint8_t *)mod, strlen(mod), &back, &err),
                             0);
        assert_non_null(strstr(err.msg, "certification_report"));
        free(mod);
    }
    free(text);
    agora__catalog_free(&c);
}

static void sign(const char *text, size_t len, const agora__seckey *k, char *line, size_t size)
{
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)text, len, k->sk);
    agora__sig_format(&k->pub, sig, line, size);
}

static void test_verify_before_parse(void **state)
{
    (void)state;
    agora__catalog c, out;
    agora__error err = {0};
    make_catalog(&c);
    char *text;
    size_t len;
    char line[AGORA__SIG_TEXT_MAX];
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    sign(text, len, &op, line, sizeof line);
    agora__pubkey keys[2] = {rogue.pub, op.pub};
    assert_int_equal(agora__catalog_verify_parse((const uint8_t *)text, len, (const uint8_t *)line,
                                                 strlen(line), keys, 2, &out, &err),
                     0);
    agora__catalog_free(&out);
    /* Not trusted. */
    assert_int_not_equal(agora__catalog_verify_parse((const uint8_t *)text, len,
                                                     (const uint8_t *)line, strlen(line), keys, 1,
                                                     &out, &err),
                         0);
    assert_non_null(strstr(err.msg, "not trusted"));
    /* Every single-byte change of the document is refused. */
    for (size_t i = 0; i < len; i++) {
        text[i] ^= 1;
        if (agora__catalog_verify_parse((const uint8_t *)text, len, (const uint8_t *)line,
                                        strlen(line), keys, 2, &out, &err) == 0)
            fail_msg("accepted a catalog with byte %zu changed", i);
        text[i] ^= 1;
    }
    /* Signed by the rogue key but claiming the operator's key id: the signature fails. */
    char forged[AGORA__SIG_TEXT_MAX];
    sign(text, len, &rogue, forged, sizeof forged);
    memcpy(forged + strlen("agora-signature v1 ed25519 "), op.pub.id, 16);
    assert_int_not_equal(agora__catalog_verify_parse((const uint8_t *)text, len,
                                                     (const uint8_t *)forged, strlen(forged), keys,
                                                     2, &out, &err),
                         0);
    assert_non_null(strstr(err.msg, "does not verify"));
    /* Garbage signature lines. */
    assert_int_not_equal(agora__catalog_verify_parse((const uint8_t *)text, len,
                                                     (const uint8_t *)"", 0, keys, 2, &out, &err),
                         0);
    free(text);
    agora__catalog_free(&c);
}

static void test_parse_strict(void **state)
{
    (void)state;
    agora__catalog out;
    agora__error err;
    const char *bad[] = {
        "[]",
        "{\"format\":\"agora-catalog/2\",\"version\":1,\"issued\":\"2026-01-01T00:00:00Z\","
        "\"expires\":\"2026-02-01T00:00:00Z\",\"key_id\":\"0123456789abcdef\",\"entries\":[]}",
        "{\"format\":\"agora-catalog/1\",\"version\":0,\"issued\":\"2026-01-01T00:00:00Z\","
        "\"expires\":\"2026-02-01T00:00:00Z\",\"key_id\":\"0123456789abcdef\",\"entries\":[]}",
        "{\"format\":\"agora-catalog/1\",\"version\":1,\"issued\":\"2026-01-01\","
        "\"expires\":\"2026-02-01T00:00:00Z\",\"key_id\":\"0123456789abcdef\",\"entries\":[]}",
        "{\"format\":\"agora-catalog/1\",\"version\":1,\"issued\":\"2026-01-01T00:00:00Z\","
        "\"expires\":\"2026-02-01T00:00:00Z\",\"key_id\":\"0123456789abcdef\",\"entries\":[],"
        "\"mirrors\":[]}",
        "{\"format\":\"agora-catalog/1\",\"version\":1,\"issued\":\"2026-01-01T00:00:00Z\","
        "\"expires\":\"2026-02-01T00:00:00Z\",\"key_id\":\"0123456789abcdef\",\"entries\":[{}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (agora__catalog_parse((const uint8_t *)bad[i], strlen(bad[i]), &out, &err) == 0)
            fail_msg("accepted bad catalog %zu", i);
    }
    const char *good =
        "{\"format\":\"agora-catalog/1\",\"version\":1,\"issued\":\"2026-01-01T00:00:00Z\","
        "\"expires\":\"2026-02-01T00:00:00Z\",\"key_id\":\"0123456789abcdef\",\"entries\":[]}";
    assert_int_equal(agora__catalog_parse((const uint8_t *)good, strlen(good), &out, &err), 0);
    assert_int_equal(out.n, 0);
    agora__catalog_free(&out);
}

static void test_duplicate_entries_refused(void **state)
{
    (void)state;
    agora__catalog c, out;
    agora__error err;
    make_catalog(&c);
    agora__strlcpy(c.entries[1].version, "1.10.0", sizeof c.entries[1].version);
    char *text;
    size_t len;
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    assert_int_not_equal(agora__catalog_parse((const uint8_t *)text, len, &out, &err), 0);
    assert_non_null(strstr(err.msg, "twice"));
    free(text);
    agora__catalog_free(&c);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(agora__semver_valid("0.0.1"));
    assert_true(agora__semver_valid("1.2.3-alpha.1+sha.5114f85"));
    assert_false(agora__semver_valid("1.2"));
    assert_false(agora__semver_valid("1.2.3-01"));
    assert_false(agora__semver_valid("1.2.3-"));
    assert_false(agora__semver_valid("1.2.3+"));
    assert_false(agora__semver_valid("v1.2.3"));
    assert_false(agora__semver_valid("1.2.3/.."));
    assert_true(agora__semver_cmp("1.10.0", "1.9.0") > 0);
    assert_true(agora__semver_cmp("1.0.0-alpha", "1.0.0") < 0);
    assert_true(agora__semver_cmp("1.0.0-alpha.1", "1.0.0-alpha") > 0);
    assert_true(agora__semver_cmp("1.0.0-alpha.beta", "1.0.0-alpha.1") > 0);
    assert_true(agora__semver_cmp("1.0.0-rc.11", "1.0.0-rc.2") > 0);
    assert_int_equal(agora__semver_cmp("1.0.0+a", "1.0.0+b"), 0);
    assert_true(agora__reverse_dns_valid("com.example.nodules"));
    assert_true(agora__reverse_dns_valid("org.a-b.x1"));
    assert_false(agora__reverse_dns_valid("example"));
    assert_false(agora__reverse_dns_valid("com..example"));
    assert_false(agora__reverse_dns_valid("com.example."));
    assert_false(agora__reverse_dns_valid("com.-x.y"));
    assert_false(agora__reverse_dns_valid("com.Example"));
    assert_false(agora__reverse_dns_valid("com/../x.y"));
    assert_false(agora__reverse_dns_valid("1com.x"));
    uint32_t bit;
    assert_int_equal(agora__trust_option_parse("rtnPatCharsOpt", &bit), 0);
    assert_int_equal(bit, AGORA__OPT_RTN_PAT_CHARS);
    assert_int_not_equal(agora__trust_option_parse("rtnUIDsOpt", &bit), 0);
    char buf[128];
    agora__trust_options_format(0, buf, sizeof buf);
    assert_string_equal(buf, "none");
    agora__trust_options_format(AGORA__OPT_RTN_DEV_ID | AGORA__OPT_CLEAN_DESC, buf, sizeof buf);
    assert_string_equal(buf, "rtnDevIdOpt,cleanDescOpt");
}

static void test_time(void **state)
{
    (void)state;
    int64_t t;
    char text[AGORA__TIME_TEXT];
    assert_int_equal(agora__time_parse("2026-11-22T19:30:00Z", &t), 0);
    agora__time_format(t, text);
    assert_string_equal(text, "2026-11-22T19:30:00Z");
    assert_int_not_equal(agora__time_parse("2026-02-30T00:00:00Z", &t), 0);
    assert_int_not_equal(agora__time_parse("2026-11-22T19:30:00+01:00", &t), 0);
    assert_int_not_equal(agora__time_parse("2026-11-22 19:30:00Z", &t), 0);
    agora__error err;
    int64_t now = 1795000000, out;
    assert_int_equal(agora__expires_parse("30", now, &out, &err), 0);
    assert_int_equal(out, now + 30 * 86400);
    assert_int_not_equal(agora__expires_parse("0", now, &out, &err), 0);
    assert_int_not_equal(agora__expires_parse("3651", now, &out, &err), 0);
    assert_int_equal(agora__expires_parse("2099-01-01", now, &out, &err), 0);
    assert_int_not_equal(agora__expires_parse("2020-01-01", now, &out, &err), 0);
    assert_non_null(strstr(err.msg, "past"));
    assert_int_not_equal(agora__expires_parse("soon", now, &out, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_canonical),
        cmocka_unit_test(test_certification_report_pin),
        cmocka_unit_test(test_verify_before_parse),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_duplicate_entries_refused),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
