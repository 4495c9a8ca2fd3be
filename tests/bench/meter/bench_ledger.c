/*
 * Ledger benchmarks (a program, not a test). Targets: appends >= 10,000 invocations/s with
 * durable commits (WAL, synchronous=FULL); `ledger verify` over 1,000,000 rows <= 10 s; the
 * statement of a month of 1,000,000 invocations <= 2 s. Each figure comes with a baseline
 * measured in the same run on the same disk:
 *   append    vs plain SQLite INSERTs of rows of the same width, same group size, same pragmas
 *             (no hash chain, no billing keys, no duplicate check);
 *   verify    vs a plain scan reading every column of every row (no hashing);
 *   statement vs SELECT sum(amount_minor) over the whole table.
 * usage: bench_meter_ledger [DIR] [ROWS]   (DIR default: a temp dir under the current dir;
 *        ROWS default 1000000). Build without sanitizers for real figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ledger.h"

static const uint8_t secret[32] = {42};
#define MONTH_MS 1772323200000ULL /* 2026-03-01T00:00:00Z */

static double now_s(void)
{
    return (double)agora__now_ns() / 1e9;
}

/* CPU seconds (user + system) of this process: the machine may be shared, so wall time
 * alone can overstate the cost. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median3(double v[3])
{
    qsort(v, 3, sizeof v[0], cmp_d);
    return v[1];
}

static void die(const char *what, const agora__error *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static agora__ledger_pricing pricing = {"org.example.bench",    "1.0.0", "Bench Vendor", 1,
                                        AGORA__MODEL_PER_STUDY, 125,     "EUR",          7000};

/* Append n invocations in groups of g into ledger l; unique studies so every row charges. */
static double append(agora__ledger *l, size_t n, size_t g, uint64_t base_ms, size_t study0)
{
    agora__ledger_outcome *o = calloc(g, sizeof *o);
    char(*ids)[33] = calloc(g, sizeof *ids);
    char(*uids)[64] = calloc(g, sizeof *uids);
    const char **units = calloc(g, sizeof *units);
    agora__error err = {0};
    double t0 = now_s();
    for (size_t done = 0; done < n;) {
        size_t k = n - done < g ? n - done : g;
        for (size_t i = 0; i < k; i++) {
            /* spread over the month: 2.6 s apart for 1M rows */
            if (agora__ledger_mint_at(base_ms + (done + i) * 2592ULL, ids[i], &err) != 0)
                die("mint", &err);
            snprintf(uids[i], 64, "1.2.826.0.1.3680043.8.498.%zu", study0 + done + i);
            units[i] = uids[i];
            o[i] = (agora__ledger_outcome){.invocation_id = ids[i],
                                           .status = "ok",
                                           .validated = 1,
                                           .units = &units[i],
                                           .n_units = 1,
                                           .wall_ms = 100,
                                           .pricing = &pricing};
            if ((done + i) % 10 == 9)
                o[i].status = "timeout", o[i].validated = 0;
        }
        if (agora__ledger_record_batch(l, o, k, NULL, &err) != 0)
            die("record", &err);
        done += k;
    }
    double dt = now_s() - t0;
    free(o);
    free(ids);
    free(uids);
    free(units);
    return dt;
}

/* Baseline: plain INSERTs of the same width, same pragmas and group size. */
static double plain_insert(const char *path, size_t n, size_t g)
{
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(seq "
                 "INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER, d TEXT, e TEXT, f TEXT, "
                 "g TEXT, h INTEGER, i TEXT, j INTEGER, k TEXT, l INTEGER, m TEXT, "
                 "n INTEGER, o INTEGER, p INTEGER, q INTEGER, r TEXT, s INTEGER, u TEXT, "
                 "v INTEGER, w INTEGER, x INTEGER, y TEXT, z TEXT)",
                 NULL, NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db,
                       "INSERT INTO t VALUES (NULL, 'invocation', ?1, 1, '2026-03', "
                       "'org.example.bench', '1.0.0', 'Bench Vendor', 1, 'per-study', 125, "
                       "'EUR', 7000, 'ok', 1, 1, 1, 125, ?2, NULL, '', 100, 0, 0, ?2, ?2)",
                       -1, &st, NULL);
    char id[33], h[65];
    memset(h, 'a', 64);
    h[64] = 0;
    agora__error err = {0};
    double t0 = now_s();
    for (size_t done = 0; done < n;) {
        size_t k = n - done < g ? n - done : g;
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        for (size_t i = 0; i < k; i++) {
            agora__ledger_mint_at(MONTH_MS, id, &err);
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, h, -1, SQLITE_STATIC);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        done += k;
    }
    double dt = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return dt;
}

static double scan(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    double t0 = now_s();
    int64_t acc = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++)
            acc += sqlite3_column_bytes(st, c);
    double dt = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return acc >= 0 ? dt : -1;
}

static void rm_db(const char *path)
{
    char p[4200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

int main(int argc, char **argv)
{
    char dir[4096];
    if (argc > 1 && argv[1][0] != '\0')
        snprintf(dir, sizeof dir, "%s", argv[1]);
    else if (mkdtemp(strcpy(dir, "./bench-meter-XXXXXX")) == NULL)
        return 1;
    size_t rows = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
    char db[4200], plain[4200];
    snprintf(db, sizeof db, "%s/ledger.db", dir);
    snprintf(plain, sizeof plain, "%s/plain.db", dir);
    agora__error err = {0};
    printf("ledger benchmarks in %s (WAL, synchronous=FULL; medians of 3)\n", dir);
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("machine load average at start: %.2f (on %ld CPUs)\n", load[0],
               sysconf(_SC_NPROCESSORS_ONLN));

    /* 1. append throughput per group size */
    static const size_t groups[] = {1, 16, 64, 256, 1024};
    printf("\n%-8s %10s %14s %14s %8s\n", "group", "n", "ledger inv/s", "plain rows/s", "ratio");
    for (size_t gi = getenv("BENCH_SKIP_GROUPS") ? sizeof groups / sizeof groups[0] : 0;
         gi < sizeof groups / sizeof groups[0]; gi++) {
        size_t g = groups[gi], n = g == 1 ? 500 : 20000;
        double tl[3], tp[3];
        for (int r = 0; r < 3; r++) {
            rm_db(db);
            rm_db(plain);
            agora__ledger *l;
            if (agora__ledger_open_path(db, secret, &l, &err) != 0)
                die("open", &err);
            tl[r] = append(l, n, g, MONTH_MS, 0);
            agora__ledger_close(l);
            tp[r] = plain_insert(plain, n, g);
        }
        double ml = median3(tl), mp = median3(tp);
        printf("%-8zu %10zu %14.0f %14.0f %8.2f\n", g, n, n / ml, n / mp, (n / ml) / (n / mp));
    }
    rm_db(plain);

    /* 2. verify and 3. statement over `rows` rows in one month */
    rm_db(db);
    agora__ledger *l;
    if (agora__ledger_open_path(db, secret, &l, &err) != 0)
        die("open", &err);
    double c0 = cpu_s();
    double tfill = append(l, rows, AGORA__LEDGER_MAX_BATCH, MONTH_MS, 0);
    double cfill = cpu_s() - c0;
    printf("\nfilled %zu rows in %.1f s wall, %.1f s CPU (%.0f inv/s wall at group %d)\n", rows,
           tfill, cfill, rows / tfill, AGORA__LEDGER_MAX_BATCH);
    double tv[3], tb[3], ts[3], tsb[3], cv[3], cs[3];
    for (int r = 0; r < 3; r++) {
        int64_t bad, n;
        double t0 = now_s();
        c0 = cpu_s();
        if (agora__ledger_verify(l, &bad, &n, &err) != 0 || (size_t)n != rows)
            die("verify", &err);
        tv[r] = now_s() - t0;
        cv[r] = cpu_s() - c0;
        tb[r] = scan(db, "SELECT * FROM entries ORDER BY seq");
        json_t *s = NULL;
        t0 = now_s();
        c0 = cpu_s();
        if (agora__ledger_statement(l, "2026-03", &s, &err) != 0)
            die("statement", &err);
        ts[r] = now_s() - t0;
        cs[r] = cpu_s() - c0;
        json_t *tot = json_array_get(json_object_get(s, "totals"), 0);
        if (r == 0)
            printf("statement 2026-03: gross %lld, vendor %lld, platform %lld minor units EUR\n",
                   (long long)json_integer_value(json_object_get(tot, "gross_minor")),
                   (long long)json_integer_value(json_object_get(tot, "vendor_share_minor")),
                   (long long)json_integer_value(json_object_get(tot, "platform_share_minor")));
        json_decref(s);
        tsb[r] = scan(db, "SELECT sum(amount_minor) FROM entries");
    }
    double mv = median3(tv), mb = median3(tb), ms = median3(ts), msb = median3(tsb);
    printf("\nverify    %zu rows: %6.2f s wall, %6.2f s CPU (target <= 10 s)  baseline plain "
           "scan %6.2f s  ratio %.1f\n",
           rows, mv, median3(cv), mb, mv / mb);
    printf("statement %zu rows: %6.2f s wall, %6.2f s CPU (target <= 2 s)   baseline sum() "
           "scan %6.2f s  ratio %.1f\n",
           rows, ms, median3(cs), msb, ms / msb);
    agora__ledger_close(l);
    if (argc <= 1 || argv[1][0] == '\0') {
        rm_db(db);
        rmdir(dir);
    }
    return 0;
}
