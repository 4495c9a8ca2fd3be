/* Shared helpers for the codec unit tests (header-only, test code). */
#ifndef AGORA_TEST_CODEC_UTIL_H
#define AGORA_TEST_CODEC_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

#define UID_RLE       "1.2.840.10008.1.2.5"
#define UID_LJPEG     "1.2.840.10008.1.2.4.57"
#define UID_LJPEG_SV1 "1.2.840.10008.1.2.4.70"
#define UID_BASELINE  "1.2.840.10008.1.2.4.50"
#define UID_EXTENDED  "1.2.840.10008.1.2.4.51"
#define UID_JLS       "1.2.840.10008.1.2.4.80"
#define UID_JLS_NEAR  "1.2.840.10008.1.2.4.81"
#define UID_J2K_LL    "1.2.840.10008.1.2.4.90"
#define UID_J2K       "1.2.840.10008.1.2.4.91"

static inline agora__codec_params mkparams(uint32_t rows, uint32_t cols, uint32_t spp, uint32_t ba,
                                           uint32_t bs, uint32_t pr, const char *pm)
{
    agora__codec_params p = {rows, cols, spp, ba, bs, pr, 0, pm};
    return p;
}

static inline size_t frame_len(const agora__codec_params *p)
{
    return (size_t)p->rows * p->columns * p->samples_per_pixel * (p->bits_allocated / 8);
}

/* Decode a single-fragment frame; out must hold frame_len(p) bytes. */
static inline int decode1(const char *uid, const uint8_t *src, size_t len,
                          const agora__codec_params *p, uint8_t *out, char pm[17],
                          agora__error *err)
{
    const uint8_t *frags[1] = {src};
    size_t lens[1] = {len};
    memset(err, 0, sizeof *err);
    return agora__codec_decode_frame(uid, frags, lens, 1, p, out, frame_len(p), pm, err);
}

/* Truncations of a valid stream to under 90% must fail with a message; random single-byte
 * corruptions must decode or fail cleanly (the sanitizers catch memory errors). Returns how many
 * corrupted variants were rejected. */
static inline unsigned hostile_sweep(const char *uid, const uint8_t *src, size_t len,
                                     const agora__codec_params *p)
{
    uint8_t *out = malloc(frame_len(p));
    uint8_t *copy = malloc(len);
    char pm[17];
    agora__error err;
    unsigned failed = 0;
    assert_non_null(out);
    assert_non_null(copy);
    for (size_t cut = 0; cut < len; cut += (len > 400 ? len / 200 : 1)) {
        int rc = decode1(uid, src, cut, p, out, pm, &err);
        if (cut < len * 9 / 10) {
            assert_true(rc < 0);
            assert_true(err.msg[0] != '\0');
        }
    }
    uint32_t seed = 12345;
    for (unsigned k = 0; k < 300; k++) {
        memcpy(copy, src, len);
        seed = seed * 1103515245u + 12345u;
        size_t at = (seed >> 8) % len;
        copy[at] ^= (uint8_t)(1u + ((seed >> 3) % 255u));
        if (decode1(uid, copy, len, p, out, pm, &err) < 0)
            failed++;
    }
    free(copy);
    free(out);
    return failed;
}

#endif
