/*
 * Pixel codecs for compressed DICOM transfer syntaxes: RLE Lossless, JPEG Lossless (Process 14,
 * own decoder), JPEG baseline / extended 8-bit (libjpeg-turbo), JPEG-LS (CharLS) and JPEG 2000
 * (OpenJPEG). Pure functions over memory: no file I/O, no globals, allocations bounded by the
 * frame size. Safe to call from several threads at once.
 *
 * Used by host/dicom (which splits Pixel Data into frames and fragments) and, unsanitized, by the
 * runner for sandboxed ingest.
 */
#ifndef AGORA_HOST_CODEC_H
#define AGORA_HOST_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* What the DICOM attributes say about the frame. photometric is the Photometric Interpretation
 * value (e.g. "MONOCHROME2", "RGB", "YBR_FULL_422"); the codec only reads it. */
typedef struct agora__codec_params {
    uint32_t rows, columns, samples_per_pixel, bits_allocated, bits_stored, pixel_representation,
        planar_configuration;
    const char *photometric;
} agora__codec_params;

/* Decode one frame from its fragments (the fragments of that frame, in order; the decoder
 * concatenates them logically) into out, which must hold exactly
 * rows*columns*samples_per_pixel*(bits_allocated/8) bytes. Output has the semantics of native
 * (uncompressed) Pixel Data after decompression: little-endian samples, samples of a pixel
 * interleaved (planar_configuration 0), signed values sign-extended to bits_allocated.
 * photometric_out receives what the samples are: "RGB" when the codec converted YBR to RGB
 * (JPEG baseline/extended with YBR_FULL_422/YBR_FULL, like DCMTK's default), otherwise the input
 * photometric. The caller owns every buffer; nothing is retained after return.
 * Returns 0, or a negative AGORA_E* with err set:
 *   AGORA_EUNSUPPORTED  syntax not decoded here (message names the syntax and its UID)
 *   AGORA_EINPUT        corrupt/truncated stream or stream inconsistent with params
 *   AGORA_EINVAL        bad arguments (NULL, out_len mismatch, absurd params)
 *   AGORA_ENOMEM        out of memory */
int agora__codec_decode_frame(const char *transfer_syntax_uid, const uint8_t *const *fragments,
                              const size_t *fragment_lengths, size_t n_fragments,
                              const agora__codec_params *params, uint8_t *out, size_t out_len,
                              char photometric_out[17], agora__error *err);

/* 1 if agora__codec_decode_frame decodes this transfer syntax, else 0. */
int agora__codec_supported(const char *transfer_syntax_uid);

/* The DICOM name of a known transfer syntax (static string), e.g. "JPEG Lossless,
 * Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])", or NULL. */
const char *agora__codec_syntax_name(const char *transfer_syntax_uid);

#endif
