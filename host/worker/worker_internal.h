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
#include "worker.h"

#define AGORA__REGION_MASK 4 /* Region.kind for masks on the wire */

/* Caps on what a Result may carry (beyond Limits.max_items). */
/* The same caps as the runner's host functions (sandbox/hostapi.c): a plugin whose items the
 * runner accepted never fails validation here for a length. */
#define AGORA__MAX_SCHEME_LEN        64
#define AGORA__MAX_CODE_LEN          256
#define AGORA__MAX_MEANING_LEN       1024
#define AGORA__MAX_NAME_LEN          1024
#define AGORA__MAX_UNIT_LEN          64
#define AGORA__MAX_LABEL_LEN         1024
#define AGORA__MAX_SUMMARY_LEN       65536
#define AGORA__MAX_ERROR_LEN         400
#define AGORA__MAX_POINTS_PER_REGION 65536   /* pairs */
#define AGORA__MAX_POINTS_TOTAL      1000000 /* pairs, whole result */

/* What a job's result is checked against: the image it was given and its output area. */
typedef struct agora__result_geom {
    uint32_t rows, columns, frames;
    uint64_t output_bytes;
    uint32_t max_items;
} agora__result_geom;

/* The validated content of a Result: JSON arrays ready for the document, and the mask bytes
 * copied out of the output memfd. Owned by the struct; agora__validated_free releases it. */
typedef struct agora__validated {
    json_t *findings, *measurements, *regions;
    char *summary; /* NULL when absent */
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

/* Start the runner: socketpair, fork, child gets its end as fd 3 (everything else CLOEXEC or
 * closed), stdin/stdout on /dev/null, stderr inherited, an empty environment but AGORA_LOG.
 * *sock receives the host end (non-blocking, CLOEXEC). */
int agora__spawn_runner(const char *runner_path, pid_t *pid, int *sock, agora__error *err);

#endif
