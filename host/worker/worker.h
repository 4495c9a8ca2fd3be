/*
 * worker.h — the host side of running plugins: sealed pixel buffers, a pool of warm sandboxed
 * workers (one `agora-runner` process each) driven from a libuv loop, and validated results.
 *
 * Used by the host modules (ingest fills pixel buffers, the CLI/daemon submits jobs). Every
 * function here must be called from the thread that runs the pool's loop.
 *
 * OWNERSHIP, in one place:
 *   - agora__pixbuf: owned by whoever created it; agora__pixbuf_free releases it. The pool never
 *     keeps a caller's pixbuf: submit dup()s its descriptor, so the caller may free it as soon
 *     as submit returns.
 *   - agora__plugin_spec / agora__job_input: borrowed for the duration of the call only; the
 *     pool copies every byte and string it needs.
 *   - agora__job_result: owned by the pool and valid only during the completion callback. The
 *     callback may keep `doc` (json_incref it) and may take `masks` (copy the pointer and set
 *     res->masks to NULL; free it later with free()). Everything else is released after the
 *     callback returns.
 */
#ifndef AGORA_HOST_WORKER_H
#define AGORA_HOST_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "common.h"
#include "runner_proc.h" /* agora__runner_path, agora__template_dir */

/* ---- Pixel buffers ------------------------------------------------------------------------- */

/* A memfd the host fills with decoded pixels and then seals so that no process (host or
 * worker) can change it while plugins read it. */
typedef struct agora__pixbuf {
    int fd;        /* memfd, CLOEXEC; -1 when empty */
    uint64_t size; /* bytes */
    void *data;    /* writable mapping until sealed, then NULL */
    int sealed;    /* non-zero after agora__pixbuf_seal succeeded */
} agora__pixbuf;

/* Largest pixel buffer accepted (a 2 GiB volume is far beyond any single series we expect). */
#define AGORA__PIXBUF_MAX ((uint64_t)2 << 30)

/* Create a zero-filled buffer of `size` bytes (1..AGORA__PIXBUF_MAX) with a writable mapping at
 * out->data for the caller to fill. */
int agora__pixbuf_create(uint64_t size, agora__pixbuf *out, agora__error *err);
/* Unmap the writable mapping and seal the memfd against write, shrink, grow and further
 * sealing. Fails (and leaves the buffer unusable for jobs) when the kernel refuses a seal. */
int agora__pixbuf_seal(agora__pixbuf *pb, agora__error *err);
/* Release the mapping and descriptor. Safe on a zeroed or already freed buffer. */
void agora__pixbuf_free(agora__pixbuf *pb);

/* ---- Outcomes ------------------------------------------------------------------------------ */

/* How a job ended. Stable names (agora__job_status_name) appear in result documents. */
typedef enum agora__job_status {
    AGORA__JOB_OK = 0,
    AGORA__JOB_SETUP_ERROR,      /* the worker could not start/confine/load/init the plugin */
    AGORA__JOB_POLICY_VIOLATION, /* killed by SIGSYS: the plugin made a forbidden system call */
    AGORA__JOB_SIGNAL,           /* the worker died from another signal (see signal) */
    AGORA__JOB_TIMEOUT,          /* the job ran past its time limit; the host killed the worker */
    AGORA__JOB_OUT_OF_MEMORY,    /* see docs/protocol.md for how this is judged */
    AGORA__JOB_PROTOCOL_ERROR,   /* the worker broke the protocol or sent an invalid result */
    AGORA__JOB_PLUGIN_ERROR,     /* the plugin returned a negative code (message carried) */
    AGORA__JOB_CANCELLED,        /* cancelled by the caller or by closing the pool */
    AGORA__JOB_INPUT_ERROR,      /* the runner could not map or accept the job's inputs */
    AGORA__JOB_QUARANTINED,      /* the plugin was quarantined before this job could run */
} agora__job_status;

const char *agora__job_status_name(agora__job_status st);

/* One mask's bytes inside agora__job_result.masks. */
typedef struct agora__mask_bytes {
    int32_t region_id;
    uint64_t offset; /* into masks */
    uint64_t length;
} agora__mask_bytes;

typedef struct agora__job_result {
    uint64_t job_id;
    agora__job_status status;
    int32_t plugin_code; /* the plugin's negative code for AGORA__JOB_PLUGIN_ERROR, else 0 */
    int signal;          /* the fatal signal for SIGNAL / POLICY_VIOLATION, else 0 */
    const char *error;   /* one line, no PHI; "" when ok */
    json_t *doc;         /* the agora.result/1 document (NULL only when out of memory) */
    uint8_t *masks;      /* all mask bytes, concatenated (NULL when none) */
    uint64_t masks_len;
    const agora__mask_bytes *mask_index; /* n_masks entries */
    uint32_t n_masks;
} agora__job_result;

typedef void (*agora__job_cb)(agora__job_result *res, void *arg);
typedef void (*agora__progress_cb)(uint64_t job_id, double fraction, void *arg);

/* ---- Plugin spec and pool ------------------------------------------------------------------ */

typedef struct agora__worker_limits {
    uint64_t memory_bytes;     /* the memory cap (docs/sandbox.md, Memory); 0: 512 MiB */
    uint32_t cpu_seconds;      /* RLIMIT_CPU backstop per worker life; 0: 3600 */
    uint32_t max_threads;      /* 0: 1 */
    uint64_t max_result_bytes; /* serialized Result cap; 0: 8 MiB (also the frame cap) */
    uint32_t max_items;        /* findings + measurements + regions per job; 0: AGORA__RESULT_ITEMS_MAX */
    uint32_t max_log_lines;    /* per job; 0: 100 */
    uint64_t job_map_bytes;    /* largest pixel buffer + output area of one job; counted in the
                                  worker's address-space limit. 0: AGORA__PIXBUF_MAX +
                                  max_output_bytes; jobs above it are refused at submit */
} agora__worker_limits;

typedef struct agora__plugin_spec {
    const char *runner_path;     /* NULL: agora__runner_path() */
    const uint8_t *plugin_bytes; /* the shared object, copied into a sealed memfd */
    size_t plugin_size;
    uint8_t plugin_sha256[32]; /* expected hash; pool_new refuses bytes that differ */
    const char *plugin_id;
    const char *plugin_version;
    agora__worker_limits limits;
    uint32_t workers;             /* warm workers; 0: 1; at most 64 */
    uint32_t max_jobs_per_worker; /* recycle after this many jobs; 0: never */
    int fork_per_job;             /* each job in a fork of the initialised worker (zygote) */
    /* Each job in a runner of its own (spawn, confine, load, init), retired after that job; a
     * spare starts while a job runs. Excludes fork_per_job; implies max_jobs_per_worker 1. */
    int fresh_per_job;
    uint32_t timeout_ms;          /* per job; 0: 60000 */
    uint32_t setup_timeout_ms;    /* spawn to Ready; 0: timeout_ms, at most 30000. A worker that
                                     misses it quarantines the plugin at once (no retry) */
    uint32_t cancel_grace_ms;     /* after Cancel, kill when no Result came; 0: 2000 */
    int allow_weak_isolation;
    uint32_t quarantine_after; /* consecutive worker failures; 0: 3 */
    uint32_t max_queue;        /* queued jobs; 0: 256 */
    uint64_t max_output_bytes; /* output (mask) area per job; 0: 256 MiB */
    /* The plugin's assets (org.agora.assets/1): verified, sealed memfds (agora__asset_load_file).
     * Borrowed: pool_new dup()s each descriptor, so the caller may close its own afterwards.
     * Every worker is handed the same descriptors; nothing is hashed again per start. */
    const agora__asset *assets;
    uint32_t n_assets; /* 0..AGORA__ASSETS_MAX */
    /* Development mode: a forbidden system call is trapped and named in the job's message
     * ("forbidden system call: statfs (137)") before the worker dies of SIGSYS. Production
     * (0) keeps the kernel's kill. */
    int trap_violations;
} agora__plugin_spec;

typedef struct agora__pool agora__pool;

/* Create the pool and start its workers (they spawn and initialise before any job). Verifies the
 * plugin bytes against spec->plugin_sha256 first. */
int agora__pool_new(uv_loop_t *loop, const agora__plugin_spec *spec, agora__pool **out,
                    agora__error *err);

/* Forward progress reports (optional). */
void agora__pool_set_progress_cb(agora__pool *pool, agora__progress_cb cb, void *arg);

/* Per-frame geometry. NaN where unknown. */
typedef struct agora__frame_input {
    double position[3];
    double orientation[6];
    const char *sop_instance_uid; /* pseudonymous; NULL: "" */
    uint64_t offset;              /* byte offset of the frame in the pixel buffer */
    /* This frame's rescale (ABI 1.1 agora_frame.rescale_*); slope 0: the image's. */
    double rescale_slope, rescale_intercept;
} agora__frame_input;

typedef struct agora__attr {
    const char *keyword;
    const char *value;
} agora__attr;

/* One job: one series, de-identified. Mirrors agora_image; see agora.h for field meanings. */
typedef struct agora__job_input {
    uint32_t rows, columns, frames, samples_per_pixel;
    int32_t pixel_type;
    uint32_t bits_stored;
    int32_t photometric;
    double pixel_spacing[2];
    double slice_thickness, spacing_between_slices;
    double rescale_slope, rescale_intercept;
    const char *rescale_type, *modality, *study_uid, *series_uid; /* NULL: "" */
    const agora__frame_input *frame_info; /* `frames` entries; NULL: contiguous, NaN geometry */
    const agora__attr *attrs;             /* granted attributes only */
    uint32_t n_attrs;
    const agora__pixbuf *pixels; /* sealed */
    uint64_t output_bytes;       /* mask area; 0: none; capped by spec->max_output_bytes */
    /* Study scope (org.agora.study/1): the study's other series (at most
     * AGORA_STUDY_MAX_SERIES - 1), each described like this one with frame_info required and
     * offsets into this job's `pixels` (their pixels, attrs and output_bytes are unused). Their
     * frames follow this series' frames in the job-wide frame index. NULL/0: a one-series job.
     * Borrowed like the rest. */
    const struct agora__job_input *more_series;
    uint32_t n_more_series;
} agora__job_input;

/* Queue a job. On success *job_id (if not NULL) receives its id and `cb` is called exactly once,
 * later, from the loop (never from inside submit). Fails synchronously (cb never called) when
 * the input is invalid, the queue is full, the pool is closing or the plugin is quarantined. */
int agora__pool_submit(agora__pool *pool, const agora__job_input *in, agora__job_cb cb, void *arg,
                       uint64_t *job_id, agora__error *err);

/* Cancel a job: a queued job completes with AGORA__JOB_CANCELLED (its callback runs before this
 * returns); a running job is sent Cancel and its worker is killed if no Result arrives within
 * cancel_grace_ms (a job that finished first reports its real outcome). AGORA_EINVAL when the
 * job is unknown or already finished. */
int agora__pool_cancel(agora__pool *pool, uint64_t job_id, agora__error *err);

/* Non-zero once the plugin is quarantined; reason receives the last failure (may be NULL). */
int agora__pool_quarantined(const agora__pool *pool, char *reason, size_t reason_size);

/* Which mechanism enforces the memory cap of this pool's workers: "cgroup-v2" (memory.max and
 * pids.max per worker, on top of the runner's rlimits) or "rlimit" (the runner's RLIMIT_DATA/
 * RLIMIT_AS and seccomp rules alone), with a one-line detail: where, or why not cgroup v2. */
const char *agora__pool_memory_mechanism(const agora__pool *pool, const char **detail);

/* Statistics for tests and monitoring. */
typedef struct agora__pool_stats {
    uint64_t spawned;   /* runner processes started */
    uint64_t recycled;  /* workers retired after max_jobs_per_worker */
    uint64_t killed;    /* workers killed by the host */
    uint64_t completed; /* jobs completed (any status) */
    uint32_t live_workers;
    uint32_t queued;
} agora__pool_stats;
void agora__pool_get_stats(const agora__pool *pool, agora__pool_stats *st);

/* Close the pool: queued jobs complete as cancelled ("pool closed"; their callbacks run before
 * this returns), running jobs are cancelled, workers get Shutdown and are killed after a grace
 * period. Keep running the loop: `closed_cb` (may be NULL) runs once every process is reaped
 * and every handle closed; the pool is freed right before it. */
void agora__pool_close(agora__pool *pool, void (*closed_cb)(void *arg), void *arg);

#endif
