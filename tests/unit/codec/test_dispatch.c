/* codec.c: syntax table, refusals with name + UID, argument checks, fragment joining. */
#include "ljpeg_enc.h"
#include "test_util.h"

static void test_table(void **state)
{
    (void)state;
    const char *yes[] = {UID_RLE, UID_LJPEG,    UID_LJPEG_SV1, UID_BASELINE, UID_EXTENDED,
                         UID_JLS, UID_JLS_NEAR, UID_J2K_LL,    UID_J2K};
    for (unsigned i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        assert_int_equal(agora__codec_supported(yes[i]), 1);
        assert_non_null(agora__codec_syntax_name(yes[i]));
    }
    assert_string_equal(agora__codec_syntax_name(UID_LJPEG_SV1),
                        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 "
                        "[Selection Value 1])");
    const char *no[] = {"1.2.840.10008.1.2",
                        "1.2.840.10008.1.2.1",
                        "1.2.840.10008.1.2.1.99",
                        "1.2.840.10008.1.2.4.100",
                        "1.2.840.10008.1.2.4.102",
                        "1.2.3",
                        ""};
    for (unsigned i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(agora__codec_supported(no[i]), 0);
    assert_int_equal(agora__codec_supported(NULL), 0);
    assert_null(agora__codec_syntax_name("1.2.3"));
    assert_null(agora__codec_syntax_name(NULL));
}

static void test_refusals_name_syntax_and_uid(void **state)
{
    (void)state;
    const uint8_t data[4] = {1, 2, 3, 4};
    agora__codec_params p = mkparams(2, 2, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[4];
    char pm[17];
    agora__error err;
    assert_int_equal(decode1("1.2.840.10008.1.2.4.100", data, 4, &p, out, pm, &err),
                     AGORA_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "MPEG2 Main Profile / Main Level"));
    assert_non_null(strstr(err.msg, "1.2.840.10008.1.2.4.100"));
    assert_int_equal(decode1("1.2.840.10008.1.2.1.99", data, 4, &p, out, pm, &err),
                     AGORA_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "Deflate"));
    assert_int_equal(decode1("1.2.3.4.5", data, 4, &p, out, pm, &err), AGORA_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "1.2.3.4.5"));
    /* A non-UID string is never echoed. */
    assert_int_equal(decode1("Mr Smith", data, 4, &p, out, pm, &err), AGORA_EUNSUPPORTED);
    assert_null(strstr(err.msg, "Smith"));
}

static void test_argument_checks(void **state)
{
    (void)state;
    const uint8_t data[4] = {1, 2, 3, 4};
    const uint8_t *frags[1] = {data};
    size_t lens[1] = {4};
    uint8_t out[8];
    char pm[17];
    agora__error err = {0};
    agora__codec_params p = mkparams(2, 2, 1, 8, 8, 0, "MONOCHROME2");
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &p, out, 5, pm, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__codec_decode_frame(UID_RLE, NULL, lens, 1, &p, out, 4, pm, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, NULL, out, 4, pm, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 0, &p, out, 4, pm, &err),
                     AGORA_EINPUT);
    agora__codec_params bad = p;
    bad.rows = 0;
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &bad, out, 0, pm, &err),
                     AGORA_EINVAL);
    bad = p;
    bad.bits_allocated = 12;
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &bad, out, 6, pm, &err),
                     AGORA_EUNSUPPORTED);
    bad = p;
    bad.bits_stored = 9;
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &bad, out, 4, pm, &err),
                     AGORA_EINVAL);
    bad = p;
    bad.samples_per_pixel = 2;
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &bad, out, 8, pm, &err),
                     AGORA_EINVAL);
    bad = p;
    bad.rows = bad.columns = 65535;
    bad.samples_per_pixel = 4;
    bad.bits_allocated = bad.bits_stored = 32;
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &bad, out, 8, pm, &err),
                     AGORA_ELIMIT);
    bad = p;
    bad.photometric = "MONOCHROME2\nEVIL";
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &bad, out, 4, pm, &err),
                     AGORA_EINVAL);
    /* err may be NULL. */
    assert_int_equal(agora__codec_decode_frame(UID_RLE, frags, lens, 1, &p, out, 5, pm, NULL),
                     AGORA_EINVAL);
}

static void test_fragments_joined(void **state)
{
    (void)state;
    uint16_t s[12 * 10];
    for (unsigned i = 0; i < 120; i++)
        s[i] = (uint16_t)(i * 13 % 256);
    ljpeg_opts o = {12, 10, 1, 8, 1, 0, 0, 1};
    uint8_t *stream;
    size_t n = ljpeg_encode(&o, s, &stream);
    /* Split into fragments of 1, 0, 7, 0 and the rest bytes. */
    const uint8_t *frags[5] = {stream, stream + 1, stream + 1, stream + 8, stream + 8};
    size_t lens[5] = {1, 0, 7, 0, n - 8};
    agora__codec_params p = mkparams(10, 12, 1, 8, 8, 0, "MONOCHROME2");
    uint8_t out[120];
    char pm[17];
    agora__error err = {0};
    assert_int_equal(agora__codec_decode_frame(UID_LJPEG, frags, lens, 5, &p, out, 120, pm, &err),
                     0);
    for (unsigned i = 0; i < 120; i++)
        assert_int_equal(out[i], s[i]);
    free(stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_refusals_name_syntax_and_uid),
        cmocka_unit_test(test_argument_checks),
        cmocka_unit_test(test_fragments_joined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
