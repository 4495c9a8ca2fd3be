/*
 * The receive spool (host/dimse/spool.h) as two writers in one process use it: the DIMSE
 * listener and the STOW-RS thread each hold their own handle on one HOME/spool. The watermark
 * reads agora__spool_usage, so each handle must see the other's receipts (within the TTL) and its
 * own at once.
 */
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
#include "spool.h"

#define CT  "1.2.840.10008.5.1.4.1.1.2"
#define ELE "1.2.840.10008.1.2.1"

static char home[64];

static int setup(void **state)
{
    (void)state;
    snprintf(home, sizeof home, "/tmp/agora-spool-XXXXXX");
    return mkdtemp(home) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    return system(cmd) == 0 ? 0 : -1;
}

/* One receipt of n data set bytes; dimse: as the listener records it, else as STOW-RS does. */
static void receive(agora__spool *sp, const char *sop, size_t n, int dimse)
{
    agora__spool_instance inst = {CT,
                                  sop,
                                  ELE,
                                  dimse ? "MODALITY" : "STOW",
                                  dimse ? "AGORA" : "",
                                  dimse ? "dimse" : "stow"};
    agora__spool_txn *t = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_begin(sp, &inst, &t, &e), 0);
    uint8_t *b = calloc(1, n);
    assert_non_null(b);
    assert_int_equal(agora__spool_write(t, b, n, &e), 0);
    free(b);
    int dup = -1;
    assert_int_equal(agora__spool_commit(t, &dup, &e), 0);
    assert_int_equal(dup, 0);
}

static void usage_sees_every_handle(void **state)
{
    (void)state;
    agora__spool *dimse = NULL, *stow = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_open(home, 1u << 20, &dimse, &e), 0);
    assert_int_equal(agora__spool_open(home, 1u << 20, &stow, &e), 0);
    uint64_t b0 = 1, c0 = 1, b = 0, c = 0;
    assert_int_equal(agora__spool_usage(stow, &b0, &c0, &e), 0);
    assert_int_equal(b0, 0);
    assert_int_equal(c0, 0);

    /* A DIMSE receipt: the listener's own usage has it at once (no wait for the TTL)... */
    receive(dimse, "1.2.3.1", 1000, 1);
    assert_int_equal(agora__spool_usage(dimse, &b, &c, &e), 0);
    assert_int_equal(c, 1);
    assert_true(b > 1000); /* data set + the meta group the spool writes */
    uint64_t one = b;
    /* ...the STOW-RS handle within the TTL (here: its cache dropped, as the TTL would). */
    agora__spool_usage_invalidate(stow);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 1);
    assert_int_equal(b, one);

    /* A STOW-RS receipt counts against the DIMSE listener's watermark. */
    receive(stow, "1.2.3.2", 3000, 0);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 2);
    agora__spool_usage_invalidate(dimse);
    assert_int_equal(agora__spool_usage(dimse, &b, &c, &e), 0);
    assert_int_equal(c, 2);
    assert_true(b > one + 3000);
    uint64_t two = b;
    /* The per-handle view (agora__spool_bytes) does not see the other's receipt: the reason the
     * watermark no longer uses it. */
    assert_true(agora__spool_bytes(dimse) < two);

    /* Within the TTL the cache answers without the other handle's newest receipt; after it, the
     * database is read again. */
    receive(dimse, "1.2.3.3", 10, 1);
    agora__spool_usage_invalidate(stow);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 3);
    receive(dimse, "1.2.3.4", 10, 1);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 3); /* cached */
    usleep((AGORA__SPOOL_USAGE_TTL_MS + 100) * 1000);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 4);

    /* A third handle (another process reopening) reads the same totals. */
    agora__spool *late = NULL;
    assert_int_equal(agora__spool_open(home, 1u << 20, &late, &e), 0);
    uint64_t b3 = 0, c3 = 0;
    assert_int_equal(agora__spool_usage(late, &b3, &c3, &e), 0);
    assert_int_equal(c3, 4);
    assert_int_equal(b3, b);
    agora__spool_close(late);
    agora__spool_close(stow);
    agora__spool_close(dimse);
}

/* The cost the watermark pays when its cache has expired (printed; the TTL bounds how often). */
static void usage_cost(void **state)
{
    (void)state;
    agora__spool *sp = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), 0);
    uint64_t t0 = agora__now_ns();
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        agora__spool_usage_invalidate(sp);
        assert_int_equal(agora__spool_usage(sp, NULL, NULL, &e), 0);
    }
    uint64_t uncached = (agora__now_ns() - t0) / N;
    t0 = agora__now_ns();
    for (int i = 0; i < N; i++)
        assert_int_equal(agora__spool_usage(sp, NULL, NULL, &e), 0);
    uint64_t cached = (agora__now_ns() - t0) / N;
    printf("spool usage: %llu ns read from the database, %llu ns cached (small spool)\n",
           (unsigned long long)uncached, (unsigned long long)cached);
    assert_true(cached <= uncached + 1000);
    agora__spool_close(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(usage_sees_every_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
