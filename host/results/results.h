/*
 * Validated plugin results: the stored document format (schemas/result.schema.json), the
 * host-side validator, storage in the clinic home and export (project JSON, FHIR R4).
 *
 * Flow (driven by `agora run`): the worker pool hands over a worker result ("agora.result/1",
 * pseudonymous, already shape-checked by the pool); the host calls agora__results_reidentify()
 * with the real Study/Series/SOP Instance UIDs it kept, which validates the worker document,
 * adds invocation_id, study_uid, series_uid, frames[] and created, and validates the stored
 * form; then agora__results_store() writes it (and its mask buffers) under
 * HOME/results/<sha256(study uid) hex>/. Documents are jansson objects; ownership is stated
 * per function. No function logs or puts UIDs in error messages.
 */
#ifndef AGORA_RESULTS_H
#define AGORA_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agora_result_limits.h"
#include "common.h"

/* Bounds of a result: the one table (agora_result_limits.h, generated from
 * schemas/result.schema.json), shared with the runner's host API and the worker decoder. */
#define AGORA__RESULTS_MAX_FINDINGS     AGORA__RESULT_FINDINGS_MAX
#define AGORA__RESULTS_MAX_MEASUREMENTS AGORA__RESULT_MEASUREMENTS_MAX
#define AGORA__RESULTS_MAX_REGIONS      AGORA__RESULT_REGIONS_MAX
#define AGORA__RESULTS_MAX_POINTS       AGORA__RESULT_POINTS_MAX       /* per polygon */
#define AGORA__RESULTS_MAX_TOTAL_POINTS AGORA__RESULT_POINTS_TOTAL_MAX /* per result */
#define AGORA__RESULTS_MAX_FRAME        AGORA__RESULT_FRAME_MAX /* frame index 0..MAX_FRAME */
#define AGORA__RESULTS_MAX_FILE         (16u << 20) /* a stored result file */
#define AGORA__RESULTS_MAX_MASK_BYTES   ((size_t)AGORA__RESULT_MASK_BYTES_MAX)
#define AGORA__RESULTS_MAX_PER_STUDY    10000 /* results listed for one study */

typedef enum agora__result_form {
    AGORA__RESULT_WORKER = 0, /* as handed over by the worker pool (pseudonymous) */
    AGORA__RESULT_STORED = 1, /* re-identified, as stored and exported */
} agora__result_form;

/* Validate doc (borrowed) in the given form. 0, or AGORA_EINVAL/AGORA_ELIMIT with err->msg
 * starting with the JSON pointer of the offending field, e.g. "/findings/2/confidence: ...". */
int agora__results_validate(const json_t *doc, agora__result_form form, agora__error *err);

/* Non-zero when unit is accepted as a UCUM expression (syntax only: atoms, prefixes are not
 * looked up). */
int agora__results_ucum_valid(const char *unit);

/* Non-zero when s is a DICOM UID (1..64 chars of digits and dots, no empty or 0-led parts). */
int agora__results_uid_valid(const char *s);

/* What the host kept to re-identify a worker result. Borrowed for the call. */
typedef struct agora__results_reident {
    const char *invocation_id;         /* the ledger id minted before dispatch */
    const char *study_uid;             /* real Study Instance UID */
    const char *series_uid;            /* real Series Instance UID */
    const char *const *frame_sop_uids; /* [n_frames]: SOP Instance UID of frame index i */
    const uint32_t *frame_numbers;     /* [n_frames] 1-based frame within that instance, or
                                          NULL meaning 1 for every frame (single-frame) */
    /* [n_frames] study scope: the real Series Instance UID of each frame, stored with every
     * referenced frame; NULL for a one-series job (every frame is in series_uid). */
    const char *const *frame_series_uids;
    size_t n_frames;
    uint64_t created_unix_ms; /* 0: now */
} agora__results_reident;

/* Validate worker_doc (borrowed) and build the stored document: a new reference in *out that
 * the caller decrefs. frames[] lists every frame index the result references. */
int agora__results_reidentify(const json_t *worker_doc, const agora__results_reident *ri,
                              json_t **out, agora__error *err);

/* A mask buffer handed over with a result; matched to regions by the SHA-256 of data. */
typedef struct agora__results_mask {
    const uint8_t *data; /* borrowed */
    size_t len;
} agora__results_mask;

/* The one acceptance check of a worker result, used by `agora run` before storing and by
 * `agora dev run` before printing ok: the worker document (borrowed) is validated, re-identified
 * with ri and validated in stored form against the one table of result limits, and its mask
 * regions matched to masks (borrowed). 0 and, when stored is not NULL, the stored document (a
 * new reference) in *stored; else AGORA_EINVAL/AGORA_ELIMIT with the JSON pointer of the field
 * in err->msg. A refused result is reported as "invalid-result" by both commands. */
int agora__results_accept(const json_t *worker_doc, const agora__results_reident *ri,
                          const agora__results_mask *masks, size_t n_masks, json_t **stored,
                          agora__error *err);

/* Store a stored-form document (borrowed; validated again here) and the masks its regions
 * name, under HOME/results/<sha256(study uid)>/: masks as <sha256>.mask, the result as
 * <invocation_id>.json, each written atomically (temp file, fsync, link/rename, fsync dir).
 * First writer wins: storing an invocation id that is already stored changes nothing and
 * sets *already (may be NULL). Every mask region must have a matching buffer of exactly
 * the size its geometry gives; extra buffers are refused. */
int agora__results_store(const char *home, const json_t *stored_doc,
                         const agora__results_mask *masks, size_t n_masks, int *already,
                         agora__error *err);

/* Load one stored result (validated) of a study: new reference in *out. */
int agora__results_load(const char *home, const char *study_uid, const char *invocation_id,
                        json_t **out, agora__error *err);

/* All stored results of a study, oldest first (created, then invocation id), as a new JSON
 * array in *out (empty when the study has none). Each is validated as it is loaded. */
int agora__results_list(const char *home, const char *study_uid, json_t **out, agora__error *err);

/* Path of a stored mask file (for export/SEG): HOME/results/<h>/<sha256>.mask. 0 or
 * AGORA_ELIMIT when buf is too small. */
int agora__results_mask_path(const char *home, const char *study_uid, const char *sha256_hex,
                             char *buf, size_t size, agora__error *err);

/* The stored studies (the index): a new JSON array of Study Instance UIDs, sorted. */
int agora__results_studies(const char *home, json_t **out, agora__error *err);

/* The triage index (org.agora.triage/1), one entry per urgent stored result: a new JSON array of
 * {"invocation_id", "study_uid", "plugin_id", "plugin_version"} (no reason), unordered. */
int agora__results_urgent_index(const char *home, json_t **out, agora__error *err);

/* The worklist behind `agora results studies`: a new JSON array of {"study_uid", "urgent",
 * "urgent_results": [{"invocation_id", "plugin_id", "plugin_version", "created", "reason"}]},
 * urgent studies first (oldest urgent result first), then by Study Instance UID. The reasons
 * come from the re-validated stored results. */
int agora__results_worklist(const char *home, json_t **out, agora__error *err);

/* FHIR R4 Bundle (type collection) of one DiagnosticReport per successful result and its
 * Observations; results: a JSON array of stored documents of ONE study (borrowed). New
 * reference in *out. Mapping in docs/results-and-billing.md. */
int agora__results_fhir_bundle(const json_t *results, json_t **out, agora__error *err);

#endif
