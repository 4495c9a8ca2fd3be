/* RLE Lossless decoder: hand-made PackBits streams. */
#include "test_util.h"

/* Build an RLE frame: header + segments given as byte strings. */
static size_t rle_frame(uint8_t *dst, const uint8_t *const *segs, const size_t *lens, unsigned n)
{
    memset(dst, 0, 64);
    dst[0] = (uint8_t)n;
    size_t off = 64;
    for (unsigned i = 0; i < n; i++) {
        dst[4 + 4 * i] = (uint8_t)off;
        dst[5 + 4 * i] = (uint8_t)(off >> 8);
        memcpy(dst + off, segs[i], lens[i]);
        off += lens[i];
    }
    return off;
}

static void test_literal_and_replicate(void **state)
{
    (void)state;
    /* 2x4 8-bit: literal 3 bytes, replicate 0x7 x5, no-op -128 in between. */
    const uint8_t seg[] = {2, 10, 20, 30, 0x80, (uint8_t)-4, 7};
    const uint8_t *segs[] = {seg};
    size_t lens[] = {sizeof seg};
    uint8_t f[128], out[8];
    size_t n = rle_frame(f, segs, lens, 1);
    agora__codec_params p = mkparams(2, 4, 1, 8, 8, 0, "MONOCHROME2");
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), 0);
    const uint8_t want[] = {10, 20, 30, 7, 7, 7, 7, 7};
    assert_memory_equal(out, want, 8);
    assert_string_equal(pm, "MONOCHROME2");
}

static void test_16bit_msb_first(void **state)
{
    (void)state;
    /* Two pixels 0x1234, 0xABCD: segment 0 = high bytes, segment 1 = low bytes. */
    const uint8_t hi[] = {1, 0x12, 0xAB}, lo[] = {1, 0x34, 0xCD};
    const uint8_t *segs[] = {hi, lo};
    size_t lens[] = {3, 3};
    uint8_t f[128], out[4];
    size_t n = rle_frame(f, segs, lens, 2);
    agora__codec_params p = mkparams(1, 2, 1, 16, 16, 0, "MONOCHROME2");
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), 0);
    const uint8_t want[] = {0x34, 0x12, 0xCD, 0xAB};
    assert_memory_equal(out, want, 4);
}

static void test_rgb_planes_to_interleaved(void **state)
{
    (void)state;
    const uint8_t r[] = {(uint8_t)-1, 200}, g[] = {1, 1, 2}, b[] = {(uint8_t)-1, 9};
    const uint8_t *segs[] = {r, g, b};
    size_t lens[] = {2, 3, 2};
    uint8_t f[128], out[6];
    size_t n = rle_frame(f, segs, lens, 3);
    agora__codec_params p = mkparams(1, 2, 3, 8, 8, 0, "RGB");
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), 0);
    const uint8_t want[] = {200, 1, 9, 200, 2, 9};
    assert_memory_equal(out, want, 6);
}

static void test_signed_12bit_sign_extended(void **state)
{
    (void)state;
    /* 12-bit signed -1 stored as 0x0FFF: output must be 0xFFFF (sign-extended). */
    const uint8_t hi[] = {0, 0x0F}, lo[] = {0, 0xFF};
    const uint8_t *segs[] = {hi, lo};
    size_t lens[] = {2, 2};
    uint8_t f[128], out[2];
    size_t n = rle_frame(f, segs, lens, 2);
    agora__codec_params p = mkparams(1, 1, 1, 16, 12, 1, "MONOCHROME2");
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), 0);
    assert_int_equal(out[0], 0xFF);
    assert_int_equal(out[1], 0xFF);
}

static void test_overlong_run_is_clipped(void **state)
{
    (void)state;
    const uint8_t seg[] = {(uint8_t)-127, 5, 0}; /* 128 copies, plane holds 4, plus pad byte */
    const uint8_t *segs[] = {seg};
    size_t lens[] = {3};
    uint8_t f[128], out[4];
    size_t n = rle_frame(f, segs, lens, 1);
    agora__codec_params p = mkparams(2, 2, 1, 8, 8, 0, "MONOCHROME2");
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), 0);
    const uint8_t want[] = {5, 5, 5, 5};
    assert_memory_equal(out, want, 4);
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t f[128], out[8];
    char pm[17];
    agora__error err;
    agora__codec_params p = mkparams(2, 4, 1, 8, 8, 0, "MONOCHROME2");
    /* Short segment: only 3 of 8 bytes. */
    const uint8_t seg[] = {2, 1, 2, 3};
    const uint8_t *segs[] = {seg};
    size_t lens[] = {sizeof seg};
    size_t n = rle_frame(f, segs, lens, 1);
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "segment 1"));
    /* Header shorter than 64 bytes. */
    assert_int_equal(decode1(UID_RLE, f, 40, &p, out, pm, &err), AGORA_EINPUT);
    /* Wrong segment count for the attributes. */
    f[0] = 2;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "segments"));
    /* Offset beyond the data. */
    f[0] = 1;
    f[4] = 0xF0;
    f[5] = 0xFF;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), AGORA_EINPUT);
    /* Offset pointing into the header. */
    f[4] = 10;
    f[5] = 0;
    assert_int_equal(decode1(UID_RLE, f, n, &p, out, pm, &err), AGORA_EINPUT);
}

static void test_hostile(void **state)
{
    (void)state;
    uint8_t src[64 + 300];
    uint8_t seg[300];
    size_t k = 0;
    for (unsigned i = 0; i < 40; i++) { /* alternate literal and replicate runs */
        seg[k++] = 2;
        seg[k++] = (uint8_t)i;
        seg[k++] = (uint8_t)(i * 3);
        seg[k++] = (uint8_t)(i * 7);
        seg[k++] = (uint8_t)-2;
        seg[k++] = (uint8_t)(255 - i);
    }
    const uint8_t *segs[] = {seg};
    size_t lens[] = {k};
    size_t n = rle_frame(src, segs, lens, 1);
    agora__codec_params p = mkparams(12, 20, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[240];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_RLE, src, n, &p, out, pm, &err), 0);
    hostile_sweep(UID_RLE, src, n, &p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_replicate),
        cmocka_unit_test(test_16bit_msb_first),
        cmocka_unit_test(test_rgb_planes_to_interleaved),
        cmocka_unit_test(test_signed_12bit_sign_extended),
        cmocka_unit_test(test_overlong_run_is_clipped),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
