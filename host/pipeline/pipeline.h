/*
 * The run pipeline: scan -> ingest (sandboxed) -> plugin view -> dispatch -> validate ->
 * re-identify -> store -> meter, as one object that `agora run`, `agora dev run` and (next) the
 * daemon drive. The library never prints: it reports through callbacks, and every invocation
 * ends in exactly one outcome with its classified status.
 *
 * Use:
 *   agora__pipeline_new(loop or NULL, &cfg, &p, &err);     loop NULL: the pipeline runs its own
 *   agora__pipeline_add_plugin(p, &plugin, &err);          once per plugin (starts its pool)
 *   agora__pipeline_scan(p, paths, n, &err);               files and/or folders: a study, a
 *                                                          series, or a whole drop folder
 *   agora__pipeline_dispatch(p, &err);                     every matching (series, plugin) job
 *   agora__pipeline_free(p);
 * Plugins may also be added after the scan (dev run starts its sandbox only once it knows
 * there is something to run); scan may be called again for the next input set.
 *
 * Loop: scan and dispatch run the loop (the caller's, or the pipeline's own) until they are
 * done, one job at a time, so they must not be called from a callback of that same loop. Timers,
 * signals and other handles of a caller's loop keep running meanwhile; one of them may call
 * agora__pipeline_cancel.
 *
 * Ownership and lifetime: everything a config or plugin description points to is borrowed and
 * must outlive the pipeline (the spec struct itself is copied). The scan is owned by the
 * pipeline (until the next scan or free). Everything an outcome points to is valid only during
 * the callback; copy what you keep.
 */
#ifndef AGORA_PIPELINE_H
#define AGORA_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "common.h"
#include "ledger.h"
#include "study.h"
#include "trust.h"
#include "worker.h"

typedef struct agora__pipeline agora__pipeline;

/* One plugin the pipeline runs. All pointers borrowed (see above). */
typedef struct agora__pipeline_plugin {
    const char *id, *version;
    const agora__manifest *manifest; /* declared inputs: modality, frame count */
    int every_series;                /* 1: run on every series, ignoring the declared inputs */
    agora__plugin_spec spec;         /* copied; the plugin bytes it points to are borrowed */
    const char *const *granted;      /* PS3.15 option names the plugin sees */
    size_t n_granted;
    /* Jobs of plugins with equal keys share one decode of a series (their views are equal). */
    uint32_t view_key;
    const agora__ledger_pricing *pricing; /* with cfg.ledger: how its invocations are billed */
    void *user;                           /* the caller's, untouched */
} agora__pipeline_plugin;

/* A plugin loaded through trust (agora__trust_load), with the storage the description points
 * into: grant names and the catalog's pricing. Stable storage: the pipeline borrows it. */
typedef struct agora__pipeline_trusted {
    agora__trust_loaded lp; /* the caller loads and frees it (after the pipeline is freed) */
    char granted_names[AGORA__OPT_COUNT][32];
    const char *granted[AGORA__OPT_COUNT];
    size_t n_granted;
    agora__ledger_pricing pricing;
} agora__pipeline_trusted;

/* Describe t (loaded) as a pipeline plugin: grants, pricing from the catalog entry, the job
 * spec from its manifest (timeout_s 0: the manifest's; fresh: a new worker per job). *pl
 * points into t. AGORA_EINVAL when the catalog's pricing model is unknown. */
int agora__pipeline_trusted_describe(agora__pipeline_trusted *t, uint32_t timeout_s, int fresh,
                                     agora__pipeline_plugin *pl, agora__error *err);

/* How an invocation ended. */
typedef enum agora__pipeline_end {
    AGORA__PIPELINE_RAN,       /* the job ran: job_status says how, validated whether kept */
    AGORA__PIPELINE_NOT_RUN,   /* could not be submitted (or no invocation id): error says why */
    AGORA__PIPELINE_REFUSED,   /* the admit callback refused it (e.g. revoked since loading) */
    AGORA__PIPELINE_CANCELLED, /* agora__pipeline_cancel before it was dispatched */
    AGORA__PIPELINE_SERIES_FAILED /* the series could not be prepared (decode, view): plugin is
                                     NULL; this one outcome stands for every plugin that would
                                     have run on it with the same view */
} agora__pipeline_end;

/* One invocation's outcome. Valid only during the callback. */
typedef struct agora__pipeline_outcome {
    agora__pipeline_end end;
    size_t job, n_jobs;          /* 1-based number among dispatched jobs, and their total */
    size_t series_index;         /* 0-based, in scan order */
    const agora__dicom_series *series;
    const char *label;           /* PHI-free series description ("CT, 40 frames 512x512") */
    const agora__pipeline_plugin *plugin; /* NULL for SERIES_FAILED */
    size_t plugin_index;
    agora__job_status job_status; /* RAN: the pool's classification */
    /* The classified status: the job status name ("ok", "timeout", ...), "invalid-result" when
     * an ok result failed validation or could not be stored, "input-error" (SERIES_FAILED,
     * NOT_RUN), "refused" or "cancelled". */
    const char *status;
    int validated;               /* the result passed validation (and, with a home, is stored) */
    const char *error;           /* why, "" when nothing to say; no PHI */
    const json_t *doc;           /* RAN: the worker's result document (pseudonymous) or NULL */
    uint64_t wall_ms;
    const char *invocation_id;   /* "" unless metered */
    uint64_t charged_units;
    int64_t charged_minor;
    int ledger_failed;           /* metered, but recording the invocation failed: ledger_error */
    const char *ledger_error;
} agora__pipeline_outcome;

typedef struct agora__pipeline_callbacks {
    /* After a scan (skipped files are scan->notes, series warnings in each series). Return 0 to
     * go on; non-zero makes agora__pipeline_scan return it. May be NULL. */
    int (*on_scan)(void *arg, const agora__dicom_scan *scan);
    /* Just before a job is dispatched (after its series was prepared and it was admitted). */
    void (*on_start)(void *arg, size_t job, size_t n_jobs, const agora__pipeline_plugin *pl,
                     size_t series_index, const char *label);
    /* Before a job is submitted: 0 lets it run, else the job is REFUSED with err's message.
     * May be NULL (everything admitted). `agora run` re-checks trust here. */
    int (*admit)(void *arg, const agora__pipeline_plugin *pl, agora__error *err);
    /* Exactly once per invocation (and once per series that could not be prepared). */
    void (*on_outcome)(void *arg, const agora__pipeline_outcome *o);
    void *arg;
} agora__pipeline_callbacks;

typedef struct agora__pipeline_config {
    uint8_t uid_key[32];      /* pseudonymous UID key (the clinic's or a developer session's) */
    uint32_t deid_flags;      /* AGORA__DEID_* (burned-in policy) */
    int allow_weak_isolation; /* the sandboxed reader continues when a namespace is refused */
    /* Store and meter (both or neither): validated results are re-identified and stored under
     * store_home, every invocation gets a ledger id before dispatch and is recorded after. NULL:
     * results are only reported (dev run). Borrowed. */
    const char *store_home;
    agora__ledger *ledger;
    agora__pipeline_callbacks cb;
} agora__pipeline_config;

/* cfg is copied. 0 or a negative code with err set. */
int agora__pipeline_new(uv_loop_t *loop, const agora__pipeline_config *cfg, agora__pipeline **out,
                        agora__error *err);

/* Start the plugin's worker pool. Returns its index (>= 0) or a negative code with err set
 * (the plugin is then not part of the pipeline). */
int agora__pipeline_add_plugin(agora__pipeline *p, const agora__pipeline_plugin *pl,
                               agora__error *err);
size_t agora__pipeline_n_plugins(const agora__pipeline *p);
/* The pool of plugin i (for its memory mechanism and the like); owned by the pipeline. */
agora__pool *agora__pipeline_pool(agora__pipeline *p, size_t i);

/* Scan the inputs in the sandboxed reader (started on first use). 0, the on_scan callback's
 * non-zero value, or a negative code with err set ("cannot start the sandboxed DICOM reader: ..."
 * or the scan's reason). */
int agora__pipeline_scan(agora__pipeline *p, const char *const *paths, size_t n,
                         agora__error *err);
/* The last scan, owned by the pipeline; NULL before the first. */
const agora__dicom_scan *agora__pipeline_scanned(const agora__pipeline *p);
/* How many (series, plugin) jobs dispatch would run on the last scan. */
size_t agora__pipeline_job_count(const agora__pipeline *p);

/* Run every job of the last scan, reporting through the callbacks. 0 when every job was
 * dispatched and reported (whatever their outcomes), else a negative code with err set (no
 * scan). Cancellation is not an error: the remaining jobs are reported CANCELLED. */
int agora__pipeline_dispatch(agora__pipeline *p, agora__error *err);

/* One job of the daemon's queue (host/daemon): its invocation id was minted when it was
 * enqueued (so a retried run records the same ledger row and derives the same result UIDs),
 * and its state change commits in the ledger's transaction. Borrowed for the dispatch. */
typedef struct agora__pipeline_job {
    size_t plugin_index;       /* the job's plugin (agora__pipeline_add_plugin's index): the
                                  other plugins of the pipeline stay idle */
    const char *invocation_id; /* AGORA__LEDGER_ID_LEN hex digits */
    /* After a job ran and its result was validated and stored (o->validated, o->status,
     * o->error are final; the charge is not known yet), before the ledger: return 1 to record
     * the invocation with in_txn run inside the ledger's transaction (agora__ledger_record_with:
     * the row and whatever in_txn writes commit together, or neither), 0 to record nothing
     * (the caller gives the job back: no row, so a later run of the same id is billed). The
     * daemon exports the SR/SEG here and tells in_txn the state to settle to. */
    int (*before_record)(void *arg, const agora__pipeline_outcome *o);
    int (*in_txn)(void *arg, struct sqlite3 *db, agora__error *err);
    void *arg;
} agora__pipeline_job;

/* The same as agora__pipeline_dispatch for one queued job: the last scan must hold exactly the
 * job's (series, plugin) invocation for job->plugin_index, which gets job->invocation_id instead of a fresh one and
 * is recorded through job's callbacks (the pipeline must have a ledger). A scan that would run
 * more than one invocation is refused (AGORA_EINVAL, nothing dispatched): the id names one. */
int agora__pipeline_dispatch_job(agora__pipeline *p, const agora__pipeline_job *job,
                                 agora__error *err);

/* Stop: jobs not yet dispatched end CANCELLED, a running one is cancelled in its pool. Safe
 * from any callback or handle of the pipeline's loop. */
void agora__pipeline_cancel(agora__pipeline *p);

/* Close every pool (running the loop until their workers are reaped), the reader and the scan.
 * NULL is fine. */
void agora__pipeline_free(agora__pipeline *p);

#endif
