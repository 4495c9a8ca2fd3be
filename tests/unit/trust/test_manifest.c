/* Manifest validation: the valid example parses into the right fields, and each broken field is
 * refused with a message that names it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixtures.h"

static char valid[4096];
static size_t valid_len;

static int setup(void **state)
{
    (void)state;
    valid_len = fix_manifest(valid, sizeof valid, "com.example.nodules", "1.2.3-rc.1+build.5");
    return 0;
}

static void test_study_scope(void **state)
{
    (void)state;
    char buf[8192];
    const char *abi = strstr(valid, "\"abi\": \"1.0\""), *mf = strstr(valid, "\"min_frames\": 10");
    assert_non_null(abi);
    assert_non_null(mf);
    /* abi 1.1 and "scope": "study" (abi comes before inputs in the fixture) */
    snprintf(buf, sizeof buf, "%.*s\"abi\": \"1.1\"%.*s\"min_frames\": 10, \"scope\": \"study\"%s",
             (int)(abi - valid), valid, (int)(mf - abi - 12), abi + 12, mf + 16);
    agora__manifest m;
    agora__error err = {0};
    assert_int_equal(agora__manifest_parse((const uint8_t *)buf, strlen(buf), &m, &err), 0);
    assert_int_equal(m.study_scope, 1);
    assert_int_equal(m.abi_minor, 1);
    assert_int_equal(agora__manifest_parse((const uint8_t *)valid, valid_len, &m, &err), 0);
    assert_int_equal(m.study_scope, 0); /* the default: series */
}

static void test_valid(void **state)
{
    (void)state;
    agora__manifest m;
    agora__error err = {0};
    assert_int_equal(agora__manifest_parse((const uint8_t *)valid, valid_len, &m, &err), 0);
    assert_string_equal(m.id, "com.example.nodules");
    assert_string_equal(m.version, "1.2.3-rc.1+build.5");
    assert_int_equal(m.abi_major, 1);
    assert_int_equal(m.abi_minor, 0);
    assert_int_equal(m.n_modalities, 1);
    assert_string_equal(m.modalities[0], "CT");
    assert_int_equal(m.any_modality, 0);
    assert_string_equal(m.body_parts[0], "CHEST");
    assert_int_equal(m.min_frames, 10);
    assert_int_equal(m.max_frames, 100000);
    assert_int_equal(m.permissions, AGORA__OPT_RTN_PAT_CHARS | AGORA__OPT_RTN_DEV_ID);
    assert_int_equal(m.memory_mb, 512);
    assert_int_equal(m.time_s, 60);
    assert_int_equal(m.threads, 2);
    assert_int_equal(m.outputs, AGORA__OUT_FINDINGS | AGORA__OUT_MEASUREMENTS);
    assert_true(m.has_pricing);
    assert_string_equal(m.pricing_model, "per-study");
    assert_int_equal(m.pricing_price_minor, 150);
    assert_string_equal(m.pricing_currency, "EUR");
}

/* Replace the first occurrence of from with to in the valid manifest and expect a refusal whose
 * message contains expect. */
static void expect_refused(const char *from, const char *to, const char *expect)
{
    char buf[8192];
    const char *at = strstr(valid, from);
    if (at == NULL)
        fail_msg("fixture does not contain %s", from);
    size_t pre = (size_t)(at - valid);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)pre, valid, to, at + strlen(from));
    agora__manifest m;
    agora__error err = {0};
    int rc = agora__manifest_parse((const uint8_t *)buf, strlen(buf), &m, &err);
    if (rc == 0)
        fail_msg("accepted a manifest with %s -> %s", from, to);
    if (strstr(err.msg, expect) == NULL)
        fail_msg("message '%s' does not contain '%s'", err.msg, expect);
    assert_string_equal(m.id, ""); /* nothing half-filled on failure */
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("\"memory_mb\": 512", "\"memory_mb\": 8",
                   "manifest.resources.memory_mb: must be an integer 16..65536");
    expect_refused("\"memory_mb\": 512", "\"memory_mb\": 512.5",
                   "manifest.resources.memory_mb: must be an integer 16..65536");
    expect_refused("\"memory_mb\": 512", "\"memory_mb\": \"512\"", "manifest.resources.memory_mb");
    expect_refused("\"time_s\": 60", "\"time_s\": 0", "manifest.resources.time_s");
    expect_refused("\"threads\": 2", "\"threads\": 65", "manifest.resources.threads");
    expect_refused("\"memory_mb\": 512, ", "", "manifest.resources.memory_mb: is required");
    expect_refused("\"com.example.nodules\"", "\"Com.Example\"", "manifest.id: must be");
    expect_refused("\"com.example.nodules\"", "\"nodots\"", "manifest.id");
    expect_refused("\"com.example.nodules\"", "\"com..example\"", "manifest.id");
    expect_refused("\"com.example.nodules\"", "\"com.example/../x\"", "manifest.id");
    expect_refused("\"1.2.3-rc.1+build.5\"", "\"1.2\"", "manifest.version");
    expect_refused("\"1.2.3-rc.1+build.5\"", "\"01.2.3\"", "manifest.version");
    expect_refused("\"abi\": \"1.0\"", "\"abi\": \"1\"", "manifest.abi");
    expect_refused("\"abi\": \"1.0\"", "\"abi\": \"-1.0\"", "manifest.abi");
    expect_refused("[\"CT\"]", "[]", "manifest.inputs.modalities");
    expect_refused("[\"CT\"]", "[\"ct\"]", "manifest.inputs.modalities");
    expect_refused("[\"CT\"]", "[\"CT\", \"*\"]", "manifest.inputs.modalities");
    expect_refused("[\"CT\"]", "[\"CT\", \"CT\"]", "duplicate");
    expect_refused("\"min_frames\": 10", "\"min_frames\": 10, \"max_frames\": 5",
                   "manifest.inputs.max_frames: must be >= inputs.min_frames");
    /* study scope (org.agora.study/1): a known value, and only for ABI 1.1+ */
    expect_refused("\"min_frames\": 10", "\"min_frames\": 10, \"scope\": \"volume\"",
                   "manifest.inputs.scope: must be \"series\" or \"study\"");
    expect_refused("\"min_frames\": 10", "\"min_frames\": 10, \"scope\": \"study\"",
                   "manifest.inputs.scope: \"study\" needs \"abi\": \"1.1\"");
    expect_refused("\"rtnDevIdOpt\"", "\"rtnUIDsOpt\"", "manifest.permissions");
    expect_refused("\"rtnDevIdOpt\"", "\"rtnPatCharsOpt\"",
                   "manifest.permissions: has a duplicate");
    expect_refused("[\"findings\", \"measurements\"]", "[\"pictures\"]", "manifest.outputs");
    expect_refused("\"per-study\"", "\"per-minute\"", "manifest.pricing.model");
    expect_refused("\"EUR\"", "\"eur\"", "manifest.pricing.currency");
    expect_refused("\"price\": 150", "\"price\": -1", "manifest.pricing.price");
    expect_refused("\"vendor\": \"Example Imaging\"", "\"vendor\": \"\"", "manifest.vendor");
    expect_refused("\"name\": \"Nodule finder\"", "\"name\": \"Nodule\\u0007finder\"",
                   "manifest.name");
    expect_refused("\"name\": \"Nodule finder\"", "\"name\": \"a\", \"name\": \"b\"",
                   "not valid JSON");
    expect_refused("\"abi\": \"1.0\",", "\"abi\": \"1.0\", \"extra\": 1,",
                   "manifest.extra: unknown field");
    expect_refused("\"threads\": 2", "\"threads\": 2, \"gpu\": 1",
                   "manifest.resources.gpu: unknown field");
}

static void test_star_and_limits(void **state)
{
    (void)state;
    char buf[8192];
    const char *at = strstr(valid, "[\"CT\"]");
    snprintf(buf, sizeof buf, "%.*s[\"*\"]%s", (int)(at - valid), valid, at + 6);
    agora__manifest m;
    agora__error err = {0};
    assert_int_equal(agora__manifest_parse((const uint8_t *)buf, strlen(buf), &m, &err), 0);
    assert_true(m.any_modality);

    /* Larger than 64 KiB: refused before parsing. */
    size_t big = AGORA__TRUST_MANIFEST_MAX + 1;
    uint8_t *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    assert_int_equal(agora__manifest_parse(huge, big, &m, &err), AGORA_ELIMIT);
    free(huge);

    /* A description over 4096 bytes. */
    char *longdesc = malloc(16384);
    assert_non_null(longdesc);
    char filler[5000];
    memset(filler, 'x', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    at = strstr(valid, "Finds nodules.");
    snprintf(longdesc, 16384, "%.*s%s%s", (int)(at - valid), valid, filler, at + 14);
    assert_int_not_equal(
        agora__manifest_parse((const uint8_t *)longdesc, strlen(longdesc), &m, &err), 0);
    assert_non_null(strstr(err.msg, "manifest.description"));
    free(longdesc);

    /* Not an object, invalid UTF-8. */
    assert_int_not_equal(agora__manifest_parse((const uint8_t *)"[]", 2, &m, &err), 0);
    const char bad_utf8[] = "{\"id\": \"\xff\xfe\"}";
    assert_int_not_equal(
        agora__manifest_parse((const uint8_t *)bad_utf8, sizeof bad_utf8 - 1, &m, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_study_scope),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_star_and_limits),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
