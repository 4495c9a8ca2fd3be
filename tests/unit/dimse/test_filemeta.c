/* Unit tests for host/dimse/filemeta.c, the one Part 10 meta reader (the senders' files and the
 * STOW-RS parts): whole and fed at every chunk size, what it refuses and with which message, and
 * reading a file from disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "filemeta.h"

#define CT  "1.2.840.10008.5.1.4.1.1.2"
#define SOP "1.2.3.4.5.6.7.8"
#define ELE "1.2.840.10008.1.2.1"

static size_t el(uint8_t *o, uint16_t elem, const char *vr, const void *v, size_t n)
{
    size_t at = 0;
    o[at++] = 2;
    o[at++] = 0;
    o[at++] = (uint8_t)elem;
    o[at++] = (uint8_t)(elem >> 8);
    o[at++] = (uint8_t)vr[0];
    o[at++] = (uint8_t)vr[1];
    if (strcmp(vr, "OB") == 0 || strcmp(vr, "UN") == 0) {
        o[at++] = 0;
        o[at++] = 0;
        for (int i = 0; i < 4; i++)
            o[at++] = (uint8_t)(n >> (8 * i));
    } else {
        o[at++] = (uint8_t)n;
        o[at++] = (uint8_t)(n >> 8);
    }
    memcpy(o + at, v, n);
    return at + n;
}

/* A Part 10 head with the given elements after the group length, then "DATASET". */
static size_t file(uint8_t *o, const uint8_t *elems, size_t n, int bad_length)
{
    memset(o, 0, 128);
    memcpy(o + 128, "DICM", 4);
    uint32_t g = (uint32_t)n + (bad_length ? 1u : 0u);
    const uint8_t gl[12] = {2,
                            0,
                            0,
                            0,
                            'U',
                            'L',
                            4,
                            0,
                            (uint8_t)g,
                            (uint8_t)(g >> 8),
                            (uint8_t)(g >> 16),
                            (uint8_t)(g >> 24)};
    memcpy(o + 132, gl, 12);
    memcpy(o + 144, elems, n);
    memcpy(o + 144 + n, "DATASET", 7);
    return 144 + n + 7;
}

static size_t good_elems(uint8_t *e)
{
    size_t n = 0;
    n += el(e + n, 0x0001, "OB", "\0\1", 2);
    n += el(e + n, 0x0002, "UI", CT "\0", strlen(CT) + 1);
    n += el(e + n, 0x0003, "UI", SOP, strlen(SOP));
    n += el(e + n, 0x0010, "UI", ELE "\0", strlen(ELE) + 1);
    n += el(e + n, 0x0012, "UI", "1.2.3\0", 6);
    n += el(e + n, 0x0013, "SH", "TEST  ", 6);
    n += el(e + n, 0x0016, "AE", "MODALITY", 8);
    return n;
}

static void whole_and_bytewise(void **state)
{
    (void)state;
    uint8_t e[512], f[1024];
    size_t ne = good_elems(e), nf = file(f, e, ne, 0);
    agora__filemeta m;
    agora__error err = {0};
    assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), 0);
    assert_string_equal(m.sop_class, CT);
    assert_string_equal(m.sop_instance, SOP);
    assert_string_equal(m.ts, ELE);
    assert_int_equal(m.data_offset, 144 + ne);
    for (size_t chunk = 1; chunk <= nf; chunk++) {
        agora__filemeta_reader r;
        agora__filemeta_init(&r);
        size_t at = 0, used = 0;
        int rc = AGORA__FILEMETA_MORE;
        memset(&m, 0, sizeof m);
        while (rc == AGORA__FILEMETA_MORE && at < nf) {
            size_t k = chunk > nf - at ? nf - at : chunk;
            rc = agora__filemeta_feed(&r, f + at, k, &used, &m, &err);
            assert_true(used <= k);
            at += used;
            if (rc == AGORA__FILEMETA_MORE)
                assert_int_equal(used, k);
        }
        assert_int_equal(rc, AGORA__FILEMETA_DONE);
        assert_int_equal(at, 144 + ne); /* exactly the meta: "DATASET" is left */
        assert_memory_equal(f + at, "DATASET", 7);
        assert_string_equal(m.sop_instance, SOP);
        /* Done is sticky and takes nothing more. */
        assert_int_equal(agora__filemeta_feed(&r, f, 3, &used, &m, &err), AGORA__FILEMETA_DONE);
        assert_int_equal(used, 0);
    }
}

static void refusals(void **state)
{
    (void)state;
    uint8_t e[512], f[1024];
    agora__filemeta m;
    agora__error err = {0};
    size_t ne = good_elems(e), nf;
    /* No DICM. */
    nf = file(f, e, ne, 0);
    f[129] = 'X';
    assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "Part 10"));
    /* Truncated anywhere inside the meta. */
    nf = file(f, e, ne, 0);
    for (size_t cut = 0; cut < 144 + ne; cut++)
        assert_int_equal(agora__filemeta_parse(f, cut, &m, &err), AGORA_EINVAL);
    /* The group length one past the elements: an element header is cut. */
    nf = file(f, e, ne, 1);
    assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
    /* A group length over 16 KiB is refused on the head, before anything is buffered. */
    nf = file(f, e, ne, 0);
    f[140] = 0;
    f[141] = 0;
    f[142] = 1; /* 65536 */
    agora__filemeta_reader r;
    agora__filemeta_init(&r);
    size_t used;
    assert_int_equal(agora__filemeta_feed(&r, f, 200, &used, &m, &err), AGORA_EINVAL);
    assert_int_equal(agora__filemeta_feed(&r, f, 1, &used, &m, &err), AGORA_EINVAL); /* sticky */
    /* No group length first: a STOW-RS part (the incremental reader) is refused... */
    {
        uint8_t g[1024];
        memset(g, 0, 128);
        memcpy(g + 128, "DICM", 4);
        memcpy(g + 132, e, ne);
        memcpy(g + 132 + ne, "DATASET", 7);
        size_t ng = 132 + ne + 7;
        agora__filemeta_reader r0;
        agora__filemeta_init(&r0);
        size_t u0;
        assert_int_equal(agora__filemeta_feed(&r0, g, ng, &u0, &m, &err), AGORA_EINVAL);
        assert_non_null(strstr(err.msg, "group length"));
        /* ...a file on disk is read by stepping over the group's elements, with the same checks. */
        assert_int_equal(agora__filemeta_parse(g, ng, &m, &err), 0);
        assert_int_equal(m.data_offset, 132 + ne);
        assert_string_equal(m.sop_instance, SOP);
        /* Cut anywhere before the end of the transfer syntax: refused (a cut after it, at an
         * element boundary, is indistinguishable from a data set starting there). */
        size_t ts_end = 132 + 14 + 8 + strlen(CT) + 1 + 8 + strlen(SOP) + 8 + strlen(ELE) + 1;
        for (size_t cut = 133; cut < ts_end; cut++)
            assert_int_equal(agora__filemeta_parse(g, cut, &m, &err), AGORA_EINVAL);
        g[132 + 8 + 2 + 8 + 4] = 'x'; /* a letter in the SOP class UID */
        assert_int_equal(agora__filemeta_parse(g, ng, &m, &err), AGORA_EINVAL);
    }
    /* Each required UID missing, malformed, repeated; an element of another group. */
    struct {
        uint16_t elem;
        const char *vr, *value;
    } bad[] = {
        {0x0002, "UI", "1.2..3"},
        {0x0002, "UI", ".1.2"},
        {0x0003, "UI", "1.2.x"},
        {0x0010, "UI", "1.2."},
        {0x0003, "UI", ""},
        {0x0003, "SH", "1.2.3"},
        {0x0003, "UI", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = 0;
        uint8_t x[512];
        const char *cls = bad[i].elem == 0x0002 ? bad[i].value : CT;
        const char *ins = bad[i].elem == 0x0003 ? bad[i].value : SOP;
        const char *ts = bad[i].elem == 0x0010 ? bad[i].value : ELE;
        n += el(x + n, 0x0002, bad[i].elem == 0x0002 ? bad[i].vr : "UI", cls, strlen(cls));
        n += el(x + n, 0x0003, bad[i].elem == 0x0003 ? bad[i].vr : "UI", ins, strlen(ins));
        n += el(x + n, 0x0010, bad[i].elem == 0x0010 ? bad[i].vr : "UI", ts, strlen(ts));
        nf = file(f, x, n, 0);
        if (agora__filemeta_parse(f, nf, &m, &err) != AGORA_EINVAL)
            fail_msg("accepted bad case %zu", i);
        assert_null(strstr(err.msg, "1.2")); /* no value from the input in a message */
    }
    for (int missing = 0; missing < 3; missing++) {
        size_t n = 0;
        uint8_t x[512];
        if (missing != 0)
            n += el(x + n, 0x0002, "UI", CT, strlen(CT));
        if (missing != 1)
            n += el(x + n, 0x0003, "UI", SOP, strlen(SOP));
        if (missing != 2)
            n += el(x + n, 0x0010, "UI", ELE, strlen(ELE));
        nf = file(f, x, n, 0);
        assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
        static const char *const named[3] = {"SOP Class", "SOP Instance", "Transfer Syntax"};
        assert_non_null(strstr(err.msg, named[missing]));
    }
    {
        size_t n = good_elems(e);
        n += el(e + n, 0x0003, "UI", SOP, strlen(SOP)); /* repeated */
        nf = file(f, e, n, 0);
        assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
        n = good_elems(e);
        n += el(e + n, 0x0100, "UI", SOP, strlen(SOP));
        e[n - 6 - strlen(SOP) - 2] = 8; /* group 0008 inside the meta's length */
        nf = file(f, e, n, 0);
        assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
    }
    /* An OB element whose 4-byte length runs past the group. */
    {
        size_t n = good_elems(e);
        n += el(e + n, 0x0102, "OB", "ab", 2);
        e[n - 2 - 4] = 0xFF; /* length 255 */
        nf = file(f, e, n, 0);
        assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
    }
    /* Implicit VR inside the meta (lower-case bytes where the VR goes). */
    {
        size_t n = good_elems(e);
        e[4] = 'o';
        nf = file(f, e, n, 0);
        assert_int_equal(agora__filemeta_parse(f, nf, &m, &err), AGORA_EINVAL);
    }
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* agora__filemeta_read: the senders' entry point reads a file's head through the same reader. */
static void read_from_disk(void **state)
{
    (void)state;
    char dir[] = "/tmp/agora-filemeta-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/a.dcm", dir);
    uint8_t e[512], f[1024];
    size_t ne = good_elems(e), nf = file(f, e, ne, 0);
    write_file(path, f, nf);
    agora__filemeta m;
    agora__error err = {0};
    assert_int_equal(agora__filemeta_read(path, &m, &err), 0);
    assert_string_equal(m.sop_class, CT);
    assert_string_equal(m.sop_instance, SOP);
    assert_string_equal(m.ts, ELE);
    assert_int_equal(m.data_offset, 144 + ne);
    assert_int_equal(m.file_size, nf);
    /* A file that ends inside its meta group, or before its preamble does. */
    write_file(path, f, 144 + ne - 1);
    assert_int_equal(agora__filemeta_read(path, &m, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "truncated"));
    write_file(path, f, 60);
    assert_int_equal(agora__filemeta_read(path, &m, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "Part 10"));
    /* A file whose head is longer than the reader's chunk: a private OB element of 6000 bytes. */
    static uint8_t big_e[8192], big_f[8400];
    size_t nb = good_elems(big_e);
    static uint8_t priv[6000];
    nb += el(big_e + nb, 0x0102, "OB", priv, sizeof priv);
    size_t nbf = file(big_f, big_e, nb, 0);
    write_file(path, big_f, nbf);
    assert_int_equal(agora__filemeta_read(path, &m, &err), 0);
    assert_int_equal(m.data_offset, 144 + nb);
    /* Not a regular file; no file. */
    assert_int_equal(agora__filemeta_read(dir, &m, &err), AGORA_EINVAL);
    assert_int_equal(unlink(path), 0);
    assert_true(agora__filemeta_read(path, &m, &err) < 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_and_bytewise),
        cmocka_unit_test(refusals),
        cmocka_unit_test(read_from_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
