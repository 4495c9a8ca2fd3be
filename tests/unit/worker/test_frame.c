/* Frame codec: incremental parsing, caps, garbage, and the no-descriptors-from-runners rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"

static void pack_log(const char *text, uint8_t **buf, size_t *len)
{
    Agora__Ipc__Log l = AGORA__IPC__LOG__INIT;
    l.job_id = 7;
    l.level = 20;
    l.text = (char *)text;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_LOG;
    f.log = &l;
    agora__error err;
    assert_int_equal(agora__frame_pack(&f, AGORA__FRAME_HOST_TO_RUNNER_MAX, buf, len, &err), 0);
}

static void test_roundtrip_bytewise(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    pack_log("hello", &buf, &len);
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    agora__error err;
    Agora__Ipc__Frame *f = NULL;
    /* Feed one byte at a time: nothing until the last byte. */
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(agora__frame_reader_next(&r, &f, &err), 0);
        assert_int_equal(agora__frame_reader_feed(&r, buf + i, 1, &err), 0);
    }
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 1);
    assert_int_equal(f->msg_case, AGORA__IPC__FRAME__MSG_LOG);
    assert_string_equal(f->log->text, "hello");
    assert_int_equal(f->log->job_id, 7);
    agora__frame_free(&r, f);
    assert_int_equal(r.alloc.live, 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 0);
    agora__frame_reader_free(&r);
    free(buf);
}

static void test_two_frames_in_one_feed(void **state)
{
    (void)state;
    uint8_t *a, *b;
    size_t la, lb;
    pack_log("one", &a, &la);
    pack_log("two", &b, &lb);
    uint8_t both[256];
    memcpy(both, a, la);
    memcpy(both + la, b, lb);
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    agora__error err;
    Agora__Ipc__Frame *f;
    assert_int_equal(agora__frame_reader_feed(&r, both, la + lb, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 1);
    assert_string_equal(f->log->text, "one");
    agora__frame_free(&r, f);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 1);
    assert_string_equal(f->log->text, "two");
    agora__frame_free(&r, f);
    agora__frame_reader_free(&r);
    free(a);
    free(b);
}

static void test_truncated_waits(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    pack_log("truncated", &buf, &len);
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    agora__error err;
    Agora__Ipc__Frame *f;
    assert_int_equal(agora__frame_reader_feed(&r, buf, len - 1, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 0);
    assert_null(f);
    agora__frame_reader_free(&r);
    free(buf);
}

static void test_oversized_rejected_before_body(void **state)
{
    (void)state;
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    agora__error err;
    Agora__Ipc__Frame *f;
    uint8_t hdr[4] = {0x01, 0x04, 0, 0}; /* 1025 > cap of 1024 */
    assert_int_equal(agora__frame_reader_feed(&r, hdr, 4, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), AGORA_ELIMIT);
    assert_non_null(strstr(err.msg, "exceeds the cap"));
    agora__frame_reader_free(&r);
    /* Exactly at the cap is fine (body still incomplete: wait). */
    agora__frame_reader_init(&r, 1024, 0);
    uint8_t hdr2[4] = {0x00, 0x04, 0, 0};
    assert_int_equal(agora__frame_reader_feed(&r, hdr2, 4, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 0);
    agora__frame_reader_free(&r);
}

static void test_pack_refuses_over_cap(void **state)
{
    (void)state;
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    Agora__Ipc__Log l = AGORA__IPC__LOG__INIT;
    l.text = big;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_LOG;
    f.log = &l;
    uint8_t *out = NULL;
    size_t len;
    agora__error err;
    assert_int_equal(agora__frame_pack(&f, 4096, &out, &len, &err), AGORA_ELIMIT);
    assert_null(out);
    free(big);
}

static void test_garbage_and_empty(void **state)
{
    (void)state;
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    agora__error err;
    Agora__Ipc__Frame *f;
    /* A field with wire type 7 (invalid) cannot be decoded. */
    uint8_t garbage[] = {3, 0, 0, 0, 0xff, 0xff, 0xff};
    assert_int_equal(agora__frame_reader_feed(&r, garbage, sizeof garbage, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "undecodable"));
    agora__frame_reader_free(&r);

    agora__frame_reader_init(&r, 1024, 0);
    uint8_t empty[] = {0, 0, 0, 0};
    assert_int_equal(agora__frame_reader_feed(&r, empty, sizeof empty, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), AGORA_EINVAL);
    agora__frame_reader_free(&r);

    /* A valid protobuf with no oneof member set (an unknown field only). */
    agora__frame_reader_init(&r, 1024, 0);
    /* field 100 (far beyond the oneof, which grows: 10 and 11 are taken by ingest), varint 1 */
    uint8_t unknown[] = {3, 0, 0, 0, 0xa0, 0x06, 0x01};
    assert_int_equal(agora__frame_reader_feed(&r, unknown, sizeof unknown, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "no message"));
    agora__frame_reader_free(&r);
}

static void test_unpack_budget(void **state)
{
    (void)state;
    /* A Result with 20000 empty findings: 40 KB on the wire, far more once unpacked. */
    size_t n = 20000;
    size_t body = 2 + 3 /* result tag+len */ + n * 2;
    uint8_t *buf = malloc(4 + body);
    size_t inner = n * 2;
    size_t o = 4;
    buf[o++] = (8 << 3) | 2; /* Frame.result */
    /* varint length of inner */
    size_t v = inner;
    while (v >= 0x80) {
        buf[o++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    buf[o++] = (uint8_t)v;
    for (size_t i = 0; i < n; i++) {
        buf[o++] = (5 << 3) | 2; /* Result.findings, empty */
        buf[o++] = 0;
    }
    size_t plen = o - 4;
    buf[0] = (uint8_t)plen;
    buf[1] = (uint8_t)(plen >> 8);
    buf[2] = (uint8_t)(plen >> 16);
    buf[3] = 0;
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1 << 20, 0);
    agora__error err;
    Agora__Ipc__Frame *f;
    /* With the default budget it decodes... */
    assert_int_equal(agora__frame_reader_feed(&r, buf, o, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), 1);
    assert_int_equal(f->result->n_findings, n);
    agora__frame_free(&r, f);
    /* ...with a small budget the same bytes fail instead of allocating. */
    r.alloc.budget = 64 * 1024;
    assert_int_equal(agora__frame_reader_feed(&r, buf, o, &err), 0);
    assert_int_equal(agora__frame_reader_next(&r, &f, &err), AGORA_EINVAL);
    assert_int_equal(r.alloc.live, 0);
    agora__frame_reader_free(&r);
    free(buf);
}

static int count_open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void test_fds_from_runner_rejected_and_closed(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint8_t *buf;
    size_t len;
    pack_log("with fd", &buf, &len);
    int extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int before = count_open_fds();
    agora__error err;
    int fds[2] = {extra, extra};
    assert_int_equal(agora__frame_send_all(sv[1], buf, len, fds, 2, &err), 0);
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    assert_int_equal(agora__frame_reader_fill(&r, sv[0], &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "descriptor"));
    /* The two received copies were closed again. */
    assert_int_equal(count_open_fds(), before);
    agora__frame_reader_free(&r);

    /* A peer that accepts descriptors (the runner side) gets them. */
    assert_int_equal(agora__frame_send_all(sv[1], buf, len, fds, 1, &err), 0);
    agora__frame_reader_init(&r, 1024, 2);
    Agora__Ipc__Frame *f;
    assert_int_equal(agora__frame_recv(&r, sv[0], &f, &err), 1);
    int got[2];
    assert_int_equal(agora__frame_reader_take_fds(&r, got, 2), 1);
    struct stat a, b;
    assert_int_equal(fstat(got[0], &a), 0);
    assert_int_equal(fstat(extra, &b), 0);
    assert_true(a.st_ino == b.st_ino);
    close(got[0]);
    agora__frame_free(&r, f);
    agora__frame_reader_free(&r);

    /* More descriptors than allowed: all of them closed, error. */
    int three[3] = {extra, extra, extra};
    agora__frame_reader_init(&r, 1024, 2);
    before = count_open_fds();
    assert_int_equal(agora__frame_send_all(sv[1], buf, len, three, 3, &err), 0);
    assert_int_equal(agora__frame_reader_fill(&r, sv[0], &err), AGORA_EINVAL);
    assert_int_equal(count_open_fds(), before);
    agora__frame_reader_free(&r);
    close(extra);
    free(buf);
    close(sv[0]);
    close(sv[1]);
}

static void test_eof_and_eagain(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    agora__frame_reader r;
    agora__frame_reader_init(&r, 1024, 0);
    agora__error err;
    assert_int_equal(agora__frame_reader_fill(&r, sv[0], &err), AGORA__EAGAIN);
    close(sv[1]);
    assert_int_equal(agora__frame_reader_fill(&r, sv[0], &err), 0);
    agora__frame_reader_free(&r);
    close(sv[0]);
}

static void test_buffer_bound(void **state)
{
    (void)state;
    agora__frame_reader r;
    agora__frame_reader_init(&r, 16, 0);
    agora__error err;
    uint8_t big[200 * 1024] = {0};
    /* More than cap + one read chunk cannot be buffered. */
    assert_int_equal(agora__frame_reader_feed(&r, big, sizeof big, &err), AGORA_ELIMIT);
    agora__frame_reader_free(&r);
}

/* Random bytes (with plausible length prefixes) never crash the reader or leak: each feed ends
 * in frames, "need more", or an error. Runs under ASan/UBSan. */
static void test_random_bytes(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t buf[300];
        size_t n = 4 + (seed % 280);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        uint32_t len = (uint32_t)(n - 4 - (seed % 3));
        buf[0] = (uint8_t)len;
        buf[1] = (uint8_t)(len >> 8);
        buf[2] = buf[3] = 0;
        agora__frame_reader r;
        agora__frame_reader_init(&r, 1024, 0);
        agora__error err;
        assert_int_equal(agora__frame_reader_feed(&r, buf, n, &err), 0);
        for (int k = 0; k < 8; k++) {
            Agora__Ipc__Frame *f = NULL;
            int rc = agora__frame_reader_next(&r, &f, &err);
            if (rc <= 0)
                break;
            assert_non_null(f);
            agora__frame_free(&r, f);
        }
        assert_int_equal(r.alloc.live, 0);
        agora__frame_reader_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_bytewise),
        cmocka_unit_test(test_two_frames_in_one_feed),
        cmocka_unit_test(test_truncated_waits),
        cmocka_unit_test(test_oversized_rejected_before_body),
        cmocka_unit_test(test_pack_refuses_over_cap),
        cmocka_unit_test(test_garbage_and_empty),
        cmocka_unit_test(test_unpack_budget),
        cmocka_unit_test(test_fds_from_runner_rejected_and_closed),
        cmocka_unit_test(test_eof_and_eagain),
        cmocka_unit_test(test_buffer_bound),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
