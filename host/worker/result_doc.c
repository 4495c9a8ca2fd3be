/* The agora.result/1 document: what a job produced (or how it failed), in the shape
 * schemas/result.schema.json describes. Built only from validated data. */
#include "worker_internal.h"

#include <stdint.h>

const char *agora__job_status_name(agora__job_status st)
{
    switch (st) {
    case AGORA__JOB_OK:
        return "ok";
    case AGORA__JOB_SETUP_ERROR:
        return "setup-error";
    case AGORA__JOB_POLICY_VIOLATION:
        return "policy-violation";
    case AGORA__JOB_SIGNAL:
        return "signal";
    case AGORA__JOB_TIMEOUT:
        return "timeout";
    case AGORA__JOB_OUT_OF_MEMORY:
        return "out-of-memory";
    case AGORA__JOB_PROTOCOL_ERROR:
        return "protocol-error";
    case AGORA__JOB_PLUGIN_ERROR:
        return "plugin-error";
    case AGORA__JOB_CANCELLED:
        return "cancelled";
    case AGORA__JOB_INPUT_ERROR:
        return "input-error";
    case AGORA__JOB_QUARANTINED:
        return "quarantined";
    }
    return "protocol-error";
}

/* JSON integers are int64; counters reported by a worker are clamped rather than wrapped. */
static json_int_t clamp(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

json_t *agora__result_doc(const char *plugin_id, const char *plugin_version, uint64_t job_id,
                          agora__job_status status, const char *error, const agora__validated *v,
                          const agora__result_metrics *m)
{
    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s}, s:I, s:s, s:o, s:o, s:o, s:{s:I, s:I, s:I}}", "schema",
        "agora.result/1", "plugin", "id", plugin_id, "version", plugin_version, "job_id",
        clamp(job_id), "status", agora__job_status_name(status), "findings",
        v && v->findings ? json_incref(v->findings) : json_array(), "measurements",
        v && v->measurements ? json_incref(v->measurements) : json_array(), "regions",
        v && v->regions ? json_incref(v->regions) : json_array(), "metrics", "wall_ms",
        clamp(m->wall_ms), "cpu_us", clamp(m->cpu_us), "peak_rss_kb", clamp(m->peak_rss_kb));
    if (doc == NULL)
        return NULL;
    if (status != AGORA__JOB_OK &&
        json_object_set_new(doc, "error", json_string(error && error[0] ? error : "failed")) < 0)
        goto fail;
    if (v != NULL && v->summary != NULL &&
        json_object_set_new(doc, "summary", json_string(v->summary)) < 0)
        goto fail;
    if (v != NULL && v->urgent_reason != NULL && status == AGORA__JOB_OK &&
        json_object_set_new(doc, "triage",
                            json_pack("{s:b, s:s}", "urgent", 1, "reason", v->urgent_reason)) < 0)
        goto fail;
    return doc;
fail:
    json_decref(doc);
    return NULL;
}
