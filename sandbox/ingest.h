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

/* Bounds of what one reply carries, AGORA__INGEST_MAX_*: proto.h (the host checks the same). */
#include "proto.h"
/* Per-frame functional group values of one reply (the frame cap is 8 MiB). */
#define AGORA__INGEST_MAX_PER_FRAME_BYTES (6u << 20)

/* Storage behind one IngestMetadata message (pointers in `meta` point here or into the file). */
typedef struct ingest_meta_store {
    Agora__Ipc__IngestMetadata meta;
    char ts[65], study[65], series[65], sop[65], sop_class[65], modality[17], photometric[17];
    char body_part[17];
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

/* Bounds of a DEID_UIDS reply (the host checks the same numbers). */
#define AGORA__INGEST_DEID_MAX_UIDS      4096u
#define AGORA__INGEST_DEID_MAX_UID_BYTES (256u << 10)

/* DEID_UIDS, DEID_WRITE and DUMP (ingest_deid.c) on the mapped input file[0..len); out_fd is the
 * host's output memfd (-1 when none came). Fills r (status, error, deid, output_used); *state
 * owns what r points into and must be freed with agora__runner_ingest_extra_free after the reply
 * is sent. The output window is unmapped on return. 0 or -1 (r says why). */
typedef struct ingest_extra ingest_extra;
int agora__runner_ingest_extra(const Agora__Ipc__IngestRequest *m, const uint8_t *file, size_t len,
                               int out_fd, Agora__Ipc__IngestReply *r, ingest_extra **state);
void agora__runner_ingest_extra_free(ingest_extra *x);

/* The request loop of an ingest worker. Returns the exit code (0 after Shutdown or EOF). */
int agora__runner_serve_ingest(void);

#endif
