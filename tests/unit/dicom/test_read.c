/* Reader: every transfer syntax path, sequences, undefined lengths, encapsulated data, limits,
 * truncated and lying input, getters, edits and the dictionary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include <cmocka.h>

#include "builder.h"
#include "dicom.h"
#include "pixels.h"

#define TAG AGORA__DICOM_TAG

static agora__dicom_file *parse_ok(const tbuf *t)
{
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    int rc = agora__dicom_read(t->b, t->n, NULL, &f, &err);
    if (rc)
        fprintf(stderr, "parse failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(f);
    return f;
}

static int parse_rc(const tbuf *t, const agora__dicom_limits *lim, agora__error *err)
{
    agora__dicom_file *f = NULL;
    int rc = agora__dicom_read(t->b, t->n, lim, &f, err);
    if (rc == 0)
        agora__dicom_file_free(f);
    else
        assert_null(f);
    return rc;
}

/* A small dataset with text, numbers and multi-values, in the builder's encoding. */
static void basic_dataset(tbuf *t)
{
    tb_str(t, 0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\AXIAL");
    tb_str(t, 0x0008, 0x0018, "UI", "1.2.3.4.5");
    tb_str(t, 0x0008, 0x0060, "CS", "CT");
    tb_str(t, 0x0010, 0x0010, "PN", "Doe^J ");
    tb_str(t, 0x0020, 0x0013, "IS", " 42 ");
    tb_str(t, 0x0020, 0x0032, "DS", "-12.5\\3\\1e2");
    tb_us(t, 0x0028, 0x0010, 513);
    tb_hdr(t, 0x0028, 0x1050, "DS", 0);
    tb_hdr(t, 0x0018, 0x9087, "FD", 8);
    double d = 1.25;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    tb_u32(t, t->big ? (uint32_t)(bits >> 32) : (uint32_t)bits);
    tb_u32(t, t->big ? (uint32_t)bits : (uint32_t)(bits >> 32));
}

static void check_basic(const agora__dicom_file *f)
{
    const agora__dicom_dataset *ds = &f->dataset;
    char s[64];
    int64_t i;
    double d;
    assert_int_equal(agora__dicom_get_string(ds, TAG(0x0008, 0x0008), 1, s, sizeof s), 0);
    assert_string_equal(s, "PRIMARY");
    assert_int_equal(agora__dicom_vm(agora__dicom_find(ds, TAG(0x0008, 0x0008))), 3);
    assert_int_equal(agora__dicom_get_string(ds, TAG(0x0008, 0x0008), 3, s, sizeof s),
                     AGORA_EINPUT);
    assert_int_equal(agora__dicom_get_string(ds, TAG(0x0008, 0x0018), 0, s, sizeof s), 0);
    assert_string_equal(s, "1.2.3.4.5"); /* NUL padding trimmed */
    assert_int_equal(agora__dicom_get_string(ds, TAG(0x0010, 0x0010), 0, s, sizeof s), 0);
    assert_string_equal(s, "Doe^J");
    assert_int_equal(agora__dicom_get_int(ds, TAG(0x0020, 0x0013), 0, &i), 0);
    assert_int_equal(i, 42);
    assert_int_equal(agora__dicom_get_double(ds, TAG(0x0020, 0x0032), 0, &d), 0);
    assert_true(d == -12.5);
    assert_int_equal(agora__dicom_get_double(ds, TAG(0x0020, 0x0032), 2, &d), 0);
    assert_true(d == 100.0);
    assert_int_equal(agora__dicom_get_int(ds, TAG(0x0028, 0x0010), 0, &i), 0);
    assert_int_equal(i, 513);
    assert_int_equal(agora__dicom_get_double(ds, TAG(0x0018, 0x9087), 0, &d), 0);
    assert_true(d == 1.25);
    assert_int_equal(agora__dicom_get_double(ds, TAG(0x0028, 0x1050), 0, &d), AGORA_EINPUT);
    assert_int_equal(agora__dicom_get_int(ds, TAG(0x0010, 0x0020), 0, &i), AGORA_EINPUT);
    assert_int_equal(agora__dicom_get_string(ds, TAG(0x0008, 0x0060), 0, s, 2), AGORA_ELIMIT);
    assert_string_equal(s, "C");
    /* Tag order. */
    for (uint32_t k = 1; k < ds->n_elements; k++)
        assert_true(ds->elements[k - 1].tag < ds->elements[k].tag);
}

static void test_explicit_le(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    basic_dataset(&t);
    agora__dicom_file *f = parse_ok(&t);
    assert_int_equal(f->encoding, AGORA__DICOM_EXPLICIT_LE);
    assert_string_equal(f->transfer_syntax, AGORA__DICOM_TS_EXPLICIT_LE);
    assert_int_equal(f->meta.n_elements, 3);
    assert_int_equal(f->warnings & AGORA__DICOM_W_NO_PREAMBLE, 0);
    check_basic(f);
    agora__dicom_file_free(f);
    free(t.b);
}

static void test_implicit_le(void **state)
{
    (void)state;
    tbuf t = {.explicit = 0};
    tb_meta(&t, AGORA__DICOM_TS_IMPLICIT_LE);
    basic_dataset(&t);
    tb_str(&t, 0x0009, 0x0010, "LO", "ACME");
    tb_str(&t, 0x0009, 0x1001, "LO", "secret");
    agora__dicom_file *f = parse_ok(&t);
    assert_int_equal(f->encoding, AGORA__DICOM_IMPLICIT_LE);
    check_basic(f);
    const agora__dicom_element *e = agora__dicom_find(&f->dataset, TAG(0x0010, 0x0010));
    assert_int_equal(e->vr, AGORA__DICOM_VR('P', 'N'));
    assert_true(e->flags & AGORA__DICOM_EL_VR_IMPLICIT);
    assert_int_equal(agora__dicom_find(&f->dataset, TAG(0x0009, 0x0010))->vr,
                     AGORA__DICOM_VR('L', 'O'));
    assert_int_equal(agora__dicom_find(&f->dataset, TAG(0x0009, 0x1001))->vr, AGORA__DICOM_VR_UN);
    agora__dicom_file_free(f);
    free(t.b);
}

static void test_explicit_be(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1, .big = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_BE);
    basic_dataset(&t);
    agora__dicom_file *f = parse_ok(&t);
    assert_int_equal(f->encoding, AGORA__DICOM_EXPLICIT_BE);
    check_basic(f);
    assert_true(agora__dicom_find(&f->dataset, TAG(0x0028, 0x0010))->flags &
                AGORA__DICOM_EL_BIG_ENDIAN);
    agora__dicom_file_free(f);
    free(t.b);
}

static void deflate_raw(const uint8_t *in, size_t n, tbuf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n);
    uint8_t *b = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = b;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    tb_put(out, b, cap - zs.avail_out);
    deflateEnd(&zs);
    free(b);
}

static void test_deflated(void **state)
{
    (void)state;
    tbuf body = {.explicit = 1};
    basic_dataset(&body);
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_DEFLATED_LE);
    deflate_raw(body.b, body.n, &t);
    agora__dicom_file *f = parse_ok(&t);
    assert_int_equal(f->encoding, AGORA__DICOM_DEFLATED_LE);
    check_basic(f);
    agora__dicom_file_free(f);

    /* A decompression bomb: 8 MiB of zeros inside a tiny stream hits the ratio cap. */
    size_t big = (size_t)8 << 20;
    uint8_t *zeros = calloc(1, big);
    tbuf bomb = {.explicit = 1};
    tb_meta(&bomb, AGORA__DICOM_TS_DEFLATED_LE);
    deflate_raw(zeros, big, &bomb);
    free(zeros);
    agora__error err = {0};
    assert_int_equal(parse_rc(&bomb, NULL, &err), AGORA_ELIMIT);
    assert_non_null(strstr(err.msg, "inflates beyond"));
    /* Garbage after the meta group is not a deflate stream. */
    tbuf junk = {.explicit = 1};
    tb_meta(&junk, AGORA__DICOM_TS_DEFLATED_LE);
    tb_put(&junk, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    assert_int_equal(parse_rc(&junk, NULL, &err), AGORA_EINPUT);
    free(junk.b);
    free(bomb.b);
    free(body.b);
    free(t.b);
}

static void test_no_preamble_no_meta(void **state)
{
    (void)state;
    tbuf t = {.explicit = 0};
    basic_dataset(&t);
    agora__dicom_file *f = parse_ok(&t);
    assert_true(f->warnings & AGORA__DICOM_W_NO_PREAMBLE);
    assert_true(f->warnings & AGORA__DICOM_W_NO_META);
    assert_int_equal(f->encoding, AGORA__DICOM_IMPLICIT_LE);
    check_basic(f);
    agora__dicom_file_free(f);
    free(t.b);
    tbuf e = {.explicit = 1};
    basic_dataset(&e);
    f = parse_ok(&e);
    assert_int_equal(f->encoding, AGORA__DICOM_EXPLICIT_LE);
    check_basic(f);
    agora__dicom_file_free(f);
    free(e.b);
    /* Not DICOM at all. */
    tbuf txt = {0};
    tb_put(&txt, "hello, this is a text file with no DICOM in it", 46);
    agora__error err = {0};
    assert_int_equal(parse_rc(&txt, NULL, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "not a DICOM file"));
    free(txt.b);
}

/* Nested sequences: defined/undefined lengths for sequences and items. */
static void build_sequences(tbuf *t)
{
    tb_str(t, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
    /* (0008,1115) undefined SQ, undefined item, containing a defined SQ with a defined item. */
    tb_hdr(t, 0x0008, 0x1115, "SQ", AGORA__DICOM_UNDEFINED_LENGTH);
    tb_item(t, AGORA__DICOM_UNDEFINED_LENGTH);
    tb_str(t, 0x0008, 0x1150, "UI", "1.2.3");
    tbuf inner = {.explicit = t->explicit, .big = t->big};
    tb_str(&inner, 0x0008, 0x1155, "UI", "9.8.7");
    tbuf item = {.explicit = t->explicit, .big = t->big};
    tb_item(&item, (uint32_t)inner.n);
    tb_put(&item, inner.b, inner.n);
    tb_hdr(t, 0x0008, 0x1199, "SQ", (uint32_t)item.n);
    tb_put(t, item.b, item.n);
    tb_item_end(t);
    tb_item(t, AGORA__DICOM_UNDEFINED_LENGTH); /* an empty item */
    tb_item_end(t);
    tb_seq_end(t);
    tb_str(t, 0x0010, 0x0020, "LO", "ID1");
    free(inner.b);
    free(item.b);
}

static int count_visit(const agora__dicom_element *e, uint32_t depth, void *ctx)
{
    (void)e;
    int *c = ctx;
    c[0]++;
    if ((int)depth > c[1])
        c[1] = (int)depth;
    return 0;
}

static void test_sequences(void **state)
{
    (void)state;
    for (int enc = 0; enc < 3; enc++) {
        tbuf t = {.explicit = enc != 0, .big = enc == 2};
        tb_meta(&t, enc == 0   ? AGORA__DICOM_TS_IMPLICIT_LE
                    : enc == 1 ? AGORA__DICOM_TS_EXPLICIT_LE
                               : AGORA__DICOM_TS_EXPLICIT_BE);
        build_sequences(&t);
        agora__dicom_file *f = parse_ok(&t);
        const agora__dicom_element *sq = agora__dicom_find(&f->dataset, TAG(0x0008, 0x1115));
        assert_non_null(sq);
        assert_int_equal(sq->vr, AGORA__DICOM_VR_SQ);
        assert_int_equal(sq->n_items, 2);
        assert_true(sq->flags & AGORA__DICOM_EL_UNDEF_LENGTH);
        assert_int_equal(sq->items[1].n_elements, 0);
        const agora__dicom_element *in = agora__dicom_find(&sq->items[0], TAG(0x0008, 0x1199));
        assert_non_null(in);
        assert_int_equal(in->n_items, 1);
        char s[16];
        assert_int_equal(
            agora__dicom_get_string(&in->items[0], TAG(0x0008, 0x1155), 0, s, sizeof s), 0);
        assert_string_equal(s, "9.8.7");
        assert_int_equal(agora__dicom_get_string(&f->dataset, TAG(0x0010, 0x0020), 0, s, sizeof s),
                         0);
        assert_string_equal(s, "ID1");
        int c[2] = {0, 0};
        agora__dicom_walk(&f->dataset, count_visit, c);
        assert_int_equal(c[0], 6);
        assert_int_equal(c[1], 2);
        agora__dicom_file_free(f);
        free(t.b);
    }
}

static void test_un_undefined_as_sq(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_str(&t, 0x0009, 0x0010, "LO", "ACME");
    tb_hdr(&t, 0x0009, 0x1010, "UN", AGORA__DICOM_UNDEFINED_LENGTH);
    /* Content in Implicit VR LE whatever the file's syntax (PS3.5 6.2.2). */
    t.explicit = 0;
    tb_item(&t, AGORA__DICOM_UNDEFINED_LENGTH);
    tb_str(&t, 0x0010, 0x0020, "LO", "X1");
    tb_item_end(&t);
    tb_seq_end(&t);
    t.explicit = 1;
    tb_str(&t, 0x0010, 0x0030, "DA", "20000101");
    agora__dicom_file *f = parse_ok(&t);
    const agora__dicom_element *e = agora__dicom_find(&f->dataset, TAG(0x0009, 0x1010));
    assert_true(e->flags & AGORA__DICOM_EL_UN_AS_SQ);
    assert_int_equal(e->n_items, 1);
    char s[16];
    assert_int_equal(agora__dicom_get_string(&e->items[0], TAG(0x0010, 0x0020), 0, s, sizeof s), 0);
    assert_string_equal(s, "X1");
    assert_non_null(agora__dicom_find(&f->dataset, TAG(0x0010, 0x0030)));
    agora__dicom_file_free(f);
    free(t.b);
}

static void test_odd_length_and_order(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_el(&t, 0x0010, 0x0020, "LO", "ABC", 3); /* odd */
    tb_str(&t, 0x0008, 0x0060, "CS", "MR");    /* out of order */
    tb_str(&t, 0x0008, 0x0060, "CS", "CT");    /* duplicate */
    agora__dicom_file *f = parse_ok(&t);
    assert_true(f->warnings & AGORA__DICOM_W_ODD_LENGTH);
    assert_true(f->warnings & AGORA__DICOM_W_OUT_OF_ORDER);
    assert_true(f->warnings & AGORA__DICOM_W_DUPLICATE_TAG);
    char s[8];
    assert_int_equal(agora__dicom_get_string(&f->dataset, TAG(0x0008, 0x0060), 0, s, sizeof s), 0);
    assert_string_equal(s, "MR"); /* first in file order */
    assert_int_equal(agora__dicom_get_string(&f->dataset, TAG(0x0010, 0x0020), 0, s, sizeof s), 0);
    assert_string_equal(s, "ABC");
    agora__dicom_file_free(f);
    free(t.b);
}

/* Encapsulated pixel data with a given BOT and fragments. */
static void build_encapsulated(tbuf *t, const char *ts, uint32_t frames, const uint32_t *bot,
                               uint32_t nbot, const uint8_t *const *frag, const uint32_t *flen,
                               uint32_t nfrag)
{
    tb_meta(t, ts);
    tb_us(t, 0x0028, 0x0002, 1);
    char nf[16];
    snprintf(nf, sizeof nf, "%u", frames);
    tb_str(t, 0x0028, 0x0008, "IS", nf);
    tb_us(t, 0x0028, 0x0010, 2);
    tb_us(t, 0x0028, 0x0011, 2);
    tb_us(t, 0x0028, 0x0100, 8);
    tb_hdr(t, 0x7FE0, 0x0010, "OB", AGORA__DICOM_UNDEFINED_LENGTH);
    tb_item(t, nbot * 4);
    for (uint32_t i = 0; i < nbot; i++)
        tb_u32(t, bot[i]);
    for (uint32_t i = 0; i < nfrag; i++) {
        tb_item(t, flen[i]);
        tb_put(t, frag[i], flen[i]);
    }
    tb_seq_end(t);
}

static void frame_map(const agora__dicom_file *f, uint32_t frames, uint32_t frame,
                      uint32_t want_first, uint32_t want_count)
{
    const agora__dicom_element *pd = agora__dicom_find(&f->dataset, AGORA__DICOM_T_PIXEL_DATA);
    uint32_t first = 99, count = 99;
    agora__error err = {0};
    int rc = agora__dicom_frame_fragments(f, pd, frames, frame, &first, &count, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(first, want_first);
    assert_int_equal(count, want_count);
}

static void test_encapsulated(void **state)
{
    (void)state;
    static const uint8_t a[] = {0xFF, 0xD8, 1, 2}, b[] = {3, 4, 0xFF, 0xD9},
                         c[] = {0xFF, 0xD8, 0xFF, 0xD9};
    const uint8_t *frags[3] = {a, b, c};
    uint32_t lens[3] = {4, 4, 4};
    const char *jpeg = "1.2.840.10008.1.2.4.50";
    /* One frame per fragment, empty BOT. */
    tbuf t = {.explicit = 1};
    build_encapsulated(&t, jpeg, 3, NULL, 0, frags, lens, 3);
    agora__dicom_file *f = parse_ok(&t);
    const agora__dicom_element *pd = agora__dicom_find(&f->dataset, AGORA__DICOM_T_PIXEL_DATA);
    assert_true(pd->flags & AGORA__DICOM_EL_ENCAPSULATED);
    assert_int_equal(pd->n_fragments, 3);
    assert_int_equal(pd->bot_len, 0);
    assert_memory_equal(pd->fragments[1].data, b, 4);
    frame_map(f, 3, 2, 2, 1);
    agora__dicom_pixel_desc d;
    agora__error err = {0};
    assert_int_equal(agora__dicom_pixel_describe(f, &d, &err), 0);
    assert_true(d.encapsulated);
    assert_int_equal(d.frames, 3);
    agora__dicom_file_free(f);
    free(t.b);
    /* Two frames over three fragments, via the BOT: frame 0 = fragments 0-1. */
    uint32_t bot[2] = {0, 24};
    tbuf u = {.explicit = 1};
    build_encapsulated(&u, jpeg, 2, bot, 2, frags, lens, 3);
    f = parse_ok(&u);
    frame_map(f, 2, 0, 0, 2);
    frame_map(f, 2, 1, 2, 1);
    agora__dicom_file_free(f);
    free(u.b);
    /* No BOT: by SOI markers. */
    tbuf v = {.explicit = 1};
    build_encapsulated(&v, jpeg, 2, NULL, 0, frags, lens, 3);
    f = parse_ok(&v);
    frame_map(f, 2, 0, 0, 2);
    frame_map(f, 2, 1, 2, 1);
    agora__dicom_file_free(f);
    free(v.b);
    /* A BOT pointing into the middle of a fragment is refused. */
    uint32_t badbot[2] = {0, 5};
    tbuf w = {.explicit = 1};
    build_encapsulated(&w, jpeg, 2, badbot, 2, frags, lens, 3);
    f = parse_ok(&w);
    pd = agora__dicom_find(&f->dataset, AGORA__DICOM_T_PIXEL_DATA);
    uint32_t first, count;
    assert_int_equal(agora__dicom_frame_fragments(f, pd, 2, 1, &first, &count, &err), AGORA_EINPUT);
    agora__dicom_file_free(f);
    free(w.b);
}

static void test_extended_offset_table(void **state)
{
    (void)state;
    static const uint8_t a[] = {1, 2, 3, 4};
    const uint8_t *frags[3] = {a, a, a};
    uint32_t lens[3] = {4, 4, 4};
    tbuf t = {.explicit = 1};
    tb_meta(&t, "1.2.840.10008.1.2.4.90");
    tb_us(&t, 0x0028, 0x0002, 1);
    tb_str(&t, 0x0028, 0x0008, "IS", "2");
    tb_us(&t, 0x0028, 0x0010, 2);
    tb_us(&t, 0x0028, 0x0011, 2);
    tb_us(&t, 0x0028, 0x0100, 8);
    /* EOT: frame 0 at fragment 0, frame 1 at fragment 1 (offset 12): fragments 1-2. */
    tb_hdr(&t, 0x7FE0, 0x0001, "OV", 16);
    uint64_t off[2] = {0, 12};
    tb_put(&t, off, 16);
    tb_hdr(&t, 0x7FE0, 0x0010, "OB", AGORA__DICOM_UNDEFINED_LENGTH);
    tb_item(&t, 0);
    for (int i = 0; i < 3; i++) {
        tb_item(&t, lens[i]);
        tb_put(&t, frags[i], lens[i]);
    }
    tb_seq_end(&t);
    agora__dicom_file *f = parse_ok(&t);
    frame_map(f, 2, 0, 0, 1);
    frame_map(f, 2, 1, 1, 2);
    agora__dicom_file_free(f);
    free(t.b);
}

/* Every prefix of a valid file either parses or fails cleanly (ASan/UBSan watch). */
static void test_truncation_everywhere(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    build_sequences(&t);
    static const uint8_t a[] = {0xFF, 0xD8, 1, 2};
    tb_hdr(&t, 0x7FE0, 0x0010, "OB", AGORA__DICOM_UNDEFINED_LENGTH);
    tb_item(&t, 0);
    tb_item(&t, 4);
    tb_put(&t, a, 4);
    tb_seq_end(&t);
    int failed = 0;
    for (size_t n = 0; n < t.n; n++) {
        agora__dicom_file *f = NULL;
        agora__error err = {0};
        /* Copy into an exact-size heap block so ASan catches any over-read. */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, t.b, n);
        int rc = agora__dicom_read(p, n, NULL, &f, &err);
        if (rc) {
            failed++;
            assert_true(err.msg[0] != 0);
            assert_true(rc == AGORA_EINPUT || rc == AGORA_ELIMIT);
        }
        agora__dicom_file_free(f);
        free(p);
    }
    assert_true(failed > 100);
    free(t.b);
}

static void test_lying_lengths(void **state)
{
    (void)state;
    agora__error err = {0};
    /* Element length far past the end. */
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_hdr(&t, 0x0010, 0x0010, "UT", 0xFFFFFFF0u);
    tb_put(&t, "abcd", 4);
    assert_int_equal(parse_rc(&t, NULL, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "past the end"));
    free(t.b);
    /* Item length past its defined-length sequence. */
    tbuf u = {.explicit = 1};
    tb_meta(&u, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_hdr(&u, 0x0008, 0x1115, "SQ", 8);
    tb_item(&u, 100);
    tb_put(&u, "xxxxxxxxxxxxxxxxxxxx", 20);
    assert_int_equal(parse_rc(&u, NULL, &err), AGORA_EINPUT);
    free(u.b);
    /* Undefined length on a VR that cannot have one. */
    tbuf v = {.explicit = 1};
    tb_meta(&v, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_hdr(&v, 0x0010, 0x0010, "UT", AGORA__DICOM_UNDEFINED_LENGTH);
    tb_put(&v, "abcd", 4);
    assert_int_equal(parse_rc(&v, NULL, &err), AGORA_EINPUT);
    free(v.b);
    /* Garbage where an item should be. */
    tbuf w = {.explicit = 1};
    tb_meta(&w, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_hdr(&w, 0x0008, 0x1115, "SQ", AGORA__DICOM_UNDEFINED_LENGTH);
    tb_str(&w, 0x0010, 0x0010, "PN", "X");
    assert_int_equal(parse_rc(&w, NULL, &err), AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "expected an item"));
    free(w.b);
}

static void test_limits(void **state)
{
    (void)state;
    agora__error err = {0};
    /* 200 nested undefined-length sequences: depth limit, no stack exhaustion. */
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    for (int i = 0; i < 200; i++) {
        tb_hdr(&t, 0x0008, 0x1115, "SQ", AGORA__DICOM_UNDEFINED_LENGTH);
        tb_item(&t, AGORA__DICOM_UNDEFINED_LENGTH);
    }
    assert_int_equal(parse_rc(&t, NULL, &err), AGORA_ELIMIT);
    assert_non_null(strstr(err.msg, "nested deeper"));
    free(t.b);
    /* Element count limit. */
    tbuf u = {.explicit = 1};
    tb_meta(&u, AGORA__DICOM_TS_EXPLICIT_LE);
    for (uint16_t i = 0; i < 100; i++)
        tb_us(&u, 0x0011, (uint16_t)(0x1000 + i), i);
    agora__dicom_limits lim;
    agora__dicom_limits_default(&lim);
    lim.max_elements = 50;
    assert_int_equal(parse_rc(&u, &lim, &err), AGORA_ELIMIT);
    lim.max_elements = 500;
    assert_int_equal(parse_rc(&u, &lim, &err), 0);
    free(u.b);
    /* Fragment limit. */
    static const uint8_t a[] = {1, 2};
    const uint8_t *frags[4] = {a, a, a, a};
    uint32_t lens[4] = {2, 2, 2, 2};
    tbuf v = {.explicit = 1};
    build_encapsulated(&v, "1.2.840.10008.1.2.5", 1, NULL, 0, frags, lens, 4);
    lim.max_fragments = 3;
    assert_int_equal(parse_rc(&v, &lim, &err), AGORA_ELIMIT);
    free(v.b);
}

static void test_stop_at_pixels(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_us(&t, 0x0028, 0x0010, 1);
    tb_hdr(&t, 0x7FE0, 0x0010, "OW", 0x7FFFFFF0u); /* lies, but is never read */
    agora__dicom_limits lim;
    agora__dicom_limits_default(&lim);
    lim.flags = AGORA__DICOM_READ_STOP_AT_PIXELS;
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    assert_int_equal(agora__dicom_read(t.b, t.n, &lim, &f, &err), 0);
    assert_null(agora__dicom_find(&f->dataset, AGORA__DICOM_T_PIXEL_DATA));
    assert_non_null(agora__dicom_find(&f->dataset, TAG(0x0028, 0x0010)));
    agora__dicom_file_free(f);
    free(t.b);
}

static void test_set_remove(void **state)
{
    (void)state;
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    basic_dataset(&t);
    agora__dicom_file *f = parse_ok(&t);
    agora__error err = {0};
    uint32_t n = f->dataset.n_elements;
    assert_int_equal(agora__dicom_set(f, &f->dataset, TAG(0x0010, 0x0010),
                                      AGORA__DICOM_VR('P', 'N'), "ANON", 4, &err),
                     0);
    assert_int_equal(f->dataset.n_elements, n);
    assert_int_equal(agora__dicom_set(f, &f->dataset, TAG(0x0010, 0x0020),
                                      AGORA__DICOM_VR('L', 'O'), "P1", 2, &err),
                     0);
    assert_int_equal(f->dataset.n_elements, n + 1);
    char s[16];
    assert_int_equal(agora__dicom_get_string(&f->dataset, TAG(0x0010, 0x0010), 0, s, sizeof s), 0);
    assert_string_equal(s, "ANON");
    assert_true(agora__dicom_find(&f->dataset, TAG(0x0010, 0x0010))->flags & AGORA__DICOM_EL_OWNED);
    for (uint32_t k = 1; k < f->dataset.n_elements; k++)
        assert_true(f->dataset.elements[k - 1].tag < f->dataset.elements[k].tag);
    assert_int_equal(agora__dicom_remove(&f->dataset, TAG(0x0010, 0x0020)), 1);
    assert_int_equal(agora__dicom_remove(&f->dataset, TAG(0x0010, 0x0020)), 0);
    assert_null(agora__dicom_find(&f->dataset, TAG(0x0010, 0x0020)));
    agora__dicom_file_free(f);
    free(t.b);
}

static void test_dictionary(void **state)
{
    (void)state;
    const agora__dicom_dict_entry *d = agora__dicom_dict_lookup(TAG(0x0010, 0x0010));
    assert_non_null(d);
    assert_string_equal(d->keyword, "PatientName");
    assert_int_equal(d->vr, AGORA__DICOM_VR('P', 'N'));
    d = agora__dicom_dict_lookup(TAG(0x7FE0, 0x0010));
    assert_int_equal(d->vr, AGORA__DICOM_VR('O', 'B'));
    assert_int_equal(d->vr2, AGORA__DICOM_VR('O', 'W'));
    d = agora__dicom_dict_lookup(TAG(0x6002, 0x3000)); /* repeating group 60xx */
    assert_non_null(d);
    assert_string_equal(d->keyword, "OverlayData");
    d = agora__dicom_dict_lookup(TAG(0x0008, 0x0001));
    assert_true(d->retired);
    assert_string_equal(agora__dicom_dict_lookup(TAG(0x0028, 0x0000))->keyword, "GroupLength");
    assert_null(agora__dicom_dict_lookup(TAG(0x0009, 0x1001)));
    d = agora__dicom_dict_by_keyword("StudyInstanceUID");
    assert_non_null(d);
    assert_int_equal(d->tag, TAG(0x0020, 0x000D));
    assert_null(agora__dicom_dict_by_keyword("NoSuchKeyword"));
    assert_true(agora__dicom_dict_size() > 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explicit_le),
        cmocka_unit_test(test_implicit_le),
        cmocka_unit_test(test_explicit_be),
        cmocka_unit_test(test_deflated),
        cmocka_unit_test(test_no_preamble_no_meta),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_un_undefined_as_sq),
        cmocka_unit_test(test_odd_length_and_order),
        cmocka_unit_test(test_encapsulated),
        cmocka_unit_test(test_extended_offset_table),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_lying_lengths),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop_at_pixels),
        cmocka_unit_test(test_set_remove),
        cmocka_unit_test(test_dictionary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
