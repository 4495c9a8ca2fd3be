/* The PS3.15 options have one bit assignment (host/common/ps315.h) used by the catalog grant and
 * the clinic policy (trust.h AGORA__OPT_*, names.c), the de-identification rules and writer
 * (deid/rules.h, agora__deid_options_parse) and the plugin view (deid/view.c, the allowlist
 * groups). This walks every option, through each of those real parsing functions, and checks
 * that they mean the same option with the same bit, and that what the view releases under an
 * option is what the Annex E rules keep under that option - so one wrong assignment cannot hand
 * a plugin the wrong patient attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "allowlist.h"
#include "deid.h"
#include "rules.h"
#include "trust.h"

/* A dataset holding a well-formed value for every attribute of every allowlist group. */
static const agora__deid_allow *item_of(uint32_t tag)
{
    for (size_t g = 0; g < agora__deid_allow_groups_count; g++)
        for (size_t i = 0; i < agora__deid_allow_groups[g].count; i++)
            if (agora__deid_allow_groups[g].items[i].tag == tag)
                return &agora__deid_allow_groups[g].items[i];
    return NULL;
}

static int get_groups(void *ctx, uint32_t tag, char vr[3], const uint8_t **bytes, size_t *len)
{
    (void)ctx;
    static const uint8_t zeros[8] = {1};
    const agora__deid_allow *a = item_of(tag);
    if (a == NULL)
        return 0;
    memcpy(vr, a->vr, 3);
    const char *v = "ABC";
    if (strcmp(a->vr, "DA") == 0)
        v = "20200101";
    else if (strcmp(a->vr, "DT") == 0)
        v = "20200101120000";
    else if (strcmp(a->vr, "TM") == 0)
        v = "120000";
    else if (strcmp(a->vr, "AS") == 0)
        v = "045Y";
    else if (strcmp(a->vr, "DS") == 0 || strcmp(a->vr, "IS") == 0)
        v = "1";
    size_t n = strcmp(a->vr, "US") == 0 || strcmp(a->vr, "SS") == 0 ? 2
               : strcmp(a->vr, "UL") == 0 || strcmp(a->vr, "SL") == 0 || strcmp(a->vr, "FL") == 0
                   ? 4
               : strcmp(a->vr, "FD") == 0 ? 8
                                          : 0;
    *bytes = n ? zeros : (const uint8_t *)v;
    *len = n ? n : strlen(v);
    return 1;
}

static const agora__deid_allow_group *group_of(const char *name)
{
    for (size_t g = 0; g < agora__deid_allow_groups_count; g++)
        if (strcmp(agora__deid_allow_groups[g].option, name) == 0)
            return &agora__deid_allow_groups[g];
    return NULL;
}

static int view_has(const agora__deid_granted *v, const char *keyword)
{
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->attrs[i].keyword, keyword) == 0)
            return 1;
    return 0;
}

static void test_every_option_agrees(void **state)
{
    (void)state;
    static const uint8_t secret[32] = {1};
    uint32_t named = 0, grantable = 0;
    for (int i = 0; i < AGORA__PS315_COUNT; i++) {
        const agora__ps315_info *o = agora__ps315(i);
        const uint32_t bit = AGORA__PS315_BIT(i);
        assert_non_null(o);
        const char *name = o->name;
        /* The table: the name maps back to the option. */
        assert_int_equal(agora__ps315_from_name(name), i);

        /* Rules (agora deid --keep): same name, same index, performed iff WRITE. */
        assert_int_equal(agora__deid_option_from_name(name), i);
        assert_string_equal(agora__deid_option_name(i), name);
        uint32_t mask = 0;
        agora__error err = {0};
        const char *one[1] = {name};
        int rc = agora__deid_options_parse(one, 1, &mask, &err);
        if (o->uses & AGORA__PS315_WRITE) {
            assert_int_equal(rc, 0);
            assert_int_equal(mask, bit);
            assert_null(agora__deid_option_refusal(i));
        } else {
            assert_int_equal(rc, AGORA_EUNSUPPORTED);
            assert_non_null(agora__deid_option_refusal(i));
            assert_string_equal(err.msg, agora__deid_option_refusal(i));
        }

        /* Grant and policy (manifest, catalog, config.json, --grant, --allow). */
        uint32_t tbit = 0;
        if (o->uses & AGORA__PS315_NAMED) {
            named |= bit;
            assert_int_equal(agora__trust_option_parse(name, &tbit), 0);
            assert_int_equal(tbit, bit); /* the same bit as the rules */
            assert_string_equal(agora__trust_option_name((unsigned)i), name);
            char fmt[64];
            agora__trust_options_format(tbit, fmt, sizeof fmt);
            assert_string_equal(fmt, name);
        } else {
            assert_int_not_equal(agora__trust_option_parse(name, &tbit), 0);
            assert_null(agora__trust_option_name((unsigned)i));
        }
        if (o->uses & AGORA__PS315_GRANT) {
            assert_true(o->uses & AGORA__PS315_NAMED);
            grantable |= bit;
            assert_null(agora__trust_option_refusal(bit));
        } else {
            assert_non_null(agora__trust_option_refusal(bit));
        }

        /* The plugin view: a group exactly for the grantable options... */
        agora__deid_granted view, base;
        const agora__deid_allow_group *g = group_of(name);
        assert_int_equal(agora__deid_view(get_groups, NULL, secret, NULL, 0, 0, NULL, &base, &err),
                         0);
        rc = agora__deid_view(get_groups, NULL, secret, one, 1, 0, NULL, &view, &err);
        if (!(o->uses & AGORA__PS315_GRANT)) {
            assert_null(g);
            assert_int_equal(rc, AGORA_EINVAL);
            assert_non_null(strstr(err.msg, "gives a plugin nothing it may see"));
            agora__deid_granted_free(&base);
            continue;
        }
        if (rc != 0)
            fail_msg("%s: %s", name, err.msg);
        assert_non_null(g);
        assert_true(g->count > 0);
        for (size_t k = 0; k < g->count; k++) {
            const agora__deid_allow *a = &g->items[k];
            /* ...whose attributes the plugin sees only with the option... */
            if (!view_has(&view, a->keyword))
                fail_msg("%s: the view leaves out %s", name, a->keyword);
            assert_false(view_has(&base, a->keyword));
            /* ...and which the Annex E rules keep (or shift) under this option, and not without
             * it: view and rules release the same attributes for the same bit. */
            const agora__deid_rule *r = agora__deid_rule_find(a->tag);
            if (r == NULL)
                continue; /* not in Table E.1-1: the Basic Profile keeps it too */
            agora__deid_op with = agora__deid_resolve(r, bit);
            if (with != AGORA__DEID_OP_KEEP && with != AGORA__DEID_OP_SHIFT_DATE)
                fail_msg("%s: the rules do not keep %s under the option", name, a->keyword);
            assert_int_not_equal(agora__deid_resolve(r, 0), AGORA__DEID_OP_KEEP);
        }
        agora__deid_granted_free(&view);
        agora__deid_granted_free(&base);
    }
    /* Every group of the view belongs to a grantable option. */
    for (size_t k = 0; k < agora__deid_allow_groups_count; k++) {
        int o = agora__ps315_from_name(agora__deid_allow_groups[k].option);
        assert_true(o >= 0);
        assert_true(grantable & AGORA__PS315_BIT(o));
    }
    assert_int_equal(named, AGORA__OPT_ALL);
    assert_int_equal(grantable, AGORA__OPT_GRANTABLE);
    /* The grant bits are the rules' bits, option by option. */
    assert_int_equal(AGORA__OPT_RTN_PAT_CHARS, 1u << AGORA__PS315_RTN_PAT_CHARS);
    assert_int_equal(AGORA__OPT_RTN_DEV_ID, 1u << AGORA__PS315_RTN_DEV_ID);
    assert_int_equal(AGORA__OPT_RTN_INST_ID, 1u << AGORA__PS315_RTN_INST_ID);
    assert_int_equal(AGORA__OPT_RTN_LONG_FULL_DATES, 1u << AGORA__PS315_RTN_LONG_FULL_DATES);
    assert_int_equal(AGORA__OPT_RTN_LONG_MODIF_DATES, 1u << AGORA__PS315_RTN_LONG_MODIF_DATES);
    assert_int_equal(AGORA__OPT_CLEAN_DESC, 1u << AGORA__PS315_CLEAN_DESC);
    /* rtnUIDsOpt is never grantable (a plugin never sees real UIDs), nor is private data;
     * rtnInstIdOpt is (institution identity, its own view group); cleanDescOpt is named but
     * refused, as agora deid refuses it. */
    uint32_t bit = 0;
    assert_int_not_equal(agora__trust_option_parse("rtnUIDsOpt", &bit), 0);
    assert_int_not_equal(agora__trust_option_parse("rtnSafePrivOpt", &bit), 0);
    assert_false(named & AGORA__PS315_BIT(AGORA__PS315_RTN_UIDS));
    assert_true(grantable & AGORA__OPT_RTN_INST_ID);
    assert_true(named & AGORA__OPT_CLEAN_DESC);
    assert_false(grantable & AGORA__OPT_CLEAN_DESC);
    assert_null(agora__trust_option_name(AGORA__OPT_COUNT));
    assert_null(agora__ps315(AGORA__PS315_COUNT));
    assert_int_equal(agora__ps315_from_name("noSuchOpt"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_option_agrees)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
