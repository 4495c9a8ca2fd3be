/*
 * Export of stored results as DICOM objects that a PACS stores next to the images: the real
 * source series (read through the ingest sandbox, never parsed in the host), the modules every
 * new object shares (Patient, General Study copied from the REAL source; General Series,
 * Equipment, IHE AIR Contributing Equipment), and the Segmentation (seg.c). The Comprehensive
 * 3D SR (TID 1500, sr.c) uses the same context and references the SEG's segments.
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

/* Pseudonym -> real UID of every UID of the source (study, series, instances, other UI
 * elements of the first instance) under the plugin-view key, sorted by pseudonym. */
typedef struct agora__export_uid_pair {
    char pseudo[65], real[65];
} agora__export_uid_pair;
typedef struct agora__export_uidmap {
    agora__export_uid_pair *e; /* owned */
    size_t n;
} agora__export_uidmap;

/* Build the map of src with key (the home's "deid-uid" key `agora run` pseudonymises with). */
int agora__export_uidmap_build(const agora__export_source *src, const uint8_t key[32],
                               agora__export_uidmap *out, agora__error *err);
void agora__export_uidmap_free(agora__export_uidmap *m);
/* A malloc'ed copy of plugin text s with every pseudonym in m (a whole run of digits and
 * dots) replaced by its real UID; m NULL or empty: a plain copy. NULL when out of memory. */
char *agora__export_reident(const agora__export_uidmap *m, const char *s);

/* What an export run shares across its objects. Strings borrowed. */
typedef struct agora__export_ctx {
    const agora__export_source *src;
    const char *uid_root; /* NULL/"": 2.25 */
    const char *vendor;   /* the plugin's vendor (catalog); "" when unknown */
    /* Pseudonyms of the plugin view, re-identified in plugin text (NULL: text is copied as
     * is; the CLI always sets it, so no pseudonymous UID reaches an exported object). */
    const agora__export_uidmap *uids;
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

/* The result's frames[] entry for a frame index (borrowed from result), or NULL. */
const json_t *agora__export_frame_entry(const json_t *result, uint32_t index);

/* The series frame of the result's frame index (its frames[] entry: *sop_uid borrowed from
 * result, *frame_number 1-based), or NULL when the result or the source lacks it. */
const agora__dicom_series_frame *agora__export_result_frame(const agora__export_source *src,
                                                            const json_t *result, uint32_t index,
                                                            const char **sop_uid,
                                                            uint32_t *frame_number);

/* One segment of the SEG agora__export_seg writes for a result: SegmentNumber `number`
 * (1-based) holds the pixels of mask region `region` (borrowed from the result) equal to
 * `value`. The SR's volumetric groups reference segments by these numbers. */
typedef struct agora__export_segment {
    const json_t *region;
    uint32_t value;
    uint32_t number;
} agora__export_segment;

/* The segments, in SEG order, of the result's masks (read from home and checked against their
 * SHA-256). *out (malloc'ed, caller frees) holds *n entries; 0 entries without masks. */
int agora__export_seg_segments(const char *home, const json_t *result, agora__export_segment **out,
                               size_t *n, agora__error *err);

/* Comprehensive 3D SR (TID 1500 Measurement Report). */
#define AGORA__EXPORT_SR_CLASS "1.2.840.10008.5.1.4.1.1.88.34"

/* SCOORD GraphicData of a planar region in DICOM image coordinates (PS3.3 C.18.6.1.1: column
 * then row, (0,0) the top-left CORNER of the top-left pixel) from Agora's pixel coordinates
 * (x = column, y = row, (0,0) the CENTRE of the top-left pixel). point: 1 pair, POINT;
 * polygon (n >= 3): n + 1 pairs, closed POLYLINE (first pair repeated); box (2 corners,
 * pixels inclusive): the 5-pair closed POLYLINE around the covered pixels. out holds room
 * for 2 * (n + 1) values and at least 10; *n_out gets the number of values, *graphic_type
 * "POINT" or "POLYLINE". AGORA_EINVAL on a kind/count mismatch. */
int agora__export_sr_scoord(const char *kind, const double *points, size_t n_points, float *out,
                            size_t *n_out, const char **graphic_type);

/* Write the SR of one stored result (borrowed) as DIR/sr-<invocation_id>.dcm (path_out may be
 * NULL). Volumetric groups reference the segments of the SEG agora__export_seg writes for the
 * same result (same deterministic SOP Instance UID, whether or not that SEG is written in this
 * run); mask buffers are read from home to number them. */
int agora__export_sr(const agora__export_ctx *ctx, const char *home, const json_t *result,
                     const char *dir, char *path_out, size_t path_size, agora__error *err);

/* The DICOM export of ONE stored result (the re-identified document results_load/list give),
 * the one path `agora results export --format seg|sr|dicom` and `agora serve` (its outbox)
 * share: a SEG when the result has masks and want_seg, a TID 1500 SR when want_sr, written into
 * dir (which must exist) as seg-<invocation>.dcm / sr-<invocation>.dcm. The source series is
 * found under sources (the study's real files) through ing (a sandboxed reader, borrowed).
 * UIDs are derived from the invocation id (under uid_root, else 2.25): exporting again gives
 * the same objects. written(arg, path) is called for each file written (may be NULL). Errors
 * name the invocation ("invocation <id>: ..."), never a UID. */
typedef struct agora__export_result_opts {
    int want_sr, want_seg;
    const char *const *sources; /* files or folders holding the result's source series */
    size_t n_sources;
    const char *uid_root;     /* NULL: 2.25 */
    const uint8_t *view_key;  /* 32 bytes: the key the plugin view's UIDs were pseudonymised
                                 with (AGORA__KEY_UID), to re-identify echoed pseudonyms */
} agora__export_result_opts;
typedef void (*agora__export_written_fn)(void *arg, const char *path);
int agora__export_result(agora__ingest *ing, const char *home, const char *study_uid,
                         const json_t *result, const agora__export_result_opts *o,
                         const char *dir, agora__export_written_fn written, void *arg,
                         agora__error *err);

#endif
