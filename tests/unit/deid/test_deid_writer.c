/* Unit tests: the Part 10 writer (framing, padding, lengths, big-endian swap, encapsulated
 * passthrough) checked by reading its output back with the dicom reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deid.h"
#include "dicom.h"
#include "profile.h"
#include "writer.h"

#define VR(a, b)  AGORA__DICOM_VR(a, b)
#define TAG(g, e) AGORA__DICOM_TAG(g, e)

static agora__dicom_element text_el(uint32_t tag, uint16_t vr, const char *s)
{
    agora__dicom_element e;
    memset(&e, 0, sizeof e);
    e.tag = tag;
    e.vr = vr;
    e.value = (const uint8_t *)s;
    e.value_len = strlen(s);
    e.length = (uint32_t)e.value_len;
    return e;
}

static void test_element_padding(void **state)
{
    (void)state;
    agora__deid_buf b;
    agora__deid_buf_init(&b, 1 << 16);
    agora__deid_put_element(&b, TAG(0x0008, 0x0018), VR('U', 'I'), "1.2.3", 5);
    agora__deid_put_element(&b, TAG(0x0010, 0x0010), VR('P', 'N'), "ABC", 3);
    agora__deid_put_element(&b, TAG(0x7FE0, 0x0010), VR('O', 'B'), "\x01\x02\x03", 3);
    assert_int_equal(b.rc, 0);
    /* UI: 08 00 18 00 'U' 'I' 06 00 "1.2.3\0" */
    static const uint8_t ui[] = {0x08, 0, 0x18, 0, 'U', 'I', 6, 0, '1', '.', '2', '.', '3', 0};
    assert_memory_equal(b.data, ui, sizeof ui);
    static const uint8_t pn[] = {0x10, 0, 0x10, 0, 'P', 'N', 4, 0, 'A', 'B', 'C', ' '};
    assert_memory_equal(b.data + sizeof ui, pn, sizeof pn);
    /* OB: reserved 2 bytes then 4-byte length 4, padded with NUL. */
    static const uint8_t ob[] = {0xE0, 0x7F, 0x10, 0, 'O', 'B', 0, 0, 4, 0, 0, 0, 1, 2, 3, 0};
    assert_memory_equal(b.data + sizeof ui + sizeof pn, ob, sizeof ob);
    assert_int_equal(b.len, sizeof ui + sizeof pn + sizeof ob);
    /* A short-length VR cannot carry more than 65534 bytes. */
    static char big[70000];
    agora__deid_put_element(&b, TAG(0x0010, 0x4000), VR('L', 'O'), big, sizeof big);
    assert_int_equal(b.rc, AGORA_ELIMIT);
    agora__deid_buf_free(&b);
    /* The buffer cap holds. */
    agora__deid_buf_init(&b, 64);
    agora__deid_put_element(&b, TAG(0x0010, 0x4000), VR('L', 'T'), big, 100);
    assert_int_equal(b.rc, AGORA_ELIMIT);
    agora__deid_buf_free(&b);
}

static void roundtrip(uint32_t flags)
{
    /* A dataset with a nested sequence, a big-endian US and an OW, and encapsulated pixels. */
    agora__dicom_element inner[2] = {text_el(TAG(0x0008, 0x1150), VR('U', 'I'), "1.2.840.1"),
                                     text_el(TAG(0x0008, 0x1155), VR('U', 'I'), "1.2.3.4")};
    agora__dicom_dataset items[2] = {{inner, 2, 0, 0}, {inner, 1, 0, 0}};
    static const uint8_t be_rows[2] = {0x02, 0x00}; /* 512 big-endian */
    static const uint8_t frag1[5] = {0xFF, 0xD8, 0x01, 0x02, 0x03};
    static const uint8_t frag2[4] = {0x04, 0x05, 0xFF, 0xD9};
    agora__dicom_fragment frags[2] = {{frag1, 5, 0}, {frag2, 4, 0}};
    agora__dicom_element els[6];
    els[0] = text_el(TAG(0x0008, 0x0016), VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.7");
    els[1] = text_el(TAG(0x0008, 0x1140), VR('S', 'Q'), "");
    els[1].value = NULL;
    els[1].items = items;
    els[1].n_items = 2;
    els[2] = text_el(TAG(0x0010, 0x0010), VR('P', 'N'), "X^Y");
    els[3] = text_el(TAG(0x0028, 0x0010), VR('U', 'S'), "");
    els[3].value = be_rows;
    els[3].value_len = 2;
    els[3].flags = AGORA__DICOM_EL_BIG_ENDIAN;
    els[4] = text_el(TAG(0x0028, 0x0100), VR('U', 'S'), "");
    els[4].value = (const uint8_t *)"\x08\x00";
    els[4].value_len = 2;
    els[5] = text_el(TAG(0x7FE0, 0x0010), VR('O', 'B'), "");
    els[5].value = NULL;
    els[5].flags = AGORA__DICOM_EL_ENCAPSULATED;
    els[5].fragments = frags;
    els[5].n_fragments = 2;
    agora__dicom_dataset ds = {els, 6, 0, 0};

    agora__deid_buf b;
    agora__deid_buf_init(&b, 1 << 20);
    agora__error err = {0};
    assert_int_equal(agora__deid_write_part10(&b, &ds, "1.2.840.10008.5.1.4.1.1.7", "1.2.3.9",
                                              "1.2.840.10008.1.2.4.50", flags, &err),
                     0);
    /* Preamble zero, DICM. */
    for (int i = 0; i < 128; i++)
        assert_int_equal(b.data[i], 0);
    assert_memory_equal(b.data + 128, "DICM", 4);

    agora__dicom_file *f = NULL;
    assert_int_equal(agora__dicom_read(b.data, b.len, NULL, &f, &err), 0);
    assert_int_equal(f->warnings & (AGORA__DICOM_W_NO_PREAMBLE | AGORA__DICOM_W_ODD_LENGTH |
                                    AGORA__DICOM_W_TRAILING_BYTES),
                     0);
    assert_string_equal(f->transfer_syntax, "1.2.840.10008.1.2.4.50");
    char s[80];
    assert_int_equal(agora__dicom_get_string(&f->meta, TAG(0x0002, 0x0003), 0, s, sizeof s), 0);
    assert_string_equal(s, "1.2.3.9");
    int64_t gl = 0;
    assert_int_equal(agora__dicom_get_int(&f->meta, TAG(0x0002, 0x0000), 0, &gl), 0);
    assert_true(gl > 0 && (uint64_t)gl + 12 + 132 == f->dataset_offset);
    const agora__dicom_element *sq = agora__dicom_find(&f->dataset, TAG(0x0008, 0x1140));
    assert_non_null(sq);
    assert_int_equal(sq->n_items, 2);
    assert_int_equal(sq->items[0].n_elements, 2);
    assert_int_equal(sq->items[1].n_elements, 1);
    assert_int_equal(agora__dicom_get_string(&sq->items[0], TAG(0x0008, 0x1155), 0, s, sizeof s),
                     0);
    assert_string_equal(s, "1.2.3.4");
    int64_t rows = 0;
    assert_int_equal(agora__dicom_get_int(&f->dataset, TAG(0x0028, 0x0010), 0, &rows), 0);
    assert_int_equal(rows, 512);
    assert_int_equal(agora__dicom_get_string(&f->dataset, TAG(0x0010, 0x0010), 0, s, sizeof s), 0);
    assert_string_equal(s, "X^Y");
    const agora__dicom_element *px = agora__dicom_find(&f->dataset, AGORA__DICOM_T_PIXEL_DATA);
    assert_non_null(px);
    assert_true(px->flags & AGORA__DICOM_EL_ENCAPSULATED);
    assert_int_equal(px->n_fragments, 2);
    assert_int_equal(px->fragments[0].length, 6); /* odd fragment padded */
    assert_memory_equal(px->fragments[0].data, frag1, 5);
    assert_int_equal(px->fragments[1].length, 4);
    assert_memory_equal(px->fragments[1].data, frag2, 4);
    if (flags & AGORA__DEID_W_DEFINED_LENGTHS)
        assert_int_not_equal(sq->length, AGORA__DICOM_UNDEFINED_LENGTH);
    else
        assert_int_equal(sq->length, AGORA__DICOM_UNDEFINED_LENGTH);
    agora__dicom_file_free(f);
    agora__deid_buf_free(&b);
}

static void test_roundtrip_undefined(void **state)
{
    (void)state;
    roundtrip(0);
}

static void test_roundtrip_defined(void **state)
{
    (void)state;
    roundtrip(AGORA__DEID_W_DEFINED_LENGTHS);
}

static void test_meta_refuses_bad_uids(void **state)
{
    (void)state;
    agora__deid_buf b;
    agora__deid_buf_init(&b, 1 << 16);
    agora__dicom_dataset ds = {NULL, 0, 0, 0};
    agora__error err = {0};
    assert_int_not_equal(
        agora__deid_write_part10(&b, &ds, "", "1.2", "1.2.840.10008.1.2.1", 0, &err), 0);
    agora__deid_buf_free(&b);
}

/* The view over a parsed file: allowlisted values only, pseudonyms mapped back. */
static void test_view_of_parsed_file(void **state)
{
    (void)state;
    agora__deid_buf b;
    agora__deid_buf_init(&b, 1 << 16);
    agora__deid_put_meta(&b, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.9", "1.2.840.10008.1.2.1");
    agora__deid_put_element(&b, TAG(0x0008, 0x0018), VR('U', 'I'), "1.2.3.9", 7);
    agora__deid_put_element(&b, TAG(0x0008, 0x0060), VR('C', 'S'), "CT", 2);
    agora__deid_put_element(&b, TAG(0x0010, 0x0010), VR('P', 'N'), "DOE^JANE", 8);
    agora__deid_put_element(&b, TAG(0x0020, 0x000D), VR('U', 'I'), "1.2.3.7", 7);
    agora__deid_put_element(&b, TAG(0x0028, 0x0010), VR('U', 'S'), "\x00\x02", 2);
    assert_int_equal(b.rc, 0);
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    assert_int_equal(agora__dicom_read(b.data, b.len, NULL, &f, &err), 0);
    static const uint8_t key[32] = {9};
    agora__deid_uidmap *map = agora__deid_uidmap_new();
    agora__deid_granted v;
    assert_int_equal(agora__deid_view_dataset(&f->dataset, key, NULL, 0, 0, map, &v, &err), 0);
    int rows = 0, modality = 0;
    for (size_t i = 0; i < v.count; i++) {
        assert_null(strstr(v.attrs[i].value, "DOE"));
        rows |= strcmp(v.attrs[i].keyword, "Rows") == 0 && strcmp(v.attrs[i].value, "512") == 0;
        modality |= strcmp(v.attrs[i].keyword, "Modality") == 0;
    }
    assert_true(rows && modality);
    assert_string_equal(agora__deid_uidmap_real(map, v.study_uid, NULL), "1.2.3.7");
    assert_string_equal(agora__deid_uidmap_real(map, v.instance_uid, NULL), "1.2.3.9");
    agora__deid_granted_free(&v);
    agora__deid_uidmap_free(map);
    agora__dicom_file_free(f);
    agora__deid_buf_free(&b);
}

/* A profile carrying a clean* option is refused by the writer itself, whoever built it. */
static void test_apply_refuses_clean_options(void **state)
{
    (void)state;
    static const uint8_t secret[32] = {1};
    agora__dicom_element els[2] = {
        text_el(TAG(0x0008, 0x0016), VR('U', 'I'), "1.2.840.10008.5.1.4.1.1.7"),
        text_el(TAG(0x0008, 0x0018), VR('U', 'I'), "1.2.3.4")};
    agora__dicom_file f;
    memset(&f, 0, sizeof f);
    f.dataset.elements = els;
    f.dataset.n_elements = 2;
    agora__deid_buf b;
    agora__deid_buf_init(&b, 1 << 20);
    agora__deid_stats st = {0};
    agora__error err = {0};
    agora__deid_profile p = {secret, 1u << AGORA__PS315_CLEAN_GRAPH, 0, 0};
    assert_int_equal(agora__deid_apply(&f, &p, &b, &st, NULL, &err), AGORA_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "cleanGraphOpt is not performed"));
    assert_int_equal(b.len, 0);
    p.options = 0; /* the same file without the option is written */
    assert_int_equal(agora__deid_apply(&f, &p, &b, &st, NULL, &err), 0);
    assert_true(b.len > 132);
    agora__deid_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_refuses_clean_options),
        cmocka_unit_test(test_element_padding),
        cmocka_unit_test(test_roundtrip_undefined),
        cmocka_unit_test(test_roundtrip_defined),
        cmocka_unit_test(test_meta_refuses_bad_uids),
        cmocka_unit_test(test_view_of_parsed_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
