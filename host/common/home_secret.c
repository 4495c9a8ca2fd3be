/* The one clinic secret (home.h): reading, creating and migrating HOME/secret, and the keys
 * derived from it with a label each. Every reader of a clinic key asks here, so there is one
 * file to back up and one derivation to keep stable. */
#include "common.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_LEN   32
#define LEGACY_LEN 64 /* root, then the migrated deid.secret key */

static const char *const label_names[AGORA__KEY_COUNT] = {
    [AGORA__KEY_UID] = "deid-uid",
    [AGORA__KEY_BILLING] = "billing",
    [AGORA__KEY_DEID] = "deid",
};

const char *agora__home_key_name(agora__home_key_label label)
{
    return (unsigned)label < AGORA__KEY_COUNT ? label_names[label] : NULL;
}

static int private_or_refuse(const char *path, agora__error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", path,
                                strerror(errno));
    if (st.st_mode & 077)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is readable by other users; run chmod 600 %s", path, path);
    return 0;
}

int agora__key_file_read(const char *path, uint8_t key[32], agora__error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return agora__error_set(err, AGORA_EINVAL, "cannot read the secret %s; pass --secret FILE",
                                path);
    if (st.st_mode & 077)
        return agora__error_set(err, AGORA_EINVAL, "secret %s is readable by others; chmod 600 it",
                                path);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__read_file(path, 256, &buf, &len, err);
    if (rc != 0)
        return rc;
    if (len == 32) {
        memcpy(key, buf, 32);
    } else {
        size_t n = len;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        char hex[65];
        if (n != 64) {
            rc = AGORA_EINVAL;
        } else {
            memcpy(hex, buf, 64);
            hex[64] = '\0';
            rc = agora__unhex(hex, key, 32) == 0 ? 0 : AGORA_EINVAL;
            sodium_memzero(hex, sizeof hex);
        }
        if (rc != 0)
            agora__error_set(err, rc,
                             "secret %s must hold 32 raw bytes or 64 hex digits; make one with "
                             "`head -c 32 /dev/urandom > FILE`",
                             path);
    }
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

/* Parse the file's bytes (32: root; 64: root + migrated deid key). */
static int parse(const char *path, const uint8_t *buf, size_t len, agora__home_secret *s,
                 agora__error *err)
{
    if (len != ROOT_LEN && len != LEGACY_LEN)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s must hold exactly 32 bytes (64 after a deid.secret migration); "
                                "it is damaged (restore it from backup: results and bills derive "
                                "from it)",
                                path);
    memcpy(s->root, buf, ROOT_LEN);
    s->have_deid_legacy = len == LEGACY_LEN;
    if (s->have_deid_legacy)
        memcpy(s->deid_legacy, buf + ROOT_LEN, 32);
    return 0;
}

static int read_secret(const char *path, agora__home_secret *s, agora__error *err)
{
    int rc = private_or_refuse(path, err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = agora__read_file(path, LEGACY_LEN, &buf, &len, err);
    if (rc == 0)
        rc = parse(path, buf, len, s, err);
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
    return rc;
}

static int write_secret(const char *path, const agora__home_secret *s, int create,
                        agora__error *err)
{
    uint8_t buf[LEGACY_LEN];
    size_t len = s->have_deid_legacy ? LEGACY_LEN : ROOT_LEN;
    memcpy(buf, s->root, ROOT_LEN);
    if (s->have_deid_legacy)
        memcpy(buf + ROOT_LEN, s->deid_legacy, 32);
    int rc = create ? agora__write_file_new(path, buf, len, 0600, err)
                    : agora__write_file_atomic(path, buf, len, 0600, err);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* Fold HOME/deid.secret (legacy) into *s and HOME/secret, then remove it. Crash-safe: the
 * secret is rewritten (atomically) before deid.secret goes, and a second run that finds both
 * holding the same key only removes deid.secret. Two different deid keys are refused. */
static int migrate(const char *home, const char *secret_path, agora__home_secret *s,
                   int secret_exists, unsigned *done, agora__error *err)
{
    char old[4096];
    int rc = agora__home_path(home, AGORA__HOME_DEID_SECRET, old, sizeof old, err);
    if (rc != 0)
        return rc;
    struct stat st;
    if (lstat(old, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", old, strerror(errno));
    }
    uint8_t key[32];
    rc = agora__key_file_read(old, key, err);
    if (rc != 0)
        return agora__error_prefix(err, "migrating deid.secret into %s", secret_path);
    if (s->have_deid_legacy && sodium_memcmp(key, s->deid_legacy, 32) != 0) {
        sodium_memzero(key, sizeof key);
        return agora__error_set(err, AGORA_EINVAL,
                                "%s and %s both hold a de-identification key, and they differ; "
                                "keep the one your earlier exports used (restore it from backup) "
                                "and remove the other",
                                old, secret_path);
    }
    if (!s->have_deid_legacy) {
        memcpy(s->deid_legacy, key, 32);
        s->have_deid_legacy = 1;
        rc = write_secret(secret_path, s, !secret_exists, err);
    }
    sodium_memzero(key, sizeof key);
    if (rc != 0)
        return rc;
    if (unlink(old) != 0 && errno != ENOENT)
        return agora__error_set(err, AGORA__ERR(errno),
                                "%s is now kept in %s but cannot be removed: %s; remove it", old,
                                secret_path, strerror(errno));
    if (done != NULL)
        *done |= AGORA__SECRET_MIGRATED;
    return 0;
}

int agora__home_secret_load(const char *home, unsigned flags, agora__home_secret *s, unsigned *done,
                            agora__error *err)
{
    char path[4096];
    memset(s, 0, sizeof *s);
    if (done != NULL)
        *done = 0;
    int rc = agora__home_path(home, AGORA__HOME_SECRET, path, sizeof path, err);
    if (rc != 0)
        return rc;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    int exists = access(path, F_OK) == 0;
    if (exists) {
        rc = read_secret(path, s, err);
    } else if (errno != ENOENT) {
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", path, strerror(errno));
    } else if (!(flags & AGORA__SECRET_CREATE)) {
        rc = agora__error_set(err, AGORA__ENOENT,
                              "%s is missing: the clinic secret (restore it from backup, or run "
                              "agora init for a new home)",
                              path);
    } else {
        randombytes_buf(s->root, sizeof s->root);
    }
    /* A new root is written by the migration when there is a deid.secret to fold in. */
    if (rc == 0 && (flags & AGORA__SECRET_MIGRATE))
        rc = migrate(home, path, s, exists, done, err);
    if (rc == 0 && !exists && !s->have_deid_legacy) {
        rc = write_secret(path, s, 1, err);
        if (rc == AGORA__EEXIST) /* another command created it just now: use that one */
            rc = read_secret(path, s, err);
        else if (rc == 0 && done != NULL)
            *done |= AGORA__SECRET_CREATED;
    } else if (rc == 0 && !exists && done != NULL) {
        *done |= AGORA__SECRET_CREATED;
    }
    if (rc != 0)
        agora__home_secret_wipe(s);
    return rc;
}

void agora__home_secret_wipe(agora__home_secret *s)
{
    sodium_memzero(s, sizeof *s);
}

int agora__home_key(const agora__home_secret *s, agora__home_key_label label, uint8_t key[32])
{
    if ((unsigned)label >= AGORA__KEY_COUNT)
        return AGORA_EINVAL;
    if (label == AGORA__KEY_DEID) {
        if (s->have_deid_legacy) {
            memcpy(key, s->deid_legacy, 32);
            return 0;
        }
        label = AGORA__KEY_UID;
    }
    if (sodium_init() < 0)
        return AGORA_EINTERNAL;
    char msg[80];
    int m = snprintf(msg, sizeof msg, "agora-key/%s", label_names[label]);
    crypto_generichash(key, 32, (const uint8_t *)msg, (size_t)m, s->root, sizeof s->root);
    sodium_memzero(msg, sizeof msg);
    return 0;
}
