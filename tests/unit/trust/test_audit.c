/* Unit tests of the hash-chained audit log (trust/audit.h): appends chain, verify names the
 * first broken line for an edited, removed, reordered or torn line, a damaged log is never
 * extended, bad fields are refused, and two processes appending 100 entries each at once give
 * one valid chain of 200. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fx {
    char dir[64];
    char path[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/agora-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/audit.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void append_n(const char *path, int n, const char *actor)
{
    for (int i = 0; i < n; i++) {
        char obj[64];
        snprintf(obj, sizeof obj, "com.example.app@1.%d", i);
        agora__error err = {0};
        assert_int_equal(agora__audit_append(path, "install", actor, obj, NULL, &err), 0);
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

static void spit(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Offset of line k (1-based). */
static size_t line_at(const char *buf, int k)
{
    size_t off = 0;
    for (int i = 1; i < k; i++)
        off = (size_t)(strchr(buf + off, '\n') - buf) + 1;
    return off;
}

static void test_chain_and_verify(void **state)
{
    fx *f = *state;
    uint64_t n = 9, bad = 9, seq = 0;
    agora__error err = {0};
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), 0); /* missing: empty */
    assert_int_equal(n, 0);
    append_n(f->path, 5, "clinic");
    assert_int_equal(agora__audit_append(f->path, "remove", "clinic", "x", &seq, &err), 0);
    assert_int_equal(seq, 6);
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), 0);
    assert_int_equal(n, 6);
    size_t len;
    char *buf = slurp(f->path, &len);
    assert_non_null(strstr(buf, "\"prev\":\"0000000000000000"));
    free(buf);
}

static void test_edit_breaks_at_line(void **state)
{
    fx *f = *state;
    append_n(f->path, 6, "clinic");
    size_t len;
    char *orig = slurp(f->path, &len);
    for (int k = 1; k <= 6; k++) {
        char *buf = malloc(len + 1);
        memcpy(buf, orig, len + 1);
        char *p = strstr(buf + line_at(buf, k), "app@1.");
        assert_non_null(p);
        p[0] = 'A'; /* same length, different content */
        spit(f->path, buf, len);
        uint64_t n = 0, bad = 0;
        agora__error err = {0};
        assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), AGORA_EINVAL);
        assert_int_equal(bad, (uint64_t)k);
        assert_int_equal(n, (uint64_t)k - 1);
        char want[32];
        snprintf(want, sizeof want, "line %d ", k);
        assert_non_null(strstr(err.msg, want));
        /* A damaged log is never extended. */
        assert_int_not_equal(agora__audit_append(f->path, "install", "clinic", "y", NULL, &err), 0);
        free(buf);
    }
    /* Removing line 3: line 3 (the old 4th) is out of sequence. */
    size_t a = line_at(orig, 3), b = line_at(orig, 4);
    char *cut = malloc(len + 1);
    memcpy(cut, orig, a);
    memcpy(cut + a, orig + b, len - b);
    spit(f->path, cut, len - (b - a));
    uint64_t n = 0, bad = 0;
    agora__error err = {0};
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), AGORA_EINVAL);
    assert_int_equal(bad, 3);
    /* A torn last line (no newline). */
    spit(f->path, orig, len - 1);
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), AGORA_EINVAL);
    assert_int_equal(bad, 6);
    assert_non_null(strstr(err.msg, "torn"));
    spit(f->path, orig, len);
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), 0);
    free(cut);
    free(orig);
}

static void test_bad_fields(void **state)
{
    fx *f = *state;
    agora__error err = {0};
    assert_int_equal(agora__audit_append(f->path, "", "clinic", "x", NULL, &err), AGORA_EINVAL);
    assert_int_equal(agora__audit_append(f->path, "a\nb", "clinic", "x", NULL, &err), AGORA_EINVAL);
    char big[AGORA__AUDIT_FIELD_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(agora__audit_append(f->path, "install", "clinic", big, NULL, &err),
                     AGORA_EINVAL);
    uint64_t n = 0, bad = 0;
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), 0);
    assert_int_equal(n, 0);
}

static void test_two_processes(void **state)
{
    fx *f = *state;
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            for (int k = 0; k < 100; k++) {
                agora__error err = {0};
                if (agora__audit_append(f->path, "install", i ? "b" : "a", "obj", NULL, &err) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int st = 0;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    uint64_t n = 0, bad = 0;
    agora__error err = {0};
    assert_int_equal(agora__audit_verify(f->path, &n, &bad, &err), 0);
    assert_int_equal(n, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_breaks_at_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
