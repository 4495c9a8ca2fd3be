/*
 * Part 10 writer on the dicom dataset model: Explicit VR Little Endian encoding into a growing,
 * size-capped buffer; file meta group with its group length; zero preamble + "DICM"; even value
 * lengths padded per VR; sequences and items with defined or undefined lengths; encapsulated
 * Pixel Data passed through fragment by fragment; big-endian input values swapped.
 * Used by `agora deid` (through profile.c) and `agora dicom synth`.
 */
#ifndef AGORA_DEID_WRITER_H
#define AGORA_DEID_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "dicom.h"

/* Implementation Class UID and Version Name written into every file meta group. */
#define AGORA__DEID_IMPL_CLASS_UID "2.25.250001133959730364003863141458298510853"
#define AGORA__DEID_IMPL_VERSION   "AGORA_010"

/* An output buffer. `max` bounds len (a writer never grows past what the caller allows); the
 * first error sticks in `rc` and later calls do nothing, so a caller checks once at the end. */
/* Large values (Pixel Data) are not copied when refs are allowed: the buffer records a reference
 * to the source bytes, which must outlive the buffer's use, and the output is written with
 * writev. References are only taken outside sequences (none while a sequence is open) because
 * defined lengths are patched by data offsets. */
#define AGORA__DEID_MAX_REFS 8
#define AGORA__DEID_REF_MIN  65536

typedef struct agora__deid_ref {
    size_t at;        /* data offset the referenced bytes follow */
    const uint8_t *p; /* borrowed */
    size_t n;
} agora__deid_ref;

typedef struct agora__deid_buf {
    uint8_t *data; /* malloc'ed, owned by the buffer; free with agora__deid_buf_free */
    size_t len;    /* bytes in data */
    size_t cap;
    size_t max;         /* cap on len + ref_bytes */
    int rc;             /* 0 or the first AGORA_E* */
    int refs_allowed;   /* set by a caller that keeps the sources alive until written */
    uint32_t seq_depth; /* open sequences */
    size_t n_refs;
    size_t ref_bytes;
    agora__deid_ref refs[AGORA__DEID_MAX_REFS];
} agora__deid_buf;

void agora__deid_buf_init(agora__deid_buf *b, size_t max);
void agora__deid_buf_free(agora__deid_buf *b);
/* Empty the buffer for reuse (keeps its allocation) with a new cap. */
void agora__deid_buf_reset(agora__deid_buf *b, size_t max);
/* Append raw bytes (grows geometrically, capped by max). */
void agora__deid_buf_put(agora__deid_buf *b, const void *p, size_t n);
/* Append n bytes at p by reference when allowed and large, else by copy. */
void agora__deid_buf_put_ref(agora__deid_buf *b, const void *p, size_t n);
/* Total encoded size (data plus referenced bytes). */
size_t agora__deid_buf_size(const agora__deid_buf *b);

/* Flags of the writer. AGORA__DEID_W_DEFINED_LENGTHS: sequences and items with explicit
 * lengths instead of delimiters. */
#define AGORA__DEID_W_DEFINED_LENGTHS 0x1u

/* Non-zero for VRs whose explicit-VR header has a 2-byte reserved field and a 4-byte length. */
int agora__deid_vr_long(uint16_t vr);
/* Byte used to pad a value of this VR to even length: NUL for UI and binary VRs, space for
 * text. */
uint8_t agora__deid_vr_pad(uint16_t vr);

/* One element with value[0..len) (little-endian bytes for binary VRs), padded to even length.
 * A VR with a 2-byte length and len > 65534 fails with AGORA_ELIMIT. */
void agora__deid_put_element(agora__deid_buf *b, uint32_t tag, uint16_t vr, const void *value,
                             size_t len);
/* Sequence / item framing. begin returns a mark to pass to the matching end. */
size_t agora__deid_put_seq_begin(agora__deid_buf *b, uint32_t tag, uint16_t vr, uint32_t flags);
void agora__deid_put_seq_end(agora__deid_buf *b, size_t mark, uint32_t flags);
size_t agora__deid_put_item_begin(agora__deid_buf *b, uint32_t flags);
void agora__deid_put_item_end(agora__deid_buf *b, size_t mark, uint32_t flags);

/* Copy a non-sequence element of a parsed dataset: values swapped to little endian when the
 * element came from a big-endian stream, encapsulated Pixel Data re-framed fragment by fragment
 * (Basic Offset Table included), implicit-VR Pixel Data given OW when bits_allocated > 8. */
void agora__deid_put_copy(agora__deid_buf *b, const agora__dicom_element *e,
                          unsigned bits_allocated);

/* Copy a whole dataset (recursing into items), skipping group lengths (gggg,0000) and any
 * group 0002 element. */
void agora__deid_put_dataset(agora__deid_buf *b, const agora__dicom_dataset *ds,
                             unsigned bits_allocated, uint32_t flags, uint32_t depth);

/* Preamble (128 zero bytes), "DICM" and the file meta group for these UIDs (each 1..64 chars).
 * The transfer syntax must be Explicit VR Little Endian for native pixel data, or the input's
 * encapsulated syntax for passthrough. */
void agora__deid_put_meta(agora__deid_buf *b, const char *sop_class, const char *sop_instance,
                          const char *transfer_syntax);

/* Write a whole Part 10 file: meta then ds. Returns b->rc (err set when non-zero). */
int agora__deid_write_part10(agora__deid_buf *b, const agora__dicom_dataset *ds,
                             const char *sop_class, const char *sop_instance,
                             const char *transfer_syntax, uint32_t flags, agora__error *err);

#endif
