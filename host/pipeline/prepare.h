/*
 * Turning one scanned series into one de-identified job: decode every frame straight into a
 * sealed pixel buffer, build the plugin's attribute view (allowlist + granted options, burned-in
 * refusal), derive pseudonymous UIDs, and keep what is needed to map a result back to the real
 * study. A stage of the run pipeline (pipeline.h).
 *
 * Ownership: agora__prepared owns everything it points to (pixel buffer, frame table, view,
 * pseudonyms); `input` points into it and is valid until agora__prepared_free. Real UIDs are
 * borrowed from the scan, which must outlive the prepared job.
 */
#ifndef AGORA_PIPELINE_PREPARE_H
#define AGORA_PIPELINE_PREPARE_H

#include <stdint.h>

#include "deid.h"
#include "ingest.h"
#include "study.h"
#include "worker.h"

typedef struct agora__prepared {
    agora__job_input input;         /* what the pool gets; points into this struct */
    agora__pixbuf pixels;           /* sealed */
    agora__frame_input *frames;     /* [n_frames] */
    agora__attr *attrs;             /* [view.count] */
    agora__deid_granted view;       /* attribute values and pseudonymous UIDs */
    char (*frame_pseudo)[65];       /* [n_frames] pseudonymous SOP Instance UIDs */
    const char **real_sops;         /* [n_frames] real SOP Instance UIDs (borrowed from scan) */
    uint32_t *frame_numbers;        /* [n_frames] 1-based frame within its instance */
    uint32_t n_frames;
    char modality[17];
    char rescale_type[17];
    const agora__dicom_series *series; /* borrowed; a study job: its first series */
    /* Study scope (org.agora.study/1): the other series (no pixels of their own: their frame
     * offsets point into `pixels`); more_inputs[k] is parts[k].input for
     * input.more_series; frame_series[n_frames] the real Series UID of each job-wide frame
     * (borrowed from the scan). All NULL/0 for a one-series job. */
    struct agora__prepared *parts;
    agora__job_input *more_inputs;
    uint32_t n_parts;
    const char **frame_series;
} agora__prepared;

/* Prepare series s; ing is the sandboxed parser worker that reads and decodes the files. uid_key: the clinic's (or the developer session's) 32-byte key for
 * pseudonymous UIDs. granted: PS3.15 option names the plugin may see. deid_flags:
 * AGORA__DEID_* (burned-in policy). On failure out is left empty and err says why (no PHI). */
int agora__prepare_series(agora__ingest *ing, const agora__dicom_series *s,
                          const uint8_t uid_key[32],
                          const char *const *granted, size_t n_granted, uint32_t deid_flags,
                          agora__prepared *out, agora__error *err);
void agora__prepared_free(agora__prepared *p);

/* Prepare one study-scope job from n (1..AGORA_STUDY_MAX_SERIES) series of one study, in the
 * given order (series[0] is the image handed to process). Each series gets its view and frame
 * table as by agora__prepare_series and is decoded in the sandbox straight into its place in one
 * sealed buffer; frames are numbered job-wide. The attribute view is series[0]'s. Borrowed
 * series must outlive out. */
int agora__prepare_study(agora__ingest *ing, const agora__dicom_series *const *series, uint32_t n,
                         const uint8_t uid_key[32], const char *const *granted, size_t n_granted,
                         uint32_t deid_flags, agora__prepared *out, agora__error *err);

/* A short, PHI-free description of a series for progress lines: "CT, 40 frames 512x512". */
void agora__series_label(const agora__dicom_series *s, char *buf, size_t size);

#endif
