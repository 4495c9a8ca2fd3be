/* Segmented palette color LUTs (PS3.3 C.7.9.2): discrete, linear and indirect segments expand
 * to the descriptor's entry count and map pixels like a plain LUT; malformed segment data
 * (truncated, overlong, unknown opcode, nested indirect, offsets outside the data) is an
 * error, never a read past the element. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "builder.h"
#include "dicom.h"
#include "pixels.h"

/* An 8-bit PALETTE COLOR image of n pixels (values px) with, per channel, a descriptor
 * (entries, first 0, bits) and segmented data seg[ch]. */
static tbuf build(const uint8_t *px, uint16_t n, uint16_t entries, uint16_t bits,
                  const uint16_t *const seg[3], const uint32_t seg_len[3])
{
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_us(&t, 0x0028, 0x0002, 1);
    tb_str(&t, 0x0028, 0x0004, "CS", "PALETTE COLOR");
    tb_us(&t, 0x0028, 0x0010, 1);
    tb_us(&t, 0x0028, 0x0011, n);
    tb_us(&t, 0x0028, 0x0100, 8);
    tb_us(&t, 0x0028, 0x0101, 8);
    tb_us(&t, 0x0028, 0x0102, 7);
    tb_us(&t, 0x0028, 0x0103, 0);
    for (int ch = 0; ch < 3; ch++) {
        tb_hdr(&t, 0x0028, (uint16_t)(0x1101 + ch), "US", 6);
        tb_u16(&t, entries);
        tb_u16(&t, 0);
        tb_u16(&t, bits);
    }
    for (int ch = 0; ch < 3; ch++) {
        tb_hdr(&t, 0x0028, (uint16_t)(0x1221 + ch), "OW", seg_len[ch] * 2);
        for (uint32_t i = 0; i < seg_len[ch]; i++)
            tb_u16(&t, seg[ch][i]);
    }
    uint32_t len = n + (n & 1u);
    tb_hdr(&t, 0x7FE0, 0x0010, "OB", len);
    tb_put(&t, px, n);
    if (n & 1)
        tb_put(&t, "\0", 1);
    return t;
}

/* Decode; returns the malloc'ed RGB frame, or NULL when rc (asserted == want) is an error,
 * with the message in msg. */
static uint16_t *decode(const tbuf *t, int want, char msg[256])
{
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    assert_int_equal(agora__dicom_read(t->b, t->n, NULL, &f, &err), 0);
    agora__dicom_pixel_desc d;
    agora__dicom_pixel_format fmt;
    int rc = agora__dicom_pixel_describe(f, &d, &err);
    if (rc == 0)
        rc = agora__dicom_pixel_format_for(f, &d, AGORA__DICOM_DECODE_NORMALIZED, &fmt, &err);
    uint16_t *out = NULL;
    if (rc == 0) {
        assert_int_equal(fmt.bytes_per_sample, 2);
        out = malloc((size_t)fmt.frame_bytes);
        assert_non_null(out);
        rc = agora__dicom_decode_frame(f, &d, 0, AGORA__DICOM_DECODE_NORMALIZED, (uint8_t *)out,
                                       (size_t)fmt.frame_bytes, &err);
    }
    if (rc != want)
        fprintf(stderr, "rc %d: %s\n", rc, err.msg);
    assert_int_equal(rc, want);
    snprintf(msg, 256, "%s", err.msg);
    if (rc) {
        free(out);
        out = NULL;
    }
    agora__dicom_file_free(f);
    return out;
}

static void test_expansion(void **state)
{
    (void)state;
    /* Red: discrete 3 values, then a linear ramp 100 -> 200 over 4 entries (125, 150, 175,
     * 200), then indirect re-expansion of the first 2 segments (discrete 3 + linear 4).
     * Green: one discrete run of 14. Blue: discrete 1 then a descending linear with ties
     * (0 -> 5 over 2: 2.5 rounds to even 2, then 5), then discrete fill. */
    static const uint16_t red[] = {0, 3, 10, 20, 100, 1, 4, 200, 2, 2, 0, 0};
    static const uint16_t green[] = {0, 14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    static const uint16_t blue[] = {0, 1, 0, 1, 2, 5, 0, 11, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    const uint16_t *seg[3] = {red, green, blue};
    const uint32_t len[3] = {sizeof red / 2, sizeof green / 2, sizeof blue / 2};
    static const uint16_t want_r[14] = {10, 20, 100, 125, 150, 175, 200,
                                        10, 20, 100, 125, 150, 175, 200};
    static const uint16_t want_b[14] = {0, 2, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    uint8_t px[16];
    for (int i = 0; i < 16; i++)
        px[i] = (uint8_t)i; /* 14 and 15 are past the table: clamp to the last entry */
    tbuf t = build(px, 16, 14, 16, seg, len);
    char msg[256];
    uint16_t *o = decode(&t, 0, msg);
    for (int i = 0; i < 16; i++) {
        int k = i < 14 ? i : 13;
        assert_int_equal(o[i * 3 + 0], want_r[k]);
        assert_int_equal(o[i * 3 + 1], green[2 + k]);
        assert_int_equal(o[i * 3 + 2], want_b[k]);
    }
    free(o);
    free(t.b);
}

static void expect_corrupt(const uint16_t *red, uint32_t n, uint16_t entries, const char *needle)
{
    static const uint16_t ok[] = {0, 4, 1, 2, 3, 4};
    const uint16_t *seg[3] = {red, ok, ok};
    const uint32_t len[3] = {n, 6, 6};
    uint8_t px[4] = {0, 1, 2, 3};
    tbuf t = build(px, 4, entries, 16, seg, len);
    char msg[256];
    assert_null(decode(&t, AGORA_EINPUT, msg));
    if (strstr(msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", msg, needle);
    free(t.b);
}

static void test_malformed(void **state)
{
    (void)state;
    static const uint16_t trunc_discrete[] = {0, 9, 1, 2};
    expect_corrupt(trunc_discrete, 4, 4, "discrete segment is truncated");
    static const uint16_t too_long[] = {0, 5, 1, 2, 3, 4, 5};
    expect_corrupt(too_long, 7, 4, "beyond the descriptor");
    static const uint16_t too_short[] = {0, 3, 1, 2, 3};
    expect_corrupt(too_short, 5, 4, "expands to 3 entries");
    static const uint16_t linear_first[] = {1, 4, 100};
    expect_corrupt(linear_first, 3, 4, "first segment is linear");
    static const uint16_t bad_op[] = {0, 1, 5, 7, 3, 9};
    expect_corrupt(bad_op, 6, 4, "unknown opcode");
    static const uint16_t outside[] = {0, 1, 5, 2, 1, 0xFFFF, 0};
    expect_corrupt(outside, 7, 4, "outside the data");
    /* Indirect pointing at itself: nesting is refused rather than recursing. */
    static const uint16_t nested[] = {0, 1, 5, 2, 1, 3, 0};
    expect_corrupt(nested, 7, 4, "another indirect");
    static const uint16_t half[] = {0};
    expect_corrupt(half, 1, 4, "segment is truncated");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expansion),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
