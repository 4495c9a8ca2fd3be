/* Argument parsing and output helpers for the trust commands. A small parser instead of
 * getopt_long so that list options read like the documentation: `--grant rtnPatCharsOpt
 * rtnDevIdOpt` takes every following word that is a PS3.15 option name. */
#include "trust_int.h"

#include <stdlib.h>
#include <string.h>

static int list_push(const agora__opt *o, const char *v)
{
    const char **grown = realloc((void *)*o->list, (*o->list_n + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    grown[(*o->list_n)++] = v;
    *o->list = grown;
    return 0;
}

int agora__args(const char *cmd, int argc, char **argv, const agora__opt *opts, size_t n_opts,
                const char **pos, size_t max_pos, size_t *n_pos, int *help)
{
    *n_pos = 0;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (*n_pos == max_pos) {
                fprintf(stderr, "agora %s: unexpected argument '%.100s'; see agora %s --help\n",
                        cmd, a, cmd);
                return 2;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
        const agora__opt *o = NULL;
        for (size_t j = 0; j < n_opts; j++)
            if (strlen(opts[j].name) == nlen && strncmp(opts[j].name, a, nlen) == 0)
                o = &opts[j];
        if (o == NULL) {
            fprintf(stderr, "agora %s: unknown option '%.100s'; see agora %s --help\n", cmd, a,
                    cmd);
            return 2;
        }
        if (o->kind == AGORA__ARG_FLAG) {
            if (eq != NULL) {
                fprintf(stderr, "agora %s: %s takes no value\n", cmd, o->name);
                return 2;
            }
            *o->value = "1";
            continue;
        }
        const char *v = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (v == NULL) {
            fprintf(stderr, "agora %s: %s needs a value; see agora %s --help\n", cmd, o->name, cmd);
            return 2;
        }
        if (o->kind == AGORA__ARG_VALUE) {
            *o->value = v;
            continue;
        }
        if (list_push(o, v) != 0) {
            fprintf(stderr, "agora %s: out of memory\n", cmd);
            return 2;
        }
        /* Following words that are option names belong to this list. */
        uint32_t bit;
        while (eq == NULL && i + 1 < argc && agora__trust_option_parse(argv[i + 1], &bit) == 0) {
            if (list_push(o, argv[++i]) != 0) {
                fprintf(stderr, "agora %s: out of memory\n", cmd);
                return 2;
            }
        }
    }
    return 0;
}

int agora__fail(const char *cmd, const agora__error *err)
{
    fprintf(stderr, "agora %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
    return 1;
}

void agora__json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
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
