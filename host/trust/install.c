/* Clinic-side changes to the home: accepting a catalog (sync), installing a certified build from
 * the operator's blob store, and removing one. Everything read from the operator's directory is
 * untrusted until checked against the signed catalog the home holds. */
#include "trust_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_held_bytes(const agora__trust_home *h, uint8_t **buf, size_t *len,
                           agora__error *err)
{
    char path[4096];
    int rc = agora__home_path(h->dir, AGORA__HOME_CATALOG_HELD, path, sizeof path, err);
    if (rc == 0)
        rc = agora__read_file(path, AGORA__CATALOG_MAX + AGORA__SIG_TEXT_MAX, buf, len, err);
    return rc;
}

int agora__home_sync(agora__trust_home *h, const char *dir, agora__catalog *old, agora__error *err)
{
    memset(old, 0, sizeof *old);
    agora__catalog fresh;
    memset(&fresh, 0, sizeof fresh);
    uint8_t *raw = NULL, *sig = NULL, *root_file = NULL, *joined = NULL;
    size_t raw_len = 0, sig_len = 0, root_len = 0;
    int missing = 0;
    int64_t now = agora__trust_now();
    /* The catalog bytes first, then the roots: an operator writes a new root before the catalog
     * its new key signs, so every catalog read here has its root in place by the time the chain
     * is walked. */
    int rc = agora__catalog_read_dir(dir, &raw, &raw_len, &sig, &sig_len, &missing, err);
    if (rc != 0)
        return rc;
    agora__root cur;
    unsigned walked = 0;
    rc = agora__root_walk(dir, &h->root, now, &cur, &root_file, &root_len, &walked, err);
    agora__pubkey keys[AGORA__ROOT_KEYS_MAX];
    size_t n_keys = agora__root_catalog_keys(&cur, now, keys);
    if (rc == 0 && n_keys == 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "catalog key check: every catalog key of root version %llu has "
                              "expired; refused (ask the operator to rotate: agora keys rotate)",
                              (unsigned long long)cur.version);
    if (rc == 0) {
        rc = agora__catalog_verify_parse(raw, raw_len, sig, sig_len, keys, n_keys, &fresh, err);
        char kid[AGORA__KEY_ID_HEX];
        uint8_t sb[64];
        int named = 0;
        if (rc != 0 && cur.version > 0 && agora__sig_parse(sig, sig_len, kid, sb, NULL) == 0) {
            for (size_t i = 0; i < n_keys; i++)
                named |= strcmp(keys[i].id, kid) == 0;
            if (!named)
                agora__error_set(err, rc,
                                 "catalog key check (root version %llu): the catalog is signed "
                                 "by key %s, which that root does not name as a current catalog "
                                 "key; refused (a retired or expired key, or not the operator's)",
                                 (unsigned long long)cur.version, kid);
        }
        if (rc != 0)
            agora__error_prefix(err, "%s", dir);
    }
    if (rc != 0)
        goto out;
    char when[AGORA__TIME_TEXT];
    agora__time_format(fresh.expires, when);
    if (fresh.expires <= now) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "catalog version %llu expired at %s; refused (ask the operator to "
                              "publish a fresh one)",
                              (unsigned long long)fresh.version, when);
        goto out;
    }
    /* The held file is the signature line, exactly one '\n', then the exact catalog bytes: a
     * signature file without a final newline must not shift where the document starts. */
    if (sig_len > 0 && sig[sig_len - 1] == '\n')
        sig_len--;
    size_t total = sig_len + 1 + raw_len;
    joined = malloc(total);
    if (joined == NULL) {
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(joined, sig, sig_len);
    joined[sig_len] = '\n';
    memcpy(joined + sig_len + 1, raw, raw_len);
    int same = 0;
    if (h->have_catalog && fresh.version <= h->cat.version) {
        uint8_t *held = NULL;
        size_t held_len = 0;
        same = fresh.version == h->cat.version && read_held_bytes(h, &held, &held_len, NULL) == 0 &&
               held_len == total && memcmp(held, joined, total) == 0;
        free(held);
        if (!same) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "catalog version %llu is not newer than the held version %llu; "
                                  "refused (a rollback or a replayed catalog)",
                                  (unsigned long long)fresh.version,
                                  (unsigned long long)h->cat.version);
            goto out;
        }
    }
    char path[4096], src[PATH_MAX];
    /* The new root first: the held catalog must verify with the held root's keys, and a newer
     * catalog is signed by the newer root's key. */
    if (walked > 0) {
        rc = agora__home_path(h->dir, AGORA__HOME_CATALOG, path, sizeof path, err);
        if (rc == 0)
            rc = agora__path(path + strlen(path), sizeof path - strlen(path), err, "/root");
        if (rc == 0)
            rc = agora__write_file_atomic(path, root_file, root_len, 0600, err);
        if (rc != 0)
            goto out;
        h->root = cur;
        memcpy(h->cat_keys, cur.catalog_keys, sizeof h->cat_keys);
        h->n_cat_keys = cur.n_catalog;
    }
    if (same) {
        rc = 1; /* already held: nothing changed */
        goto out;
    }
    rc = agora__home_path(h->dir, AGORA__HOME_CATALOG_HELD, path, sizeof path, err);
    if (rc == 0)
        rc = agora__write_file_atomic(path, joined, total, 0600, err);
    if (rc != 0)
        goto out;
    if (realpath(dir, src) != NULL &&
        agora__home_path(h->dir, AGORA__HOME_CATALOG_SRC, path, sizeof path, NULL) == 0)
        (void)agora__write_file_atomic(path, src, strlen(src), 0600, NULL);
    *old = h->cat;
    h->cat = fresh;
    h->have_catalog = 1;
    memset(&fresh, 0, sizeof fresh);
out:
    agora__catalog_free(&fresh);
    free(raw);
    free(sig);
    free(joined);
    free(root_file);
    return rc;
}

/* The highest certified (not revoked) version of id, or the named version. */
static int pick_entry(const agora__trust_home *h, const char *id, const char *version,
                      const agora__cat_entry **out, agora__error *err)
{
    *out = NULL;
    if (!h->have_catalog)
        return agora__error_set(err, AGORA_EINVAL, "no catalog held yet; run agora sync DIR first");
    if (version != NULL) {
        const agora__cat_entry *e = agora__catalog_find(&h->cat, id, version);
        if (e == NULL)
            return agora__error_set(err, AGORA_EINVAL,
                                    "%s@%s is not in the held catalog (version %llu); check the "
                                    "name or run agora sync",
                                    id, version, (unsigned long long)h->cat.version);
        if (e->revoked) {
            char when[AGORA__TIME_TEXT];
            agora__time_format(e->revoked_at, when);
            return agora__error_set(err, AGORA_EINVAL, "%s@%s is revoked (%s: %s); refused", id,
                                    version, when, e->reason);
        }
        *out = e;
        return 0;
    }
    int any = 0;
    for (size_t i = 0; i < h->cat.n; i++) {
        const agora__cat_entry *e = &h->cat.entries[i];
        if (strcmp(e->id, id) != 0)
            continue;
        any = 1;
        if (!e->revoked && (*out == NULL || agora__semver_cmp(e->version, (*out)->version) > 0))
            *out = e;
    }
    if (*out != NULL)
        return 0;
    if (any)
        return agora__error_set(err, AGORA_EINVAL,
                                "every certified version of %s is revoked; refused", id);
    return agora__error_set(err, AGORA_EINVAL,
                            "%s is not in the held catalog; check the name (agora catalog show) "
                            "or run agora sync",
                            id);
}

/* Read a blob from the operator's store and check it against the catalog's pin. */
static int read_blob(const char *src, const uint8_t sha[32], uint64_t size, const char *what,
                     uint8_t **out, size_t *len, agora__error *err)
{
    char hex[65], path[4096];
    agora__hex(sha, 32, hex);
    int rc = agora__path(path, sizeof path, err, "%s/blobs/%s", src, hex);
    if (rc == 0)
        rc = agora__read_file(path, (size_t)size, out, len, err);
    if (rc != 0)
        return rc;
    uint8_t got[32];
    agora__sha256(*out, *len, got);
    if (*len != size || memcmp(got, sha, 32) != 0) {
        free(*out);
        *out = NULL;
        return agora__error_set(err, AGORA_EINVAL,
                                "%s blob %s does not match the catalog's sha256: the operator's "
                                "store is damaged or was tampered with; refused",
                                what, path);
    }
    return 0;
}

/* Unlink every entry of the open directory d (path dir; files only) and then remove dir itself.
 * Closes d. */
static int remove_files_and_dir(DIR *d, const char *dir, agora__error *err)
{
    char path[4096 + 300];
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot remove %s: %s", path,
                                  strerror(errno));
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0 && errno != ENOENT)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot remove %s: %s", dir, strerror(errno));
    return rc;
}

/* Empty and remove HOME/plugins/<id>/assets (files only: install makes nothing else there). */
static int remove_assets_dir(const agora__trust_home *h, const char *id, agora__error *err)
{
    char dir[4096];
    int rc = agora__home_asset_path(h->dir, id, NULL, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0
                               : agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s",
                                                  dir, strerror(errno));
    return remove_files_and_dir(d, dir, err);
}

/* Stream each pinned asset from the operator's blob store into the home, hashing while copying;
 * a blob that does not match its pin leaves nothing behind. */
static int install_assets(const agora__trust_home *h, const agora__cat_entry *e, const char *src,
                          agora__error *err)
{
    char dir[4096];
    int rc = agora__home_asset_path(h->dir, e->id, NULL, dir, sizeof dir, err);
    if (rc == 0 && e->n_assets > 0 && mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot create %s: %s", dir, strerror(errno));
    for (uint32_t i = 0; rc == 0 && i < e->n_assets; i++) {
        char hex[65], blob[4096], dest[4096];
        agora__hex(e->assets[i].sha, 32, hex);
        rc = agora__path(blob, sizeof blob, err, "%s/blobs/%s", src, hex);
        if (rc == 0)
            rc = agora__home_asset_path(h->dir, e->id, e->assets[i].name, dest, sizeof dest, err);
        if (rc != 0)
            break;
        int in = open(blob, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0) {
            rc = agora__error_set(err, AGORA__ERR(errno), "asset %s: cannot open blob %s: %s",
                                  e->assets[i].name, blob, strerror(errno));
            break;
        }
        agora__atomic_file f;
        uint8_t sha[32];
        struct stat st;
        rc = agora__atomic_open(dest, 0600, &f, err);
        if (rc == 0 && (fstat(in, &st) != 0 || (uint64_t)st.st_size != e->assets[i].size))
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "asset %s: blob %s is not the %llu bytes the catalog pins; the "
                                  "operator's store is damaged or was tampered with; refused",
                                  e->assets[i].name, blob, (unsigned long long)e->assets[i].size);
        if (rc == 0)
            rc = agora__copy_hash(in, 0, e->assets[i].size, f.fd, sha, blob, err);
        if (rc == 0 && memcmp(sha, e->assets[i].sha, 32) != 0)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "asset %s blob %s does not match the catalog's sha256: the "
                                  "operator's store is damaged or was tampered with; refused",
                                  e->assets[i].name, blob);
        close(in);
        if (rc == 0)
            rc = agora__atomic_commit(&f, err);
        else
            agora__atomic_abort(&f);
    }
    return rc;
}

int agora__home_install(agora__trust_home *h, const char *id, const char *version,
                        const char *source_dir, char *version_out, size_t version_size,
                        agora__error *err)
{
    if (!agora__reverse_dns_valid(id) || (version != NULL && !agora__semver_valid(version)))
        return agora__error_set(err, AGORA_EINVAL,
                                "'%.140s' is not a plugin id (reverse-DNS) with an optional "
                                "@VERSION (semver)",
                                id);
    const agora__cat_entry *e;
    int rc = pick_entry(h, id, version, &e, err);
    if (rc != 0)
        return rc;
    char what[AGORA__TRUST_ID_MAX + AGORA__TRUST_VERSION_MAX + 2];
    snprintf(what, sizeof what, "%s@%s", e->id, e->version);
    rc = agora__catalog_vendor_check(&h->cat, e->vendor, e->vendor_key_id, NULL, what, err);
    if (rc != 0)
        return rc;
    int64_t now = agora__trust_now();
    if (now > h->cat.expires + h->grace_s)
        return agora__error_set(err, AGORA_EINVAL,
                                "the held catalog (version %llu) has expired; run agora sync "
                                "with a fresh catalog first",
                                (unsigned long long)h->cat.version);
    char src[4096], path[4096];
    if (source_dir != NULL) {
        rc = agora__path(src, sizeof src, err, "%s", source_dir);
    } else {
        uint8_t *buf;
        size_t len;
        rc = agora__home_path(h->dir, AGORA__HOME_CATALOG_SRC, path, sizeof path, err);
        if (rc == 0 && agora__read_file(path, sizeof src - 1, &buf, &len, NULL) == 0) {
            memcpy(src, buf, len + 1);
            free(buf);
        } else if (rc == 0) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "do not know where the catalog came from; pass --from DIR");
        }
    }
    if (rc != 0)
        return rc;
    uint8_t *plugin = NULL, *manifest = NULL;
    size_t plen = 0, mlen = 0;
    agora__manifest m;
    rc = read_blob(src, e->manifest_sha, e->manifest_size, "manifest", &manifest, &mlen, err);
    if (rc == 0)
        rc = read_blob(src, e->plugin_sha, e->plugin_size, "plugin", &plugin, &plen, err);
    if (rc == 0)
        rc = agora__manifest_parse(manifest, mlen, &m, err);
    if (rc == 0 && (strcmp(m.id, e->id) != 0 || strcmp(m.version, e->version) != 0))
        rc = agora__error_set(err, AGORA_EINVAL,
                              "the certified manifest names %s@%s, not %s@%s; refused", m.id,
                              m.version, e->id, e->version);

    if (rc == 0)
        rc = agora__elf_check(plugin, plen, err);
    char dir[4096];
    if (rc == 0)
        rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, NULL, dir, sizeof dir, err);
    if (rc == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot create %s: %s", dir, strerror(errno));
    /* Drop the old record first: a crash part-way leaves "not installed", not a mix of two
     * versions that would show as tampered. */
    if (rc == 0)
        rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, "install.json", path,
                                    sizeof path, err);
    if (rc == 0 && unlink(path) != 0 && errno != ENOENT)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot replace %s: %s", path,
                              strerror(errno));
    if (rc == 0)
        rc = remove_assets_dir(h, id, err);
    if (rc == 0)
        rc = install_assets(h, e, src, err);
    if (rc == 0)
        rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, "plugin.so", path, sizeof path,
                                    err);
    if (rc == 0)
        rc = agora__write_file_atomic(path, plugin, plen, 0600, err);
    if (rc == 0)
        rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, "manifest.json", path,
                                    sizeof path, err);
    if (rc == 0)
        rc = agora__write_file_atomic(path, manifest, mlen, 0600, err);
    if (rc == 0) {
        char psha[65], msha[65], when[AGORA__TIME_TEXT];
        agora__hex(e->plugin_sha, 32, psha);
        agora__hex(e->manifest_sha, 32, msha);
        agora__time_format(now, when);
        json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", e->id, "version", e->version,
                                "plugin_sha256", psha, "manifest_sha256", msha, "installed", when);
        char *text = rec != NULL ? json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(rec);
        if (text == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        if (rc == 0)
            rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, "install.json", path,
                                        sizeof path, err);
        /* Written last: the record of which version is installed. */
        if (rc == 0)
            rc = agora__write_file_atomic(path, text, strlen(text), 0600, err);
        free(text);
    }
    if (rc == 0)
        agora__strlcpy(version_out, e->version, version_size);
    free(plugin);
    free(manifest);
    return rc;
}

int agora__home_remove(agora__trust_home *h, const char *id, agora__error *err)
{
    if (!agora__reverse_dns_valid(id))
        return agora__error_set(err, AGORA_EINVAL, "'%.140s' is not a plugin id (reverse-DNS)", id);
    char dir[4096], path[4096 + 300];
    int rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, NULL, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return agora__error_set(err, errno == ENOENT ? AGORA_EINVAL : AGORA__ERR(errno),
                                "%s is not installed (agora list shows what is)", id);
    /* The install.json record goes first so a half-removed plugin is simply not installed. */
    if (agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, "install.json", path, sizeof path,
                               err) != 0) {
        closedir(d);
        return err != NULL ? err->code : AGORA_ELIMIT;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        closedir(d);
        return agora__error_set(err, AGORA__ERR(errno), "cannot remove %s: %s", path,
                                strerror(errno));
    }
    if ((rc = remove_assets_dir(h, id, err)) != 0) {
        closedir(d);
        return rc;
    }
    return remove_files_and_dir(d, dir, err);
}
