/*
 * The durable job queue (queue.h): schema, state names and the guarded transitions.
 *
 * Every transition is one UPDATE whose WHERE names the state(s) it leaves (and, for a worker's
 * own job, the lease token), inside BEGIN IMMEDIATE: the write lock is taken before anything is
 * read, so a read-then-update never races another connection, and SQLite's busy handler (10 s)
 * waits for the lock instead of failing with a stale snapshot. PostgreSQL: see queue.h.
 */
#include <ctype.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "ledger.h"
#include "queue.h"

#define QUEUE_FORMAT "agora.queue/1"

struct agora__queue {
    sqlite3 *db;
    uint64_t now_override; /* tests: 0 = the real clock */
};

static const char *const state_names[AGORA__QJOB_STATE_COUNT] = {
    [AGORA__QJOB_WAITING] = "waiting",     [AGORA__QJOB_RUNNING] = "running",
    [AGORA__QJOB_SENDING] = "sending",     [AGORA__QJOB_DONE] = "done",
    [AGORA__QJOB_RETRYABLE] = "retryable", [AGORA__QJOB_FAILED] = "failed",
    [AGORA__QJOB_CANCELLED] = "cancelled",
};

const char *agora__job_state_name(agora__job_state s)
{
    if ((unsigned)s >= AGORA__QJOB_STATE_COUNT)
        return NULL;
    return state_names[s];
}

int agora__job_state_parse(const char *name, agora__job_state *out)
{
    for (unsigned i = 0; name != NULL && i < AGORA__QJOB_STATE_COUNT; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *out = (agora__job_state)i;
            return 0;
        }
    return AGORA_EINVAL;
}

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS queue_meta(k VARCHAR(64) PRIMARY KEY, v VARCHAR(256) NOT NULL);"
    "INSERT INTO queue_meta(k, v) VALUES ('format', '" QUEUE_FORMAT "') ON CONFLICT (k) DO "
    "NOTHING;"
    "CREATE TABLE IF NOT EXISTS queue_job("
    " id INTEGER PRIMARY KEY,"
    " unique_key CHAR(64) NOT NULL UNIQUE,"
    " state VARCHAR(16) NOT NULL CHECK (state IN ('waiting','running','sending','done',"
    "'retryable','failed','cancelled')),"
    " phase VARCHAR(8) NOT NULL CHECK (phase IN ('run','send')),"
    " plugin_id VARCHAR(128) NOT NULL, plugin_version VARCHAR(64) NOT NULL,"
    " study_uid VARCHAR(64) NOT NULL, scope VARCHAR(8) NOT NULL, priority INTEGER NOT NULL,"
    " send_to VARCHAR(128) NOT NULL, rule_id VARCHAR(128) NOT NULL,"
    " invocation_id CHAR(32) NOT NULL,"
    " attempts INTEGER NOT NULL, run_attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL,"
    " next_attempt_at BIGINT NOT NULL,"
    " lease_owner VARCHAR(64), lease_token CHAR(32), leased_until BIGINT,"
    " last_error_class VARCHAR(64) NOT NULL, last_error VARCHAR(255) NOT NULL,"
    " n_series BIGINT NOT NULL, n_sop BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    /* The sets a job runs on: 'r' series (enqueue order), 'i' instances (sorted). */
    "CREATE TABLE IF NOT EXISTS queue_job_uid("
    " job_id BIGINT NOT NULL REFERENCES queue_job(id), kind CHAR(1) NOT NULL,"
    " ord BIGINT NOT NULL, uid VARCHAR(64) NOT NULL, PRIMARY KEY (job_id, kind, ord));"
    /* Claims read these in claim order and stop at the first due entry. */
    "CREATE INDEX IF NOT EXISTS queue_job_run ON queue_job(priority DESC, next_attempt_at, id)"
    " WHERE state IN ('waiting','retryable');"
    "CREATE INDEX IF NOT EXISTS queue_job_send ON queue_job(priority DESC, next_attempt_at, id)"
    " WHERE state = 'sending' AND lease_token IS NULL;"
    /* Rescue and requeue look at leased rows only. */
    "CREATE INDEX IF NOT EXISTS queue_job_lease ON queue_job(leased_until)"
    " WHERE lease_token IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS queue_job_owner ON queue_job(lease_owner)"
    " WHERE lease_token IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS queue_job_build ON queue_job(plugin_id, plugin_version, state);";

#define JOB_COLUMNS                                                                                \
    "id, unique_key, state, phase, plugin_id, plugin_version, study_uid, scope, priority, "        \
    "send_to, rule_id, invocation_id, attempts, run_attempts, max_attempts, next_attempt_at, "     \
    "lease_owner, lease_token, leased_until, last_error_class, last_error, n_series, n_sop, "      \
    "created_ms, updated_ms"

/* The lease columns cleared by every transition that ends a worker's hold. */
#define UNLEASE "lease_owner = NULL, lease_token = NULL, leased_until = NULL"

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_ms(const agora__queue *q)
{
    return q != NULL && q->now_override != 0 ? q->now_override : real_now_ms();
}

void agora__queue_set_now(agora__queue *q, uint64_t now)
{
    q->now_override = now;
}

static int sql_error(sqlite3 *db, agora__error *err, const char *what)
{
    int code = sqlite3_errcode(db) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return agora__error_set(err, AGORA__EAGAIN,
                                "job queue: %s: HOME/ledger.db stayed locked by another writer "
                                "for 10 s; try again",
                                what);
    return agora__error_set(err, AGORA_EINTERNAL,
                            "job queue: %s failed: %s; check the disk and that "
                            "HOME/ledger.db is a clinic ledger",
                            what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql, agora__error *err, const char *what)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(db, err, what);
    return 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, agora__error *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return sql_error(db, err, "preparing a statement");
    return 0;
}

static int begin(agora__queue *q, agora__error *err)
{
    return exec(q->db, "BEGIN IMMEDIATE", err, "starting a transaction");
}

/* COMMIT when rc is 0, else ROLLBACK; returns rc (or the commit's error). */
static int end(agora__queue *q, int rc, agora__error *err)
{
    if (rc == 0)
        rc = exec(q->db, "COMMIT", err, "committing");
    if (rc != 0)
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int is_alnum(int c)
{
    return isascii(c) && isalnum(c);
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_lower_digit(int c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

/* min..max chars (NULL counts as ""), each accepted by base or in extra. */
static int chars_ok(const char *s, size_t min, size_t max, int (*base)(int), const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!base((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
            return 0;
    return 1;
}

static int token_ok(const char *s, size_t min, size_t max, const char *extra)
{
    return chars_ok(s, min, max, is_alnum, extra);
}

static int uid_ok(const char *s)
{
    return chars_ok(s, 1, AGORA__QUEUE_UID_LEN, is_digit, ".");
}

static int class_ok(const char *s)
{
    return chars_ok(s, 1, AGORA__QUEUE_CLASS_LEN, is_lower_digit, "-");
}

static int check_class(const char *cls, agora__error *err)
{
    if (!class_ok(cls))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: an error class must be 1..%d characters of "
                                "[a-z0-9-] (e.g. \"connection-refused\")",
                                AGORA__QUEUE_CLASS_LEN);
    return 0;
}

/* An error message as stored: printable ASCII (others become '?'), at most ERROR_LEN bytes.
 * Messages can come from peers (a PACS's association rejection text): never trusted. */
static void sanitize(const char *in, char out[AGORA__QUEUE_ERROR_LEN + 1])
{
    size_t n = 0;
    for (; in != NULL && in[n] != '\0' && n < AGORA__QUEUE_ERROR_LEN; n++) {
        unsigned char c = (unsigned char)in[n];
        out[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[n] = '\0';
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    agora__strlcpy(dst, t ? (const char *)t : "", size);
}

static uint64_t col_u64(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : (uint64_t)v;
}

static void study_hash(const char *uid, char out[13])
{
    uint8_t h[32];
    char hex[65];
    agora__sha256(uid, strlen(uid), h);
    agora__hex(h, 32, hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

/* Fill j from a row selected with JOB_COLUMNS (the sets are not touched). */
static void read_job(sqlite3_stmt *st, agora__job *j)
{
    j->id = sqlite3_column_int64(st, 0);
    copy_col(st, 1, j->key, sizeof j->key);
    char state[16], phase[8];
    copy_col(st, 2, state, sizeof state);
    agora__job_state s = AGORA__QJOB_FAILED;
    (void)agora__job_state_parse(state, &s); /* the CHECK constraint keeps it known */
    j->state = s;
    copy_col(st, 3, phase, sizeof phase);
    j->send_phase = strcmp(phase, "send") == 0;
    copy_col(st, 4, j->plugin_id, sizeof j->plugin_id);
    copy_col(st, 5, j->plugin_version, sizeof j->plugin_version);
    copy_col(st, 6, j->study_uid, sizeof j->study_uid);
    study_hash(j->study_uid, j->study_hash);
    copy_col(st, 7, j->scope, sizeof j->scope);
    j->priority = sqlite3_column_int(st, 8);
    copy_col(st, 9, j->send_to, sizeof j->send_to);
    copy_col(st, 10, j->rule_id, sizeof j->rule_id);
    copy_col(st, 11, j->invocation_id, sizeof j->invocation_id);
    j->attempts = (unsigned)col_u64(st, 12);
    j->run_attempts = (unsigned)col_u64(st, 13);
    j->max_attempts = (unsigned)col_u64(st, 14);
    j->next_attempt_at = col_u64(st, 15);
    copy_col(st, 16, j->lease_owner, sizeof j->lease_owner);
    copy_col(st, 17, j->lease_token, sizeof j->lease_token);
    j->leased_until = col_u64(st, 18);
    copy_col(st, 19, j->last_error_class, sizeof j->last_error_class);
    copy_col(st, 20, j->last_error, sizeof j->last_error);
    j->n_series = (size_t)col_u64(st, 21);
    j->n_sop = (size_t)col_u64(st, 22);
    j->created_ms = col_u64(st, 23);
    j->updated_ms = col_u64(st, 24);
}

static void free_sets(agora__job *j)
{
    for (size_t i = 0; j->series_uids != NULL && i < j->n_series; i++)
        free(j->series_uids[i]);
    for (size_t i = 0; j->sop_uids != NULL && i < j->n_sop; i++)
        free(j->sop_uids[i]);
    free(j->series_uids);
    free(j->sop_uids);
    j->series_uids = j->sop_uids = NULL;
}

void agora__job_free(agora__job *j)
{
    if (j == NULL)
        return;
    free_sets(j);
    free(j);
}

void agora__job_list_free(agora__job *jobs, size_t n)
{
    for (size_t i = 0; jobs != NULL && i < n; i++)
        free_sets(&jobs[i]);
    free(jobs);
}

/* Load the series and instance sets of j (j->n_series / n_sop say how many). */
static int load_sets(sqlite3 *db, agora__job *j, agora__error *err)
{
    if (j->n_series > AGORA__QUEUE_MAX_SERIES || j->n_sop > AGORA__QUEUE_MAX_INSTANCES)
        return agora__error_set(err, AGORA_EINTERNAL,
                                "job queue: job %lld has more series or instances than the "
                                "queue accepts; the database was changed outside agora",
                                (long long)j->id);
    j->series_uids = calloc(j->n_series ? j->n_series : 1, sizeof *j->series_uids);
    j->sop_uids = calloc(j->n_sop ? j->n_sop : 1, sizeof *j->sop_uids);
    if (j->series_uids == NULL || j->sop_uids == NULL) {
        free_sets(j);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT kind, ord, uid FROM queue_job_uid WHERE job_id = ?1 "
                     "ORDER BY kind, ord",
                     &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, j->id);
        int s = SQLITE_DONE;
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *kind = (const char *)sqlite3_column_text(st, 0);
            sqlite3_int64 ord = sqlite3_column_int64(st, 1);
            const char *uid = (const char *)sqlite3_column_text(st, 2);
            char **arr = NULL;
            size_t n = 0;
            if (kind != NULL && kind[0] == 'r') {
                arr = j->series_uids;
                n = j->n_series;
            } else if (kind != NULL && kind[0] == 'i') {
                arr = j->sop_uids;
                n = j->n_sop;
            }
            if (arr == NULL || uid == NULL || ord < 0 || (uint64_t)ord >= n || arr[ord] != NULL) {
                rc = agora__error_set(err, AGORA_EINTERNAL,
                                      "job queue: the instance set of job %lld is damaged",
                                      (long long)j->id);
                break;
            }
            if ((arr[ord] = strdup(uid)) == NULL)
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        }
        if (rc == 0 && s != SQLITE_DONE)
            rc = sql_error(db, err, "reading a job's instance set");
    }
    sqlite3_finalize(st);
    for (size_t i = 0; rc == 0 && i < j->n_series; i++)
        if (j->series_uids[i] == NULL)
            rc = agora__error_set(err, AGORA_EINTERNAL,
                                  "job queue: the series set of job %lld is incomplete",
                                  (long long)j->id);
    for (size_t i = 0; rc == 0 && i < j->n_sop; i++)
        if (j->sop_uids[i] == NULL)
            rc = agora__error_set(err, AGORA_EINTERNAL,
                                  "job queue: the instance set of job %lld is incomplete",
                                  (long long)j->id);
    if (rc != 0)
        free_sets(j);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------- */

void agora__queue_close(agora__queue *q)
{
    if (q == NULL)
        return;
    sqlite3_close(q->db);
    free(q);
}

int agora__queue_open_path(const char *db_path, agora__queue **out, agora__error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    /* 0600 as the ledger creates it (the queue may be first to open the file). */
    agora__error ce = {0};
    if (agora__create_private_file(db_path, &ce) != 0)
        return agora__error_set(err, ce.code,
                                "cannot open the job queue %s: %s; check the path and "
                                "permissions",
                                db_path, ce.msg);
    agora__queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (sqlite3_open_v2(db_path, &q->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        int rc = agora__error_set(err, AGORA_EINVAL,
                                  "cannot open the job queue %s: %s; check the path and "
                                  "permissions",
                                  db_path, q->db ? sqlite3_errmsg(q->db) : "out of memory");
        agora__queue_close(q);
        return rc;
    }
    sqlite3_busy_timeout(q->db, 10000);
    /* WAL + FULL as the ledger: a committed transition survives power loss. */
    int rc = exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err,
                  "setting the journal mode");
    if (rc == 0 && (rc = begin(q, err)) == 0) {
        rc = exec(q->db, schema_sql, err, "creating the queue tables");
        rc = end(q, rc, err);
    }
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        rc = prepare(q->db, "SELECT v FROM queue_meta WHERE k = 'format'", &st, err);
        if (rc == 0 && (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL ||
                        strcmp((const char *)sqlite3_column_text(st, 0), QUEUE_FORMAT) != 0))
            rc = agora__error_set(err, AGORA_EUNSUPPORTED,
                                  "%s holds a job queue of an unknown format; use a matching "
                                  "agora",
                                  db_path);
        sqlite3_finalize(st);
    }
    if (rc != 0) {
        agora__queue_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

int agora__queue_open(const char *home, agora__queue **out, agora__error *err)
{
    char path[4096];
    int rc = agora__home_path(home, AGORA__HOME_LEDGER, path, sizeof path, err);
    if (rc != 0)
        return rc;
    return agora__queue_open_path(path, out, err);
}

/* ---- enqueue ------------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_spec(const agora__job_spec *s, agora__error *err)
{
    if (s == NULL)
        return agora__error_set(err, AGORA_EINVAL, "job queue: no job to enqueue");
    if (!token_ok(s->plugin_id, 1, 128, "._-") || !token_ok(s->plugin_version, 1, 64, "._+-"))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: plugin id must be 1..128 of [A-Za-z0-9._-] and "
                                "version 1..64 of [A-Za-z0-9._+-]");
    if (!uid_ok(s->study_uid))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: the study UID is not a DICOM UID (1..64 of [0-9.])");
    if (s->scope == NULL || (strcmp(s->scope, "series") != 0 && strcmp(s->scope, "study") != 0))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: scope must be \"series\" or \"study\"");
    if (s->priority < -1 || s->priority > 1)
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: priority must be -1 (offpeak), 0 or 1 (urgent)");
    if (!token_ok(s->send_to, 0, AGORA__QUEUE_NAME_LEN, "._@:-") ||
        !token_ok(s->rule_id, 0, AGORA__QUEUE_NAME_LEN, "._@:-"))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: destination and rule id must be 0..%d of "
                                "[A-Za-z0-9._@:-]",
                                AGORA__QUEUE_NAME_LEN);
    if (s->max_attempts > AGORA__QUEUE_MAX_ATTEMPTS)
        return agora__error_set(err, AGORA_EINVAL, "job queue: max attempts must be 0..%d",
                                AGORA__QUEUE_MAX_ATTEMPTS);
    if (s->n_sop == 0 || s->n_sop > AGORA__QUEUE_MAX_INSTANCES || s->sop_uids == NULL)
        return agora__error_set(err, AGORA_EINVAL, "job queue: a job needs 1..%d SOP instances",
                                AGORA__QUEUE_MAX_INSTANCES);
    if (s->n_series == 0 || s->n_series > AGORA__QUEUE_MAX_SERIES || s->series_uids == NULL)
        return agora__error_set(err, AGORA_EINVAL, "job queue: a job needs 1..%d series",
                                AGORA__QUEUE_MAX_SERIES);
    for (size_t i = 0; i < s->n_sop; i++)
        if (!uid_ok(s->sop_uids[i]))
            return agora__error_set(err, AGORA_EINVAL,
                                    "job queue: SOP instance %zu is not a DICOM UID", i);
    for (size_t i = 0; i < s->n_series; i++)
        if (!uid_ok(s->series_uids[i]))
            return agora__error_set(err, AGORA_EINVAL, "job queue: series %zu is not a DICOM UID",
                                    i);
    return 0;
}

/* The unique key (queue.h) over the sorted, de-duplicated set sop[0..n). */
static void unique_key(const agora__job_spec *s, const char *const *sop, size_t n, char key[65])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
#define PUT(str) crypto_hash_sha256_update(&h, (const unsigned char *)(str), strlen(str))
    PUT(s->plugin_id);
    PUT("@");
    PUT(s->plugin_version);
    PUT("\n");
    PUT(s->study_uid);
    PUT("\n");
    for (size_t i = 0; i < n; i++) {
        PUT(sop[i]);
        PUT("\n");
    }
#undef PUT
    uint8_t d[32];
    crypto_hash_sha256_final(&h, d);
    agora__hex(d, 32, key);
}

static int insert_uids(sqlite3 *db, int64_t id, const char *kind, const char *const *uids, size_t n,
                       agora__error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(
        db, "INSERT INTO queue_job_uid(job_id, kind, ord, uid) VALUES (?1, ?2, ?3, ?4)", &st, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        sqlite3_bind_text(st, 4, uids[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_error(db, err, "storing a job's instance set");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int agora__queue_enqueue(agora__queue *q, const agora__job_spec *s, int64_t *job_id, int *duplicate,
                         agora__error *err)
{
    int dup_local;
    if (duplicate == NULL)
        duplicate = &dup_local;
    *duplicate = 0;
    *job_id = 0;
    int rc = check_spec(s, err);
    if (rc != 0)
        return rc;
    const char **sop = malloc(s->n_sop * sizeof *sop);
    if (sop == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    memcpy(sop, s->sop_uids, s->n_sop * sizeof *sop);
    qsort(sop, s->n_sop, sizeof *sop, cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < s->n_sop; i++)
        if (n == 0 || strcmp(sop[n - 1], sop[i]) != 0)
            sop[n++] = sop[i];
    char key[65], inv[AGORA__LEDGER_ID_LEN + 1];
    unique_key(s, sop, n, key);
    uint64_t now = now_ms(q);
    rc = agora__ledger_mint_at(now, inv, err);
    if (rc == 0)
        rc = begin(q, err);
    if (rc != 0) {
        free(sop);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = prepare(q->db,
                 "INSERT INTO queue_job(unique_key, state, phase, plugin_id, plugin_version, "
                 "study_uid, scope, priority, send_to, rule_id, invocation_id, attempts, "
                 "run_attempts, max_attempts, next_attempt_at, last_error_class, last_error, "
                 "n_series, n_sop, created_ms, updated_ms) VALUES (?1, 'waiting', 'run', ?2, ?3, "
                 "?4, ?5, ?6, ?7, ?8, ?9, 0, 0, ?10, ?11, '', '', ?12, ?13, ?14, ?14) "
                 "ON CONFLICT (unique_key) DO NOTHING RETURNING id",
                 &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->plugin_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, s->plugin_version, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, s->study_uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, s->scope, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, s->priority);
        sqlite3_bind_text(st, 7, s->send_to ? s->send_to : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, s->rule_id ? s->rule_id : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, inv, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 10,
                         (int)(s->max_attempts ? s->max_attempts : AGORA__QUEUE_DEFAULT_ATTEMPTS));
        sqlite3_bind_int64(st, 11, (sqlite3_int64)(s->not_before_ms ? s->not_before_ms : now));
        sqlite3_bind_int64(st, 12, (sqlite3_int64)s->n_series);
        sqlite3_bind_int64(st, 13, (sqlite3_int64)n);
        sqlite3_bind_int64(st, 14, (sqlite3_int64)now);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            *job_id = sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
            *duplicate = 1;
        else
            rc = sql_error(q->db, err, "adding a job");
        if (rc == 0 && r == SQLITE_ROW && sqlite3_step(st) != SQLITE_DONE)
            rc = sql_error(q->db, err, "adding a job");
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0 && *duplicate) {
        rc = prepare(q->db, "SELECT id FROM queue_job WHERE unique_key = ?1", &st, err);
        if (rc == 0) {
            sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                *job_id = sqlite3_column_int64(st, 0);
            else
                rc = sql_error(q->db, err, "finding the job of a known key");
        }
        sqlite3_finalize(st);
    } else if (rc == 0) {
        rc = insert_uids(q->db, *job_id, "r", s->series_uids, s->n_series, err);
        if (rc == 0)
            rc = insert_uids(q->db, *job_id, "i", sop, n, err);
    }
    free(sop);
    rc = end(q, rc, err);
    if (rc != 0) {
        *job_id = 0;
        *duplicate = 0;
    }
    return rc;
}

/* ---- claims and a worker's guarded changes ------------------------------------------------ */

static int check_host(const char *host, agora__error *err)
{
    if (!token_ok(host, 1, AGORA__QUEUE_HOST_LEN, "._-"))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: a lease owner must be 1..%d of [A-Za-z0-9._-]",
                                AGORA__QUEUE_HOST_LEN);
    return 0;
}

/* The claim (queue.h), skipping the plugin ids skip[0..n_skip) when n_skip > 0. */
static int claim(agora__queue *q, agora__job_state from, const char *host, uint64_t lease_ms,
                 const char *const *skip, size_t n_skip, agora__job **out, agora__error *err)
{
    *out = NULL;
    const char *sql;
    if (from == AGORA__QJOB_WAITING || from == AGORA__QJOB_RETRYABLE)
        sql = "UPDATE queue_job SET state = 'running', attempts = attempts + 1, "
              "run_attempts = run_attempts + 1, lease_owner = ?1, lease_token = ?2, "
              "leased_until = ?3, updated_ms = ?4 WHERE id = (SELECT id FROM queue_job WHERE "
              "state IN ('waiting','retryable') AND next_attempt_at <= ?4 "
              "ORDER BY priority DESC, next_attempt_at, id LIMIT 1) RETURNING " JOB_COLUMNS;
    else if (from == AGORA__QJOB_SENDING)
        sql = "UPDATE queue_job SET attempts = attempts + 1, lease_owner = ?1, lease_token = ?2, "
              "leased_until = ?3, updated_ms = ?4 WHERE id = (SELECT id FROM queue_job WHERE "
              "state = 'sending' AND lease_token IS NULL AND next_attempt_at <= ?4 "
              "ORDER BY priority DESC, next_attempt_at, id LIMIT 1) RETURNING " JOB_COLUMNS;
    else
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: claim from waiting/retryable (a run) or sending "
                                "(a delivery) only");
    int rc = check_host(host, err);
    if (rc != 0)
        return rc;
    if (lease_ms == 0 || lease_ms > AGORA__QUEUE_MAX_LEASE_MS)
        return agora__error_set(err, AGORA_EINVAL, "job queue: a lease must be 1 ms..24 h");
    if (n_skip > AGORA__QUEUE_MAX_SKIP || (n_skip > 0 && skip == NULL))
        return agora__error_set(err, AGORA_EINVAL, "job queue: a claim skips 0..%d plugins",
                                AGORA__QUEUE_MAX_SKIP);
    for (size_t i = 0; i < n_skip; i++)
        if (!token_ok(skip[i], 1, 128, "._-"))
            return agora__error_set(err, AGORA_EINVAL,
                                    "job queue: plugin id %zu to skip is not a plugin id", i);
    /* Skipping: the same statement with "AND plugin_id NOT IN (?5, ...)" before its ORDER BY
     * (the sub-select's; the one place the text says ORDER BY). */
    char spliced[2048];
    if (n_skip > 0) {
        const char *order = strstr(sql, " ORDER BY");
        size_t off = (size_t)(order - sql);
        int w = snprintf(spliced, sizeof spliced, "%.*s AND plugin_id NOT IN (", (int)off, sql);
        for (size_t i = 0; i < n_skip && w > 0 && (size_t)w < sizeof spliced; i++)
            w += snprintf(spliced + w, sizeof spliced - (size_t)w, "%s?%zu", i ? ", " : "", i + 5);
        if (w > 0 && (size_t)w < sizeof spliced)
            w += snprintf(spliced + w, sizeof spliced - (size_t)w, ")%s", order);
        if (w <= 0 || (size_t)w >= sizeof spliced)
            return agora__error_set(err, AGORA_EINTERNAL, "job queue: claim statement too long");
        sql = spliced;
    }
    agora__job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    uint8_t tok[16];
    char token[33];
    randombytes_buf(tok, sizeof tok);
    agora__hex(tok, sizeof tok, token);
    uint64_t now = now_ms(q);
    int found = 0;
    if ((rc = begin(q, err)) != 0) {
        free(j);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = prepare(q->db, sql, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, token, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(now + lease_ms));
        sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
        for (size_t i = 0; i < n_skip; i++)
            sqlite3_bind_text(st, (int)i + 5, skip[i], -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            read_job(st, j);
            found = 1;
            r = sqlite3_step(st);
        }
        if (r != SQLITE_DONE)
            rc = sql_error(q->db, err, "claiming a job");
    }
    sqlite3_finalize(st);
    rc = end(q, rc, err);
    /* The sets never change after enqueue: read them outside the write lock. */
    if (rc == 0 && found)
        rc = load_sets(q->db, j, err);
    if (rc != 0 || !found) {
        agora__job_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

int agora__queue_claim(agora__queue *q, agora__job_state from, const char *host, uint64_t lease_ms,
                       agora__job **out, agora__error *err)
{
    return claim(q, from, host, lease_ms, NULL, 0, out, err);
}

int agora__queue_claim_skipping(agora__queue *q, agora__job_state from, const char *host,
                                uint64_t lease_ms, const char *const *skip, size_t n_skip,
                                agora__job **out, agora__error *err)
{
    return claim(q, from, host, lease_ms, skip, n_skip, out, err);
}

/* A guarded change touched no row: say why (cancelled, or the lease is no longer this one). */
static int lost(sqlite3 *db, int64_t id, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT state, last_error_class FROM queue_job WHERE id = ?1", &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = agora__error_set(err, AGORA_EINVAL, "job queue: no job %lld", (long long)id);
    } else {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        const char *cls = (const char *)sqlite3_column_text(st, 1);
        if (state != NULL && strcmp(state, "cancelled") == 0)
            rc = agora__error_set(err, AGORA_ECANCELLED,
                                  "job %lld was cancelled (%s); stop its work", (long long)id,
                                  cls && cls[0] ? cls : "cancelled");
        else
            rc = agora__error_set(err, AGORA_ESTATE,
                                  "job %lld is no longer held by this worker (it is %s now: "
                                  "the lease expired or it was requeued); drop this attempt",
                                  (long long)id, state ? state : "?");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Run sql (guarded; ?1 = id, ?2 = token, ?3 = now, ?4 = class, ?5 = message, ?6 = a time) on
 * db inside the caller's transaction. 0 when one row changed, else the reason from lost(). */
typedef struct guarded {
    int64_t id;
    const char *token;
    uint64_t now;
    const char *cls, *msg;
    uint64_t t6;
} guarded;

static int run_guarded(sqlite3 *db, const char *sql, const guarded *g, agora__error *err)
{
    char msg[AGORA__QUEUE_ERROR_LEN + 1];
    sanitize(g->msg, msg);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, g->id);
    sqlite3_bind_text(st, 2, g->token ? g->token : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)g->now);
    sqlite3_bind_text(st, 4, g->cls ? g->cls : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, msg, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)g->t6);
    int r = sqlite3_step(st);
    int changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return sql_error(db, err, "changing a job's state");
    if (changed != 1)
        return lost(db, g->id, err);
    return 0;
}

/* The same in a transaction of q's own. */
static int guarded_txn(agora__queue *q, const char *sql, const guarded *g, agora__error *err)
{
    int rc = begin(q, err);
    if (rc != 0)
        return rc;
    rc = run_guarded(q->db, sql, g, err);
    return end(q, rc, err);
}

int agora__queue_heartbeat(agora__queue *q, const agora__job *job, uint64_t lease_ms,
                           agora__error *err)
{
    if (lease_ms == 0 || lease_ms > AGORA__QUEUE_MAX_LEASE_MS)
        return agora__error_set(err, AGORA_EINVAL, "job queue: a lease must be 1 ms..24 h");
    uint64_t now = now_ms(q);
    guarded g = {job->id, job->lease_token, now, NULL, NULL, now + lease_ms};
    return guarded_txn(q,
                       "UPDATE queue_job SET leased_until = ?6, updated_ms = ?3 WHERE id = ?1 "
                       "AND lease_token = ?2 AND state IN ('running','sending')",
                       &g, err);
}

int agora__queue_settle_in_txn(struct sqlite3 *db, int64_t job_id, const char *lease_token,
                               agora__job_state next, const char *error_class,
                               const char *error_msg, agora__error *err)
{
    const char *sql;
    /* SENDING settles to done when the job has no destination: the queue knows, the caller
     * need not. */
    if (next == AGORA__QJOB_SENDING || next == AGORA__QJOB_DONE)
        sql = next == AGORA__QJOB_SENDING
                  ? "UPDATE queue_job SET state = CASE WHEN send_to = '' THEN 'done' ELSE "
                    "'sending' END, phase = 'send', attempts = 0, next_attempt_at = ?3, "
                    "last_error_class = '', last_error = '', " UNLEASE ", updated_ms = ?3 "
                    "WHERE id = ?1 AND lease_token = ?2 AND state = 'running'"
                  : "UPDATE queue_job SET state = 'done', phase = 'send', last_error_class = '', "
                    "last_error = '', " UNLEASE ", updated_ms = ?3 "
                    "WHERE id = ?1 AND lease_token = ?2 AND state = 'running'";
    else if (next == AGORA__QJOB_FAILED)
        sql = "UPDATE queue_job SET state = 'failed', last_error_class = ?4, last_error = "
              "?5, " UNLEASE
              ", updated_ms = ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'";
    else
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: a run settles to sending, done or failed");
    if (next == AGORA__QJOB_FAILED) {
        int rc = check_class(error_class, err);
        if (rc != 0)
            return rc;
    }
    if (lease_token == NULL || lease_token[0] == '\0')
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: settling needs the lease token of the claim");
    if (db == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: settling needs the ledger's "
                                "connection");
    guarded g = {job_id, lease_token, real_now_ms(), error_class, error_msg, 0};
    return run_guarded(db, sql, &g, err);
}

int agora__queue_settle_cb(void *arg, struct sqlite3 *db, agora__error *err)
{
    const agora__queue_settle *s = arg;
    if (s == NULL)
        return agora__error_set(err, AGORA_EINVAL, "job queue: settle without a job");
    return agora__queue_settle_in_txn(db, s->job_id, s->lease_token, s->next, s->error_class,
                                      s->error_msg, err);
}

int agora__queue_run_failed(agora__queue *q, const agora__job *job, int permanent,
                            const char *error_class, const char *error_msg, uint64_t retry_after_ms,
                            agora__error *err)
{
    int rc = check_class(error_class, err);
    if (rc != 0)
        return rc;
    if (retry_after_ms > AGORA__QUEUE_MAX_LEASE_MS)
        return agora__error_set(err, AGORA_EINVAL, "job queue: retry delay must be at most 24 h");
    uint64_t now = now_ms(q);
    guarded g = {job->id, job->lease_token, now, error_class, error_msg, now + retry_after_ms};
    return guarded_txn(q,
                       permanent
                           ? "UPDATE queue_job SET state = 'failed', last_error_class = ?4, "
                             "last_error = ?5, " UNLEASE ", updated_ms = ?3 WHERE id = ?1 AND "
                             "lease_token = ?2 AND state = 'running'"
                           : "UPDATE queue_job SET state = CASE WHEN attempts >= max_attempts "
                             "THEN 'failed' ELSE 'retryable' END, next_attempt_at = ?6, "
                             "last_error_class = ?4, last_error = ?5, " UNLEASE ", "
                             "updated_ms = ?3 WHERE id = ?1 AND lease_token = ?2 AND "
                             "state = 'running'",
                       &g, err);
}

int agora__queue_send_result(agora__queue *q, const agora__job *job, agora__send_kind kind,
                             const char *error_class, const char *error_msg, uint64_t backoff_ms,
                             agora__error *err)
{
    const char *sql;
    switch (kind) {
    case AGORA__SEND_DELIVERED:
        sql =
            "UPDATE queue_job SET state = 'done', last_error_class = '', last_error = '', " UNLEASE
            ", updated_ms = ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'sending'";
        break;
    case AGORA__SEND_TRANSIENT:
        sql = "UPDATE queue_job SET state = CASE WHEN attempts >= max_attempts THEN 'failed' "
              "ELSE 'sending' END, next_attempt_at = ?6, last_error_class = ?4, last_error = "
              "?5, " UNLEASE
              ", updated_ms = ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'sending'";
        break;
    case AGORA__SEND_PERMANENT:
        sql = "UPDATE queue_job SET state = 'failed', last_error_class = ?4, last_error = "
              "?5, " UNLEASE
              ", updated_ms = ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'sending'";
        break;
    default:
        return agora__error_set(err, AGORA_EINVAL, "job queue: unknown send outcome");
    }
    if (kind != AGORA__SEND_DELIVERED) {
        int rc = check_class(error_class, err);
        if (rc != 0)
            return rc;
    }
    if (backoff_ms > AGORA__QUEUE_MAX_LEASE_MS)
        return agora__error_set(err, AGORA_EINVAL, "job queue: a backoff must be at most 24 h");
    uint64_t now = now_ms(q);
    guarded g = {job->id, job->lease_token, now, error_class, error_msg, now + backoff_ms};
    return guarded_txn(q, sql, &g, err);
}

/* ---- rescue, requeue, revocation ---------------------------------------------------------- */

/* Run a multi-row UPDATE with ?1 = now, ?2 = text, ?3 = text, adding its changes to *n. */
static int update_many(sqlite3 *db, const char *sql, uint64_t now, const char *a, const char *b,
                       size_t *n, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
    sqlite3_bind_text(st, 2, a ? a : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b ? b : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sql_error(db, err, "changing jobs");
    else
        *n += (size_t)sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

/* Expired leases (host NULL), or every lease of host (its previous process died holding them),
 * go back with the attempt kept: failed once the attempts ran out. */
static int expire(agora__queue *q, const char *host, size_t *n_out, agora__error *err)
{
    size_t n = 0;
    uint64_t now = now_ms(q);
    int rc = begin(q, err);
    if (rc != 0)
        return rc;
    const char *msg = host ? "the daemon stopped while the attempt ran (found at its restart)"
                           : "the worker's lease expired (it crashed or hung)";
    rc = update_many(q->db,
                     "UPDATE queue_job SET state = CASE WHEN attempts >= max_attempts THEN "
                     "'failed' ELSE 'retryable' END, next_attempt_at = ?1, last_error_class = "
                     "'lease-expired', last_error = ?2, " UNLEASE ", updated_ms = ?1 WHERE "
                     "state = 'running' AND lease_token IS NOT NULL AND ((?3 = '' AND "
                     "leased_until < ?1) OR lease_owner = ?3)",
                     now, msg, host, &n, err);
    if (rc == 0)
        rc = update_many(q->db,
                         "UPDATE queue_job SET state = CASE WHEN attempts >= max_attempts THEN "
                         "'failed' ELSE 'sending' END, next_attempt_at = ?1, last_error_class = "
                         "'lease-expired', last_error = ?2, " UNLEASE ", updated_ms = ?1 WHERE "
                         "state = 'sending' AND lease_token IS NOT NULL AND ((?3 = '' AND "
                         "leased_until < ?1) OR lease_owner = ?3)",
                         now, msg, host, &n, err);
    rc = end(q, rc, err);
    if (n_out)
        *n_out = rc == 0 ? n : 0;
    return rc;
}

int agora__queue_rescue(agora__queue *q, size_t *n_rescued, agora__error *err)
{
    return expire(q, NULL, n_rescued, err);
}

int agora__queue_expire_mine(agora__queue *q, const char *host, size_t *n, agora__error *err)
{
    int rc = check_host(host, err);
    if (rc != 0)
        return rc;
    return expire(q, host, n, err);
}

int agora__queue_requeue_mine(agora__queue *q, const char *host, size_t *n_out, agora__error *err)
{
    size_t n = 0;
    int rc = check_host(host, err);
    if (rc != 0)
        return rc;
    if ((rc = begin(q, err)) != 0)
        return rc;
    /* The attempt is given back: stopping the daemon is not the job's fault. */
    rc = update_many(q->db,
                     "UPDATE queue_job SET state = CASE WHEN state = 'running' THEN 'retryable' "
                     "ELSE state END, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 "
                     "END, run_attempts = CASE WHEN state = 'running' AND run_attempts > 0 THEN "
                     "run_attempts - 1 ELSE run_attempts END, next_attempt_at = ?1, "
                     "last_error_class = 'requeued', last_error = ?3, " UNLEASE ", "
                     "updated_ms = ?1 WHERE lease_owner = ?2 AND lease_token IS NOT NULL AND "
                     "state IN ('running','sending')",
                     now_ms(q), host, "the daemon stopped before the attempt finished", &n, err);
    rc = end(q, rc, err);
    if (n_out)
        *n_out = rc == 0 ? n : 0;
    return rc;
}

int agora__queue_cancel_plugin(agora__queue *q, const char *plugin_id, const char *version,
                               const char *reason, size_t *n_out, agora__error *err)
{
    size_t n = 0;
    if (!token_ok(plugin_id, 1, 128, "._-") || !token_ok(version, 1, 64, "._+-"))
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: plugin id must be 1..128 of [A-Za-z0-9._-] and "
                                "version 1..64 of [A-Za-z0-9._+-]");
    size_t rl = reason ? strlen(reason) : 0;
    int printable = rl > 0 && rl <= AGORA__QUEUE_ERROR_LEN;
    for (size_t i = 0; printable && i < rl; i++)
        printable = (unsigned char)reason[i] >= 0x20 && (unsigned char)reason[i] < 0x7f;
    if (!printable)
        return agora__error_set(err, AGORA_EINVAL,
                                "job queue: a revocation reason must be 1..%d printable ASCII "
                                "characters",
                                AGORA__QUEUE_ERROR_LEN);
    int rc = begin(q, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = prepare(q->db,
                 "UPDATE queue_job SET state = 'cancelled', last_error_class = 'revoked', "
                 "last_error = ?3, " UNLEASE ", updated_ms = ?4 WHERE plugin_id = ?1 AND "
                 "plugin_version = ?2 AND state IN ('waiting','retryable','running','sending')",
                 &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, plugin_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, version, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)now_ms(q));
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sql_error(q->db, err, "cancelling the jobs of a revoked build");
        else
            n = (size_t)sqlite3_changes(q->db);
    }
    sqlite3_finalize(st);
    rc = end(q, rc, err);
    if (n_out)
        *n_out = rc == 0 ? n : 0;
    return rc;
}

/* ---- operator actions --------------------------------------------------------------------- */

/* Read the state, phase and whether it is leased; AGORA_EINVAL for an unknown id. */
static int job_state(sqlite3 *db, int64_t id, agora__job_state *state, int *leased,
                     agora__error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT state, CASE WHEN lease_token IS NULL THEN 0 ELSE 1 END FROM queue_job "
                     "WHERE id = ?1",
                     &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        if (agora__job_state_parse((const char *)sqlite3_column_text(st, 0), state) != 0)
            rc = agora__error_set(err, AGORA_EINTERNAL, "job queue: job %lld has an unknown state",
                                  (long long)id);
        *leased = sqlite3_column_int(st, 1);
    } else if (r == SQLITE_DONE) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "no job %lld in the queue; `agora queue` lists the jobs",
                              (long long)id);
    } else {
        rc = sql_error(db, err, "reading a job");
    }
    sqlite3_finalize(st);
    return rc;
}

#define BIT(s) (1u << (s))

/* An operator's action on one job, in one transaction: read its state, refuse one outside
 * allowed (the message names the state and the states the action takes: `takes`), refuse a
 * sending job in delivery when busy_sending is set, then run the guarded sql (?1 id, ?3 now,
 * ?5 msg). */
static int operator_act(agora__queue *q, int64_t job_id, unsigned allowed, int busy_sending,
                        const char *takes, const char *sql, const char *msg, agora__error *err)
{
    int rc = begin(q, err);
    if (rc != 0)
        return rc;
    agora__job_state s = AGORA__QJOB_WAITING;
    int leased = 0;
    rc = job_state(q->db, job_id, &s, &leased, err);
    if (rc == 0 && !(allowed & BIT(s)))
        rc = agora__error_set(err, AGORA_ESTATE, "job %lld is %s; only %s", (long long)job_id,
                              agora__job_state_name(s), takes);
    if (rc == 0 && busy_sending && s == AGORA__QJOB_SENDING && leased)
        rc = agora__error_set(err, AGORA_ESTATE,
                              "job %lld is being delivered now; retry it if this attempt fails",
                              (long long)job_id);
    if (rc == 0) {
        guarded g = {job_id, NULL, now_ms(q), NULL, msg, 0};
        rc = run_guarded(q->db, sql, &g, err);
    }
    return end(q, rc, err);
}

int agora__queue_retry(agora__queue *q, int64_t job_id, agora__error *err)
{
    /* A job that failed after its run was settled is sent again, not run again: its results
     * and ledger row exist. */
    return operator_act(
        q, job_id, BIT(AGORA__QJOB_FAILED) | BIT(AGORA__QJOB_RETRYABLE) | BIT(AGORA__QJOB_SENDING), 1,
        "failed, retryable or sending jobs can be retried",
        "UPDATE queue_job SET state = CASE WHEN state = 'failed' AND phase = 'run' THEN 'waiting' "
        "WHEN state = 'failed' THEN 'sending' ELSE state END, attempts = 0, next_attempt_at = ?3, "
        "updated_ms = ?3 WHERE id = ?1 AND lease_token IS NULL AND state IN "
        "('failed','retryable','sending')",
        NULL, err);
}

int agora__queue_cancel(agora__queue *q, int64_t job_id, agora__error *err)
{
    return operator_act(q, job_id,
                        BIT(AGORA__QJOB_WAITING) | BIT(AGORA__QJOB_RETRYABLE) |
                            BIT(AGORA__QJOB_RUNNING) | BIT(AGORA__QJOB_SENDING),
                        0, "waiting, retryable, running or sending jobs can be cancelled",
                        "UPDATE queue_job SET state = 'cancelled', last_error_class = "
                        "'cancelled', last_error = ?5, " UNLEASE ", updated_ms = ?3 WHERE "
                        "id = ?1 AND state IN ('waiting','retryable','running','sending')",
                        "cancelled by the operator", err);
}

/* ---- reading ------------------------------------------------------------------------------ */

int agora__queue_get(agora__queue *q, int64_t job_id, int with_sets, agora__job **out,
                     agora__error *err)
{
    *out = NULL;
    agora__job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    sqlite3_stmt *st = NULL;
    int rc = prepare(q->db, "SELECT " JOB_COLUMNS " FROM queue_job WHERE id = ?1", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, job_id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            read_job(st, j);
        else if (r == SQLITE_DONE)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "no job %lld in the queue; `agora queue` lists the jobs",
                                  (long long)job_id);
        else
            rc = sql_error(q->db, err, "reading a job");
    }
    sqlite3_finalize(st);
    if (rc == 0 && with_sets)
        rc = load_sets(q->db, j, err);
    if (rc != 0) {
        agora__job_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

int agora__queue_list(agora__queue *q, unsigned state_mask, size_t limit, agora__job **out,
                      size_t *n, agora__error *err)
{
    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > AGORA__QUEUE_MAX_LIST)
        return agora__error_set(err, AGORA_EINVAL, "job queue: a listing holds 1..%d jobs",
                                AGORA__QUEUE_MAX_LIST);
    /* The IN list is built from the fixed state names only, never from input text. */
    char sql[1024];
    size_t off = (size_t)snprintf(sql, sizeof sql, "SELECT " JOB_COLUMNS " FROM queue_job");
    if (state_mask != 0) {
        off += (size_t)snprintf(sql + off, sizeof sql - off, " WHERE state IN (");
        int first = 1;
        for (unsigned i = 0; i < AGORA__QJOB_STATE_COUNT; i++)
            if (state_mask & (1u << i)) {
                off += (size_t)snprintf(sql + off, sizeof sql - off, "%s'%s'", first ? "" : ",",
                                        state_names[i]);
                first = 0;
            }
        if (first)
            return agora__error_set(err, AGORA_EINVAL, "job queue: no known state selected");
        off += (size_t)snprintf(sql + off, sizeof sql - off, ")");
    }
    snprintf(sql + off, sizeof sql - off, " ORDER BY id DESC LIMIT ?1");
    agora__job *jobs = calloc(limit, sizeof *jobs);
    if (jobs == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    sqlite3_stmt *st = NULL;
    size_t k = 0;
    int rc = prepare(q->db, sql, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
        int r = SQLITE_DONE;
        while (k < limit && (r = sqlite3_step(st)) == SQLITE_ROW)
            read_job(st, &jobs[k++]);
        if (k < limit && r != SQLITE_DONE)
            rc = sql_error(q->db, err, "listing jobs");
    }
    sqlite3_finalize(st);
    if (rc != 0 || k == 0) {
        free(jobs);
        return rc;
    }
    *out = jobs;
    *n = k;
    return 0;
}

int agora__queue_study_jobs(agora__queue *q, const char *study_uid, uint64_t *live,
                            int64_t *last_ms, agora__error *err)
{
    *live = 0;
    *last_ms = 0;
    sqlite3_stmt *st = NULL;
    int rc = prepare(q->db,
                     "SELECT COALESCE(SUM(CASE WHEN state IN ('done', 'cancelled') THEN 0 ELSE 1"
                     " END), 0), COALESCE(MAX(updated_ms), 0) FROM queue_job WHERE study_uid = ?1",
                     &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(st, 1, study_uid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *live = col_u64(st, 0);
        *last_ms = (int64_t)col_u64(st, 1);
    } else {
        rc = sql_error(q->db, err, "reading a study's jobs");
    }
    sqlite3_finalize(st);
    return rc;
}

int agora__queue_study_jobs_fn(void *q, const char *study_uid, uint64_t *live, int64_t *last_ms,
                               agora__error *err)
{
    return agora__queue_study_jobs(q, study_uid, live, last_ms, err);
}

int agora__queue_counts(agora__queue *q, uint64_t counts[AGORA__QJOB_STATE_COUNT], agora__error *err)
{
    memset(counts, 0, AGORA__QJOB_STATE_COUNT * sizeof counts[0]);
    sqlite3_stmt *st = NULL;
    int rc = prepare(q->db, "SELECT state, COUNT(*) FROM queue_job GROUP BY state", &st, err);
    if (rc != 0)
        return rc;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        agora__job_state s = AGORA__QJOB_WAITING;
        if (agora__job_state_parse((const char *)sqlite3_column_text(st, 0), &s) == 0)
            counts[s] = col_u64(st, 1);
    }
    if (r != SQLITE_DONE)
        rc = sql_error(q->db, err, "counting jobs");
    sqlite3_finalize(st);
    return rc;
}
