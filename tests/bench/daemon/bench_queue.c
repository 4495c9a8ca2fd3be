/*
 * Job queue benchmark (a program, not a test): what the durable queue costs per study, against
 * the floor of the same disk and pragmas measured in the same run.
 *   enqueue     jobs of 300 instances (a CT series) enqueued, one durable commit each, vs
 *               plain one-row INSERT commits on a table of the same width (the fsync floor);
 *   lifecycle   each job through claim -> run settled in the ledger transaction -> send claim
 *               -> delivered (4 durable commits, one of them the ledger append), vs 4 plain
 *               one-row UPDATE commits per job;
 *   claims x2   two connections (threads) claiming and finishing at once, vs one.
 * Medians of 3 runs, each on a fresh database. The clinic target for scale: MONAI's stated
 * 400 studies/h, ~0.11 studies/s.
 * usage: bench_daemon_queue [DIR] [JOBS]   (DIR default: a temp dir under the current dir;
 *        JOBS default 1000). Build without sanitizers for real figures.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common.h"
#include "ledger.h"
#include "queue.h"

#define N_SOP 300

static const uint8_t secret[32] = {42};
static agora__ledger_pricing pricing = {"org.example.bench",    "1.0.0", "Bench Vendor", 1,
                                        AGORA__MODEL_PER_STUDY, 125,     "EUR",          7000};

static double now_s(void)
{
    return (double)agora__now_ns() / 1e9;
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

static void fresh(const char *dir, char *db, size_t size)
{
    snprintf(db, size, "%s/ledger.db", dir);
    char p[4200];
    unlink(db);
    snprintf(p, sizeof p, "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db);
    unlink(p);
}

static double enqueue_all(const char *db, int jobs)
{
    agora__queue *q = NULL;
    agora__error err = {0};
    if (agora__queue_open_path(db, &q, &err) != 0)
        die("open", &err);
    static char uids[N_SOP][40];
    const char *ptrs[N_SOP];
    const char *series[] = {"1.2.3.9"};
    double t = now_s();
    for (int i = 0; i < jobs; i++) {
        char study[32];
        snprintf(study, sizeof study, "1.2.3.%d", i);
        for (int k = 0; k < N_SOP; k++) {
            snprintf(uids[k], sizeof uids[k], "1.2.3.%d.%d", i, k);
            ptrs[k] = uids[k];
        }
        agora__job_spec s = {.plugin_id = "org.example.bench",
                             .plugin_version = "1.0.0",
                             .study_uid = study,
                             .sop_uids = ptrs,
                             .n_sop = N_SOP,
                             .scope = "study",
                             .series_uids = series,
                             .n_series = 1,
                             .priority = i % 5 == 0,
                             .send_to = "pacs"};
        int64_t id;
        if (agora__queue_enqueue(q, &s, &id, NULL, &err) != 0)
            die("enqueue", &err);
    }
    t = now_s() - t;
    agora__queue_close(q);
    return t;
}

static double lifecycle_all(const char *db, int jobs)
{
    agora__queue *q = NULL;
    agora__ledger *l = NULL;
    agora__error err = {0};
    if (agora__queue_open_path(db, &q, &err) != 0 ||
        agora__ledger_open_path(db, secret, &l, &err) != 0)
        die("open", &err);
    double t = now_s();
    for (int i = 0; i < jobs; i++) {
        agora__job *j = NULL;
        if (agora__queue_claim(q, AGORA__QJOB_WAITING, "bench", 60000, &j, &err) != 0 || !j)
            die("claim", &err);
        const char *units[] = {j->study_uid};
        agora__ledger_outcome o = {.invocation_id = j->invocation_id,
                                   .status = "ok",
                                   .validated = 1,
                                   .units = units,
                                   .n_units = 1,
                                   .pricing = &pricing};
        agora__queue_settle st = {j->id, j->lease_token, AGORA__QJOB_SENDING, NULL, NULL};
        if (agora__ledger_record_with(l, &o, agora__queue_settle_cb, &st, NULL, &err) != 0)
            die("settle", &err);
        agora__job_free(j);
        if (agora__queue_claim(q, AGORA__QJOB_SENDING, "bench", 60000, &j, &err) != 0 || !j)
            die("send claim", &err);
        if (agora__queue_send_result(q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err) != 0)
            die("delivered", &err);
        agora__job_free(j);
    }
    t = now_s() - t;
    agora__ledger_close(l);
    agora__queue_close(q);
    return t;
}

/* The floor: one-row commits with the same pragmas (INSERT n rows, then n x 4 UPDATEs). */
static void floor_all(const char *db, int jobs, double *ins_s, double *upd_s)
{
    sqlite3 *h = NULL;
    if (sqlite3_open(db, &h) != SQLITE_OK)
        die("open floor", NULL);
    sqlite3_busy_timeout(h, 10000);
    sqlite3_exec(h,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(id INTEGER "
                 "PRIMARY KEY, k CHAR(64) UNIQUE, s VARCHAR(16), a BIGINT, b BIGINT, c TEXT);",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL, *upd = NULL;
    sqlite3_prepare_v2(h, "INSERT INTO t(k, s, a, b, c) VALUES (?1, 'waiting', 0, 0, '')", -1, &ins,
                       NULL);
    sqlite3_prepare_v2(h, "UPDATE t SET a = a + 1, s = 'x' WHERE id = ?1", -1, &upd, NULL);
    double t = now_s();
    for (int i = 0; i < jobs; i++) {
        char k[65];
        snprintf(k, sizeof k, "%064d", i);
        sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_bind_text(ins, 1, k, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die("floor insert", NULL);
        sqlite3_reset(ins);
        sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    }
    *ins_s = now_s() - t;
    t = now_s();
    for (int i = 0; i < jobs * 4; i++) {
        sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_bind_int(upd, 1, i / 4 + 1);
        if (sqlite3_step(upd) != SQLITE_DONE)
            die("floor update", NULL);
        sqlite3_reset(upd);
        sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    }
    *upd_s = now_s() - t;
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    sqlite3_close(h);
}

typedef struct worker {
    const char *db;
    const char *host;
    int n;
} worker;

static void *claim_loop(void *arg)
{
    worker *w = arg;
    agora__queue *q = NULL;
    agora__error err = {0};
    if (agora__queue_open_path(w->db, &q, &err) != 0)
        die("open", &err);
    for (;;) {
        agora__job *j = NULL;
        if (agora__queue_claim(q, AGORA__QJOB_WAITING, w->host, 60000, &j, &err) != 0)
            die("claim", &err);
        if (j == NULL)
            break;
        if (agora__queue_run_failed(q, j, 1, "bench", NULL, 0, &err) != 0)
            die("finish", &err);
        agora__job_free(j);
        w->n++;
    }
    agora__queue_close(q);
    return NULL;
}

static double claims(const char *db, int threads)
{
    worker w[2] = {{db, "host-a", 0}, {db, "host-b", 0}};
    pthread_t t[2];
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, claim_loop, &w[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    char dir[4096];
    if (argc > 1) {
        if (argv[1][0] == '\0')
            die("DIR must not be empty", NULL);
        agora__strlcpy(dir, argv[1], sizeof dir);
    } else {
        strcpy(dir, "bench-queue-XXXXXX");
        if (mkdtemp(dir) == NULL)
            die("mkdtemp", NULL);
    }
    int jobs = argc > 2 ? atoi(argv[2]) : 1000;
    if (jobs < 10 || jobs > 1000000)
        die("JOBS must be 10..1000000", NULL);
    char db[4200];
    double enq[3], life[3], fins[3], fupd[3], c1[3], c2[3];
    for (int r = 0; r < 3; r++) {
        fresh(dir, db, sizeof db);
        enq[r] = enqueue_all(db, jobs);
        life[r] = lifecycle_all(db, jobs);
        fresh(dir, db, sizeof db);
        floor_all(db, jobs, &fins[r], &fupd[r]);
        fresh(dir, db, sizeof db);
        enqueue_all(db, jobs);
        c1[r] = claims(db, 1);
        fresh(dir, db, sizeof db);
        enqueue_all(db, jobs);
        c2[r] = claims(db, 2);
    }
    double e = median3(enq), l = median3(life), fi = median3(fins), fu = median3(fupd);
    double one = median3(c1), two = median3(c2);
    printf("queue bench: %d jobs of %d instances, medians of 3, %s\n", jobs, N_SOP, dir);
    printf("  enqueue      %8.0f jobs/s (%.2f ms/job)   floor: one-row INSERT commits %8.0f/s   "
           "ratio %.2fx\n",
           jobs / e, 1e3 * e / jobs, jobs / fi, e / fi);
    printf("  lifecycle    %8.0f jobs/s (%.2f ms/job, 4 commits)   floor: 4 one-row UPDATE "
           "commits %8.0f jobs/s   ratio %.2fx\n",
           jobs / l, 1e3 * l / jobs, jobs / fu, l / fu);
    printf("  claim+finish %8.0f jobs/s with 1 connection, %8.0f jobs/s with 2   ratio %.2fx\n",
           jobs / one, jobs / two, one / two);
    printf("  per study (enqueue + lifecycle): %.2f ms; at 400 studies/h that is %.4f%% of one "
           "core's time\n",
           1e3 * (e + l) / jobs, 100.0 * (e + l) / jobs * 400.0 / 3600.0);
    fresh(dir, db, sizeof db);
    if (argc <= 1)
        rmdir(dir);
    return 0;
}
