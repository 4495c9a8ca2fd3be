/*
 * Private to host/codec: one decoder per file, all with the same shape. Each decoder receives the
 * frame's compressed bytes as one contiguous buffer (codec.c joins multi-fragment frames) and the
 * already-validated params (out_len == rows*columns*spp*bytes_per_sample, sizes bounded), and
 * writes native little-endian interleaved samples into out. The caller owns every buffer.
 */
#ifndef AGORA_HOST_CODEC_PRIVATE_H
#define AGORA_HOST_CODEC_PRIVATE_H

#include "codec.h"

/* Hard bounds on what a frame may claim; a DICOM frame beyond these is refused, not attempted. */
#define AGORA__CODEC_MAX_DIM   65535u
#define AGORA__CODEC_MAX_SPP   4u
#define AGORA__CODEC_MAX_FRAME ((size_t)1 << 31) /* decoded bytes per frame */

typedef int (*agora__codec_decoder)(const uint8_t *src, size_t src_len,
                                    const agora__codec_params *p, uint8_t *out, size_t out_len,
                                    char photometric_out[17], agora__error *err);

int agora__codec_rle_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                            uint8_t *out, size_t out_len, char photometric_out[17],
                            agora__error *err);
int agora__codec_jpeg_lossless_decode(const uint8_t *src, size_t src_len,
                                      const agora__codec_params *p, uint8_t *out, size_t out_len,
                                      char photometric_out[17], agora__error *err);
int agora__codec_jpeg_baseline_decode(const uint8_t *src, size_t src_len,
                                      const agora__codec_params *p, uint8_t *out, size_t out_len,
                                      char photometric_out[17], agora__error *err);
int agora__codec_jpegls_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                               uint8_t *out, size_t out_len, char photometric_out[17],
                               agora__error *err);
int agora__codec_j2k_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                            uint8_t *out, size_t out_len, char photometric_out[17],
                            agora__error *err);

/* Store one decoded sample value at sample index i of out (1, 2 or 4 bytes per sample, LE). */
static inline void agora__codec_put(uint8_t *out, size_t i, unsigned bytes, uint32_t v)
{
    uint8_t *d = out + i * bytes;
    for (unsigned b = 0; b < bytes; b++)
        d[b] = (uint8_t)(v >> (8 * b));
}

/* Sign-extend a value of `bits` bits to 32 bits (bits in 1..32). */
static inline uint32_t agora__codec_sext(uint32_t v, unsigned bits)
{
    if (bits >= 32)
        return v;
    uint32_t m = 1u << (bits - 1);
    v &= (1u << bits) - 1u;
    return (v ^ m) - m;
}

#endif
