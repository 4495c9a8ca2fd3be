/*
 * CLI: `agora usage`, `agora statement`, `agora ledger verify|export`. Read-only views of
 * HOME/ledger.db; recording happens in `agora run` through ledger.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../cli/commands.h"
#include "ledger.h"

typedef struct opts {
    const char *home;
    const char *period;
    const char *since;
    int json, csv, help;
} opts;

/* Parse the options shared by the meter commands; argv[first..] are options. 0 or 2. */
static int parse(const char *cmd, int argc, char **argv, int first, opts *o, int allow_period,
                 int allow_since, int allow_csv)
{
    memset(o, 0, sizeof *o);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (allow_csv && strcmp(a, "--csv") == 0) {
            o->csv = 1;
            continue;
        }
        if (strcmp(a, "--home") == 0)
            slot = &o->home;
        else if (allow_period && strcmp(a, "--period") == 0)
            slot = &o->period;
        else if (allow_since && strcmp(a, "--since") == 0)
            slot = &o->since;
        if (slot == NULL) {
            fprintf(stderr, "agora %s: unknown option '%s'; run 'agora %s --help'\n", cmd, a, cmd);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "agora %s: %s needs a value; run 'agora %s --help'\n", cmd, a, cmd);
            return 2;
        }
        *slot = argv[++i];
    }
    if (o->json && o->csv) {
        fprintf(stderr, "agora %s: --json and --csv exclude each other; pick one\n", cmd);
        return 2;
    }
    if (!o->help && o->period != NULL && !agora__ledger_period_valid(o->period)) {
        fprintf(stderr, "agora %s: --period must be YYYY-MM (e.g. 2026-11)\n", cmd);
        return 2;
    }
    return 0;
}

/* Open the ledger of the clinic home (--home, else the default home; read-only uses). */
static int open_ledger(const char *cmd, const opts *o, agora__ledger **l)
{
    char home[4096];
    agora__error herr = {0};
    if (agora__home_dir(o->home, home, sizeof home, &herr) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, herr.msg);
        return 1;
    }
    struct stat st;
    if (stat(home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "agora %s: clinic home %s is not a directory; create it with agora init\n",
                cmd, home);
        return 1;
    }
    agora__error err = {0};
    if (agora__ledger_open(home, NULL, l, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return 1;
    }
    return 0;
}

static int print_json(const json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s == NULL)
        return 1;
    puts(s);
    free(s);
    return 0;
}

int agora__cmd_usage(int argc, char **argv)
{
    opts o;
    int rc = parse("usage", argc, argv, 1, &o, 1, 0, 0);
    if (rc != 0)
        return rc;
    if (o.help) {
        printf("usage: agora usage [--period YYYY-MM] [--json] [--home DIR]\n"
               "Per plugin for the period (default: this UTC month): invocations, billable\n"
               "invocations and units, failures by reason. Home: --home, else the default (agora init --help).\n");
        return 0;
    }
    char now[8];
    agora__ledger_period_now(now);
    const char *period = o.period ? o.period : now;
    agora__ledger *l = NULL;
    if ((rc = open_ledger("usage", &o, &l)) != 0)
        return rc;
    agora__error err = {0};
    json_t *doc = NULL;
    if (agora__ledger_usage(l, period, &doc, &err) != 0) {
        fprintf(stderr, "agora usage: %s\n", err.msg);
        agora__ledger_close(l);
        return 1;
    }
    agora__ledger_close(l);
    if (o.json) {
        rc = print_json(doc);
    } else {
        printf("usage for %s\n", period);
        printf("%-32s %-12s %11s %9s %10s %9s  %s\n", "plugin", "version", "invocations",
               "billable", "units", "failures", "by reason");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(doc, "plugins"), i, p)
        {
            printf("%-32s %-12s %11lld %9lld %10lld %9lld  ",
                   json_string_value(json_object_get(p, "plugin_id")),
                   json_string_value(json_object_get(p, "plugin_version")),
                   (long long)json_integer_value(json_object_get(p, "invocations")),
                   (long long)json_integer_value(json_object_get(p, "billable_invocations")),
                   (long long)json_integer_value(json_object_get(p, "billable_units")),
                   (long long)json_integer_value(json_object_get(p, "failures")));
            const char *k;
            json_t *v;
            int first = 1;
            json_object_foreach(json_object_get(p, "failures_by_reason"), k, v)
            {
                printf("%s%s=%lld", first ? "" : ",", k, (long long)json_integer_value(v));
                first = 0;
            }
            printf("%s\n", first ? "-" : "");
        }
    }
    json_decref(doc);
    return rc;
}

static void money_text(char *buf, size_t n, long long minor)
{
    /* Minor units printed as-is with the currency: exponent per currency is not assumed. */
    snprintf(buf, n, "%lld", minor);
}

int agora__cmd_statement(int argc, char **argv)
{
    opts o;
    int rc = parse("statement", argc, argv, 1, &o, 1, 0, 1);
    if (rc != 0)
        return rc;
    if (o.help) {
        printf("usage: agora statement --period YYYY-MM [--json|--csv] [--home DIR]\n"
               "Revenue-share statement per vendor in integer minor units of each currency.\n"
               "Rounding, per line (vendor, currency, plugin version, share): vendor share =\n"
               "floor(gross * bps / 10000); platform share = gross - vendor share; totals are\n"
               "sums of lines. Corrections count in the period they were recorded in.\n");
        return 0;
    }
    if (o.period == NULL) {
        fprintf(stderr, "agora statement: --period YYYY-MM is required; e.g. --period 2026-11\n");
        return 2;
    }
    agora__ledger *l = NULL;
    if ((rc = open_ledger("statement", &o, &l)) != 0)
        return rc;
    agora__error err = {0};
    json_t *doc = NULL;
    if (agora__ledger_statement(l, o.period, &doc, &err) != 0) {
        fprintf(stderr, "agora statement: %s\n", err.msg);
        agora__ledger_close(l);
        return 1;
    }
    agora__ledger_close(l);
    size_t i, j;
    json_t *v, *line;
    if (o.json) {
        rc = print_json(doc);
    } else if (o.csv) {
        printf("period,vendor,currency,plugin_id,plugin_version,vendor_share_bps,rows,units,"
               "gross_minor,vendor_share_minor,platform_share_minor\n");
        json_array_foreach(json_object_get(doc, "vendors"), i, v)
        {
            json_array_foreach(json_object_get(v, "lines"), j, line)
            {
                /* Vendor names are printable ASCII; quote them and double inner quotes. */
                printf("%s,\"", o.period);
                for (const char *c = json_string_value(json_object_get(v, "vendor")); *c; c++)
                    printf(*c == '"' ? "\"\"" : "%c", *c);
                printf(
                    "\",%s,%s,%s,%lld,%lld,%lld,%lld,%lld,%lld\n",
                    json_string_value(json_object_get(v, "currency")),
                    json_string_value(json_object_get(line, "plugin_id")),
                    json_string_value(json_object_get(line, "plugin_version")),
                    (long long)json_integer_value(json_object_get(line, "vendor_share_bps")),
                    (long long)json_integer_value(json_object_get(line, "rows")),
                    (long long)json_integer_value(json_object_get(line, "units")),
                    (long long)json_integer_value(json_object_get(line, "gross_minor")),
                    (long long)json_integer_value(json_object_get(line, "vendor_share_minor")),
                    (long long)json_integer_value(json_object_get(line, "platform_share_minor")));
            }
        }
    } else {
        char g[32], vs[32], ps[32];
        printf("statement for %s (amounts in minor units)\n", o.period);
        json_array_foreach(json_object_get(doc, "vendors"), i, v)
        {
            printf("\nvendor %s (%s)\n", json_string_value(json_object_get(v, "vendor")),
                   json_string_value(json_object_get(v, "currency")));
            json_array_foreach(json_object_get(v, "lines"), j, line)
            {
                money_text(g, sizeof g, json_integer_value(json_object_get(line, "gross_minor")));
                money_text(vs, sizeof vs,
                           json_integer_value(json_object_get(line, "vendor_share_minor")));
                money_text(ps, sizeof ps,
                           json_integer_value(json_object_get(line, "platform_share_minor")));
                printf("  %s@%s units=%lld gross=%s vendor(%lld bps)=%s platform=%s\n",
                       json_string_value(json_object_get(line, "plugin_id")),
                       json_string_value(json_object_get(line, "plugin_version")),
                       (long long)json_integer_value(json_object_get(line, "units")), g,
                       (long long)json_integer_value(json_object_get(line, "vendor_share_bps")), vs,
                       ps);
            }
            printf("  total gross=%lld vendor=%lld platform=%lld\n",
                   (long long)json_integer_value(json_object_get(v, "gross_minor")),
                   (long long)json_integer_value(json_object_get(v, "vendor_share_minor")),
                   (long long)json_integer_value(json_object_get(v, "platform_share_minor")));
        }
        printf("\n");
        json_array_foreach(json_object_get(doc, "totals"), i, v)
        {
            printf("total %s gross=%lld vendor=%lld platform=%lld\n",
                   json_string_value(json_object_get(v, "currency")),
                   (long long)json_integer_value(json_object_get(v, "gross_minor")),
                   (long long)json_integer_value(json_object_get(v, "vendor_share_minor")),
                   (long long)json_integer_value(json_object_get(v, "platform_share_minor")));
        }
    }
    json_decref(doc);
    return rc;
}

static int export_line(const json_t *row, void *ctx)
{
    (void)ctx;
    char *s = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
    if (s == NULL)
        return AGORA_ENOMEM;
    int ok = puts(s) >= 0;
    free(s);
    return ok ? 0 : -EIO;
}

int agora__cmd_ledger(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;
    if (sub == NULL || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        FILE *out = sub ? stdout : stderr;
        fprintf(out, "usage: agora ledger verify [--json] [--home DIR]\n"
                     "       agora ledger export [--since SEQ|INVOCATION_ID] [--home DIR]\n"
                     "verify walks the hash chain and names the first bad row (exit 1).\n"
                     "export prints rows after SEQ (or after that invocation's row) as JSON "
                     "lines;\nseq and invocation_id are stable ids.\n");
        return sub ? 0 : 2;
    }
    opts o;
    int verify = strcmp(sub, "verify") == 0, export = strcmp(sub, "export") == 0;
    if (!verify && !export) {
        fprintf(stderr, "agora ledger: unknown subcommand '%s'; use verify or export\n", sub);
        return 2;
    }
    int rc = parse(verify ? "ledger verify" : "ledger export", argc, argv, 2, &o, 0, export, 0);
    if (rc != 0)
        return rc;
    if (o.help)
        return agora__cmd_ledger(2, (char *[]){argv[0], "--help", NULL});
    agora__ledger *l = NULL;
    if ((rc = open_ledger(verify ? "ledger verify" : "ledger export", &o, &l)) != 0)
        return rc;
    agora__error err = {0};
    if (verify) {
        int64_t bad = 0, rows = 0;
        rc = agora__ledger_verify(l, &bad, &rows, &err);
        agora__ledger_close(l);
        if (o.json) {
            json_t *doc = rc == 0
                              ? json_pack("{s:b,s:I}", "ok", 1, "rows", (json_int_t)rows)
                              : json_pack("{s:b,s:I,s:I,s:s}", "ok", 0, "rows", (json_int_t)rows,
                                          "bad_seq", (json_int_t)bad, "error", err.msg);
            print_json(doc);
            json_decref(doc);
        }
        if (rc != 0) {
            fprintf(stderr, "agora ledger verify: %s\n", err.msg);
            return 1;
        }
        if (!o.json)
            printf("ledger ok: %lld rows, chain intact\n", (long long)rows);
        return 0;
    }
    int64_t since = 0;
    if (o.since != NULL) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(o.since, &end, 10);
        if (o.since[0] != '\0' && *end == '\0' && errno == 0 && v >= 0) {
            since = v;
        } else if (agora__ledger_seq_of(l, o.since, &since, &err) != 0) {
            fprintf(stderr, "agora ledger export: --since: %s\n", err.msg);
            agora__ledger_close(l);
            return 2;
        }
    }
    rc = agora__ledger_export(l, since, export_line, NULL, &err);
    agora__ledger_close(l);
    if (rc != 0) {
        fprintf(stderr, "agora ledger export: %s\n", err.msg);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
