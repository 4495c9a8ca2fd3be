/* Unit tests: UID hashing, Annex E lookups and option resolution, date shifting, the UID map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "deid.h"
#include "rules.h"

static const uint8_t key_a[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                  16, 15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  3,  2,  1};

static void test_uid_stable_and_keyed(void **state)
{
    (void)state;
    char a1[65], a2[65], b1[65], other[65];
    agora__error err = {0};
    assert_int_equal(agora__deid_uid(key_a, "1.2.840.113619.2.55.3.1234", a1, &err), 0);
    assert_int_equal(agora__deid_uid(key_a, "1.2.840.113619.2.55.3.1234", a2, &err), 0);
    assert_string_equal(a1, a2);
    assert_int_equal(agora__deid_uid(key_b, "1.2.840.113619.2.55.3.1234", b1, &err), 0);
    assert_string_not_equal(a1, b1);
    assert_int_equal(agora__deid_uid(key_a, "1.2.840.113619.2.55.3.1235", other, &err), 0);
    assert_string_not_equal(a1, other);
    /* DICOM padding does not change the pseudonym. */
    assert_int_equal(agora__deid_uid(key_a, "1.2.840.113619.2.55.3.1234 ", a2, &err), 0);
    assert_string_equal(a1, a2);
    assert_int_equal(strncmp(a1, "2.25.", 5), 0);
}

/* The decimal must equal the first 128 bits of the HMAC, computed independently here. */
static void test_uid_decimal(void **state)
{
    (void)state;
    const char *uid = "1.2.3.4.5";
    uint8_t mac[32];
    crypto_auth_hmacsha256_state st;
    static const char domain[] = "agora.deid.uid.v1";
    crypto_auth_hmacsha256_init(&st, key_a, 32);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain, sizeof domain);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)uid, strlen(uid));
    crypto_auth_hmacsha256_final(&st, mac);
    unsigned __int128 v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 8) | mac[i];
    char digits[41];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    char expect[64] = "2.25.";
    for (int i = 0; i < n; i++)
        expect[5 + i] = digits[n - 1 - i];
    expect[5 + n] = '\0';
    char got[65];
    assert_int_equal(agora__deid_uid(key_a, uid, got, NULL), 0);
    assert_string_equal(got, expect);
}

static void test_uid_syntax_many(void **state)
{
    (void)state;
    char in[80], out[65];
    for (int i = 0; i < 5000; i++) {
        snprintf(in, sizeof in, "1.2.826.0.1.3680043.%d.%d", i, i * 7);
        assert_int_equal(agora__deid_uid(key_b, in, out, NULL), 0);
        assert_true(strlen(out) <= 64);
        assert_true(agora__deid_uid_valid(out, strlen(out)));
    }
}

static void test_uid_refuses(void **state)
{
    (void)state;
    char out[65];
    agora__error err = {0};
    assert_int_equal(agora__deid_uid(key_a, "", out, &err), AGORA_EINVAL);
    assert_int_equal(agora__deid_uid(key_a, "   ", out, &err), AGORA_EINVAL);
    assert_int_equal(agora__deid_uid(NULL, "1.2", out, &err), AGORA_EINVAL);
    char big[AGORA__DEID_UID_INPUT_MAX + 10];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(agora__deid_uid(key_a, big, out, &err), AGORA_ELIMIT);
    /* The validator itself. */
    assert_true(agora__deid_uid_valid("1.2.0.3", 7));
    assert_false(agora__deid_uid_valid("1.02.3", 6));
    assert_false(agora__deid_uid_valid("1..3", 4));
    assert_false(agora__deid_uid_valid("1.2.", 4));
    assert_false(agora__deid_uid_valid("1.a", 3));
}

static uint32_t T(uint16_t g, uint16_t e)
{
    return ((uint32_t)g << 16) | e;
}

static void test_rules_lookup(void **state)
{
    (void)state;
    const agora__deid_rule *r = agora__deid_rule_find(T(0x0010, 0x0010));
    assert_non_null(r);
    assert_string_equal(r->keyword, "PatientName");
    assert_true(r->basic & AGORA__DEID_Z);
    /* Patterns. */
    r = agora__deid_rule_find(T(0x6002, 0x3000));
    assert_non_null(r);
    assert_string_equal(r->name, "Overlay Data");
    r = agora__deid_rule_find(T(0x601E, 0x4000));
    assert_non_null(r);
    assert_string_equal(r->name, "Overlay Comments");
    r = agora__deid_rule_find(T(0x5010, 0x1234));
    assert_non_null(r);
    assert_string_equal(r->name, "Curve Data");
    r = agora__deid_rule_find(T(0x0009, 0x1001));
    assert_non_null(r);
    assert_true(r->odd_group);
    /* Not listed: pixel geometry is kept. */
    assert_null(agora__deid_rule_find(T(0x0028, 0x0010)));
    assert_null(agora__deid_rule_find(T(0x6000, 0x0010)));
    /* Every exact row is sorted (bsearch precondition) and found by its own tag. */
    for (size_t i = 0; i < agora__deid_rules_exact; i++) {
        if (i > 0)
            assert_true(agora__deid_rules[i - 1].tag < agora__deid_rules[i].tag);
        assert_ptr_equal(agora__deid_rule_find(agora__deid_rules[i].tag), &agora__deid_rules[i]);
    }
    assert_true(agora__deid_rules_count > 600);
}

static agora__deid_op op_of(uint16_t g, uint16_t e, uint32_t options)
{
    return agora__deid_resolve(agora__deid_rule_find(T(g, e)), options);
}

static void test_rules_resolve(void **state)
{
    (void)state;
    /* Basic Profile, combinations. */
    assert_int_equal(op_of(0x0010, 0x0010, 0), AGORA__DEID_OP_EMPTY);  /* Z */
    assert_int_equal(op_of(0x0008, 0x0080, 0), AGORA__DEID_OP_DUMMY);  /* X/Z/D */
    assert_int_equal(op_of(0x0008, 0x0022, 0), AGORA__DEID_OP_EMPTY);  /* X/Z */
    assert_int_equal(op_of(0x0008, 0x0021, 0), AGORA__DEID_OP_DUMMY);  /* X/D */
    assert_int_equal(op_of(0x0008, 0x0023, 0), AGORA__DEID_OP_DUMMY);  /* Z/D */
    assert_int_equal(op_of(0x0008, 0x0018, 0), AGORA__DEID_OP_UID);    /* U */
    assert_int_equal(op_of(0x0008, 0x1140, 0), AGORA__DEID_OP_KEEP);   /* X/Z/U*: recurse */
    assert_int_equal(op_of(0x0010, 0x1010, 0), AGORA__DEID_OP_REMOVE); /* X */
    assert_int_equal(op_of(0x0009, 0x1001, 0), AGORA__DEID_OP_REMOVE); /* private */
    assert_int_equal(op_of(0x0028, 0x0010, 0), AGORA__DEID_OP_KEEP);   /* unlisted */
    /* Options. */
    uint32_t pat = 1u << AGORA__PS315_RTN_PAT_CHARS, mod = 1u << AGORA__PS315_RTN_LONG_MODIF_DATES,
             full = 1u << AGORA__PS315_RTN_LONG_FULL_DATES, uids = 1u << AGORA__PS315_RTN_UIDS,
             desc = 1u << AGORA__PS315_CLEAN_DESC, dev = 1u << AGORA__PS315_RTN_DEV_ID;
    assert_int_equal(op_of(0x0010, 0x1010, pat), AGORA__DEID_OP_KEEP);
    assert_int_equal(op_of(0x0010, 0x0010, pat), AGORA__DEID_OP_EMPTY); /* name stays gone */
    assert_int_equal(op_of(0x0008, 0x0020, mod), AGORA__DEID_OP_SHIFT_DATE);
    assert_int_equal(op_of(0x0008, 0x0030, mod), AGORA__DEID_OP_KEEP); /* time of day */
    assert_int_equal(op_of(0x0008, 0x0020, full), AGORA__DEID_OP_KEEP);
    assert_int_equal(op_of(0x0008, 0x0020, full | mod), AGORA__DEID_OP_KEEP); /* K beats C */
    assert_int_equal(op_of(0x0010, 0x0030, mod), AGORA__DEID_OP_EMPTY);       /* birth date: no */
    assert_int_equal(op_of(0x0020, 0x000D, uids), AGORA__DEID_OP_KEEP);
    assert_int_equal(op_of(0x0018, 0x1000, dev), AGORA__DEID_OP_KEEP);
    /* cleanDescOpt is refused before resolution (see test_clean_options_refused); resolution
     * itself never keeps a description under it. */
    assert_int_equal(op_of(0x0008, 0x1030, desc), AGORA__DEID_OP_REMOVE);
    /* Specific Character Set is not in Table E.1-1: it is kept, so retained values and the
     * writer's ASCII dummies stay valid in the declared set. */
    assert_null(agora__deid_rule_find(0x00080005u));
    assert_int_equal(op_of(0x0008, 0x0005, 0), AGORA__DEID_OP_KEEP);
    assert_int_equal(op_of(0x0008, 0x1030, 0), AGORA__DEID_OP_REMOVE);
}

static void test_options(void **state)
{
    (void)state;
    assert_int_equal(agora__deid_option_from_name("rtnPatCharsOpt"), AGORA__PS315_RTN_PAT_CHARS);
    assert_int_equal(agora__deid_option_from_name("rtnSafePrivOpt"), AGORA__PS315_RTN_SAFE_PRIV);
    assert_int_equal(agora__deid_option_from_name("retainEverything"), -1);
    assert_string_equal(agora__deid_option_name(AGORA__PS315_RTN_UIDS), "rtnUIDsOpt");
    assert_null(agora__deid_option_name(AGORA__PS315_COUNT));
    const char *names[] = {"rtnDevIdOpt", "rtnLongModifDatesOpt"};
    uint32_t mask = 0;
    assert_int_equal(agora__deid_options_parse(names, 2, &mask, NULL), 0);
    assert_int_equal(mask,
                     (1u << AGORA__PS315_RTN_DEV_ID) | (1u << AGORA__PS315_RTN_LONG_MODIF_DATES));
    const char *bad[] = {"rtnDevIdOpt", "nope"};
    agora__error err = {0};
    assert_int_equal(agora__deid_options_parse(bad, 2, &mask, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    /* Safe private table. */
    assert_true(agora__deid_safe_private_find(0x0019, 0x0C, "SIEMENS MR HEADER", 17));
    assert_false(agora__deid_safe_private_find(0x0019, 0x0C, "SIEMENS MR HEADEr", 17));
    assert_true(agora__deid_safe_creator(0x0019, "SIEMENS MR HEADER", 17));
}

/* The clean* options are refused with the reason and what to do, never downgraded. */
static void test_clean_options_refused(void **state)
{
    (void)state;
    static const char *const clean[] = {"cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt"};
    for (size_t i = 0; i < 3; i++) {
        const char *names[] = {"rtnDevIdOpt", clean[i]};
        uint32_t mask = 0;
        agora__error err = {0};
        assert_int_equal(agora__deid_options_parse(names, 2, &mask, &err), AGORA_EUNSUPPORTED);
        assert_non_null(strstr(err.msg, clean[i]));
        assert_non_null(strstr(err.msg, "not performed"));
        assert_non_null(strstr(err.msg, "leave the option out"));
        int o = agora__deid_option_from_name(clean[i]);
        assert_true(o >= 0);
        assert_non_null(agora__deid_option_refusal(o));
    }
    for (int o = 0; o < AGORA__PS315_COUNT; o++)
        if (o != AGORA__PS315_CLEAN_DESC && o != AGORA__PS315_CLEAN_STRUCT &&
            o != AGORA__PS315_CLEAN_GRAPH)
            assert_null(agora__deid_option_refusal(o));
}

static void test_dates(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(agora__deid_shift_dates("20240301", 8, -1, out, sizeof out), 0);
    assert_string_equal(out, "20240229");
    assert_int_equal(agora__deid_shift_dates("20230301", 8, -1, out, sizeof out), 0);
    assert_string_equal(out, "20230228");
    assert_int_equal(agora__deid_shift_dates("20000101 ", 9, -365, out, sizeof out), 0);
    assert_string_equal(out, "19990101");
    assert_int_equal(agora__deid_shift_dates("20240115101112.5+0100", 21, -15, out, sizeof out), 0);
    assert_string_equal(out, "20231231101112.5+0100");
    assert_int_equal(agora__deid_shift_dates("20240110\\20240120", 17, -10, out, sizeof out), 0);
    assert_string_equal(out, "20231231\\20240110");
    assert_int_equal(agora__deid_shift_dates("2024-01-01", 10, -1, out, sizeof out), -1);
    assert_int_equal(agora__deid_shift_dates("20241301", 8, -1, out, sizeof out), -1);
    assert_int_equal(agora__deid_shift_dates("2024", 4, -1, out, sizeof out), -1);
    /* Offsets: keyed, per patient, in range. */
    int a = agora__deid_date_offset(key_a, "PID1", 4),
        b = agora__deid_date_offset(key_a, "PID1 ", 5);
    assert_int_equal(a, b);
    assert_true(a <= -365 && a >= -4015);
    int differ = 0;
    for (int i = 0; i < 8; i++) {
        char pid[16];
        snprintf(pid, sizeof pid, "P%d", i);
        differ |= agora__deid_date_offset(key_a, pid, strlen(pid)) !=
                  agora__deid_date_offset(key_b, pid, strlen(pid));
    }
    assert_true(differ);
}

static void test_uidmap(void **state)
{
    (void)state;
    agora__deid_uidmap *m = agora__deid_uidmap_new();
    assert_non_null(m);
    char p[65];
    for (int i = 0; i < 1000; i++) {
        char real[64];
        snprintf(real, sizeof real, "1.2.3.%d", i);
        assert_int_equal(agora__deid_uid(key_a, real, p, NULL), 0);
        assert_int_equal(agora__deid_uidmap_add(m, AGORA__DEID_UID_INSTANCE, p, real, NULL), 0);
        assert_int_equal(agora__deid_uidmap_add(m, AGORA__DEID_UID_INSTANCE, p, real, NULL), 0);
    }
    assert_int_equal(agora__deid_uidmap_count(m), 1000);
    assert_int_equal(agora__deid_uid(key_a, "1.2.3.777", p, NULL), 0);
    agora__deid_uid_kind kind = 0;
    assert_string_equal(agora__deid_uidmap_real(m, p, &kind), "1.2.3.777");
    assert_int_equal(kind, AGORA__DEID_UID_INSTANCE);
    assert_null(agora__deid_uidmap_real(m, "2.25.1", NULL));
    /* Same pseudonym, different real UID: refused, never silently remapped. */
    agora__error err = {0};
    assert_int_equal(agora__deid_uidmap_add(m, AGORA__DEID_UID_INSTANCE, p, "9.9.9", &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__deid_uidmap_add(m, AGORA__DEID_UID_STUDY, p, "1.2.3.777", &err),
                     AGORA_EINVAL);
    assert_null(strstr(err.msg, "1.2.3")); /* no UIDs in messages */
    agora__deid_uidmap_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uid_stable_and_keyed),
        cmocka_unit_test(test_uid_decimal),
        cmocka_unit_test(test_uid_syntax_many),
        cmocka_unit_test(test_uid_refuses),
        cmocka_unit_test(test_rules_lookup),
        cmocka_unit_test(test_rules_resolve),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_clean_options_refused),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_uidmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
