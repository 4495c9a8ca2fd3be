/* Unit tests for host/dicom/charset.c: one group per decoder family (single-byte, ISO 2022
 * single-byte with escapes, ISO 2022 Japanese / Korean / Chinese, GB18030, GBK, UTF-8, the
 * default repertoire), the parsing of (0008,0005), and malformed input: every bad byte becomes
 * U+FFFD, output stays valid UTF-8 within AGORA__DICOM_DECODE_MAX, nothing crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "charset.h"

#define PN   AGORA__DICOM_VR('P', 'N')
#define LO   AGORA__DICOM_VR('L', 'O')
#define LT   AGORA__DICOM_VR('L', 'T')
#define FFFD "\xEF\xBF\xBD"

static char out[4096];

/* Decode `in` (NUL-free literal of n bytes) under the Specific Character Set value `cs_value`. */
static const char *dec(const char *cs_value, uint16_t vr, const char *in, size_t n,
                       size_t *replaced)
{
    agora__dicom_charset cs;
    agora__dicom_charset_parse((const uint8_t *)cs_value, strlen(cs_value), &cs);
    size_t len =
        agora__dicom_decode_text(&cs, vr, (const uint8_t *)in, n, out, sizeof out, replaced);
    assert_int_equal(len, strlen(out));
    return out;
}
#define DEC(cs, vr, lit) dec(cs, vr, lit, sizeof lit - 1, NULL)

static void test_parse(void **state)
{
    (void)state;
    agora__dicom_charset cs;
    agora__dicom_charset_parse((const uint8_t *)"ISO_IR 100 ", 11, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_SINGLE);
    agora__dicom_charset_parse((const uint8_t *)"\\ISO 2022 IR 87", 15, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_ISO2022);
    agora__dicom_charset_parse((const uint8_t *)"ISO_IR 192", 10, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_UTF8);
    agora__dicom_charset_parse((const uint8_t *)"GB18030", 7, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_GB18030);
    agora__dicom_charset_parse((const uint8_t *)"GBK", 3, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_GBK);
    agora__dicom_charset_parse((const uint8_t *)"ISO_IR 6", 8, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_DEFAULT);
    agora__dicom_charset_parse((const uint8_t *)"", 0, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_DEFAULT);
    /* Unknown terms are counted, never fatal; multi-byte sets need the ISO 2022 form. */
    agora__dicom_charset_parse((const uint8_t *)"KLINGON\\ISO_IR 87", 17, &cs);
    assert_int_equal(cs.unknown, 2);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_ISO2022);
    agora__dicom_charset_parse(NULL, 5, &cs);
    assert_int_equal(cs.mode, AGORA__DICOM_CS_DEFAULT);
    assert_true(agora__dicom_charset_vr(PN) && agora__dicom_charset_vr(AGORA__DICOM_VR('U', 'C')));
    assert_false(agora__dicom_charset_vr(AGORA__DICOM_VR('C', 'S')));
}

static void test_single_byte(void **state)
{
    (void)state;
    assert_string_equal(DEC("ISO_IR 100", PN, "Buc^J\xE9r\xF4me"), "Buc^Jérôme");
    assert_string_equal(DEC("ISO_IR 101", LO, "\xA9"), "Š");
    assert_string_equal(DEC("ISO_IR 109", LO, "\xA1"), "Ħ");
    assert_string_equal(DEC("ISO_IR 110", LO, "\xA1"), "Ą");
    assert_string_equal(DEC("ISO_IR 144", PN, "\xB6"), "Ж");
    assert_string_equal(DEC("ISO_IR 127", PN, "\xE4\xE6\xD2\xC7\xD1"), "لنزار");
    assert_string_equal(DEC("ISO_IR 126", PN, "\xC4\xE9\xEF"), "Διο");
    assert_string_equal(DEC("ISO_IR 138", PN, "\xF9"), "ש");
    assert_string_equal(DEC("ISO_IR 148", LO, "\xDD"), "İ");
    assert_string_equal(DEC("ISO_IR 166", LO, "\xA1"), "ก");
    assert_string_equal(DEC("ISO_IR 203", LO, "\xA4"), "€");
    assert_string_equal(DEC("ISO_IR 13", PN, "\xD4\xCF\xC0\xDE"), "ﾔﾏﾀﾞ");
    /* Undefined cells and C1 controls are replaced; without code extensions ESC is no escape. */
    size_t rep = 0;
    assert_string_equal(dec("ISO_IR 127", LO, "\xA1\x85\x1B$B", 5, &rep), FFFD FFFD FFFD "$B");
    assert_int_equal(rep, 3);
}

static void test_iso2022_single_byte(void **state)
{
    (void)state;
    /* Two Latin sets switched by escape in one value; '\' returns G1 to value 1's set. */
    assert_string_equal(DEC("ISO 2022 IR 100\\ISO 2022 IR 144", LO, "\xE9\x1B-L\xB6\\\xE9"),
                        "éЖ\\é");
    assert_string_equal(DEC("ISO 2022 IR 126", PN, "\x1B-F\xC4"), "Δ");
    assert_string_equal(DEC("ISO 2022 IR 203", LO, "\x1B-b\xA4"), "€");
}

static void test_japanese(void **state)
{
    (void)state;
    /* PS3.5 H.3.1 (chrH31): JIS X 0208 in G0 by ESC $ B, back to ASCII by ESC ( B. */
    assert_string_equal(DEC("\\ISO 2022 IR 87", PN,
                            "Yamada^Tarou=\x1B$B;3ED\x1B(B^\x1B$BB@O:\x1B(B=\x1B$B$d$^$@\x1B(B^"
                            "\x1B$B$?$m$&\x1B(B"),
                        "Yamada^Tarou=山田^太郎=やまだ^たろう");
    /* H.3.2: JIS X 0201 katakana in G1 as value 1, back to Romaji by ESC ( J. */
    assert_string_equal(
        DEC("ISO 2022 IR 13\\ISO 2022 IR 87", PN, "\xD4\xCF\xC0\xDE^\xC0\xDB\xB3=\x1B$B;3ED\x1B(J"),
        "ﾔﾏﾀﾞ^ﾀﾛｳ=山田");
    /* JIS X 0212 by ESC $ ( D. */
    assert_string_equal(DEC("\\ISO 2022 IR 159", LO, "\x1B$(D0!\x1B(B"), "丂");
    /* A JIS character whose second byte is 0x5C ('\'), 0x5E ('^') or 0x3D ('='): no split.
     * 0x215C is U+FF0B (FULLWIDTH PLUS SIGN), 0x215E U+00B1, 0x213D U+2015. */
    assert_string_equal(DEC("\\ISO 2022 IR 87", PN, "\x1B$B!\\!^!=\x1B(B"), "＋±―");
    /* The PN delimiter returns G0 to ASCII (a writer that forgot ESC ( B before it). */
    assert_string_equal(DEC("\\ISO 2022 IR 87", PN, "\x1B$B;3\x1B(B^AB"), "山^AB");
}

static void test_korean_chinese(void **state)
{
    (void)state;
    /* PS3.5 I.2 (chrI2): KS X 1001 in G1 by ESC $ ) C per component. */
    assert_string_equal(DEC("\\ISO 2022 IR 149", PN,
                            "Hong^Gildong=\x1B$)C\xFB\xF3^\x1B$)C\xD1\xCE\xD4\xD7=\x1B$)C\xC8\xAB^"
                            "\x1B$)C\xB1\xE6\xB5\xBF"),
                        "Hong^Gildong=洪^吉洞=홍^길동");
    /* G1 stays designated across '^' within a group, and is dropped at '=' and '\'. */
    assert_string_equal(DEC("\\ISO 2022 IR 149", PN, "\x1B$)C\xC7\xD1^\xC7\xD1=\xC7\xD1"),
                        "한^한=" FFFD FFFD);
    /* ISO 2022 IR 58 (GB 2312) in G1 by ESC $ ) A. */
    assert_string_equal(DEC("\\ISO 2022 IR 58", PN, "Zhang^=\x1B$)A\xD6\xD0"), "Zhang^=中");
}

static void test_gb18030_gbk(void **state)
{
    (void)state;
    /* PS3.5 K (chrX2): two-byte codes; a trailing empty group stays. */
    assert_string_equal(DEC("GB18030", PN, "Wang^XiaoDong=\xCD\xF5^\xD0\xA1\xB6\xAB="),
                        "Wang^XiaoDong=王^小东=");
    /* Four-byte codes: BMP ranges (U+0080, U+00A5, U+1E3F) and a supplementary plane. */
    assert_string_equal(DEC("GB18030", LO,
                            "\x81\x30\x81\x30\x81\x30\x84\x36\x81\x35\xF4\x37"
                            "\x95\x32\x82\x36"),
                        "\xC2\x80¥ḿ𠀀");
    /* A trail byte 0x5C is part of the character, not a value delimiter: 0x815C is U+4E57. */
    assert_string_equal(DEC("GB18030", LO, "\x81\x5C"), "乗");
    /* GBK: the same two-byte mapping; four-byte codes and GB18030-only cells are not GBK. */
    size_t rep = 0;
    assert_string_equal(dec("GBK", LO, "\xD6\xD0\x81\x30\x81\x30", 6, &rep),
                        "中" FFFD "0" FFFD "0");
    assert_int_equal(rep, 2);
    assert_string_equal(DEC("GBK", LO, "\xA1\x40"), FFFD); /* well-formed, unmapped: one U+FFFD */
    assert_string_equal(DEC("GB18030", LO, "\xA1\x40"), "\xEE\x93\x86"); /* U+E4C6 */
}

static void test_utf8_and_default(void **state)
{
    (void)state;
    assert_string_equal(DEC("ISO_IR 192", PN, "Wang^XiaoDong=\xE7\x8E\x8B"), "Wang^XiaoDong=王");
    /* A literal U+FFFD is a character, not a substitution. */
    size_t rep = 1;
    assert_string_equal(dec("ISO_IR 192", LO, FFFD, 3, &rep), FFFD);
    assert_int_equal(rep, 0);
    /* Default repertoire: valid UTF-8 is taken as such; otherwise Latin-1, like pydicom. */
    assert_string_equal(DEC("", PN, "J\xC3\xA9r\xC3\xB4me"), "Jérôme");
    assert_string_equal(DEC("", PN, "J\xE9r\xF4me"), "Jérôme");
    /* ... and escapes are honoured even when (0008,0005) forgot to declare them. */
    assert_string_equal(DEC("", PN, "\x1B$B;3ED\x1B(B"), "山田");
    /* Text VRs keep format effectors; other controls are replaced. */
    assert_string_equal(DEC("ISO_IR 100", LT, "a\r\nb\tc\x01"), "a\r\nb\tc" FFFD);
}

static void test_malformed(void **state)
{
    (void)state;
    size_t rep = 0;
    /* Overlong, surrogate, out of range, truncated UTF-8. */
    assert_string_equal(
        dec("ISO_IR 192", LO, "\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80\xE7\x8E", 11, &rep),
        FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD);
    assert_int_equal(rep, 11);
    /* Unknown and truncated escape sequences: one replacement each, bytes consumed. */
    assert_string_equal(dec("\\ISO 2022 IR 87", LO, "a\x1B$Zb\x1B", 6, &rep), "a" FFFD "b" FFFD);
    assert_int_equal(rep, 2);
    assert_string_equal(dec("\\ISO 2022 IR 87", LO, "\x1B$(", 3, &rep), FFFD);
    /* Odd byte count in JIS X 0208, an unmapped JIS cell, high bytes with no G1 set. */
    assert_string_equal(dec("\\ISO 2022 IR 87", LO, "\x1B$B;", 4, &rep), FFFD);
    assert_string_equal(dec("\\ISO 2022 IR 87", LO, "\x1B$B\x7E\x7E", 5, &rep), FFFD);
    assert_string_equal(dec("\\ISO 2022 IR 149", LO, "\xC7\xD1", 2, &rep), FFFD FFFD);
    /* Korean lead byte without a valid trail; GB18030 lead at the end; lone 0x80/0xFF. */
    assert_string_equal(dec("\\ISO 2022 IR 149", LO,
                            "\x1B$)C\xC7"
                            "A",
                            6, &rep),
                        FFFD "A");
    assert_string_equal(dec("GB18030", LO, "A\x81", 2, &rep), "A" FFFD);
    assert_string_equal(dec("GB18030", LO, "\x80\xFF\x81\x30\x81", 5, &rep),
                        FFFD FFFD FFFD "0" FFFD);
    /* A four-byte code beyond U+10FFFF. */
    assert_string_equal(dec("GB18030", LO, "\xE3\x32\x9A\x36", 4, &rep), FFFD);
}

static void test_bounds_and_noise(void **state)
{
    (void)state;
    /* Small output buffer: stops at a character boundary, always terminated. */
    agora__dicom_charset cs;
    agora__dicom_charset_parse((const uint8_t *)"ISO_IR 192", 10, &cs);
    char small[5];
    size_t n = agora__dicom_decode_text(&cs, LO, (const uint8_t *)"\xE7\x8E\x8B\xE7\x8E\x8B", 6,
                                        small, sizeof small, NULL);
    assert_int_equal(n, 3);
    assert_string_equal(small, "王");
    assert_int_equal(agora__dicom_decode_text(&cs, LO, (const uint8_t *)"x", 1, small, 0, NULL), 0);
    /* Pseudo-random bytes under every mode: bounded, valid UTF-8, no crash. */
    static const char *const sets[] = {"",
                                       "ISO_IR 100",
                                       "ISO_IR 13",
                                       "\\ISO 2022 IR 87\\ISO 2022 IR 159",
                                       "ISO 2022 IR 13\\ISO 2022 IR 87",
                                       "\\ISO 2022 IR 149",
                                       "\\ISO 2022 IR 58",
                                       "ISO_IR 192",
                                       "GB18030",
                                       "GBK"};
    uint32_t x = 12345;
    uint8_t in[257];
    char *buf = malloc(AGORA__DICOM_DECODE_MAX(sizeof in));
    assert_non_null(buf);
    for (int round = 0; round < 4000; round++) {
        size_t len = (size_t)(round % (int)sizeof in);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            uint8_t b = (uint8_t)(x >> 16);
            in[i] = (x & 0x100) ? 0x1B : b; /* plenty of escapes */
            if ((x & 0x3000) == 0x3000)
                in[i] = (uint8_t) "$()-BJIDCA\\^="[(x >> 24) % 13];
        }
        const char *set = sets[round % (int)(sizeof sets / sizeof sets[0])];
        agora__dicom_charset_parse((const uint8_t *)set, strlen(set), &cs);
        size_t rep = 0;
        size_t o = agora__dicom_decode_text(&cs, round & 1 ? PN : LT, in, len, buf,
                                            AGORA__DICOM_DECODE_MAX(len), &rep);
        assert_true(o < AGORA__DICOM_DECODE_MAX(len));
        assert_int_equal(buf[o], 0);
        assert_int_equal(strlen(buf), o);
        /* Re-decoding our own output as UTF-8 must not replace anything. */
        agora__dicom_charset u;
        agora__dicom_charset_parse((const uint8_t *)"ISO_IR 192", 10, &u);
        char *again = malloc(AGORA__DICOM_DECODE_MAX(o));
        assert_non_null(again);
        size_t rep2 = 0;
        agora__dicom_decode_text(&u, LT, (const uint8_t *)buf, o, again, AGORA__DICOM_DECODE_MAX(o),
                                 &rep2);
        assert_string_equal(again, buf);
        assert_int_equal(rep2, 0);
        free(again);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_single_byte),
        cmocka_unit_test(test_iso2022_single_byte),
        cmocka_unit_test(test_japanese),
        cmocka_unit_test(test_korean_chinese),
        cmocka_unit_test(test_gb18030_gbk),
        cmocka_unit_test(test_utf8_and_default),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bounds_and_noise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
