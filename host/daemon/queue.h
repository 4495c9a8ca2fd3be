/*
 * The durable job queue of `agora serve` (issue 12 item 5): one row per (plugin build, study,
 * instance set) to run, then to send back, in HOME/ledger.db next to the ledger so that "the
 * ledger row and the job's state change commit in one transaction" is one SQLite transaction
 * (agora__ledger_record_with + agora__queue_settle_in_txn, below).
 *
 * States (stored as the lowercase names):
 *
 *   waiting ──claim──> running ──settle (ledger txn)──> sending ──delivered──> done
 *      ^                 │  │                             │  ^ └──permanent──> failed
 *      │                 │  └─run_failed(permanent)─> failed │
 *      │                 └─run_failed(transient), lease      └─transient (attempt+1, backoff)
 *      │                   expiry, expire_mine, SIGTERM requeue ─> retryable ──claim──> running
 *      └── retry of a job that failed while running (operator)
 *   cancel: waiting | retryable | running | sending -> cancelled (operator, plugin revocation)
 *   settle may also go running -> done (no destination) or running -> failed (a permanent run
 *   failure recorded in the ledger).
 *
 * A job has a phase: "run" until it is settled, "send" after. `attempts` counts the claims of
 * the current phase (a claim is an attempt: a crash mid-attempt counts, so a job that kills its
 * worker every time ends in failed after max_attempts); it restarts at 0 when the job enters
 * sending and when an operator retries it. `run_attempts` keeps the run phase's count.
 * A SIGTERM requeue does not count (the attempt is given back).
 *
 * Unique key = hex SHA-256 over plugin_id '@' plugin_version '\n' study_uid '\n' and then each
 * SOP Instance UID of the set, sorted (strcmp) and de-duplicated, each followed by '\n'. The same
 * study sent twice gives the same key: enqueue reports a duplicate with the existing job's id
 * and adds nothing, whatever that job's state (a cancelled or failed job is retried by the
 * operator, not re-created by a resend). A late series gives a new SOP set, so a new key and one
 * new "amendment" job. Billing of an amendment: the ledger charges billing keys per study /
 * series / instance per month (meter/ledger.h), so a per-study app is not charged twice for an
 * amendment in the same month, a per-instance app is charged for the new instances only; in a
 * later month the amendment is a new charge.
 *
 * The invocation id (agora__ledger_mint) is minted AT ENQUEUE and stored with the job: every run
 * of the job records the ledger under the same id (insert-or-ignore), and the SR/SEG UIDs
 * derived from it (agora__dcmw_uid) are fixed at creation, so a retry re-sends the same objects.
 * Consequence for callers: record a ledger row only for the outcome that ends the run phase
 * (settle to sending / done / failed). A transient run failure goes back with
 * agora__queue_run_failed and no ledger row; otherwise the later successful run would find the
 * id recorded already and not be billed.
 *
 * Leases: a claim sets lease_owner (the host name), a random lease_token and leased_until. Every
 * change a worker makes to its job (heartbeat, settle, run_failed, send_result) is guarded by
 * id + lease_token + state, so a worker whose lease expired (and whose job was rescued and
 * claimed by another) or whose job was cancelled gets AGORA_ESTATE / AGORA_ECANCELLED and must
 * drop its work; it can never overwrite the other's state. agora__queue_rescue returns expired
 * leases: running -> retryable (or failed, class "lease-expired", once attempts reach
 * max_attempts); sending -> sending unleased, due now (or failed likewise).
 *
 * Claim order: priority DESC (1 urgent, 0 normal, -1 offpeak), then next_attempt_at, then id;
 * only jobs whose next_attempt_at <= now.
 *
 * Thread rule: an agora__queue handle (one SQLite connection) is used by one thread at a time;
 * each thread (dispatch threads, the sender, the loop, the CLI) opens its own. Several handles
 * and processes may share one ledger.db: writes are serialised by SQLite (BEGIN IMMEDIATE), so
 * two claims never return the same job.
 *
 * Errors: AGORA__EAGAIN when the database stayed locked by another writer past the 10 s busy
 * timeout (nothing changed: try again later); AGORA_EINTERNAL for other database failures.
 *
 * Bounds: see the AGORA__QUEUE_* limits below; strings outside them are refused with
 * AGORA_EINVAL (spec fields) or truncated (error messages, sanitised to printable ASCII).
 * No PHI: error messages of this module name job ids and states only; last_error must not
 * carry PHI (the caller's message is stored and printed by `agora queue`).
 *
 * Schema (plain SQL types; queue_meta 'format' = 'agora.queue/1'):
 *   queue_meta(k VARCHAR(64) PRIMARY KEY, v VARCHAR(256))
 *   queue_job(id INTEGER PRIMARY KEY (64-bit), unique_key CHAR(64) UNIQUE, state VARCHAR(16), phase
 *     VARCHAR(8), plugin_id, plugin_version, study_uid, scope, priority, send_to, rule_id,
 *     invocation_id CHAR(32), attempts, run_attempts, max_attempts, next_attempt_at,
 *     lease_owner, lease_token, leased_until, last_error_class, last_error, n_series, n_sop,
 *     created_ms, updated_ms)
 *   queue_job_uid(job_id BIGINT, kind CHAR(1) 'r' series | 'i' instance, ord BIGINT,
 *     uid VARCHAR(64), PRIMARY KEY (job_id, kind, ord))
 *   partial indexes queue_job_run (priority DESC, next_attempt_at, id) WHERE state IN
 *   ('waiting','retryable') and queue_job_send (same columns) WHERE state = 'sending' AND
 *   lease_token IS NULL: a claim reads one index entry, not the table.
 *
 * Note for PostgreSQL (issue 13). The DML below is written in the common subset (ON CONFLICT DO
 * NOTHING, RETURNING, CASE, guarded UPDATE ... WHERE state = ..., positional ?N parameters that
 * map 1:1 to $N). What changes:
 *   - DDL: `id INTEGER PRIMARY KEY` (SQLite's rowid alias) becomes `id BIGINT GENERATED BY
 *     DEFAULT AS IDENTITY PRIMARY KEY`; the partial indexes and CHECK read unchanged.
 *   - the claim's sub-select gains `FOR UPDATE SKIP LOCKED` (SQLite serialises writers, so it
 *     needs none and does not parse it); the rest of the claim statement is unchanged.
 *   - `BEGIN IMMEDIATE` becomes `BEGIN` (row locks do the serialising); PRAGMAs and the busy
 *     timeout go (they are the connection, as is sqlite3_* itself).
 *   - agora__queue_settle_in_txn takes the ledger's connection: with PostgreSQL it must be the
 *     libpq connection the ledger's append uses, so the two stay one transaction.
 *   - parameters ?N become $N; sqlite3_changes() becomes PQcmdTuples(). The guarded
 *     statements share one binding list (?1 id, ?2 lease token, ?3 now, ?4 class, ?5 message,
 *     ?6 a time) and leave some unused: prepare them with those six parameter types
 *     (PQprepare paramTypes), as PostgreSQL cannot infer the type of an unused $N.
 * Nothing else relies on SQLite behaviour: ids come from RETURNING, change counts from
 * RETURNING rows or the affected-row count, times are BIGINT Unix ms computed by the caller,
 * '' (never NULL) is "none" in text columns except the lease's, booleans are read as CASE ...
 * THEN 0 ELSE 1 END integers, CHAR(n) columns only ever hold n-character digests (so
 * PostgreSQL's blank padding never shows). Differences that do not matter: PostgreSQL's identity
 * skips the value a refused duplicate INSERT drew (ids have gaps).
 * Checked: tests/integration/queue/queue_sql_pg.py takes every statement from queue.c, applies
 * exactly these rewrites and prepares them on PostgreSQL 15, applies the schema twice, and
 * checks a duplicate enqueue, an urgent-first claim and that the claim reads queue_job_run.
 */
#ifndef AGORA_DAEMON_QUEUE_H
#define AGORA_DAEMON_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;
struct sqlite3;

#define AGORA__QUEUE_MAX_INSTANCES    100000 /* SOP instances of one job (= ledger units) */
#define AGORA__QUEUE_MAX_SERIES       10000  /* series of one job */
#define AGORA__QUEUE_MAX_LIST         10000  /* rows one list call returns */
#define AGORA__QUEUE_MAX_ATTEMPTS     100    /* max_attempts bound */
#define AGORA__QUEUE_DEFAULT_ATTEMPTS 8      /* max_attempts when the spec says 0 */
#define AGORA__QUEUE_MAX_LEASE_MS     (24ull * 3600 * 1000)
#define AGORA__QUEUE_ERROR_LEN        255 /* last_error, bytes (truncated, printable ASCII) */
#define AGORA__QUEUE_CLASS_LEN        64  /* last_error_class: 1..64 of [a-z0-9-] */
#define AGORA__QUEUE_HOST_LEN         64  /* lease owner: 1..64 of [A-Za-z0-9._-] */
#define AGORA__QUEUE_NAME_LEN         128 /* rule_id, send_to: 0..128 of [A-Za-z0-9._@:-] */
#define AGORA__QUEUE_UID_LEN          64  /* DICOM UIDs: 1..64 of [0-9.] */
#define AGORA__QUEUE_MAX_SKIP         64  /* plugin ids one claim may pass over */

typedef enum agora__job_state {
    AGORA__QJOB_WAITING = 0,
    AGORA__QJOB_RUNNING,
    AGORA__QJOB_SENDING,
    AGORA__QJOB_DONE,
    AGORA__QJOB_RETRYABLE,
    AGORA__QJOB_FAILED,
    AGORA__QJOB_CANCELLED,
    AGORA__QJOB_STATE_COUNT
} agora__job_state;

/* "waiting", "running", ... ; NULL for a value out of range. */
const char *agora__job_state_name(agora__job_state s);
/* name -> state: 0, or AGORA_EINVAL for an unknown name. */
int agora__job_state_parse(const char *name, agora__job_state *out);

/* What enqueue needs; everything borrowed for the duration of the call. */
typedef struct agora__job_spec {
    const char *plugin_id;          /* 1..128 of [A-Za-z0-9._-] (as the ledger) */
    const char *plugin_version;     /* 1..64 of [A-Za-z0-9._+-] */
    const char *study_uid;          /* real UID: stored in the clinic's DB, never logged */
    const char *const *sop_uids;    /* the instance set; the key hashes it sorted, de-duplicated */
    size_t n_sop;                   /* 1..AGORA__QUEUE_MAX_INSTANCES */
    const char *scope;              /* "series" | "study" */
    const char *const *series_uids; /* what to run on */
    size_t n_series;                /* 1..AGORA__QUEUE_MAX_SERIES */
    int priority;                   /* 1 urgent (claimed first), 0 normal, -1 offpeak */
    const char *send_to;            /* destination name; "" or NULL: none (settle to done) */
    const char *rule_id;            /* "" or NULL for the default rule */
    unsigned max_attempts;          /* per phase; 0: AGORA__QUEUE_DEFAULT_ATTEMPTS */
    uint64_t not_before_ms;         /* Unix ms; 0: due now */
} agora__job_spec;

/* One job as read back. Owned by the caller: agora__job_free (from get/claim) or
 * agora__job_list_free (from list). Strings are NUL-terminated copies. */
typedef struct agora__job {
    int64_t id;
    char key[65]; /* unique key, hex SHA-256 */
    agora__job_state state;
    int send_phase; /* 0: run phase, 1: settled (results exist, ledger recorded) */
    char plugin_id[129];
    char plugin_version[65];
    char study_uid[65];  /* real UID: do not print or log (use study_hash) */
    char study_hash[13]; /* first 12 hex of SHA-256(study_uid): for display */
    char scope[8];
    int priority;
    char send_to[AGORA__QUEUE_NAME_LEN + 1];
    char rule_id[AGORA__QUEUE_NAME_LEN + 1];
    char invocation_id[33];
    unsigned attempts;     /* claims in the current phase */
    unsigned run_attempts; /* claims in the run phase */
    unsigned max_attempts;
    uint64_t next_attempt_at;                          /* Unix ms */
    char lease_owner[AGORA__QUEUE_HOST_LEN + 1];       /* "" when not leased */
    char lease_token[33];                              /* "" when not leased */
    uint64_t leased_until;                             /* Unix ms; 0 when not leased */
    char last_error_class[AGORA__QUEUE_CLASS_LEN + 1]; /* "" none */
    char last_error[AGORA__QUEUE_ERROR_LEN + 1];       /* "" none */
    uint64_t created_ms, updated_ms;
    size_t n_series, n_sop;
    /* Loaded by get(with_sets) and claim only (NULL otherwise): malloc'ed arrays of malloc'ed
     * strings, in enqueue order (series) and sorted order (instances). */
    char **series_uids;
    char **sop_uids;
} agora__job;

void agora__job_free(agora__job *j);
void agora__job_list_free(agora__job *jobs, size_t n);

typedef struct agora__queue agora__queue;

/* Open (creating the tables if needed) the queue in HOME/ledger.db. The caller closes. */
int agora__queue_open(const char *home, agora__queue **out, struct agora__error *err);
/* Same with an explicit database path (tests). */
int agora__queue_open_path(const char *db_path, agora__queue **out, struct agora__error *err);
void agora__queue_close(agora__queue *q);

/* Tests only: the clock this handle uses (Unix ms); 0 restores the real clock.
 * agora__queue_settle_in_txn has no handle and always uses the real clock. */
void agora__queue_set_now(agora__queue *q, uint64_t now_ms);

/* Add a job. *job_id: the new job, or the existing one when the key is known (*duplicate = 1,
 * nothing changed). duplicate may be NULL. */
int agora__queue_enqueue(agora__queue *q, const agora__job_spec *s, int64_t *job_id, int *duplicate,
                         struct agora__error *err);

/* Claim the next due job. from: AGORA__QJOB_WAITING or AGORA__QJOB_RETRYABLE claim a run (both
 * states, running afterwards); AGORA__QJOB_SENDING claims a delivery (stays sending, leased).
 * host: the lease owner (1..64 of [A-Za-z0-9._-]); lease_ms: 1..AGORA__QUEUE_MAX_LEASE_MS.
 * *out: the job with its sets loaded, or NULL when nothing is due (returns 0). Choose lease_ms
 * longer than an attempt can take (the plugin's time limit plus export or delivery), or renew
 * it with heartbeat. An error after the claim committed (reading the sets: out of memory)
 * leaves the job leased until rescue returns it. */
int agora__queue_claim(agora__queue *q, agora__job_state from, const char *host, uint64_t lease_ms,
                       agora__job **out, struct agora__error *err);

/* The same, passing over the jobs of the plugin ids skip[0..n_skip) (n_skip 0..
 * AGORA__QUEUE_MAX_SKIP): a dispatcher whose worker budget for a plugin is used up claims the
 * next job of another plugin instead, in the same order otherwise. */
int agora__queue_claim_skipping(agora__queue *q, agora__job_state from, const char *host,
                                uint64_t lease_ms, const char *const *skip, size_t n_skip,
                                agora__job **out, struct agora__error *err);

/* Extend the lease of a claimed job to now + lease_ms. It reads only job->id and
 * job->lease_token, so a watchdog thread may renew the leases of jobs that a dispatch thread
 * runs synchronously, through the watchdog's own handle. AGORA_ECANCELLED when the job was
 * cancelled (stop the work), AGORA_ESTATE when the lease was lost (rescued, claimed by another). */
int agora__queue_heartbeat(agora__queue *q, const agora__job *job, uint64_t lease_ms,
                           struct agora__error *err);

/* Return expired leases (leased_until < now), see the header comment. *n_rescued (may be NULL):
 * jobs changed. */
int agora__queue_rescue(agora__queue *q, size_t *n_rescued, struct agora__error *err);

/* The SQL of "the run is over" for agora__ledger_record_with's callback: on db (the ledger's
 * connection, inside its transaction) move job_id from running (guarded by lease_token) to
 * next = SENDING (results exported; due now, attempts restart; a job without a destination
 * goes to done instead), DONE or FAILED
 * (error_class 1..64 of [a-z0-9-] required, error_msg optional). Errors as heartbeat; any error
 * makes the caller roll the ledger row back. */
int agora__queue_settle_in_txn(struct sqlite3 *db, int64_t job_id, const char *lease_token,
                               agora__job_state next, const char *error_class,
                               const char *error_msg, struct agora__error *err);

/* The same as a ready callback for agora__ledger_record_with (arg: an agora__queue_settle,
 * borrowed for the call):
 *   agora__queue_settle s = {job->id, job->lease_token, AGORA__QJOB_SENDING, NULL, NULL};
 *   rc = agora__ledger_record_with(ledger, &outcome, agora__queue_settle_cb, &s, &receipt, err);
 */
typedef struct agora__queue_settle {
    int64_t job_id;
    const char *lease_token;
    agora__job_state next;
    const char *error_class, *error_msg; /* FAILED only */
} agora__queue_settle;
int agora__queue_settle_cb(void *arg, struct sqlite3 *db, struct agora__error *err);

/* A run that ended without a ledger row: permanent -> failed; otherwise -> retryable, due at
 * now + retry_after_ms (failed instead once attempts reached max_attempts). error_class
 * required (1..64 of [a-z0-9-]). Guarded like heartbeat. */
int agora__queue_run_failed(agora__queue *q, const agora__job *job, int permanent,
                            const char *error_class, const char *error_msg, uint64_t retry_after_ms,
                            struct agora__error *err);

/* The outcome of one delivery attempt of a claimed sending job. */
typedef enum agora__send_kind {
    AGORA__SEND_DELIVERED = 0, /* -> done */
    AGORA__SEND_TRANSIENT,     /* stays sending, unleased, due at now + backoff_ms; failed with
                                  the class once attempts reached max_attempts */
    AGORA__SEND_PERMANENT,     /* -> failed with the class at once */
} agora__send_kind;
int agora__queue_send_result(agora__queue *q, const agora__job *job, agora__send_kind kind,
                             const char *error_class /* required unless delivered */,
                             const char *error_msg, uint64_t backoff_ms, struct agora__error *err);

/* Operator retry: failed (run phase -> waiting; send phase -> sending), retryable or unleased
 * sending -> due now, attempts restart at 0. Other states: AGORA_ESTATE with a message naming
 * the state and what can be retried; unknown id: AGORA_EINVAL. */
int agora__queue_retry(agora__queue *q, int64_t job_id, struct agora__error *err);
/* Operator cancel: waiting, retryable, running or sending -> cancelled (class "cancelled").
 * done/failed/cancelled: AGORA_ESTATE; unknown id: AGORA_EINVAL. A running or sending worker
 * notices at its next guarded call (AGORA_ECANCELLED). */
int agora__queue_cancel(agora__queue *q, int64_t job_id, struct agora__error *err);

/* Start-up: every job still leased by host was held by its previous process, which died
 * (SIGKILL, power loss): treat those leases as expired now instead of waiting for them to run
 * out (attempt kept, as agora__queue_rescue; failed once the attempts ran out, so a job that
 * kills the daemon every time stops). Call it before the first claim; host names must then be
 * unique per daemon. *n (may be NULL): jobs changed. */
int agora__queue_expire_mine(agora__queue *q, const char *host, size_t *n,
                             struct agora__error *err);
/* SIGTERM: every job leased by host goes back (running -> retryable, sending -> unleased),
 * due now, the attempt given back. *n (may be NULL): jobs requeued. */
int agora__queue_requeue_mine(agora__queue *q, const char *host, size_t *n,
                              struct agora__error *err);
/* Revocation of a build: its waiting, retryable, running and sending jobs -> cancelled with
 * class "revoked" and reason (1..255 printable ASCII, no PHI) as last_error; undelivered
 * results of a revoked build are not sent. *n (may be NULL): jobs cancelled. */
int agora__queue_cancel_plugin(agora__queue *q, const char *plugin_id, const char *version,
                               const char *reason, size_t *n, struct agora__error *err);

/* One job by id, with its series/instance sets when with_sets. AGORA_EINVAL: unknown id. */
int agora__queue_get(agora__queue *q, int64_t job_id, int with_sets, agora__job **out,
                     struct agora__error *err);

/* Jobs newest first (id DESC), without their sets. state_mask: bit (1u << state) per state
 * wanted, 0 = all. limit: 1..AGORA__QUEUE_MAX_LIST. *out: array of *n jobs (may be 0, then
 * NULL), freed with agora__job_list_free. */
int agora__queue_list(agora__queue *q, unsigned state_mask, size_t limit, agora__job **out,
                      size_t *n, struct agora__error *err);

/* Jobs per state, indexed by agora__job_state. */
/* The jobs of one study (any generation), for the spool's retention: *live counts those not
 * finished (every state but done and cancelled: a failed or retryable job may be retried and
 * needs the files), *last_ms is the latest updated_ms among them (0: no job). 0 or an error. */
int agora__queue_study_jobs(agora__queue *q, const char *study_uid, uint64_t *live,
                            int64_t *last_ms, agora__error *err);
/* The same as the callback agora__spool_reap takes (arg: the agora__queue *). */
int agora__queue_study_jobs_fn(void *q, const char *study_uid, uint64_t *live, int64_t *last_ms,
                               agora__error *err);
int agora__queue_counts(agora__queue *q, uint64_t counts[AGORA__QJOB_STATE_COUNT],
                        struct agora__error *err);

#endif
