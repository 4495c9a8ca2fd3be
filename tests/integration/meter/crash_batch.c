/*
 * Crash-safety workload for the ledger, driven by test_crash.py.
 *
 *   crash_batch run HOME N     play the host for jobs 0..N-1: mint an id and persist it in
 *                              HOME/queue (fsync) BEFORE "dispatch", then record outcomes in
 *                              group commits of 16, sometimes recording a batch twice (a
 *                              retry). On restart, jobs already queued keep their id and are
 *                              recorded again (the ledger must ignore the duplicates). Prints
 *                              "committed I" after each group commit that appended rows.
 *   crash_batch check HOME N   assert the invariants after any kill:
 *                              - the chain verifies;
 *                              - every invocation row is a queued job, at most once;
 *                              - per plugin, the charged units equal the distinct billing
 *                                units (plugin, unit, period) of the recorded billable jobs:
 *                                nothing is charged twice, nothing billable is missed;
 *                              - the statement's totals equal the sum of the rows.
 *                              Prints {"recorded":R,"period_totals":{...}} for the driver.
 *                              With "full", also asserts every job was recorded.
 * Jobs are deterministic functions of their index (plugin, study, series, instances, status).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"

#define NPLUGINS 4
#define BATCH    16

static const uint8_t secret[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static agora__ledger_pricing plugins[NPLUGINS] = {
    {"org.example.study", "1.0.0", "Vendor A", 3, AGORA__MODEL_PER_STUDY, 250, "EUR", 7000},
    {"org.example.series", "2.1.0", "Vendor B", 3, AGORA__MODEL_PER_SERIES, 40, "EUR", 6000},
    {"org.example.inst", "0.9.1", "Vendor A", 3, AGORA__MODEL_PER_INSTANCE, 3, "USD", 8000},
    {"org.example.sub", "1.0.0", "Vendor C", 3, AGORA__MODEL_SUBSCRIPTION, 5000, "EUR", 5000},
};

typedef struct job {
    int plugin;
    const char *status;
    int validated;
    char uids[5][64];
    const char *units[5];
    size_t n_units;
} job;

static void make_job(size_t i, job *j)
{
    memset(j, 0, sizeof *j);
    j->plugin = (int)(i % NPLUGINS);
    unsigned study = (unsigned)(i % 97) + 1, series = (unsigned)(i % 3) + 1;
    j->status = i % 11 == 5 ? "timeout" : i % 13 == 7 ? "protocol-error" : "ok";
    j->validated = strcmp(j->status, "ok") == 0;
    switch (plugins[j->plugin].model) {
    case AGORA__MODEL_PER_STUDY:
        snprintf(j->uids[0], 64, "1.2.826.0.1.3680043.8.498.%u", study);
        j->n_units = 1;
        break;
    case AGORA__MODEL_PER_SERIES:
        snprintf(j->uids[0], 64, "1.2.826.0.1.3680043.8.498.%u.%u", study, series);
        j->n_units = 1;
        break;
    case AGORA__MODEL_PER_INSTANCE:
        j->n_units = i % 5 + 1;
        for (size_t k = 0; k < j->n_units; k++)
            snprintf(j->uids[k], 64, "1.2.826.0.1.3680043.8.498.%u.%u.%zu", study, series, k + 1);
        break;
    default:
        j->n_units = 0;
    }
    for (size_t k = 0; k < j->n_units; k++)
        j->units[k] = j->uids[k];
}

/* queue[i] = id of job i, or "" when not queued yet. Tolerates a torn last line. */
static char (*read_queue(const char *home, size_t n))[33]
{
    char(*q)[33] = calloc(n, sizeof *q);
    char path[4096];
    snprintf(path, sizeof path, "%s/queue", home);
    FILE *f = fopen(path, "r");
    if (f == NULL || q == NULL)
        return q;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        size_t i;
        char id[40];
        if (sscanf(line, "%zu %39s", &i, id) == 2 && i < n && strlen(id) == 32 &&
            strchr(line, '\n'))
            memcpy(q[i], id, 33);
    }
    fclose(f);
    return q;
}

static void die(const char *what, const agora__error *err)
{
    fprintf(stderr, "crash_batch: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static int run(const char *home, size_t n)
{
    agora__error err = {0};
    agora__ledger *l = NULL;
    if (agora__ledger_open(home, secret, &l, &err) != 0)
        die("open", &err);
    char(*q)[33] = read_queue(home, n);
    char path[4096];
    snprintf(path, sizeof path, "%s/queue", home);
    int qfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (q == NULL || qfd < 0)
        die("queue", NULL);
    job jobs[BATCH];
    agora__ledger_outcome o[BATCH];
    size_t nb = 0;
    unsigned seed = (unsigned)getpid();
    for (size_t i = 0; i < n; i++) {
        if (q[i][0] == '\0') {
            /* Persist the id with the job before dispatch: what makes retries idempotent. */
            if (agora__ledger_mint(q[i], &err) != 0)
                die("mint", &err);
            char line[64];
            int len = snprintf(line, sizeof line, "%zu %s\n", i, q[i]);
            if (write(qfd, line, (size_t)len) != len || fdatasync(qfd) != 0)
                die("queue write", NULL);
        }
        /* "dispatch": a little work so kills land between mint and record too */
        for (unsigned spin = rand_r(&seed) % 20000u; spin > 0; spin--)
            __asm__ volatile("" ::: "memory");
        make_job(i, &jobs[nb]);
        o[nb] = (agora__ledger_outcome){.invocation_id = q[i],
                                        .status = jobs[nb].status,
                                        .validated = jobs[nb].validated,
                                        .units = jobs[nb].units,
                                        .n_units = jobs[nb].n_units,
                                        .wall_ms = i % 1000,
                                        .pricing = &plugins[jobs[nb].plugin]};
        if (++nb == BATCH || i + 1 == n) {
            agora__ledger_receipt rc[BATCH];
            if (agora__ledger_record_batch(l, o, nb, rc, &err) != 0)
                die("record", &err);
            size_t fresh = 0;
            for (size_t k = 0; k < nb; k++)
                fresh += !rc[k].duplicate;
            if (rand_r(&seed) % 8 == 0 && agora__ledger_record_batch(l, o, nb, NULL, &err) != 0)
                die("retry", &err);
            /* progress for the driver, which picks how many commits to let through */
            if (fresh > 0) {
                printf("committed %zu\n", i + 1);
                fflush(stdout);
            }
            nb = 0;
        }
    }
    close(qfd);
    free(q);
    agora__ledger_close(l);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct tally {
    int64_t inv_rows;
    int64_t units[NPLUGINS];
    int64_t sum_by_currency[2]; /* EUR, USD, over all periods */
    int bad;
} tally;

static int on_row(const json_t *row, void *ctx)
{
    tally *t = ctx;
    if (strcmp(json_string_value(json_object_get(row, "kind")), "invocation") == 0)
        t->inv_rows++;
    const char *pid = json_string_value(json_object_get(json_object_get(row, "plugin"), "id"));
    for (int p = 0; p < NPLUGINS; p++)
        if (strcmp(pid, plugins[p].plugin_id) == 0)
            t->units[p] += json_integer_value(json_object_get(row, "units"));
    const char *cur =
        json_string_value(json_object_get(json_object_get(row, "pricing"), "currency"));
    t->sum_by_currency[strcmp(cur, "USD") == 0] +=
        json_integer_value(json_object_get(row, "amount_minor"));
    return 0;
}

static int check(const char *home, size_t n, int full)
{
    agora__error err = {0};
    agora__ledger *l = NULL;
    if (agora__ledger_open(home, NULL, &l, &err) != 0)
        die("open", &err);
    int64_t bad = 0, rows = 0;
    if (agora__ledger_verify(l, &bad, &rows, &err) != 0)
        die("verify", &err);
    char(*q)[33] = read_queue(home, n);
    char **keys = calloc(n * 5 + 1, sizeof *keys);
    if (q == NULL || keys == NULL)
        die("memory", NULL);
    size_t nkeys = 0, recorded = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t seq = 0;
        if (q[i][0] == '\0' || agora__ledger_seq_of(l, q[i], &seq, &err) != 0) {
            if (full) {
                fprintf(stderr, "crash_batch: job %zu was never recorded\n", i);
                return 1;
            }
            continue;
        }
        recorded++;
        job j;
        make_job(i, &j);
        if (!j.validated)
            continue;
        char period[8];
        agora__ledger_id_period(q[i], period, &err);
        size_t nu = plugins[j.plugin].model == AGORA__MODEL_SUBSCRIPTION ? 1 : j.n_units;
        for (size_t k = 0; k < nu; k++) {
            keys[nkeys] = malloc(160);
            snprintf(keys[nkeys++], 160, "%d|%s|%s", j.plugin, nu == j.n_units ? j.units[k] : "",
                     period);
        }
    }
    qsort(keys, nkeys, sizeof *keys, cmp_str);
    int64_t expect_units[NPLUGINS] = {0};
    for (size_t k = 0; k < nkeys; k++)
        if (k == 0 || strcmp(keys[k], keys[k - 1]) != 0)
            expect_units[keys[k][0] - '0']++;
    tally t = {0};
    if (agora__ledger_export(l, 0, on_row, &t, &err) != 0)
        die("export", &err);
    int failed = 0;
    if (t.inv_rows != (int64_t)recorded) {
        fprintf(stderr,
                "crash_batch: %lld invocation rows for %zu recorded jobs (a duplicate or a "
                "stray row)\n",
                (long long)t.inv_rows, recorded);
        failed = 1;
    }
    int64_t expect_money[2] = {0};
    for (int p = 0; p < NPLUGINS; p++) {
        if (t.units[p] != expect_units[p]) {
            fprintf(stderr, "crash_batch: plugin %s charged %lld units, expected %lld\n",
                    plugins[p].plugin_id, (long long)t.units[p], (long long)expect_units[p]);
            failed = 1;
        }
        expect_money[strcmp(plugins[p].currency, "USD") == 0] +=
            expect_units[p] * plugins[p].price_minor;
    }
    for (int c = 0; c < 2; c++)
        if (t.sum_by_currency[c] != expect_money[c]) {
            fprintf(stderr, "crash_batch: %s rows sum to %lld, expected %lld\n", c ? "USD" : "EUR",
                    (long long)t.sum_by_currency[c], (long long)expect_money[c]);
            failed = 1;
        }
    /* Statements of the periods present add up to the same money. */
    json_t *periods = json_object();
    for (size_t i = 0; i < n; i++) {
        char period[8];
        if (q[i][0] && agora__ledger_id_period(q[i], period, &err) == 0 &&
            !json_object_get(periods, period)) {
            json_t *s = NULL;
            if (agora__ledger_statement(l, period, &s, &err) != 0)
                die("statement", &err);
            json_object_set_new(periods, period,
                                json_object_get(s, "totals")
                                    ? json_incref(json_object_get(s, "totals"))
                                    : json_array());
            json_decref(s);
        }
    }
    int64_t stmt[2] = {0};
    const char *k;
    json_t *v;
    json_object_foreach(periods, k, v)
    {
        size_t i;
        json_t *tot;
        json_array_foreach(v, i, tot)
        {
            const char *cur = json_string_value(json_object_get(tot, "currency"));
            int64_t g = json_integer_value(json_object_get(tot, "gross_minor"));
            int64_t vs = json_integer_value(json_object_get(tot, "vendor_share_minor"));
            int64_t ps = json_integer_value(json_object_get(tot, "platform_share_minor"));
            stmt[strcmp(cur, "USD") == 0] += g;
            if (vs + ps != g) {
                fprintf(stderr, "crash_batch: statement shares do not add up\n");
                failed = 1;
            }
        }
    }
    if (stmt[0] != expect_money[0] || stmt[1] != expect_money[1]) {
        fprintf(stderr, "crash_batch: statements total %lld EUR %lld USD, expected %lld %lld\n",
                (long long)stmt[0], (long long)stmt[1], (long long)expect_money[0],
                (long long)expect_money[1]);
        failed = 1;
    }
    json_t *out = json_pack("{s:I,s:I,s:o}", "recorded", (json_int_t)recorded, "rows",
                            (json_int_t)rows, "period_totals", periods);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    puts(s);
    free(s);
    json_decref(out);
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
    free(q);
    agora__ledger_close(l);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: crash_batch run|check HOME N [full]\n");
        return 2;
    }
    size_t n = strtoul(argv[3], NULL, 10);
    if (n == 0 || n > 1000000)
        return 2;
    if (strcmp(argv[1], "run") == 0)
        return run(argv[2], n);
    if (strcmp(argv[1], "check") == 0)
        return check(argv[2], n, argc > 4 && strcmp(argv[4], "full") == 0);
    return 2;
}
