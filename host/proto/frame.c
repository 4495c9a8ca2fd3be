/* The host's wire codec (frame.h): length-prefixed protobuf frames over a stream socket, with
 * bounded buffers, a bounded unpack allocator and strict descriptor rules. */
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
    if (size > a->budget || a->live > a->budget - size) {
        a->refused = 1;
        return NULL;
    }
    alloc_hdr *h = malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    a->live += size;
    return h + 1;
}

/* data is NULL when a frame outlives its budget (agora__frame_decode): nothing to account. */
static void budget_free(void *data, void *ptr)
{
    agora__frame_alloc *a = data;
    if (ptr == NULL)
        return;
    alloc_hdr *h = (alloc_hdr *)ptr - 1;
    if (a != NULL)
        a->live -= h->size;
    free(h);
}

static void alloc_init(agora__frame_alloc *a)
{
    memset(a, 0, sizeof *a);
    a->pb.alloc = budget_alloc;
    a->pb.free = budget_free;
    a->pb.allocator_data = a;
    a->budget = AGORA__FRAME_UNPACK_BUDGET;
}

/* Unpack body[0..n) within a's budget; the checks every received frame goes through. */
static int unpack(agora__frame_alloc *a, const uint8_t *body, size_t n, Agora__Ipc__Frame **out,
                  agora__error *err)
{
    a->refused = 0;
    *out = NULL;
    Agora__Ipc__Frame *f = agora__ipc__frame__unpack(&a->pb, n, body);
    if (f == NULL) {
        if (a->refused)
            return agora__error_set(err, AGORA_EINVAL,
                                    "frame of %zu bytes would take more than the unpack budget "
                                    "of %zu bytes (protocol error)",
                                    n, a->budget);
        return agora__error_set(err, AGORA_EINVAL,
                                "undecodable frame of %zu bytes (protocol error)", n);
    }
    if (f->msg_case == AGORA__IPC__FRAME__MSG__NOT_SET) {
        agora__ipc__frame__free_unpacked(f, &a->pb);
        return agora__error_set(err, AGORA_EINVAL, "frame carries no message (protocol error)");
    }
    *out = f;
    return 0;
}

void agora__frame_reader_init(agora__frame_reader *r, size_t max_frame, unsigned max_fds)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame;
    r->max_fds = max_fds > AGORA__FRAME_CODEC_FDS ? AGORA__FRAME_CODEC_FDS : max_fds;
    alloc_init(&r->alloc);
    for (unsigned i = 0; i < AGORA__FRAME_CODEC_FDS; i++)
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
    size_t bound = AGORA__FRAME_PREFIX + r->max_frame + READ_CHUNK;
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
    if (len == 0) /* nothing to add; the buffer may not exist yet (NULL + 0 is undefined) */
        return 0;
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
            return AGORA__ERR(EAGAIN);
        return agora__error_set(err, AGORA__ERR(errno), "reading from the worker socket: %s", strerror(errno));
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
    if (r->len < AGORA__FRAME_PREFIX)
        return 0;
    uint32_t n = agora__frame_get_len(r->buf);
    if (n == 0)
        return agora__error_set(err, AGORA_EINVAL, "empty frame (protocol error)");
    if (n > r->max_frame)
        return agora__error_set(err, AGORA_ELIMIT,
                                "frame of %u bytes exceeds the cap of %zu (protocol error)", n,
                                r->max_frame);
    if (r->len - AGORA__FRAME_PREFIX < n)
        return 0;
    int rc = unpack(&r->alloc, r->buf + AGORA__FRAME_PREFIX, n, out, err);
    size_t rest = r->len - AGORA__FRAME_PREFIX - n;
    memmove(r->buf, r->buf + AGORA__FRAME_PREFIX + n, rest);
    r->len = rest;
    return rc < 0 ? rc : 1;
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
    for (unsigned i = r->n_fds; i < AGORA__FRAME_CODEC_FDS; i++)
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
    uint8_t *b = malloc(AGORA__FRAME_PREFIX + n);
    if (b == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory packing a message");
    agora__frame_put_len(b, (uint32_t)n);
    agora__ipc__frame__pack(f, b + AGORA__FRAME_PREFIX);
    *out = b;
    *out_len = AGORA__FRAME_PREFIX + n;
    return 0;
}

ssize_t agora__frame_sendmsg(int fd, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * AGORA__FRAME_CODEC_FDS)];
    } ctl;
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (n_fds > AGORA__FRAME_CODEC_FDS)
        return AGORA__ERR(EINVAL);
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

/* Milliseconds left until deadline_ns (-1 = no deadline, 0 = expired). */
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

/* Wait until fd is ready for events: 0, AGORA__ERR(ETIMEDOUT), or AGORA__ERR(errno) (err set for both failures). */
static int wait_until(int fd, short events, uint64_t deadline_ns, agora__error *err)
{
    for (;;) {
        int left = ms_left(deadline_ns);
        if (left == 0)
            return agora__error_set(err, AGORA__ERR(ETIMEDOUT), "the worker socket timed out");
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return agora__error_set(err, AGORA__ERR(errno), "poll on the worker socket: %s", strerror(errno));
        if (n > 0)
            return 0;
    }
}

static int send_buf_until(int fd, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds,
                          uint64_t deadline_ns, agora__error *err)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = agora__frame_sendmsg(fd, buf + off, len - off, off == 0 ? fds : NULL,
                                         off == 0 ? n_fds : 0);
        if (n == AGORA__ERR(EAGAIN)) {
            int rc = wait_until(fd, POLLOUT, deadline_ns, err);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n == 0)
            return agora__error_set(err, AGORA__ERR(EPIPE), "sending a frame: connection closed");
        if (n < 0)
            return agora__error_set(err, (int)n, "sending a frame: %s", strerror((int)-n));
        off += (size_t)n;
    }
    return 0;
}

int agora__frame_send_all(int fd, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds,
                          agora__error *err)
{
    return send_buf_until(fd, buf, len, fds, n_fds, 0, err);
}

int agora__frame_recv(agora__frame_reader *r, int fd, Agora__Ipc__Frame **out, agora__error *err)
{
    for (;;) {
        int rc = agora__frame_reader_next(r, out, err);
        if (rc != 0)
            return rc;
        rc = agora__frame_reader_fill(r, fd, err);
        if (rc == AGORA__ERR(EAGAIN)) {
            rc = wait_until(fd, POLLIN, 0, err);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc <= 0)
            return rc;
    }
}

/* ---- one-shot and deadline-bound I/O (request/reply peers) ----------------------------------- */

/* Frees blocks of a frame whose budget is gone: budget_free with no accounting. */
static ProtobufCAllocator detached = {budget_alloc, budget_free, NULL};

Agora__Ipc__Frame *agora__frame_decode(const uint8_t *body, size_t len, size_t max,
                                       agora__error *err)
{
    if (len == 0 || len > max) {
        agora__error_set(err, len == 0 ? AGORA_EINVAL : AGORA_ELIMIT,
                         "frame of %zu bytes (allowed 1..%zu; protocol error)", len, max);
        return NULL;
    }
    agora__frame_alloc a;
    alloc_init(&a);
    Agora__Ipc__Frame *f = NULL;
    if (unpack(&a, body, len, &f, err) < 0)
        return NULL;
    return f;
}

void agora__frame_decoded_free(Agora__Ipc__Frame *f)
{
    if (f != NULL)
        agora__ipc__frame__free_unpacked(f, &detached);
}

int agora__frame_send_until(int fd, const Agora__Ipc__Frame *f, size_t max, const int *fds,
                            unsigned n_fds, uint64_t deadline_ns, agora__error *err)
{
    if (n_fds > AGORA__FRAME_MAX_FDS)
        return agora__error_set(err, AGORA_EINVAL, "cannot attach %u descriptors (at most %d)",
                                n_fds, AGORA__FRAME_MAX_FDS);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__frame_pack(f, max, &buf, &len, err);
    if (rc < 0)
        return rc;
    rc = send_buf_until(fd, buf, len, fds, n_fds, deadline_ns, err);
    free(buf);
    return rc;
}

/* Read exactly len bytes. 0, 1 on end of stream before the first byte when first, negative with
 * err set otherwise. The host accepts no descriptor: any is closed and fails the read. */
static int recv_exact(int fd, uint8_t *buf, size_t len, int first, uint64_t deadline_ns,
                      agora__error *err)
{
    size_t got = 0;
    while (got < len) {
        int rc = wait_until(fd, POLLIN, deadline_ns, err);
        if (rc < 0)
            return rc;
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * AGORA__FRAME_CODEC_FDS)];
        } ctl;
        struct iovec iov = {buf + got, len - got};
        struct msghdr mh = {0};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            return agora__error_set(err, AGORA__ERR(errno), "reading from the worker socket: %s",
                                    strerror(errno));
        int overflow = 0;
        unsigned kept = 0;
        int none[1];
        unsigned seen = collect_fds(&mh, none, 0, &kept, &overflow);
        if (seen > 0 || (mh.msg_flags & MSG_CTRUNC))
            return agora__error_set(err, AGORA_EINVAL,
                                    "the worker sent %u file descriptor(s); descriptors are only "
                                    "accepted host -> runner (protocol error)",
                                    seen);
        if (n == 0) {
            if (first && got == 0)
                return 1;
            return agora__error_set(err, AGORA__ERR(EPIPE), "the worker closed its socket mid-frame");
        }
        got += (size_t)n;
    }
    return 0;
}

int agora__frame_recv_until(int fd, size_t max, uint64_t deadline_ns, Agora__Ipc__Frame **out,
                            agora__error *err)
{
    *out = NULL;
    uint8_t hdr[AGORA__FRAME_PREFIX];
    int rc = recv_exact(fd, hdr, sizeof hdr, 1, deadline_ns, err);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    uint32_t n = agora__frame_get_len(hdr);
    if (n == 0 || n > max)
        return agora__error_set(err, n == 0 ? AGORA_EINVAL : AGORA_ELIMIT,
                                "the worker announced a frame of %u bytes (allowed 1..%zu; "
                                "protocol error)",
                                n, max);
    uint8_t *body = malloc(n);
    if (body == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for a %u-byte frame", n);
    rc = recv_exact(fd, body, n, 0, deadline_ns, err);
    if (rc == 0) {
        *out = agora__frame_decode(body, n, max, err);
        rc = *out != NULL ? 1 : (err != NULL && err->code < 0 ? err->code : AGORA_EINVAL);
    }
    free(body);
    return rc;
}
