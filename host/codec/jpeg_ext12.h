/*
 * Private to host/codec: the 12-bit JPEG decoder's building blocks, exposed for unit tests
 * (tests/unit/codec/test_jpeg_ext12.c). The decoder itself is reached through codec.c.
 */
#ifndef AGORA_HOST_CODEC_JPEG_EXT12_H
#define AGORA_HOST_CODEC_JPEG_EXT12_H

#include <stddef.h>
#include <stdint.h>

#include "codec_private.h"

#define AGORA__JPEG12_RANGE_MASK (4095 * 4 + 3)

/* libjpeg's IDCT range-limit table for 12-bit samples, indexed by the masked IDCT output. */
void agora__jpeg12_range_table(uint16_t range[AGORA__JPEG12_RANGE_MASK + 1]);

/* Dequantise coef (natural order) with qt and inverse-transform it exactly as IJG jidctint.c
 * (islow, 12-bit) does; writes 8 rows of 8 samples at out, rows stride samples apart. */
void agora__jpeg12_idct_islow(const int32_t coef[64], const uint16_t qt[64],
                              const uint16_t range[AGORA__JPEG12_RANGE_MASK + 1], uint16_t *out,
                              size_t stride);

/* libjpeg's YCbCr -> RGB for 12-bit samples. */
void agora__jpeg12_ycc_to_rgb(unsigned y, unsigned cb, unsigned cr, unsigned rgb[3]);

/* Build a Huffman table from a DHT's counts and symbols and decode nout symbols from bits
 * (entropy-coded bytes, 0xFF00 stuffing honoured) into out (-1 for an invalid code). Returns 0,
 * -1 for an invalid table, -3 when the symbols needed more bits than bits holds. */
int agora__jpeg12_huffman_decode(const uint8_t counts[16], const uint8_t *syms, unsigned nsyms,
                                 const uint8_t *bits, size_t nbytes, int *out, size_t nout);

int agora__codec_jpeg_ext12_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                                   uint8_t *out, size_t out_len, char photometric_out[17],
                                   agora__error *err);

#endif
