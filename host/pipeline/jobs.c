/* Running prepared jobs through a pool (see jobs.h). */
#include "jobs.h"
#include "results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct wait_ctx {
    int done;
    agora__job_outcome *out;
    uint64_t start_ns;
} wait_ctx;

void agora__job_outcome_free(agora__job_outcome *o)
{
    if (o->doc != NULL)
        json_decref(o->doc);
    free(o->masks);
    free(o->mask_index);
    memset(o, 0, sizeof *o);
}

static void on_done(agora__job_result *res, void *arg)
{
    wait_ctx *w = arg;
    agora__job_outcome *o = w->out;
    o->status = res->status;
    agora__strlcpy(o->error, res->error ? res->error : "", sizeof o->error);
    o->doc = json_incref(res->doc);
    /* Take the mask bytes (the pool lets the callback keep them) and copy the index. */
    o->masks = res->masks;
    o->masks_len = res->masks_len;
    res->masks = NULL;
    if (res->n_masks > 0) {
        o->mask_index = calloc(res->n_masks, sizeof *o->mask_index);
        if (o->mask_index != NULL) {
            memcpy(o->mask_index, res->mask_index, res->n_masks * sizeof *o->mask_index);
            o->n_masks = res->n_masks;
        }
    }
    o->wall_ms = (agora__now_ns() - w->start_ns) / 1000000u;
    w->done = 1;
}

int agora__jobs_run_one(uv_loop_t *loop, agora__pool *pool, const agora__prepared *p,
                        agora__job_outcome *out, uint64_t *job_id, agora__error *err)
{
    memset(out, 0, sizeof *out);
    wait_ctx w = {0, out, agora__now_ns()};
    int rc = agora__pool_submit(pool, &p->input, on_done, &w, job_id, err);
    if (rc != 0)
        return rc;
    while (!w.done)
        uv_run(loop, UV_RUN_ONCE);
    return 0;
}

static void on_closed(void *arg)
{
    *(int *)arg = 1;
}

void agora__jobs_close_pool(uv_loop_t *loop, agora__pool *pool)
{
    int closed = 0;
    agora__pool_close(pool, on_closed, &closed);
    while (!closed)
        uv_run(loop, UV_RUN_ONCE);
}

void agora__jobs_spec_from_manifest(const agora__manifest *m, const uint8_t *bytes, size_t len,
                                    uint32_t timeout_s, agora__plugin_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->plugin_bytes = bytes;
    spec->plugin_size = len;
    agora__sha256(bytes, len, spec->plugin_sha256);
    spec->plugin_id = m->id;
    spec->plugin_version = m->version;
    spec->limits.memory_bytes = (uint64_t)(m->memory_mb ? m->memory_mb : 256) << 20;
    spec->limits.max_threads = m->threads ? m->threads : 1;
    spec->timeout_ms = (timeout_s ? timeout_s : (m->time_s ? m->time_s : 60)) * 1000u;
    spec->workers = 1;
}

const char *agora__jobs_hint(agora__job_status st)
{
    switch (st) {
    case AGORA__JOB_OK:
        return "";
    case AGORA__JOB_SETUP_ERROR:
        return "the plugin could not be started in the sandbox; check that it was built against "
               "the SDK, that its manifest id/version match agora_plugin_entry, and AGORA_LOG=debug";
    case AGORA__JOB_POLICY_VIOLATION:
        return "the plugin made a system call the sandbox forbids (files, network, processes); "
               "plugins may only compute on what they are given";
    case AGORA__JOB_SIGNAL:
        return "the plugin crashed; run it under a debugger on the same input";
    case AGORA__JOB_TIMEOUT:
        return "the plugin ran past its time limit; raise --timeout / resources.time_s or make it "
               "faster";
    case AGORA__JOB_OUT_OF_MEMORY:
        return "the plugin ran out of memory; raise resources.memory_mb in the manifest or use less";
    case AGORA__JOB_PROTOCOL_ERROR:
        return "the worker sent something invalid (results out of range, bad UTF-8, oversized); "
               "fix the values the plugin reports";
    case AGORA__JOB_PLUGIN_ERROR:
        return "the plugin refused the job; see its message";
    case AGORA__JOB_CANCELLED:
        return "the job was cancelled";
    case AGORA__JOB_INPUT_ERROR:
        return "the worker could not accept the job's input";
    case AGORA__JOB_QUARANTINED:
        return "the plugin was quarantined for this run (it failed repeatedly, or its init did "
               "not return within the time limit)";
    }
    return "";
}

int agora__jobs_accept(const agora__job_outcome *out, const agora__prepared *prep,
                       const char *invocation_id, const char *home, agora__error *err)
{
    agora__results_reident ri = {
        .invocation_id = invocation_id,
        .study_uid = prep->series->study_uid,
        .series_uid = prep->series->series_uid,
        .frame_sop_uids = prep->real_sops,
        .frame_numbers = prep->frame_numbers,
        .n_frames = prep->n_frames,
        .frame_series_uids = prep->frame_series,
    };
    agora__results_mask *masks = NULL;
    if (out->n_masks && (masks = calloc(out->n_masks, sizeof *masks)) == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < out->n_masks; i++) {
        masks[i].data = out->masks + out->mask_index[i].offset;
        masks[i].len = (size_t)out->mask_index[i].length;
    }
    json_t *stored = NULL;
    int rc = agora__results_accept(out->doc, &ri, masks, out->n_masks, home ? &stored : NULL, err);
    if (rc == 0 && home != NULL)
        rc = agora__results_store(home, stored, masks, out->n_masks, NULL, err);
    json_decref(stored);
    free(masks);
    return rc;
}
