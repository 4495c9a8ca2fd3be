/*
 * Enhanced multi-frame functional groups (PS3.3 C.7.6.16): the per-frame and shared values the
 * image view needs, resolved per frame, and the split of the frames into volumes (one per stack
 * and temporal position, or per combination of the non-spatial dimensions of the Dimension
 * Organization, PS3.3 C.7.6.17).
 *
 * Read in the sandboxed ingest worker (sandbox/ingest_meta.c) and by the in-process scanner
 * (study.c), so both see the same values. Bounded: per-frame groups are used only when the
 * Per-Frame Functional Groups Sequence has exactly one item per frame and there are at most
 * AGORA__DICOM_FG_MAX_FRAMES frames; at most AGORA__DICOM_FG_MAX_DIMS dimensions are honoured;
 * nesting is fixed (functional group item -> macro sequence -> its first item), and the parser
 * already bounded the depth of the file.
 *
 * Ownership: agora__dicom_fg_read fills a caller-owned struct whose `frames` array is
 * malloc'ed; agora__dicom_fg_free releases it.
 */
#ifndef AGORA_HOST_DICOM_FGROUPS_H
#define AGORA_HOST_DICOM_FGROUPS_H

#include <stdint.h>

#include "dicom.h"

#define AGORA__DICOM_FG_MAX_FRAMES 65536u
#define AGORA__DICOM_FG_MAX_DIMS   16u

/* One frame, every value resolved: per-frame group first, then shared group, then the top-level
 * attribute (classic header). Geometry absent (has_* 0) when none of them carries it. */
typedef struct agora__dicom_frame_meta {
    double position[3];    /* ImagePositionPatient (mm) */
    double orientation[6]; /* ImageOrientationPatient */
    double spacing[2];     /* PixelSpacing (mm) */
    double rescale[2];     /* slope, intercept; 1, 0 when nothing carries them */
    double window[2];      /* WindowCenter, WindowWidth (first pair); NaN when absent */
    uint32_t stack;        /* 1-based rank of the frame's StackID among the object's, 0 none */
    uint32_t in_stack;     /* InStackPositionNumber, 0 none */
    uint32_t temporal;     /* TemporalPositionIndex, 0 none */
    uint32_t volume;       /* 0-based volume (see agora__dicom_fg.n_volumes) */
    uint8_t has_position, has_orientation, has_spacing, has_rescale, has_window;
} agora__dicom_frame_meta;

typedef struct agora__dicom_fg {
    agora__dicom_frame_meta *frames; /* [n_frames], or NULL when the object has no usable
                                        per-frame groups (a classic object) */
    uint32_t n_frames;
    uint32_t n_volumes;         /* distinct volumes among frames (1 without per-frame groups) */
    int dimension_organization; /* a Dimension Index Sequence was read and honoured */
    /* Instance level (top-level attribute, else the shared group, else frame 0's group). */
    int has_rescale;
    double rescale[2];
    char rescale_type[17]; /* RescaleType (or "" ); printable ASCII */
    /* Instance-level orientation and pixel spacing from the shared group, else frame 0's
     * per-frame group (the top level is the caller's: it wins). Read even when the per-frame
     * sequence is unusable. */
    int has_orientation, has_spacing;
    double orientation[6], spacing[2];
} agora__dicom_fg;

/* Read ds (a top-level dataset of `frames` frames, NumberOfFrames as the caller clamped it).
 * Returns 0, or -1 when out of memory (out is then empty). */
int agora__dicom_fg_read(const agora__dicom_dataset *ds, uint32_t frames, agora__dicom_fg *out);
void agora__dicom_fg_free(agora__dicom_fg *fg);

#endif
