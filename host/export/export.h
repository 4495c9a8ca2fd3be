/*
 * Export of stored results as DICOM objects that a PACS stores next to the images: the real
 * source series (read through the ingest sandbox, never parsed in the host), the modules every
 * new object shares (Patient, General Study copied from the REAL source; General Series,
 * Equipment, IHE AIR Contributing Equipment), and the Segmentation (seg.c). The Comprehensive
 * 3D SR (TID 1500) is i11-sr's sr.c and uses the same context.
 *
 * Results are already re-identified (host/results: study_uid, series_uid and frames[] hold the
 * real UIDs); nothing here sees a pseudonym. Errors never quote UIDs or attribute values.
 */
#ifndef AGORA_EXPORT_H
#define AGORA_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "dcm_writer.h"
#include "ingest.h"
#include "study.h"

/* The real source series of a result, as found under the source paths. */
typedef struct agora__export_source {
    agora__dicom_scan *scan;           /* owned */
    const agora__dicom_series *series; /* in scan: the result's series (volume 0) */
    agora__ingest_meta meta;           /* first instance's top-level elements (owned) */
    char **sop_classes; /* [series->n_instances], owned: SOP Class UID per instance */
} agora__export_source;

/* Scan paths (files or folders) through the ingest worker ing (borrowed) and keep the series
 * study_uid/series_uid. AGORA_EINVAL ("not found under the source paths") when absent. */
int agora__export_source_load(agora__ingest *ing, const char *const *paths, size_t n_paths,
                              const char *study_uid, const char *series_uid,
                              agora__export_source *out, agora__error *err);
void agora__export_source_free(agora__export_source *src);

/* The series frame for (SOP Instance UID, 1-based frame number), or NULL. */
const agora__dicom_series_frame *agora__export_source_frame(const agora__export_source *src,
                                                            const char *sop_uid,
                                                            uint32_t frame_number);

/* What an export run shares across its objects. Strings borrowed. */
typedef struct agora__export_ctx {
    const agora__export_source *src;
    const char *uid_root; /* NULL/"": 2.25 */
    const char *vendor;   /* the plugin's vendor (catalog); "" when unknown */
} agora__export_ctx;

/* Patient + General Study (+ Patient Study, Frame of Reference when the source has one) copied
 * from the source, General Series and Equipment for this result, AIR Contributing Equipment,
 * content date/time from the result's "created", SpecificCharacterSet of the source.
 * modality "SEG"/"SR"; series_uid from agora__dcmw_uid(..., "<kind>.series"). */
int agora__export_common(agora__dcmw_ds *root, const agora__export_ctx *ctx, const json_t *result,
                         const char *modality, const char *series_uid, int64_t series_number,
                         const char *series_description, agora__error *err);

/* Device UID of plugin id@version (Contributing Equipment; SR's Device Observer UID). */
int agora__export_device_uid(const agora__export_ctx *ctx, const json_t *result, char out[65],
                             agora__error *err);

#define AGORA__EXPORT_SEG_CLASS "1.2.840.10008.5.1.4.1.1.66.4"

/* Write the SEG of one stored result (borrowed) whose regions include masks, reading mask
 * buffers from home. *written is 0 when the result has no mask (nothing written), else 1;
 * the file is DIR/seg-<invocation_id>.dcm (path_out, may be NULL). */
int agora__export_seg(const agora__export_ctx *ctx, const char *home, const json_t *result,
                      const char *dir, int *written, char *path_out, size_t path_size,
                      agora__error *err);

/* SR hook (i11-sr implements it in sr.c; the CLI calls it once it is linked in). */
#define AGORA__EXPORT_SR_CLASS "1.2.840.10008.5.1.4.1.1.88.34"

#endif
