/* Unit tests for the one clinic secret (host/common/home_secret.c): a fresh home gets one
 * secret file, labels give different, deterministic keys, the KDF is the one `agora run` has
 * always used (so existing pseudonyms and billing keys stay), and a legacy deid.secret is
 * migrated keeping its key for agora deid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common.h"

static int setup(void **state)
{
    char *dir = strdup("/tmp/agora-secret-XXXXXX");
    if (dir == NULL || mkdtemp(dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*state);
    int rc = system(cmd);
    free(*state);
    return rc == 0 ? 0 : -1;
}

static void put(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(p, mode), 0);
}

static long size_of(const char *dir, const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* The wave-one derivation, written out independently: BLAKE2b-256 keyed with the root over
 * "agora-key/<label>". */
static void expected_key(const uint8_t root[32], const char *label, uint8_t out[32])
{
    char msg[80];
    int n = snprintf(msg, sizeof msg, "agora-key/%s", label);
    crypto_generichash(out, 32, (const uint8_t *)msg, (size_t)n, root, 32);
}

static void test_fresh_home(void **state)
{
    const char *dir = *state;
    agora__error err = {0};
    agora__home_secret s, again;
    unsigned done = 0;
    /* Without CREATE a home with no secret is refused, saying so. */
    assert_int_equal(agora__home_secret_load(dir, 0, &s, &done, &err), AGORA__ENOENT);
    assert_non_null(strstr(err.msg, "secret is missing"));
    assert_int_equal(
        agora__home_secret_load(dir, AGORA__SECRET_CREATE | AGORA__SECRET_MIGRATE, &s, &done, &err),
        0);
    assert_int_equal(done, AGORA__SECRET_CREATED);
    assert_int_equal(size_of(dir, "secret"), 32);
    assert_int_equal(size_of(dir, "deid.secret"), -1);
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/secret", dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Loaded again: the same secret, nothing created. */
    assert_int_equal(agora__home_secret_load(dir, AGORA__SECRET_CREATE, &again, &done, &err), 0);
    assert_int_equal(done, 0);
    assert_memory_equal(s.root, again.root, 32);
    assert_false(again.have_deid_legacy);

    uint8_t uid[32], uid2[32], bill[32], deid[32], want[32];
    assert_int_equal(agora__home_key(&s, AGORA__KEY_UID, uid), 0);
    assert_int_equal(agora__home_key(&again, AGORA__KEY_UID, uid2), 0);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_BILLING, bill), 0);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_DEID, deid), 0);
    assert_memory_equal(uid, uid2, 32);       /* deterministic */
    assert_memory_not_equal(uid, bill, 32);   /* labels differ */
    assert_memory_not_equal(uid, s.root, 32); /* never the root itself */
    assert_memory_equal(deid, uid, 32);       /* agora deid = agora run's UIDs */
    expected_key(s.root, "deid-uid", want);
    assert_memory_equal(uid, want, 32);
    expected_key(s.root, "billing", want);
    assert_memory_equal(bill, want, 32);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_COUNT, want), AGORA_EINVAL);
    assert_string_equal(agora__home_key_name(AGORA__KEY_BILLING), "billing");
    assert_null(agora__home_key_name(AGORA__KEY_COUNT));
    agora__home_secret_wipe(&s);
    agora__home_secret_wipe(&again);
}

static void test_refusals(void **state)
{
    const char *dir = *state;
    agora__error err = {0};
    agora__home_secret s;
    uint8_t b[40] = {1};
    put(dir, "secret", b, 32, 0644);
    assert_int_equal(agora__home_secret_load(dir, AGORA__SECRET_CREATE, &s, NULL, &err),
                     AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "chmod 600"));
    put(dir, "secret", b, 40, 0600);
    assert_int_equal(agora__home_secret_load(dir, AGORA__SECRET_CREATE, &s, NULL, &err),
                     AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "damaged"));
    assert_int_equal(size_of(dir, "secret"), 40); /* a damaged secret is never replaced */
}

/* A wave-one home: HOME/secret (agora run, the ledger) and HOME/deid.secret (agora deid, here
 * in its hex form). Afterwards: one file; agora deid keeps the old key, agora run and the
 * ledger keep theirs. */
static void test_migration(void **state)
{
    const char *dir = *state;
    agora__error err = {0};
    uint8_t root[32], old_deid[32], want[32], got[32];
    char hex[66];
    randombytes_buf(root, 32);
    randombytes_buf(old_deid, 32);
    agora__hex(old_deid, 32, hex);
    hex[64] = '\n';
    put(dir, "secret", root, 32, 0600);
    put(dir, "deid.secret", hex, 65, 0600);

    agora__home_secret s;
    unsigned done = 0;
    /* Opening without MIGRATE (the trust home) leaves the files alone. */
    assert_int_equal(agora__home_secret_load(dir, 0, &s, &done, &err), 0);
    assert_int_equal(done, 0);
    assert_int_equal(size_of(dir, "deid.secret"), 65);
    assert_int_equal(
        agora__home_secret_load(dir, AGORA__SECRET_CREATE | AGORA__SECRET_MIGRATE, &s, &done, &err),
        0);
    assert_int_equal(done, AGORA__SECRET_MIGRATED);
    assert_int_equal(size_of(dir, "deid.secret"), -1);
    assert_int_equal(size_of(dir, "secret"), 64);
    assert_memory_equal(s.root, root, 32);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_DEID, got), 0);
    assert_memory_equal(got, old_deid, 32);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_UID, got), 0);
    expected_key(root, "deid-uid", want);
    assert_memory_equal(got, want, 32);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_BILLING, got), 0);
    expected_key(root, "billing", want);
    assert_memory_equal(got, want, 32);

    /* Read back (no flags): the same keys; migrating again does nothing. */
    agora__home_secret back;
    assert_int_equal(agora__home_secret_load(dir, AGORA__SECRET_MIGRATE, &back, &done, &err), 0);
    assert_int_equal(done, 0);
    assert_true(back.have_deid_legacy);
    assert_memory_equal(back.deid_legacy, old_deid, 32);

    /* Interrupted migration (both still there, same key): deid.secret is just removed. */
    put(dir, "deid.secret", old_deid, 32, 0600);
    assert_int_equal(agora__home_secret_load(dir, AGORA__SECRET_MIGRATE, &back, &done, &err), 0);
    assert_int_equal(done, AGORA__SECRET_MIGRATED);
    assert_int_equal(size_of(dir, "deid.secret"), -1);
    /* A different deid.secret next to a migrated secret: refused, nothing changed. */
    uint8_t other[32];
    randombytes_buf(other, 32);
    put(dir, "deid.secret", other, 32, 0600);
    assert_int_equal(agora__home_secret_load(dir, AGORA__SECRET_MIGRATE, &back, &done, &err),
                     AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "they differ"));
    assert_int_equal(size_of(dir, "deid.secret"), 32);
    assert_int_equal(size_of(dir, "secret"), 64);
    agora__home_secret_wipe(&s);
    agora__home_secret_wipe(&back);
}

/* A directory only agora deid used (deid.secret, no secret): a new root, the old deid key. */
static void test_migration_deid_only(void **state)
{
    const char *dir = *state;
    agora__error err = {0};
    uint8_t old_deid[32], got[32];
    randombytes_buf(old_deid, 32);
    put(dir, "deid.secret", old_deid, 32, 0600);
    agora__home_secret s;
    unsigned done = 0;
    assert_int_equal(
        agora__home_secret_load(dir, AGORA__SECRET_CREATE | AGORA__SECRET_MIGRATE, &s, &done, &err),
        0);
    assert_int_equal(done, AGORA__SECRET_CREATED | AGORA__SECRET_MIGRATED);
    assert_int_equal(size_of(dir, "deid.secret"), -1);
    assert_int_equal(size_of(dir, "secret"), 64);
    assert_int_equal(agora__home_key(&s, AGORA__KEY_DEID, got), 0);
    assert_memory_equal(got, old_deid, 32);
    agora__home_secret_wipe(&s);
}

static void test_key_file(void **state)
{
    const char *dir = *state;
    agora__error err = {0};
    uint8_t k[32], raw[32];
    char p[512];
    randombytes_buf(raw, 32);
    put(dir, "k", raw, 32, 0600);
    snprintf(p, sizeof p, "%s/k", dir);
    assert_int_equal(agora__key_file_read(p, k, &err), 0);
    assert_memory_equal(k, raw, 32);
    put(dir, "k", "short", 5, 0600);
    assert_int_equal(agora__key_file_read(p, k, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "64 hex digits"));
    put(dir, "k", raw, 32, 0640);
    assert_int_equal(agora__key_file_read(p, k, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "chmod 600"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_deid_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
