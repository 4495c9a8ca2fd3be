/*
 * Running one prepared series through a worker pool and copying out what came back: the
 * dispatch stage of the run pipeline (pipeline.h). Never prints.
 */
#ifndef AGORA_PIPELINE_JOBS_H
#define AGORA_PIPELINE_JOBS_H

#include <jansson.h>
#include <uv.h>

#include "prepare.h"
#include "trust.h"
#include "worker.h"

/* One completed job, copied out of the pool's callback. Owned by the caller of
 * agora__jobs_run_one; release with agora__job_outcome_free. */
typedef struct agora__job_outcome {
    agora__job_status status;
    char error[512];
    json_t *doc;      /* worker result document (pseudonymous), owned */
    uint8_t *masks;   /* concatenated mask bytes (malloc'ed) or NULL */
    uint64_t masks_len;
    agora__mask_bytes *mask_index; /* [n_masks], malloc'ed */
    uint32_t n_masks;
    uint64_t wall_ms;
} agora__job_outcome;

void agora__job_outcome_free(agora__job_outcome *o);

/* Submit one prepared job to pool and run loop until it completes. 0 with *out filled (any
 * status), or a negative code when the job could not be submitted (err says why). *job_id (may
 * be NULL) holds the pool's id of the job while the loop runs, so a callback on the same loop
 * can agora__pool_cancel it. */
int agora__jobs_run_one(uv_loop_t *loop, agora__pool *pool, const agora__prepared *p,
                        agora__job_outcome *out, uint64_t *job_id, agora__error *err);

/* Close pool and run the loop until every worker is reaped. */
void agora__jobs_close_pool(uv_loop_t *loop, agora__pool *pool);

/* Pool spec from a parsed manifest's resources (memory, time, threads) and CLI overrides.
 * Strings and bytes are borrowed from the arguments. */
void agora__jobs_spec_from_manifest(const agora__manifest *m, const uint8_t *bytes, size_t len,
                                    uint32_t timeout_s, agora__plugin_spec *spec);

/* What to do about a failed job, for the one-line error: a hint per classification. */
/* The one acceptance check (agora__results_accept) of an ok outcome of prep, for `agora run`
 * (home: the clinic home the accepted result is then stored in) and `agora dev run` (home
 * NULL: nothing stored). invocation_id: the ledger id, or any 32 lower-case hex digits when
 * nothing is recorded. 0, or an error whose message names the offending field; the caller
 * reports status "invalid-result". */
int agora__jobs_accept(const agora__job_outcome *out, const agora__prepared *prep,
                       const char *invocation_id, const char *home, agora__error *err);

const char *agora__jobs_hint(agora__job_status st);

#endif
