/*
 * Usage and revenue-share statements for one period, computed from the ledger rows with SQL
 * aggregation (covering index entries_period) and the one rounding rule:
 *   per statement line (vendor, currency, plugin id@version, share):
 *     vendor_share = floor(gross * vendor_share_bps / 10000)   (floor toward -infinity)
 *     platform_share = gross - vendor_share
 * Vendor and currency totals are plain sums of lines, so they add up exactly.
 */
#include <string.h>

#include "ledger_private.h"

static const char rounding_rule[] =
    "per line: vendor_share = floor(gross * vendor_share_bps / 10000); platform_share = gross - "
    "vendor_share; totals are sums of lines";

static int check_period(const char *period, agora__error *err)
{
    if (!agora__ledger_period_valid(period))
        return agora__error_set(err, AGORA_EINVAL, "period must be YYYY-MM, e.g. 2026-11");
    return 0;
}

static const char *text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

int agora__ledger_usage(agora__ledger *l, const char *period, json_t **out, agora__error *err)
{
    *out = NULL;
    int rc = check_period(period, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT plugin_id, plugin_version, status, count(*), sum(units), "
                           "sum(billable) FROM entries WHERE period = ?1 AND kind = 'invocation' "
                           "GROUP BY plugin_id, plugin_version, status ORDER BY plugin_id, "
                           "plugin_version, status",
                           -1, &st, NULL) != SQLITE_OK)
        return agora__ledger_sql_error(l, err, "preparing usage");
    sqlite3_bind_text(st, 1, period, -1, SQLITE_TRANSIENT);
    json_t *doc = json_pack("{s:s,s:[]}", "period", period, "plugins");
    json_t *plugins = json_object_get(doc, "plugins");
    json_t *cur = NULL;
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = agora__ledger_sql_error(l, err, "computing usage");
            break;
        }
        const char *id = text(st, 0), *ver = text(st, 1), *status = text(st, 2);
        json_int_t count = sqlite3_column_int64(st, 3), units = sqlite3_column_int64(st, 4);
        json_int_t billable = sqlite3_column_int64(st, 5);
        if (cur == NULL || strcmp(json_string_value(json_object_get(cur, "plugin_id")), id) != 0 ||
            strcmp(json_string_value(json_object_get(cur, "plugin_version")), ver) != 0) {
            cur = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:{}}", "plugin_id", id, "plugin_version",
                            ver, "invocations", (json_int_t)0, "billable_invocations",
                            (json_int_t)0, "billable_units", (json_int_t)0, "failures",
                            (json_int_t)0, "failures_by_reason");
            json_array_append_new(plugins, cur);
        }
        json_object_set_new(
            cur, "invocations",
            json_integer(json_integer_value(json_object_get(cur, "invocations")) + count));
        json_object_set_new(
            cur, "billable_invocations",
            json_integer(json_integer_value(json_object_get(cur, "billable_invocations")) +
                         billable));
        json_object_set_new(
            cur, "billable_units",
            json_integer(json_integer_value(json_object_get(cur, "billable_units")) + units));
        if (strcmp(status, "ok") != 0) {
            json_object_set_new(
                cur, "failures",
                json_integer(json_integer_value(json_object_get(cur, "failures")) + count));
            json_object_set_new(json_object_get(cur, "failures_by_reason"), status,
                                json_integer(count));
        }
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* floor(a * bps / 10000) without overflow (a is a sum of int64 amounts, bps <= 10000). */
int64_t agora__ledger_share_floor(int64_t gross, int64_t bps)
{
    __int128 p = (__int128)gross * bps;
    __int128 q = p / 10000;
    if (p % 10000 != 0 && p < 0)
        q -= 1;
    return (int64_t)q;
}

static json_t *money(json_t *o, const char *key, int64_t add)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + add));
    return o;
}

static json_t *find_total(json_t *arr, const char *currency)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "currency")), currency) == 0)
            return v;
    }
    v = json_pack("{s:s,s:I,s:I,s:I}", "currency", currency, "gross_minor", (json_int_t)0,
                  "vendor_share_minor", (json_int_t)0, "platform_share_minor", (json_int_t)0);
    json_array_append_new(arr, v);
    return v;
}

int agora__ledger_statement(agora__ledger *l, const char *period, json_t **out, agora__error *err)
{
    *out = NULL;
    int rc = check_period(period, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT vendor, currency, plugin_id, plugin_version, vendor_share_bps, "
                           "sum(amount_minor), sum(units), count(*) FROM entries WHERE period = ?1 "
                           "GROUP BY vendor, currency, plugin_id, plugin_version, vendor_share_bps "
                           "ORDER BY vendor, currency, plugin_id, plugin_version, vendor_share_bps",
                           -1, &st, NULL) != SQLITE_OK)
        return agora__ledger_sql_error(l, err, "preparing the statement");
    sqlite3_bind_text(st, 1, period, -1, SQLITE_TRANSIENT);
    json_t *doc = json_pack("{s:s,s:s,s:[],s:[]}", "period", period, "rounding", rounding_rule,
                            "vendors", "totals");
    json_t *vendors = json_object_get(doc, "vendors"), *totals = json_object_get(doc, "totals");
    json_t *cur = NULL;
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = agora__ledger_sql_error(l, err, "computing the statement");
            break;
        }
        const char *vendor = text(st, 0), *currency = text(st, 1);
        int64_t bps = sqlite3_column_int64(st, 4), gross = sqlite3_column_int64(st, 5);
        int64_t vshare = agora__ledger_share_floor(gross, bps);
        int64_t pshare;
        if (__builtin_sub_overflow(gross, vshare, &pshare)) {
            rc = agora__error_set(err, AGORA_ELIMIT, "statement amounts overflow");
            break;
        }
        if (cur == NULL || strcmp(json_string_value(json_object_get(cur, "vendor")), vendor) != 0 ||
            strcmp(json_string_value(json_object_get(cur, "currency")), currency) != 0) {
            cur = json_pack("{s:s,s:s,s:[],s:I,s:I,s:I}", "vendor", vendor, "currency", currency,
                            "lines", "gross_minor", (json_int_t)0, "vendor_share_minor",
                            (json_int_t)0, "platform_share_minor", (json_int_t)0);
            json_array_append_new(vendors, cur);
        }
        json_array_append_new(json_object_get(cur, "lines"),
                              json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "plugin_id",
                                        text(st, 2), "plugin_version", text(st, 3),
                                        "vendor_share_bps", (json_int_t)bps, "rows",
                                        (json_int_t)sqlite3_column_int64(st, 7), "units",
                                        (json_int_t)sqlite3_column_int64(st, 6), "gross_minor",
                                        (json_int_t)gross, "vendor_share_minor", (json_int_t)vshare,
                                        "platform_share_minor", (json_int_t)pshare));
        money(money(money(cur, "gross_minor", gross), "vendor_share_minor", vshare),
              "platform_share_minor", pshare);
        json_t *t = find_total(totals, currency);
        money(money(money(t, "gross_minor", gross), "vendor_share_minor", vshare),
              "platform_share_minor", pshare);
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}
