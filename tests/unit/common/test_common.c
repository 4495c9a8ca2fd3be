/* Unit tests for host/common: UTF-8 validation, hex, bounded reads, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"

static void test_utf8(void **state)
{
    (void)state;
    assert_true(agora__utf8_valid("hello", 5));
    assert_true(agora__utf8_valid("tab\there\n", 9));
    assert_true(agora__utf8_valid("\xc3\xa9t\xc3\xa9", 5));         /* été */
    assert_true(agora__utf8_valid("\xf0\x9f\x98\x80", 4));          /* emoji */
    assert_false(agora__utf8_valid("a\0b", 3));                     /* NUL */
    assert_false(agora__utf8_valid("\x1b[31m", 5));                 /* escape sequence */
    assert_false(agora__utf8_valid("\xc3", 1));                     /* truncated */
    assert_false(agora__utf8_valid("\xc0\xaf", 2));                 /* overlong */
    assert_false(agora__utf8_valid("\xed\xa0\x80", 3));             /* surrogate */
    assert_false(agora__utf8_valid("\xf4\x90\x80\x80", 4));         /* > U+10FFFF */
    assert_false(agora__utf8_valid("\xe2\x82", 2));                 /* truncated 3-byte */
    assert_false(agora__utf8_valid("\x80", 1));                     /* lone continuation */
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t b[4] = {0x00, 0xff, 0x12, 0xab}, back[4];
    char hex[9];
    agora__hex(b, 4, hex);
    assert_string_equal(hex, "00ff12ab");
    assert_int_equal(agora__unhex(hex, back, 4), 0);
    assert_memory_equal(b, back, 4);
    assert_int_equal(agora__unhex("00ff12a", back, 4), -1);
    assert_int_equal(agora__unhex("00ff12zz", back, 4), -1);
    uint8_t d[32];
    agora__sha256("abc", 3, d);
    agora__hex(d, 4, hex);
    assert_string_equal(hex, "ba7816bf");
}

static void test_read_file_cap(void **state)
{
    (void)state;
    char path[] = "/tmp/agora-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    uint8_t *buf;
    size_t len;
    agora__error err;
    assert_int_equal(agora__read_file(path, 10, &buf, &len, &err), 0);
    assert_int_equal(len, 10);
    assert_int_equal(buf[10], 0);
    free(buf);
    assert_int_equal(agora__read_file(path, 9, &buf, &len, &err), AGORA_ELIMIT);
    assert_null(buf);
    assert_non_null(strstr(err.msg, "more than the 9 allowed"));
    unlink(path);
    assert_true(agora__read_file(path, 9, &buf, &len, &err) < 0);
    assert_non_null(strstr(err.msg, "cannot open"));
}

static void test_write_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/agora-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/file", dir);
    agora__error err;
    char sub[256];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    assert_int_equal(agora__mkdirs(sub, 0700, &err), 0);
    assert_int_equal(agora__write_file_atomic(path, "xyz", 3, 0600, &err), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(agora__read_file(path, 100, &buf, &len, &err), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "xyz", 3);
    free(buf);
    unlink(path);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/a", dir);
    rmdir(sub);
    rmdir(dir);
}

static void test_error_prefix(void **state)
{
    (void)state;
    agora__error err;
    assert_int_equal(agora__error_set(&err, AGORA_EINVAL, "bad %s", "thing"), AGORA_EINVAL);
    assert_int_equal(agora__error_prefix(&err, "reading %s", "x.dcm"), AGORA_EINVAL);
    assert_string_equal(err.msg, "reading x.dcm: bad thing");
    assert_int_equal(agora__error_set(NULL, -5, "ignored"), -5);
}

/* The home layout table: every entry has a path under the home, and they are distinct. */
static void test_home_paths(void **state)
{
    (void)state;
    char a[256], b[256];
    agora__error err;
    assert_int_equal(agora__home_path("/h", AGORA__HOME_SECRET, a, sizeof a, &err), 0);
    assert_string_equal(a, "/h/secret");
    assert_int_equal(agora__home_path("/h", AGORA__HOME_LEDGER, a, sizeof a, &err), 0);
    assert_string_equal(a, "/h/ledger.db");
    for (int i = 0; i < AGORA__HOME_ENTRY_COUNT; i++) {
        assert_int_equal(agora__home_path("/h", (agora__home_entry)i, a, sizeof a, &err), 0);
        assert_true(strncmp(a, "/h/", 3) == 0 && a[3] != '\0');
        for (int j = 0; j < i; j++) {
            assert_int_equal(agora__home_path("/h", (agora__home_entry)j, b, sizeof b, &err), 0);
            assert_string_not_equal(a, b);
        }
    }
    assert_int_equal(agora__home_path(NULL, AGORA__HOME_SECRET, a, sizeof a, &err), AGORA_EINVAL);
    assert_int_equal(agora__home_path("/h", AGORA__HOME_ENTRY_COUNT, a, sizeof a, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__home_path("/h", AGORA__HOME_CONFIG, a, 8, &err), AGORA_ELIMIT);
}

/* Paths inside the home's directories: one component per name, so an id cannot leave them. */
static void test_home_entry_paths(void **state)
{
    (void)state;
    char a[256];
    agora__error err;
    assert_int_equal(
        agora__home_entry_path("/h", AGORA__HOME_PLUGINS, "org.x.y", NULL, a, sizeof a, &err), 0);
    assert_string_equal(a, "/h/plugins/org.x.y");
    assert_int_equal(agora__home_entry_path("/h", AGORA__HOME_PLUGINS, "org.x.y", "install.json", a,
                                            sizeof a, &err),
                     0);
    assert_string_equal(a, "/h/plugins/org.x.y/install.json");
    assert_int_equal(
        agora__home_entry_path("/h", AGORA__HOME_TRUST, "k.pub", NULL, a, sizeof a, &err), 0);
    assert_string_equal(a, "/h/trust/k.pub");
    assert_int_equal(
        agora__home_entry_path("/h", AGORA__HOME_RESULTS, "ab", "study.json", a, sizeof a, &err),
        0);
    assert_string_equal(a, "/h/results/ab/study.json");
    assert_int_equal(agora__home_path("/h", AGORA__HOME_CATALOG_SRC, a, sizeof a, &err), 0);
    assert_string_equal(a, "/h/catalog/source");
    static const char *const bad[] = {"", ".", "..", "../x", "a/b", "/abs"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            agora__home_entry_path("/h", AGORA__HOME_PLUGINS, bad[i], NULL, a, sizeof a, &err),
            AGORA_EINVAL);
        assert_int_equal(
            agora__home_entry_path("/h", AGORA__HOME_PLUGINS, "ok", bad[i], a, sizeof a, &err),
            AGORA_EINVAL);
    }
    assert_int_equal(
        agora__home_entry_path("/h", AGORA__HOME_PLUGINS, NULL, NULL, a, sizeof a, &err),
        AGORA_EINVAL);
    /* Only the home's directories have entries. */
    assert_int_equal(agora__home_entry_path("/h", AGORA__HOME_SECRET, "x", NULL, a, sizeof a, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__home_entry_path("/h", AGORA__HOME_PLUGINS, "org.x.y", "f", a, 18, &err),
                     AGORA_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_hex),
        cmocka_unit_test(test_read_file_cap), cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_error_prefix),  cmocka_unit_test(test_home_paths),
        cmocka_unit_test(test_home_entry_paths),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
