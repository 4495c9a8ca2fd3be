/* Unit tests for host/http/multipart.c: the boundary from a Content-Type, parts at every chunk
 * size (one byte at a time included), truncation, the bounds, malformed framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "multipart.h"

/* What the callbacks saw: parts concatenated with a separator, their types, ends. */
typedef struct seen {
    char data[8192];
    size_t len;
    char types[8][AGORA__MULTIPART_CTYPE_MAX + 1];
    unsigned begins, ends, incomplete;
    int fail_on_begin;
} seen;

static int on_begin(void *arg, const agora__multipart_part *p)
{
    seen *s = arg;
    assert_int_equal(p->index, s->begins);
    if (s->begins < 8)
        strcpy(s->types[s->begins], p->content_type);
    s->begins++;
    return s->fail_on_begin && s->begins == 2 ? AGORA_ECANCELLED : 0;
}

static int on_data(void *arg, const uint8_t *p, size_t n)
{
    seen *s = arg;
    assert_true(n > 0);
    assert_true(s->len + n < sizeof s->data);
    memcpy(s->data + s->len, p, n);
    s->len += n;
    return 0;
}

static int on_end(void *arg, int complete)
{
    seen *s = arg;
    s->ends++;
    if (!complete)
        s->incomplete++;
    s->data[s->len++] = '|';
    return 0;
}

static const agora__multipart_cb cb = {on_begin, on_data, on_end};
static const agora__multipart_limits lim = {16, 512, 8, 1u << 20};

/* Feed body in chunks of `chunk` bytes (0: all at once); the result of finish, or of the
 * first failing feed. */
static int run(const char *boundary, const void *body, size_t n, size_t chunk,
               const agora__multipart_limits *l, seen *s, agora__multipart_fail *why)
{
    memset(s->data, 0, sizeof s->data);
    s->len = 0;
    s->begins = s->ends = s->incomplete = 0;
    agora__multipart *m = NULL;
    agora__error err = {0};
    assert_int_equal(agora__multipart_create(boundary, l ? l : &lim, &cb, s, &m, &err), 0);
    const uint8_t *p = body;
    int rc = 0;
    size_t at = 0;
    while (rc == 0 && at < n) {
        size_t k = chunk == 0 || chunk > n - at ? n - at : chunk;
        rc = agora__multipart_feed(m, p + at, k, &err);
        at += k;
    }
    if (rc == 0)
        rc = agora__multipart_finish(m, &err);
    else /* sticky: finish says the same */
        assert_int_equal(agora__multipart_finish(m, &err), rc);
    if (why)
        *why = agora__multipart_failure(m);
    agora__multipart_destroy(m);
    return rc;
}

static const char two_parts[] =
    "preamble text to ignore\r\n"
    "--BnD\r\n"
    "Content-Type: application/dicom\r\n"
    "Content-Location: x\r\n"
    "\r\n"
    "first\r\n--Bn part body with \r\n-- and \r\n--BnX lookalikes\r\n"
    "--BnD  \t\r\n" /* transport padding */
    "content-type:application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n"
    "\r\n"
    "\r\n\r\r\n-\r\n--B\r\n--Bn"
    "\r\n--BnD--\r\n"
    "epilogue --BnD junk";

static const char two_parts_data[] = "first\r\n--Bn part body with \r\n-- and \r\n--BnX lookalikes|"
                                     "\r\n\r\r\n-\r\n--B\r\n--Bn|";

static void parts_at_every_chunk_size(void **state)
{
    (void)state;
    seen s = {0};
    size_t n = strlen(two_parts);
    for (size_t chunk = 0; chunk <= n; chunk++) {
        assert_int_equal(run("BnD", two_parts, n, chunk, NULL, &s, NULL), 0);
        assert_int_equal(s.begins, 2);
        assert_int_equal(s.ends, 2);
        assert_int_equal(s.incomplete, 0);
        assert_string_equal(s.data, two_parts_data);
        assert_string_equal(s.types[0], "application/dicom");
        assert_string_equal(s.types[1], "application/dicom; transfer-syntax=1.2.840.10008.1.2.1");
    }
}

static void body_starting_with_delimiter_and_binary(void **state)
{
    (void)state;
    /* No preamble; data with NULs, CRs and a boundary split across every chunk edge. */
    uint8_t body[600];
    size_t n = 0;
    const char *h = "--x\r\n\r\n";
    memcpy(body, h, strlen(h));
    n = strlen(h);
    uint8_t payload[300];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i % 7 == 0 ? '\r' : i % 5 == 0 ? '\n' : i % 3 == 0 ? 0 : '-');
    memcpy(body + n, payload, sizeof payload);
    n += sizeof payload;
    const char *t = "\r\n--x--";
    memcpy(body + n, t, strlen(t));
    n += strlen(t);
    seen s = {0};
    for (size_t chunk = 1; chunk < 40; chunk++) {
        assert_int_equal(run("x", body, n, chunk, NULL, &s, NULL), 0);
        assert_int_equal(s.begins, 1);
        assert_string_equal(s.types[0], "");
        assert_int_equal(s.len, sizeof payload + 1);
        assert_memory_equal(s.data, payload, sizeof payload);
    }
}

static void truncated(void **state)
{
    (void)state;
    seen s = {0};
    agora__multipart_fail why;
    size_t n = strlen(two_parts);
    /* Cut everywhere before the close delimiter is complete: never success. */
    const char *close = strstr(two_parts, "\r\n--BnD--") + strlen("\r\n--BnD--");
    size_t complete_at = (size_t)(close - two_parts);
    for (size_t cut = 0; cut < complete_at; cut++) {
        int rc = run("BnD", two_parts, cut, 1, NULL, &s, &why);
        assert_int_equal(rc, AGORA__EPROTO);
        assert_int_equal(why, AGORA__MULTIPART_TRUNCATED);
        assert_int_equal(s.begins, s.ends); /* an open part is ended, as incomplete */
        assert_true(s.incomplete <= 1);
    }
    assert_int_equal(run("BnD", two_parts, complete_at, 1, NULL, &s, &why), 0);
    assert_int_equal(run("BnD", two_parts, n, 0, NULL, &s, &why), 0);
    /* A cut in the middle of part 2's data: part 1 complete, part 2 incomplete. */
    const char *mid = strstr(two_parts, "\r\r\n-");
    assert_int_equal(run("BnD", two_parts, (size_t)(mid - two_parts), 3, NULL, &s, &why),
                     AGORA__EPROTO);
    assert_int_equal(s.begins, 2);
    assert_int_equal(s.incomplete, 1);
    /* Nothing but a preamble. */
    assert_int_equal(run("BnD", "no boundary here", 16, 0, NULL, &s, &why), AGORA__EPROTO);
    assert_int_equal(s.begins, 0);
}

static void bounds(void **state)
{
    (void)state;
    seen s = {0};
    agora__multipart_fail why;
    size_t n = strlen(two_parts);
    /* Too many parts: the second one is refused. */
    agora__multipart_limits l = lim;
    l.max_parts = 1;
    assert_int_equal(run("BnD", two_parts, n, 1, &l, &s, &why), AGORA_ELIMIT);
    assert_int_equal(why, AGORA__MULTIPART_LIMIT);
    assert_int_equal(s.begins, 1);
    assert_int_equal(s.ends, 1);
    /* Header bytes: the first part's headers are 57 bytes. */
    l = lim;
    l.max_header_bytes = 40;
    assert_int_equal(run("BnD", two_parts, n, 7, &l, &s, &why), AGORA_ELIMIT);
    assert_int_equal(s.begins, 0);
    /* Header count. */
    l = lim;
    l.max_headers = 1;
    assert_int_equal(run("BnD", two_parts, n, 0, &l, &s, &why), AGORA_ELIMIT);
    /* Total size. */
    l = lim;
    l.max_total = n - 1;
    assert_int_equal(run("BnD", two_parts, n, 5, &l, &s, &why), AGORA_ELIMIT);
    assert_int_equal(why, AGORA__MULTIPART_LIMIT);
    l.max_total = n;
    assert_int_equal(run("BnD", two_parts, n, 5, &l, &s, &why), 0);
    /* A header line longer than the line buffer. */
    char big[3000];
    int k = snprintf(big, sizeof big, "--b\r\nX-Long: ");
    memset(big + k, 'a', 2000);
    strcpy(big + k + 2000, "\r\n\r\nd\r\n--b--");
    l = lim;
    l.max_header_bytes = 4000;
    assert_int_equal(run("b", big, strlen(big), 0, &l, &s, &why), AGORA_ELIMIT);
}

static void malformed(void **state)
{
    (void)state;
    seen s = {0};
    agora__multipart_fail why;
    const char *cases[] = {
        "--b\r\nContent-Type application/dicom\r\n\r\nd\r\n--b--",     /* no colon */
        "--b\r\n: x\r\n\r\nd\r\n--b--",                                /* no name */
        "--b\r\nA: x\r\n folded\r\n\r\nd\r\n--b--",                    /* obs-fold */
        "--b\r\nA: x\nB: y\r\n\r\nd\r\n--b--",                         /* bare LF */
        "--b\r\nA: \x01\r\n\r\nd\r\n--b--",                            /* control byte */
        "--bX\r\n\r\nd\r\n--b--",                                      /* junk after delim */
        "--b\r\n\r\nd\r\n--b-x",                                       /* half a close */
        "--b\r\nContent-Type: a\r\nContent-Type: b\r\n\r\nd\r\n--b--", /* two types */
        "--b \r \n\r\nd\r\n--b--",                                     /* CR not LF */
        "--b\r\nBad Name: x\r\n\r\nd\r\n--b--",                        /* space in a name */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t chunk = 0; chunk < 4; chunk++) {
            int rc = run("b", cases[i], strlen(cases[i]), chunk, NULL, &s, &why);
            if (rc != AGORA__EPROTO || why != AGORA__MULTIPART_MALFORMED)
                fail_msg("case %zu chunk %zu: rc %d why %d", i, chunk, rc, (int)why);
            if (s.begins != s.ends) /* a part open when the parser stopped is ended */
                fail_msg("case %zu chunk %zu: %u begins, %u ends", i, chunk, s.begins, s.ends);
        }
    }
    /* A callback's stop is sticky and reported as such. */
    s.fail_on_begin = 1;
    assert_int_equal(run("BnD", two_parts, strlen(two_parts), 1, NULL, &s, &why), AGORA_ECANCELLED);
    assert_int_equal(why, AGORA__MULTIPART_CALLBACK);
    s.fail_on_begin = 0;
    /* Bad boundaries at create. */
    agora__multipart *m = NULL;
    agora__error err = {0};
    assert_int_equal(agora__multipart_create("", &lim, &cb, &s, &m, &err), AGORA_EINVAL);
    assert_int_equal(agora__multipart_create("a\rb", &lim, &cb, &s, &m, &err), AGORA_EINVAL);
    char big[AGORA__MULTIPART_BOUNDARY_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(agora__multipart_create(big, &lim, &cb, &s, &m, &err), AGORA_EINVAL);
    big[AGORA__MULTIPART_BOUNDARY_MAX] = 0;
    assert_int_equal(agora__multipart_create(big, &lim, &cb, &s, &m, &err), 0);
    agora__multipart_destroy(m);
}

static void boundary_from_content_type(void **state)
{
    (void)state;
    char b[AGORA__MULTIPART_BOUNDARY_MAX + 1];
    int ok;
    agora__error err = {0};
    assert_int_equal(
        agora__multipart_boundary("multipart/related; type=\"application/dicom\"; boundary=abc-123",
                                  b, &ok, &err),
        0);
    assert_string_equal(b, "abc-123");
    assert_int_equal(ok, 1);
    assert_int_equal(agora__multipart_boundary("Multipart/Related;boundary=\"a b:c\";"
                                               "type=application/DICOM",
                                               b, &ok, &err),
                     0);
    assert_string_equal(b, "a b:c");
    assert_int_equal(ok, 1);
    assert_int_equal(
        agora__multipart_boundary("multipart/related; type=\"application/dicom+json\"; boundary=x",
                                  b, &ok, &err),
        0);
    assert_int_equal(ok, 0);
    assert_int_equal(agora__multipart_boundary("application/dicom", b, &ok, &err),
                     AGORA_EUNSUPPORTED);
    assert_int_equal(agora__multipart_boundary("multipart/form-data; boundary=x", b, &ok, &err),
                     AGORA_EUNSUPPORTED);
    assert_int_equal(agora__multipart_boundary(NULL, b, &ok, &err), AGORA_EUNSUPPORTED);
    const char *bad[] = {
        "multipart/related",                    /* no boundary */
        "multipart/related; boundary=",         /* empty */
        "multipart/related; boundary=\"abc",    /* unterminated */
        "multipart/related; boundary=\"a\rb\"", /* CR */
        "multipart/related; boundary=\"ends with space \"",
        "multipart/related; boundary=a; boundary=b", /* two */
        "multipart/related boundary=a",              /* no ';' */
        "multipart/related; =a",                     /* no name */
        ("multipart/related; boundary=\"01234567890123456789012345678901234567890123456789"
         "01234567890123456789012345678901234567890123456789012345678901234567890\""), /* 121 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (agora__multipart_boundary(bad[i], b, &ok, &err) != AGORA__EPROTO)
            fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parts_at_every_chunk_size),
        cmocka_unit_test(body_starting_with_delimiter_and_binary),
        cmocka_unit_test(truncated),
        cmocka_unit_test(bounds),
        cmocka_unit_test(malformed),
        cmocka_unit_test(boundary_from_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
