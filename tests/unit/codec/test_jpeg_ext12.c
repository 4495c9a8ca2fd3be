/* 12-bit JPEG (Process 4) decoder: the islow IDCT against its closed forms and a float IDCT,
 * the range limiting, Huffman decoding (short, long, stuffed, invalid, truncated), and whole
 * streams built here (DC-only blocks, restart intervals, 16-bit quantisation tables). The
 * comparison with dcmdjpeg on real files is tests/integration/codec/compare_corpus.py. */
#include <math.h>
#include <stdio.h>

#include "jpeg_ext12.h"
#include "test_util.h"

static uint16_t range_tab[AGORA__JPEG12_RANGE_MASK + 1];

static void test_range_table(void **state)
{
    (void)state;
    agora__jpeg12_range_table(range_tab);
    assert_int_equal(range_tab[0], 2048);         /* 0 + level shift */
    assert_int_equal(range_tab[2047], 4095);      /* largest in range */
    assert_int_equal(range_tab[2048], 4095);      /* overshoot clamps high */
    assert_int_equal(range_tab[8191], 4095);      /* the 14-bit value read as signed: +8191 */
    assert_int_equal(range_tab[8192], 0);         /* -8192: clamps low */
    assert_int_equal(range_tab[16383], 2047);     /* -1 */
    assert_int_equal(range_tab[16384 - 2048], 0); /* -2048 */
    assert_int_equal(range_tab[16384 - 2049], 0); /* undershoot clamps low */
}

static void test_idct_dc_only(void **state)
{
    (void)state;
    agora__jpeg12_range_table(range_tab);
    uint16_t qt[64], out[64];
    for (int i = 0; i < 64; i++)
        qt[i] = 1;
    /* A DC-only block is flat: floor((dc*q + 4) / 8) + 2048, clamped to 0..4095. */
    const int dcs[] = {0, 1, 3, 4, -4, -5, 100, -100, 8191, -8192, 16383, -16384};
    const uint16_t qs[] = {1, 7, 255, 300};
    for (size_t i = 0; i < sizeof dcs / sizeof dcs[0]; i++)
        for (size_t j = 0; j < sizeof qs / sizeof qs[0]; j++) {
            int32_t coef[64] = {0};
            coef[0] = dcs[i];
            qt[0] = qs[j];
            agora__jpeg12_idct_islow(coef, qt, range_tab, out, 8);
            long long v = (long long)floor(((double)dcs[i] * qs[j] + 4) / 8.0) + 2048;
            if (dcs[i] * (long long)qs[j] / 8 > 6000 || dcs[i] * (long long)qs[j] / 8 < -6000)
                continue; /* beyond the clamp region libjpeg wraps: covered by the table test */
            long long want = v < 0 ? 0 : v > 4095 ? 4095 : v;
            for (int k = 0; k < 64; k++)
                assert_int_equal(out[k], want);
        }
}

/* The true 2-D IDCT of T.81 A.3.3, level-shifted and clamped. */
static void float_idct(const int32_t coef[64], const uint16_t qt[64], double out[64])
{
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double s = 0;
            for (int v = 0; v < 8; v++)
                for (int u = 0; u < 8; u++) {
                    double cu = u ? 1 : M_SQRT1_2, cv = v ? 1 : M_SQRT1_2;
                    s += cu * cv * coef[v * 8 + u] * qt[v * 8 + u] *
                         cos((2 * x + 1) * u * M_PI / 16) * cos((2 * y + 1) * v * M_PI / 16);
                }
            double r = s / 4 + 2048;
            out[y * 8 + x] = r < 0 ? 0 : r > 4095 ? 4095 : r;
        }
}

static void test_idct_accuracy(void **state)
{
    (void)state;
    agora__jpeg12_range_table(range_tab);
    uint16_t qt[64], out[64];
    double ref[64];
    srand(12);
    double worst = 0;
    for (int trial = 0; trial < 300; trial++) {
        int32_t coef[64];
        for (int i = 0; i < 64; i++) {
            qt[i] = (uint16_t)(1 + rand() % 40);
            /* Mostly small AC terms, as in real images, with an occasional large one. */
            int mag = i == 0 ? 800 : (rand() % 8 == 0 ? 200 : 12);
            coef[i] = rand() % (2 * mag + 1) - mag;
        }
        agora__jpeg12_idct_islow(coef, qt, range_tab, out, 8);
        float_idct(coef, qt, ref);
        for (int k = 0; k < 64; k++) {
            double d = fabs(out[k] - ref[k]);
            worst = d > worst ? d : worst;
        }
    }
    /* islow is accurate to about one level at 12 bits (IEEE 1180-style bound). */
    assert_true(worst <= 1.5);
    /* A single AC term is not flat, and is antisymmetric around the level shift. */
    int32_t coef[64] = {0};
    for (int i = 0; i < 64; i++)
        qt[i] = 1;
    coef[1] = 400;
    agora__jpeg12_idct_islow(coef, qt, range_tab, out, 8);
    assert_true(out[0] > 2048 + 60 && out[7] < 2048 - 60);
    assert_int_equal(out[0] - 2048, 2048 - out[7]);
}

/* ---- Huffman ---- */

typedef struct bitw {
    uint8_t buf[4096];
    size_t n;
    uint32_t acc;
    int bits;
} bitw;

static void put_bits(bitw *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        w->acc = w->acc << 1 | ((v >> i) & 1);
        if (++w->bits == 8) {
            w->buf[w->n++] = (uint8_t)w->acc;
            if ((uint8_t)w->acc == 0xFF)
                w->buf[w->n++] = 0x00; /* byte stuffing */
            w->acc = 0;
            w->bits = 0;
        }
    }
}

static void flush_bits(bitw *w)
{
    while (w->bits != 0)
        put_bits(w, 1, 1);
}

static void test_huffman(void **state)
{
    (void)state;
    /* Lengths: 2 codes of 2 bits, 1 of 3, then one each of 10, 12, 16 bits (the slow path). */
    uint8_t counts[16] = {0, 2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1};
    const uint8_t syms[] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
    /* Canonical codes: 00, 01, 100, 1010000000, 101000000100, 1010000001010000. */
    const uint32_t code[] = {0x0, 0x1, 0x4, 0x280, 0xA04, 0xA050};
    const int len[] = {2, 2, 3, 10, 12, 16};
    const int order[] = {0, 5, 2, 3, 1, 4, 4, 5, 0, 3};
    bitw w = {0};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        put_bits(&w, code[order[i]], len[order[i]]);
    flush_bits(&w);
    int out[10];
    assert_int_equal(agora__jpeg12_huffman_decode(counts, syms, 6, w.buf, w.n, out, 10), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(out[i], syms[order[i]]);
    /* A stream of 0xFF bytes (stuffed) is all-ones: not a code of this table. */
    const uint8_t ones[] = {0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00};
    assert_int_equal(agora__jpeg12_huffman_decode(counts, syms, 6, ones, sizeof ones, out, 1), 0);
    assert_int_equal(out[0], -1);
    /* Asking for more symbols than the data holds is reported as truncation. */
    assert_int_equal(agora__jpeg12_huffman_decode(counts, syms, 6, w.buf, 2, out, 10), -3);
    /* Oversubscribed lengths (three 1-bit codes) are an invalid table. */
    uint8_t bad[16] = {3};
    assert_int_equal(agora__jpeg12_huffman_decode(bad, syms, 3, w.buf, w.n, out, 1), -1);
}

/* ---- whole streams ---- */

typedef struct jw {
    uint8_t b[8192];
    size_t n;
} jw;

static void put(jw *j, const uint8_t *p, size_t n)
{
    assert_true(j->n + n <= sizeof j->b);
    memcpy(j->b + j->n, p, n);
    j->n += n;
}

static void put8(jw *j, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(j, &c, 1);
}

static void put16(jw *j, unsigned v)
{
    put8(j, v >> 8);
    put8(j, v & 0xFF);
}

static unsigned category(int v)
{
    unsigned a = (unsigned)(v < 0 ? -v : v), s = 0;
    while (a) {
        s++;
        a >>= 1;
    }
    return s;
}

/* A grey 12-bit stream of DC-only blocks: dcs[] per block (raster order), quantiser q (16-bit
 * table when q > 255), restart interval ri (0: none). Optionally drops the RST markers or cuts
 * the entropy data short. DC table: categories 0..15, all 4-bit codes; AC table: EOB = "0". */
static void make_stream(jw *j, unsigned w, unsigned h, const int *dcs, unsigned q, unsigned ri,
                        int drop_rst, int cut)
{
    j->n = 0;
    put16(j, 0xFFD8);
    put16(j, 0xFFDB);
    int wide = q > 255;
    put16(j, 2 + 1 + 64 * (wide ? 2 : 1));
    put8(j, wide ? 0x10 : 0x00);
    for (int k = 0; k < 64; k++)
        wide ? put16(j, q) : put8(j, q);
    put16(j, 0xFFC1);
    put16(j, 11);
    put8(j, 12);
    put16(j, h);
    put16(j, w);
    put8(j, 1);
    put8(j, 1);
    put8(j, 0x11);
    put8(j, 0);
    put16(j, 0xFFC4);
    put16(j, 2 + 17 + 16 + 17 + 1);
    put8(j, 0x00);
    for (int l = 0; l < 16; l++)
        put8(j, l == 3 ? 16 : 0);
    for (int s = 0; s < 16; s++)
        put8(j, (unsigned)s);
    put8(j, 0x10);
    put8(j, 1);
    for (int l = 1; l < 16; l++)
        put8(j, 0);
    put8(j, 0x00);
    if (ri) {
        put16(j, 0xFFDD);
        put16(j, 4);
        put16(j, ri);
    }
    put16(j, 0xFFDA);
    put16(j, 8);
    put8(j, 1);
    put8(j, 1);
    put8(j, 0x00);
    put8(j, 0);
    put8(j, 63);
    put8(j, 0);
    unsigned nb = ((w + 7) / 8) * ((h + 7) / 8);
    bitw bw = {0};
    int pred = 0;
    unsigned rst = 0;
    for (unsigned i = 0; i < nb; i++) {
        if (ri && i > 0 && i % ri == 0) {
            flush_bits(&bw);
            put(j, bw.buf, bw.n);
            bw.n = 0;
            if (!drop_rst)
                put16(j, 0xFFD0 + (rst++ & 7));
            pred = 0;
        }
        int diff = dcs[i] - pred;
        pred = dcs[i];
        unsigned s = category(diff);
        put_bits(&bw, s, 4);
        if (s)
            put_bits(&bw, (uint32_t)(diff > 0 ? diff : diff + (1 << s) - 1), (int)s);
        put_bits(&bw, 0, 1); /* EOB */
    }
    flush_bits(&bw);
    put(j, bw.buf, cut ? bw.n / 2 : bw.n);
    if (!cut)
        put16(j, 0xFFD9);
}

static int decode_stream(const jw *j, unsigned w, unsigned h, uint16_t *out, agora__error *err)
{
    agora__codec_params p = mkparams(h, w, 1, 16, 12, 0, "MONOCHROME2");
    char pm[17];
    return decode1(UID_EXTENDED, j->b, j->n, &p, (uint8_t *)out, pm, err);
}

static void check_blocks(const uint16_t *out, unsigned w, unsigned h, const int *dcs, unsigned q)
{
    unsigned bx = (w + 7) / 8;
    for (unsigned y = 0; y < h; y++)
        for (unsigned x = 0; x < w; x++) {
            int dc = dcs[(y / 8) * bx + x / 8];
            long v = (long)floor(((double)dc * q + 4) / 8.0) + 2048;
            v = v < 0 ? 0 : v > 4095 ? 4095 : v;
            assert_int_equal(out[y * w + x], v);
        }
}

static void test_stream_restart_and_wide_tables(void **state)
{
    (void)state;
    enum { W = 37, H = 20 }; /* 5 x 3 blocks, partial at the right and bottom */
    int dcs[15];
    for (int i = 0; i < 15; i++)
        dcs[i] = (i * 97) % 400 - 200;
    static jw j;
    static uint16_t out[W * H];
    agora__error err;
    const unsigned intervals[] = {0, 1, 2, 4, 7};
    for (size_t k = 0; k < sizeof intervals / sizeof intervals[0]; k++) {
        make_stream(&j, W, H, dcs, 9, intervals[k], 0, 0);
        memset(&err, 0, sizeof err);
        assert_int_equal(decode_stream(&j, W, H, out, &err), 0);
        check_blocks(out, W, H, dcs, 9);
    }
    /* 16-bit quantisation table entries (Pq = 1). */
    make_stream(&j, W, H, dcs, 300, 3, 0, 0);
    assert_int_equal(decode_stream(&j, W, H, out, &err), 0);
    check_blocks(out, W, H, dcs, 300);
    /* Restart markers missing at interval boundaries. */
    make_stream(&j, W, H, dcs, 9, 2, 1, 0);
    assert_int_equal(decode_stream(&j, W, H, out, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "restart"));
    /* Entropy data cut in half: an error, not a padded image. */
    make_stream(&j, W, H, dcs, 9, 0, 0, 1);
    assert_int_equal(decode_stream(&j, W, H, out, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "truncated"));
    /* Every prefix of a valid stream fails cleanly (ASan checks no byte past the end is read). */
    make_stream(&j, W, H, dcs, 9, 2, 0, 0);
    for (size_t n = 0; n + 2 < j.n; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, j.b, n);
        agora__codec_params p = mkparams(H, W, 1, 16, 12, 0, "MONOCHROME2");
        char pm[17];
        assert_int_not_equal(decode1(UID_EXTENDED, copy, n, &p, (uint8_t *)out, pm, &err), 0);
        assert_true(err.msg[0] != '\0');
        free(copy);
    }
}

static void test_stream_rejections(void **state)
{
    (void)state;
    int dcs[4] = {0, 10, 20, 30};
    static jw j;
    static uint16_t out[16 * 16];
    agora__error err;
    make_stream(&j, 16, 16, dcs, 9, 0, 0, 0);
    /* Attributes that disagree with the frame header. */
    agora__codec_params p = mkparams(16, 8, 1, 16, 12, 0, "MONOCHROME2");
    char pm[17];
    assert_int_equal(decode1(UID_EXTENDED, j.b, j.n, &p, (uint8_t *)out, pm, &err), AGORA_EINPUT);
    /* 12-bit data in 8-bit Bits Allocated. */
    uint8_t out8[16 * 16];
    p = mkparams(16, 16, 1, 8, 8, 0, "MONOCHROME2");
    assert_int_equal(decode1(UID_EXTENDED, j.b, j.n, &p, out8, pm, &err), AGORA_EINPUT);
    /* Height 0 in the frame header, defined by a DNL marker after the scan: decoded for Rows;
     * a DNL that disagrees, or none at all, is an error. */
    make_stream(&j, 16, 16, dcs, 9, 0, 0, 0);
    size_t sof = 0;
    while (!(j.b[sof] == 0xFF && j.b[sof + 1] == 0xC1))
        sof++;
    j.b[sof + 5] = 0;
    j.b[sof + 6] = 0;
    p = mkparams(16, 16, 1, 16, 12, 0, "MONOCHROME2");
    assert_int_equal(decode1(UID_EXTENDED, j.b, j.n, &p, (uint8_t *)out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "(DNL)"));
    j.n -= 2; /* drop EOI, add DNL + EOI */
    const uint8_t dnl[] = {0xFF, 0xDC, 0, 4, 0, 16, 0xFF, 0xD9};
    memcpy(j.b + j.n, dnl, sizeof dnl);
    j.n += sizeof dnl;
    assert_int_equal(decode1(UID_EXTENDED, j.b, j.n, &p, (uint8_t *)out, pm, &err), 0);
    check_blocks(out, 16, 16, dcs, 9);
    j.b[j.n - 3] = 15;
    assert_int_equal(decode1(UID_EXTENDED, j.b, j.n, &p, (uint8_t *)out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "DNL marker says 15"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_table),
        cmocka_unit_test(test_idct_dc_only),
        cmocka_unit_test(test_idct_accuracy),
        cmocka_unit_test(test_huffman),
        cmocka_unit_test(test_stream_restart_and_wide_tables),
        cmocka_unit_test(test_stream_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
