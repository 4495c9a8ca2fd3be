/* Wire codec: length-prefixed protobuf frames over a stream socket, with bounded buffers, a
 * bounded unpack allocator and strict descriptor rules. */
#include "frame.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Each allocation carries its size in a header so frees can be accounted. */
typedef struct {
    size_t size;
    max_align_t align;
} alloc_hdr;

static void *budget_alloc(void *data, size_t size)
{
    agora__frame_alloc *a = data;
    if (size > a->budget || a->live > a->budget - size)
        return NULL;
    alloc_hdr *h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    a->live += size;
    return h + 1;
}

static void budget_free(void *data, void *ptr)
{
    agora__frame_alloc *a = data;
    if (ptr == NULL)
        return;
    alloc_hdr *h = (alloc_hdr *)ptr - 1;
    a->live -= h->size;
    free(h);
}

void agora__frame_reader_init(agora__frame_reader *r, size_t max_frame, unsigned max_fds)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame;
    r->max_fds = max_fds > AGORA__FRAME_MAX_FDS ? AGORA__FRAME_MAX_FDS : max_fds;
    r->alloc.pb.alloc = budget_alloc;
    r->alloc.pb.free = budget_free;
    r->alloc.pb.allocator_data = &r->alloc;
    r->alloc.budget = AGORA__FRAME_UNPACK_BUDGET;
    for (unsigned i = 0; i < AGORA__FRAME_MAX_FDS; i++)
        r->fds[i] = -1;
}

void agora__frame_reader_free(agora__frame_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
    for (unsigned i = 0; i < r->n_fds; i++)
        if (r->fds[i] >= 0)
            close(r->fds[i]);
    r->n_fds = 0;
}

/* The buffer never needs more than one maximal frame plus one read's worth of the next. */
#define READ_CHUNK AGORA__FRAME_READ_CHUNK

static int reserve(agora__frame_reader *r, size_t extra, agora__error *err)
{
    size_t bound = 4 + r->max_frame + READ_CHUNK;
    if (extra > bound || r->len > bound - extra)
        return agora__error_set(err, AGORA_ELIMIT, "frame buffer bound (%zu bytes) exceeded",
                                bound);
    if (r->len + extra <= r->cap)
        return 0;
    size_t ncap = r->cap ? r->cap : 4096;
    while (ncap < r->len + extra)
        ncap *= 2;
    if (ncap > bound)
        ncap = bound;
    uint8_t *nb = realloc(r->buf, ncap);
    if (nb == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory growing a frame buffer");
    r->buf = nb;
    r->cap = ncap;
    return 0;
}

int agora__frame_reader_feed(agora__frame_reader *r, const void *data, size_t len,
                             agora__error *err)
{
    int rc = reserve(r, len, err);
    if (rc < 0)
        return rc;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

/* Close every descriptor in a control message; report whether there were any. */
static unsigned collect_fds(struct msghdr *mh, int *keep, unsigned keep_max, unsigned *n_kept,
                            int *overflow)
{
    unsigned seen = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, p + i * sizeof fd, sizeof fd);
            seen++;
            if (*n_kept < keep_max) {
                keep[(*n_kept)++] = fd;
            } else {
                *overflow = 1;
                close(fd);
            }
        }
    }
    return seen;
}

int agora__frame_reader_fill(agora__frame_reader *r, int fd, agora__error *err)
{
    int rc = reserve(r, READ_CHUNK, err);
    if (rc < 0)
        return rc;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 8)];
    } ctl;
    struct iovec iov = {r->buf + r->len, READ_CHUNK};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    ssize_t n;
    do {
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return AGORA__EAGAIN;
        return agora__error_set(err, AGORA__ERR(errno), "reading from the worker socket: %s",
                                strerror(errno));
    }
    int overflow = 0;
    unsigned kept_before = r->n_fds;
    unsigned keep_max = r->max_fds;
    unsigned seen = collect_fds(&mh, r->fds, keep_max, &r->n_fds, &overflow);
    if ((mh.msg_flags & MSG_CTRUNC) || overflow || (seen > 0 && r->max_fds == 0)) {
        /* Fail closed: drop every descriptor of this message, even the ones that fitted. */
        for (unsigned i = kept_before; i < r->n_fds; i++) {
            close(r->fds[i]);
            r->fds[i] = -1;
        }
        r->n_fds = kept_before;
        return agora__error_set(err, AGORA_EINVAL,
                                "the worker sent %u file descriptor(s); descriptors are only "
                                "accepted host -> runner (protocol error)",
                                seen);
    }
    if (n == 0)
        return 0;
    r->len += (size_t)n;
    return 1;
}

int agora__frame_reader_next(agora__frame_reader *r, Agora__Ipc__Frame **out, agora__error *err)
{
    *out = NULL;
    if (r->len < 4)
        return 0;
    uint32_t n = (uint32_t)r->buf[0] | (uint32_t)r->buf[1] << 8 | (uint32_t)r->buf[2] << 16 |
                 (uint32_t)r->buf[3] << 24;
    if (n == 0)
        return agora__error_set(err, AGORA_EINVAL, "empty frame (protocol error)");
    if (n > r->max_frame)
        return agora__error_set(err, AGORA_ELIMIT,
                                "frame of %u bytes exceeds the cap of %zu (protocol error)", n,
                                r->max_frame);
    if (r->len - 4 < n)
        return 0;
    Agora__Ipc__Frame *f = agora__ipc__frame__unpack(&r->alloc.pb, n, r->buf + 4);
    size_t rest = r->len - 4 - n;
    memmove(r->buf, r->buf + 4 + n, rest);
    r->len = rest;
    if (f == NULL)
        return agora__error_set(err, AGORA_EINVAL, "undecodable frame of %u bytes (protocol error)",
                                n);
    if (f->msg_case == AGORA__IPC__FRAME__MSG__NOT_SET) {
        agora__frame_free(r, f);
        return agora__error_set(err, AGORA_EINVAL, "frame carries no message (protocol error)");
    }
    *out = f;
    return 1;
}

void agora__frame_free(agora__frame_reader *r, Agora__Ipc__Frame *f)
{
    if (f != NULL)
        agora__ipc__frame__free_unpacked(f, &r->alloc.pb);
}

unsigned agora__frame_reader_take_fds(agora__frame_reader *r, int *fds, unsigned max)
{
    unsigned n = r->n_fds < max ? r->n_fds : max;
    for (unsigned i = 0; i < n; i++)
        fds[i] = r->fds[i];
    for (unsigned i = n; i < r->n_fds; i++)
        r->fds[i - n] = r->fds[i];
    r->n_fds -= n;
    for (unsigned i = r->n_fds; i < AGORA__FRAME_MAX_FDS; i++)
        r->fds[i] = -1;
    return n;
}

int agora__frame_pack(const Agora__Ipc__Frame *f, size_t max, uint8_t **out, size_t *out_len,
                      agora__error *err)
{
    size_t n = agora__ipc__frame__get_packed_size(f);
    if (n == 0 || n > max || n > UINT32_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "message of %zu bytes exceeds the cap of %zu", n,
                                max);
    uint8_t *b = malloc(4 + n);
    if (b == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory packing a message");
    b[0] = (uint8_t)n;
    b[1] = (uint8_t)(n >> 8);
    b[2] = (uint8_t)(n >> 16);
    b[3] = (uint8_t)(n >> 24);
    agora__ipc__frame__pack(f, b + 4);
    *out = b;
    *out_len = 4 + n;
    return 0;
}

ssize_t agora__frame_sendmsg(int fd, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * AGORA__FRAME_MAX_FDS)];
    } ctl;
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (n_fds > AGORA__FRAME_MAX_FDS)
        return AGORA_EINVAL;
    if (n_fds > 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    }
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? AGORA__ERR(errno) : n;
}

static int wait_fd(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    int rc;
    do {
        rc = poll(&p, 1, -1);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? AGORA__ERR(errno) : 0;
}

int agora__frame_send_all(int fd, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds,
                          agora__error *err)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = agora__frame_sendmsg(fd, buf + off, len - off, off == 0 ? fds : NULL,
                                         off == 0 ? n_fds : 0);
        if (n == AGORA__EAGAIN) {
            int rc = wait_fd(fd, POLLOUT);
            if (rc < 0)
                return agora__error_set(err, rc, "poll: %s", agora__strerror(rc));
            continue;
        }
        if (n < 0)
            return agora__error_set(err, (int)n, "sending a frame: %s", strerror((int)-n));
        off += (size_t)n;
    }
    return 0;
}

int agora__frame_recv(agora__frame_reader *r, int fd, Agora__Ipc__Frame **out, agora__error *err)
{
    for (;;) {
        int rc = agora__frame_reader_next(r, out, err);
        if (rc != 0)
            return rc;
        rc = agora__frame_reader_fill(r, fd, err);
        if (rc == AGORA__EAGAIN) {
            rc = wait_fd(fd, POLLIN);
            if (rc < 0)
                return agora__error_set(err, rc, "poll: %s", agora__strerror(rc));
            continue;
        }
        if (rc <= 0)
            return rc;
    }
}
