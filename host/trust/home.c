/* The clinic home: where trust state lives (trusted keys, the held catalog, installed plugins,
 * the clinic secret). Plugins never get a path into it (they run sandboxed with no filesystem);
 * the directories are 0700 and opening refuses a home other users could write.
 *
 *   HOME/config.json          policy: expiry grace, PS3.15 options the clinic allows (0600)
 *   HOME/secret               the one clinic secret: every key derives from it (0600; home.h)
 *   HOME/trust/<keyid>.pub    trusted operator keys (0600)
 *   HOME/clinic.key           the clinic's Ed25519 signing key for ledger exports (0600)
 *   HOME/clinic.pub           its public half, for the operator (agora clinic add)
 *   HOME/catalog/current      the held catalog: its signature line, then its exact bytes
 *   HOME/catalog/source       the directory it was synced from (where install finds blobs)
 *   HOME/plugins/<id>/        plugin.so, manifest.json, install.json (one installed build per id)
 */
#include "trust_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FORMAT "agora-config/1"
#define CONFIG_MAX    (64 * 1024)
#define GRACE_MAX     (90LL * 86400)

int agora__trust_home_resolve(const char *dir, char *out, size_t size, agora__error *err)
{
    return agora__home_dir(dir, out, size, err);
}

/* The directory must be ours and not writable by group or others: trust state must not be
 * changeable by anyone but the clinic's service user. */
static int check_private_dir(const char *path, agora__error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return agora__error_set(err, AGORA__ERR(errno), "%s: %s; run agora init first", path,
                                strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return agora__error_set(err, AGORA_EINVAL, "%s is not a directory", path);
    if (st.st_uid != geteuid())
        return agora__error_set(err, AGORA_EINVAL,
                                "%s belongs to another user; the clinic home must be owned by "
                                "the user running agora",
                                path);
    if (st.st_mode & 022)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is writable by group or others; run chmod 700 %s", path, path);
    return 0;
}

static int write_config(const char *dir, uint32_t policy, int64_t grace, agora__error *err)
{
    char path[4096];
    int rc = agora__home_path(dir, AGORA__HOME_CONFIG, path, sizeof path, err);
    if (rc != 0)
        return rc;
    json_t *allowed = json_array();
    for (unsigned i = 0; i < AGORA__OPT_COUNT; i++)
        if (policy & (1u << i))
            json_array_append_new(allowed, json_string(agora__trust_option_name(i)));
    json_t *root = json_pack("{s:s, s:I, s:o}", "format", CONFIG_FORMAT, "expiry_grace_s",
                             (json_int_t)grace, "allowed_options", allowed);
    char *text = root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (text == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (buf == NULL) {
        free(text);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    buf[n] = '\n';
    rc = agora__write_file_atomic(path, buf, n + 1, 0600, err);
    free(buf);
    return rc;
}

static int read_config(agora__trust_home *h, agora__error *err)
{
    static const char *const keys[] = {"format", "expiry_grace_s", "allowed_options", NULL};
    char path[4096];
    uint8_t *buf;
    size_t len;
    int rc = agora__home_path(h->dir, AGORA__HOME_CONFIG, path, sizeof path, err);
    if (rc == 0)
        rc = agora__read_file(path, CONFIG_MAX, &buf, &len, err);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (root == NULL)
        return agora__error_set(err, AGORA_EINVAL, "%s is not valid JSON (line %d: %.80s); fix it",
                                path, jerr.line, jerr.text);
    rc = AGORA_EINVAL;
    const char *k;
    json_t *v;
    if (!json_is_object(root))
        goto bad;
    json_object_foreach(root, k, v)
    {
        size_t i;
        for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
            ;
        if (keys[i] == NULL) {
            agora__error_set(err, AGORA_EINVAL, "%s: unknown field '%.40s'; remove it", path, k);
            goto out;
        }
    }
    json_t *fmt = json_object_get(root, "format");
    json_t *grace = json_object_get(root, "expiry_grace_s");
    json_t *allowed = json_object_get(root, "allowed_options");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), CONFIG_FORMAT) != 0)
        goto bad;
    if (!json_is_integer(grace) || json_integer_value(grace) < 0 ||
        json_integer_value(grace) > GRACE_MAX) {
        agora__error_set(err, AGORA_EINVAL,
                         "%s: expiry_grace_s must be an integer 0..%lld (seconds)", path,
                         (long long)GRACE_MAX);
        goto out;
    }
    h->grace_s = (int64_t)json_integer_value(grace);
    if (!json_is_array(allowed) || json_array_size(allowed) > AGORA__OPT_COUNT)
        goto bad;
    size_t i;
    json_array_foreach(allowed, i, v)
    {
        uint32_t bit;
        if (!json_is_string(v) || agora__trust_option_parse(json_string_value(v), &bit) != 0) {
            agora__error_set(err, AGORA_EINVAL,
                             "%s: allowed_options holds an unknown PS3.15 option; valid: "
                             "rtnPatCharsOpt rtnDevIdOpt rtnInstIdOpt rtnLongFullDatesOpt "
                             "rtnLongModifDatesOpt cleanDescOpt",
                             path);
            goto out;
        }
        h->policy |= bit;
    }
    rc = 0;
    goto out;
bad:
    agora__error_set(err, AGORA_EINVAL,
                     "%s must be an object {\"format\": \"" CONFIG_FORMAT
                     "\", \"expiry_grace_s\": N, \"allowed_options\": [...]}",
                     path);
out:
    json_decref(root);
    return rc;
}

/* The one clinic secret (common/home_secret.c). Opening a home does not migrate a legacy
 * deid.secret: only agora deid reads that key, and it migrates it (with a message). */
static int read_secret(agora__trust_home *h, agora__error *err)
{
    return agora__home_secret_load(h->dir, 0, &h->secret, NULL, err);
}

static int read_trusted(agora__trust_home *h, agora__error *err)
{
    char dir[4096];
    int rc = agora__home_path(h->dir, AGORA__HOME_TRUST, dir, sizeof dir, err);
    if (rc == 0)
        rc = check_private_dir(dir, err);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".pub") != 0)
            continue;
        if (h->n_trusted == AGORA__HOME_TRUST_MAX) {
            closedir(d);
            return agora__error_set(err, AGORA_ELIMIT, "%s holds more than %d keys; remove some",
                                    dir, AGORA__HOME_TRUST_MAX);
        }
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        rc = agora__pubkey_read(path, &h->trusted[h->n_trusted], err);
        if (rc != 0) {
            closedir(d);
            return rc;
        }
        h->n_trusted++;
    }
    closedir(d);
    if (h->n_trusted == 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s holds no trusted operator key; copy the operator's .pub "
                                "there",
                                dir);
    return 0;
}

int agora__trust_refresh(agora__trust_home *h, agora__error *err)
{
    char path[4096];
    int rc = agora__home_path(h->dir, AGORA__HOME_CATALOG_HELD, path, sizeof path, err);
    if (rc != 0)
        return rc;
    agora__catalog fresh;
    uint8_t *buf;
    size_t len;
    struct stat st;
    memset(&st, 0, sizeof st);
    int have_st = stat(path, &st) == 0;
    if (have_st && h->have_catalog && h->held_ino != 0 && (uint64_t)st.st_ino == h->held_ino &&
        (uint64_t)st.st_size == h->held_size &&
        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == h->held_mtime_ns)
        return 0;
    rc = agora__read_file(path, AGORA__CATALOG_MAX + AGORA__SIG_TEXT_MAX, &buf, &len, err);
    if (rc == AGORA__ENOENT) {
        agora__catalog_free(&h->cat);
        h->have_catalog = 0;
        h->held_ino = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    const uint8_t *nl = memchr(buf, '\n', len < AGORA__SIG_TEXT_MAX ? len : AGORA__SIG_TEXT_MAX);
    if (nl == NULL) {
        free(buf);
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is damaged (no signature line); delete it and run agora sync",
                                path);
    }
    size_t sig_len = (size_t)(nl - buf) + 1;
    rc = agora__catalog_verify_parse(buf + sig_len, len - sig_len, buf, sig_len, h->cat_keys,
                                     h->n_cat_keys, &fresh, err);
    free(buf);
    if (rc != 0)
        return agora__error_prefix(err, "held catalog %s (delete it and run agora sync)", path);
    agora__catalog_free(&h->cat);
    h->cat = fresh;
    h->have_catalog = 1;
    /* Remember the file as verified (stat taken before the read: if it changed in between, the
     * identity differs next time and it is verified again). */
    h->held_ino = have_st ? (uint64_t)st.st_ino : 0;
    h->held_size = (uint64_t)st.st_size;
    h->held_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

/* The held root, HOME/catalog/root (a signed root file, verified by its own threshold when
 * sync accepted it and again here), else the implicit root of the trusted keys; then the keys
 * that verify the held catalog. Catalog-key expiry is checked when a catalog is accepted (sync),
 * not here: the held catalog's own expiry bounds how long it is used. */
static int read_root(agora__trust_home *h, agora__error *err)
{
    char path[4096];
    uint8_t *buf;
    size_t len;
    int rc = agora__home_path(h->dir, AGORA__HOME_CATALOG, path, sizeof path, err);
    if (rc == 0)
        rc = agora__path(path + strlen(path), sizeof path - strlen(path), err, "/root");
    if (rc != 0)
        return rc;
    rc = agora__read_file(path, AGORA__ROOT_MAX + AGORA__ROOT_SIGS_MAX * AGORA__SIG_TEXT_MAX, &buf,
                          &len, err);
    if (rc == AGORA__ENOENT) {
        agora__error_clear(err);
        agora__root_implicit(h->trusted, h->n_trusted, &h->root);
    } else if (rc != 0) {
        return rc;
    } else {
        rc = agora__root_verify_self(buf, len, &h->root, err);
        free(buf);
        if (rc != 0)
            return agora__error_prefix(err,
                                       "held root %s is damaged (restore it from a backup, or "
                                       "delete it and run agora sync)",
                                       path);
    }
    h->n_cat_keys = agora__root_catalog_keys(&h->root, 0, h->cat_keys);
    return 0;
}

const agora__root *agora__trust_home_root(const agora__trust_home *h)
{
    return &h->root;
}

int agora__trust_home_open(const char *dir, agora__trust_home **out, agora__error *err)
{
    *out = NULL;
    agora__trust_home *h = calloc(1, sizeof *h);
    if (h == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    int rc = agora__trust_home_resolve(dir, h->dir, sizeof h->dir, err);
    if (rc == 0)
        rc = check_private_dir(h->dir, err);
    if (rc == 0)
        rc = read_config(h, err);
    if (rc == 0)
        rc = read_secret(h, err);
    if (rc == 0)
        rc = read_trusted(h, err);
    if (rc == 0)
        rc = read_root(h, err);
    if (rc == 0)
        rc = agora__trust_refresh(h, err);
    if (rc != 0) {
        agora__trust_home_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

void agora__trust_home_close(agora__trust_home *h)
{
    if (h == NULL)
        return;
    agora__catalog_free(&h->cat);
    agora__home_secret_wipe(&h->secret);
    free(h);
}

const char *agora__trust_home_dir(const agora__trust_home *h)
{
    return h->dir;
}

const agora__catalog *agora__trust_home_catalog(const agora__trust_home *h)
{
    return h->have_catalog ? &h->cat : NULL;
}

const agora__pubkey *agora__trust_home_trusted(const agora__trust_home *h, size_t *n)
{
    *n = h->n_trusted;
    return h->trusted;
}

void agora__trust_secret(const agora__trust_home *h, uint8_t secret[32])
{
    memcpy(secret, h->secret.root, 32);
}

int agora__trust_derive_key(const agora__trust_home *h, agora__home_key_label label,
                            uint8_t key[32])
{
    return agora__home_key(&h->secret, label, key);
}

int agora__home_init(const agora__init_opts *o, char *dir, size_t dir_size, agora__error *err)
{
    char path[4096];
    agora__pubkey keys[AGORA__HOME_TRUST_MAX];
    int rc = agora__trust_home_resolve(o->dir, dir, dir_size, err);
    if (rc != 0)
        return rc;
    if (o->n_trust == 0 || o->n_trust > AGORA__HOME_TRUST_MAX)
        return agora__error_set(err, AGORA_EINVAL, "give 1..%d --trust OPERATOR.pub keys",
                                AGORA__HOME_TRUST_MAX);
    for (size_t i = 0; i < o->n_trust; i++) {
        rc = agora__pubkey_read(o->trust_paths[i], &keys[i], err);
        if (rc != 0)
            return rc;
    }
    rc = agora__home_path(dir, AGORA__HOME_CONFIG, path, sizeof path, err);
    if (rc != 0)
        return rc;
    if (access(path, F_OK) == 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is already a clinic home; use it, or choose another --home",
                                dir);
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    rc = agora__mkdirs(dir, 0700, err);
    if (rc == 0 && chmod(dir, 0700) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot chmod %s: %s", dir, strerror(errno));
    static const agora__home_entry subdirs[] = {AGORA__HOME_TRUST, AGORA__HOME_CATALOG,
                                                AGORA__HOME_PLUGINS};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        rc = agora__home_path(dir, subdirs[i], path, sizeof path, err);
        if (rc == 0 && mkdir(path, 0700) != 0 && errno != EEXIST)
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot create %s: %s", path,
                                  strerror(errno));
        if (rc == 0)
            rc = check_private_dir(path, err);
    }
    for (size_t i = 0; rc == 0 && i < o->n_trust; i++) {
        char line[256];
        agora__pubkey_format(&keys[i], line, sizeof line);
        char name[AGORA__KEY_ID_HEX + 8];
        snprintf(name, sizeof name, "%s.pub", keys[i].id);
        rc = agora__home_entry_path(dir, AGORA__HOME_TRUST, name, NULL, path, sizeof path, err);
        if (rc == 0)
            rc = agora__write_file_atomic(path, line, strlen(line), 0600, err);
    }
    /* The one clinic secret: kept when this directory already has one (agora deid made it, or an
     * init was interrupted), with a deid.secret folded in. */
    if (rc == 0) {
        agora__home_secret secret;
        unsigned done = 0;
        rc = agora__home_secret_load(dir, AGORA__SECRET_CREATE | AGORA__SECRET_MIGRATE, &secret,
                                     &done, err);
        agora__home_secret_wipe(&secret);
        if (o->secret_done != NULL)
            *o->secret_done = done;
    }
    /* The clinic's signing key for its ledger exports (statements across clinics). */
    if (rc == 0)
        rc = agora__trust_clinic_key_ensure(dir, NULL, NULL, err);
    /* config.json last: its presence marks a complete home. */
    if (rc == 0)
        rc = write_config(dir, o->policy, o->grace_s, err);
    return rc;
}
