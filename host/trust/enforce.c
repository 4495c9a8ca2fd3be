/* What `agora run` relies on: which builds are installed, whether each may run now, and the
 * verified bytes to hand to a worker. Every answer is computed from the held, signature-checked
 * catalog and the installed bytes at the moment of the call, never from a cache the plugin side
 * could influence. */
#include "trust_int.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSTALL_RECORD_MAX 4096

/* Which version of id is installed (from plugins/<id>/install.json). */
static int installed_version(const agora__trust_home *h, const char *id, char *version, size_t size,
                             agora__error *err)
{
    char path[4096];
    uint8_t *buf;
    size_t len;
    if (!agora__reverse_dns_valid(id))
        return agora__error_set(err, AGORA_EINVAL, "'%.140s' is not a plugin id (reverse-DNS)", id);
    int rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, "install.json", path,
                                    sizeof path, err);
    if (rc != 0)
        return rc;
    rc = agora__read_file(path, INSTALL_RECORD_MAX, &buf, &len, err);
    if (rc == AGORA__ENOENT)
        return agora__error_set(err, AGORA_EINVAL, "%s is not installed; run agora install %s", id,
                                id);
    if (rc != 0)
        return rc;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    json_t *jid = json_object_get(root, "id");
    json_t *jver = json_object_get(root, "version");
    rc = 0;
    if (!json_is_string(jid) || !json_is_string(jver) || strcmp(json_string_value(jid), id) != 0 ||
        !agora__semver_valid(json_string_value(jver)))
        rc = agora__error_set(err, AGORA_EINVAL, "%s is damaged; reinstall with agora install %s",
                              path, id);
    else
        agora__strlcpy(version, json_string_value(jver), size);
    json_decref(root);
    return rc;
}

/* Fill info for id@version from the held catalog; status without looking at the binary. */
static void describe(const agora__trust_home *h, const char *id, const char *version,
                     agora__trust_plugin *info)
{
    memset(info, 0, sizeof *info);
    agora__strlcpy(info->id, id, sizeof info->id);
    agora__strlcpy(info->version, version, sizeof info->version);
    info->policy = h->policy;
    info->status = AGORA__TRUST_NOT_IN_CATALOG;
    if (!h->have_catalog)
        return;
    info->catalog_expires = h->cat.expires;
    info->catalog_version = h->cat.version;
    const agora__cat_entry *e = agora__catalog_find(&h->cat, id, version);
    if (e == NULL)
        return;
    info->in_catalog = 1;
    info->certified = e->granted;
    info->pricing = e->pricing;
    agora__strlcpy(info->level, e->level, sizeof info->level);
    info->certified_at = e->certified_at;
    if (e->has_report)
        agora__hex(e->report_sha, 32, info->report_sha256);
    agora__hex(e->plugin_sha, 32, info->plugin_sha256);
    agora__hex(e->manifest_sha, 32, info->manifest_sha256);
    if (e->revoked) {
        info->status = AGORA__TRUST_REVOKED;
        info->revoked_at = e->revoked_at;
        agora__strlcpy(info->revoked_reason, e->reason, sizeof info->revoked_reason);
    } else if (agora__trust_now() > h->cat.expires + h->grace_s) {
        info->status = AGORA__TRUST_EXPIRED_CATALOG;
    } else {
        info->status = AGORA__TRUST_OK;
    }
}

/* Read an installed file and compare it with the catalog pin. 0 when it matches; AGORA_EINVAL
 * (tampered) when not; *out keeps the bytes when out is not NULL and it matched. */
static int read_pinned(const agora__trust_home *h, const char *id, const char *file,
                       const char *pin_hex, size_t max, uint8_t **out, size_t *out_len,
                       agora__error *err)
{
    char path[4096];
    uint8_t *buf;
    size_t len;
    uint8_t sha[32];
    char hex[65];
    int rc = agora__home_entry_path(h->dir, AGORA__HOME_PLUGINS, id, file, path, sizeof path, err);
    if (rc == 0)
        rc = agora__read_file(path, max, &buf, &len, err);
    if (rc != 0)
        return agora__error_prefix(err, "tampered or damaged installation of %s", id);
    agora__sha256(buf, len, sha);
    agora__hex(sha, 32, hex);
    if (strcmp(hex, pin_hex) != 0) {
        free(buf);
        return agora__error_set(err, AGORA_EINVAL,
                                "tampered: %s does not match the sha256 the catalog pins; "
                                "refused (reinstall with agora install %s)",
                                path, id);
    }
    if (out != NULL) {
        *out = buf;
        *out_len = len;
    } else {
        free(buf);
    }
    return 0;
}

/* Parse the pinned manifest into info and compute the effective grant. */
static int load_manifest(const agora__trust_home *h, agora__trust_plugin *info, uint8_t **keep,
                         size_t *keep_len, agora__error *err)
{
    uint8_t *buf;
    size_t len;
    int rc = read_pinned(h, info->id, "manifest.json", info->manifest_sha256,
                         AGORA__TRUST_MANIFEST_MAX, &buf, &len, err);
    if (rc != 0)
        return rc;
    rc = agora__manifest_parse(buf, len, &info->manifest, err);
    if (rc == 0 && (strcmp(info->manifest.id, info->id) != 0 ||
                    strcmp(info->manifest.version, info->version) != 0))
        rc = agora__error_set(err, AGORA_EINVAL, "installed manifest names another build");
    if (rc == 0) {
        info->manifest_ok = 1;
        info->requested = info->manifest.permissions;
        /* GRANTABLE: a catalog or policy from before cleanDescOpt was refused cannot give it. */
        info->granted = info->requested & info->certified & info->policy & AGORA__OPT_GRANTABLE;
    }
    if (rc == 0 && keep != NULL) {
        *keep = buf;
        *keep_len = len;
    } else {
        free(buf);
    }
    return rc;
}

static int refusal(const agora__trust_plugin *info, agora__error *err)
{
    char when[AGORA__TIME_TEXT];
    switch (info->status) {
    case AGORA__TRUST_OK:
        return 0;
    case AGORA__TRUST_REVOKED:
        agora__time_format(info->revoked_at, when);
        return agora__error_set(err, AGORA_ESTATE, "%s@%s is revoked (%s: %s); it will not run",
                                info->id, info->version, when, info->revoked_reason);
    case AGORA__TRUST_EXPIRED_CATALOG:
        agora__time_format(info->catalog_expires, when);
        return agora__error_set(err, AGORA_ESTATE,
                                "the held catalog (version %llu) expired at %s; nothing runs "
                                "until agora sync brings a fresh one",
                                (unsigned long long)info->catalog_version, when);
    default:
        return agora__error_set(err, AGORA_ESTATE,
                                "%s@%s is not in the held catalog; it will not run (run agora "
                                "sync, or install a certified version)",
                                info->id, info->version);
    }
}

int agora__trust_get(agora__trust_home *h, const char *id, agora__trust_plugin *out,
                     agora__error *err)
{
    char version[AGORA__TRUST_VERSION_MAX + 1];
    memset(out, 0, sizeof *out);
    int rc = installed_version(h, id, version, sizeof version, err);
    if (rc != 0)
        return rc;
    describe(h, id, version, out);
    if (out->in_catalog) {
        agora__error ignored;
        (void)load_manifest(h, out, NULL, NULL, &ignored);
    }
    return 0;
}

/* Listing is cheap: each pinned asset must exist with its pinned size (assets may be GiB; their
 * hashes are checked at every load, agora__trust_load). */
static int assets_present(const agora__trust_home *h, const agora__trust_plugin *info)
{
    const agora__cat_entry *e = agora__catalog_find(&h->cat, info->id, info->version);
    if (e == NULL || e->n_assets != info->manifest.n_assets)
        return 0;
    for (uint32_t i = 0; i < e->n_assets; i++) {
        char path[4096];
        struct stat st;
        if (agora__home_asset_path(h->dir, e->id, e->assets[i].name, path, sizeof path, NULL) !=
                0 ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->assets[i].size)
            return 0;
    }
    return 1;
}

static int cmp_plugin_id(const void *a, const void *b)
{
    return strcmp(((const agora__trust_plugin *)a)->id, ((const agora__trust_plugin *)b)->id);
}

int agora__trust_list(agora__trust_home *h, agora__trust_plugin **out, size_t *n, agora__error *err)
{
    *out = NULL;
    *n = 0;
    char dir[4096];
    int rc = agora__trust_refresh(h, err);
    if (rc == 0)
        rc = agora__home_path(h->dir, AGORA__HOME_PLUGINS, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", dir, strerror(errno));
    agora__trust_plugin *list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!agora__reverse_dns_valid(de->d_name))
            continue;
        agora__trust_plugin info;
        if (agora__trust_get(h, de->d_name, &info, NULL) != 0) {
            /* No install.json: half-removed or half-installed, i.e. not installed. A damaged
             * one is shown as tampered rather than hidden. */
            char rec[4096 + 300];
            snprintf(rec, sizeof rec, "%s/%s/install.json", dir, de->d_name);
            if (access(rec, F_OK) != 0)
                continue;
            memset(&info, 0, sizeof info);
            agora__strlcpy(info.id, de->d_name, sizeof info.id);
            agora__strlcpy(info.version, "unknown", sizeof info.version);
            info.status = AGORA__TRUST_TAMPERED;
        }
        if (info.in_catalog) {
            agora__error e;
            if (!info.manifest_ok || read_pinned(h, info.id, "plugin.so", info.plugin_sha256,
                                                 AGORA__TRUST_PLUGIN_MAX, NULL, NULL, &e) != 0 ||
                !assets_present(h, &info))
                info.status = AGORA__TRUST_TAMPERED;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            agora__trust_plugin *grown = realloc(list, ncap * sizeof *grown);
            if (grown == NULL) {
                free(list);
                closedir(d);
                return agora__error_set(err, AGORA_ENOMEM, "out of memory listing plugins");
            }
            list = grown;
            cap = ncap;
        }
        list[count++] = info;
    }
    closedir(d);
    /* Directory order is the filesystem's: sort so that list, run and sync print the same
     * order on every machine. */
    if (count > 1)
        qsort(list, count, sizeof *list, cmp_plugin_id);
    *out = list;
    *n = count;
    return 0;
}

/* Every asset the catalog entry pins, verified while copied into a sealed memfd. The manifest
 * (already verified) must declare exactly those names: the catalog and the bundle agreed at
 * certification, so a difference means a damaged home or catalog. */
static int load_assets(const agora__trust_home *h, agora__trust_loaded *out, agora__error *err)
{
    const agora__cat_entry *e = agora__catalog_find(&h->cat, out->info.id, out->info.version);
    if (e == NULL)
        return agora__error_set(err, AGORA_ESTATE, "%s@%s left the held catalog", out->info.id,
                                out->info.version);
    if (e->n_assets != out->info.manifest.n_assets)
        return agora__error_set(err, AGORA_EINVAL,
                                "tampered: the catalog pins %u asset(s) for %s@%s but its manifest "
                                "declares %u; refused",
                                e->n_assets, e->id, e->version, out->info.manifest.n_assets);
    if (e->n_assets == 0)
        return 0;
    out->assets = calloc(e->n_assets, sizeof *out->assets);
    if (out->assets == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for the assets of %s", e->id);
    for (uint32_t i = 0; i < e->n_assets; i++)
        out->assets[i].fd = -1;
    out->n_assets = e->n_assets;
    for (uint32_t i = 0; i < e->n_assets; i++) {
        char path[4096];
        int rc = agora__manifest_asset_index(&out->info.manifest, e->assets[i].name) < 0
                     ? agora__error_set(err, AGORA_EINVAL,
                                        "tampered: asset %s is pinned by the catalog but not "
                                        "declared by the manifest; refused",
                                        e->assets[i].name)
                     : agora__home_asset_path(h->dir, e->id, e->assets[i].name, path, sizeof path,
                                              err);
        if (rc == 0)
            rc = agora__asset_load_file(path, e->assets[i].name, e->assets[i].sha,
                                        e->assets[i].size, &out->assets[i], err);
        if (rc != 0)
            return agora__error_prefix(err, "%s@%s", e->id, e->version);
    }
    return 0;
}

int agora__trust_load(agora__trust_home *h, const char *id, agora__trust_loaded *out,
                      agora__error *err)
{
    memset(out, 0, sizeof *out);
    /* A long-running caller may load after a sync: always judge by the catalog on disk. */
    int rc = agora__trust_refresh(h, err);
    if (rc == 0)
        rc = agora__trust_get(h, id, &out->info, err);
    if (rc == 0)
        rc = refusal(&out->info, err);
    if (rc == 0) {
        out->info.manifest_ok = 0;
        rc = load_manifest(h, &out->info, &out->manifest_bytes, &out->manifest_len, err);
    }
    if (rc == 0)
        rc = read_pinned(h, id, "plugin.so", out->info.plugin_sha256, AGORA__TRUST_PLUGIN_MAX,
                         &out->bytes, &out->len, err);
    if (rc == 0)
        rc = load_assets(h, out, err);
    if (rc != 0)
        agora__trust_loaded_free(out);
    return rc;
}

void agora__trust_loaded_free(agora__trust_loaded *l)
{
    free(l->bytes);
    free(l->manifest_bytes);
    agora__assets_close(l->assets, l->n_assets);
    free(l->assets);
    memset(l, 0, sizeof *l);
}

int agora__trust_allowed(agora__trust_home *h, const char *id, const char *version,
                         agora__error *err)
{
    int rc = agora__trust_refresh(h, err);
    if (rc != 0)
        return rc;
    char installed[AGORA__TRUST_VERSION_MAX + 1];
    rc = installed_version(h, id, installed, sizeof installed, err);
    if (rc != 0)
        return rc;
    if (strcmp(installed, version) != 0)
        return agora__error_set(err, AGORA_ESTATE,
                                "%s@%s is no longer the installed build (now %s)", id, version,
                                installed);
    agora__trust_plugin info;
    describe(h, id, version, &info);
    return refusal(&info, err);
}
