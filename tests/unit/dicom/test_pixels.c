/* Native pixel decoding: bit depths, high bit, signedness, planar configuration, color models,
 * palettes, 1-bit data, big-endian data, RAW mode and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "builder.h"
#include "dicom.h"
#include "pixels.h"

typedef struct image {
    const char *ts;
    uint16_t rows, cols, spp, ba, bs, hb, pr, pc;
    uint32_t frames;
    const char *photometric;
    const void *data;
    uint32_t len;
} image;

static tbuf build(const image *im)
{
    int big = strcmp(im->ts, AGORA__DICOM_TS_EXPLICIT_BE) == 0;
    tbuf t = {.explicit = strcmp(im->ts, AGORA__DICOM_TS_IMPLICIT_LE) != 0, .big = big};
    tb_meta(&t, im->ts);
    tb_us(&t, 0x0028, 0x0002, im->spp);
    tb_str(&t, 0x0028, 0x0004, "CS", im->photometric);
    if (im->spp > 1)
        tb_us(&t, 0x0028, 0x0006, im->pc);
    if (im->frames > 1) {
        char nf[16];
        snprintf(nf, sizeof nf, "%u", im->frames);
        tb_str(&t, 0x0028, 0x0008, "IS", nf);
    }
    tb_us(&t, 0x0028, 0x0010, im->rows);
    tb_us(&t, 0x0028, 0x0011, im->cols);
    tb_us(&t, 0x0028, 0x0100, im->ba);
    tb_us(&t, 0x0028, 0x0101, im->bs);
    tb_us(&t, 0x0028, 0x0102, im->hb);
    tb_us(&t, 0x0028, 0x0103, im->pr);
    return t;
}

static void add_pixels(tbuf *t, const image *im)
{
    uint32_t len = im->len + (im->len & 1);
    tb_hdr(t, 0x7FE0, 0x0010, im->ba > 8 ? "OW" : "OB", len);
    tb_put(t, im->data, im->len);
    if (im->len & 1)
        tb_put(t, "\0", 1);
}

/* Decode frame in mode; returns a malloc'ed buffer of fmt.frame_bytes. */
static uint8_t *decode(const tbuf *t, uint32_t frame, int mode, agora__dicom_pixel_format *fmt,
                       int expect_rc)
{
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    assert_int_equal(agora__dicom_read(t->b, t->n, NULL, &f, &err), 0);
    agora__dicom_pixel_desc d;
    int rc = agora__dicom_pixel_describe(f, &d, &err);
    if (rc == 0)
        rc = agora__dicom_pixel_format_for(f, &d, mode, fmt, &err);
    uint8_t *out = NULL;
    if (rc == 0) {
        out = malloc((size_t)fmt->frame_bytes);
        /* One byte short is refused, never overrun. */
        assert_int_equal(
            agora__dicom_decode_frame(f, &d, frame, mode, out, (size_t)fmt->frame_bytes - 1, &err),
            AGORA_EINVAL);
        rc = agora__dicom_decode_frame(f, &d, frame, mode, out, (size_t)fmt->frame_bytes, &err);
    }
    if (rc != expect_rc)
        fprintf(stderr, "rc %d: %s\n", rc, err.msg);
    assert_int_equal(rc, expect_rc);
    if (rc) {
        assert_true(err.msg[0] != 0);
        free(out);
        out = NULL;
    }
    agora__dicom_file_free(f);
    return out;
}

static void test_mono8_and_frames(void **state)
{
    (void)state;
    uint8_t px[12] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15};
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 2, 3, 1, 8, 8, 7, 0, 0, 2, "MONOCHROME2", px, 12};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    uint8_t *o = decode(&t, 1, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.pixel_type, AGORA_PIXEL_U8);
    assert_int_equal(fmt.frame_bytes, 6);
    assert_int_equal(fmt.photometric, AGORA_PHOTOMETRIC_MONOCHROME2);
    assert_memory_equal(o, px + 6, 6);
    free(o);
    free(t.b);
}

static void test_16bit_highbit_signed(void **state)
{
    (void)state;
    /* 12 bits stored at high bit 11, signed: 0x0FFF -> -1, 0x0800 -> -2048, 0xF7FF masks to
     * 0x07FF -> 2047 (garbage above the stored bits is ignored). */
    uint16_t px[4] = {0x0FFF, 0x0800, 0xF7FF, 0x0005};
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 2, 2, 1, 16, 12, 11, 1, 0, 1, "MONOCHROME2", px, 8};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    int16_t *o = (int16_t *)(void *)decode(&t, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.pixel_type, AGORA_PIXEL_I16);
    assert_int_equal(o[0], -1);
    assert_int_equal(o[1], -2048);
    assert_int_equal(o[2], 2047);
    assert_int_equal(o[3], 5);
    free(o);
    /* RAW keeps the stored words. */
    uint8_t *r = decode(&t, 0, AGORA__DICOM_DECODE_RAW, &fmt, 0);
    assert_memory_equal(r, px, 8);
    free(r);
    free(t.b);
    /* High bit 15 with 12 bits stored: values sit in the top bits and are shifted down. */
    uint16_t hi[2] = {0xFFF0, 0x0010};
    image im2 = {AGORA__DICOM_TS_EXPLICIT_LE, 1, 2, 1, 16, 12, 15, 0, 0, 1, "MONOCHROME1", hi, 4};
    tbuf t2 = build(&im2);
    add_pixels(&t2, &im2);
    uint16_t *o2 = (uint16_t *)(void *)decode(&t2, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.photometric, AGORA_PHOTOMETRIC_MONOCHROME1);
    assert_int_equal(o2[0], 0xFFF);
    assert_int_equal(o2[1], 1);
    free(o2);
    free(t2.b);
}

static void test_big_endian(void **state)
{
    (void)state;
    uint8_t be[4] = {0x12, 0x34, 0xAB, 0xCD}; /* 0x1234, 0xABCD stored big-endian */
    image im = {AGORA__DICOM_TS_EXPLICIT_BE, 1, 2, 1, 16, 16, 15, 0, 0, 1, "MONOCHROME2", be, 4};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    uint8_t *r = decode(&t, 0, AGORA__DICOM_DECODE_RAW, &fmt, 0);
    static const uint8_t le[4] = {0x34, 0x12, 0xCD, 0xAB};
    assert_memory_equal(r, le, 4);
    free(r);
    free(t.b);
    /* 32-bit big-endian samples swap as 32-bit words. */
    uint8_t be32[4] = {0x00, 0x13, 0x0E, 0xE8};
    image im32 = {
        AGORA__DICOM_TS_EXPLICIT_BE, 1, 1, 1, 32, 32, 31, 0, 0, 1, "MONOCHROME2", be32, 4};
    tbuf t32 = build(&im32);
    add_pixels(&t32, &im32);
    uint32_t *o = (uint32_t *)(void *)decode(&t32, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.pixel_type, AGORA_PIXEL_U32);
    assert_int_equal(o[0], 0x00130EE8u);
    free(o);
    free(t32.b);
}

static void test_rgb_planar(void **state)
{
    (void)state;
    /* 2 pixels, planar: R0 R1 G0 G1 B0 B1. */
    uint8_t px[6] = {10, 11, 20, 21, 30, 31};
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 1, 2, 3, 8, 8, 7, 0, 1, 1, "RGB", px, 6};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    uint8_t *o = decode(&t, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    static const uint8_t want[6] = {10, 20, 30, 11, 21, 31};
    assert_int_equal(fmt.samples_per_pixel, 3);
    assert_memory_equal(o, want, 6);
    free(o);
    uint8_t *r = decode(&t, 0, AGORA__DICOM_DECODE_RAW, &fmt, 0);
    assert_memory_equal(r, px, 6); /* RAW keeps the planar layout */
    free(r);
    free(t.b);
}

static void test_ybr(void **state)
{
    (void)state;
    /* Gray (Y, 128, 128) stays gray; pure red (76, 85, 255) in YBR_FULL is close to 255,0,0. */
    uint8_t px[6] = {100, 128, 128, 76, 85, 255};
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 1, 2, 3, 8, 8, 7, 0, 0, 1, "YBR_FULL", px, 6};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    uint8_t *o = decode(&t, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.photometric, AGORA_PHOTOMETRIC_RGB);
    assert_int_equal(o[0], 100);
    assert_int_equal(o[1], 100);
    assert_int_equal(o[2], 100);
    assert_true(o[3] >= 253 && o[4] <= 2 && o[5] <= 2);
    free(o);
    free(t.b);
    /* YBR_FULL_422: Y0 Y1 Cb Cr for a pixel pair; 2 x 2 image = 8 bytes. */
    uint8_t p422[8] = {50, 60, 128, 128, 70, 80, 128, 128};
    image im2 = {AGORA__DICOM_TS_EXPLICIT_LE, 2, 2, 3, 8, 8, 7, 0, 0, 1, "YBR_FULL_422", p422, 8};
    tbuf t2 = build(&im2);
    add_pixels(&t2, &im2);
    o = decode(&t2, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.frame_bytes, 12);
    static const uint8_t want[12] = {50, 50, 50, 60, 60, 60, 70, 70, 70, 80, 80, 80};
    assert_memory_equal(o, want, 12);
    free(o);
    uint8_t *r = decode(&t2, 0, AGORA__DICOM_DECODE_RAW, &fmt, 0);
    assert_int_equal(fmt.frame_bytes, 8);
    assert_memory_equal(r, p422, 8);
    free(r);
    free(t2.b);
}

static void add_lut(tbuf *t, int ch, uint16_t entries, uint16_t first, uint16_t bits,
                    const uint16_t *data, uint32_t n)
{
    tb_hdr(t, 0x0028, (uint16_t)(0x1101 + ch), "US", 6);
    tb_u16(t, entries);
    tb_u16(t, first);
    tb_u16(t, bits);
    tb_hdr(t, 0x0028, (uint16_t)(0x1201 + ch), "OW", n * 2);
    for (uint32_t i = 0; i < n; i++)
        tb_u16(t, data[i]);
}

static void test_palette(void **state)
{
    (void)state;
    uint8_t px[4] = {0, 1, 2, 9}; /* 9 is past the table: clamps to the last entry */
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 2, 2, 1, 8, 8, 7, 0, 0, 1, "PALETTE COLOR", px, 4};
    uint16_t r[3] = {0x0000, 0x8000, 0xFFFF}, g[3] = {0x1111, 0x2222, 0x3333},
             b[3] = {0xFFFF, 0x0000, 0x1234};
    tbuf t = build(&im);
    add_lut(&t, 0, 3, 0, 16, r, 3);
    add_lut(&t, 1, 3, 0, 16, g, 3);
    add_lut(&t, 2, 3, 0, 16, b, 3);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    uint16_t *o = (uint16_t *)(void *)decode(&t, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    assert_int_equal(fmt.pixel_type, AGORA_PIXEL_U16);
    assert_int_equal(fmt.samples_per_pixel, 3);
    assert_int_equal(o[0], 0x0000);
    assert_int_equal(o[1], 0x1111);
    assert_int_equal(o[2], 0xFFFF);
    assert_int_equal(o[3], 0x8000);
    assert_int_equal(o[9], 0xFFFF);
    assert_int_equal(o[11], 0x1234);
    free(o);
    free(t.b);
    /* A segmented palette whose segment is cut short is corrupt (segmented LUTs themselves:
     * test_palette_segmented.c). */
    tbuf s = build(&im);
    add_lut(&s, 0, 3, 0, 16, r, 3);
    add_lut(&s, 1, 3, 0, 16, g, 3);
    add_lut(&s, 2, 3, 0, 16, b, 3);
    tb_hdr(&s, 0x0028, 0x1221, "OW", 2);
    tb_u16(&s, 0);
    add_pixels(&s, &im);
    assert_null(decode(&s, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, AGORA_EINPUT));
    free(s.b);
}

static void test_one_bit(void **state)
{
    (void)state;
    /* 3 x 3 = 9 bits per frame, 2 frames: frame 1 starts at bit 9 (not byte aligned). */
    uint8_t px[3] = {0x05, 0x03, 0x00}; /* bits 0,2,8,9 set */
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 3, 3, 1, 1, 1, 0, 0, 0, 2, "MONOCHROME2", px, 3};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    agora__dicom_pixel_format fmt;
    uint8_t *o = decode(&t, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    static const uint8_t f0[9] = {1, 0, 1, 0, 0, 0, 0, 0, 1};
    assert_int_equal(fmt.pixel_type, AGORA_PIXEL_U8);
    assert_memory_equal(o, f0, 9);
    free(o);
    o = decode(&t, 1, AGORA__DICOM_DECODE_NORMALIZED, &fmt, 0);
    static const uint8_t f1[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(o, f1, 9);
    free(o);
    uint8_t *r = decode(&t, 1, AGORA__DICOM_DECODE_RAW, &fmt, 0);
    assert_int_equal(fmt.frame_bytes, 2);
    assert_int_equal(r[0], 0x01);
    assert_int_equal(r[1], 0x00);
    free(r);
    free(t.b);
}

static void test_refusals(void **state)
{
    (void)state;
    agora__dicom_pixel_format fmt;
    uint8_t px[8] = {0};
    /* Pixel Data shorter than the frames announced. */
    image im = {AGORA__DICOM_TS_EXPLICIT_LE, 2, 2, 1, 16, 16, 15, 0, 0, 3, "MONOCHROME2", px, 8};
    tbuf t = build(&im);
    add_pixels(&t, &im);
    assert_null(decode(&t, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, AGORA_EINPUT));
    free(t.b);
    /* Unsupported bit depth. */
    image im2 = {AGORA__DICOM_TS_EXPLICIT_LE, 1, 1, 1, 12, 12, 11, 0, 0, 1, "MONOCHROME2", px, 2};
    tbuf t2 = build(&im2);
    add_pixels(&t2, &im2);
    assert_null(decode(&t2, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, AGORA_EUNSUPPORTED));
    free(t2.b);
    /* A photometric interpretation that cannot be normalized (but RAW works). */
    image im3 = {AGORA__DICOM_TS_EXPLICIT_LE, 1, 2, 3, 8, 8, 7, 0, 0, 1, "HSV", px, 6};
    tbuf t3 = build(&im3);
    add_pixels(&t3, &im3);
    assert_null(decode(&t3, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, AGORA_EUNSUPPORTED));
    uint8_t *r = decode(&t3, 0, AGORA__DICOM_DECODE_RAW, &fmt, 0);
    free(r);
    free(t3.b);
    /* Missing Rows. */
    tbuf t4 = {.explicit = 1};
    tb_meta(&t4, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_us(&t4, 0x0028, 0x0011, 2);
    tb_us(&t4, 0x0028, 0x0100, 8);
    tb_hdr(&t4, 0x7FE0, 0x0010, "OB", 4);
    tb_put(&t4, px, 4);
    assert_null(decode(&t4, 0, AGORA__DICOM_DECODE_NORMALIZED, &fmt, AGORA_EINPUT));
    free(t4.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mono8_and_frames),
        cmocka_unit_test(test_16bit_highbit_signed),
        cmocka_unit_test(test_big_endian),
        cmocka_unit_test(test_rgb_planar),
        cmocka_unit_test(test_ybr),
        cmocka_unit_test(test_palette),
        cmocka_unit_test(test_one_bit),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
