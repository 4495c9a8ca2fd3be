/*
 * libFuzzer target for one decoder (FUZZ_TS_UID, set per executable by meson).
 * Input: 10 bytes of frame attributes, then the compressed frame split into up to 3 fragments:
 *   u16 rows, u16 columns (1..1024), u8 samples (1/3/4), u8 bits allocated (8/16/32),
 *   u8 bits stored, u8 pixel representation, u8 photometric index, u8 fragment split point.
 * make_seeds.py writes seeds in this layout from the pydicom corpus.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static const char *const photometrics[] = {"MONOCHROME2", "MONOCHROME1",  "RGB",
                                           "YBR_FULL",    "YBR_FULL_422", "YBR_ICT",
                                           "YBR_RCT",     "PALETTE COLOR"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 10)
        return 0;
    agora__codec_params p;
    p.rows = 1 + ((uint32_t)data[0] << 8 | data[1]) % 1024;
    p.columns = 1 + ((uint32_t)data[2] << 8 | data[3]) % 1024;
    static const uint32_t spps[] = {1, 3, 4, 1};
    static const uint32_t bas[] = {8, 16, 32, 16};
    p.samples_per_pixel = spps[data[4] & 3];
    p.bits_allocated = bas[data[5] & 3];
    p.bits_stored = 1 + data[6] % p.bits_allocated;
    p.pixel_representation = data[7] & 1;
    p.planar_configuration = 0;
    p.photometric = photometrics[data[8] & 7];
    const uint8_t *stream = data + 10;
    size_t len = size - 10;
    size_t split = len ? (size_t)data[9] * len / 256 : 0;
    const uint8_t *frags[2] = {stream, stream + split};
    size_t lens[2] = {split, len - split};
    size_t out_len = (size_t)p.rows * p.columns * p.samples_per_pixel * (p.bits_allocated / 8);
    uint8_t *out = malloc(out_len);
    if (out == NULL)
        return 0;
    char pm[17];
    agora__error err;
    memset(&err, 0, sizeof err);
    int rc = agora__codec_decode_frame(FUZZ_TS_UID, frags, lens, 2, &p, out, out_len, pm, &err);
    /* Every failure must carry a message; success must name a photometric. */
    if ((rc < 0 && err.msg[0] == '\0') || (rc == 0 && pm[0] == '\0'))
        abort();
    free(out);
    return 0;
}
