/* One error space (issue 9, item 4): an allocation failure while reading home state must be
 * reported as out of memory, never as "file missing". Before the fix AGORA_ENOMEM (-2) equalled
 * -ENOENT, so a failed malloc of the held catalog made the home open as if it had no catalog.
 * malloc is wrapped (-Wl,--wrap=malloc) to fail for one chosen size only: the size of the
 * file under test plus its terminating NUL (agora__read_file's buffer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "fixtures.h"

#define ODD_SIZE 7777u /* a file size no other allocation of these paths asks for */

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
static size_t fail_size;

void *__wrap_malloc(size_t size)
{
    if (fail_size != 0 && size == fail_size)
        return NULL;
    return __real_malloc(size);
}

static void test_codes_are_one_space(void **state)
{
    (void)state;
    /* Every errno maps outside the public plugin codes and back to itself. */
    for (int e = 1; e < 4096; e++) {
        int c = AGORA__ERR(e);
        assert_true(c < -99);
        assert_int_equal(agora__err_errno(c), e);
    }
    for (int c = AGORA_ESTATE; c <= 0; c++)
        assert_int_equal(agora__err_errno(c), 0);
    assert_int_not_equal(AGORA__ENOENT, AGORA_ENOMEM);
    assert_true(agora__err_is_nomem(AGORA_ENOMEM));
    assert_false(agora__err_is_nomem(AGORA__ENOENT));
    assert_string_equal(agora__strerror(AGORA__ENOENT), strerror(ENOENT));
    assert_string_equal(agora__strerror(AGORA_ENOMEM), "out of memory");
}

static void test_read_file_codes(void **state)
{
    (void)state;
    char dir[512], path[600];
    agora__error err;
    uint8_t *buf;
    size_t len;
    fix_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/absent", dir);
    assert_int_equal(agora__read_file(path, 100, &buf, &len, &err), AGORA__ENOENT);
    snprintf(path, sizeof path, "%s/odd", dir);
    static uint8_t blob[ODD_SIZE];
    assert_int_equal(agora__write_file_atomic(path, blob, sizeof blob, 0600, &err), 0);
    fail_size = ODD_SIZE + 1;
    int rc = agora__read_file(path, 1u << 20, &buf, &len, &err);
    fail_size = 0;
    assert_int_equal(rc, AGORA_ENOMEM);
    assert_non_null(strstr(err.msg, "out of memory"));
    fix_rmrf(dir);
}

/* The held catalog (trust/home.c: a missing one means "no catalog yet"). */
static void test_catalog_oom_is_not_missing(void **state)
{
    (void)state;
    char dir[512], path[800], home[600], resolved[4096];
    agora__error err;
    agora__pubkey pub;
    fix_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/op", dir);
    assert_int_equal(agora__keygen_files(path, NULL, 0, &pub, &err), 0);
    snprintf(path, sizeof path, "%s/op.pub", dir);
    const char *trust[1] = {path};
    snprintf(home, sizeof home, "%s/home", dir);
    agora__init_opts o = {home, trust, 1, AGORA__OPT_RTN_PAT_CHARS, 0};
    if (agora__home_init(&o, resolved, sizeof resolved, &err) != 0)
        fail_msg("%s", err.msg);

    agora__trust_home *h = NULL;
    assert_int_equal(agora__trust_home_open(home, &h, &err), 0); /* no catalog: fine */
    agora__trust_home_close(h);

    static uint8_t junk[ODD_SIZE];
    memset(junk, 'x', sizeof junk);
    snprintf(path, sizeof path, "%s/catalog/current", home);
    assert_int_equal(agora__write_file_atomic(path, junk, sizeof junk, 0600, &err), 0);
    fail_size = ODD_SIZE + 1;
    h = NULL;
    int rc = agora__trust_home_open(home, &h, &err);
    fail_size = 0;
    assert_null(h);
    assert_int_equal(rc, AGORA_ENOMEM);
    assert_non_null(strstr(err.msg, "out of memory"));
    fix_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_are_one_space),
        cmocka_unit_test(test_read_file_codes),
        cmocka_unit_test(test_catalog_oom_is_not_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
