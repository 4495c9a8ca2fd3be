/* Unit tests for the runner's frame codec: caps, empty/garbage frames, descriptor rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2];

static int setup(void **state)
{
    (void)state;
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

static int teardown(void **state)
{
    (void)state;
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static int open_fd_count(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void put_raw(const void *p, size_t n)
{
    assert_int_equal(write(sv[1], p, n), (ssize_t)n);
}

static void put_len(uint32_t len)
{
    uint8_t h[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    put_raw(h, 4);
}

static int read_one(Agora__Ipc__Frame **f, size_t *n_fds, char *why)
{
    int fds[AGORA__FRAME_MAX_FDS];
    return agora__runner_frame_read(sv[0], AGORA__FRAME_HOST_TO_RUNNER_MAX, f, fds, n_fds, why,
                                    256);
}

static void test_roundtrip(void **state)
{
    (void)state;
    Agora__Ipc__Cancel c = AGORA__IPC__CANCEL__INIT;
    c.job_id = 42;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_CANCEL;
    f.cancel = &c;
    assert_int_equal(agora__runner_frame_write(sv[1], &f, 1024), 0);
    Agora__Ipc__Frame *got;
    size_t n;
    char why[256];
    assert_int_equal(read_one(&got, &n, why), 0);
    assert_int_equal(got->msg_case, AGORA__IPC__FRAME__MSG_CANCEL);
    assert_int_equal(got->cancel->job_id, 42);
    assert_int_equal(n, 0);
    agora__ipc__frame__free_unpacked(got, NULL);
}

static void test_write_cap(void **state)
{
    (void)state;
    Agora__Ipc__Log l = AGORA__IPC__LOG__INIT;
    char text[200];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    l.text = text;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_LOG;
    f.log = &l;
    assert_int_equal(agora__runner_frame_write(sv[1], &f, 100), -EMSGSIZE);
}

static void test_zero_and_oversized(void **state)
{
    (void)state;
    Agora__Ipc__Frame *got;
    size_t n;
    char why[256];
    put_len(0);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "0 bytes"));
    put_len(AGORA__FRAME_HOST_TO_RUNNER_MAX + 1);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "allowed"));
}

static void test_garbage_and_empty(void **state)
{
    (void)state;
    Agora__Ipc__Frame *got;
    size_t n;
    char why[256];
    put_len(5);
    put_raw("\xff\xff\xff\xff\xff", 5);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "not a valid"));
    /* A field number that is not in Frame: parses, but sets no message. */
    put_len(2);
    put_raw("\x78\x01", 2);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "empty frame"));
}

static void test_eof(void **state)
{
    (void)state;
    Agora__Ipc__Frame *got;
    size_t n;
    char why[256];
    put_len(10);
    put_raw("\x2a", 1);
    shutdown(sv[1], SHUT_WR);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "middle of a frame"));
    assert_int_equal(read_one(&got, &n, why), -2);
}

static void send_with_fds(const Agora__Ipc__Frame *f, int *fds, size_t n)
{
    uint8_t buf[256];
    size_t len = protobuf_c_message_pack(&f->base, buf + 4);
    buf[0] = (uint8_t)len;
    buf[1] = buf[2] = buf[3] = 0;
    struct iovec iov = {buf, len + 4};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n) {
        msg.msg_control = ctl.b;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    assert_int_equal(sendmsg(sv[1], &msg, 0), (ssize_t)(len + 4));
}

static void test_fd_rules(void **state)
{
    (void)state;
    Agora__Ipc__Frame *got;
    size_t n;
    char why[256];
    int m[3];
    for (int i = 0; i < 3; i++)
        m[i] = memfd_create("t", MFD_CLOEXEC);
    int before = open_fd_count();
    /* Cancel must carry no descriptor: refused, and the received one is closed. */
    Agora__Ipc__Cancel c = AGORA__IPC__CANCEL__INIT;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_CANCEL;
    f.cancel = &c;
    send_with_fds(&f, m, 1);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "descriptors"));
    assert_int_equal(open_fd_count(), before);
    /* Job must carry exactly two. */
    Agora__Ipc__Job j = AGORA__IPC__JOB__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_JOB;
    f.job = &j;
    send_with_fds(&f, m, 1);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_int_equal(open_fd_count(), before);
    /* Three: refused while reading the header; the stream is then out of step (the runner
     * ends the worker on any protocol error), so the rest runs on a fresh pair. */
    send_with_fds(&f, m, 3);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_non_null(strstr(why, "more than"));
    teardown(NULL);
    assert_int_equal(setup(NULL), 0);
    assert_int_equal(open_fd_count(), before);
    send_with_fds(&f, m, 2);
    int fds[AGORA__FRAME_MAX_FDS];
    assert_int_equal(agora__runner_frame_read(sv[0], AGORA__FRAME_HOST_TO_RUNNER_MAX, &got, fds, &n,
                                              why, sizeof why),
                     0);
    assert_int_equal(n, 2);
    close(fds[0]);
    close(fds[1]);
    agora__ipc__frame__free_unpacked(got, NULL);
    for (int i = 0; i < 3; i++)
        close(m[i]);
}

/* ForkJob (protocol 2) carries exactly the job process's channel: none or two are refused and
 * closed; one is handed over. */
static void test_fork_job_fds(void **state)
{
    (void)state;
    Agora__Ipc__Frame *got;
    size_t n;
    char why[256];
    int m[2];
    for (int i = 0; i < 2; i++)
        m[i] = memfd_create("t", MFD_CLOEXEC);
    int before = open_fd_count();
    Agora__Ipc__ForkJob fj = AGORA__IPC__FORK_JOB__INIT;
    fj.job_id = 7;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_FORK_JOB;
    f.fork_job = &fj;
    send_with_fds(&f, m, 0);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_int_equal(open_fd_count(), before);
    send_with_fds(&f, m, 2);
    assert_int_equal(read_one(&got, &n, why), -1);
    assert_int_equal(open_fd_count(), before);
    send_with_fds(&f, m, 1);
    int fds[AGORA__FRAME_MAX_FDS];
    assert_int_equal(agora__runner_frame_read(sv[0], AGORA__FRAME_HOST_TO_RUNNER_MAX, &got, fds, &n,
                                              why, sizeof why),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(got->fork_job->job_id, 7);
    close(fds[0]);
    agora__ipc__frame__free_unpacked(got, NULL);
    for (int i = 0; i < 2; i++)
        close(m[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_and_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_job_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_rules, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
