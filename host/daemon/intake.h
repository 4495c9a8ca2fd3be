/*
 * Intake of `agora serve` (issue 12 items 2 and 3): from spooled instances to "this study is
 * complete". It works on the receive spool's database (HOME/spool/spool.db, host/dimse/spool.h):
 *
 * 1. Grouping. Rows in state 'received' (written by the DIMSE listener and the STOW-RS receiver
 *    through the spool API) are read in bounded batches through ONE sandboxed reader process
 *    (host/ingest; the data set is never parsed in the host process). For each file the reader's
 *    SOP Instance UID (0008,0018) must equal the one the C-STORE command (or the STOW part)
 *    announced, which names the file and keys the row; then the row gets its Study/Series
 *    Instance UIDs and routing attributes (route_attrs.h) and state 'grouped', and its study and
 *    series rows (spool_study, spool_series) get the arrival times. Outcomes per file:
 *      grouped                 read, UIDs present and consistent;
 *      rejected 'sop-mismatch' the data set's SOP Instance UID is not the announced one;
 *      rejected 'no-uid'       the reader read it but it has no Study or Series Instance UID;
 *      rejected 'unreadable'   the reader refused it (damaged, not DICOM, over a parser limit,
 *                              crashed the worker), or 'missing-file' (the spool file is gone).
 *    A rejected row and its file are kept (nothing is deleted), counted
 *    (agora__intake_counts) and reported through cfg->log without UIDs. Files WITHOUT pixel data
 *    (an incoming SR, KO, PR) are read by the same metadata request and grouped like images:
 *    they belong to the study's instance set (rows = columns = 0 in their attributes); whether an
 *    app runs on them is the rules' decision.
 *
 * 2. Completion, per study (Study Instance UID; DIMSE and STOW arrivals of one study share the
 *    spool and therefore the bucket). Times are the rows' received_at_ms (wall clock, UTC ms),
 *    not the time of grouping, so a grouping backlog or a restart does not stretch a timer:
 *      - a series is quiet when now >= its last arrival + series_quiet_ms;
 *      - a study is complete when now >= its last arrival + study_quiet_ms AND every one of its
 *        series is quiet (the mercure #32 lesson: a series still inside its timer blocks the
 *        study whatever the study timer says);
 *      - a study not complete by then is forced at first arrival of its generation +
 *        force_after_ms, with force_action: proceed (emitted, reason "forced"), discard (state
 *        'discarded', never emitted; its files stay in the spool) or hold (state 'held', listed,
 *        emitted only when an operator forces it, reason "operator");
 *      - no study is emitted while rows of the spool are still waiting to be grouped (the
 *        backlog might hold one of its instances); see agora__intake_poll.
 *    Study states: receiving -> complete -> dispatched, or held / discarded. 'complete' is
 *    durable: a study whose hand-over failed (on_complete != 0) or was cut by a crash is emitted
 *    again by the next poll (the queue's enqueue is idempotent on the instance set).
 *
 * 3. Amendments. An instance that arrives for a DISPATCHED study reopens it as generation + 1
 *    (state receiving, timers from the new arrivals); when it completes it is emitted with ALL
 *    its series and instances (a new SOP set, so one new job key in the queue). New instances of
 *    a complete-but-not-dispatched study join the same generation (it goes back to receiving).
 *    A held study stays held and a discarded one discarded when more instances arrive.
 *
 * 4. Restart. Nothing is kept in memory between polls: every state, time and generation is in
 *    spool.db, so after a restart the timers resume from the stored arrival times (nothing is
 *    deleted and nothing is reset). A study whose timers ran out while the daemon was down is
 *    complete at the first poll after its backlog is grouped.
 *
 * Display: listings (agora__intake_list) name a study by its KEY, the first 16 hex digits of the
 * SHA-256 of its Study Instance UID (the same hash as results/<sha256>/), never by a UID.
 *
 * Schema (agora.spool/2, migrated from /1 in place by agora__spool_open, plain SQL types):
 * spool_instance gains the reader's values and the outcome; spool_study and spool_series hold
 * the completion state (see spool.c). The UIDs stored there are the clinic's data: they stay in
 * its database and are never logged.
 *
 * Use (the daemon): open once with the configured quiet times and force action; a 1 s timer calls
 * agora__intake_poll(in, wall-clock ms, hand_over, ctx, &stats, &err), where hand_over evaluates
 * the rules on each series' attrs (agora__rules_eval) and enqueues the jobs (the instance set of
 * a job is the study's or the series' sop_uids), returning 0 only when every enqueue succeeded
 * (a duplicate counts as success). `agora queue` opens its own handle for agora__intake_list and
 * agora__intake_force.
 *
 * Threads: an agora__intake (its own SQLite connection and, once grouping starts, its own reader
 * process) is used by one thread at a time; several handles in several processes may share one
 * spool.db (`agora queue` lists and forces from the CLI while the daemon polls). The reader is
 * spawned on the first poll that has rows to group, kept for the following polls and closed
 * after idle_close_ms without rows, so list/force never start one.
 */
#ifndef AGORA_DAEMON_INTAKE_H
#define AGORA_DAEMON_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ingest.h"
#include "route_attrs.h"

/* Bounds (config values outside them are refused with AGORA_EINVAL by agora__intake_open). */
#define AGORA__INTAKE_QUIET_MAX_MS (24ull * 3600 * 1000)     /* series / study quiet: <= 1 day */
#define AGORA__INTAKE_FORCE_MAX_MS (7ull * 24 * 3600 * 1000) /* force-complete: <= 1 week */
#define AGORA__INTAKE_BATCH_MAX    4096u                     /* rows read per batch */
#define AGORA__INTAKE_EMIT_MAX     256u                      /* studies emitted per poll */
#define AGORA__INTAKE_STUDY_MAX    200000u                   /* instances of one emitted study */
#define AGORA__INTAKE_LIST_MAX     10000u                    /* entries of one listing */
#define AGORA__INTAKE_KEY_LEN      16u                       /* hex digits of a study key */

typedef enum {
    AGORA__INTAKE_PROCEED = 0, /* emit the study as it is (reason "forced") */
    AGORA__INTAKE_DISCARD = 1, /* mark it discarded; never emitted (files kept until the spool's
                                  retention, agora__spool_reap) */
    AGORA__INTAKE_HOLD = 2     /* mark it held until an operator forces it */
} agora__intake_action;

/* "proceed" | "discard" | "hold" -> *out; 0 or AGORA_EINVAL. */
int agora__intake_action_parse(const char *s, agora__intake_action *out);
const char *agora__intake_action_name(agora__intake_action a);

/* Optional log sink: one line, no UIDs, no values from files (reasons, counts, study keys and
 * spool file names, which are hashes). level: 0 info, 1 warning, 2 error. */
typedef void (*agora__intake_log_fn)(void *arg, int level, const char *msg);

typedef struct agora__intake_config {
    uint64_t series_quiet_ms;          /* default 10000 (10 s) */
    uint64_t study_quiet_ms;           /* default 60000 (60 s) */
    uint64_t force_after_ms;           /* default 5400000 (90 min) from the generation's start */
    agora__intake_action force_action; /* default PROCEED */
    uint32_t batch;                    /* rows per reader batch, default 256 (1..BATCH_MAX) */
    uint32_t budget_ms;     /* grouping stops starting new batches after this long (real time,
                               default 500): bounds how long one poll blocks its thread */
    uint32_t max_emit;      /* studies emitted per poll, default 32 (1..EMIT_MAX) */
    uint32_t idle_close_ms; /* the reader is closed after this long without rows (30000) */
    const agora__ingest_options *ingest; /* reader options; NULL: agora__ingest_options_default */
    agora__intake_log_fn log;            /* NULL: silent */
    void *log_arg;
} agora__intake_config;

void agora__intake_config_default(agora__intake_config *cfg);

typedef struct agora__intake agora__intake;

/* Open the intake of a clinic home: opens (creates, migrates) HOME/spool/spool.db with its own
 * connection; starts no process. cfg NULL: defaults. cfg is copied (ingest options and the log
 * sink are borrowed: they must outlive the handle). */
int agora__intake_open(const char *home, const agora__intake_config *cfg, agora__intake **out,
                       agora__error *err);
/* Close (the reader process too). NULL is fine. */
void agora__intake_close(agora__intake *in);

/* ---- what a complete study looks like to the daemon ------------------------------------------ */

typedef struct agora__intake_series {
    const char *series_uid;      /* Series Instance UID (real: never log it) */
    agora__route_attrs attrs;    /* see route_attrs.h for the first-instance rule */
    const char *const *paths;    /* [n] absolute paths of the spool files (Part 10) */
    const char *const *sop_uids; /* [n] their SOP Instance UIDs, in received order */
    size_t n;
    uint32_t generation; /* the generation in which the series first arrived */
} agora__intake_series;

typedef struct agora__intake_study {
    const char *study_uid; /* Study Instance UID (real: never log it) */
    const char *key;       /* AGORA__INTAKE_KEY_LEN hex digits, for logs and listings */
    uint32_t generation;   /* 1, then 2.. for amendments (instances after a dispatch) */
    const agora__intake_series *series; /* [n_series]: ALL series of the study, first arrived
                                           first */
    size_t n_series;
    size_t n_instances;                        /* total over the series */
    const char *reason;                        /* "quiet" | "forced" | "operator" */
    int64_t first_arrival_ms, last_arrival_ms; /* of this generation */
} agora__intake_study;

/* Hand-over of one complete study: everything in *st is borrowed for the call only. Return 0
 * when the study was taken (enqueued): only then is it marked dispatched. Non-zero: it stays
 * complete and is emitted again by the next poll. */
typedef int (*agora__intake_complete_fn)(void *arg, const agora__intake_study *st);

/* What one poll did (all optional reading for logs and tests). */
typedef struct agora__intake_poll_stats {
    uint32_t grouped, rejected; /* rows this poll moved out of 'received' */
    uint32_t backlog;           /* rows still 'received' after grouping (0: all caught up) */
    uint32_t completed, forced, discarded, held; /* transitions this poll made */
    uint32_t emitted, handover_failed;           /* on_complete calls returning 0 / non-zero */
    uint64_t group_us;                           /* real time spent grouping */
} agora__intake_poll_stats;

/* One poll, called by the daemon every second (a libuv timer; it blocks its thread for at most
 * about cfg->budget_ms plus one batch, so it may also run on a worker thread). now_ms is the wall
 * clock in UTC ms (injected by tests). In order:
 *   1. group 'received' rows in batches until none is left or the budget is spent;
 *   2. if the backlog is empty: evaluate the timers of every receiving study (-> complete, or
 *      forced per the action) and emit every complete study (operator-forced ones too), oldest
 *      first, at most cfg->max_emit, calling on_complete for each (NULL: grouping and timers
 *      only; complete studies wait for a poll with a callback).
 * Returns 0, or an AGORA_E* for a failure that stopped the poll (the spool database, or no
 * reader process could be started: rows stay 'received' and are retried next poll). A file the
 * reader refuses is not a failure of the poll. stats may be NULL. */
int agora__intake_poll(agora__intake *in, int64_t now_ms, agora__intake_complete_fn on_complete,
                       void *arg, agora__intake_poll_stats *stats, agora__error *err);

/* ---- operations (`agora queue`, the dashboard) ----------------------------------------------- */

typedef enum {
    AGORA__INTAKE_RECEIVING = 0,
    AGORA__INTAKE_COMPLETE = 1, /* waiting for the hand-over */
    AGORA__INTAKE_DISPATCHED = 2,
    AGORA__INTAKE_HELD = 3,
    AGORA__INTAKE_DISCARDED = 4
} agora__intake_state;
const char *agora__intake_state_name(agora__intake_state s); /* "receiving", ... */

/* One study as listed: no UID, only its key. */
typedef struct agora__intake_entry {
    char key[AGORA__INTAKE_KEY_LEN + 1];
    agora__intake_state state;
    uint32_t generation;
    uint32_t n_series, n_instances;
    int64_t first_arrival_ms, last_arrival_ms; /* of the current generation */
    int64_t complete_at_ms; /* receiving: when it completes if nothing more arrives (the later of
                               study quiet and every series' quiet); else 0 */
    int64_t force_at_ms;    /* receiving: when force_action applies; else 0 */
    int64_t remaining_ms;   /* receiving: complete_at_ms - now_ms of the listing, at least 0 */
    char modalities[64];    /* the series' modalities, distinct, '\\'-separated ("CT\\SR") */
} agora__intake_entry;

/* Studies in the given states (a bit mask of 1u << agora__intake_state; 0 means receiving,
 * complete and held: what is still waiting), oldest first, at most max (<= LIST_MAX) entries.
 * *out is malloc'ed (free it), *n its count; *more is set when entries were left off. */
int agora__intake_list(agora__intake *in, int64_t now_ms, unsigned states, size_t max,
                       agora__intake_entry **out, size_t *n, int *more, agora__error *err);

/* Operator force-complete of a receiving or held study, named by its key or a unique prefix of
 * at least 6 hex digits: it becomes complete (reason "operator") and the next poll emits it.
 * AGORA__ENOENT: no such study; AGORA_EINVAL: the prefix is ambiguous or malformed;
 * AGORA_ESTATE: it is complete, dispatched or discarded already (nothing changes). */
int agora__intake_force(agora__intake *in, const char *key, int64_t now_ms, agora__error *err);
/* The same with the operator's action (`agora queue force KEY --action A`): PROCEED as above;
 * DISCARD marks a receiving or held study discarded (never emitted; its files go with the
 * spool's retention); HOLD marks a receiving study held until forced. Same errors. */
int agora__intake_force_action(agora__intake *in, const char *key, agora__intake_action action,
                               int64_t now_ms, agora__error *err);

/* Testing hook: the reader misbehaves on the next file it reads (AGORA__INGEST_FAULT_*, see
 * ingest.h), as a hostile file could make it. */
void agora__intake_debug_fault_next(agora__intake *in, int fault);

/* Counts of spool rows by state and of studies by state (for `agora queue` and /healthz). */
typedef struct agora__intake_counts {
    uint64_t received, grouped, rejected; /* instances */
    uint64_t studies[5];                  /* by agora__intake_state */
} agora__intake_counts;
int agora__intake_counts_get(agora__intake *in, agora__intake_counts *out, agora__error *err);

#endif
