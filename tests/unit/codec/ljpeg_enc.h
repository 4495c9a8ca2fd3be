/*
 * Test-only JPEG Lossless (Process 14) encoder, so unit tests can make streams exercising every
 * predictor, point transforms, restart intervals, interleaved and non-interleaved scans, long
 * Huffman codes and the SSSS=16 difference, then check the decoder reproduces the input exactly.
 * Not used by the product.
 */
#ifndef AGORA_TEST_LJPEG_ENC_H
#define AGORA_TEST_LJPEG_ENC_H

#include <stddef.h>
#include <stdint.h>

typedef struct ljpeg_opts {
    unsigned width, height, ncomp, precision, psv, pt, restart_interval;
    int interleaved; /* 1: one scan with every component; 0: one scan per component */
} ljpeg_opts;

/* Encode samples (interleaved, ncomp per pixel, values < 2^precision with the low pt bits zero)
 * into a malloc'ed stream; returns its length (0 on failure). */
size_t ljpeg_encode(const ljpeg_opts *o, const uint16_t *samples, uint8_t **out);

#endif
