/*
 * Pixel decoding into caller-provided buffers (the host passes a memfd mapping; this module never
 * allocates frame-sized memory). Pure functions over a parsed agora__dicom_file.
 *
 * Two output modes:
 *   NORMALIZED  what plugins get (sdk agora.h): samples little-endian, interleaved, one sample per
 *               element of AGORA_PIXEL_* type (width = BitsAllocated, 1-bit expanded to U8),
 *               shifted to bit 0 per HighBit, masked to BitsStored, sign-extended when signed;
 *               YBR_FULL / YBR_FULL_422 and PALETTE COLOR converted to RGB; MONOCHROME1 kept.
 *   RAW         the samples as native Pixel Data would hold them after decompression, as
 *               little-endian bytes: no shifting, masking or color conversion, planar
 *               configuration and YBR_FULL_422 subsampling as stored; 1-bit data stays packed
 *               (frame starts at its own byte 0). For native files this equals the frame's bytes
 *               in DCMTK's `dcmconv +te` output. Compressed frames: the codec's output.
 */
#ifndef AGORA_HOST_DICOM_PIXELS_H
#define AGORA_HOST_DICOM_PIXELS_H

#include "dicom.h"

#define AGORA__DICOM_DECODE_NORMALIZED 0
#define AGORA__DICOM_DECODE_RAW        1

/* What the image pixel module of a dataset says (PS3.3 C.7.6.3), validated. */
typedef struct agora__dicom_pixel_desc {
    uint32_t rows, columns;
    uint32_t samples_per_pixel;    /* 1 or 3 */
    uint32_t bits_allocated;       /* 1, 8, 16 or 32 */
    uint32_t bits_stored;          /* 1..bits_allocated */
    uint32_t high_bit;             /* bits_stored-1..bits_allocated-1 */
    uint32_t pixel_representation; /* 0 unsigned, 1 two's complement */
    uint32_t planar_configuration; /* 0 interleaved, 1 planar (color only) */
    uint32_t frames;               /* NumberOfFrames, 1 when absent */
    char photometric[17];          /* e.g. "MONOCHROME2", "RGB", "YBR_FULL_422" */
    char transfer_syntax[65];
    int encapsulated;                       /* Pixel Data in fragments (compressed syntaxes) */
    const agora__dicom_element *pixel_data; /* points into the file */
    uint64_t native_frame_bytes; /* native: bytes per frame as stored (1-bit: rounded up) */
} agora__dicom_pixel_desc;

/* Fill *d from the top-level dataset of f. AGORA_EINPUT when Pixel Data or a required attribute
 * is missing or inconsistent (says which), AGORA_EUNSUPPORTED for encodings this module cannot
 * decode (e.g. Float Pixel Data). Values are bounded: rows, columns <= 65535, frames <= 2^31. */
int agora__dicom_pixel_describe(const agora__dicom_file *f, agora__dicom_pixel_desc *d,
                                agora__error *err);

/* The layout of a decoded frame in a mode. */
typedef struct agora__dicom_pixel_format {
    int32_t pixel_type;         /* AGORA_PIXEL_* (RAW: the matching type of the stored samples) */
    uint32_t samples_per_pixel; /* NORMALIZED: 1, or 3 after color conversion */
    uint32_t bytes_per_sample;  /* 1, 2 or 4 (RAW 1-bit: 0, data is packed) */
    int32_t photometric;        /* AGORA_PHOTOMETRIC_*; 0 in RAW mode for other photometrics */
    char photometric_name[17];  /* what the output samples are ("RGB", "YBR_FULL_422", ...) */
    uint64_t frame_bytes;       /* bytes one frame occupies in the output buffer */
} agora__dicom_pixel_format;

/* Output layout for d in mode. AGORA_EUNSUPPORTED (with the reason) for photometric/bit depth
 * combinations that cannot be normalized. For compressed data the photometric is predicted (the
 * codec may report e.g. "RGB" for YBR_FULL_422 JPEG; agora__dicom_decode_frame handles that). */
int agora__dicom_pixel_format_for(const agora__dicom_file *f, const agora__dicom_pixel_desc *d,
                                  int mode, agora__dicom_pixel_format *fmt, agora__error *err);

/* Decode frame `frame` (0-based) into out[0..out_len), out_len >= fmt.frame_bytes. Compressed
 * syntaxes go through the codec module (AGORA_EUNSUPPORTED naming the syntax and UID when it
 * cannot). Never writes past out_len; allocates at most a fragment-pointer table and, for
 * color-converted compressed frames, nothing frame-sized (conversion happens in place). */
int agora__dicom_decode_frame(const agora__dicom_file *f, const agora__dicom_pixel_desc *d,
                              uint32_t frame, int mode, uint8_t *out, size_t out_len,
                              agora__error *err);

/* Encapsulated Pixel Data: which fragments hold frame `frame` of n_frames (PS3.5 A.4): via the
 * Extended Offset Table, one fragment per frame when counts match, the Basic Offset Table, or
 * JPEG/JPEG-LS SOI and JPEG 2000 SOC markers at fragment starts. */
int agora__dicom_frame_fragments(const agora__dicom_file *f, const agora__dicom_element *pd,
                                 uint32_t n_frames, uint32_t frame, uint32_t *first,
                                 uint32_t *count, agora__error *err);

#endif
