/* JPEG baseline/extended 8-bit decoder: streams made with libjpeg's encoder in memory. */
#include <stdio.h>

#include <jpeglib.h>

#include "test_util.h"

/* Encode w x h with nc components; ycc: let libjpeg convert RGB->YCbCr (like a YBR_FULL_422
 * DICOM file), else store components as given. Returns a malloc'ed stream. */
static size_t encode(const uint8_t *px, unsigned w, unsigned h, int nc, int ycc, int quality,
                     int progressive, uint8_t **out)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned long len = 0;
    *out = NULL;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, out, &len);
    c.image_width = w;
    c.image_height = h;
    c.input_components = nc;
    c.in_color_space = nc == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    if (nc == 3 && !ycc)
        jpeg_set_colorspace(&c, JCS_RGB);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * (unsigned)nc);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return len;
}

static uint8_t *pattern(unsigned w, unsigned h, unsigned nc)
{
    uint8_t *p = malloc((size_t)w * h * nc);
    assert_non_null(p);
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            for (unsigned c = 0; c < nc; c++)
                p[((size_t)y * w + x) * nc + c] = (uint8_t)(x * 4 + y * 2 + c * 60);
    return p;
}

static int max_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        m = d > m ? d : m;
    }
    return m;
}

static void test_gray(void **state)
{
    (void)state;
    uint8_t *px = pattern(32, 24, 1), *s;
    size_t n = encode(px, 32, 24, 1, 0, 100, 0, &s);
    agora__codec_params p = mkparams(24, 32, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[32 * 24];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_BASELINE, s, n, &p, out, pm, &err), 0);
    assert_true(max_abs_diff(out, px, sizeof out) <= 3);
    assert_string_equal(pm, "MONOCHROME2");
    /* 8-bit JPEG into a 16-bit container (Bits Allocated 16) widens each sample. */
    agora__codec_params p16 = mkparams(24, 32, 1, 16, 8, 0, "MONOCHROME2");
    uint8_t out16[32 * 24 * 2];
    assert_int_equal(decode1(UID_EXTENDED, s, n, &p16, out16, pm, &err), 0);
    assert_int_equal(out16[2 * 5], out[5]);
    assert_int_equal(out16[2 * 5 + 1], 0);
    hostile_sweep(UID_BASELINE, s, n, &p);
    free(s);
    free(px);
}

static void test_ybr_converted_to_rgb(void **state)
{
    (void)state;
    uint8_t *px = pattern(16, 16, 3), *s;
    size_t n = encode(px, 16, 16, 3, 1, 100, 0, &s);
    agora__codec_params p = mkparams(16, 16, 3, 8, 8, 0, "YBR_FULL_422");
    uint8_t out[16 * 16 * 3];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_BASELINE, s, n, &p, out, pm, &err), 0);
    assert_string_equal(pm, "RGB");
    assert_true(max_abs_diff(out, px, sizeof out) <= 12);
    free(s);
    free(px);
}

static void test_rgb_not_converted(void **state)
{
    (void)state;
    /* Components stored as RGB (no transform): with photometric RGB they come back as coded;
     * even if a YCbCr-coded stream is labelled RGB, no conversion happens (DCMTK's default). */
    uint8_t *px = pattern(16, 16, 3), *s;
    size_t n = encode(px, 16, 16, 3, 0, 100, 0, &s);
    agora__codec_params p = mkparams(16, 16, 3, 8, 8, 0, "RGB");
    uint8_t out[16 * 16 * 3];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_BASELINE, s, n, &p, out, pm, &err), 0);
    assert_string_equal(pm, "RGB");
    assert_true(max_abs_diff(out, px, sizeof out) <= 3);
    free(s);
    n = encode(px, 16, 16, 3, 1, 100, 0, &s);
    assert_int_equal(decode1(UID_BASELINE, s, n, &p, out, pm, &err), 0);
    assert_true(max_abs_diff(out, px, sizeof out) > 20); /* still YCbCr: not converted */
    free(s);
    free(px);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t *px = pattern(16, 16, 1), *s;
    agora__codec_params p = mkparams(16, 16, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[16 * 16];
    char pm[17];
    agora__error err;
    size_t n = encode(px, 16, 16, 1, 0, 90, 1, &s);
    assert_int_equal(decode1(UID_EXTENDED, s, n, &p, out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "SOF2"));
    free(s);
    /* 12-bit extended goes to the 12-bit decoder (tests/unit/codec/test_jpeg_ext12.c): a
     * header-only stream is reported as corrupt by it, not refused. */
    const uint8_t sof12[] = {0xFF, 0xD8, 0xFF, 0xC1, 0,    11, 12,   0,   16,
                             0,    16,   1,    1,    0x11, 0,  0xFF, 0xD9};
    agora__codec_params p12 = mkparams(16, 16, 1, 16, 12, 0, "MONOCHROME2");
    uint8_t out12[16 * 16 * 2];
    assert_int_equal(decode1(UID_EXTENDED, sof12, sizeof sof12, &p12, out12, pm, &err),
                     AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "12-bit JPEG"));
    /* Dimensions that disagree with the attributes. */
    n = encode(px, 16, 16, 1, 0, 90, 0, &s);
    agora__codec_params wrong = mkparams(16, 8, 1, 8, 8, 0, "MONOCHROME2");
    assert_int_equal(decode1(UID_BASELINE, s, n, &wrong, out, pm, &err), AGORA_EINPUT);
    const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 16, 0,  16, 1, 1, 0x11,
                            0,    0xFF, 0xDA, 0,    8, 1,  1, 0, 0,  63, 0,  1, 2, 3};
    assert_int_equal(decode1(UID_BASELINE, junk, sizeof junk, &p, out, pm, &err), AGORA_EINPUT);
    free(s);
    free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray),
        cmocka_unit_test(test_ybr_converted_to_rgb),
        cmocka_unit_test(test_rgb_not_converted),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
