/*
 * worker_internal.h — private to host/worker: result validation, result documents, spawning.
 * Exposed to the module's unit tests; not for other modules (use worker.h).
 */
#ifndef AGORA_WORKER_INTERNAL_H
#define AGORA_WORKER_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "agora_ipc.pb-c.h"
#include "agora_result_limits.h"
#include "proto.h" /* AGORA__REGION_MASK */
#include "worker.h"

/* Caps on what a Result may carry (beyond Limits.max_items): the one table of result limits
 * (agora_result_limits.h, generated from schemas/result.schema.json), the same the runner's host
 * functions and the results validator use, so a result the runner accepted is not refused here
 * or at storage for a bound. */
#define AGORA__MAX_SCHEME_LEN        AGORA__RESULT_SCHEME_MAX
#define AGORA__MAX_CODE_LEN          AGORA__RESULT_CODE_MAX
#define AGORA__MAX_MEANING_LEN       AGORA__RESULT_MEANING_MAX
#define AGORA__MAX_NAME_LEN          AGORA__RESULT_NAME_MAX
#define AGORA__MAX_UNIT_LEN          AGORA__RESULT_UNIT_MAX
#define AGORA__MAX_LABEL_LEN         AGORA__RESULT_LABEL_MAX
#define AGORA__MAX_SUMMARY_LEN       AGORA__RESULT_SUMMARY_MAX
#define AGORA__MAX_URGENT_REASON_LEN AGORA__RESULT_TRIAGE_REASON_MAX
#define AGORA__MAX_POINTS_PER_REGION AGORA__RESULT_POINTS_MAX       /* pairs */
#define AGORA__MAX_POINTS_TOTAL      AGORA__RESULT_POINTS_TOTAL_MAX /* pairs, whole result */
/* Error and log lines the pool writes: cut to this, within what a stored result may carry. */
#define AGORA__MAX_ERROR_LEN 400
_Static_assert(AGORA__MAX_ERROR_LEN <= AGORA__RESULT_ERROR_MAX, "error text must fit a result");

/* What a job's result is checked against: the image it was given and its output area. */
typedef struct agora__result_geom {
    uint32_t rows, columns, frames; /* frames: of the whole job (all series) */
    uint64_t output_bytes;
    uint32_t max_items;
    /* Study scope: each series' job-wide frame range and size (0: one series, the fields
     * above). A region lies on one frame of one series; a mask within one series. */
    uint32_t n_series;
    struct {
        uint32_t first, frames, rows, columns;
    } series[AGORA_STUDY_MAX_SERIES];
} agora__result_geom;

/* The rows and columns of the series holding frame (< geom->frames), and the job-wide end of
 * that series' frames. */
void agora__result_geom_at(const agora__result_geom *g, uint32_t frame, uint32_t *rows,
                           uint32_t *columns, uint32_t *end);

/* The validated content of a Result: JSON arrays ready for the document, and the mask bytes
 * copied out of the output memfd. Owned by the struct; agora__validated_free releases it. */
typedef struct agora__validated {
    json_t *findings, *measurements, *regions;
    char *summary; /* NULL when absent */
    char *urgent_reason; /* triage (org.agora.triage/1); NULL when not urgent */
    uint8_t *masks;
    uint64_t masks_len;
    agora__mask_bytes *mask_index;
    uint32_t n_masks;
} agora__validated;

/* Check every field of an ok Result against geom (DESIGN §2: everything from a worker is
 * hostile) and build the arrays. Mask bytes are copied from out_fd (the job's output memfd)
 * into an owned buffer before anything is computed from them. On failure *out is left empty
 * and err says which rule was broken. */
int agora__result_validate(const Agora__Ipc__Result *r, const agora__result_geom *geom, int out_fd,
                           agora__validated *out, agora__error *err);
void agora__validated_free(agora__validated *v);

/* Copy a worker-supplied message into dst as one safe line: invalid UTF-8 is replaced by a
 * notice, over-long text is cut at a character boundary, control characters become spaces. */
void agora__sanitize_message(const char *src, char *dst, size_t dst_size);

typedef struct agora__result_metrics {
    uint64_t wall_ms, cpu_us, peak_rss_kb;
} agora__result_metrics;

/* Build the agora.result/1 document. v may be NULL (failed jobs: empty arrays). error is
 * included only when status is not ok. Returns a new reference, or NULL when out of memory. */
json_t *agora__result_doc(const char *plugin_id, const char *plugin_version, uint64_t job_id,
                          agora__job_status status, const char *error, const agora__validated *v,
                          const agora__result_metrics *m);

/* ---- cgroup.c: cgroup v2 memory.max/pids.max per worker, when the host has it ---- */

typedef struct agora__cgroup_env {
    int usable;     /* 1: workers get their own cgroup under base */
    char base[512]; /* the directory worker cgroups are created in */
    char why[400];  /* one line: where (usable) or why not (logs, dev run --json) */
} agora__cgroup_env;

/* Detect once per process (cached). */
const agora__cgroup_env *agora__cgroup_detect(void);
const char *agora__cgroup_mechanism(const agora__cgroup_env *c); /* "cgroup-v2" / "rlimit" */
/* From the texts of /proc/self/mountinfo and /proc/self/cgroup: the unified-hierarchy directory
 * of this process. 1 found (dir filled), 0 not (why filled). Pure, for the unit tests. */
int agora__cgroup_parse(const char *mountinfo, const char *self_cgroup, char *dir, size_t dir_size,
                        char *why, size_t why_len);
/* A cgroup.controllers / subtree_control list names both memory and pids. */
int agora__cgroup_controllers_ok(const char *list);
/* Create and configure one worker's cgroup; *procs_fd is its cgroup.procs opened for writing
 * (the spawned child writes "0" to join). 0 or a negative code. */
int agora__cgroup_create(const agora__cgroup_env *c, uint64_t memory_max, uint32_t pids_max,
                         char *path, size_t path_size, int *procs_fd, agora__error *err);
/* oom_kill count of memory.events (the text, or the file of a worker cgroup). */
long agora__cgroup_oom_kills_text(const char *events);
long agora__cgroup_oom_kills(const char *path);
void agora__cgroup_remove(const char *path);

#endif
