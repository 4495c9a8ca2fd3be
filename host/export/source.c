/*
 * The real source series of an export, found and read through the ingest sandbox: the scan
 * gives instances and per-frame geometry, the first instance's metadata the Patient/Study
 * elements to copy, every instance's metadata its SOP Class UID (for references).
 */
#include <stdlib.h>
#include <string.h>

#include "deid.h"
#include "export.h"

int agora__export_source_load(agora__ingest *ing, const char *const *paths, size_t n_paths,
                              const char *study_uid, const char *series_uid,
                              agora__export_source *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    agora__dicom_scan_options opt;
    agora__dicom_scan_options_default(&opt);
    opt.extract = agora__ingest_extract;
    opt.extract_ctx = ing;
    int rc = agora__dicom_scan_paths(paths, n_paths, &opt, &out->scan, err);
    if (rc != 0)
        return agora__error_prefix(err, "reading the source study");
    for (size_t i = 0; i < out->scan->n_series && out->series == NULL; i++) {
        const agora__dicom_series *s = &out->scan->series[i];
        if (s->volume == 0 && strcmp(s->study_uid, study_uid) == 0 &&
            strcmp(s->series_uid, series_uid) == 0)
            out->series = s;
    }
    if (out->series == NULL || out->series->n_instances == 0) {
        agora__export_source_free(out);
        return agora__error_set(err, AGORA_EINVAL,
                                "the result's source series is not under the source paths; "
                                "give the folder the study was run from with --source");
    }
    const agora__dicom_series *s = out->series;
    out->sop_classes = calloc(s->n_instances, sizeof *out->sop_classes);
    if (out->sop_classes == NULL) {
        agora__export_source_free(out);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->n_instances && rc == 0; i++) {
        agora__ingest_meta m;
        memset(&m, 0, sizeof m);
        rc = agora__ingest_metadata(ing, s->instances[i].path, &m, err);
        if (rc != 0)
            break;
        if (strcmp(m.sop_uid, s->instances[i].sop_uid) != 0 ||
            !agora__deid_uid_valid(m.sop_class_uid, strlen(m.sop_class_uid)))
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "a source file changed while it was read, or has no SOP "
                                  "Class UID");
        else if ((out->sop_classes[i] = strdup(m.sop_class_uid)) == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        if (rc == 0 && i == 0) {
            out->meta = m; /* ownership moves */
            continue;
        }
        agora__ingest_meta_free(&m);
    }
    if (rc != 0) {
        agora__export_source_free(out);
        return agora__error_prefix(err, "reading the source study");
    }
    return 0;
}

void agora__export_source_free(agora__export_source *src)
{
    if (src == NULL)
        return;
    if (src->sop_classes && src->series)
        for (uint32_t i = 0; i < src->series->n_instances; i++)
            free(src->sop_classes[i]);
    free(src->sop_classes);
    agora__ingest_meta_free(&src->meta);
    if (src->scan)
        agora__dicom_scan_free(src->scan);
    memset(src, 0, sizeof *src);
}

const agora__dicom_series_frame *agora__export_source_frame(const agora__export_source *src,
                                                            const char *sop_uid,
                                                            uint32_t frame_number)
{
    const agora__dicom_series *s = src->series;
    for (uint32_t i = 0; i < s->n_frames; i++) {
        const agora__dicom_series_frame *f = &s->frames[i];
        if (f->frame + 1 == frame_number && strcmp(s->instances[f->instance].sop_uid, sop_uid) == 0)
            return f;
    }
    return NULL;
}

const json_t *agora__export_frame_entry(const json_t *result, uint32_t index)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(result, "frames"), i, e)
    {
        if (json_integer_value(json_object_get(e, "frame")) == (json_int_t)index)
            return e;
    }
    return NULL;
}

const agora__dicom_series_frame *agora__export_result_frame(const agora__export_source *src,
                                                            const json_t *result, uint32_t index,
                                                            const char **sop_uid,
                                                            uint32_t *frame_number)
{
    const json_t *e = agora__export_frame_entry(result, index);
    if (e == NULL)
        return NULL;
    const char *sop = json_string_value(json_object_get(e, "sop_instance_uid"));
    json_int_t fn = json_integer_value(json_object_get(e, "frame_number"));
    if (sop == NULL || fn < 1 || fn > UINT32_MAX)
        return NULL;
    *sop_uid = sop;
    *frame_number = (uint32_t)fn;
    return agora__export_source_frame(src, sop, (uint32_t)fn);
}
