/* JPEG 2000 decoder: lossless streams (raw codestream and JP2) made with OpenJPEG in memory. */
#include <openjpeg.h>

#include "test_util.h"

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap, pos;
} wbuf;

static OPJ_SIZE_T w_write(void *data, OPJ_SIZE_T n, void *user)
{
    wbuf *b = user;
    if (b->pos + n > b->cap) {
        b->cap = (b->pos + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->pos, data, n);
    b->pos += n;
    if (b->pos > b->len)
        b->len = b->pos;
    return n;
}

static OPJ_OFF_T w_skip(OPJ_OFF_T n, void *user)
{
    wbuf *b = user;
    b->pos += (size_t)n;
    return n;
}

static OPJ_BOOL w_seek(OPJ_OFF_T off, void *user)
{
    wbuf *b = user;
    b->pos = (size_t)off;
    return OPJ_TRUE;
}

/* Lossless (5/3) encode of nc components of w x h, prec bits, optional sign and MCT;
 * components after the first subsampled by cdx x cdy (px then holds, for those components,
 * their own ceil(w/cdx) x ceil(h/cdy) planes after the first component's plane). */
static size_t encode_sub(const int32_t *px, unsigned w, unsigned h, unsigned nc, unsigned prec,
                         int sgnd, int mct, OPJ_CODEC_FORMAT fmt, unsigned cdx, unsigned cdy,
                         int planes, uint8_t **out)
{
    opj_image_cmptparm_t cp[3];
    memset(cp, 0, sizeof cp);
    for (unsigned c = 0; c < nc; c++) {
        cp[c].dx = c ? cdx : 1;
        cp[c].dy = c ? cdy : 1;
        cp[c].w = (w + cp[c].dx - 1) / cp[c].dx;
        cp[c].h = (h + cp[c].dy - 1) / cp[c].dy;
        cp[c].prec = prec;
        cp[c].sgnd = (OPJ_UINT32)sgnd;
    }
    opj_image_t *img = opj_image_create(nc, cp, nc == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    assert_non_null(img);
    img->x1 = w;
    img->y1 = h;
    size_t at = 0;
    for (unsigned c = 0; c < nc; c++) {
        size_t n = (size_t)cp[c].w * cp[c].h;
        for (size_t i = 0; i < n; i++)
            img->comps[c].data[i] = planes ? px[at + i] : px[i * nc + c];
        at += n;
    }
    opj_cparameters_t par;
    opj_set_default_encoder_parameters(&par);
    par.tcp_numlayers = 1;
    par.tcp_rates[0] = 0;
    par.cp_disto_alloc = 1;
    par.tcp_mct = (char)mct;
    par.numresolution = 3;
    opj_codec_t *codec = opj_create_compress(fmt);
    assert_true(opj_setup_encoder(codec, &par, img));
    wbuf b = {0};
    opj_stream_t *st = opj_stream_create(4096, OPJ_FALSE);
    opj_stream_set_user_data(st, &b, NULL);
    opj_stream_set_write_function(st, w_write);
    opj_stream_set_skip_function(st, w_skip);
    opj_stream_set_seek_function(st, w_seek);
    assert_true(opj_start_compress(codec, img, st));
    assert_true(opj_encode(codec, st));
    assert_true(opj_end_compress(codec, st));
    opj_stream_destroy(st);
    opj_destroy_codec(codec);
    opj_image_destroy(img);
    *out = b.p;
    return b.len;
}

static size_t encode(const int32_t *px, unsigned w, unsigned h, unsigned nc, unsigned prec,
                     int sgnd, int mct, OPJ_CODEC_FORMAT fmt, uint8_t **out)
{
    return encode_sub(px, w, h, nc, prec, sgnd, mct, fmt, 1, 1, 0, out);
}

static void test_gray_signed_12(void **state)
{
    (void)state;
    enum { W = 20, H = 13 };
    int32_t px[W * H];
    for (int i = 0; i < W * H; i++)
        px[i] = (i * 37) % 4096 - 2048;
    uint8_t *s;
    size_t n = encode(px, W, H, 1, 12, 1, 0, OPJ_CODEC_J2K, &s);
    agora__codec_params p = mkparams(H, W, 1, 16, 12, 1, "MONOCHROME2");
    uint8_t out[W * H * 2];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1(UID_J2K_LL, s, n, &p, out, pm, &err), 0);
    for (int i = 0; i < W * H; i++)
        assert_int_equal((int16_t)(out[2 * i] | out[2 * i + 1] << 8), px[i]);
    hostile_sweep(UID_J2K_LL, s, n, &p);
    /* 1000x1000 image in 1x1 tiles: refused before OpenJPEG allocates per-tile state. */
    uint8_t *t = malloc(n);
    memcpy(t, s, n);
    assert_true(t[2] == 0xFF && t[3] == 0x51);
    memcpy(t + 4 + 4, "\0\0\x03\xe8\0\0\x03\xe8", 8);
    memcpy(t + 4 + 20, "\0\0\0\1\0\0\0\1", 8);
    assert_int_equal(decode1(UID_J2K_LL, t, n, &p, out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "tiles"));
    free(t);
    free(s);
}

static void test_rgb_mct_and_jp2(void **state)
{
    (void)state;
    enum { W = 16, H = 12 };
    int32_t px[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        px[i] = (i * 29 + (i % 3) * 50) % 256;
    uint8_t out[W * H * 3];
    char pm[17];
    agora__error err;
    uint8_t *s;
    /* YBR_RCT: OpenJPEG undoes the reversible transform, so the output is RGB. */
    size_t n = encode(px, W, H, 3, 8, 0, 1, OPJ_CODEC_J2K, &s);
    agora__codec_params p = mkparams(H, W, 3, 8, 8, 0, "YBR_RCT");
    assert_int_equal(decode1(UID_J2K_LL, s, n, &p, out, pm, &err), 0);
    assert_string_equal(pm, "RGB");
    for (int i = 0; i < W * H * 3; i++)
        assert_int_equal(out[i], px[i]);
    free(s);
    /* JP2-wrapped, no MCT, photometric RGB stays RGB. */
    n = encode(px, W, H, 3, 8, 0, 0, OPJ_CODEC_JP2, &s);
    agora__codec_params q = mkparams(H, W, 3, 8, 8, 0, "RGB");
    assert_int_equal(decode1(UID_J2K, s, n, &q, out, pm, &err), 0);
    assert_string_equal(pm, "RGB");
    for (int i = 0; i < W * H * 3; i++)
        assert_int_equal(out[i], px[i]);
    /* JP2 without its codestream box is refused before OpenJPEG runs. */
    uint8_t *nobox = malloc(n);
    memcpy(nobox, s, n);
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(nobox + i, "jp2c", 4) == 0) {
            nobox[i + 3] = 'x';
            break;
        }
    assert_int_equal(decode1(UID_J2K, nobox, n, &q, out, pm, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "jp2c"));
    free(nobox);
    agora__codec_params wrong = mkparams(H, W + 1, 3, 8, 8, 0, "RGB");
    uint8_t big[H * (W + 1) * 3];
    assert_int_equal(decode1(UID_J2K, s, n, &wrong, big, pm, &err), AGORA_EINPUT);
    free(s);
    const uint8_t junk[] = {0xFF, 0x4F, 0xFF, 0x51, 0, 5, 1, 2, 3};
    assert_int_equal(decode1(UID_J2K, junk, sizeof junk, &q, out, pm, &err), AGORA_EINPUT);
    const uint8_t notj2k[] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(decode1(UID_J2K, notj2k, sizeof notj2k, &q, out, pm, &err), AGORA_EINPUT);
}

/* Chroma subsampled 2x1 and 2x2 (YBR_FULL_422 in DICOM terms): upsampled by replication,
 * still YBR; under photometrics where upsampling would be wrong it is refused. */
static void test_subsampled_chroma(void **state)
{
    (void)state;
    enum { W = 13, H = 7 };
    static const unsigned subs[][2] = {{2, 1}, {2, 2}, {1, 2}};
    for (size_t k = 0; k < 3; k++) {
        unsigned dx = subs[k][0], dy = subs[k][1];
        unsigned cw = (W + dx - 1) / dx, ch = (H + dy - 1) / dy;
        int32_t planes[W * H * 3];
        size_t n0 = (size_t)W * H, nc = (size_t)cw * ch;
        for (size_t i = 0; i < n0; i++)
            planes[i] = (int32_t)((i * 7) % 256);
        for (size_t i = 0; i < nc; i++) {
            planes[n0 + i] = (int32_t)(40 + i * 3 % 200);
            planes[n0 + nc + i] = (int32_t)(250 - i * 5 % 200);
        }
        uint8_t *s;
        size_t n = encode_sub(planes, W, H, 3, 8, 0, 0, OPJ_CODEC_J2K, dx, dy, 1, &s);
        agora__codec_params p = mkparams(H, W, 3, 8, 8, 0, "YBR_FULL_422");
        uint8_t out[W * H * 3];
        char pm[17];
        agora__error err;
        int rc = decode1(UID_J2K, s, n, &p, out, pm, &err);
        if (rc != 0)
            fail_msg("%ux%u: %s", dx, dy, err.msg);
        assert_string_equal(pm, "YBR_FULL_422");
        for (unsigned y = 0; y < H; y++)
            for (unsigned x = 0; x < W; x++) {
                size_t o = ((size_t)y * W + x) * 3, ci = (size_t)(y / dy) * cw + x / dx;
                assert_int_equal(out[o], planes[(size_t)y * W + x]);
                assert_int_equal(out[o + 1], planes[n0 + ci]);
                assert_int_equal(out[o + 2], planes[n0 + nc + ci]);
            }
        /* The same stream labelled RGB or YBR_ICT: refused, saying why. */
        const char *wrong[] = {"RGB", "YBR_ICT", "YBR_RCT"};
        for (size_t i = 0; i < 3; i++) {
            p = mkparams(H, W, 3, 8, 8, 0, wrong[i]);
            assert_int_equal(decode1(UID_J2K, s, n, &p, out, pm, &err), AGORA_EUNSUPPORTED);
            assert_non_null(strstr(err.msg, "subsampled"));
        }
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_signed_12),
        cmocka_unit_test(test_rgb_mct_and_jp2),
        cmocka_unit_test(test_subsampled_chroma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
