/* The enforcement API `agora run` uses: a home is created, a catalog synced and a build
 * installed through the library; then load/allowed must refuse tampered bytes, revoked builds,
 * expired catalogs (honouring the grace) and rollbacks, and grant only the intersection of
 * manifest request, catalog grant and clinic policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>

#include "fixtures.h"

#define ID "com.example.nodules"

typedef struct world {
    char dir[512], catdir[600], home[600], pub_path[600];
    agora__seckey op;
    uint8_t elf[FIX_ELF_SIZE];
    char manifest[4096];
    size_t manifest_len;
    agora__catalog cat;
    int64_t now;
} world;

static void write_file(const char *path, const void *data, size_t len)
{
    agora__error err;
    if (agora__write_file_atomic(path, data, len, 0644, &err) != 0)
        fail_msg("%s", err.msg);
}

static void publish(world *w)
{
    agora__error err;
    w->cat.version++;
    w->cat.issued = w->now;
    w->cat.expires = w->now + 86400;
    agora__strlcpy(w->cat.key_id, w->op.pub.id, sizeof w->cat.key_id);
    if (agora__catalog_write_dir(w->catdir, &w->cat, &w->op, &err) != 0)
        fail_msg("%s", err.msg);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    agora__error err;
    char path[800], hex[65];
    fix_tmpdir(w->dir, sizeof w->dir);
    snprintf(w->catdir, sizeof w->catdir, "%s/cat", w->dir);
    snprintf(w->home, sizeof w->home, "%s/home", w->dir);
    snprintf(path, sizeof path, "%s/op", w->dir);
    agora__pubkey pub;
    if (agora__keygen_files(path, NULL, 0, &pub, &err) != 0)
        fail_msg("%s", err.msg);
    snprintf(path, sizeof path, "%s/op.key", w->dir);
    if (agora__seckey_read(path, NULL, 0, &w->op, &err) != 0)
        fail_msg("%s", err.msg);
    snprintf(w->pub_path, sizeof w->pub_path, "%s/op.pub", w->dir);
    fix_elf(w->elf);
    w->manifest_len = fix_manifest(w->manifest, sizeof w->manifest, ID, "1.0.0");
    w->now = agora__trust_now();

    /* Operator side: blobs and a catalog granting rtnPatCharsOpt (the manifest asks for
     * rtnPatCharsOpt and rtnDevIdOpt). */
    snprintf(path, sizeof path, "%s/blobs", w->catdir);
    assert_int_equal(agora__mkdirs(path, 0755, &err), 0);
    agora__cat_entry *e = agora__catalog_add(&w->cat, &err);
    agora__strlcpy(e->id, ID, sizeof e->id);
    agora__strlcpy(e->version, "1.0.0", sizeof e->version);
    agora__strlcpy(e->name, "Nodule finder", sizeof e->name);
    agora__strlcpy(e->vendor, "Example", sizeof e->vendor);
    agora__strlcpy(e->level, "clinical", sizeof e->level);
    agora__sha256(w->elf, sizeof w->elf, e->plugin_sha);
    agora__sha256(w->manifest, w->manifest_len, e->manifest_sha);
    e->plugin_size = sizeof w->elf;
    e->manifest_size = w->manifest_len;
    e->granted = AGORA__OPT_RTN_PAT_CHARS;
    agora__strlcpy(e->pricing.model, "per-study", sizeof e->pricing.model);
    e->pricing.price_minor = 150;
    agora__strlcpy(e->pricing.currency, "EUR", sizeof e->pricing.currency);
    e->pricing.vendor_share_bps = 7000;
    e->certified_at = w->now;
    agora__hex(e->plugin_sha, 32, hex);
    snprintf(path, sizeof path, "%s/blobs/%s", w->catdir, hex);
    write_file(path, w->elf, sizeof w->elf);
    agora__hex(e->manifest_sha, 32, hex);
    snprintf(path, sizeof path, "%s/blobs/%s", w->catdir, hex);
    write_file(path, w->manifest, w->manifest_len);
    publish(w);

    /* Clinic side. */
    const char *trust[1] = {w->pub_path};
    agora__init_opts o = {w->home, trust, 1, AGORA__OPT_RTN_PAT_CHARS | AGORA__OPT_RTN_DEV_ID, 0};
    char resolved[4096];
    if (agora__home_init(&o, resolved, sizeof resolved, &err) != 0)
        fail_msg("%s", err.msg);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    agora__trust_set_clock_for_tests(0);
    agora__catalog_free(&w->cat);
    agora__seckey_wipe(&w->op);
    fix_rmrf(w->dir);
    free(w);
    return 0;
}

static agora__trust_home *open_home(world *w)
{
    agora__trust_home *h;
    agora__error err;
    if (agora__trust_home_open(w->home, &h, &err) != 0)
        fail_msg("%s", err.msg);
    return h;
}

static void sync_install(world *w, agora__trust_home *h)
{
    agora__error err;
    agora__catalog old;
    char version[80];
    if (agora__home_sync(h, w->catdir, &old, &err) < 0)
        fail_msg("sync: %s", err.msg);
    agora__catalog_free(&old);
    if (agora__home_install(h, ID, NULL, NULL, version, sizeof version, &err) != 0)
        fail_msg("install: %s", err.msg);
    assert_string_equal(version, "1.0.0");
}

static void expect_load_refused(agora__trust_home *h, const char *expect)
{
    agora__trust_loaded lp;
    agora__error err = {0};
    if (agora__trust_load(h, ID, &lp, &err) == 0)
        fail_msg("load succeeded; expected a refusal naming '%s'", expect);
    if (strstr(err.msg, expect) == NULL)
        fail_msg("refusal '%s' does not name '%s'", err.msg, expect);
    assert_null(lp.bytes);
}

static void test_load_ok_and_intersection(void **state)
{
    world *w = *state;
    agora__trust_home *h = open_home(w);
    sync_install(w, h);
    agora__trust_loaded lp;
    agora__error err;
    assert_int_equal(agora__trust_load(h, ID, &lp, &err), 0);
    assert_int_equal(lp.len, sizeof w->elf);
    assert_memory_equal(lp.bytes, w->elf, sizeof w->elf);
    assert_int_equal(lp.manifest_len, w->manifest_len);
    assert_int_equal(lp.info.status, AGORA__TRUST_OK);
    assert_int_equal(lp.info.requested, AGORA__OPT_RTN_PAT_CHARS | AGORA__OPT_RTN_DEV_ID);
    assert_int_equal(lp.info.certified, AGORA__OPT_RTN_PAT_CHARS);
    assert_int_equal(lp.info.granted, AGORA__OPT_RTN_PAT_CHARS);
    assert_string_equal(lp.info.pricing.currency, "EUR");
    assert_int_equal(lp.info.pricing.price_minor, 150);
    assert_int_equal(lp.info.pricing.vendor_share_bps, 7000);
    assert_string_equal(lp.info.manifest.id, ID);
    assert_int_equal(lp.info.manifest.memory_mb, 512);
    agora__trust_loaded_free(&lp);
    /* A clinic policy that allows only rtnDevIdOpt leaves nothing: the catalog did not grant it. */
    h->policy = AGORA__OPT_RTN_DEV_ID;
    assert_int_equal(agora__trust_load(h, ID, &lp, &err), 0);
    assert_int_equal(lp.info.granted, 0);
    agora__trust_loaded_free(&lp);
    assert_int_equal(agora__trust_allowed(h, ID, "1.0.0", &err), 0);
    assert_int_not_equal(agora__trust_allowed(h, ID, "0.9.0", &err), 0);
    /* Secrets. */
    uint8_t a[32], b[32], c[32], zero[32] = {0};
    agora__trust_secret(h, a);
    assert_memory_not_equal(a, zero, 32);
    assert_int_equal(agora__trust_derive_key(h, AGORA__KEY_UID, a), 0);
    assert_int_equal(agora__trust_derive_key(h, AGORA__KEY_UID, b), 0);
    assert_int_equal(agora__trust_derive_key(h, AGORA__KEY_BILLING, c), 0);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    agora__trust_home_close(h);
}

static void tamper(const char *path, size_t offset)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)offset, SEEK_SET), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, (long)offset, SEEK_SET), 0);
    fputc(ch ^ 1, f);
    fclose(f);
}

static void test_tampered_refused(void **state)
{
    world *w = *state;
    agora__trust_home *h = open_home(w);
    sync_install(w, h);
    char path[800], version[80];
    agora__error err;
    snprintf(path, sizeof path, "%s/plugins/%s/plugin.so", w->home, ID);
    tamper(path, 200);
    expect_load_refused(h, "tampered");
    agora__trust_plugin *list;
    size_t n;
    assert_int_equal(agora__trust_list(h, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].status, AGORA__TRUST_TAMPERED);
    free(list);
    assert_int_equal(agora__home_install(h, ID, "1.0.0", NULL, version, sizeof version, &err), 0);
    /* A damaged install record is shown, as tampered, not hidden. */
    snprintf(path, sizeof path, "%s/plugins/com.example.other", w->home);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/plugins/com.example.other/install.json", w->home);
    write_file(path, "{", 1);
    assert_int_equal(agora__trust_list(h, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].status,
                         strcmp(list[i].id, ID) == 0 ? AGORA__TRUST_OK : AGORA__TRUST_TAMPERED);
    free(list);
    snprintf(path, sizeof path, "%s/plugins/%s/manifest.json", w->home, ID);
    tamper(path, 10);
    expect_load_refused(h, "tampered");
    assert_int_equal(agora__home_install(h, ID, "1.0.0", NULL, version, sizeof version, &err), 0);
    agora__trust_loaded lp;
    assert_int_equal(agora__trust_load(h, ID, &lp, &err), 0);
    agora__trust_loaded_free(&lp);
    /* A tampered blob in the operator's store is refused at install. */
    char hex[65];
    agora__hex(w->cat.entries[0].plugin_sha, 32, hex);
    snprintf(path, sizeof path, "%s/blobs/%s", w->catdir, hex);
    tamper(path, 100);
    assert_int_not_equal(agora__home_install(h, ID, "1.0.0", NULL, version, sizeof version, &err),
                         0);
    assert_non_null(strstr(err.msg, "does not match the catalog's sha256"));
    tamper(path, 100);
    agora__trust_home_close(h);
}

static void test_expired_and_grace(void **state)
{
    world *w = *state;
    agora__trust_home *h = open_home(w);
    sync_install(w, h);
    agora__error err;
    agora__trust_set_clock_for_tests(w->now + 2 * 86400);
    expect_load_refused(h, "expired");
    assert_int_not_equal(agora__trust_allowed(h, ID, "1.0.0", &err), 0);
    assert_non_null(strstr(err.msg, "expired"));
    h->grace_s = 3 * 86400;
    agora__trust_loaded lp;
    assert_int_equal(agora__trust_load(h, ID, &lp, &err), 0);
    agora__trust_loaded_free(&lp);
    /* An expired catalog is never accepted by sync, whatever the grace. */
    agora__catalog old;
    w->cat.version += 10;
    assert_int_equal(agora__catalog_write_dir(w->catdir, &w->cat, &w->op, &err), 0);
    assert_int_not_equal(agora__home_sync(h, w->catdir, &old, &err), 0);
    assert_non_null(strstr(err.msg, "expired"));
    agora__trust_set_clock_for_tests(0);
    agora__trust_home_close(h);
}

static void test_revoked_and_rollback(void **state)
{
    world *w = *state;
    agora__trust_home *h = open_home(w);
    sync_install(w, h);
    agora__error err;
    agora__catalog old;
    char version[80];
    /* Keep the current (certified) catalog bytes for the rollback attempt. */
    char saved[700];
    snprintf(saved, sizeof saved, "%s/old", w->dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", w->catdir, saved);
    assert_int_equal(system(cmd), 0);

    w->cat.entries[0].revoked = 1;
    w->cat.entries[0].revoked_at = w->now;
    agora__strlcpy(w->cat.entries[0].reason, "wrong results", sizeof w->cat.entries[0].reason);
    publish(w);
    /* A second handle (the running `agora run`) sees the revocation via allowed(). */
    agora__trust_home *runner = open_home(w);
    assert_int_equal(agora__trust_allowed(runner, ID, "1.0.0", &err), 0);
    assert_int_equal(agora__home_sync(h, w->catdir, &old, &err), 0);
    assert_int_equal(old.n, 1);
    assert_false(old.entries[0].revoked);
    agora__catalog_free(&old);
    assert_int_not_equal(agora__trust_allowed(runner, ID, "1.0.0", &err), 0);
    assert_non_null(strstr(err.msg, "revoked"));
    assert_non_null(strstr(err.msg, "wrong results"));
    expect_load_refused(runner, "revoked");
    assert_int_not_equal(agora__home_install(h, ID, "1.0.0", NULL, version, sizeof version, &err),
                         0);
    assert_non_null(strstr(err.msg, "revoked"));
    /* Rollback to the earlier, still validly signed catalog. */
    assert_int_not_equal(agora__home_sync(h, saved, &old, &err), 0);
    assert_non_null(strstr(err.msg, "not newer"));
    agora__trust_home_close(runner);
    agora__trust_home_close(h);
}

static void test_home_permissions(void **state)
{
    world *w = *state;
    agora__trust_home *h;
    agora__error err;
    assert_int_equal(chmod(w->home, 0770), 0);
    assert_int_not_equal(agora__trust_home_open(w->home, &h, &err), 0);
    assert_non_null(strstr(err.msg, "writable by group"));
    assert_int_equal(chmod(w->home, 0700), 0);
    char path[800];
    snprintf(path, sizeof path, "%s/secret", w->home);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_not_equal(agora__trust_home_open(w->home, &h, &err), 0);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);
    h = open_home(w);
    agora__trust_home_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_ok_and_intersection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_and_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_permissions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
