/*
 * Frames on the ingest worker's socket: 4-byte little-endian length + agora.ipc.Frame. The host
 * side of sandbox/frame.c, blocking with a deadline (poll), capped at 8 MiB inbound. The host
 * never accepts a descriptor from a worker: any that arrives is closed and fails the read.
 */
#include "ingest_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Milliseconds left until deadline (-1 = no deadline, 0 = expired). */
static int ms_left(uint64_t deadline_ns)
{
    if (deadline_ns == 0)
        return -1;
    uint64_t now = agora__now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Wait until sock is ready for events. 0 ready, -3 timeout, -1 error. */
static int wait_ready(int sock, short events, uint64_t deadline_ns, agora__error *err)
{
    for (;;) {
        int left = ms_left(deadline_ns);
        if (left == 0)
            return -3;
        struct pollfd p = {.fd = sock, .events = events};
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return agora__error_set(err, AGORA__ERR(errno), "poll on the worker socket: %s",
                                    strerror(errno)),
                   -1;
        if (n == 0)
            continue; /* re-check the deadline */
        return 0;
    }
}

int agora__ingest_send_frame(int sock, const Agora__Ipc__Frame *f, const int *fds, size_t n_fds,
                             uint64_t deadline_ns, agora__error *err)
{
    size_t len = protobuf_c_message_get_packed_size(&f->base);
    if (len == 0 || len > AGORA__INGEST_MAX_OUT_FRAME) {
        agora__error_set(err, AGORA_ELIMIT, "a request of %zu bytes exceeds the frame cap", len);
        return -1;
    }
    uint8_t *buf = malloc(len + 4);
    if (buf == NULL) {
        agora__error_set(err, AGORA_ENOMEM, "out of memory for a %zu-byte frame", len);
        return -1;
    }
    buf[0] = (uint8_t)len;
    buf[1] = (uint8_t)(len >> 8);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 24);
    protobuf_c_message_pack(&f->base, buf + 4);
    size_t off = 0, total = len + 4;
    int rc = 0;
    while (off < total) {
        int w = wait_ready(sock, POLLOUT, deadline_ns, err);
        if (w != 0) {
            if (w == -3)
                agora__error_set(err, AGORA__ETIMEDOUT, "sending to the worker timed out");
            rc = -1;
            break;
        }
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * 2)];
        } ctl;
        struct iovec iov = {.iov_base = buf + off, .iov_len = total - off};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (off == 0 && n_fds > 0) {
            memset(&ctl, 0, sizeof ctl);
            msg.msg_control = ctl.buf;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            if (c == NULL || n_fds > 2) {
                agora__error_set(err, AGORA_EINVAL, "cannot attach %zu descriptors", n_fds);
                rc = -1;
                break;
            }
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            agora__error_set(err, n < 0 ? AGORA__ERR(errno) : AGORA__EPIPE,
                             "sending to the worker: %s",
                             n < 0 ? strerror(errno) : "connection closed");
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    free(buf);
    return rc;
}

/* Read exactly len bytes. 0, -2 EOF at the very start (first), -3 timeout, -1 error. */
static int recv_all(int sock, uint8_t *buf, size_t len, int first, uint64_t deadline_ns,
                    agora__error *err)
{
    size_t got = 0;
    while (got < len) {
        int w = wait_ready(sock, POLLIN, deadline_ns, err);
        if (w != 0)
            return w;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        struct iovec iov = {.iov_base = buf + got, .iov_len = len - got};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return agora__error_set(err, AGORA__ERR(errno), "reading from the worker: %s",
                                    strerror(errno)),
                   -1;
        int got_fd = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                close(fd);
            }
            got_fd = 1;
        }
        if (got_fd || (msg.msg_flags & MSG_CTRUNC))
            return agora__error_set(err, AGORA_EINTERNAL, "the worker sent a descriptor"), -1;
        if (n == 0) {
            if (first && got == 0)
                return -2;
            return agora__error_set(err, AGORA__EPIPE, "the worker closed its socket mid-frame"),
                   -1;
        }
        got += (size_t)n;
    }
    return 0;
}

int agora__ingest_recv_frame(int sock, uint64_t deadline_ns, Agora__Ipc__Frame **out,
                             agora__error *err)
{
    *out = NULL;
    uint8_t hdr[4];
    int rc = recv_all(sock, hdr, 4, 1, deadline_ns, err);
    if (rc != 0)
        return rc;
    uint32_t len =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (len == 0 || len > AGORA__INGEST_MAX_IN_FRAME)
        return agora__error_set(err, AGORA_EINTERNAL,
                                "the worker announced a frame of %u bytes (allowed 1..%u)", len,
                                AGORA__INGEST_MAX_IN_FRAME),
               -1;
    uint8_t *body = malloc(len);
    if (body == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for a %u-byte frame", len), -1;
    rc = recv_all(sock, body, len, 0, deadline_ns, err);
    if (rc != 0) {
        free(body);
        return rc == -2 ? -1 : rc;
    }
    Agora__Ipc__Frame *f = agora__ingest_decode_frame(body, len, err);
    free(body);
    if (f == NULL)
        return -1;
    *out = f;
    return 0;
}

/* protobuf-c's allocations while unpacking, counted against a budget (total, not live: what
 * unpack frees on failure is not given back, which only makes the cap stricter). The blocks
 * are plain malloc blocks, so the frame is freed with the default allocator. */
typedef struct budget {
    size_t left;
    int refused; /* an allocation was over the budget */
} budget;

static void *budget_alloc(void *data, size_t size)
{
    budget *b = data;
    if (size > b->left) {
        b->refused = 1;
        return NULL;
    }
    b->left -= size;
    return malloc(size);
}

static void budget_free(void *data, void *p)
{
    (void)data;
    free(p);
}

Agora__Ipc__Frame *agora__ingest_decode_frame(const uint8_t *body, size_t len, agora__error *err)
{
    if (len == 0 || len > AGORA__INGEST_MAX_IN_FRAME) {
        agora__error_set(err, AGORA_EINTERNAL, "a worker frame of %zu bytes (allowed 1..%u)", len,
                         AGORA__INGEST_MAX_IN_FRAME);
        return NULL;
    }
    /* protobuf-c bounds every field by the buffer; the frame cap bounds the buffer and the
     * budget what unpacking it may allocate. */
    budget b = {AGORA__INGEST_UNPACK_BUDGET, 0};
    ProtobufCAllocator a = {budget_alloc, budget_free, &b};
    Agora__Ipc__Frame *f = agora__ipc__frame__unpack(&a, len, body);
    if (f == NULL) {
        agora__error_set(err, AGORA_EINTERNAL,
                         b.refused ? "the worker sent a frame that would take more than the unpack "
                                     "budget of memory"
                                   : "the worker sent a frame that is not a valid agora.ipc.Frame");
        return NULL;
    }
    if (f->msg_case == AGORA__IPC__FRAME__MSG__NOT_SET) {
        agora__ipc__frame__free_unpacked(f, NULL);
        agora__error_set(err, AGORA_EINTERNAL, "the worker sent an empty frame");
        return NULL;
    }
    return f;
}

void agora__ingest_frame_free(Agora__Ipc__Frame *f)
{
    if (f != NULL)
        agora__ipc__frame__free_unpacked(f, NULL);
}
