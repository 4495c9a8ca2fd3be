/*
 * Frame I/O on the host socket: the framing of host/proto/proto.h (a 4-byte little-endian
 * length, then a serialized agora.ipc.Frame), with its caps and descriptor count. The runner's
 * own blocking reader, not host/proto's codec: it runs under the seccomp policy (no sendmsg),
 * reports with a `why` buffer and does not link the host's error module.
 * Reads are bounded (the caller passes the cap) and collect SCM_RIGHTS descriptors from any part
 * of the frame; a frame carrying more or fewer descriptors than its message type expects is a
 * protocol error and every received descriptor is closed. Writes never carry descriptors: the
 * runner never sends one to the host.
 */
#include "runner.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void close_fds(int *fds, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        close(fds[i]);
    *n = 0;
}

/* Receive exactly len bytes, collecting descriptors. Returns 0, -2 on EOF at offset 0 of the
 * frame, or -1 with why set. */
static int recv_all(int fd, uint8_t *buf, size_t len, int first, int *fds, size_t *n_fds, char *why,
                    size_t why_len)
{
    size_t got = 0;
    while (got < len) {
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * (AGORA__FRAME_MAX_FDS + 1))];
        } ctl;
        struct iovec iov = {.iov_base = buf + got, .iov_len = len - got};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "reading from the host socket failed: %s", strerror(errno));
            return -1;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int tmp[AGORA__FRAME_MAX_FDS + 1];
            if (k > AGORA__FRAME_MAX_FDS + 1)
                k = AGORA__FRAME_MAX_FDS + 1;
            memcpy(tmp, CMSG_DATA(c), k * sizeof(int));
            for (size_t i = 0; i < k; i++) {
                if (*n_fds < AGORA__FRAME_MAX_FDS)
                    fds[(*n_fds)++] = tmp[i];
                else {
                    close(tmp[i]);
                    snprintf(why, why_len, "the host sent more than %d descriptors with a frame",
                             AGORA__FRAME_MAX_FDS);
                    return -1;
                }
            }
        }
        if (msg.msg_flags & MSG_CTRUNC) {
            snprintf(why, why_len, "the host sent more descriptors than a frame may carry");
            return -1;
        }
        if (n == 0) {
            if (first && got == 0)
                return -2;
            snprintf(why, why_len, "the host closed the socket in the middle of a frame");
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

size_t agora__runner_frame_expected_fds(const Agora__Ipc__Frame *frame)
{
    switch (frame->msg_case) {
    case AGORA__IPC__FRAME__MSG_SETUP:
        return frame->setup->mode == AGORA__IPC__MODE__MODE_PLUGIN ? 1 : 0;
    case AGORA__IPC__FRAME__MSG_JOB:
        return 2;
    case AGORA__IPC__FRAME__MSG_FORK_JOB:
        return 1; /* the job process's end of the job's own socketpair */
    case AGORA__IPC__FRAME__MSG_ASSET:
        return 1; /* the asset's sealed memfd */
    case AGORA__IPC__FRAME__MSG_INGEST_REQUEST:
        /* the input file, and for DECODE, DEID_WRITE and DUMP the output memfd */
        switch (frame->ingest_request->op) {
        case AGORA__IPC__INGEST_OP__INGEST_DECODE:
        case AGORA__IPC__INGEST_OP__INGEST_DEID_WRITE:
        case AGORA__IPC__INGEST_OP__INGEST_DUMP:
            return 2;
        default:
            return 1;
        }
    default:
        return 0;
    }
}

Agora__Ipc__Frame *agora__runner_frame_decode(const uint8_t *buf, size_t len, char *why,
                                              size_t why_len)
{
    Agora__Ipc__Frame *f = agora__ipc__frame__unpack(NULL, len, buf);
    if (f == NULL) {
        snprintf(why, why_len, "the host sent a frame that is not a valid agora.ipc.Frame");
        return NULL;
    }
    if (f->msg_case == AGORA__IPC__FRAME__MSG__NOT_SET) {
        agora__ipc__frame__free_unpacked(f, NULL);
        snprintf(why, why_len, "the host sent an empty frame (no message set)");
        return NULL;
    }
    return f;
}

int agora__runner_frame_read(int fd, size_t max_len, Agora__Ipc__Frame **out,
                             int fds[AGORA__FRAME_MAX_FDS], size_t *n_fds, char *why,
                             size_t why_len)
{
    uint8_t hdr[AGORA__FRAME_PREFIX];
    *out = NULL;
    *n_fds = 0;
    int rc = recv_all(fd, hdr, sizeof hdr, 1, fds, n_fds, why, why_len);
    if (rc != 0) {
        close_fds(fds, n_fds);
        if (rc == -2)
            snprintf(why, why_len, "the host closed the socket");
        return rc;
    }
    uint32_t len = agora__frame_get_len(hdr);
    if (len == 0 || len > max_len) {
        close_fds(fds, n_fds);
        snprintf(why, why_len, "the host sent a frame of %u bytes (allowed 1..%zu)", len, max_len);
        return -1;
    }
    uint8_t *body = malloc(len);
    if (body == NULL) {
        close_fds(fds, n_fds);
        snprintf(why, why_len, "out of memory for a %u-byte frame", len);
        return -1;
    }
    rc = recv_all(fd, body, len, 0, fds, n_fds, why, why_len);
    if (rc != 0) {
        free(body);
        close_fds(fds, n_fds);
        return -1;
    }
    Agora__Ipc__Frame *f = agora__runner_frame_decode(body, len, why, why_len);
    free(body);
    if (f == NULL) {
        close_fds(fds, n_fds);
        return -1;
    }
    size_t want = agora__runner_frame_expected_fds(f);
    if (*n_fds != want) {
        snprintf(why, why_len,
                 "the host sent %zu descriptors with a frame of type %d (expected %zu)", *n_fds,
                 (int)f->msg_case, want);
        close_fds(fds, n_fds);
        agora__ipc__frame__free_unpacked(f, NULL);
        return -1;
    }
    *out = f;
    return 0;
}

int agora__runner_frame_write(int fd, const Agora__Ipc__Frame *frame, size_t max_len)
{
    size_t len = protobuf_c_message_get_packed_size(&frame->base);
    if (len > max_len || len > UINT32_MAX)
        return -EMSGSIZE;
    uint8_t *buf = malloc(len + AGORA__FRAME_PREFIX);
    if (buf == NULL)
        return -ENOMEM;
    agora__frame_put_len(buf, (uint32_t)len);
    protobuf_c_message_pack(&frame->base, buf + AGORA__FRAME_PREFIX);
    size_t off = 0, total = len + AGORA__FRAME_PREFIX;
    int rc = 0;
    while (off < total) {
        /* send(), not write(): MSG_NOSIGNAL turns a dead host into EPIPE instead of SIGPIPE, and
         * the sendto syscall cannot carry descriptors (sendmsg is refused by the policy). */
        ssize_t n = send(fd, buf + off, total - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EPIPE;
            break;
        }
        off += (size_t)n;
    }
    free(buf);
    return rc;
}
