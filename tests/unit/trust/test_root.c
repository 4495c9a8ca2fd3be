/* Root documents (host/trust/root.c) and the clinic's sync under them: thresholds of the old
 * and the new root, rollback and version gaps, expiry with an injected clock, a catalog key a
 * newer root removed, the chain walk and its bound, the strict parser, and the vendor pins the
 * catalog carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>

#include "fixtures.h"

#define NOW  1800000000LL /* fixed clock: 2027-01-15 */
#define DAY  86400LL
#define NKEY 6

typedef struct world {
    char dir[512], catdir[600], home[600];
    agora__seckey k[NKEY]; /* k[0]: the operator key clinics trust (root v0) */
    agora__root v0;
} world;

static void keypair(agora__seckey *k)
{
    crypto_sign_keypair(k->pub.pk, k->sk);
    agora__key_id(k->pub.pk, k->pub.id);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    agora__error err = {0};
    if (w == NULL || sodium_init() < 0)
        return -1;
    agora__trust_set_clock_for_tests(NOW);
    fix_tmpdir(w->dir, sizeof w->dir);
    snprintf(w->catdir, sizeof w->catdir, "%s/cat", w->dir);
    snprintf(w->home, sizeof w->home, "%s/home", w->dir);
    if (agora__mkdirs(w->catdir, 0755, &err) != 0)
        fail_msg("%s", err.msg);
    for (int i = 0; i < NKEY; i++)
        keypair(&w->k[i]);
    agora__root_implicit(&w->k[0].pub, 1, &w->v0);
    /* A home trusting k[0]. */
    char pub_path[700], line[256];
    snprintf(pub_path, sizeof pub_path, "%s/op.pub", w->dir);
    agora__pubkey_format(&w->k[0].pub, line, sizeof line);
    if (agora__write_file_atomic(pub_path, line, strlen(line), 0644, &err) != 0)
        fail_msg("%s", err.msg);
    const char *paths[1] = {pub_path};
    agora__init_opts o = {w->home, paths, 1, 0, 0, NULL};
    char out[4096];
    if (agora__home_init(&o, out, sizeof out, &err) != 0)
        fail_msg("%s", err.msg);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    agora__trust_set_clock_for_tests(0);
    fix_rmrf(w->dir);
    free(w);
    return 0;
}

/* A root of version v: root keys k[r0..r0+nr-1] with threshold t, catalog key k[ck]. */
static agora__root mkroot(const world *w, uint64_t v, int r0, int nr, uint32_t t, int ck,
                          int64_t expires)
{
    agora__root r;
    memset(&r, 0, sizeof r);
    r.version = v;
    r.issued = NOW - DAY;
    r.expires = expires;
    r.threshold = t;
    for (int i = 0; i < nr; i++)
        r.root_keys[i] = w->k[r0 + i].pub;
    r.n_root = (size_t)nr;
    r.catalog_keys[0] = w->k[ck].pub;
    r.catalog_expires[0] = expires;
    r.n_catalog = 1;
    return r;
}

/* Sign r with the keys whose indexes are in signers (n of them). */
static uint8_t *sign(const world *w, const agora__root *r, const int *signers, size_t n,
                     size_t *len)
{
    agora__seckey keys[8];
    for (size_t i = 0; i < n; i++)
        keys[i] = w->k[signers[i]];
    uint8_t *out;
    agora__error err = {0};
    if (agora__root_sign(r, keys, n, &out, len, &err) != 0)
        fail_msg("%s", err.msg);
    return out;
}

static void publish_root(const world *w, const agora__root *r, const int *signers, size_t n)
{
    size_t len;
    uint8_t *f = sign(w, r, signers, n, &len);
    agora__error err = {0};
    if (agora__root_write(w->catdir, r->version, f, len, &err) != 0)
        fail_msg("%s", err.msg);
    free(f);
}

static void publish_catalog(const world *w, uint64_t version, int key)
{
    agora__catalog c;
    memset(&c, 0, sizeof c);
    c.version = version;
    c.issued = NOW - 60;
    c.expires = NOW + 30 * DAY;
    agora__strlcpy(c.key_id, w->k[key].pub.id, sizeof c.key_id);
    agora__error err = {0};
    if (agora__catalog_write_dir(w->catdir, &c, &w->k[key], &err) != 0)
        fail_msg("%s", err.msg);
}

/* Sync the home from catdir: the return code, err filled. */
static int sync_home(const world *w, agora__error *err, uint64_t *root_version)
{
    agora__trust_home *h;
    if (agora__trust_home_open(w->home, &h, err) != 0)
        fail_msg("open: %s", err->msg);
    agora__catalog old;
    int rc = agora__home_sync(h, w->catdir, &old, err);
    if (root_version != NULL)
        *root_version = agora__trust_home_root(h)->version;
    agora__catalog_free(&old);
    agora__trust_home_close(h);
    return rc;
}

static void test_thresholds(void **state)
{
    world *w = *state;
    agora__error err = {0};
    agora__root next;
    /* v1: root keys k1,k2,k3, threshold 2; from v0 it needs k0 too. */
    agora__root v1 = mkroot(w, 1, 1, 3, 2, 0, NOW + 365 * DAY);
    size_t len;
    uint8_t *f = sign(w, &v1, (int[]){0, 1, 2}, 3, &len);
    assert_int_equal(agora__root_verify_next(&w->v0, f, len, &next, &err), 0);
    assert_int_equal(next.version, 1);
    assert_int_equal(next.threshold, 2);
    free(f);
    f = sign(w, &v1, (int[]){0, 1}, 2, &len); /* 1 of its own 3: below its threshold 2 */
    assert_int_not_equal(agora__root_verify_next(&w->v0, f, len, &next, &err), 0);
    assert_non_null(strstr(err.msg, "root threshold check"));
    assert_non_null(strstr(err.msg, "of its own"));
    free(f);
    f = sign(w, &v1, (int[]){1, 2, 3}, 3, &len); /* without the v0 key */
    assert_int_not_equal(agora__root_verify_next(&w->v0, f, len, &next, &err), 0);
    assert_non_null(strstr(err.msg, "0 of the 1 root keys root version 0 requires"));
    free(f);
    /* v2 under v1: needs 2 of k1..k3 (the same signature twice counts once). */
    agora__root v2 = mkroot(w, 2, 1, 3, 2, 4, NOW + 365 * DAY);
    f = sign(w, &v2, (int[]){1, 1}, 2, &len);
    assert_int_not_equal(agora__root_verify_next(&v1, f, len, &next, &err), 0);
    assert_non_null(strstr(err.msg, "signed by 1 of the 2"));
    free(f);
    f = sign(w, &v2, (int[]){5, 4}, 2, &len); /* keys that are not root keys */
    assert_int_not_equal(agora__root_verify_next(&v1, f, len, &next, &err), 0);
    free(f);
    f = sign(w, &v2, (int[]){3, 1}, 2, &len);
    assert_int_equal(agora__root_verify_next(&v1, f, len, &next, &err), 0);
    /* A flipped byte in the document: no signature verifies. */
    f[len - 5] ^= 1;
    assert_int_not_equal(agora__root_verify_next(&v1, f, len, &next, &err), 0);
    free(f);
}

static void test_rollback_and_gaps(void **state)
{
    world *w = *state;
    agora__error err = {0};
    agora__root v1 = mkroot(w, 1, 1, 3, 2, 0, NOW + 365 * DAY), next;
    agora__root v2 = mkroot(w, 2, 1, 3, 2, 4, NOW + 365 * DAY);
    agora__root v3 = mkroot(w, 3, 1, 3, 2, 5, NOW + 365 * DAY);
    size_t len;
    uint8_t *f = sign(w, &v1, (int[]){1, 2}, 2, &len);
    /* v1 again after v2: a rollback. */
    assert_int_not_equal(agora__root_verify_next(&v2, f, len, &next, &err), 0);
    assert_non_null(strstr(err.msg, "root version check"));
    free(f);
    f = sign(w, &v3, (int[]){1, 2}, 2, &len); /* v3 straight after v1: a gap */
    assert_int_not_equal(agora__root_verify_next(&v1, f, len, &next, &err), 0);
    assert_non_null(strstr(err.msg, "expected root version 2"));
    free(f);
}

static void test_expiry(void **state)
{
    world *w = *state;
    agora__error err = {0};
    agora__root out;
    uint8_t *file;
    size_t len;
    unsigned walked;
    /* v1 expired long ago, v2 current: only the last root of a walk must be current. */
    agora__root v1 = mkroot(w, 1, 1, 3, 2, 0, NOW - 10 * DAY);
    agora__root v2 = mkroot(w, 2, 1, 3, 2, 4, NOW + DAY);
    publish_root(w, &v1, (int[]){0, 1, 2}, 3);
    assert_int_not_equal(agora__root_walk(w->catdir, &w->v0, NOW, &out, &file, &len, &walked, &err),
                         0);
    assert_non_null(strstr(err.msg, "root expiry check"));
    publish_root(w, &v2, (int[]){1, 2}, 2);
    assert_int_equal(agora__root_walk(w->catdir, &w->v0, NOW, &out, &file, &len, &walked, &err), 0);
    assert_int_equal(out.version, 2);
    assert_int_equal(walked, 2);
    free(file);
    /* Two days later (the injected clock) v2 has expired too. */
    agora__trust_set_clock_for_tests(NOW + 2 * DAY);
    publish_catalog(w, 1, 4);
    assert_int_not_equal(sync_home(w, &err, NULL), 0);
    assert_non_null(strstr(err.msg, "root version 2 expired"));
    agora__trust_set_clock_for_tests(NOW);
    assert_true(sync_home(w, &err, NULL) >= 0);
    /* An expired catalog key in a current root: refused. */
    agora__root v3 = mkroot(w, 3, 1, 3, 2, 5, NOW + 365 * DAY);
    v3.catalog_expires[0] = NOW - 1;
    publish_root(w, &v3, (int[]){1, 3}, 2);
    publish_catalog(w, 2, 5);
    assert_int_not_equal(sync_home(w, &err, NULL), 0);
    assert_non_null(strstr(err.msg, "every catalog key of root version 3 has expired"));
}

/* v0 -> v1 -> v2 -> v3 on one sync; v3's catalog key signs; the keys v2 and v3 removed do not. */
static void test_chain_and_removed_key(void **state)
{
    world *w = *state;
    agora__error err = {0};
    uint64_t rv = 0;
    publish_catalog(w, 1, 0);
    assert_int_equal(sync_home(w, &err, &rv), 0);
    assert_int_equal(rv, 0);
    agora__root v1 = mkroot(w, 1, 1, 3, 2, 0, NOW + 365 * DAY);
    publish_root(w, &v1, (int[]){0, 1, 2}, 3);
    publish_catalog(w, 2, 0);
    assert_int_equal(sync_home(w, &err, &rv), 0);
    assert_int_equal(rv, 1);
    agora__root v2 = mkroot(w, 2, 1, 3, 2, 4, NOW + 365 * DAY);
    agora__root v3 = mkroot(w, 3, 1, 3, 2, 5, NOW + 365 * DAY);
    publish_root(w, &v2, (int[]){1, 3}, 2);
    publish_root(w, &v3, (int[]){2, 3}, 2);
    /* A catalog signed by k0, which v2 removed: refused, and the home keeps root v1. */
    publish_catalog(w, 3, 0);
    assert_int_not_equal(sync_home(w, &err, &rv), 0);
    assert_non_null(strstr(err.msg, "catalog key check (root version 3)"));
    assert_int_equal(rv, 1);
    /* ...and by k4, v2's catalog key that v3 replaced: refused too. */
    publish_catalog(w, 3, 4);
    assert_int_not_equal(sync_home(w, &err, &rv), 0);
    publish_catalog(w, 3, 5);
    assert_int_equal(sync_home(w, &err, &rv), 0);
    assert_int_equal(rv, 3);
    /* The held root survives a re-open and verifies the held catalog. */
    agora__trust_home *h;
    assert_int_equal(agora__trust_home_open(w->home, &h, &err), 0);
    assert_int_equal(agora__trust_home_root(h)->version, 3);
    assert_int_equal(agora__trust_home_catalog(h)->version, 3);
    agora__trust_home_close(h);
    /* A replayed older root file under the next name changes nothing. */
    char from[800], to[800];
    snprintf(from, sizeof from, "%s/root/2.root", w->catdir);
    snprintf(to, sizeof to, "%s/root/4.root", w->catdir);
    uint8_t *buf;
    size_t len;
    assert_int_equal(agora__read_file(from, 1 << 20, &buf, &len, &err), 0);
    assert_int_equal(agora__write_file_atomic(to, buf, len, 0644, &err), 0);
    free(buf);
    publish_catalog(w, 4, 5);
    assert_int_not_equal(sync_home(w, &err, &rv), 0);
    assert_non_null(strstr(err.msg, "root version check"));
    assert_int_equal(rv, 3);
}

static void test_chain_bound(void **state)
{
    world *w = *state;
    agora__error err = {0};
    /* AGORA__ROOT_CHAIN_MAX + 1 new versions, each valid: one sync refuses to walk them all. */
    for (uint64_t v = 1; v <= AGORA__ROOT_CHAIN_MAX + 1; v++) {
        agora__root r = mkroot(w, v, 1, 1, 1, 0, NOW + DAY);
        publish_root(w, &r, v == 1 ? (int[]){0, 1} : (int[]){1}, v == 1 ? 2 : 1);
    }
    agora__root out;
    uint8_t *file;
    size_t len;
    unsigned walked;
    assert_int_equal(agora__root_walk(w->catdir, &w->v0, NOW, &out, &file, &len, &walked, &err),
                     AGORA_ELIMIT);
    assert_non_null(strstr(err.msg, "more than 64 new root versions"));
    /* The operator's own view walks them all. */
    assert_int_equal(agora__root_latest(w->catdir, &out, &err), 0);
    assert_int_equal(out.version, AGORA__ROOT_CHAIN_MAX + 1);
}

static void test_parse_strict(void **state)
{
    (void)state;
    agora__root r;
    agora__error err = {0};
    static const char *const bad[] = {
        "{}",
        "{\"format\":\"agora-root/1\",\"version\":1,\"issued\":\"2027-01-01T00:00:00Z\","
        "\"expires\":\"2028-01-01T00:00:00Z\",\"threshold\":2,\"root_keys\":[],"
        "\"catalog_keys\":[]}",
        "[1,2]",
        "{\"format\":\"agora-root/2\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(agora__root_parse((const uint8_t *)bad[i], strlen(bad[i]), &r, &err),
                             0);
    /* A round trip, then one unknown field, a threshold above the key count, a key twice. */
    agora__seckey a, b;
    keypair(&a);
    keypair(&b);
    agora__root x;
    memset(&x, 0, sizeof x);
    x.version = 7;
    x.issued = NOW;
    x.expires = NOW + DAY;
    x.threshold = 2;
    x.root_keys[0] = a.pub;
    x.root_keys[1] = b.pub;
    x.n_root = 2;
    x.catalog_keys[0] = b.pub;
    x.catalog_expires[0] = NOW + DAY;
    x.n_catalog = 1;
    char *text;
    size_t len;
    assert_int_equal(agora__root_serialize(&x, &text, &len, &err), 0);
    assert_int_equal(agora__root_parse((const uint8_t *)text, len, &r, &err), 0);
    assert_int_equal(r.version, 7);
    assert_int_equal(r.n_root, 2);
    assert_memory_equal(r.catalog_keys[0].pk, b.pub.pk, 32);
    assert_int_equal(r.catalog_expires[0], NOW + DAY);
    char *extra = malloc(len + 32);
    snprintf(extra, len + 32, "{\"evil\": 1,%s", text + 1);
    assert_int_not_equal(agora__root_parse((const uint8_t *)extra, strlen(extra), &r, &err), 0);
    assert_non_null(strstr(err.msg, "unknown field"));
    free(extra);
    free(text);
    x.threshold = 3;
    assert_int_equal(agora__root_serialize(&x, &text, &len, &err), 0);
    assert_int_not_equal(agora__root_parse((const uint8_t *)text, len, &r, &err), 0);
    free(text);
    x.threshold = 1;
    x.root_keys[1] = a.pub;
    assert_int_equal(agora__root_serialize(&x, &text, &len, &err), 0);
    assert_int_not_equal(agora__root_parse((const uint8_t *)text, len, &r, &err), 0);
    assert_non_null(strstr(err.msg, "listed twice"));
    free(text);
    /* Not signed at all, and more than 64 KiB. */
    const char *doc = "{\"format\":\"agora-root/1\"}";
    assert_int_equal(agora__root_signers((const uint8_t *)doc, strlen(doc), &a.pub, 1, &err), -1);
    uint8_t *big = calloc(1, AGORA__ROOT_MAX + 1);
    memset(big, ' ', AGORA__ROOT_MAX + 1);
    assert_int_not_equal(agora__root_parse(big, AGORA__ROOT_MAX + 1, &r, &err), 0);
    free(big);
}

static void test_vendor_pins(void **state)
{
    (void)state;
    agora__error err = {0};
    agora__catalog c;
    memset(&c, 0, sizeof c);
    c.version = 1;
    c.issued = NOW;
    c.expires = NOW + DAY;
    agora__seckey x, y;
    keypair(&x);
    keypair(&y);
    agora__strlcpy(c.key_id, x.pub.id, sizeof c.key_id);
    /* No pins: anything goes (catalogs from before pins). */
    assert_int_equal(agora__catalog_vendor_check(&c, "X", y.pub.id, y.pub.pk, "a@1.0.0", &err), 0);
    int added;
    assert_int_equal(agora__catalog_vendor_pin(&c, "X", &x.pub, &added, &err), 0);
    assert_int_equal(added, 1);
    assert_int_equal(agora__catalog_vendor_pin(&c, "X", &x.pub, &added, &err), 0);
    assert_int_equal(added, 0);
    assert_int_equal(agora__catalog_vendor_pin(&c, "Y", &y.pub, &added, &err), 0);
    assert_int_equal(agora__catalog_vendor_check(&c, "X", x.pub.id, x.pub.pk, "a@1.0.0", &err), 0);
    assert_int_equal(agora__catalog_vendor_check(&c, "X", x.pub.id, NULL, "a@1.0.0", &err), 0);
    assert_int_not_equal(agora__catalog_vendor_check(&c, "X", y.pub.id, y.pub.pk, "a@1.0.0", &err),
                         0);
    assert_non_null(strstr(err.msg, "vendor pin check: a@1.0.0 is signed by key"));
    char hex[65];
    agora__hex(y.pub.pk, 32, hex);
    assert_null(strstr(err.msg, hex)); /* names the check and the key id, not the key bytes */
    assert_int_not_equal(agora__catalog_vendor_check(&c, "X", "", NULL, "a@1.0.0", &err), 0);
    assert_non_null(strstr(err.msg, "is not signed"));
    assert_ptr_equal(agora__catalog_key_owner(&c, "X", y.pub.pk), &c.vendors[1]);
    assert_null(agora__catalog_key_owner(&c, "X", x.pub.pk));
    /* The pins survive serialisation; a repeated vendor is refused by the parser. */
    char *text;
    size_t len;
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    agora__catalog back;
    assert_int_equal(agora__catalog_parse((const uint8_t *)text, len, &back, &err), 0);
    assert_int_equal(back.n_vendors, 2);
    assert_int_not_equal(agora__catalog_vendor_check(&back, "X", y.pub.id, NULL, "a@1.0.0", &err),
                         0);
    agora__catalog_free(&back);
    char *dup = strstr(text, "\"name\": \"Y\"");
    assert_non_null(dup);
    dup[9] = 'X';
    assert_int_not_equal(agora__catalog_parse((const uint8_t *)text, len, &back, &err), 0);
    assert_non_null(strstr(err.msg, "repeats a vendor"));
    free(text);
    agora__catalog_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thresholds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_and_removed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_bound, setup, teardown),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_vendor_pins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
