/* JPEG-LS decoder: streams made with CharLS's encoder in memory. */
#include <charls/charls.h>

#include "test_util.h"

/* Encode src (planar for ILV none, interleaved otherwise; 1 byte/sample up to 8 bits, else 2). */
static size_t encode(const void *src, size_t src_len, unsigned w, unsigned h, int bits, int nc,
                     charls_interleave_mode ilv, int near, uint8_t **out)
{
    charls_jpegls_encoder *e = charls_jpegls_encoder_create();
    assert_non_null(e);
    charls_frame_info fi = {w, h, bits, nc};
    size_t cap = 0, written = 0;
    assert_int_equal(charls_jpegls_encoder_set_frame_info(e, &fi), 0);
    assert_int_equal(charls_jpegls_encoder_set_near_lossless(e, near), 0);
    if (nc > 1)
        assert_int_equal(charls_jpegls_encoder_set_interleave_mode(e, ilv), 0);
    assert_int_equal(charls_jpegls_encoder_get_estimated_destination_size(e, &cap), 0);
    *out = malloc(cap);
    assert_non_null(*out);
    assert_int_equal(charls_jpegls_encoder_set_destination_buffer(e, *out, cap), 0);
    assert_int_equal(charls_jpegls_encoder_encode_from_buffer(e, src, src_len, 0), 0);
    assert_int_equal(charls_jpegls_encoder_get_bytes_written(e, &written), 0);
    charls_jpegls_encoder_destroy(e);
    return written;
}

static void test_lossless_16bit(void **state)
{
    (void)state;
    uint16_t px[24 * 20];
    for (unsigned i = 0; i < 24 * 20; i++)
        px[i] = (uint16_t)((i * 37 + (i / 24) * 101) & 0xFFF);
    uint8_t *s;
    size_t n = encode(px, sizeof px, 24, 20, 12, 1, CHARLS_INTERLEAVE_MODE_NONE, 0, &s);
    agora__codec_params p = mkparams(20, 24, 1, 16, 12, 0, "MONOCHROME2");
    uint8_t out[sizeof px];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_JLS, s, n, &p, out, pm, &err), 0);
    assert_memory_equal(out, px, sizeof px);
    hostile_sweep(UID_JLS, s, n, &p);
    free(s);
}

static void test_color_planar_to_interleaved(void **state)
{
    (void)state;
    enum { W = 9, H = 7, N = W * H };
    uint8_t planar[3 * N], inter[3 * N];
    for (unsigned c = 0; c < 3; c++)
        for (unsigned i = 0; i < N; i++) {
            planar[c * N + i] = (uint8_t)(i * 5 + c * 70);
            inter[i * 3 + c] = planar[c * N + i];
        }
    uint8_t out[3 * N];
    char pm[17];
    agora__error err;
    agora__codec_params p = mkparams(H, W, 3, 8, 8, 0, "RGB");
    uint8_t *s;
    size_t n = encode(planar, sizeof planar, W, H, 8, 3, CHARLS_INTERLEAVE_MODE_NONE, 0, &s);
    assert_int_equal(decode1(UID_JLS, s, n, &p, out, pm, &err), 0);
    assert_memory_equal(out, inter, sizeof out);
    free(s);
    n = encode(inter, sizeof inter, W, H, 8, 3, CHARLS_INTERLEAVE_MODE_SAMPLE, 0, &s);
    assert_int_equal(decode1(UID_JLS, s, n, &p, out, pm, &err), 0);
    assert_memory_equal(out, inter, sizeof out);
    assert_string_equal(pm, "RGB");
    free(s);
}

static void test_near_lossless(void **state)
{
    (void)state;
    uint8_t px[32 * 16];
    for (unsigned i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7 + (i % 5) * 13);
    uint8_t *s;
    size_t n = encode(px, sizeof px, 32, 16, 8, 1, CHARLS_INTERLEAVE_MODE_NONE, 3, &s);
    agora__codec_params p = mkparams(16, 32, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[sizeof px];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_JLS_NEAR, s, n, &p, out, pm, &err), 0);
    for (unsigned i = 0; i < sizeof px; i++)
        assert_true(abs((int)out[i] - (int)px[i]) <= 3);
    /* Attributes that disagree with the stream. */
    agora__codec_params wrong = mkparams(16, 32, 3, 8, 8, 0, "RGB");
    uint8_t big[sizeof px * 3];
    assert_int_equal(decode1(UID_JLS_NEAR, s, n, &wrong, big, pm, &err), AGORA_EINPUT);
    free(s);
    const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xF7, 0, 3, 1, 2, 3, 4};
    assert_int_equal(decode1(UID_JLS, junk, sizeof junk, &p, out, pm, &err), AGORA_EINPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lossless_16bit),
        cmocka_unit_test(test_color_planar_to_interleaved),
        cmocka_unit_test(test_near_lossless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
