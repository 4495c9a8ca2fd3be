/*
 * The receive spool (host/dimse/spool.h) as two writers in one process use it: the DIMSE
 * listener and the STOW-RS thread each hold their own handle on one HOME/spool. The watermark
 * reads agora__spool_usage, so each handle must see the other's receipts (within the TTL) and its
 * own at once. Retention (agora__spool_reap) with an injected clock: only dispatched or
 * discarded studies without live jobs, after the retention period, never on the first call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common.h"
#include "queue.h"
#include "spool.h"

#define CT  "1.2.840.10008.5.1.4.1.1.2"
#define ELE "1.2.840.10008.1.2.1"

static char home[64];

static int setup(void **state)
{
    (void)state;
    snprintf(home, sizeof home, "/tmp/agora-spool-XXXXXX");
    return mkdtemp(home) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    return system(cmd) == 0 ? 0 : -1;
}

/* One receipt of n data set bytes; dimse: as the listener records it, else as STOW-RS does. */
static void receive(agora__spool *sp, const char *sop, size_t n, int dimse)
{
    agora__spool_instance inst = {
        CT, sop, ELE, dimse ? "MODALITY" : "STOW", dimse ? "AGORA" : "", dimse ? "dimse" : "stow"};
    agora__spool_txn *t = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_begin(sp, &inst, &t, &e), 0);
    uint8_t *b = calloc(1, n);
    assert_non_null(b);
    assert_int_equal(agora__spool_write(t, b, n, &e), 0);
    free(b);
    int dup = -1;
    assert_int_equal(agora__spool_commit(t, &dup, &e), 0);
    assert_int_equal(dup, 0);
}

static void usage_sees_every_handle(void **state)
{
    (void)state;
    agora__spool *dimse = NULL, *stow = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_open(home, 1u << 20, &dimse, &e), 0);
    assert_int_equal(agora__spool_open(home, 1u << 20, &stow, &e), 0);
    uint64_t b0 = 1, c0 = 1, b = 0, c = 0;
    assert_int_equal(agora__spool_usage(stow, &b0, &c0, &e), 0);
    assert_int_equal(b0, 0);
    assert_int_equal(c0, 0);

    /* A DIMSE receipt: the listener's own usage has it at once (no wait for the TTL)... */
    receive(dimse, "1.2.3.1", 1000, 1);
    assert_int_equal(agora__spool_usage(dimse, &b, &c, &e), 0);
    assert_int_equal(c, 1);
    assert_true(b > 1000); /* data set + the meta group the spool writes */
    uint64_t one = b;
    /* ...the STOW-RS handle within the TTL (here: its cache dropped, as the TTL would). */
    agora__spool_usage_invalidate(stow);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 1);
    assert_int_equal(b, one);

    /* A STOW-RS receipt counts against the DIMSE listener's watermark. */
    receive(stow, "1.2.3.2", 3000, 0);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 2);
    agora__spool_usage_invalidate(dimse);
    assert_int_equal(agora__spool_usage(dimse, &b, &c, &e), 0);
    assert_int_equal(c, 2);
    assert_true(b > one + 3000);
    uint64_t two = b;
    /* The per-handle view (agora__spool_bytes) does not see the other's receipt: the reason the
     * watermark no longer uses it. */
    assert_true(agora__spool_bytes(dimse) < two);

    /* Within the TTL the cache answers without the other handle's newest receipt; after it, the
     * database is read again. */
    receive(dimse, "1.2.3.3", 10, 1);
    agora__spool_usage_invalidate(stow);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 3);
    receive(dimse, "1.2.3.4", 10, 1);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 3); /* cached */
    usleep((AGORA__SPOOL_USAGE_TTL_MS + 100) * 1000);
    assert_int_equal(agora__spool_usage(stow, &b, &c, &e), 0);
    assert_int_equal(c, 4);

    /* A third handle (another process reopening) reads the same totals. */
    agora__spool *late = NULL;
    assert_int_equal(agora__spool_open(home, 1u << 20, &late, &e), 0);
    uint64_t b3 = 0, c3 = 0;
    assert_int_equal(agora__spool_usage(late, &b3, &c3, &e), 0);
    assert_int_equal(c3, 4);
    assert_int_equal(b3, b);
    agora__spool_close(late);
    agora__spool_close(stow);
    agora__spool_close(dimse);
}

/* The cost the watermark pays when its cache has expired (printed; the TTL bounds how often). */
static void usage_cost(void **state)
{
    (void)state;
    agora__spool *sp = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), 0);
    uint64_t t0 = agora__now_ns();
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        agora__spool_usage_invalidate(sp);
        assert_int_equal(agora__spool_usage(sp, NULL, NULL, &e), 0);
    }
    uint64_t uncached = (agora__now_ns() - t0) / N;
    t0 = agora__now_ns();
    for (int i = 0; i < N; i++)
        assert_int_equal(agora__spool_usage(sp, NULL, NULL, &e), 0);
    uint64_t cached = (agora__now_ns() - t0) / N;
    printf("spool usage: %llu ns read from the database, %llu ns cached (small spool)\n",
           (unsigned long long)uncached, (unsigned long long)cached);
    assert_true(cached <= uncached + 1000);
    agora__spool_close(sp);
}

/* ---- retention ---- */

#define DAY (24ll * 3600 * 1000)
#define T0  (1800000000000ll) /* an arbitrary "now" in ms */

static sqlite3 *open_db(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/spool/spool.db", home);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* What the intake records for a grouped study (one series, the given instances). */
static void group_study(sqlite3 *db, const char *study, const char *const *sops, size_t n,
                        const char *state, int64_t updated)
{
    char sql[1024];
    for (size_t i = 0; i < n; i++) {
        snprintf(sql, sizeof sql,
                 "UPDATE spool_instance SET state = 'grouped', study_instance_uid = '%s',"
                 " series_instance_uid = '%s.1' WHERE sop_instance_uid = '%s'",
                 study, study, sops[i]);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO spool_study (study_instance_uid, study_key, state, generation,"
             " first_arrival_ms, last_arrival_ms, created_at_ms, updated_at_ms, dispatched_at_ms,"
             " n_instances) VALUES ('%s', substr(hex(randomblob(8)), 1, 16), '%s', 1, %lld, %lld,"
             " %lld, %lld, %lld, %zu)",
             study, state, (long long)updated, (long long)updated, (long long)updated,
             (long long)updated, (long long)updated, n);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static int64_t count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int exists(const char *study, sqlite3 *db)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM spool_study WHERE study_instance_uid = '%s'",
             study);
    return count(db, sql) > 0;
}

/* The fake queue: study "1.9.2" has a live job, "1.9.3" a job finished at fake_finished. */
static int64_t fake_finished;
static int fake_calls;
static int fake_jobs(void *arg, const char *study, uint64_t *live, int64_t *last_ms,
                     agora__error *err)
{
    (void)arg;
    (void)err;
    fake_calls++;
    *live = strcmp(study, "1.9.2") == 0;
    *last_ms = strcmp(study, "1.9.3") == 0 ? fake_finished : 0;
    return 0;
}

static int failing_jobs(void *arg, const char *study, uint64_t *live, int64_t *last_ms,
                        agora__error *err)
{
    (void)arg;
    (void)study;
    (void)live;
    (void)last_ms;
    return agora__error_set(err, AGORA__EIO, "queue unreadable");
}

static int file_count(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "find '%s/spool/in' -type f | wc -l", home);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void reap_after_retention(void **state)
{
    (void)state;
    agora__spool *sp = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), 0);
    /* Five studies: 1 dispatched (jobs all done long ago), 2 dispatched with a live job, 3
     * dispatched with a job that finished recently, 4 discarded, 5 still receiving; and one
     * instance not grouped yet. All last changed 4 days before T0. */
    const char *s1[] = {"1.9.1.1", "1.9.1.2"}, *s2[] = {"1.9.2.1"}, *s3[] = {"1.9.3.1"},
               *s4[] = {"1.9.4.1"}, *s5[] = {"1.9.5.1"};
    const char *const *all[] = {s1, s2, s3, s4, s5};
    size_t sizes[] = {2, 1, 1, 1, 1};
    for (size_t k = 0; k < 5; k++)
        for (size_t i = 0; i < sizes[k]; i++)
            receive(sp, all[k][i], 2000, 1);
    receive(sp, "1.9.6.1", 2000, 0); /* stays 'received' */
    sqlite3 *db = open_db();
    int64_t old = T0 - 4 * DAY;
    group_study(db, "1.9.1", s1, 2, "dispatched", old);
    group_study(db, "1.9.2", s2, 1, "dispatched", old);
    group_study(db, "1.9.3", s3, 1, "dispatched", old);
    group_study(db, "1.9.4", s4, 1, "discarded", old);
    group_study(db, "1.9.5", s5, 1, "receiving", old);
    fake_finished = T0 - DAY; /* study 3's job finished a day ago: inside the 3 days */
    assert_int_equal(file_count(), 7);
    uint64_t used0 = 0;
    assert_int_equal(agora__spool_usage(sp, &used0, NULL, &e), 0);

    agora__spool_reap_stats rs;
    /* Refused: no queue, a retention under an hour. */
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, NULL, NULL, &rs, &e),
        AGORA_EINVAL);
    assert_int_equal(agora__spool_reap(sp, T0, 1000, fake_jobs, NULL, &rs, &e), AGORA_EINVAL);
    /* The first call only arms: never at start-up, however old the studies look. */
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, fake_jobs, NULL, &rs, &e), 0);
    assert_int_equal(rs.armed, 1);
    assert_int_equal(rs.studies, 0);
    assert_int_equal(fake_calls, 0);
    assert_int_equal(file_count(), 7);
    /* Inside the retention period (4 days old, retention 5 days): nothing. */
    assert_int_equal(agora__spool_reap(sp, T0, 5 * DAY, fake_jobs, NULL, &rs, &e), 0);
    assert_int_equal(rs.armed, 0);
    assert_int_equal(rs.studies, 0);
    assert_int_equal(file_count(), 7);
    /* A queue that cannot be read: fail closed, nothing removed. */
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, failing_jobs, NULL, &rs, &e),
        AGORA__EIO);
    assert_int_equal(file_count(), 7);
    /* After 3 days: studies 1 and 4 go; 2 (live job) and 3 (finished a day ago) stay; 5 and the
     * ungrouped instance are never candidates. */
    fake_calls = 0;
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, fake_jobs, NULL, &rs, &e), 0);
    assert_int_equal(rs.studies, 2);
    assert_int_equal(rs.instances, 3);
    assert_int_equal(rs.kept_busy, 2);
    assert_int_equal(rs.files_missing, 0);
    assert_int_equal(fake_calls, 4);
    assert_true(rs.bytes > 3 * 2000);
    assert_int_equal(file_count(), 4);
    assert_false(exists("1.9.1", db));
    assert_false(exists("1.9.4", db));
    assert_true(exists("1.9.2", db));
    assert_true(exists("1.9.3", db));
    assert_true(exists("1.9.5", db));
    assert_int_equal(count(db, "SELECT COUNT(*) FROM spool_instance"), 4);
    assert_int_equal(
        count(db, "SELECT COUNT(*) FROM spool_series WHERE study_instance_uid = '1.9.1'"), 0);
    /* The watermark sees the space at once, for this handle and (from the database) others. */
    uint64_t used1 = 0, c1 = 0;
    assert_int_equal(agora__spool_usage(sp, &used1, &c1, &e), 0);
    assert_int_equal(used1, used0 - rs.bytes);
    assert_int_equal(c1, 4);
    /* Study 3 once its job is 3 days old; study 2 never while its job is live. */
    fake_finished = T0 - 3 * DAY - 1;
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, fake_jobs, NULL, &rs, &e), 0);
    assert_int_equal(rs.studies, 1);
    assert_int_equal(rs.kept_busy, 1);
    assert_false(exists("1.9.3", db));
    assert_true(exists("1.9.2", db));

    /* The real queue: a waiting job for study 2 keeps it; the queue answers for study 5 too. */
    agora__queue *q = NULL;
    assert_int_equal(agora__queue_open(home, &q, &e), 0);
    const char *sop[] = {"1.9.2.1"}, *ser[] = {"1.9.2.1"};
    agora__job_spec js = {.plugin_id = "org.example.a",
                          .plugin_version = "1.0.0",
                          .study_uid = "1.9.2",
                          .sop_uids = sop,
                          .n_sop = 1,
                          .scope = "study",
                          .series_uids = ser,
                          .n_series = 1,
                          .priority = 0,
                          .send_to = "",
                          .rule_id = ""};
    int64_t id = 0;
    int dup = 0;
    assert_int_equal(agora__queue_enqueue(q, &js, &id, &dup, &e), 0);
    uint64_t live = 0;
    int64_t last = 0;
    assert_int_equal(agora__queue_study_jobs(q, "1.9.2", &live, &last, &e), 0);
    assert_int_equal(live, 1);
    assert_true(last > 0);
    assert_int_equal(agora__queue_study_jobs(q, "1.9.5", &live, &last, &e), 0);
    assert_int_equal(live, 0);
    assert_int_equal(last, 0);
    assert_int_equal(agora__spool_reap(sp, T0 + 30 * DAY, AGORA__SPOOL_RETENTION_DEFAULT_MS,
                                       agora__queue_study_jobs_fn, q, &rs, &e),
                     0);
    assert_int_equal(rs.studies, 0);
    assert_int_equal(rs.kept_busy, 1);
    assert_true(exists("1.9.2", db));
    assert_int_equal(agora__queue_cancel(q, id, &e), 0);
    /* Cancelled: finished; its updated_ms (wall clock) is far before T0 + 30 days. */
    assert_int_equal(agora__spool_reap(sp, T0 + 30 * DAY, AGORA__SPOOL_RETENTION_DEFAULT_MS,
                                       agora__queue_study_jobs_fn, q, &rs, &e),
                     0);
    assert_int_equal(rs.studies, 1);
    assert_false(exists("1.9.2", db));
    assert_int_equal(file_count(), 2); /* study 5's and the ungrouped instance's */
    agora__queue_close(q);
    sqlite3_close(db);
    agora__spool_close(sp);

    /* A new handle (a restart) arms again: its first call removes nothing. */
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), 0);
    db = open_db();
    const char *s7[] = {"1.9.7.1"};
    receive(sp, "1.9.7.1", 100, 1);
    group_study(db, "1.9.7", s7, 1, "discarded", T0 - 10 * DAY);
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, fake_jobs, NULL, &rs, &e), 0);
    assert_int_equal(rs.armed, 1);
    assert_true(exists("1.9.7", db));
    assert_int_equal(
        agora__spool_reap(sp, T0, AGORA__SPOOL_RETENTION_DEFAULT_MS, fake_jobs, NULL, &rs, &e), 0);
    assert_false(exists("1.9.7", db));
    sqlite3_close(db);
    agora__spool_close(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(usage_sees_every_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_cost, setup, teardown),
        cmocka_unit_test_setup_teardown(reap_after_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
