/* The operator's key-rotation commands: `agora root sign` publishes a new root version (which
 * keys are root keys, how many of them must sign, which keys sign catalogs), and `agora keys
 * rotate` replaces the catalog key: a new key, a root naming it, the catalog re-signed with it.
 * Clinics follow the chain of roots on `agora sync` (host/trust/root.c). */
#include "audit.h"
#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ROOT_EXPIRES    "365"
#define DEFAULT_CATALOG_EXPIRES "30"

typedef struct root_opts {
    const char *catalog, *expires, *catalog_key_expires, *threshold, *out;
    agora__cli_list passes; /* --passphrase-file, one per passphrase the keys need */
    const char *catalog_expires;
    agora__cli_list keys, root_pubs, catalog_pubs;
    int json;
    size_t n_pos;
} root_opts;

enum { SIGN = 1u, ROTATE = 2u };

static int parse(const agora__cli_cmd *desc, int argc, char **argv, root_opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    o->expires = DEFAULT_ROOT_EXPIRES;
    o->catalog_expires = DEFAULT_CATALOG_EXPIRES;
    const agora__cli_opt table[] = {
        {"--catalog", 0, AGORA__CLI_VALUE, &o->catalog, "DIR", "the catalog directory",
         AGORA__CLI_REQUIRED, NULL, 0, 0},
        {"--key", 0, AGORA__CLI_LIST, &o->keys, "ROOT.key",
         "a root key that signs (repeat: a threshold of the current root's keys and of the new "
         "root's)",
         AGORA__CLI_REQUIRED, NULL, AGORA__ROOT_SIGS_MAX, 0},
        {"--root-pub", 0, AGORA__CLI_LIST, &o->root_pubs, "KEY.pub",
         "a root key of the new root (repeat; default: the current root's)", 0, NULL,
         AGORA__ROOT_KEYS_MAX, SIGN},
        {"--threshold", 0, AGORA__CLI_VALUE, &o->threshold, "N",
         "root keys that must sign the next root (default: the current root's, else 1)", 0, NULL, 0,
         SIGN},
        {"--catalog-pub", 0, AGORA__CLI_LIST, &o->catalog_pubs, "KEY.pub",
         "a catalog-signing key of the new root (repeat; default: the current root's)", 0, NULL,
         AGORA__ROOT_KEYS_MAX, SIGN},
        {"--catalog-key-expires", 0, AGORA__CLI_VALUE, &o->catalog_key_expires, "DAYS|DATE",
         "expiry of the catalog keys (default: the root's expiry)", 0, NULL, 0, SIGN},
        {"--expires", 0, AGORA__CLI_VALUE, &o->expires, "DAYS|DATE",
         "expiry of the new root (default 365 days)", 0, NULL, 0, 0},
        {"--out", 0, AGORA__CLI_VALUE, &o->out, "PREFIX",
         "write the new catalog key to PREFIX.key and PREFIX.pub", AGORA__CLI_REQUIRED, NULL, 0,
         ROTATE},
        {"--catalog-expires", 0, AGORA__CLI_VALUE, &o->catalog_expires, "DAYS|DATE",
         "expiry of the re-signed catalog (default 30 days)", 0, NULL, 0, ROTATE},
        {"--passphrase-file", 0, AGORA__CLI_LIST, &o->passes, "FILE",
         "a passphrase of encrypted keys (repeat: each key takes the one that opens it; rotate "
         "encrypts the new key with the first)",
         0, NULL, 8, 0},
        AGORA__CLI_OPT_JSON(&o->json, "print the result as JSON"),
    };
    return agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, &o->n_pos, status);
}

#define SIGN_ARGS                                                                                  \
    "sign --catalog DIR --key ROOT.key [--key ROOT2.key]...\n"                                     \
    "         [--root-pub KEY.pub]... [--threshold N] [--catalog-pub KEY.pub]...\n"                \
    "         [--catalog-key-expires DAYS|DATE] [--expires DAYS|DATE]\n"                           \
    "         [--passphrase-file FILE] [--json]"
#define SIGN_ABOUT                                                                                 \
    "Write the next root version, DIR/root/N.root: its root keys (--root-pub) and how\n"           \
    "many of them must sign the root after it (--threshold), and the keys that may sign\n"         \
    "catalogs (--catalog-pub) with their expiry. What is not given is kept from the\n"             \
    "current root. Clinics accept root N+1 only when a threshold of root N's keys and a\n"         \
    "threshold of its own keys signed it, so every --key is a root key of either. The\n"           \
    "first root (version 1) must be signed by the key that signs the catalog now, which\n"         \
    "is what clinics trust (agora init --trust). Nothing is written unless both\n"                 \
    "thresholds are met."
#define ROTATE_ARGS                                                                                \
    "rotate --catalog DIR --key ROOT.key [--key ROOT2.key]... --out PREFIX\n"                      \
    "         [--expires DAYS|DATE] [--catalog-expires DAYS|DATE]\n"                               \
    "         [--passphrase-file FILE] [--json]"
#define ROTATE_ABOUT                                                                               \
    "Replace the catalog-signing key: make a new key pair (PREFIX.key, PREFIX.pub), sign\n"        \
    "the next root version naming it as the only catalog key (same root keys and\n"                \
    "threshold), then re-sign the catalog in DIR with it as a new version. The old\n"              \
    "catalog key is no longer accepted by clinics once they sync. On a catalog without\n"          \
    "roots the --key given must include the current operator key; the root keys of\n"              \
    "root 1 are then the --key given, threshold 1."

static const agora__cli_cmd sign_cmd = {"root", SIGN_ARGS, SIGN_ABOUT, NULL, 0, 1, 1, SIGN};
static const agora__cli_cmd rotate_cmd = {"keys", ROTATE_ARGS, ROTATE_ABOUT, NULL, 0, 1, 1, ROTATE};

static void free_lists(root_opts *o)
{
    agora__cli_list_free(&o->keys);
    agora__cli_list_free(&o->root_pubs);
    agora__cli_list_free(&o->catalog_pubs);
    agora__cli_list_free(&o->passes);
}

/* Read every --key (wiped by the caller over all n), each with the first --passphrase-file that
 * opens it (a plain key needs none). */
static int load_keys(const root_opts *o, agora__seckey *keys, agora__error *err)
{
    for (size_t i = 0; i < o->keys.n; i++) {
        int rc = agora__load_seckey(o->keys.v[i], o->passes.n > 0 ? o->passes.v[0] : NULL, &keys[i],
                                    err);
        for (size_t p = 1; rc != 0 && p < o->passes.n; p++)
            rc = agora__load_seckey(o->keys.v[i], o->passes.v[p], &keys[i], err);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[j].pub.id, keys[i].pub.id) == 0)
                return agora__error_set(err, AGORA_EINVAL, "--key %s is given twice",
                                        keys[i].pub.id);
    }
    return 0;
}

static int read_pubs(const agora__cli_list *l, agora__pubkey *out, size_t *n, const char *opt,
                     agora__error *err)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc = agora__pubkey_read(l->v[i], &out[i], err);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (memcmp(out[j].pk, out[i].pk, 32) == 0)
                return agora__error_set(err, AGORA_EINVAL, "%s %s is given twice", opt, out[i].id);
    }
    *n = l->n;
    return 0;
}

/* The key that signs DIR's catalog now (the implicit root v0 clinics trust), among keys: its
 * index, -1 when DIR has no catalog, or an error when none of keys is it. */
static int v0_signer(const char *dir, const agora__seckey *keys, size_t n, int *index,
                     agora__error *err)
{
    uint8_t *doc = NULL, *sig = NULL;
    size_t dl, sl;
    int missing = 0;
    *index = -1;
    int rc = agora__catalog_read_dir(dir, &doc, &dl, &sig, &sl, &missing, err);
    if (rc != 0 && missing) {
        agora__error_clear(err);
        return 0;
    }
    if (rc != 0)
        return rc;
    char id[AGORA__KEY_ID_HEX];
    uint8_t s[64];
    rc = agora__sig_parse(sig, sl, id, s, err);
    free(doc);
    free(sig);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].pub.id, id) == 0)
            *index = (int)i;
    if (*index < 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "root threshold check: %s has no root yet, so clinics trust the "
                                "key that signs its catalog now (%s); give it as one --key",
                                dir, id);
    return 0;
}

/* Sign r with keys, check it as clinics will (against prev, or the implicit root of the current
 * catalog key when DIR has no root), and write it. */
static int sign_and_write(const char *dir, const agora__root *prev, const agora__root *r,
                          const agora__seckey *keys, size_t n, agora__error *err)
{
    uint8_t *file;
    size_t len;
    int rc = agora__root_sign(r, keys, n, &file, &len, err);
    if (rc != 0)
        return rc;
    agora__root check;
    rc = agora__root_verify_next(prev, file, len, &check, err);
    if (rc == 0)
        rc = agora__root_write(dir, r->version, file, len, err);
    free(file);
    return rc;
}

/* prev: the newest root of DIR, else the implicit root of the current catalog key (or, for a
 * directory without a catalog, of the signers). */
static int previous_root(const char *dir, const agora__seckey *keys, size_t n, agora__root *prev,
                         agora__error *err)
{
    int rc = agora__root_latest(dir, prev, err);
    if (rc != 1)
        return rc;
    int idx;
    rc = v0_signer(dir, keys, n, &idx, err);
    if (rc != 0)
        return rc;
    agora__pubkey pubs[AGORA__ROOT_SIGS_MAX];
    size_t np = 0;
    if (idx >= 0)
        pubs[np++] = keys[idx].pub;
    else
        for (size_t i = 0; i < n && i < AGORA__ROOT_KEYS_MAX; i++)
            pubs[np++] = keys[i].pub;
    agora__root_implicit(pubs, np, prev);
    return 0;
}

static void print_root(const char *verb, const char *dir, const agora__root *r)
{
    char when[AGORA__TIME_TEXT];
    agora__time_format(r->expires, when);
    printf("%s root version %llu in %s/root (expires %s)\n", verb, (unsigned long long)r->version,
           dir, when);
    printf("  root keys (%u of %zu must sign the next root):", r->threshold, r->n_root);
    for (size_t i = 0; i < r->n_root; i++)
        printf(" %s", r->root_keys[i].id);
    printf("\n  catalog keys:");
    for (size_t i = 0; i < r->n_catalog; i++) {
        agora__time_format(r->catalog_expires[i], when);
        printf(" %s (until %s)", r->catalog_keys[i].id, when);
    }
    printf("\n");
}

static json_t *root_json(const agora__root *r)
{
    json_t *rk = json_array(), *ck = json_array();
    for (size_t i = 0; rk != NULL && i < r->n_root; i++)
        json_array_append_new(rk, json_string(r->root_keys[i].id));
    for (size_t i = 0; ck != NULL && i < r->n_catalog; i++)
        json_array_append_new(ck, json_string(r->catalog_keys[i].id));
    char when[AGORA__TIME_TEXT];
    agora__time_format(r->expires, when);
    return json_pack("{s:I,s:s,s:I,s:o,s:o}", "root_version", (json_int_t)r->version, "expires",
                     when, "threshold", (json_int_t)r->threshold, "root_keys", rk, "catalog_keys",
                     ck);
}

/* The start of both commands: parse, the one subcommand word, now, and the expiries: the root's
 * --expires, and *second from the option second_of picks in o after parsing (NULL: the root's
 * expiry). 1 to go on, else 0 with *status the exit status (the lists freed). */
static int start(const agora__cli_cmd *desc, const char *sub, int argc, char **argv, root_opts *o,
                 const char *const *second_of, int64_t *now, int64_t *expires, int64_t *second,
                 int *status)
{
    if (!parse(desc, argc, argv, o, status))
        return 0;
    if (strcmp(argv[1], sub) != 0) {
        free_lists(o);
        *status = agora__cli_usage_error(desc->name, "usage: agora %s %s --catalog DIR ...",
                                         desc->name, sub);
        return 0;
    }
    agora__error err = {0};
    *now = agora__trust_now();
    int rc = agora__expires_parse(o->expires, *now, expires, &err);
    *second = *expires;
    if (rc == 0 && *second_of != NULL)
        rc = agora__expires_parse(*second_of, *now, second, &err);
    if (rc != 0) {
        free_lists(o);
        fprintf(stderr, "agora %s: %s\n", desc->name, err.msg);
        *status = 2;
        return 0;
    }
    return 1;
}

int agora__cmd_root(int argc, char **argv)
{
    root_opts o = {0};
    int rc;
    int64_t now, expires, cat_expires;
    if (!start(&sign_cmd, "sign", argc, argv, &o, &o.catalog_key_expires, &now, &expires,
               &cat_expires, &rc))
        return rc;
    agora__error err = {0};
    unsigned long threshold = 0;
    if (rc == 0 && o.threshold != NULL) {
        char *end;
        threshold = strtoul(o.threshold, &end, 10);
        if (o.threshold[0] == '\0' || *end != '\0' || threshold < 1 ||
            threshold > AGORA__ROOT_KEYS_MAX)
            rc = agora__error_set(&err, AGORA_EINVAL, "--threshold must be 1..%d",
                                  AGORA__ROOT_KEYS_MAX);
    }
    if (rc != 0) {
        free_lists(&o);
        fprintf(stderr, "agora root: %s\n", err.msg);
        return 2;
    }
    agora__seckey keys[AGORA__ROOT_SIGS_MAX];
    memset(keys, 0, sizeof keys);
    agora__root prev, r;
    rc = load_keys(&o, keys, &err);
    if (rc == 0)
        rc = previous_root(o.catalog, keys, o.keys.n, &prev, &err);
    if (rc == 0) {
        r = prev;
        r.version = prev.version + 1;
        r.issued = now;
        r.expires = expires;
        if (o.root_pubs.n > 0)
            rc = read_pubs(&o.root_pubs, r.root_keys, &r.n_root, "--root-pub", &err);
    }
    if (rc == 0 && o.catalog_pubs.n > 0)
        rc = read_pubs(&o.catalog_pubs, r.catalog_keys, &r.n_catalog, "--catalog-pub", &err);
    if (rc == 0) {
        for (size_t i = 0; i < r.n_catalog; i++)
            r.catalog_expires[i] = cat_expires;
        if (o.threshold != NULL)
            r.threshold = (uint32_t)threshold;
        if (r.threshold > r.n_root)
            rc = agora__error_set(&err, AGORA_EINVAL,
                                  "--threshold %u is more than the %zu root keys", r.threshold,
                                  r.n_root);
    }
    if (rc == 0)
        rc = sign_and_write(o.catalog, &prev, &r, keys, o.keys.n, &err);
    if (rc == 0) {
        /* The operator's audit trail (trust/audit.h): who signed which root version. */
        char what[64];
        snprintf(what, sizeof what, "root v%llu", (unsigned long long)r.version);
        rc = agora__audit_operator(o.catalog, "root-sign", keys[0].pub.id, what, &err);
    }
    for (size_t i = 0; i < AGORA__ROOT_SIGS_MAX; i++)
        agora__seckey_wipe(&keys[i]);
    free_lists(&o);
    if (rc != 0)
        return agora__fail("root", &err);
    if (o.json)
        return agora__json_emit_new(stdout, root_json(&r), AGORA__JSON_LINE);
    print_root("signed", o.catalog, &r);
    return 0;
}

/* The catalog of DIR verified with the catalog keys of prev (expired ones too: replacing an
 * expired key is what rotation is for). 1 when DIR holds no catalog. */
static int load_catalog(const char *dir, const agora__root *prev, agora__catalog *cat,
                        agora__error *err)
{
    int missing = 0;
    agora__pubkey keys[AGORA__ROOT_KEYS_MAX];
    size_t n = agora__root_catalog_keys(prev, 0, keys);
    int rc = agora__catalog_load_dir(dir, keys, n, cat, NULL, NULL, NULL, NULL, &missing, err);
    if (rc != 0 && missing) {
        agora__error_clear(err);
        return 1;
    }
    return rc;
}

int agora__cmd_keys(int argc, char **argv)
{
    root_opts o = {0};
    int rc;
    int64_t now, expires, cat_expires;
    if (!start(&rotate_cmd, "rotate", argc, argv, &o, &o.catalog_expires, &now, &expires,
               &cat_expires, &rc))
        return rc;
    agora__error err = {0};
    agora__seckey keys[AGORA__ROOT_SIGS_MAX], fresh;
    memset(keys, 0, sizeof keys);
    memset(&fresh, 0, sizeof fresh);
    agora__root prev, r;
    agora__catalog cat = {0};
    int have_cat = 0;
    char pass[1025];
    size_t pass_len = 0;
    rc = load_keys(&o, keys, &err);
    if (rc == 0)
        rc = previous_root(o.catalog, keys, o.keys.n, &prev, &err);
    if (rc == 0) {
        rc = load_catalog(o.catalog, &prev, &cat, &err);
        have_cat = rc == 0;
        if (rc == 1)
            rc = 0;
    }
    const char *pass_file = o.passes.n > 0 ? o.passes.v[0] : NULL;
    if (rc == 0 && pass_file != NULL)
        rc = agora__passphrase_read(pass_file, pass, sizeof pass, &pass_len, &err);
    /* The new key exists before anything is published: a failed keygen changes nothing. */
    char key_path[4200];
    agora__pubkey pub;
    if (rc == 0)
        rc = agora__keygen_files(o.out, pass_file != NULL ? pass : NULL, pass_len, &pub, &err);
    if (rc == 0)
        rc = agora__path(key_path, sizeof key_path, &err, "%s.key", o.out);
    if (rc == 0)
        rc = agora__seckey_read(key_path, pass_file != NULL ? pass : NULL, pass_len, &fresh, &err);
    sodium_memzero(pass, sizeof pass);
    if (rc == 0) {
        r = prev;
        r.version = prev.version + 1;
        r.issued = now;
        r.expires = expires;
        if (prev.version == 0) {
            /* Root 1 from the implicit root: the signers become the root keys. */
            r.n_root = o.keys.n < AGORA__ROOT_KEYS_MAX ? o.keys.n : AGORA__ROOT_KEYS_MAX;
            for (size_t i = 0; i < r.n_root; i++)
                r.root_keys[i] = keys[i].pub;
            r.threshold = 1;
        }
        r.n_catalog = 1;
        r.catalog_keys[0] = fresh.pub;
        r.catalog_expires[0] = expires;
        rc = sign_and_write(o.catalog, &prev, &r, keys, o.keys.n, &err);
    }
    /* Then the catalog, signed by the key the new root names. */
    if (rc == 0 && have_cat) {
        cat.version++;
        cat.issued = now;
        cat.expires = cat_expires;
        agora__strlcpy(cat.key_id, fresh.pub.id, sizeof cat.key_id);
        rc = agora__catalog_write_dir(o.catalog, &cat, &fresh, &err);
    }
    if (rc == 0) {
        char what[96];
        snprintf(what, sizeof what, "root v%llu catalog key %s", (unsigned long long)r.version,
                 pub.id);
        rc = agora__audit_operator(o.catalog, "keys-rotate", pub.id, what, &err);
    }
    for (size_t i = 0; i < AGORA__ROOT_SIGS_MAX; i++)
        agora__seckey_wipe(&keys[i]);
    agora__seckey_wipe(&fresh);
    free_lists(&o);
    if (rc != 0) {
        agora__catalog_free(&cat);
        return agora__fail("keys", &err);
    }
    int status = 0;
    if (o.json) {
        json_t *j = root_json(&r);
        if (j != NULL && have_cat)
            json_object_set_new(j, "catalog_version", json_integer((json_int_t)cat.version));
        if (j != NULL)
            json_object_set_new(j, "catalog_key", json_string(pub.id));
        status = agora__json_emit_new(stdout, j, AGORA__JSON_LINE);
    } else {
        printf("new catalog key %s: %s.key (%s; keep it private), %s.pub\n", pub.id, o.out,
               pass_file != NULL ? "encrypted" : "not encrypted", o.out);
        print_root("signed", o.catalog, &r);
        if (have_cat) {
            char when[AGORA__TIME_TEXT];
            agora__time_format(cat.expires, when);
            printf("re-signed %s: catalog version %llu, expires %s, signed by key %s\n", o.catalog,
                   (unsigned long long)cat.version, when, pub.id);
        }
        printf("next: publish %s (root/ and catalog.signed with it); sign catalogs with %s.key\n",
               o.catalog, o.out);
    }
    agora__catalog_free(&cat);
    return status;
}
