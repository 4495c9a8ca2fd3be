/* The one option parser of the `agora` tool (see opt.h for the accepted spellings). */
#include "opt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void see_help(FILE *err, const char *name)
{
    fprintf(err, " (see agora %s --help)\n", name);
}

static void list_free_all(const agora__cli_cmd *cmd)
{
    agora__cli_lists_free(cmd->opts, cmd->n_opts);
}

static int usage_fail(const agora__cli_cmd *cmd, int *status)
{
    list_free_all(cmd);
    *status = 2;
    return 0;
}

/* Print "agora NAME: <message> (see agora NAME --help)" to err and end the parse with status 2. */
__attribute__((format(printf, 4, 5))) static int usage_err(const agora__cli_cmd *cmd, FILE *err,
                                                           int *status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(err, "agora %s: ", cmd->name);
    vfprintf(err, fmt, ap);
    va_end(ap);
    see_help(err, cmd->name);
    return usage_fail(cmd, status);
}

static int list_push(agora__cli_list *l, const char *v)
{
    const char **grown = realloc(l->v, (l->n + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    grown[l->n++] = v;
    l->v = grown;
    return 0;
}

/* Does cmd take row o of its table (agora__cli_opt.only)? */
static int row_on(const agora__cli_cmd *cmd, const agora__cli_opt *o)
{
    return o->only == 0 || (o->only & cmd->which) != 0;
}

/* A LIST option that has reached its cap (agora__cli_opt.max). */
static int list_full(const agora__cli_opt *o)
{
    return o->kind == AGORA__CLI_LIST && o->max != 0 && ((agora__cli_list *)o->dest)->n >= o->max;
}

static const agora__cli_opt *find_long(const agora__cli_cmd *cmd, const char *a, size_t len)
{
    for (size_t j = 0; j < cmd->n_opts; j++)
        if (row_on(cmd, &cmd->opts[j]) && strlen(cmd->opts[j].name) == len &&
            strncmp(cmd->opts[j].name, a, len) == 0)
            return &cmd->opts[j];
    return NULL;
}

static const agora__cli_opt *find_short(const agora__cli_cmd *cmd, char c)
{
    for (size_t j = 0; j < cmd->n_opts; j++)
        if (row_on(cmd, &cmd->opts[j]) && cmd->opts[j].short_name != 0 &&
            cmd->opts[j].short_name == c)
            return &cmd->opts[j];
    return NULL;
}

/* Store one value (or the flag) into o's destination. 0, or -1 out of memory. */
static int store(const agora__cli_opt *o, const char *v, int *seen)
{
    *seen = 1;
    switch (o->kind) {
    case AGORA__CLI_FLAG:
        *(int *)o->dest = 1;
        return 0;
    case AGORA__CLI_VALUE:
        *(const char **)o->dest = v;
        return 0;
    case AGORA__CLI_LIST:
        return list_push(o->dest, v);
    }
    return 0;
}

int agora__cli_parse_to(const agora__cli_cmd *cmd, int argc, char **argv, size_t *n_pos,
                        int *status, FILE *out, FILE *err)
{
    /* One bit per table row: which were given (for AGORA__CLI_REQUIRED). Tables are small. */
    int seen[64] = {0};
    if (cmd->n_opts > sizeof seen / sizeof seen[0]) {
        fprintf(err, "agora %s: option table too large\n", cmd->name);
        *status = 2;
        return 0;
    }
    for (size_t j = 0; j < cmd->n_opts; j++)
        if (cmd->opts[j].kind == AGORA__CLI_LIST)
            *(agora__cli_list *)cmd->opts[j].dest = (agora__cli_list){0};

    size_t np = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            argv[1 + np++] = a; /* 1 + np <= i: never overwrites an unread slot */
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            agora__cli_help(cmd, out);
            list_free_all(cmd);
            *status = 0;
            return 0;
        }
        const agora__cli_opt *o;
        const char *inline_v = NULL; /* --opt=value or -ovalue */
        if (a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t len = eq != NULL ? (size_t)(eq - a) : strlen(a);
            o = find_long(cmd, a, len);
            if (o == NULL) {
                return usage_err(cmd, err, status, "unknown option %.*s",
                                 (int)(len > 100 ? 100 : len), a);
            }
            if (eq != NULL)
                inline_v = eq + 1;
        } else {
            o = find_short(cmd, a[1]);
            if (o == NULL) {
                return usage_err(cmd, err, status, "unknown option %.100s", a);
            }
            if (a[2] != '\0') {
                if (o->kind == AGORA__CLI_FLAG) {
                    return usage_err(cmd, err, status, "unknown option %.100s", a);
                }
                inline_v = a + 2;
            }
        }
        int *seen_o = &seen[o - cmd->opts];
        if (o->kind == AGORA__CLI_FLAG) {
            if (inline_v != NULL) {
                return usage_err(cmd, err, status, "%s takes no value", o->name);
            }
            store(o, NULL, seen_o);
            continue;
        }
        const char *v = inline_v;
        if (v == NULL) {
            if (i + 1 >= argc) {
                return usage_err(cmd, err, status, "%s needs a value (%s)", o->name,
                                 o->metavar != NULL ? o->metavar : "VALUE");
            }
            v = argv[++i];
        }
        if (list_full(o)) {
            return usage_err(cmd, err, status, "at most %zu %s options", o->max, o->name);
        }
        if (store(o, v, seen_o) != 0)
            goto oom;
        if (o->kind == AGORA__CLI_LIST && o->legacy_more != NULL && inline_v == NULL) {
            int warned = 0;
            while (i + 1 < argc && o->legacy_more(argv[i + 1])) {
                if (!warned) {
                    fprintf(err,
                            "agora %s: warning: '%s A B' is deprecated and will be removed in the "
                            "next release; repeat the option: '%s A %s B'\n",
                            cmd->name, o->name, o->name, o->name);
                    warned = 1;
                }
                if (list_full(o)) {
                    return usage_err(cmd, err, status, "at most %zu %s options", o->max, o->name);
                }
                if (store(o, argv[++i], seen_o) != 0)
                    goto oom;
            }
        }
    }
    for (size_t j = 0; j < cmd->n_opts; j++) {
        if ((cmd->opts[j].flags & AGORA__CLI_REQUIRED) && row_on(cmd, &cmd->opts[j]) && !seen[j]) {
            return usage_err(cmd, err, status, "%s %s is required", cmd->opts[j].name,
                             cmd->opts[j].metavar != NULL ? cmd->opts[j].metavar : "");
        }
    }
    if (np < cmd->min_pos) {
        return usage_err(cmd, err, status, "missing argument; usage: agora %s %s", cmd->name,
                         cmd->args != NULL ? cmd->args : "");
    }
    if (np > cmd->max_pos) {
        return usage_err(cmd, err, status, "unexpected argument '%.100s'", argv[1 + cmd->max_pos]);
    }
    if (n_pos != NULL)
        *n_pos = np;
    *status = 0;
    return 1;
oom:
    fprintf(err, "agora %s: out of memory\n", cmd->name);
    list_free_all(cmd);
    *status = 1;
    return 0;
}

int agora__cli_parse(const agora__cli_cmd *cmd, int argc, char **argv, size_t *n_pos, int *status)
{
    return agora__cli_parse_to(cmd, argc, argv, n_pos, status, stdout, stderr);
}

int agora__cli_parse_with(const agora__cli_cmd *desc, const agora__cli_opt *opts, size_t n_opts,
                          int argc, char **argv, size_t *n_pos, int *status)
{
    agora__cli_cmd cmd = *desc;
    cmd.opts = opts;
    cmd.n_opts = n_opts;
    return agora__cli_parse(&cmd, argc, argv, n_pos, status);
}

void agora__cli_help(const agora__cli_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: agora %s %s\n", cmd->name, cmd->args != NULL ? cmd->args : "[OPTIONS]");
    if (cmd->about != NULL && cmd->about[0] != '\0')
        fprintf(out, "\n%s\n", cmd->about);
    fprintf(out, "\noptions:\n");
    for (size_t j = 0; j < cmd->n_opts; j++) {
        const agora__cli_opt *o = &cmd->opts[j];
        if (!row_on(cmd, o))
            continue;
        char left[64];
        char sh[5] = "    ";
        if (o->short_name != 0)
            snprintf(sh, sizeof sh, "-%c, ", o->short_name);
        snprintf(left, sizeof left, "%s%s%s%s", sh, o->name, o->metavar != NULL ? " " : "",
                 o->metavar != NULL ? o->metavar : "");
        fprintf(out, "  %-26s %s%s%s\n", left, o->help != NULL ? o->help : "",
                o->kind == AGORA__CLI_LIST ? " (repeatable)" : "",
                (o->flags & AGORA__CLI_REQUIRED) ? " (required)" : "");
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "print this help and exit");
}

int agora__cli_usage_error(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "agora %s: ", name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    see_help(stderr, name);
    return 2;
}

void agora__cli_list_free(agora__cli_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void agora__cli_lists_free(const agora__cli_opt *opts, size_t n_opts)
{
    for (size_t j = 0; j < n_opts; j++)
        if (opts[j].kind == AGORA__CLI_LIST)
            agora__cli_list_free(opts[j].dest);
}

static void sub_help(const char *cmd, const char *about, const agora__cli_sub *subs, size_t n,
                     FILE *out)
{
    fprintf(out, "usage: agora %s SUBCOMMAND [ARGS...]   (agora %s SUBCOMMAND --help)\n", cmd, cmd);
    if (about != NULL && about[0] != '\0')
        fprintf(out, "\n%s\n", about);
    fprintf(out, "\nsubcommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-10s %s\n", subs[i].name, subs[i].summary);
}

int agora__cli_dispatch_to(const char *cmd, const char *about, const agora__cli_sub *subs, size_t n,
                           int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 2) {
        fprintf(err, "agora %s: missing subcommand", cmd);
        see_help(err, cmd);
        return 2;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
        sub_help(cmd, about, subs, n, out);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(a, subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    if (a[0] == '-')
        fprintf(err, "agora %s: unknown option %.100s", cmd, a);
    else
        fprintf(err, "agora %s: unknown subcommand '%.100s'", cmd, a);
    see_help(err, cmd);
    return 2;
}

int agora__cli_dispatch(const char *cmd, const char *about, const agora__cli_sub *subs, size_t n,
                        int argc, char **argv)
{
    return agora__cli_dispatch_to(cmd, about, subs, n, argc, argv, stdout, stderr);
}

/* ---- config files (opt.h, agora__cli_config_read) ---- */

#define CONFIG_MAX_BYTES (1024u * 1024u)
#define CONFIG_MAX_LINE  4096u

static int words_push(char ***w, size_t *n, const char *s, size_t len)
{
    char **g = realloc(*w, (*n + 1) * sizeof *g);
    if (g == NULL)
        return -1;
    *w = g;
    g[*n] = malloc(len + 1);
    if (g[*n] == NULL)
        return -1;
    memcpy(g[*n], s, len);
    g[*n][len] = 0;
    (*n)++;
    return 0;
}

void agora__cli_words_free(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line: key into key[], value into val[] (unquoted). 0 blank/comment, 1 a pair, -1 bad
 * (*why set). */
static int config_line(const char *line, char *key, size_t ksize, char *val, size_t vsize,
                       const char **why)
{
    const char *p = line;
    while (is_blank(*p))
        p++;
    if (*p == 0 || *p == '#')
        return 0;
    size_t k = 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') {
        if (k + 1 >= ksize) {
            *why = "key too long";
            return -1;
        }
        key[k++] = *p++;
    }
    key[k] = 0;
    while (is_blank(*p))
        p++;
    if (k == 0 || *p != '=') {
        *why = "expected key = value (keys are the long option names without --, lowercase)";
        return -1;
    }
    p++;
    while (is_blank(*p))
        p++;
    size_t v = 0;
    if (*p == '"') {
        p++;
        for (;; p++) {
            if (*p == 0) {
                *why = "unterminated quoted value";
                return -1;
            }
            if (*p == '"')
                break;
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                p++;
            if (v + 1 >= vsize) {
                *why = "value too long";
                return -1;
            }
            val[v++] = *p;
        }
        p++;
        while (is_blank(*p))
            p++;
        if (*p != 0 && *p != '#') {
            *why = "text after the closing quote";
            return -1;
        }
    } else {
        while (*p != 0 && *p != '#') {
            if (v + 1 >= vsize) {
                *why = "value too long";
                return -1;
            }
            val[v++] = *p++;
        }
        while (v > 0 && is_blank(val[v - 1]))
            v--;
    }
    val[v] = 0;
    return 1;
}

int agora__cli_config_read(const agora__cli_cmd *cmd, const char *path, char ***words, size_t *n,
                           FILE *err)
{
    *words = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(err, "agora %s: cannot read the config file %s: %s\n", cmd->name, path,
                strerror(errno));
        return 1;
    }
    char *line = malloc(CONFIG_MAX_LINE + 2);
    char key[64], *val = malloc(CONFIG_MAX_LINE + 1);
    size_t total = 0;
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && line != NULL && val != NULL && fgets(line, CONFIG_MAX_LINE + 2, f)) {
        lineno++;
        size_t len = strlen(line);
        total += len;
        if (total > CONFIG_MAX_BYTES) {
            fprintf(err, "agora %s: %s: larger than %u bytes\n", cmd->name, path,
                    CONFIG_MAX_BYTES);
            rc = 2;
            break;
        }
        if (len > CONFIG_MAX_LINE) {
            fprintf(err, "agora %s: %s:%u: line longer than %u bytes\n", cmd->name, path, lineno,
                    CONFIG_MAX_LINE);
            rc = 2;
            break;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = 0;
        const char *why = NULL;
        int r = config_line(line, key, sizeof key, val, CONFIG_MAX_LINE + 1, &why);
        if (r == 0)
            continue;
        if (r < 0) {
            fprintf(err, "agora %s: %s:%u: %s\n", cmd->name, path, lineno, why);
            rc = 2;
            break;
        }
        char opt[70];
        snprintf(opt, sizeof opt, "--%s", key);
        const agora__cli_opt *o = strcmp(key, "config") == 0 ? NULL
                                                             : find_long(cmd, opt, strlen(opt));
        if (o == NULL) {
            fprintf(err, "agora %s: %s:%u: unknown key '%s' (keys are the options of agora %s "
                         "--help, without the dashes)\n",
                    cmd->name, path, lineno, key, cmd->name);
            rc = 2;
            break;
        }
        if (o->kind == AGORA__CLI_FLAG) {
            if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0) {
                fprintf(err, "agora %s: %s:%u: %s takes true or false\n", cmd->name, path,
                        lineno, key);
                rc = 2;
                break;
            }
            if (strcmp(val, "true") == 0 && words_push(words, n, opt, strlen(opt)) != 0)
                rc = 1;
            continue;
        }
        if (words_push(words, n, opt, strlen(opt)) != 0 ||
            words_push(words, n, val, strlen(val)) != 0)
            rc = 1;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(err, "agora %s: cannot read the config file %s\n", cmd->name, path);
        rc = 1;
    }
    if (line == NULL || val == NULL) {
        fprintf(err, "agora %s: out of memory\n", cmd->name);
        rc = 1;
    }
    fclose(f);
    free(line);
    free(val);
    if (rc != 0) {
        agora__cli_words_free(*words, *n);
        *words = NULL;
        *n = 0;
    }
    return rc;
}
