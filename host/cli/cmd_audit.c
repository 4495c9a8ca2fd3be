/*
 * `agora audit verify|show`: the hash-chained audit trail (trust/audit.h) of a clinic home
 * (HOME/audit.log: install, remove, sync, dataset export) or, with --catalog DIR, of an
 * operator (DIR/audit.log: certify, revoke).
 */
#include "audit.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_DEFAULT 50
#define SHOW_MAX     100000

typedef struct audit_opts {
    const char *home, *catalog, *limit;
    int json;
} audit_opts;

enum { CMD_VERIFY = 1u, CMD_SHOW = 2u };

static const char about_verify[] =
    "Walks the audit log's hash chain; names the first broken line. Exit 0 when intact\n"
    "(a log that does not exist yet is intact and empty).";
static const char about_show[] = "Prints the last entries of the audit log (oldest first).";

/* The log's path (the clinic home's, or --catalog's). 0, or the exit status. */
static int parse(const char *name, const char *about, unsigned which, int argc, char **argv,
                 audit_opts *o, char *path, size_t size)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt opts[] = {
        AGORA__CLI_OPT_HOME(&o->home),
        {"--catalog", 0, AGORA__CLI_VALUE, &o->catalog, "DIR",
         "the operator's log in this catalog directory instead of the clinic's", 0, NULL, 0, 0},
        {"--limit", 0, AGORA__CLI_VALUE, &o->limit, "N", "the last N entries (default 50)", 0, NULL,
         0, CMD_SHOW},
        AGORA__CLI_OPT_JSON(&o->json, "print JSON"),
    };
    const agora__cli_cmd cmd = {
        name, "[--home DIR | --catalog DIR] [--json]", about, opts, AGORA__CLI_N(opts), 0, 0,
        which};
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, NULL, &st))
        return st == 0 ? -1 : st;
    agora__error err = {0};
    char home[4096];
    int rc;
    if (o->catalog != NULL && o->home != NULL)
        return agora__cli_usage_error(name, "--home and --catalog exclude each other");
    if (o->catalog != NULL)
        rc = agora__audit_path(o->catalog, path, size, &err);
    else if ((rc = agora__home_dir(o->home, home, sizeof home, &err)) == 0)
        rc = agora__home_path(home, AGORA__HOME_AUDIT, path, size, &err);
    if (rc != 0) {
        fprintf(stderr, "agora %s: %s\n", name, err.msg);
        return 1;
    }
    return 0;
}

static int verify(const audit_opts *o, const char *path)
{
    agora__error err = {0};
    uint64_t n = 0, bad = 0;
    int rc = agora__audit_verify(path, &n, &bad, &err);
    if (o->json)
        agora__json_emit_new(stdout,
                             rc == 0
                                 ? json_pack("{s:b,s:I}", "ok", 1, "entries", (json_int_t)n)
                                 : json_pack("{s:b,s:I,s:I,s:s}", "ok", 0, "entries", (json_int_t)n,
                                             "bad_line", (json_int_t)bad, "error", err.msg),
                             AGORA__JSON_DOC);
    if (rc != 0) {
        fprintf(stderr, "agora audit verify: %s\n", err.msg);
        return 1;
    }
    if (!o->json)
        printf("audit log ok: %llu entries, chain intact (%s)\n", (unsigned long long)n, path);
    return 0;
}

static int show(const audit_opts *o, const char *path)
{
    size_t limit = SHOW_DEFAULT;
    if (o->limit != NULL) {
        char *end;
        unsigned long long v = strtoull(o->limit, &end, 10);
        if (o->limit[0] < '0' || o->limit[0] > '9' || *end != '\0' || v == 0 || v > SHOW_MAX)
            return agora__cli_usage_error("audit show", "--limit must be 1..%d", SHOW_MAX);
        limit = (size_t)v;
    }
    /* Verify first: entries of a broken chain are not shown as if they were the record. */
    agora__error err = {0};
    uint64_t n = 0, bad = 0;
    if (agora__audit_verify(path, &n, &bad, &err) != 0) {
        fprintf(stderr, "agora audit show: %s (agora audit verify)\n", err.msg);
        return 1;
    }
    json_t *all = json_array();
    FILE *f = n > 0 ? fopen(path, "re") : NULL;
    char *line = malloc(AGORA__AUDIT_LINE_MAX + 2);
    uint64_t i = 0;
    while (f != NULL && line != NULL && fgets(line, AGORA__AUDIT_LINE_MAX + 2, f) != NULL) {
        if (++i + limit <= n)
            continue; /* before the last `limit` */
        json_t *e = json_loads(line, 0, NULL);
        if (e != NULL)
            json_array_append_new(all, e);
    }
    free(line);
    if (f != NULL)
        fclose(f);
    int out = 0;
    if (o->json) {
        out = agora__json_emit_new(stdout, all, AGORA__JSON_DOC);
    } else {
        size_t k;
        json_t *e;
        if (json_array_size(all) == 0)
            printf("audit log %s: no entries\n", path);
        json_array_foreach(all, k, e) printf(
            "%6lld %s %-16s %-18s %s\n", (long long)json_integer_value(json_object_get(e, "seq")),
            json_string_value(json_object_get(e, "time")),
            json_string_value(json_object_get(e, "action")),
            json_string_value(json_object_get(e, "actor")),
            json_string_value(json_object_get(e, "object")));
        json_decref(all);
    }
    return out ? 1 : 0;
}

/* Both subcommands: one parse, then the work. */
static int audit_cmd(unsigned which, int argc, char **argv)
{
    audit_opts o;
    char path[4096];
    int rc = parse(which == CMD_VERIFY ? "audit verify" : "audit show",
                   which == CMD_VERIFY ? about_verify : about_show, which, argc, argv, &o, path,
                   sizeof path);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    return which == CMD_VERIFY ? verify(&o, path) : show(&o, path);
}

static int audit_verify(int argc, char **argv)
{
    return audit_cmd(CMD_VERIFY, argc, argv);
}

static int audit_show(int argc, char **argv)
{
    return audit_cmd(CMD_SHOW, argc, argv);
}

int agora__cmd_audit(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"verify", audit_verify, "walk the hash chain; name the first broken line"},
        {"show", audit_show, "the last entries [--limit N] [--json]"},
    };
    return agora__cli_dispatch("audit",
                               "The hash-chained audit trail of trust actions (HOME/audit.log, "
                               "or --catalog DIR/audit.log).",
                               subs, AGORA__CLI_N(subs), argc, argv);
}
