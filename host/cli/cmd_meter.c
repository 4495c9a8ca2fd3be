/*
 * CLI: `agora usage`, `agora statement`, `agora ledger verify|export`. Read-only views of
 * HOME/ledger.db; recording happens in `agora run` through ledger.h. The operator's side:
 * `agora statement --from EXPORT... --catalog DIR` (statement_clinics.c) over the signed period
 * exports `agora ledger export --period P -o FILE` writes (ledger_period.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "ledger.h"
#include "ledger_period.h"
#include "results.h"
#include "statement_clinics.h"
#include "trust.h"

/* What the meter commands' option tables fill (each command's table names the fields it takes). */
typedef struct opts {
    const char *home;
    const char *period;
    const char *since;
    const char *out;      /* ledger export -o */
    const char *catalog;  /* statement --catalog */
    const char *trust;    /* statement --trust */
    agora__cli_list from; /* statement --from, one per export file */
    int json, csv;
} opts;

/* The meter commands, as bits of the rows of their one option table. */
enum { USAGE = 1u, STATEMENT = 2u, VERIFY = 4u, EXPORT = 8u };

/* Parse argv against the one table of the meter commands (desc->which picks the rows), then
 * the checks they share. Returns 1 to go on, else 0 with *status the exit status (0 after
 * --help, 2 after a usage error). */
static int parse(const agora__cli_cmd *desc, int argc, char **argv, opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt table[] = {
        {"--period", 0, AGORA__CLI_VALUE, &o->period, "YYYY-MM",
         "the UTC month (usage: default this one; ledger export: with -o)", 0, NULL, 0,
         USAGE | STATEMENT | EXPORT},
        {"--out", 'o', AGORA__CLI_VALUE, &o->out, "FILE", "the period's signed export file", 0,
         NULL, 0, EXPORT},
        {"--since", 0, AGORA__CLI_VALUE, &o->since, "SEQ|INVOCATION_ID",
         "print the rows after this one as JSON lines", 0, NULL, 0, EXPORT},
        AGORA__CLI_OPT_JSON(&o->json, "print JSON"),
        {"--csv", 0, AGORA__CLI_FLAG, &o->csv, NULL, "print CSV, one row per line", 0, NULL, 0,
         STATEMENT},
        AGORA__CLI_OPT_HOME(&o->home),
        {"--from", 0, AGORA__CLI_LIST, &o->from, "EXPORT",
         "operator: a clinic's signed period export (one per file)", 0, NULL, AGORA__EXPORT_FILES,
         STATEMENT},
        {"--catalog", 0, AGORA__CLI_VALUE, &o->catalog, "DIR",
         "operator: the catalog folder (prices, DIR/clinics)", 0, NULL, 0, STATEMENT},
        {"--trust", 0, AGORA__CLI_VALUE, &o->trust, "OPERATOR.pub",
         "operator: verify the catalog signature with this key", 0, NULL, 0, STATEMENT},
    };
    size_t n_pos;
    if (!agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, &n_pos, status))
        return 0;
    *status = 2;
    if (o->json && o->csv)
        agora__cli_usage_error(desc->name, "--json and --csv exclude each other; pick one");
    else if (o->period != NULL && !agora__ledger_period_valid(o->period))
        agora__cli_usage_error(desc->name, "--period must be YYYY-MM (e.g. 2026-11)");
    else if (desc->which == STATEMENT && o->period == NULL)
        agora__cli_usage_error(desc->name, "--period YYYY-MM is required (e.g. --period 2026-11)");
    else
        *status = 0;
    if (*status != 0)
        agora__cli_list_free(&o->from);
    return *status == 0;
}

/* What each command takes and does, for its generated --help. */
#define USAGE_ARGS "[--period YYYY-MM] [--json] [--home DIR]"
#define USAGE_ABOUT                                                                                \
    "Per plugin for the period (default: this UTC month): invocations, billable\n"                 \
    "invocations and units, failures by reason, urgent results (triage)."

#define STATEMENT_ARGS                                                                             \
    "--period YYYY-MM [--json|--csv] [--home DIR]\n"                                               \
    "       agora statement --period YYYY-MM --from EXPORT [--from EXPORT...]\n"                   \
    "                       --catalog DIR [--trust OPERATOR.pub] [--json|--csv]"
#define STATEMENT_ABOUT                                                                            \
    "Revenue-share statement per vendor in integer minor units of each currency.\n"                \
    "Rounding, per line (vendor, currency, plugin version, share): vendor share =\n"               \
    "floor(gross * bps / 10000); platform share = gross - vendor share; totals are\n"              \
    "sums of lines. Corrections count in the period they were recorded in.\n\n"                    \
    "With --home (or AGORA_HOME): the clinic's own statement from its ledger.\n"                   \
    "With --from: the operator's statement across clinics, from their signed exports\n"            \
    "(agora ledger export --period P -o FILE; one --from per file). Each export must\n"            \
    "be signed by a clinic registered in DIR/clinics (agora clinic add), verify row\n"             \
    "by row, be of the period, continue the chain accepted from that clinic before\n"              \
    "(kept in DIR/clinics/NAME.accepted.json) and share no invocation with another;\n"             \
    "rows must carry the catalog's prices. Any refused export: exit 1, nothing\n"                  \
    "printed or recorded. Lines show per-clinic subtotals, each rounded as the\n"                  \
    "clinic's own statement is, so the total equals the sum of the clinics'.\n"                    \
    "--trust verifies the catalog signature (else a warning says it was not)."

#define VERIFY_ARGS  "[--json] [--home DIR]"
#define VERIFY_ABOUT "Walk the hash chain of HOME/ledger.db; name the first bad row (exit 1)."

#define EXPORT_ARGS                                                                                \
    "--period YYYY-MM -o FILE [--json] [--home DIR]\n"                                             \
    "       agora ledger export [--since SEQ|INVOCATION_ID] [--home DIR]"
#define EXPORT_ABOUT                                                                               \
    "--period writes the period's signed export for the operator's statement\n"                    \
    "(agora statement --from): the period's rows with their chain links and head,\n"               \
    "signed by the clinic key HOME/clinic.key (made on first need).\n"                             \
    "Without --period: the rows after SEQ (or after that invocation's row) as JSON\n"              \
    "lines; seq and invocation_id are stable ids."

static const agora__cli_cmd usage_cmd = {"usage", USAGE_ARGS, USAGE_ABOUT, NULL, 0, 0, 0, USAGE};
static const agora__cli_cmd statement_cmd = {
    "statement", STATEMENT_ARGS, STATEMENT_ABOUT, NULL, 0, 0, 0, STATEMENT};
static const agora__cli_cmd verify_cmd = {"ledger verify", VERIFY_ARGS, VERIFY_ABOUT, NULL, 0, 0, 0,
                                          VERIFY};
static const agora__cli_cmd export_cmd = {"ledger export", EXPORT_ARGS, EXPORT_ABOUT, NULL, 0, 0, 0,
                                          EXPORT};

/* Open the ledger of the clinic home (read-only uses); home receives the resolved path. */
static int open_ledger(const char *cmd, const opts *o, agora__ledger **l, char *home,
                       size_t home_size)
{
    if (agora__cli_home(cmd, o->home, home, home_size) != 0)
        return 1;
    agora__error err = {0};
    if (agora__ledger_open(home, NULL, l, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return 1;
    }
    return 0;
}

/* "urgent_results" of each plugin line: the urgent stored results (the results store's triage
 * index) whose invocation was minted in the period, by plugin id@version. */
static int add_urgent_counts(const char *home, const char *period, json_t *doc, agora__error *err)
{
    json_t *marks = NULL;
    int rc = agora__results_urgent_index(home, &marks, err);
    if (rc != 0)
        return rc;
    size_t i, j;
    json_t *p, *m;
    json_array_foreach(json_object_get(doc, "plugins"), i, p)
    {
        json_int_t n = 0;
        json_array_foreach(marks, j, m)
        {
            char when[8];
            agora__error ignored = {0};
            if (agora__ledger_id_period(json_string_value(json_object_get(m, "invocation_id")),
                                        when, &ignored) == 0 &&
                strcmp(when, period) == 0 &&
                json_equal(json_object_get(m, "plugin_id"), json_object_get(p, "plugin_id")) &&
                json_equal(json_object_get(m, "plugin_version"),
                           json_object_get(p, "plugin_version")))
                n++;
        }
        json_object_set_new(p, "urgent_results", json_integer(n));
    }
    json_decref(marks);
    return 0;
}

int agora__cmd_usage(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&usage_cmd, argc, argv, &o, &rc))
        return rc;
    char now[8];
    agora__ledger_period_now(now);
    const char *period = o.period ? o.period : now;
    agora__ledger *l = NULL;
    char home[4096];
    if ((rc = open_ledger("usage", &o, &l, home, sizeof home)) != 0)
        return rc;
    agora__error err = {0};
    json_t *doc = NULL;
    if (agora__ledger_usage(l, period, &doc, &err) != 0) {
        fprintf(stderr, "agora usage: %s\n", err.msg);
        agora__ledger_close(l);
        return 1;
    }
    agora__ledger_close(l);
    if (add_urgent_counts(home, period, doc, &err) != 0) {
        fprintf(stderr, "agora usage: %s\n", err.msg);
        json_decref(doc);
        return 1;
    }
    if (o.json) {
        rc = agora__json_emit(stdout, doc, AGORA__JSON_DOC);
    } else {
        printf("usage for %s\n", period);
        printf("%-32s %-12s %11s %9s %10s %9s %7s  %s\n", "plugin", "version", "invocations",
               "billable", "units", "failures", "urgent", "by reason");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(doc, "plugins"), i, p)
        {
            printf("%-32s %-12s %11lld %9lld %10lld %9lld %7lld  ",
                   json_string_value(json_object_get(p, "plugin_id")),
                   json_string_value(json_object_get(p, "plugin_version")),
                   (long long)json_integer_value(json_object_get(p, "invocations")),
                   (long long)json_integer_value(json_object_get(p, "billable_invocations")),
                   (long long)json_integer_value(json_object_get(p, "billable_units")),
                   (long long)json_integer_value(json_object_get(p, "failures")),
                   (long long)json_integer_value(json_object_get(p, "urgent_results")));
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

static void csv_quoted(const char *s)
{
    /* Vendor and clinic names are printable ASCII; quote them and double inner quotes. */
    putchar('"');
    for (const char *c = s; *c; c++)
        printf(*c == '"' ? "\"\"" : "%c", *c);
    putchar('"');
}

static long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The operator's statement across clinics. */
static int statement_from(const opts *o)
{
    if (o->from.n == 0 || o->catalog == NULL) {
        return agora__cli_usage_error("statement", "across clinics, give --from EXPORT (one per "
                                                   "file) and --catalog DIR");
    }
    if (o->home != NULL) {
        return agora__cli_usage_error("statement", "--home is the clinic's statement and --from "
                                                   "the operator's; use one");
    }
    agora__error err = {0};
    json_t *doc = NULL;
    int verified = 0;
    if (agora__statement_clinics(o->catalog, o->trust, o->period, o->from.v, o->from.n, &doc,
                                 &verified, &err) != 0) {
        fprintf(stderr, "agora statement: refused: %s\n", err.msg);
        return 1;
    }
    if (!verified)
        fprintf(stderr,
                "agora statement: warning: the signature of %s/catalog.json was not "
                "verified (pass --trust OPERATOR.pub)\n",
                o->catalog);
    size_t i, j, k;
    json_t *v, *line, *c;
    int rc = 0;
    if (o->json) {
        rc = agora__json_emit(stdout, doc, AGORA__JSON_DOC);
    } else if (o->csv) {
        printf("period,vendor,currency,plugin_id,plugin_version,vendor_share_bps,clinic,rows,"
               "units,gross_minor,vendor_share_minor,platform_share_minor\n");
        json_array_foreach(json_object_get(doc, "vendors"), i, v)
        {
            json_array_foreach(json_object_get(v, "lines"), j, line)
            {
                json_array_foreach(json_object_get(line, "clinics"), k, c)
                {
                    printf("%s,", o->period);
                    csv_quoted(jstr(v, "vendor"));
                    printf(",%s,%s,%s,%lld,", jstr(v, "currency"), jstr(line, "plugin_id"),
                           jstr(line, "plugin_version"), jint(line, "vendor_share_bps"));
                    csv_quoted(jstr(c, "clinic"));
                    printf(",%lld,%lld,%lld,%lld,%lld\n", jint(c, "rows"), jint(c, "units"),
                           jint(c, "gross_minor"), jint(c, "vendor_share_minor"),
                           jint(c, "platform_share_minor"));
                }
            }
        }
    } else {
        json_t *clinics = json_object_get(doc, "clinics");
        printf("statement for %s across %zu clinic%s (amounts in minor units)\n", o->period,
               json_array_size(clinics), json_array_size(clinics) == 1 ? "" : "s");
        json_array_foreach(clinics, i, c)
        {
            printf("  clinic %s (key %s): rows %lld..%lld verified, %s\n", jstr(c, "clinic"),
                   jstr(c, "key_id"), jint(c, "first_seq"), jint(c, "last_seq"), jstr(c, "export"));
        }
        json_array_foreach(json_object_get(doc, "vendors"), i, v)
        {
            printf("\nvendor %s (%s)\n", jstr(v, "vendor"), jstr(v, "currency"));
            json_array_foreach(json_object_get(v, "lines"), j, line)
            {
                printf("  %s@%s units=%lld gross=%lld vendor(%lld bps)=%lld platform=%lld\n",
                       jstr(line, "plugin_id"), jstr(line, "plugin_version"), jint(line, "units"),
                       jint(line, "gross_minor"), jint(line, "vendor_share_bps"),
                       jint(line, "vendor_share_minor"), jint(line, "platform_share_minor"));
                json_array_foreach(json_object_get(line, "clinics"), k, c)
                {
                    printf("    %-20s units=%lld gross=%lld vendor=%lld platform=%lld\n",
                           jstr(c, "clinic"), jint(c, "units"), jint(c, "gross_minor"),
                           jint(c, "vendor_share_minor"), jint(c, "platform_share_minor"));
                }
            }
            json_array_foreach(json_object_get(v, "clinics"), k, c)
            {
                printf("  subtotal %-20s gross=%lld vendor=%lld platform=%lld\n", jstr(c, "clinic"),
                       jint(c, "gross_minor"), jint(c, "vendor_share_minor"),
                       jint(c, "platform_share_minor"));
            }
            printf("  total gross=%lld vendor=%lld platform=%lld\n", jint(v, "gross_minor"),
                   jint(v, "vendor_share_minor"), jint(v, "platform_share_minor"));
        }
        printf("\n");
        json_array_foreach(json_object_get(doc, "totals"), i, v)
        {
            printf("total %s gross=%lld vendor=%lld platform=%lld\n", jstr(v, "currency"),
                   jint(v, "gross_minor"), jint(v, "vendor_share_minor"),
                   jint(v, "platform_share_minor"));
        }
    }
    json_decref(doc);
    return rc;
}

/* The clinic's own statement, or the operator's across clinics (--from). */
static int statement(const opts *po)
{
    const opts o = *po;
    int rc;
    if (o.from.n > 0 || o.catalog != NULL || o.trust != NULL)
        return statement_from(&o);
    agora__ledger *l = NULL;
    char home[4096];
    if ((rc = open_ledger("statement", &o, &l, home, sizeof home)) != 0)
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
        rc = agora__json_emit(stdout, doc, AGORA__JSON_DOC);
    } else if (o.csv) {
        printf("period,vendor,currency,plugin_id,plugin_version,vendor_share_bps,rows,units,"
               "gross_minor,vendor_share_minor,platform_share_minor\n");
        json_array_foreach(json_object_get(doc, "vendors"), i, v)
        {
            json_array_foreach(json_object_get(v, "lines"), j, line)
            {
                printf("%s,", o.period);
                csv_quoted(jstr(v, "vendor"));
                printf(
                    ",%s,%s,%s,%lld,%lld,%lld,%lld,%lld,%lld\n",
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

int agora__cmd_statement(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&statement_cmd, argc, argv, &o, &rc))
        return rc;
    rc = statement(&o);
    agora__cli_list_free(&o.from);
    return rc;
}

static int export_line(const json_t *row, void *ctx)
{
    (void)ctx;
    return agora__json_emit(stdout, row, AGORA__JSON_LINE) == 0 ? 0 : AGORA__EIO;
}

/* `agora ledger export --period P -o FILE`: the signature line, then the exact body bytes. */
static int period_export(const opts *o)
{
    const char *cmd = "ledger export";
    if (o->period == NULL || o->out == NULL) {
        return agora__cli_usage_error(cmd, "--period YYYY-MM and -o FILE go together");
    }
    if (o->since != NULL) {
        return agora__cli_usage_error(cmd, "--since does not apply to a period export");
    }
    agora__ledger *l = NULL;
    char home[4096];
    int rc = open_ledger(cmd, o, &l, home, sizeof home);
    if (rc != 0)
        return rc;
    agora__error err = {0};
    /* The header names the signing key, so the key comes first (made now for older homes). */
    int created = 0;
    char key_id[17], pk_hex[65], sig[256];
    if (agora__trust_clinic_key_ensure(home, &created, key_id, &err) != 0) {
        agora__ledger_close(l);
        fprintf(stderr, "agora ledger export: clinic signing key: %s\n", err.msg);
        return 1;
    }
    if (created)
        fprintf(stderr,
                "agora ledger export: this home had no clinic signing key; made %s/clinic.key "
                "(secret, 0600) and %s/clinic.pub: give clinic.pub to your operator (agora "
                "clinic add)\n",
                home, home);
    char *file = NULL;
    size_t flen = 0;
    agora__export_info sum;
    rc = agora__ledger_period_export(l, o->period, key_id, &file, &flen, &sum, &err);
    agora__ledger_close(l);
    /* Sign the body in place: the export left the fixed-length signature line blank. */
    if (rc == 0)
        rc = agora__trust_clinic_sign(home, (const uint8_t *)file + AGORA__EXPORT_SIG_LINE,
                                      flen - AGORA__EXPORT_SIG_LINE, sig, sizeof sig, key_id,
                                      pk_hex, NULL, &err);
    if (rc == 0 && strlen(sig) != AGORA__EXPORT_SIG_LINE)
        rc = agora__error_set(&err, AGORA_EINTERNAL, "unexpected signature line length");
    if (rc == 0) {
        memcpy(file, sig, AGORA__EXPORT_SIG_LINE);
        rc = agora__write_file_atomic(o->out, file, flen, 0600, &err);
    }
    free(file);
    if (rc != 0) {
        fprintf(stderr, "agora ledger export: %s\n", err.msg);
        return 1;
    }
    long long n_period = sum.rows_in_period, first = sum.first_seq, last = sum.last_seq;
    if (o->json) {
        json_t *r = json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:b}", "period", o->period, "file",
                              o->out, "rows_in_period", (json_int_t)n_period, "first_seq",
                              (json_int_t)first, "last_seq", (json_int_t)last, "head", sum.head,
                              "clinic_key_id", key_id, "key_created", created);
        return agora__json_emit_new(stdout, r, AGORA__JSON_DOC);
    }
    printf("exported %s: %lld row%s of the period (segment seq %lld..%lld), chain head %.16s, "
           "signed by clinic key %s\n  -> %s (give it to your operator: agora statement "
           "--from)\n",
           o->period, n_period, n_period == 1 ? "" : "s", first, last, sum.head, key_id, o->out);
    return 0;
}

static int ledger_verify(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&verify_cmd, argc, argv, &o, &rc))
        return rc;
    agora__ledger *l = NULL;
    char home[4096];
    if ((rc = open_ledger(verify_cmd.name, &o, &l, home, sizeof home)) != 0)
        return rc;
    agora__error err = {0};
    int64_t bad = 0, rows = 0;
    rc = agora__ledger_verify(l, &bad, &rows, &err);
    agora__ledger_close(l);
    if (o.json)
        agora__json_emit_new(stdout,
                             rc == 0
                                 ? json_pack("{s:b,s:I}", "ok", 1, "rows", (json_int_t)rows)
                                 : json_pack("{s:b,s:I,s:I,s:s}", "ok", 0, "rows", (json_int_t)rows,
                                             "bad_seq", (json_int_t)bad, "error", err.msg),
                             AGORA__JSON_DOC);
    if (rc != 0) {
        fprintf(stderr, "agora ledger verify: %s\n", err.msg);
        return 1;
    }
    if (!o.json)
        printf("ledger ok: %lld rows, chain intact\n", (long long)rows);
    return 0;
}

static int ledger_export(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&export_cmd, argc, argv, &o, &rc))
        return rc;
    if (o.period != NULL || o.out != NULL)
        return period_export(&o);
    agora__ledger *l = NULL;
    char home[4096];
    if ((rc = open_ledger(export_cmd.name, &o, &l, home, sizeof home)) != 0)
        return rc;
    agora__error err = {0};
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
            return 1;
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

int agora__cmd_ledger(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"verify", ledger_verify, "walk the hash chain; name the first bad row"},
        {"export", ledger_export, "the period's signed export, or rows as JSON lines"},
    };
    return agora__cli_dispatch("ledger", "The clinic's metered ledger (HOME/ledger.db).", subs,
                               AGORA__CLI_N(subs), argc, argv);
}
