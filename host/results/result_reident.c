/*
 * Re-identification: turning a worker result (pseudonymous, frames by index) into the stored
 * form that names the real study, series and SOP instances. Only the host holds this map; the
 * plugin never sees real UIDs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "results_private.h"

int agora__results_reidentify(const json_t *worker_doc, const agora__results_reident *ri,
                              json_t **out, agora__error *err)
{
    *out = NULL;
    agora__results_frames frames;
    memset(&frames, 0, sizeof frames);
    int rc = agora__results_validate_frames(worker_doc, AGORA__RESULT_WORKER, &frames, err);
    if (rc != 0)
        return agora__error_prefix(err, "invalid worker result");
    if (ri == NULL || !agora__results_uid_valid(ri->study_uid) ||
        !agora__results_uid_valid(ri->series_uid))
        return agora__error_set(err, AGORA_EINVAL,
                                "re-identification needs the real Study and Series UIDs");
    if (ri->n_frames > AGORA__RESULTS_MAX_FRAME + 1u || (ri->n_frames && !ri->frame_sop_uids))
        return agora__error_set(err, AGORA_EINVAL, "re-identification frame map is invalid");
    json_t *doc = json_deep_copy(worker_doc);
    json_t *fr = json_array();
    if (doc == NULL || fr == NULL) {
        json_decref(doc);
        json_decref(fr);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t f = 0; f <= AGORA__RESULTS_MAX_FRAME && rc == 0; f++) {
        if (!(frames.bits[f / 8] & (1u << (f % 8))))
            continue;
        if (f >= ri->n_frames) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "the result references frame %zu but the "
                                  "plugin was given %zu frames",
                                  f, ri->n_frames);
            break;
        }
        uint32_t number = ri->frame_numbers ? ri->frame_numbers[f] : 1;
        const char *series = ri->frame_series_uids ? ri->frame_series_uids[f] : NULL;
        json_t *e = NULL;
        if (!agora__results_uid_valid(ri->frame_sop_uids[f]) || number == 0 ||
            (series != NULL && !agora__results_uid_valid(series)))
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "re-identification frame map entry %zu is invalid", f);
        else if ((e = json_pack("{s:I,s:s,s:I}", "frame", (json_int_t)f, "sop_instance_uid",
                                ri->frame_sop_uids[f], "frame_number", (json_int_t)number)) ==
                     NULL ||
                 (series != NULL && json_object_set_new(e, "series_uid", json_string(series))) ||
                 json_array_append(fr, e) != 0)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        json_decref(e);
    }
    uint64_t ms = ri->created_unix_ms;
    if (ms == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    }
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    char created[32];
    gmtime_r(&t, &tm);
    snprintf(created, sizeof created, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
             (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (unsigned)(ms % 1000u));
    if (rc == 0 && (json_object_set_new(doc, "invocation_id",
                                        json_string(ri->invocation_id ? ri->invocation_id : "")) ||
                    json_object_set_new(doc, "study_uid", json_string(ri->study_uid)) ||
                    json_object_set_new(doc, "series_uid", json_string(ri->series_uid)) ||
                    json_object_set_new(doc, "created", json_string(created)) ||
                    json_object_set(doc, "frames", fr)))
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    json_decref(fr);
    if (rc == 0)
        rc = agora__results_validate(doc, AGORA__RESULT_STORED, err);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}
