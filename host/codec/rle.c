/*
 * DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header (segment count + 15 offsets, LE uint32),
 * then one PackBits segment per byte plane: for each sample, its bytes most significant first.
 * Each segment decodes to rows*columns bytes which we scatter straight into the interleaved,
 * little-endian output, so no intermediate buffer is needed.
 */
#include <string.h>

#include "codec_private.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decode one PackBits segment into n bytes spaced `stride` apart. Returns the number of bytes
 * produced (< n when the segment runs out early). Runs that would overflow are clipped: some
 * encoders emit a run past the end of the plane and every mainstream decoder tolerates it. */
static size_t unpack(const uint8_t *s, size_t len, uint8_t *dst, size_t stride, size_t n)
{
    size_t i = 0, o = 0;
    while (o < n && i < len) {
        int c = (int8_t)s[i++];
        if (c >= 0) {
            size_t run = (size_t)c + 1;
            if (run > len - i)
                run = len - i;
            if (run > n - o)
                run = n - o;
            if (stride == 1) {
                memcpy(dst + o, s + i, run);
            } else {
                for (size_t k = 0; k < run; k++)
                    dst[(o + k) * stride] = s[i + k];
            }
            i += (size_t)c + 1;
            o += run;
        } else if (c != -128) {
            if (i >= len)
                break;
            uint8_t v = s[i++];
            size_t run = (size_t)(1 - c);
            if (run > n - o)
                run = n - o;
            if (stride == 1) {
                memset(dst + o, v, run);
            } else {
                for (size_t k = 0; k < run; k++)
                    dst[(o + k) * stride] = v;
            }
            o += run;
        }
    }
    return o;
}

int agora__codec_rle_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                            uint8_t *out, size_t out_len, char photometric_out[17],
                            agora__error *err)
{
    (void)out_len;
    (void)photometric_out;
    unsigned bps = p->bits_allocated / 8;
    unsigned planes = p->samples_per_pixel * bps;
    size_t pixels = (size_t)p->rows * p->columns;
    if (src_len < 64)
        return agora__error_set(err, AGORA_EINPUT,
                                "RLE frame is %zu bytes, shorter than its 64-byte header; the file "
                                "is truncated",
                                src_len);
    uint32_t nseg = rd32(src);
    if (nseg != planes)
        return agora__error_set(err, AGORA_EINPUT,
                                "RLE frame has %u segments but the image attributes imply %u "
                                "(samples x bytes per sample); the file is malformed",
                                nseg, planes);
    if (nseg > 15)
        return agora__error_set(err, AGORA_EINPUT, "RLE frame has %u segments (max 15)", nseg);
    for (uint32_t k = 0; k < nseg; k++) {
        uint64_t start = rd32(src + 4 + 4 * k);
        uint64_t end = k + 1 < nseg ? rd32(src + 8 + 4 * k) : src_len;
        if (start < 64 || start > end || end > src_len)
            return agora__error_set(err, AGORA_EINPUT,
                                    "RLE segment %u has offsets outside the frame; the file is "
                                    "malformed or truncated",
                                    k + 1);
        unsigned sample = k / bps, byte_in_sample = k % bps;
        /* Segments are MSB first; output is little-endian. */
        size_t first = (size_t)sample * bps + (bps - 1 - byte_in_sample);
        size_t stride = (size_t)planes;
        size_t got = unpack(src + start, (size_t)(end - start), out + first, stride, pixels);
        if (got < pixels)
            return agora__error_set(err, AGORA_EINPUT,
                                    "RLE segment %u decodes to %zu bytes, expected %zu; the file "
                                    "is truncated or malformed",
                                    k + 1, got, pixels);
    }
    return 0;
}
