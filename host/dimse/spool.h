/*
 * The receive spool: where `agora serve` makes an instance durable before it says so.
 *
 * Layout under the clinic home (AGORA__HOME_SPOOL, "spool/"):
 *   spool.db            SQLite (WAL, synchronous=FULL): table spool_instance, one row per
 *                       SOP instance (the row is the commit point of a receipt)
 *   in/HH/<SHA>.dcm     the instance: a Part 10 file meta group this module writes from the
 *                       C-STORE command and context (SOP class, SOP instance, transfer syntax,
 *                       calling AE), then the data set exactly as received. SHA is the hex
 *                       SHA-256 of the SOP Instance UID, HH its first two digits (no UID in a
 *                       path, bounded directory sizes).
 *   tmp/                files being received (renamed into in/ when complete)
 *
 * Order of a receipt: data set bytes to tmp/ → fsync → rename into in/HH/ → fsync of in/HH/
 * (and of in/ when HH was new) → INSERT of the row (committed, synchronous=FULL) → only then
 * success. A crash before the commit leaves at most an unreferenced file, never a row without
 * its file; nothing is deleted at start (orphans are counted and logged).
 *
 * The data set is never parsed here: study and series grouping is left NULL in the row for the
 * sandboxed reader to fill later (host/daemon/intake.h, which owns the row's life after 'received':
 * grouped or rejected, and the spool_study / spool_series tables). The SQL uses plain types
 * (VARCHAR, BIGINT, CHAR, INTEGER, DOUBLE PRECISION) and INSERT ... ON CONFLICT DO NOTHING, which
 * PostgreSQL reads unchanged.
 *
 * Schema versions (spool_meta 'format'): agora.spool/1 the first slice (spool_instance);
 * agora.spool/2 adds the intake's columns and tables. Opening migrates an older spool in place,
 * once, under one IMMEDIATE transaction; rows are never rewritten or dropped by a migration.
 *
 * Threads: a handle (one SQLite connection) is used by one thread; the DIMSE listener and the
 * STOW-RS receiver each open their own, and several may share one spool.db.
 */
#ifndef AGORA_DIMSE_SPOOL_H
#define AGORA_DIMSE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;
struct sqlite3;

#define AGORA__SPOOL_FORMAT "agora.spool/2"

typedef struct agora__spool agora__spool;
typedef struct agora__spool_txn agora__spool_txn;

/* What the sender announced (the C-STORE command and context, or the STOW-RS part's meta
 * group). The sandboxed reader later checks sop_instance against the data set. origin: "stow"
 * or "dimse"; NULL (a field added in agora.spool/2, so initialisers that name only the first
 * five stay valid) means "stow" when called_ae is empty (what host/http/stow.c records: a DIMSE
 * receipt always has our AE title there), else "dimse". */
typedef struct agora__spool_instance {
    const char *sop_class, *sop_instance, *transfer_syntax;
    const char *calling_ae, *called_ae;
    const char *origin;
} agora__spool_instance;

/* Open (create) the spool of a clinic home. max_instance_bytes bounds one data set. */
int agora__spool_open(const char *home, uint64_t max_instance_bytes, agora__spool **out,
                      struct agora__error *err);
void agora__spool_close(agora__spool *sp);

/* Open a connection to HOME/spool/spool.db for another module of the same spool (the intake):
 * creates the directories and the file (0600), WAL + synchronous=FULL, a 10 s busy timeout, and
 * the schema (migrated to AGORA__SPOOL_FORMAT). dir receives the spool directory (absolute when
 * home is). The caller owns *db (sqlite3_close). */
int agora__spool_db_open(const char *home, struct sqlite3 **db, char *dir, size_t dir_size,
                         struct agora__error *err);

/* Tests: received_at_ms comes from clock(arg) instead of the wall clock (NULL restores it). */
void agora__spool_debug_clock(agora__spool *sp, int64_t (*clock)(void *arg), void *arg);

/* The spool's usage for the watermark checks: bytes (size_bytes: meta + data set) and count of
 * the instances recorded in spool.db by EVERY writer (the DIMSE listener's handle, the STOW-RS
 * thread's handle, another process), minus what retention removed. Read from the database
 * (one SUM over spool_instance: ~17 ms for 100,000 rows here, so not on every call) at most
 * every AGORA__SPOOL_USAGE_TTL_MS, plus this handle's own receipts since that read, so they
 * count at once. Another handle's receipts count within the TTL. bytes/count may be NULL.
 * 0, or a database error (the values are then the last known; a watermark check should fail
 * closed). */
#define AGORA__SPOOL_USAGE_TTL_MS 500u
int agora__spool_usage(agora__spool *sp, uint64_t *bytes, uint64_t *count,
                       struct agora__error *err);
/* Tests: the next agora__spool_usage call reads the database (no cached value). */
void agora__spool_usage_invalidate(agora__spool *sp);

/* What this handle saw at open plus its own receipts (NOT other handles'; the watermark uses
 * agora__spool_usage), and the files in in/ without a row found at open. */
uint64_t agora__spool_bytes(const agora__spool *sp);
uint64_t agora__spool_count(const agora__spool *sp);
uint64_t agora__spool_orphans(const agora__spool *sp);

/* ---- retention ---------------------------------------------------------------------------- */

/* Retention (like mercure's 3 days): the files and rows of a study are removed once
 *   - its spool_study is dispatched (handed to the queue) or discarded (force action / operator),
 *     and has not changed for retention_ms, and
 *   - the queue says none of its jobs is live (every job done or cancelled; a failed or
 *     retryable job may be retried and keeps the files) and the last of them finished at least
 *     retention_ms ago.
 * A study still receiving, complete, held, reopened by a late series, or with a live job is
 * never touched; nor are rejected or ungrouped instances (they stay for the operator). The rows
 * (spool_instance, spool_series, spool_study) go in one transaction that re-checks the study's
 * state, then the files are unlinked; a crash in between leaves orphan files (counted at open),
 * never a row without its file. A late instance after that starts a new study (generation 1)
 * and a resend is received again (the queue's unique key still keeps it from running twice).
 *
 * Never at start-up: the first call on a handle only arms it (a clock that is wrong at boot
 * deletes nothing); later calls reap. At most AGORA__SPOOL_REAP_MAX_STUDIES studies per call
 * (a timer calls it again). study_jobs(arg, study_uid, &live, &last_ms, err) is the queue's
 * agora__queue_study_jobs_fn; its failure stops the call (nothing more is removed). */
#define AGORA__SPOOL_RETENTION_DEFAULT_MS (3ull * 24 * 3600 * 1000)
#define AGORA__SPOOL_RETENTION_MIN_MS     (3600ull * 1000)
#define AGORA__SPOOL_REAP_MAX_STUDIES     64u

typedef int (*agora__spool_study_jobs_fn)(void *arg, const char *study_uid, uint64_t *live,
                                          int64_t *last_ms, struct agora__error *err);

typedef struct agora__spool_reap_stats {
    uint32_t armed;         /* 1: this was the first call (nothing done) */
    uint32_t studies;       /* removed */
    uint32_t kept_busy;     /* old enough, but a job is live or finished recently */
    uint64_t instances;     /* rows removed */
    uint64_t bytes;         /* size_bytes of the removed rows (the space the watermark regains) */
    uint64_t files_missing; /* rows whose file was already gone */
} agora__spool_reap_stats;

int agora__spool_reap(agora__spool *sp, int64_t now_ms, uint64_t retention_ms,
                      agora__spool_study_jobs_fn study_jobs, void *arg,
                      agora__spool_reap_stats *stats, struct agora__error *err);

/* 1 when the SOP instance is recorded already, 0 when not, <0 on a database error. */
int agora__spool_has(agora__spool *sp, const char *sop_instance, struct agora__error *err);

/* Start receiving an instance: a temporary file with its meta group written. */
int agora__spool_begin(agora__spool *sp, const agora__spool_instance *inst, agora__spool_txn **out,
                       struct agora__error *err);
/* Append data set bytes. AGORA_ELIMIT past max_instance_bytes. */
int agora__spool_write(agora__spool_txn *t, const void *p, size_t n, struct agora__error *err);
/* Make it durable and record it (see the order above). *duplicate is set when the instance
 * was recorded meanwhile (the new copy is dropped). Frees t whatever the outcome. */
int agora__spool_commit(agora__spool_txn *t, int *duplicate, struct agora__error *err);
/* Drop an unfinished receipt (its temporary file is removed). Frees t. */
void agora__spool_abandon(agora__spool_txn *t);

#endif
