/* The PS3.15 options have two bit encodings today (host/trust/trust.h AGORA__OPT_*: the grant and
 * the clinic policy; host/deid/rules.h agora__deid_option: the de-identification rules). They
 * meet only through the option's PS3.15 name (cmd_run/cmd_devrun pass names to the view). This
 * walks every grantable option through grant bit -> policy name -> view -> rules and checks
 * that each stage means the same option, so one wrong assignment cannot hand a plugin the
 * wrong patient attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "deid.h"
#include "rules.h"
#include "trust.h"

/* An empty dataset: every attribute absent. */
static int get_none(void *ctx, uint32_t tag, char vr[3], const uint8_t **bytes, size_t *len)
{
    (void)ctx, (void)tag, (void)vr, (void)bytes, (void)len;
    return 0;
}

static void test_every_option_agrees(void **state)
{
    (void)state;
    static const uint8_t secret[32] = {1};
    uint32_t seen = 0;
    for (unsigned i = 0; i < AGORA__OPT_COUNT; i++) {
        const char *name = agora__trust_option_name(i);
        assert_non_null(name);
        /* Grant/policy: the name parses back to the same bit. */
        uint32_t bit = 0;
        assert_int_equal(agora__trust_option_parse(name, &bit), 0);
        assert_int_equal(bit, 1u << i);
        char fmt[64];
        agora__trust_options_format(bit, fmt, sizeof fmt);
        assert_string_equal(fmt, name);
        /* Rules: the same name is a rules option, whose name is this one. */
        int o = agora__deid_option_from_name(name);
        assert_true(o >= 0 && o < AGORA__DEID_OPT_COUNT);
        assert_string_equal(agora__deid_option_name(o), name);
        assert_false(seen & (1u << o)); /* no two grant bits on one rules option */
        seen |= 1u << o;
        /* View: the name is an option the plugin view knows. rtnInstIdOpt and cleanDescOpt
         * are grantable in the catalog but the view's allowlist (host/deid/data) has no group
         * for them yet: the view refuses them (fail closed, the job does not run). Pinned here
         * so the gap is seen and closed on purpose (issue 9 closing note). */
        agora__deid_granted view;
        agora__error err;
        const char *granted[1] = {name};
        int rc = agora__deid_view(get_none, NULL, secret, granted, 1, 0, NULL, &view, &err);
        if (strcmp(name, "rtnInstIdOpt") == 0 || strcmp(name, "cleanDescOpt") == 0) {
            assert_int_equal(rc, AGORA_EINVAL);
            assert_non_null(strstr(err.msg, "gives a plugin nothing it may see"));
        } else if (rc != 0) {
            fail_msg("%s: %s", name, err.msg);
        }
        agora__deid_granted_free(&view);
    }
    /* rtnUIDsOpt is never grantable (a plugin never sees real UIDs). */
    uint32_t bit = 0;
    assert_int_not_equal(agora__trust_option_parse("rtnUIDsOpt", &bit), 0);
    assert_false(seen & (1u << AGORA__DEID_OPT_UIDS));
    assert_null(agora__trust_option_name(AGORA__OPT_COUNT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_option_agrees)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
