/*
 * Study assembly: scan files and folders, group instances into studies and series, order frames
 * along the slice normal, report gaps, duplicates and inconsistent geometry, and decode a whole
 * series into a caller-provided buffer.
 *
 * Memory: scanning maps one file at a time, parses only up to Pixel Data and keeps a few hundred
 * bytes of metadata per instance (plus the path), so the peak is the largest file header plus
 * that metadata, whatever the file count. Decoding maps one file at a time and writes straight
 * into the caller's buffer (a memfd mapping in the host).
 *
 * Ownership: agora__dicom_scan_paths() returns a scan that owns every series, instance, frame,
 * warning and note; agora__dicom_scan_free() releases them.
 */
#ifndef AGORA_HOST_DICOM_STUDY_H
#define AGORA_HOST_DICOM_STUDY_H

#include "dicom.h"
#include "fgroups.h"
#include "pixels.h"

struct agora__dicom_extracted;

/*
 * Metadata extraction outside the scanner (host/ingest's sandboxed parser worker, so that the
 * host never parses an untrusted file itself). Called once per regular file with *out zeroed;
 * fills *out and returns 0, or returns a negative code with err->msg saying why: AGORA_ENOMEM
 * and AGORA_EINTERNAL abort the scan (err->msg becomes the scan's error), any other code skips
 * the file with err->msg as its note. On success out->instance.frame_positions and
 * out->instance.frame_meta (malloc'ed or NULL) pass to the scan; on failure the callee frees
 * them. out->instance.path is ignored.
 */
typedef int (*agora__dicom_extract_fn)(void *ctx, const char *path,
                                       struct agora__dicom_extracted *out, agora__error *err);

typedef struct agora__dicom_scan_options {
    uint32_t max_depth;         /* folder recursion depth (default 8) */
    uint32_t max_files;         /* files examined in total (default 100000) */
    uint64_t max_file_bytes;    /* larger files are skipped with a note (default 4 GiB) */
    agora__dicom_limits limits; /* parser limits (in-process parsing only) */
    agora__dicom_extract_fn extract; /* NULL (default): parse in-process */
    void *extract_ctx;               /* passed to extract */
} agora__dicom_scan_options;

void agora__dicom_scan_options_default(agora__dicom_scan_options *opt);

/* Small per-instance metadata (no pixels). */
typedef struct agora__dicom_instance {
    char *path; /* owned by the scan */
    char sop_uid[65];
    int64_t instance_number; /* INT64_MIN when absent */
    uint32_t frames;         /* NumberOfFrames (1 when absent) */
    uint32_t rows, columns, samples_per_pixel, bits_allocated, bits_stored, pixel_representation;
    char photometric[17];
    char transfer_syntax[65];
    int has_position, has_orientation, has_spacing;
    double position[3];    /* ImagePositionPatient of frame 0 */
    double orientation[6]; /* row cosines, column cosines */
    double pixel_spacing[2];
    double *frame_positions; /* per-frame positions (enhanced multi-frame), 3 per frame, or NULL */
    int has_rescale;
    double rescale[2]; /* slope, intercept of the instance (fgroups.h); 1, 0 when absent */
    char rescale_type[17];
    /* Enhanced multi-frame: every frame's resolved functional groups ([frames], owned), or
     * NULL. Its positions are authoritative only where frame_positions is set. The instances
     * of a series split into volumes do not carry it (their frames hold the values). */
    agora__dicom_frame_meta *frame_meta;
} agora__dicom_instance;

/* What an extractor returns for one file: the series keys and the instance. */
typedef struct agora__dicom_extracted {
    char study_uid[65];
    char series_uid[65];
    char modality[17];
    agora__dicom_instance instance;
} agora__dicom_extracted;

/* One frame of a series, in output order. */
typedef struct agora__dicom_series_frame {
    uint32_t instance; /* index into series.instances */
    uint32_t frame;    /* frame within that instance */
    int has_position;
    double position[3];
    double distance; /* position projected on the slice normal (mm); 0 without geometry */
    int has_orientation;
    double orientation[6]; /* the frame's own (per-frame group) or its instance's */
    int functional_groups; /* the values come from enhanced multi-frame functional groups */
    int has_rescale;       /* some level carried a rescale */
    double rescale[2];     /* slope, intercept: per-frame group, shared, header; else 1, 0 */
    double window[2];      /* WindowCenter/Width of the frame; NaN when absent */
    uint32_t volume;       /* enhanced multi-frame volume the frame belongs to (fgroups.h) */
    uint32_t in_stack;     /* InStackPositionNumber, 0 none */
} agora__dicom_series_frame;

/* Structured warnings about a series. Messages carry no attribute values (no PHI). */
typedef enum agora__dicom_warning_code {
    AGORA__DICOM_WARN_GAP = 1,                   /* spacing deviates from the median */
    AGORA__DICOM_WARN_DUPLICATE_POSITION = 2,    /* two frames at the same position */
    AGORA__DICOM_WARN_DUPLICATE_SOP = 3,         /* same SOP Instance UID twice (second dropped) */
    AGORA__DICOM_WARN_INCONSISTENT_GEOMETRY = 4, /* rows/columns/orientation/spacing differ */
    AGORA__DICOM_WARN_NO_GEOMETRY = 5,           /* ordered by instance number instead */
    AGORA__DICOM_WARN_INCONSISTENT_PIXELS = 6    /* bits/samples/photometric differ: no decode */
} agora__dicom_warning_code;

typedef struct agora__dicom_warning {
    agora__dicom_warning_code code;
    uint32_t frame_a, frame_b; /* output frame indexes concerned; for INCONSISTENT_* the
                                  instance indexes (0 and the differing one); for DUPLICATE_SOP
                                  frame_a is the kept instance */
    double value;              /* e.g. the spacing found (mm) */
    double expected;           /* e.g. the median spacing (mm) */
    char message[160];
} agora__dicom_warning;

typedef struct agora__dicom_series {
    char study_uid[65];
    char series_uid[65];
    char modality[17];
    agora__dicom_instance *instances;
    uint32_t n_instances;
    agora__dicom_series_frame *frames; /* ordered along the slice normal */
    uint32_t n_frames;
    double normal[3];      /* slice normal (row x column cosines); 0 without geometry */
    double median_spacing; /* between consecutive frames along the normal (mm); 0 if unknown */
    agora__dicom_warning *warnings;
    uint32_t n_warnings;
    int decodable; /* 0 when frames differ in size/encoding (see warnings) */
    /* Enhanced multi-frame objects whose frames form several volumes (stacks, temporal
     * positions, other non-spatial dimensions) become one series entry per volume, with the
     * same UIDs: volume is 0-based among n_volumes (1 for everything else); stack and temporal
     * are the volume's StackID rank and TemporalPositionIndex (0 when not given). */
    uint32_t volume, n_volumes;
    uint32_t stack, temporal;
    int rescale_varies; /* frames differ in rescale slope or intercept */
} agora__dicom_series;

/* A file that was skipped, and why (not DICOM, no pixel data, damaged...). */
typedef struct agora__dicom_note {
    char *path;
    char reason[200];
} agora__dicom_note;

typedef struct agora__dicom_scan {
    agora__dicom_series *series; /* sorted by study UID, then series UID */
    size_t n_series;
    agora__dicom_note *notes;
    size_t n_notes;
    uint32_t files_examined;
} agora__dicom_scan;

/* Scan paths (files or folders; folders recursively up to opt->max_depth, symlinks not
 * followed). opt may be NULL. Returns 0 and *out (possibly with zero series), or a negative
 * AGORA_E* (a path that does not exist, too many files, out of memory). */
int agora__dicom_scan_paths(const char *const *paths, size_t n_paths,
                            const agora__dicom_scan_options *opt, agora__dicom_scan **out,
                            agora__error *err);
void agora__dicom_scan_free(agora__dicom_scan *scan);

/* Layout of every frame of the series in mode (from its first instance). */
int agora__dicom_series_format(const agora__dicom_series *s, int mode,
                               agora__dicom_pixel_format *fmt, agora__error *err);

/* Decode every frame of s, in series order, into out (n_frames * fmt.frame_bytes bytes).
 * Files are re-read one at a time; a file that changed since the scan (different SOP UID or
 * layout) fails the call. limits may be NULL. */
int agora__dicom_series_decode(const agora__dicom_series *s, int mode, uint8_t *out, size_t out_len,
                               const agora__dicom_limits *limits, agora__error *err);

#endif
