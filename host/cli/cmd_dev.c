/*
 * `agora dev` — the developer's journey on one machine: `dev new NAME` scaffolds a plugin
 * project from the installed template. (`dev run` glues DICOM ingest to the worker pool and is
 * wired by the CLI owner.)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "worker.h"

#define TEMPLATE_MAX (1u << 20)

/* [a-z][a-z0-9_]{0,40} */
static int name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 41 || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Replace every @NAME@ and @ID@ in src. Returns a malloc'ed string or NULL. */
static char *substitute(const char *src, const char *name, const char *id)
{
    size_t cap = strlen(src) + 1, len = 0;
    /* Each token expands to at most 13+41 bytes: size the output for the worst case. */
    size_t tokens = 0;
    for (const char *p = src; (p = strchr(p, '@')) != NULL; p++)
        tokens++;
    cap += tokens * (strlen(id) + strlen(name));
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    for (const char *p = src; *p != '\0';) {
        if (strncmp(p, "@NAME@", 6) == 0) {
            memcpy(out + len, name, strlen(name));
            len += strlen(name);
            p += 6;
        } else if (strncmp(p, "@ID@", 4) == 0) {
            memcpy(out + len, id, strlen(id));
            len += strlen(id);
            p += 4;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
    return out;
}

static int write_from_template(const char *tdir, const char *tname, const char *dst,
                               const char *name, const char *id, agora__error *err)
{
    char src[PATH_MAX];
    if (snprintf(src, sizeof src, "%s/%s", tdir, tname) >= (int)sizeof src)
        return agora__error_set(err, AGORA_ELIMIT, "template path too long");
    uint8_t *text;
    size_t len;
    int rc = agora__read_file(src, TEMPLATE_MAX, &text, &len, err);
    if (rc < 0)
        return rc;
    char *out = substitute((const char *)text, name, id);
    free(text);
    if (out == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    rc = agora__write_file_atomic(dst, out, strlen(out), 0644, err);
    free(out);
    return rc;
}

static int dev_new(int argc, char **argv)
{
    const char *parent = ".";
    int json = 0;
    const agora__cli_opt opts[] = {
        {"--dir", 0, AGORA__CLI_VALUE, &parent, "PARENT",
         "create the project under PARENT instead of the current directory", 0, NULL},
        {"--json", 0, AGORA__CLI_FLAG, &json, NULL,
         "print {\"project\": path, \"id\": id, \"files\": [...]}", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        "dev new",
        "NAME [--dir PARENT] [--json]",
        "Create NAME/ with meson.build, src/NAME.c (a complete minimal plugin),\n"
        "manifest.json and README.md. NAME: a lower-case letter, then up to 40 lower-case\n"
        "letters, digits or '_'. The plugin id is com.example.NAME ('_' becomes '-');\n"
        "change it before you submit.",
        opts,
        AGORA__CLI_N(opts),
        1,
        1};
    size_t n_pos;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &st))
        return st;
    const char *name = argv[1];
    if (!name_valid(name)) {
        fprintf(stderr,
                "agora dev: invalid NAME '%.60s'; use a lower-case letter then up to 40 "
                "lower-case letters, digits or '_'\n",
                name);
        return 2;
    }
    char id[64];
    snprintf(id, sizeof id, "com.example.%s", name);
    for (char *p = id; *p; p++)
        if (*p == '_')
            *p = '-';
    agora__error err = {0};
    char tdir[PATH_MAX];
    if (agora__template_dir(tdir, sizeof tdir, &err) < 0) {
        fprintf(stderr, "agora dev: %s\n", err.msg);
        return 1;
    }
    char proj[PATH_MAX], srcdir[PATH_MAX + 8], path[PATH_MAX + 64];
    if (snprintf(proj, sizeof proj, "%s/%s", parent, name) >= (int)sizeof proj) {
        fprintf(stderr, "agora dev: project path too long; use a shorter --dir\n");
        return 2;
    }
    /* mkdir itself is the existence check: never write into something that was there. */
    if (mkdir(proj, 0755) < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "agora dev: %s already exists; choose another NAME or remove it\n",
                    proj);
        else
            fprintf(stderr, "agora dev: cannot create %s: %s; check --dir\n", proj,
                    strerror(errno));
        return 1;
    }
    snprintf(srcdir, sizeof srcdir, "%s/src", proj);
    if (mkdir(srcdir, 0755) < 0) {
        fprintf(stderr, "agora dev: cannot create %s: %s\n", srcdir, strerror(errno));
        return 1;
    }
    static const char *const tnames[] = {"meson.build.in", "plugin.c.in", "manifest.json.in",
                                         "README.md.in"};
    char rel[4][80];
    snprintf(rel[0], sizeof rel[0], "meson.build");
    snprintf(rel[1], sizeof rel[1], "src/%s.c", name);
    snprintf(rel[2], sizeof rel[2], "manifest.json");
    snprintf(rel[3], sizeof rel[3], "README.md");
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", proj, rel[i]);
        if (write_from_template(tdir, tnames[i], path, name, id, &err) < 0) {
            fprintf(stderr, "agora dev: writing %s: %s\n", path, err.msg);
            return 1;
        }
    }
    if (json) {
        json_t *files = json_array();
        for (int i = 0; i < 4; i++)
            json_array_append_new(files, json_string(rel[i]));
        if (agora__json_emit_new(
                stdout, json_pack("{s:s, s:s, s:o}", "project", proj, "id", id, "files", files),
                AGORA__JSON_LINE) != 0)
            return 1;
    } else {
        printf("created %s (plugin id %s)\n"
               "next: cd %s && meson setup build && ninja -C build\n",
               proj, id, proj);
    }
    return 0;
}

int agora__cmd_dev(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"new", dev_new, "create a plugin project: agora dev new NAME [--dir PARENT] [--json]"},
        {"run", agora__cmd_dev_run,
         "run one plugin on DICOM inputs in the sandbox, as agora run would"},
    };
    return agora__cli_dispatch("dev", "The plugin developer's commands.", subs, AGORA__CLI_N(subs),
                               argc, argv);
}
