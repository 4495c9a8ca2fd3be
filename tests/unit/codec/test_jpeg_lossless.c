/* JPEG Lossless (Process 14) decoder: streams from the test-only encoder cover every predictor,
 * point transforms, restart intervals (row-aligned and mid-row), interleaved and non-interleaved
 * scans, 2..16-bit precision, long codes and the SSSS=16 difference. */
#include "ljpeg_enc.h"
#include "test_util.h"

static uint32_t rng_state = 1;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* Smooth image with noise, plus a few extreme jumps (0 <-> max) for long codes / SSSS=16. */
static uint16_t *make_samples(unsigned w, unsigned h, unsigned nc, unsigned prec, unsigned pt)
{
    uint16_t *s = malloc((size_t)w * h * nc * sizeof *s);
    assert_non_null(s);
    uint32_t max = (1u << prec) - 1;
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++)
            for (unsigned c = 0; c < nc; c++) {
                uint32_t v = (uint32_t)(((uint64_t)(x * 37 + y * 11 + c * 101) << prec) / 900);
                v = (v + rnd() % 7) & max;
                if ((x * 7 + y * 3 + c) % 29 == 0)
                    v = (x + y) & 1 ? max : 0;
                s[((size_t)y * w + x) * nc + c] = (uint16_t)((v >> pt) << pt);
            }
    return s;
}

static void roundtrip(const ljpeg_opts *o, const char *uid)
{
    uint16_t *s = make_samples(o->width, o->height, o->ncomp, o->precision, o->pt);
    uint8_t *stream;
    size_t n = ljpeg_encode(o, s, &stream);
    assert_true(n > 0);
    unsigned ba = o->precision > 8 ? 16 : 8;
    agora__codec_params p = mkparams(o->height, o->width, o->ncomp, ba, o->precision, 0,
                                     o->ncomp == 3 ? "RGB" : "MONOCHROME2");
    size_t len = frame_len(&p);
    uint8_t *out = malloc(len);
    assert_non_null(out);
    char pm[17];
    agora__error err;
    int rc = decode1(uid, stream, n, &p, out, pm, &err);
    if (rc != 0)
        fail_msg("psv %u pt %u prec %u ri %u: %s", o->psv, o->pt, o->precision, o->restart_interval,
                 err.msg);
    size_t count = (size_t)o->width * o->height * o->ncomp;
    for (size_t i = 0; i < count; i++) {
        uint32_t v = ba == 8 ? out[i] : (uint32_t)out[2 * i] | (uint32_t)out[2 * i + 1] << 8;
        if (v != s[i])
            fail_msg("psv %u pt %u prec %u ri %u: sample %zu is %u, want %u", o->psv, o->pt,
                     o->precision, o->restart_interval, i, v, s[i]);
    }
    free(out);
    free(stream);
    free(s);
}

static void test_all_predictors_and_precisions(void **state)
{
    (void)state;
    static const unsigned precs[] = {2, 7, 8, 12, 15, 16};
    for (unsigned psv = 1; psv <= 7; psv++)
        for (unsigned k = 0; k < sizeof precs / sizeof precs[0]; k++) {
            ljpeg_opts o = {33, 21, 1, precs[k], psv, 0, 0, 1};
            roundtrip(&o, UID_LJPEG);
        }
}

static void test_point_transform(void **state)
{
    (void)state;
    for (unsigned pt = 1; pt <= 4; pt++) {
        ljpeg_opts o = {17, 9, 1, 12, 1 + pt, pt, 0, 1};
        roundtrip(&o, UID_LJPEG);
    }
}

static void test_restart_intervals(void **state)
{
    (void)state;
    /* Row-aligned (40 = 2 rows), single pixel, and mid-row intervals. */
    static const unsigned ris[] = {40, 1, 7, 33};
    for (unsigned k = 0; k < 4; k++)
        for (unsigned psv = 1; psv <= 7; psv += 3) {
            ljpeg_opts o = {20, 15, 1, 16, psv, 0, ris[k], 1};
            roundtrip(&o, UID_LJPEG);
        }
}

static void test_color_interleaved_and_not(void **state)
{
    (void)state;
    ljpeg_opts a = {19, 13, 3, 8, 1, 0, 0, 1};
    roundtrip(&a, UID_LJPEG_SV1);
    ljpeg_opts b = {19, 13, 3, 8, 6, 0, 19, 0};
    roundtrip(&b, UID_LJPEG);
    ljpeg_opts c = {8, 8, 4, 16, 4, 0, 5, 1};
    uint16_t *s = make_samples(8, 8, 4, 16, 0);
    uint8_t *stream;
    size_t n = ljpeg_encode(&c, s, &stream);
    agora__codec_params p = mkparams(8, 8, 4, 16, 16, 0, "ARGB");
    uint8_t out[8 * 8 * 4 * 2];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_LJPEG, stream, n, &p, out, pm, &err), 0);
    assert_string_equal(pm, "ARGB");
    assert_int_equal(out[2], (uint8_t)s[1]);
    free(stream);
    free(s);
}

static void test_ssss16(void **state)
{
    (void)state;
    /* 0, 32768, 0, 65535 ...: differences of exactly +-32768 need category 16. */
    uint16_t s[8] = {0, 32768, 0, 32768, 65535, 32767, 0, 65535};
    ljpeg_opts o = {8, 1, 1, 16, 1, 0, 0, 1};
    uint8_t *stream;
    size_t n = ljpeg_encode(&o, s, &stream);
    agora__codec_params p = mkparams(1, 8, 1, 16, 16, 0, "MONOCHROME2");
    uint8_t out[16];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_LJPEG_SV1, stream, n, &p, out, pm, &err), 0);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(out[2 * i] | out[2 * i + 1] << 8, s[i]);
    free(stream);
}

static void test_signed_output(void **state)
{
    (void)state;
    /* 12-bit signed -5 (0xFFB) comes back sign-extended to 16 bits. */
    uint16_t s[4] = {0xFFB, 5, 0x800, 0x7FF};
    ljpeg_opts o = {4, 1, 1, 12, 1, 0, 0, 1};
    uint8_t *stream;
    size_t n = ljpeg_encode(&o, s, &stream);
    agora__codec_params p = mkparams(1, 4, 1, 16, 12, 1, "MONOCHROME2");
    uint8_t out[8];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_LJPEG, stream, n, &p, out, pm, &err), 0);
    assert_int_equal((int16_t)(out[0] | out[1] << 8), -5);
    assert_int_equal((int16_t)(out[4] | out[5] << 8), -2048);
    assert_int_equal((int16_t)(out[6] | out[7] << 8), 2047);
    free(stream);
}

static void test_mismatch_and_garbage(void **state)
{
    (void)state;
    uint16_t *s = make_samples(16, 16, 1, 12, 0);
    ljpeg_opts o = {16, 16, 1, 12, 1, 0, 5, 1};
    uint8_t *stream;
    size_t n = ljpeg_encode(&o, s, &stream);
    uint8_t out[16 * 16 * 2];
    char pm[17];
    agora__error err;
    agora__codec_params wrong = mkparams(15, 16, 1, 16, 12, 0, "MONOCHROME2");
    uint8_t big[17 * 16 * 2];
    assert_int_equal(decode1(UID_LJPEG, stream, n, &wrong, big, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "16x16"));
    agora__codec_params narrow = mkparams(16, 16, 1, 8, 8, 0, "MONOCHROME2");
    assert_int_equal(decode1(UID_LJPEG, stream, n, &narrow, out, pm, &err), AGORA_EINPUT);
    agora__codec_params p = mkparams(16, 16, 1, 16, 12, 0, "MONOCHROME2");
    const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 8, 0, 16, 0, 16, 1, 1, 0x11, 0};
    assert_int_equal(decode1(UID_LJPEG, junk, sizeof junk, &p, out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "SOF0"));
    assert_int_equal(decode1(UID_LJPEG, junk + 2, sizeof junk - 2, &p, out, pm, &err),
                     AGORA_EINPUT);
    /* Restart marker missing: replace every RSTn by a byte that cannot be a marker. */
    uint8_t *copy = malloc(n);
    memcpy(copy, stream, n);
    for (size_t i = 0; i + 1 < n; i++)
        if (copy[i] == 0xFF && copy[i + 1] >= 0xD0 && copy[i + 1] <= 0xD7)
            copy[i + 1] = 0xC8;
    assert_int_equal(decode1(UID_LJPEG, copy, n, &p, out, pm, &err), AGORA_EINPUT);
    free(copy);
    assert_int_equal(decode1(UID_LJPEG, stream, n, &p, out, pm, &err), 0);
    hostile_sweep(UID_LJPEG, stream, n, &p);
    free(stream);
    free(s);
}

/* Patch one byte of a valid 1-component stream (no DRI) and expect a specific refusal. The
 * encoder's layout: SOI @0, DHT @2 (Tc/Th @6, counts @7, symbols @23), SOF3 @40 (P @44, Y @45,
 * X @47, Nf @49, C1 @50, HV @51), SOS @53 (Ns @57, Cs @58, Td/Ta @59, Ss @60, Se @61, Ah/Al @62).
 */
static void expect_patched2(const uint8_t *stream, size_t n, size_t at, uint8_t v, size_t at2,
                            uint8_t v2, int want, const char *needle)
{
    uint8_t *c = malloc(n);
    assert_non_null(c);
    memcpy(c, stream, n);
    c[at] = v;
    c[at2] = v2;
    agora__codec_params p = mkparams(8, 8, 1, 16, 12, 0, "MONOCHROME2");
    uint8_t out[8 * 8 * 2];
    char pm[17];
    agora__error err;
    int rc = decode1(UID_LJPEG, c, n, &p, out, pm, &err);
    if (rc != want || strstr(err.msg, needle) == NULL)
        fail_msg("patch @%zu=%u: rc %d (want %d), message '%s' (want '%s')", at, v, rc, want,
                 err.msg, needle);
    free(c);
}

static void expect_patched(const uint8_t *stream, size_t n, size_t at, uint8_t v, int want,
                           const char *needle)
{
    expect_patched2(stream, n, at, v, at, v, want, needle);
}

static void test_header_refusals(void **state)
{
    (void)state;
    uint16_t *s = make_samples(8, 8, 1, 12, 0);
    ljpeg_opts o = {8, 8, 1, 12, 1, 0, 0, 1};
    uint8_t *st;
    size_t n = ljpeg_encode(&o, s, &st);
    assert_int_equal(st[40], 0xFF);
    assert_int_equal(st[41], 0xC3);
    assert_int_equal(st[53], 0xFF);
    assert_int_equal(st[54], 0xDA);
    expect_patched(st, n, 44, 1, AGORA_EINPUT, "precision");
    expect_patched(st, n, 44, 17, AGORA_EINPUT, "precision");
    /* Height 0 (defined by a DNL marker) without the DNL marker. */
    expect_patched(st, n, 46, 0, AGORA_EINPUT, "(DNL)");
    expect_patched(st, n, 51, 0x21, AGORA_EUNSUPPORTED, "subsampled");
    expect_patched(st, n, 60, 0, AGORA_EINPUT, "predictor");
    expect_patched(st, n, 60, 8, AGORA_EINPUT, "predictor");
    expect_patched(st, n, 62, 12, AGORA_EINPUT, "point transform");
    expect_patched(st, n, 59, 0x10, AGORA_EINPUT, "undefined Huffman table");
    expect_patched(st, n, 58, 9, AGORA_EINPUT, "component not in the frame");
    expect_patched(st, n, 57, 2, AGORA_EINPUT, "scan header");
    /* Two 1-bit codes fill the code space; the 2-bit code after them cannot exist. */
    expect_patched2(st, n, 7, 2, 9, 3, AGORA_EINPUT, "more codes");
    expect_patched(st, n, 23, 17, AGORA_EINPUT, "category above 16");
    expect_patched(st, n, 6, 0x10, AGORA_EINPUT, "class");
    expect_patched(st, n, 41, 0xC1, AGORA_EINPUT, "SOF1");
    free(st);
    free(s);
}

/* Height 0 in SOF3 and a DNL marker after the first scan (T.81 B.2.5), as some encoders write:
 * decoded like the same stream with the height in SOF3; a DNL that disagrees with Rows, or one
 * that comes where none is expected, is an error. */
static void test_dnl(void **state)
{
    (void)state;
    const unsigned w = 19, h = 23;
    for (int interleaved = 0; interleaved <= 1; interleaved++) {
        unsigned nc = interleaved ? 3 : 1;
        uint16_t *s = make_samples(w, h, nc, 12, 0);
        ljpeg_opts o = {w, h, nc, 12, 4, 0, 7, interleaved};
        uint8_t *st;
        size_t n = ljpeg_encode(&o, s, &st);
        assert_true(n > 4 && st[n - 2] == 0xFF && st[n - 1] == 0xD9);
        size_t sof = 2;
        while (!(st[sof] == 0xFF && st[sof + 1] == 0xC3))
            sof++;
        /* One scan only (interleaved, or a single component): DNL goes before EOI. */
        uint8_t *c = malloc(n + 6);
        assert_non_null(c);
        memcpy(c, st, n - 2);
        c[sof + 5] = 0;
        c[sof + 6] = 0;
        const uint8_t dnl[] = {0xFF, 0xDC, 0, 4, 0, (uint8_t)h, 0xFF, 0xD9};
        memcpy(c + n - 2, dnl, sizeof dnl);
        agora__codec_params p = mkparams(h, w, nc, 16, 12, 0, nc == 3 ? "RGB" : "MONOCHROME2");
        uint8_t *out = malloc(frame_len(&p));
        assert_non_null(out);
        char pm[17];
        agora__error err;
        int rc = decode1(UID_LJPEG, c, n + 6, &p, out, pm, &err);
        if (rc != 0)
            fail_msg("DNL stream: %s", err.msg);
        for (size_t i = 0; i < (size_t)w * h * nc; i++)
            assert_int_equal((uint32_t)out[2 * i] | (uint32_t)out[2 * i + 1] << 8, s[i]);
        /* DNL disagreeing with Rows. */
        c[n + 3] = (uint8_t)(h - 1);
        assert_int_equal(decode1(UID_LJPEG, c, n + 6, &p, out, pm, &err), AGORA_EINPUT);
        assert_non_null(strstr(err.msg, "DNL marker says"));
        /* DNL in a frame whose height is given. */
        c[n + 3] = (uint8_t)h;
        c[sof + 6] = (uint8_t)h;
        assert_int_equal(decode1(UID_LJPEG, c, n + 6, &p, out, pm, &err), AGORA_EINPUT);
        assert_non_null(strstr(err.msg, "unexpected number-of-lines"));
        free(out);
        free(c);
        free(st);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_predictors_and_precisions),
        cmocka_unit_test(test_point_transform),
        cmocka_unit_test(test_restart_intervals),
        cmocka_unit_test(test_color_interleaved_and_not),
        cmocka_unit_test(test_ssss16),
        cmocka_unit_test(test_signed_output),
        cmocka_unit_test(test_mismatch_and_garbage),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_dnl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
