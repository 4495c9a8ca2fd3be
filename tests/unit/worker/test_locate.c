/* Locating the runner and the template: the environment wins, and a bad value is an error that
 * names the variable rather than a silent fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "worker.h"

static void test_runner_env(void **state)
{
    (void)state;
    char buf[4096];
    agora__error err = {0};
    setenv("AGORA_RUNNER", "/bin/true", 1);
    assert_int_equal(agora__runner_path(buf, sizeof buf, &err), 0);
    assert_string_equal(buf, "/bin/true");
    setenv("AGORA_RUNNER", "/etc/hostname-does-not-exist", 1);
    assert_int_equal(agora__runner_path(buf, sizeof buf, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "AGORA_RUNNER"));
    setenv("AGORA_RUNNER", "/etc", 1); /* a directory is not an executable */
    assert_int_equal(agora__runner_path(buf, sizeof buf, &err), AGORA_EINVAL);
    char tiny[4];
    setenv("AGORA_RUNNER", "/bin/true", 1);
    assert_int_equal(agora__runner_path(tiny, sizeof tiny, &err), AGORA_ELIMIT);
    unsetenv("AGORA_RUNNER");
    /* Without the variable the answer is a path or an error naming what was searched. */
    int rc = agora__runner_path(buf, sizeof buf, &err);
    if (rc != 0)
        assert_non_null(strstr(err.msg, "agora-runner"));
}

static void test_template_dir(void **state)
{
    (void)state;
    char buf[4096];
    agora__error err = {0};
    setenv("AGORA_TEMPLATE_DIR", "/nonexistent-template-dir", 1);
    assert_int_equal(agora__template_dir(buf, sizeof buf, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "AGORA_TEMPLATE_DIR"));
    unsetenv("AGORA_TEMPLATE_DIR");
    /* In the build tree the source template is found. */
    assert_int_equal(agora__template_dir(buf, sizeof buf, &err), 0);
    assert_non_null(strstr(buf, "template"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runner_env),
        cmocka_unit_test(test_template_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
