/* Intake of `agora serve` (intake.h): grouping through the sandboxed reader, completion timers,
 * amendments, listings. Every state lives in spool.db; this file keeps only prepared statements
 * and the reader process between polls. */
#include "intake.h"

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool.h"

#define INTAKE_PATH_MAX      4096
#define INTAKE_READ_ATTEMPTS 3      /* host-side reader failures on one row before it is rejected */
#define INTAKE_EVAL_MAX      100000 /* receiving studies examined per poll */

enum { OUT_GROUPED, OUT_REJECTED, OUT_RETRY, OUT_SETTLED /* by another intake meanwhile */ };

/* One 'received' row of a batch and what the reader made of it. */
typedef struct batch_row {
    char sop[AGORA__ROUTE_UID_MAX];
    char rel[100];
    char calling[AGORA__ROUTE_AE_MAX], called[AGORA__ROUTE_AE_MAX];
    char origin[8];
    int64_t received_at;
    int64_t read_failures;
    int outcome;
    const char *reason; /* static: rejected rows */
    char why[160];      /* the reader's one-line reason (no values from the file) */
    char study[AGORA__ROUTE_UID_MAX], series[AGORA__ROUTE_UID_MAX];
    agora__route_attrs attrs;
} batch_row;

struct agora__intake {
    sqlite3 *db;
    char dir[INTAKE_PATH_MAX];
    agora__intake_config cfg;
    agora__ingest_options ingest_opt;
    agora__ingest *ing;
    uint64_t ing_used_us; /* monotonic time of the last batch that used the reader */
    batch_row *rows;      /* [cfg.batch] */
    int fault_next;       /* tests: AGORA__INGEST_FAULT_* for the next file read */
    sqlite3_stmt *sel_received, *sel_study, *ins_study, *reopen_study, *touch_study, *upsert_series,
        *set_grouped, *set_rejected, *set_failed, *count_received, *still_received;
};

/* ---- small helpers --------------------------------------------------------------------------- */

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void logf_(agora__intake *in, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(agora__intake *in, int level, const char *fmt, ...)
{
    if (in->cfg.log == NULL)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    in->cfg.log(in->cfg.log_arg, level, msg);
}

static int db_fail(agora__intake *in, const char *what, agora__error *err)
{
    return agora__error_set(err, AGORA__EIO, "spool database: %s: %s", what,
                            sqlite3_errmsg(in->db));
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t size)
{
    agora__strlcpy(out, col_text(st, i), size);
}

/* Run a statement that returns no row; reset it whatever happens. */
static int step_done(agora__intake *in, sqlite3_stmt *st, const char *what, agora__error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : db_fail(in, what, err);
}

static int exec(agora__intake *in, const char *sql, agora__error *err)
{
    return sqlite3_exec(in->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(in, sql, err);
}

static void rollback(agora__intake *in)
{
    sqlite3_exec(in->db, "ROLLBACK", NULL, NULL, NULL);
}

static void study_key(const char *uid, char out[AGORA__INTAKE_KEY_LEN + 1])
{
    uint8_t h[32];
    char hex[65];
    agora__sha256(uid, strlen(uid), h);
    agora__hex(h, 32, hex);
    memcpy(out, hex, AGORA__INTAKE_KEY_LEN);
    out[AGORA__INTAKE_KEY_LEN] = '\0';
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The later of the study timer and every series timer (intake.h, "Completion"). */
static int64_t complete_at(const agora__intake *in, int64_t study_last, int64_t series_last)
{
    return max64(study_last + (int64_t)in->cfg.study_quiet_ms,
                 series_last + (int64_t)in->cfg.series_quiet_ms);
}

/* ---- names and configuration ----------------------------------------------------------------- */

static const char *const state_names[] = {"receiving", "complete", "dispatched", "held",
                                          "discarded"};
static const char *const action_names[] = {"proceed", "discard", "hold"};

const char *agora__intake_state_name(agora__intake_state s)
{
    return (unsigned)s < 5 ? state_names[s] : "unknown";
}

static int state_parse(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

const char *agora__intake_action_name(agora__intake_action a)
{
    return (unsigned)a < 3 ? action_names[a] : "unknown";
}

int agora__intake_action_parse(const char *s, agora__intake_action *out)
{
    for (int i = 0; s != NULL && i < 3; i++)
        if (strcmp(s, action_names[i]) == 0) {
            *out = (agora__intake_action)i;
            return 0;
        }
    return AGORA_EINVAL;
}

void agora__intake_config_default(agora__intake_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->series_quiet_ms = 10000;
    cfg->study_quiet_ms = 60000;
    cfg->force_after_ms = 90ull * 60 * 1000;
    cfg->force_action = AGORA__INTAKE_PROCEED;
    cfg->batch = 256;
    cfg->budget_ms = 500;
    cfg->max_emit = 32;
    cfg->idle_close_ms = 30000;
}

static int check_config(const agora__intake_config *c, agora__error *err)
{
    if (c->series_quiet_ms > AGORA__INTAKE_QUIET_MAX_MS ||
        c->study_quiet_ms > AGORA__INTAKE_QUIET_MAX_MS)
        return agora__error_set(err, AGORA_EINVAL,
                                "a quiet period is longer than one day; use at most 86400 s");
    if (c->force_after_ms == 0 || c->force_after_ms > AGORA__INTAKE_FORCE_MAX_MS)
        return agora__error_set(err, AGORA_EINVAL,
                                "the force-complete time must be 1 ms .. 7 days");
    if ((unsigned)c->force_action > AGORA__INTAKE_HOLD)
        return agora__error_set(err, AGORA_EINVAL,
                                "the force-complete action must be proceed, discard or hold");
    if (c->batch == 0 || c->batch > AGORA__INTAKE_BATCH_MAX)
        return agora__error_set(err, AGORA_EINVAL, "the intake batch must be 1..%u rows",
                                AGORA__INTAKE_BATCH_MAX);
    if (c->max_emit == 0 || c->max_emit > AGORA__INTAKE_EMIT_MAX)
        return agora__error_set(err, AGORA_EINVAL, "studies emitted per poll must be 1..%u",
                                AGORA__INTAKE_EMIT_MAX);
    return 0;
}

/* ---- open / close ---------------------------------------------------------------------------- */

static const struct {
    size_t offset;
    const char *sql;
} statements[] = {
#define ST(f) offsetof(agora__intake, f)
    {ST(sel_received), "SELECT sop_instance_uid, path, calling_ae, called_ae, origin,"
                       " received_at_ms, read_failures FROM spool_instance"
                       " WHERE state = 'received' ORDER BY received_at_ms, sop_instance_uid"
                       " LIMIT ?"},
    {ST(sel_study), "SELECT state, reason, generation FROM spool_study"
                    " WHERE study_instance_uid = ?"},
    {ST(ins_study), "INSERT INTO spool_study (study_instance_uid, study_key, state, reason,"
                    " generation, first_arrival_ms, last_arrival_ms, created_at_ms,"
                    " updated_at_ms, n_instances)"
                    " VALUES (?1, ?2, 'receiving', NULL, 1, ?3, ?3, ?3, ?4, 1)"},
    /* A dispatched study that gets an instance: the next generation starts with it. */
    {ST(reopen_study), "UPDATE spool_study SET state = 'receiving', reason = NULL,"
                       " generation = generation + 1, first_arrival_ms = ?2,"
                       " last_arrival_ms = CASE WHEN ?2 > last_arrival_ms THEN ?2"
                       " ELSE last_arrival_ms END, updated_at_ms = ?3,"
                       " n_instances = n_instances + 1 WHERE study_instance_uid = ?1"},
    /* Any other state: the arrival counts; ?4 (a state name or NULL) replaces the state. */
    {ST(touch_study), "UPDATE spool_study SET state = COALESCE(?4, state),"
                      " reason = CASE WHEN ?4 IS NULL THEN reason ELSE NULL END,"
                      " last_arrival_ms = CASE WHEN ?2 > last_arrival_ms THEN ?2"
                      " ELSE last_arrival_ms END, updated_at_ms = ?3,"
                      " n_instances = n_instances + 1 WHERE study_instance_uid = ?1"},
    {ST(upsert_series),
     "INSERT INTO spool_series (study_instance_uid, series_instance_uid, generation,"
     " first_arrival_ms, last_arrival_ms, n_instances, modality, body_part, sop_class_uid,"
     " slice_thickness, n_frames, image_rows, image_columns, calling_ae, called_ae, origin)"
     " VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
     " ON CONFLICT (study_instance_uid, series_instance_uid) DO UPDATE SET"
     " last_arrival_ms = CASE WHEN excluded.last_arrival_ms > spool_series.last_arrival_ms"
     " THEN excluded.last_arrival_ms ELSE spool_series.last_arrival_ms END,"
     " n_frames = CASE WHEN excluded.n_frames > spool_series.n_frames THEN excluded.n_frames"
     " ELSE spool_series.n_frames END,"
     " n_instances = spool_series.n_instances + 1"},
    {ST(set_grouped),
     "UPDATE spool_instance SET state = 'grouped', study_instance_uid = ?2,"
     " series_instance_uid = ?3, modality = ?5, body_part = ?6,"
     " ds_sop_class_uid = ?7, slice_thickness = ?8, n_frames = ?9,"
     " image_rows = ?10, image_columns = ?11, generation = ?4, grouped_at_ms = ?12,"
     " reject_reason = NULL"
     " WHERE sop_instance_uid = ?1 AND state = 'received'"},
    {ST(set_rejected), "UPDATE spool_instance SET state = 'rejected', reject_reason = ?2,"
                       " grouped_at_ms = ?3 WHERE sop_instance_uid = ?1 AND state = 'received'"},
    {ST(set_failed), "UPDATE spool_instance SET read_failures = read_failures + 1"
                     " WHERE sop_instance_uid = ?1 AND state = 'received'"},
    {ST(count_received), "SELECT COUNT(*) FROM spool_instance WHERE state = 'received'"},
    {ST(still_received), "SELECT 1 FROM spool_instance"
                         " WHERE sop_instance_uid = ? AND state = 'received'"},
#undef ST
};

#define N_STATEMENTS (sizeof statements / sizeof statements[0])

static sqlite3_stmt **stmt_at(agora__intake *in, size_t i)
{
    return (sqlite3_stmt **)(void *)((char *)in + statements[i].offset);
}

int agora__intake_open(const char *home, const agora__intake_config *cfg, agora__intake **out,
                       agora__error *err)
{
    *out = NULL;
    agora__intake_config c;
    if (cfg)
        c = *cfg;
    else
        agora__intake_config_default(&c);
    int rc = check_config(&c, err);
    if (rc != 0)
        return rc;
    agora__intake *in = calloc(1, sizeof *in);
    if (in == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory opening the intake");
    in->cfg = c;
    if (c.ingest)
        in->ingest_opt = *c.ingest;
    else
        agora__ingest_options_default(&in->ingest_opt);
    in->rows = calloc(c.batch, sizeof *in->rows);
    if (in->rows == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory for the intake batch");
    if (rc == 0)
        rc = agora__spool_db_open(home, &in->db, in->dir, sizeof in->dir, err);
    for (size_t i = 0; rc == 0 && i < N_STATEMENTS; i++)
        if (sqlite3_prepare_v2(in->db, statements[i].sql, -1, stmt_at(in, i), NULL) != SQLITE_OK)
            rc = db_fail(in, "preparing the intake's statements", err);
    if (rc != 0) {
        agora__intake_close(in);
        return rc;
    }
    *out = in;
    return 0;
}

void agora__intake_close(agora__intake *in)
{
    if (in == NULL)
        return;
    agora__ingest_close(in->ing);
    for (size_t i = 0; i < N_STATEMENTS; i++)
        sqlite3_finalize(*stmt_at(in, i));
    sqlite3_close(in->db);
    free(in->rows);
    free(in);
}

/* ---- grouping -------------------------------------------------------------------------------- */

/* Read the next batch of 'received' rows. */
static int load_batch(agora__intake *in, size_t *n, agora__error *err)
{
    sqlite3_stmt *st = in->sel_received;
    sqlite3_bind_int64(st, 1, in->cfg.batch);
    size_t k = 0;
    int rc;
    while (k < in->cfg.batch && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        batch_row *r = &in->rows[k];
        memset(r, 0, sizeof *r);
        copy_col(st, 0, r->sop, sizeof r->sop);
        copy_col(st, 1, r->rel, sizeof r->rel);
        copy_col(st, 2, r->calling, sizeof r->calling);
        copy_col(st, 3, r->called, sizeof r->called);
        copy_col(st, 4, r->origin, sizeof r->origin);
        r->received_at = sqlite3_column_int64(st, 5);
        r->read_failures = sqlite3_column_int64(st, 6);
        k++;
    }
    int bad = k < in->cfg.batch && rc != SQLITE_DONE;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    *n = k;
    return bad ? db_fail(in, "reading received instances", err) : 0;
}

static void reject(batch_row *r, const char *reason, const char *why)
{
    r->outcome = OUT_REJECTED;
    r->reason = reason;
    agora__strlcpy(r->why, why, sizeof r->why);
}

/* Read one row's file in the sandbox. Returns 0, or the reader's host-side failure (the row is
 * then OUT_RETRY and the batch stops). */
static int read_row(agora__intake *in, batch_row *r, agora__error *err)
{
    char path[INTAKE_PATH_MAX];
    /* The path is the spool's own (in/HH/<sha>.dcm); refuse anything else a damaged database
     * could hold rather than open it. */
    if (strncmp(r->rel, "in/", 3) != 0 || strstr(r->rel, "..") != NULL ||
        snprintf(path, sizeof path, "%s/%s", in->dir, r->rel) >= (int)sizeof path) {
        reject(r, "bad-path", "the row's spool path is not a spool file name");
        return 0;
    }
    agora__ingest_meta m;
    agora__error e = {0};
    if (in->fault_next) {
        agora__ingest_debug_fault_next(in->ing, in->fault_next);
        in->fault_next = 0;
    }
    int rc = agora__ingest_metadata(in->ing, path, &m, &e);
    /* Host-side failures (no reader, out of memory, a system error opening the file other than
     * its absence, e.g. EMFILE) are retried on later polls, at most INTAKE_READ_ATTEMPTS times. */
    if (rc == AGORA_EINTERNAL || rc == AGORA_ENOMEM ||
        (agora__err_errno(rc) != 0 && rc != AGORA__ENOENT)) {
        r->outcome = OUT_RETRY;
        agora__strlcpy(r->why, e.msg, sizeof r->why);
        if (r->read_failures + 1 >= INTAKE_READ_ATTEMPTS)
            reject(r, "reader-failed", e.msg);
        return agora__error_set(err, rc, "the sandboxed reader failed: %s", e.msg);
    }
    if (rc == AGORA__ENOENT) {
        reject(r, "missing-file", "the spool file is gone");
        return 0;
    }
    if (rc != 0) {
        reject(r, "unreadable", e.msg);
        return 0;
    }
    if (strcmp(m.sop_uid, r->sop) != 0)
        reject(r, "sop-mismatch",
               "the data set's SOP Instance UID is not the one its sender announced");
    else if (m.study_uid[0] == '\0' || m.series_uid[0] == '\0')
        reject(r, "no-uid", "the data set has no Study or Series Instance UID");
    else {
        r->outcome = OUT_GROUPED;
        agora__strlcpy(r->study, m.study_uid, sizeof r->study);
        agora__strlcpy(r->series, m.series_uid, sizeof r->series);
        /* STOW-RS has no AE titles: what its receiver records there is a marker
         * (host/http/stow.h), not a sender a rule could name. */
        int stow = strcmp(r->origin, "stow") == 0;
        agora__route_attrs_from_meta(&m, stow ? NULL : r->calling, stow ? NULL : r->called,
                                     r->origin, &r->attrs);
    }
    agora__ingest_meta_free(&m);
    return 0;
}

/* The study row of a grouped instance: created, reopened (next generation) or touched. Returns
 * the generation the instance belongs to, or <0. */
static int64_t apply_study(agora__intake *in, const batch_row *r, int64_t now, agora__error *err)
{
    sqlite3_stmt *st = in->sel_study;
    sqlite3_bind_text(st, 1, r->study, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char state[16] = "", reason[16] = "";
    int64_t gen = 0;
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, state, sizeof state);
        copy_col(st, 1, reason, sizeof reason);
        gen = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(in, "reading a study", err);
    if (rc == SQLITE_DONE) {
        char key[AGORA__INTAKE_KEY_LEN + 1];
        study_key(r->study, key);
        st = in->ins_study;
        sqlite3_bind_text(st, 1, r->study, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, r->received_at);
        sqlite3_bind_int64(st, 4, now);
        return step_done(in, st, "recording a study", err) == 0 ? 1 : -1;
    }
    if (strcmp(state, "dispatched") == 0) {
        st = in->reopen_study;
        gen++;
    } else {
        st = in->touch_study;
        /* A study complete only because it was quiet was not: it receives again. A forced or
         * operator-forced one stays complete and takes the instance into the same generation. */
        if (strcmp(state, "complete") == 0 && strcmp(reason, "quiet") == 0)
            sqlite3_bind_text(st, 4, "receiving", -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 1, r->study, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->received_at);
    sqlite3_bind_int64(st, 3, now);
    return step_done(in, st, "updating a study", err) == 0 ? gen : -1;
}

/* The routing attributes as parameters ?5..?11 (modality, body part, SOP class, thickness,
 * frames, rows, columns), the same numbers in both statements that store them. */
static void bind_attrs(sqlite3_stmt *st, const agora__route_attrs *a)
{
    sqlite3_bind_text(st, 5, a->modality, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->body_part, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->sop_class, -1, SQLITE_STATIC);
    if (isnan(a->slice_thickness))
        sqlite3_bind_null(st, 8);
    else
        sqlite3_bind_double(st, 8, a->slice_thickness);
    sqlite3_bind_int64(st, 9, a->n_frames);
    sqlite3_bind_int64(st, 10, a->rows);
    sqlite3_bind_int64(st, 11, a->columns);
}

static int apply_grouped(agora__intake *in, const batch_row *r, int64_t now, agora__error *err)
{
    int64_t gen = apply_study(in, r, now, err);
    if (gen < 0)
        return -1;
    const agora__route_attrs *a = &r->attrs;
    sqlite3_stmt *st = in->upsert_series;
    sqlite3_bind_text(st, 1, r->study, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->series, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, gen);
    sqlite3_bind_int64(st, 4, r->received_at);
    bind_attrs(st, a);
    sqlite3_bind_text(st, 12, a->calling_ae, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, a->called_ae, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, a->origin, -1, SQLITE_STATIC);
    if (step_done(in, st, "recording a series", err) != 0)
        return -1;
    st = in->set_grouped;
    sqlite3_bind_text(st, 1, r->sop, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->study, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->series, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, gen);
    bind_attrs(st, a);
    sqlite3_bind_int64(st, 12, now);
    return step_done(in, st, "marking an instance grouped", err);
}

/* Write the outcomes of rows[0..n) in one transaction. */
static int apply_batch(agora__intake *in, size_t n, int64_t now, agora__error *err)
{
    int rc = exec(in, "BEGIN IMMEDIATE", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        batch_row *r = &in->rows[i];
        /* Under the write lock: a row another intake (another process on this spool) settled
         * since the batch was read is left alone, so nothing is counted twice. */
        sqlite3_stmt *st = in->still_received;
        sqlite3_bind_text(st, 1, r->sop, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (s != SQLITE_ROW && s != SQLITE_DONE) {
            rc = db_fail(in, "checking an instance's state", err);
            break;
        }
        if (s == SQLITE_DONE) {
            r->outcome = OUT_SETTLED;
            continue;
        }
        switch (r->outcome) {
        case OUT_GROUPED:
            rc = apply_grouped(in, r, now, err);
            break;
        case OUT_REJECTED:
            st = in->set_rejected;
            sqlite3_bind_text(st, 1, r->sop, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, r->reason, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, now);
            rc = step_done(in, st, "marking an instance rejected", err);
            break;
        default:
            st = in->set_failed;
            sqlite3_bind_text(st, 1, r->sop, -1, SQLITE_STATIC);
            rc = step_done(in, st, "counting a reader failure", err);
            break;
        }
    }
    if (rc == 0)
        rc = exec(in, "COMMIT", err);
    if (rc != 0)
        rollback(in);
    return rc;
}

/* One batch: 0 and *n rows read (0: nothing left), or an error (what was read is recorded). */
static int group_batch(agora__intake *in, int64_t now, size_t *n, agora__intake_poll_stats *ps,
                       agora__error *err)
{
    int rc = load_batch(in, n, err);
    if (rc != 0 || *n == 0)
        return rc;
    if (in->ing == NULL) {
        agora__error e = {0};
        rc = agora__ingest_open(&in->ingest_opt, &in->ing, &e);
        if (rc != 0)
            return agora__error_set(err, rc, "cannot start the sandboxed reader: %s", e.msg);
    }
    size_t done = 0;
    int read_rc = 0;
    agora__error read_err = {0};
    while (done < *n && read_rc == 0)
        read_rc = read_row(in, &in->rows[done++], &read_err);
    in->ing_used_us = mono_us();
    rc = apply_batch(in, done, now, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < done; i++) {
        const batch_row *r = &in->rows[i];
        if (r->outcome == OUT_GROUPED) {
            ps->grouped++;
        } else if (r->outcome == OUT_REJECTED) {
            ps->rejected++;
            logf_(in, 1, "spool file %s rejected (%s): %s", r->rel, r->reason, r->why);
        }
    }
    if (read_rc != 0) {
        *err = read_err;
        return read_rc;
    }
    *n = done;
    return 0;
}

/* ---- completion ------------------------------------------------------------------------------ */

typedef struct eval_row {
    char uid[AGORA__ROUTE_UID_MAX];
    char key[AGORA__INTAKE_KEY_LEN + 1];
    int64_t first, last, series_last;
} eval_row;

static int set_state(agora__intake *in, const char *uid, const char *from, const char *to,
                     const char *reason, int64_t now, int *changed, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "UPDATE spool_study SET state = ?3, reason = ?4, updated_at_ms = ?5,"
                           " dispatched_at_ms = CASE WHEN ?3 = 'dispatched' THEN ?5"
                           " ELSE dispatched_at_ms END"
                           " WHERE study_instance_uid = ?1 AND state = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(in, "preparing a state change", err);
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
    if (reason)
        sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, now);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(in, "changing a study's state", err);
    if (changed)
        *changed = rc == 0 && sqlite3_changes(in->db) > 0;
    sqlite3_finalize(st);
    return rc;
}

/* Receiving studies whose timers ran out -> complete, or the force action. */
static int evaluate(agora__intake *in, int64_t now, agora__intake_poll_stats *ps, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "SELECT s.study_instance_uid, s.study_key, s.first_arrival_ms,"
                           " s.last_arrival_ms, (SELECT MAX(r.last_arrival_ms) FROM spool_series r"
                           " WHERE r.study_instance_uid = s.study_instance_uid)"
                           " FROM spool_study s WHERE s.state = 'receiving'"
                           " ORDER BY s.last_arrival_ms LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(in, "preparing the timer pass", err);
    sqlite3_bind_int(st, 1, INTAKE_EVAL_MAX);
    eval_row *due = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(st, 2), last = sqlite3_column_int64(st, 3);
        int64_t slast =
            sqlite3_column_type(st, 4) == SQLITE_NULL ? last : sqlite3_column_int64(st, 4);
        if (now < complete_at(in, last, slast) && now < first + (int64_t)in->cfg.force_after_ms)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            eval_row *g = realloc(due, nc * sizeof *g);
            if (g == NULL) {
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory in the timer pass");
                break;
            }
            due = g;
            cap = nc;
        }
        eval_row *e = &due[n++];
        copy_col(st, 0, e->uid, sizeof e->uid);
        copy_col(st, 1, e->key, sizeof e->key);
        e->first = first;
        e->last = last;
        e->series_last = slast;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(in, "reading receiving studies", err);
    sqlite3_finalize(st);
    if (rc == 0 && n > 0)
        rc = exec(in, "BEGIN IMMEDIATE", err);
    if (rc == 0 && n > 0) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const eval_row *e = &due[i];
            const char *to = "complete", *reason = "quiet";
            if (now < complete_at(in, e->last, e->series_last)) {
                reason = "forced";
                if (in->cfg.force_action == AGORA__INTAKE_DISCARD)
                    to = "discarded", reason = NULL;
                else if (in->cfg.force_action == AGORA__INTAKE_HOLD)
                    to = "held", reason = NULL;
            }
            rc = set_state(in, e->uid, "receiving", to, reason, now, NULL, err);
        }
        if (rc == 0)
            rc = exec(in, "COMMIT", err);
        if (rc != 0)
            rollback(in);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const eval_row *e = &due[i];
        if (now >= complete_at(in, e->last, e->series_last)) {
            ps->completed++;
            continue;
        }
        const char *act = agora__intake_action_name(in->cfg.force_action);
        if (in->cfg.force_action == AGORA__INTAKE_DISCARD)
            ps->discarded++;
        else if (in->cfg.force_action == AGORA__INTAKE_HOLD)
            ps->held++;
        else
            ps->forced++;
        logf_(in, 1, "study %s still receiving after %llu s: forced (%s)", e->key,
              (unsigned long long)(in->cfg.force_after_ms / 1000), act);
    }
    free(due);
    return rc;
}

/* ---- emission -------------------------------------------------------------------------------- */

/* Everything one emitted study points into (freed after the hand-over). */
typedef struct built {
    agora__intake_study st;
    agora__intake_series *series;
    char **strings; /* every string the study points to */
    size_t n_strings, cap_strings;
    const char **ptrs; /* paths and SOP UIDs of all series, back to back */
} built;

static char *keep(built *b, const char *s)
{
    if (b->n_strings == b->cap_strings) {
        size_t nc = b->cap_strings ? b->cap_strings * 2 : 64;
        char **g = realloc(b->strings, nc * sizeof *g);
        if (g == NULL)
            return NULL;
        b->strings = g;
        b->cap_strings = nc;
    }
    char *c = strdup(s);
    if (c != NULL)
        b->strings[b->n_strings++] = c;
    return c;
}

static void built_free(built *b)
{
    for (size_t i = 0; i < b->n_strings; i++)
        free(b->strings[i]);
    free(b->strings);
    free(b->series);
    free(b->ptrs);
    memset(b, 0, sizeof *b);
}

typedef struct pending {
    char uid[AGORA__ROUTE_UID_MAX];
    char key[AGORA__INTAKE_KEY_LEN + 1];
    char reason[16];
    int64_t generation, first, last, n_instances;
} pending;

static int build_series(agora__intake *in, const pending *p, built *b, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "SELECT series_instance_uid, generation, modality, body_part,"
                           " sop_class_uid, slice_thickness, n_frames, image_rows, image_columns,"
                           " calling_ae, called_ae, origin,"
                           " (SELECT COUNT(*) FROM spool_instance i WHERE"
                           " i.study_instance_uid = r.study_instance_uid AND"
                           " i.series_instance_uid = r.series_instance_uid AND"
                           " i.state = 'grouped')"
                           " FROM spool_series r WHERE study_instance_uid = ?"
                           " ORDER BY first_arrival_ms, series_instance_uid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(in, "preparing the series of a study", err);
    sqlite3_bind_text(st, 1, p->uid, -1, SQLITE_STATIC);
    size_t cap = 0, total = 0;
    int rc = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (b->st.n_series == cap) {
            size_t nc = cap ? cap * 2 : 8;
            agora__intake_series *g = realloc(b->series, nc * sizeof *g);
            if (g == NULL) {
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory emitting a study");
                break;
            }
            b->series = g;
            cap = nc;
        }
        agora__intake_series *x = &b->series[b->st.n_series++];
        memset(x, 0, sizeof *x);
        x->series_uid = keep(b, col_text(st, 0));
        x->generation = (uint32_t)sqlite3_column_int64(st, 1);
        agora__route_attrs *a = &x->attrs;
        copy_col(st, 2, a->modality, sizeof a->modality);
        copy_col(st, 3, a->body_part, sizeof a->body_part);
        copy_col(st, 4, a->sop_class, sizeof a->sop_class);
        a->slice_thickness =
            sqlite3_column_type(st, 5) == SQLITE_NULL ? (double)NAN : sqlite3_column_double(st, 5);
        a->n_frames = (uint32_t)sqlite3_column_int64(st, 6);
        a->rows = (uint32_t)sqlite3_column_int64(st, 7);
        a->columns = (uint32_t)sqlite3_column_int64(st, 8);
        copy_col(st, 9, a->calling_ae, sizeof a->calling_ae);
        copy_col(st, 10, a->called_ae, sizeof a->called_ae);
        a->origin = strcmp(col_text(st, 11), "stow") == 0 ? "stow" : "dimse";
        x->n = (size_t)sqlite3_column_int64(st, 12); /* filled below; the count sizes ptrs */
        total += x->n;
        if (x->series_uid == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory emitting a study");
            break;
        }
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = db_fail(in, "reading the series of a study", err);
    sqlite3_finalize(st);
    if (rc == 0 && total > AGORA__INTAKE_STUDY_MAX)
        rc = agora__error_set(err, AGORA_ELIMIT, "the study holds more than %u instances",
                              AGORA__INTAKE_STUDY_MAX);
    if (rc == 0 && (b->ptrs = calloc(total ? total * 2 : 1, sizeof *b->ptrs)) == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory emitting a study");
    b->st.n_instances = total;
    return rc;
}

static int build_instances(agora__intake *in, const pending *p, built *b, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "SELECT sop_instance_uid, path FROM spool_instance"
                           " WHERE study_instance_uid = ? AND series_instance_uid = ?"
                           " AND state = 'grouped' ORDER BY received_at_ms, sop_instance_uid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(in, "preparing the instances of a study", err);
    size_t at = 0;
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < b->st.n_series; k++) {
        agora__intake_series *x = &b->series[k];
        size_t want = x->n, got = 0;
        const char **sops = b->ptrs + at, **paths = b->ptrs + b->st.n_instances + at;
        sqlite3_bind_text(st, 1, p->uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, x->series_uid, -1, SQLITE_STATIC);
        while (rc == 0 && got < want && sqlite3_step(st) == SQLITE_ROW) {
            char path[INTAKE_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", in->dir, col_text(st, 1));
            sops[got] = keep(b, col_text(st, 0));
            paths[got] = keep(b, path);
            if (sops[got] == NULL || paths[got] == NULL)
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory emitting a study");
            got++;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        /* Counted and read in one transaction (emit_one), so they agree; a mismatch is a bug. */
        if (rc == 0 && got != want)
            rc = agora__error_set(err, AGORA_EINTERNAL, "a series changed while it was emitted");
        x->sop_uids = sops;
        x->paths = paths;
        at += want;
    }
    sqlite3_finalize(st);
    return rc;
}

static int emit_one(agora__intake *in, const pending *p, int64_t now,
                    agora__intake_complete_fn on_complete, void *arg, agora__intake_poll_stats *ps,
                    agora__error *err)
{
    built b;
    memset(&b, 0, sizeof b);
    /* One read transaction, so the series counts and the instance lists are one snapshot. */
    int rc = exec(in, "BEGIN", err);
    if (rc == 0) {
        rc = build_series(in, p, &b, err);
        if (rc == 0)
            rc = build_instances(in, p, &b, err);
        sqlite3_exec(in->db, "COMMIT", NULL, NULL, NULL);
    }
    if (rc == AGORA_ELIMIT) {
        /* Never emittable as it is: held for the operator instead of failing every poll. */
        logf_(in, 2, "study %s held: %s", p->key, err->msg);
        built_free(&b);
        return set_state(in, p->uid, "complete", "held", NULL, now, NULL, err);
    }
    if (rc != 0) {
        built_free(&b);
        return rc;
    }
    b.st.study_uid = p->uid;
    b.st.key = p->key;
    b.st.generation = (uint32_t)p->generation;
    b.st.series = b.series;
    b.st.reason = p->reason;
    b.st.first_arrival_ms = p->first;
    b.st.last_arrival_ms = p->last;
    int took = on_complete(arg, &b.st);
    size_t n_series = b.st.n_series, n_inst = b.st.n_instances;
    built_free(&b);
    if (took != 0) {
        ps->handover_failed++;
        logf_(in, 1, "study %s generation %lld: the hand-over failed; it is emitted again", p->key,
              (long long)p->generation);
        return 0;
    }
    int changed = 0;
    rc = set_state(in, p->uid, "complete", "dispatched", p->reason, now, &changed, err);
    if (rc == 0 && changed) {
        ps->emitted++;
        logf_(in, 0, "study %s generation %lld complete (%s): %zu series, %zu instances", p->key,
              (long long)p->generation, p->reason, n_series, n_inst);
    }
    return rc;
}

static int emit(agora__intake *in, int64_t now, agora__intake_complete_fn on_complete, void *arg,
                agora__intake_poll_stats *ps, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "SELECT study_instance_uid, study_key, reason, generation,"
                           " first_arrival_ms, last_arrival_ms, n_instances FROM spool_study"
                           " WHERE state = 'complete' ORDER BY last_arrival_ms, study_key LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(in, "preparing the emission", err);
    sqlite3_bind_int64(st, 1, in->cfg.max_emit);
    pending *p = calloc(in->cfg.max_emit, sizeof *p);
    size_t n = 0;
    int rc = p ? 0 : agora__error_set(err, AGORA_ENOMEM, "out of memory emitting studies"), s = 0;
    while (rc == 0 && n < in->cfg.max_emit && (s = sqlite3_step(st)) == SQLITE_ROW) {
        copy_col(st, 0, p[n].uid, sizeof p[n].uid);
        copy_col(st, 1, p[n].key, sizeof p[n].key);
        copy_col(st, 2, p[n].reason, sizeof p[n].reason);
        if (p[n].reason[0] == '\0')
            agora__strlcpy(p[n].reason, "quiet", sizeof p[n].reason);
        p[n].generation = sqlite3_column_int64(st, 3);
        p[n].first = sqlite3_column_int64(st, 4);
        p[n].last = sqlite3_column_int64(st, 5);
        p[n].n_instances = sqlite3_column_int64(st, 6);
        n++;
    }
    if (rc == 0 && n < in->cfg.max_emit && s != SQLITE_DONE)
        rc = db_fail(in, "reading complete studies", err);
    sqlite3_finalize(st);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = emit_one(in, &p[i], now, on_complete, arg, ps, err);
    free(p);
    return rc;
}

/* ---- poll ------------------------------------------------------------------------------------ */

static int count_received(agora__intake *in, uint32_t *out, agora__error *err)
{
    sqlite3_stmt *st = in->count_received;
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return db_fail(in, "counting received instances", err);
    *out = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return 0;
}

int agora__intake_poll(agora__intake *in, int64_t now_ms, agora__intake_complete_fn on_complete,
                       void *arg, agora__intake_poll_stats *stats, agora__error *err)
{
    agora__intake_poll_stats local;
    agora__intake_poll_stats *ps = stats ? stats : &local;
    memset(ps, 0, sizeof *ps);
    uint64_t t0 = mono_us(), budget = (uint64_t)in->cfg.budget_ms * 1000u;
    int rc = 0;
    for (;;) {
        size_t n = 0;
        rc = group_batch(in, now_ms, &n, ps, err);
        if (rc != 0 || n < in->cfg.batch || mono_us() - t0 >= budget)
            break;
    }
    ps->group_us = mono_us() - t0;
    if (rc == 0)
        rc = count_received(in, &ps->backlog, err);
    /* Nothing is emitted while rows wait to be grouped: one of them may be the instance that
     * keeps a study receiving (intake.h, "Completion"). */
    if (rc == 0 && ps->backlog == 0) {
        rc = evaluate(in, now_ms, ps, err);
        if (rc == 0 && on_complete != NULL)
            rc = emit(in, now_ms, on_complete, arg, ps, err);
    }
    if (in->ing != NULL && ps->grouped + ps->rejected == 0 &&
        mono_us() - in->ing_used_us >= (uint64_t)in->cfg.idle_close_ms * 1000u) {
        agora__ingest_close(in->ing);
        in->ing = NULL;
    }
    return rc;
}

/* ---- operations ------------------------------------------------------------------------------ */

int agora__intake_list(agora__intake *in, int64_t now_ms, unsigned states, size_t max,
                       agora__intake_entry **out, size_t *n, int *more, agora__error *err)
{
    *out = NULL;
    *n = 0;
    if (more)
        *more = 0;
    if (states == 0)
        states =
            1u << AGORA__INTAKE_RECEIVING | 1u << AGORA__INTAKE_COMPLETE | 1u << AGORA__INTAKE_HELD;
    if (max == 0 || max > AGORA__INTAKE_LIST_MAX)
        max = AGORA__INTAKE_LIST_MAX;
    sqlite3_stmt *st = NULL, *mod = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "SELECT s.study_instance_uid, s.study_key, s.state, s.generation,"
                           " s.first_arrival_ms, s.last_arrival_ms, s.n_instances,"
                           " (SELECT COUNT(*) FROM spool_series r"
                           " WHERE r.study_instance_uid = s.study_instance_uid),"
                           " (SELECT MAX(r.last_arrival_ms) FROM spool_series r"
                           " WHERE r.study_instance_uid = s.study_instance_uid)"
                           " FROM spool_study s WHERE s.state IN (?1, ?2, ?3, ?4, ?5)"
                           " ORDER BY s.first_arrival_ms, s.study_key LIMIT ?6",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(in->db,
                           "SELECT DISTINCT modality FROM spool_series"
                           " WHERE study_instance_uid = ? ORDER BY modality",
                           -1, &mod, NULL) != SQLITE_OK) {
        int rc = db_fail(in, "preparing the listing", err);
        sqlite3_finalize(st);
        sqlite3_finalize(mod);
        return rc;
    }
    for (int i = 0; i < 5; i++)
        if (states & (1u << i))
            sqlite3_bind_text(st, i + 1, state_names[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)max + 1);
    agora__intake_entry *v = calloc(max, sizeof *v);
    int rc = v ? 0 : agora__error_set(err, AGORA_ENOMEM, "out of memory listing studies"), s = 0;
    size_t k = 0;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == max) {
            if (more)
                *more = 1;
            break;
        }
        agora__intake_entry *e = &v[k++];
        copy_col(st, 1, e->key, sizeof e->key);
        int state = state_parse(col_text(st, 2));
        e->state = state < 0 ? AGORA__INTAKE_RECEIVING : (agora__intake_state)state;
        e->generation = (uint32_t)sqlite3_column_int64(st, 3);
        e->first_arrival_ms = sqlite3_column_int64(st, 4);
        e->last_arrival_ms = sqlite3_column_int64(st, 5);
        e->n_instances = (uint32_t)sqlite3_column_int64(st, 6);
        e->n_series = (uint32_t)sqlite3_column_int64(st, 7);
        if (e->state == AGORA__INTAKE_RECEIVING) {
            int64_t slast = sqlite3_column_type(st, 8) == SQLITE_NULL ? e->last_arrival_ms
                                                                      : sqlite3_column_int64(st, 8);
            e->complete_at_ms = complete_at(in, e->last_arrival_ms, slast);
            e->force_at_ms = e->first_arrival_ms + (int64_t)in->cfg.force_after_ms;
            e->remaining_ms = max64(0, e->complete_at_ms - now_ms);
        }
        sqlite3_bind_text(mod, 1, col_text(st, 0), -1, SQLITE_TRANSIENT);
        size_t used = 0;
        while (sqlite3_step(mod) == SQLITE_ROW) {
            const char *m = col_text(mod, 0);
            size_t len = strlen(m);
            if (len == 0 || used + len + 2 > sizeof e->modalities)
                continue;
            if (used)
                e->modalities[used++] = '\\';
            memcpy(e->modalities + used, m, len);
            used += len;
            e->modalities[used] = '\0';
        }
        sqlite3_reset(mod);
        sqlite3_clear_bindings(mod);
    }
    if (rc == 0 && s != SQLITE_ROW && s != SQLITE_DONE)
        rc = db_fail(in, "listing studies", err);
    sqlite3_finalize(st);
    sqlite3_finalize(mod);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

int agora__intake_force(agora__intake *in, const char *key, int64_t now_ms, agora__error *err)
{
    return agora__intake_force_action(in, key, AGORA__INTAKE_PROCEED, now_ms, err);
}

int agora__intake_force_action(agora__intake *in, const char *key, agora__intake_action action,
                               int64_t now_ms, agora__error *err)
{
    if (action != AGORA__INTAKE_PROCEED && action != AGORA__INTAKE_DISCARD &&
        action != AGORA__INTAKE_HOLD)
        return agora__error_set(err, AGORA_EINVAL, "unknown force action");
    char prefix[AGORA__INTAKE_KEY_LEN + 1];
    size_t len = key ? strlen(key) : 0;
    if (len < 6 || len > AGORA__INTAKE_KEY_LEN)
        return agora__error_set(err, AGORA_EINVAL,
                                "a study key is 6 to %u hex digits (as `agora queue` lists it)",
                                AGORA__INTAKE_KEY_LEN);
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return agora__error_set(err, AGORA_EINVAL, "a study key is hex digits only");
        prefix[i] = c;
    }
    prefix[len] = '\0';
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(in->db,
                           "SELECT study_instance_uid, state FROM spool_study"
                           " WHERE substr(study_key, 1, ?1) = ?2 LIMIT 2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(in, "preparing the study lookup", err);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)len);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    char uid[AGORA__ROUTE_UID_MAX] = "", state[16] = "";
    int found = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (found++ == 0) {
            copy_col(st, 0, uid, sizeof uid);
            copy_col(st, 1, state, sizeof state);
        }
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return db_fail(in, "looking a study up", err);
    if (found == 0)
        return agora__error_set(err, AGORA__ENOENT, "no study with key %s in the spool", prefix);
    if (found > 1)
        return agora__error_set(err, AGORA_EINVAL,
                                "key %s names more than one study; give more digits", prefix);
    /* proceed and discard apply to a receiving or held study; hold to a receiving one. */
    static const char *const to[3] = {"complete", "discarded", "held"};
    static const char *const done[3] = {"forced complete", "discarded", "held"};
    int changed = 0, rc = 0;
    int allowed = strcmp(state, "receiving") == 0 ||
                  (strcmp(state, "held") == 0 && action != AGORA__INTAKE_HOLD);
    if (allowed)
        rc = set_state(in, uid, state, to[action], "operator", now_ms, &changed, err);
    if (rc != 0)
        return rc;
    if (!changed)
        return agora__error_set(err, AGORA_ESTATE,
                                "study %s is %s already: only a receiving %s can be %s", prefix,
                                state, action == AGORA__INTAKE_HOLD ? "study" : "or held study",
                                action == AGORA__INTAKE_HOLD ? "held" : "forced");
    logf_(in, 0, "study %s %s by the operator", prefix, done[action]);
    return 0;
}

void agora__intake_debug_fault_next(agora__intake *in, int fault)
{
    in->fault_next = fault;
}

int agora__intake_counts_get(agora__intake *in, agora__intake_counts *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    static const char *const sql[2] = {"SELECT state, COUNT(*) FROM spool_instance GROUP BY state",
                                       "SELECT state, COUNT(*) FROM spool_study GROUP BY state"};
    for (int q = 0; q < 2; q++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(in->db, sql[q], -1, &st, NULL) != SQLITE_OK)
            return db_fail(in, "preparing the counts", err);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *name = col_text(st, 0);
            uint64_t c = (uint64_t)sqlite3_column_int64(st, 1);
            if (q == 0) {
                if (strcmp(name, "received") == 0)
                    out->received = c;
                else if (strcmp(name, "grouped") == 0)
                    out->grouped = c;
                else if (strcmp(name, "rejected") == 0)
                    out->rejected = c;
            } else {
                int i = state_parse(name);
                if (i >= 0)
                    out->studies[i] = c;
            }
        }
        sqlite3_finalize(st);
        if (s != SQLITE_DONE)
            return db_fail(in, "counting", err);
    }
    return 0;
}
