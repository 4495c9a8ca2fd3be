/* The clinic home module (home.h). Where the home is, for every command that uses one (init,
 * sync, run, results, usage, ledger, deid, ...): one rule, so a newcomer with nothing set finds
 * the home `agora init` made; and the one table of what lives in it. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int agora__home_dir(const char *dir, char *out, size_t size, agora__error *err)
{
    const char *env = getenv("AGORA_HOME");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;
    if (dir != NULL && dir[0] != '\0')
        n = snprintf(out, size, "%s", dir);
    else if (env != NULL && env[0] != '\0')
        n = snprintf(out, size, "%s", env);
    else if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, size, "%s/agora", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(out, size, "%s/.local/share/agora", home);
    else
        return agora__error_set(err, AGORA_EINVAL,
                                "no clinic home: pass --home DIR or set AGORA_HOME");
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT,
                                "clinic home path too long (%d bytes); use a shorter one", n);
    return 0;
}

static const char *const entry_names[AGORA__HOME_ENTRY_COUNT] = {
    [AGORA__HOME_CONFIG] = "config.json",      [AGORA__HOME_SECRET] = "secret",
    [AGORA__HOME_DEID_SECRET] = "deid.secret", [AGORA__HOME_TRUST] = "trust",
    [AGORA__HOME_CATALOG] = "catalog",         [AGORA__HOME_CATALOG_HELD] = "catalog/current",
    [AGORA__HOME_PLUGINS] = "plugins",         [AGORA__HOME_CLINIC_KEY] = "clinic.key",
    [AGORA__HOME_CLINIC_PUB] = "clinic.pub",   [AGORA__HOME_LEDGER] = "ledger.db",
    [AGORA__HOME_RESULTS] = "results",         [AGORA__HOME_CATALOG_SRC] = "catalog/source",
    [AGORA__HOME_SPOOL] = "spool",             [AGORA__HOME_OUTBOX] = "outbox",
    [AGORA__HOME_AUDIT] = "audit.log",
    [AGORA__HOME_USERS] = "users.json",
};

int agora__home_path(const char *home, agora__home_entry entry, char *out, size_t size,
                     agora__error *err)
{
    if (home == NULL || home[0] == '\0' || (unsigned)entry >= AGORA__HOME_ENTRY_COUNT)
        return agora__error_set(err, AGORA_EINVAL, "no clinic home given");
    int n = snprintf(out, size, "%s/%s", home, entry_names[entry]);
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT,
                                "clinic home path too long (%d bytes); use a shorter one", n);
    return 0;
}

static int one_component(const char *s)
{
    return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int agora__home_entry_path(const char *home, agora__home_entry dir, const char *name,
                           const char *file, char *out, size_t size, agora__error *err)
{
    if (dir != AGORA__HOME_TRUST && dir != AGORA__HOME_PLUGINS && dir != AGORA__HOME_RESULTS)
        return agora__error_set(err, AGORA_EINVAL, "not a directory of the clinic home");
    if (name == NULL || !one_component(name) || (file != NULL && !one_component(file)))
        return agora__error_set(err, AGORA_EINVAL,
                                "'%.80s' cannot name an entry of the clinic home (one path "
                                "component, no '/')",
                                name != NULL && !one_component(name) ? name
                                : file                               ? file
                                                                     : "");
    int rc = agora__home_path(home, dir, out, size, err);
    if (rc != 0)
        return rc;
    size_t used = strlen(out);
    int n = file != NULL ? snprintf(out + used, size - used, "/%s/%s", name, file)
                         : snprintf(out + used, size - used, "/%s", name);
    if (n < 0 || (size_t)n >= size - used)
        return agora__error_set(err, AGORA_ELIMIT,
                                "clinic home path too long; use a shorter home directory");
    return 0;
}

int agora__home_asset_path(const char *home, const char *plugin_id, const char *asset, char *out,
                           size_t size, agora__error *err)
{
    if (plugin_id == NULL || !one_component(plugin_id) || (asset != NULL && !one_component(asset)))
        return agora__error_set(err, AGORA_EINVAL,
                                "a plugin id or asset name is not one path component");
    char plugins[4096];
    int rc = agora__home_path(home, AGORA__HOME_PLUGINS, plugins, sizeof plugins, err);
    if (rc != 0)
        return rc;
    int n = asset != NULL ? snprintf(out, size, "%s/%s/assets/%s", plugins, plugin_id, asset)
                          : snprintf(out, size, "%s/%s/assets", plugins, plugin_id);
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT,
                                "clinic home path too long (%d bytes); use a shorter one", n);
    return 0;
}
