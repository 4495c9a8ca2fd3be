/*
 * The ELF dynamic-section reader and the dependency closure (host/worker/elfdyn.c, closure.c):
 * well-formed and hostile objects (the crafted fuzz seeds), and the closure of real system
 * libraries resolved against this host's loader cache, /etc/alternatives included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "closure.h"
#include "elfdyn.h"

static const char *seeds; /* tests/fuzz/seeds/fuzz_elf_dynamic */

static uint8_t *load(const char *name, size_t *len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", seeds, name);
    uint8_t *b = NULL;
    agora__error err;
    if (agora__read_file(p, 1u << 24, &b, len, &err) != 0)
        fail_msg("%s", err.msg);
    return b;
}

static void test_good(void **st)
{
    (void)st;
    size_t n;
    uint8_t *b = load("good_runpath", &n);
    static agora__elf_dyn d;
    agora__error err = {0};
    assert_int_equal(agora__elf_dyn_parse(b, n, &d, &err), AGORA_OK);
    assert_int_equal(d.n_needed, 1);
    assert_string_equal(d.needed[0], "libc.so.6");
    assert_true(d.has_runpath);
    assert_string_equal(d.runpath, "$ORIGIN/lib");
    /* Every truncation of a good file is refused or parsed, never read past. */
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, b, cut);
        (void)agora__elf_dyn_parse(t, cut, &d, &err);
        free(t);
    }
    free(b);
}

static void test_hostile(void **st)
{
    (void)st;
    static const char *const bad[] = {"ph_past_end", "dyn_past_end", "strtab_unmapped",
                                      "needed_unterminated"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n;
        uint8_t *b = load(bad[i], &n);
        static agora__elf_dyn d;
        agora__error err = {0};
        int rc = agora__elf_dyn_parse(b, n, &d, &err);
        if (rc == AGORA_OK)
            fail_msg("%s was accepted", bad[i]);
        assert_true(err.msg[0] != '\0');
        free(b);
    }
    /* Not ELF at all. */
    static agora__elf_dyn d;
    agora__error err = {0};
    assert_int_equal(agora__elf_dyn_parse((const uint8_t *)"hello", 5, &d, &err), AGORA_EINVAL);
}

static int has(const agora__closure *c, const char *p, int link)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i], p) == 0 && c->is_link[i] == link)
            return 1;
    return 0;
}

static void test_closure_real(void **st)
{
    (void)st;
    size_t n;
    uint8_t *b = load("rootlist.so", &n);
    agora__closure c;
    agora__error err = {0};
    if (agora__closure_resolve(b, n, &c, &err) != AGORA_OK)
        fail_msg("%s", err.msg);
    /* libc through merged-/usr's /lib (the cache names /lib/x86_64-linux-gnu/...), libgcc_s
     * added for glibc, the loader; nothing else for a libc-only plugin. */
    assert_true(has(&c, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0));
    assert_true(has(&c, "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1", 0));
    assert_true(has(&c, "/lib", 1));
    for (size_t i = 0; i < c.n; i++)
        if (!c.is_link[i])
            assert_true(strncmp(c.entries[i], "/usr/lib/", 9) == 0);
    assert_int_equal(c.n_objects, 3);
    agora__closure_free(&c);
    free(b);
    if (access("/etc/alternatives/libblas.so.3-x86_64-linux-gnu", F_OK) == 0) {
        b = load("rootlist_blas.so", &n);
        if (agora__closure_resolve(b, n, &c, &err) != AGORA_OK)
            fail_msg("%s", err.msg);
        assert_true(has(&c, "/usr/lib/x86_64-linux-gnu/libblas.so.3", 1));
        assert_true(has(&c, "/etc/alternatives/libblas.so.3-x86_64-linux-gnu", 1));
        agora__closure_free(&c);
        free(b);
    }
}

static void test_closure_missing(void **st)
{
    (void)st;
    /* good_runpath needs libc.so.6 from $ORIGIN/lib first: the plugin's $ORIGIN is never
     * searched on the host, the cache still finds libc. A name nobody has fails clearly. */
    size_t n;
    uint8_t *b = load("good_runpath", &n);
    agora__closure c;
    agora__error err = {0};
    assert_int_equal(agora__closure_resolve(b, n, &c, &err), AGORA_OK);
    agora__closure_free(&c);
    char *m = memmem(b, n, "libc.so.6", 9);
    assert_non_null(m);
    memcpy(m, "libq.so.6", 9);
    assert_int_not_equal(agora__closure_resolve(b, n, &c, &err), AGORA_OK);
    assert_non_null(strstr(err.msg, "libq.so.6"));
    assert_non_null(strstr(err.msg, "Debian package"));
    free(b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
        return 2;
    }
    seeds = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_closure_real),
        cmocka_unit_test(test_closure_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
