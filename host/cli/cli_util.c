/* Helpers the commands share: the clinic home, errors, keys, PS3.15 option lists. */
#include "cli_util.h"
#include "opt.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int agora__cli_home(const char *cmd, const char *dir, char *out, size_t size)
{
    agora__error err = {0};
    if (agora__trust_home_resolve(dir, out, size, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return 1;
    }
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "agora %s: clinic home %s is not a directory; create it with agora init\n",
                cmd, out);
        return 1;
    }
    return 0;
}

int agora__cli_number(const char *text, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v == 0 || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int agora__cli_seconds(const char *cmd, const char *opt, const char *text, uint32_t *out)
{
    if (text == NULL)
        return 0;
    uint64_t v = 0;
    if (agora__cli_number(text, AGORA__CLI_SECONDS_MAX, &v) != 0)
        return agora__cli_usage_error(cmd, "%s takes 1..%u seconds, not '%.40s'", opt,
                                      AGORA__CLI_SECONDS_MAX, text);
    *out = (uint32_t)v;
    return 0;
}

int agora__cli_parse_job(const agora__cli_cmd *desc, const agora__cli_opt *opts, size_t n_opts,
                         int argc, char **argv, const char *const *timeout, uint32_t *timeout_s,
                         size_t *n_inputs, int *status)
{
    if (!agora__cli_parse_with(desc, opts, n_opts, argc, argv, n_inputs, status))
        return 0;
    *status = agora__cli_seconds(desc->name, "--timeout", *timeout, timeout_s);
    if (*status == 0)
        return 1;
    agora__cli_lists_free(opts, n_opts);
    return 0;
}

int agora__fail(const char *cmd, const agora__error *err)
{
    fprintf(stderr, "agora %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
    return 1;
}

int agora__load_seckey(const char *key_path, const char *pass_path, agora__seckey *key,
                       agora__error *err)
{
    char pass[1025];
    size_t len = 0;
    if (pass_path != NULL) {
        int rc = agora__passphrase_read(pass_path, pass, sizeof pass, &len, err);
        if (rc != 0)
            return rc;
    }
    int rc = agora__seckey_read(key_path, pass_path != NULL ? pass : NULL, len, key, err);
    explicit_bzero(pass, sizeof pass);
    return rc;
}

int agora__cli_option_word(const char *w)
{
    uint32_t bit;
    return agora__trust_option_parse(w, &bit) == 0;
}

int agora__cli_option_bits(const char *cmd, const char *what, const char **vals, size_t n,
                           uint32_t *bits)
{
    *bits = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[512];
        agora__strlcpy(buf, vals[i], sizeof buf);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            uint32_t bit;
            if (agora__trust_option_parse(t, &bit) != 0) {
                fprintf(stderr,
                        "agora %s: '%.60s' is not %s; use rtnPatCharsOpt rtnDevIdOpt "
                        "rtnInstIdOpt rtnLongFullDatesOpt rtnLongModifDatesOpt\n",
                        cmd, t, what);
                return 2;
            }
            const char *why = agora__trust_option_refusal(bit);
            if (why != NULL) {
                fprintf(stderr, "agora %s: %s cannot be given to a plugin: %s\n", cmd, t, why);
                return 2;
            }
            *bits |= bit;
        }
    }
    return 0;
}

int agora__cli_assets(const agora__manifest *m, const char *const *args, size_t n,
                      char (*names)[AGORA__ASSET_NAME_MAX + 1], const char **files,
                      agora__error *err)
{
    if (n > AGORA__ASSETS_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "at most %u --asset options (got %zu)",
                                AGORA__ASSETS_MAX, n);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(args[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - args[i]) : 0;
        if (eq == NULL || len == 0 || len > AGORA__ASSET_NAME_MAX || eq[1] == '\0')
            return agora__error_set(err, AGORA_EINVAL,
                                    "--asset '%.160s' must be NAME=FILE (NAME as declared in the "
                                    "manifest's \"assets\")",
                                    args[i]);
        memcpy(names[i], args[i], len);
        names[i][len] = '\0';
        files[i] = eq + 1;
        if (!agora__asset_name_valid(names[i]))
            return agora__error_set(err, AGORA_EINVAL,
                                    "--asset %s: not an asset name (1..%u bytes of "
                                    "[A-Za-z0-9._-], not starting with '.')",
                                    names[i], AGORA__ASSET_NAME_MAX);
        if (agora__manifest_asset_index(m, names[i]) < 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "--asset %s: the manifest does not declare this asset; add "
                                    "{\"name\": \"%s\"} to its \"assets\" or drop the option",
                                    names[i], names[i]);
        for (size_t k = 0; k < i; k++)
            if (strcmp(names[k], names[i]) == 0)
                return agora__error_set(err, AGORA_EINVAL, "--asset %s is given twice", names[i]);
    }
    for (uint32_t d = 0; d < m->n_assets; d++) {
        size_t k = 0;
        while (k < n && strcmp(names[k], m->assets[d]) != 0)
            k++;
        if (k == n)
            return agora__error_set(err, AGORA_EINVAL,
                                    "the manifest declares asset %s but no --asset %s=FILE was "
                                    "given",
                                    m->assets[d], m->assets[d]);
    }
    return 0;
}

/* ---- input file lists (deid, dicom send) ---- */

int agora__cli_files_add(agora__cli_files *l, const char *path)
{
    if (l->n >= AGORA__CLI_MAX_FILES)
        return -1;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        char **p = realloc(l->paths, ncap * sizeof *p);
        if (p == NULL)
            return -1;
        l->paths = p;
        l->cap = ncap;
    }
    l->paths[l->n] = strdup(path);
    if (l->paths[l->n] == NULL)
        return -1;
    l->n++;
    return 0;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect regular files under path (recursively, bounded depth and count). */
int agora__cli_files_collect(agora__cli_files *l, const char *path, int depth, agora__error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", path,
                                strerror(errno));
    if (S_ISREG(st.st_mode)) {
        if (agora__cli_files_add(l, path) != 0)
            return agora__error_set(err, AGORA_ELIMIT, "more than %u input files; split the work",
                                    AGORA__CLI_MAX_FILES);
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (depth >= AGORA__CLI_MAX_DEPTH)
        return agora__error_set(err, AGORA_ELIMIT, "%s: directories nested deeper than %d", path,
                                AGORA__CLI_MAX_DEPTH);
    DIR *d = opendir(path);
    if (d == NULL)
        return agora__error_set(err, AGORA__ERR(errno), "cannot list %s: %s", path,
                                strerror(errno));
    agora__cli_files here = {0};
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* ".", ".." and hidden files (e.g. our own temporary files) */
        size_t need = strlen(path) + strlen(de->d_name) + 2;
        if (need > 4096) {
            rc = agora__error_set(err, AGORA_ELIMIT, "path too long under %s", path);
            break;
        }
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        if (agora__cli_files_add(&here, child) != 0)
            rc = agora__error_set(err, AGORA_ELIMIT, "too many files under %s", path);
    }
    closedir(d);
    if (here.n > 0)
        qsort(here.paths, here.n, sizeof *here.paths, cmp_path); /* stable order, stable output */
    for (size_t i = 0; i < here.n; i++) {
        if (rc == 0)
            rc = agora__cli_files_collect(l, here.paths[i], depth + 1, err);
        free(here.paths[i]);
    }
    free(here.paths);
    return rc;
}

void agora__cli_files_free(agora__cli_files *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

/* ---- network addresses ---- */

int agora__cli_host_port(const char *s, char *host, size_t host_size, int *port)
{
    const char *colon, *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || colon[1] == 0 || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int agora__cli_ae_host_port(const char *s, char *ae, size_t ae_size, char *host, size_t host_size,
                            int *port)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || (size_t)(at - s) >= ae_size)
        return -1;
    memcpy(ae, s, (size_t)(at - s));
    ae[at - s] = 0;
    return agora__cli_host_port(at + 1, host, host_size, port);
}
