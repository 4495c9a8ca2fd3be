/* The scanner hook (study.h agora__dicom_extract_fn) backed by the sandboxed ingest worker. */
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

int agora__ingest_extract(void *ctx, const char *path, agora__dicom_extracted *out,
                          agora__error *err)
{
    agora__ingest_meta m;
    int rc = agora__ingest_metadata((agora__ingest *)ctx, path, &m, err);
    if (rc != 0) {
        /* The scanner notes the file under its path: give the reason alone, in the in-process
         * scanner's words ("not DICOM", "unreadable: ...") so that `agora dicom scan` reports
         * the same either way. */
        size_t n = strlen(path);
        if (err != NULL && strncmp(err->msg, path, n) == 0 && err->msg[n] == ':' &&
            err->msg[n + 1] == ' ')
            memmove(err->msg, err->msg + n + 2, strlen(err->msg + n + 2) + 1);
        if (err != NULL && strncmp(err->msg, "unreadable: not a DICOM file", 28) == 0)
            agora__strlcpy(err->msg, "not DICOM", sizeof err->msg);
        return rc;
    }
    rc = agora__ingest_meta_to_instance(&m, path, &out->instance, out->study_uid,
                                        out->series_uid, out->modality, err);
    /* The scanner sets the path itself. */
    free(out->instance.path);
    out->instance.path = NULL;
    agora__ingest_meta_free(&m);
    return rc;
}
