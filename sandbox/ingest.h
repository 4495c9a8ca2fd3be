/*
 * Private to the runner's MODE_INGEST (ingest.c, ingest_meta.c): the DICOM reader and the codecs,
 * linked unsanitized into the runner, parse files the host hands in as descriptors, after the
 * same confinement as a plugin worker (no plugin, no dlopen).
 */
#ifndef AGORA_SANDBOX_INGEST_H
#define AGORA_SANDBOX_INGEST_H

#include "runner.h"

#include "dicom.h"
#include "fgroups.h"
#include "pixels.h"

/* Bounds of what one reply carries (the host checks the same numbers). */
#define AGORA__INGEST_MAX_ELEMENTS  512u
#define AGORA__INGEST_MAX_VALUE     1024u
#define AGORA__INGEST_MAX_POSITIONS 65536u
/* Per-frame functional group values of one reply (the frame cap is 8 MiB). */
#define AGORA__INGEST_MAX_PER_FRAME_BYTES (6u << 20)

/* Storage behind one IngestMetadata message (pointers in `meta` point here or into the file). */
typedef struct ingest_meta_store {
    Agora__Ipc__IngestMetadata meta;
    char ts[65], study[65], series[65], sop[65], sop_class[65], modality[17], photometric[17];
    double position[3], orientation[6], spacing[2];
    double *frame_positions; /* malloc'ed, 3 per frame */
    agora__dicom_fg fg;      /* functional groups (fgroups.h); owns the per-frame values */
    char rescale_type[17];
    /* Per-frame arrays of the message (malloc'ed, NULL when not sent). */
    double *frame_orientations, *frame_spacing, *frame_rescale, *frame_window;
    uint32_t *frame_volume, *frame_stack, *frame_in_stack, *frame_temporal;
    Agora__Ipc__IngestElement elements[AGORA__INGEST_MAX_ELEMENTS];
    Agora__Ipc__IngestElement *element_ptrs[AGORA__INGEST_MAX_ELEMENTS];
    size_t n_elements;
    uint8_t *swapped[AGORA__INGEST_MAX_ELEMENTS]; /* byte-swapped copies (big-endian files) */
    size_t n_swapped;
} ingest_meta_store;

/* Fill st->meta from f (elements and the per-frame functional group values only when
 * with_elements). 0, -1 when out of memory, -2 when the per-frame values exceed
 * AGORA__INGEST_MAX_PER_FRAME_BYTES. */
int agora__runner_ingest_meta(const agora__dicom_file *f, int with_elements, ingest_meta_store *st);
void agora__runner_ingest_meta_free(ingest_meta_store *st);

/* The request loop of an ingest worker. Returns the exit code (0 after Shutdown or EOF). */
int agora__runner_serve_ingest(void);

#endif
