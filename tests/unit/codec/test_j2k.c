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

/* Lossless (5/3) encode of nc components of w x h, prec bits, optional sign and MCT. */
static size_t encode(const int32_t *px, unsigned w, unsigned h, unsigned nc, unsigned prec,
                     int sgnd, int mct, OPJ_CODEC_FORMAT fmt, uint8_t **out)
{
    opj_image_cmptparm_t cp[3];
    memset(cp, 0, sizeof cp);
    for (unsigned c = 0; c < nc; c++) {
        cp[c].dx = cp[c].dy = 1;
        cp[c].w = w;
        cp[c].h = h;
        cp[c].prec = prec;
        cp[c].sgnd = (OPJ_UINT32)sgnd;
    }
    opj_image_t *img = opj_image_create(nc, cp, nc == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    assert_non_null(img);
    img->x1 = w;
    img->y1 = h;
    for (unsigned c = 0; c < nc; c++)
        for (size_t i = 0; i < (size_t)w * h; i++)
            img->comps[c].data[i] = px[i * nc + c];
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
    agora__codec_params wrong = mkparams(H, W + 1, 3, 8, 8, 0, "RGB");
    uint8_t big[H * (W + 1) * 3];
    assert_int_equal(decode1(UID_J2K, s, n, &wrong, big, pm, &err), AGORA_EINPUT);
    free(s);
    const uint8_t junk[] = {0xFF, 0x4F, 0xFF, 0x51, 0, 5, 1, 2, 3};
    assert_int_equal(decode1(UID_J2K, junk, sizeof junk, &q, out, pm, &err), AGORA_EINPUT);
    const uint8_t notj2k[] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(decode1(UID_J2K, notj2k, sizeof notj2k, &q, out, pm, &err), AGORA_EINPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_signed_12),
        cmocka_unit_test(test_rgb_mct_and_jp2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
