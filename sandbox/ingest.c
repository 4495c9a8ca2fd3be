/*
 * MODE_INGEST request loop: one IngestRequest at a time, one IngestReply each.
 *
 * fd[0] is the input file the host opened read-only: mapped PROT_READ, MAP_PRIVATE for exactly
 * file_bytes (which must equal its size). A file truncated behind our back faults with SIGBUS:
 * the worker dies, and the host reports that file and respawns — the crash is contained here.
 * fd[1] (DECODE) is the host's output memfd: mapped shared and writable from output_offset for
 * output_bytes, never beyond; decoded frames are written there back to back.
 *
 * A malformed file is an ordinary reply (INGEST_FILE_ERROR) and the worker stays up; only the
 * host sending something inconsistent is a REQUEST_ERROR. Error texts come from the reader and
 * the codecs, which never put attribute values in messages.
 */
#include "ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct request_ctx {
    const uint8_t *file;
    size_t file_len;
    uint8_t *out_map; /* page-aligned mapping that contains the output window */
    size_t out_map_len;
    uint8_t *out; /* the window: output_offset .. +output_bytes */
    size_t out_len;
    agora__dicom_file *f;
    ingest_meta_store meta;
    Agora__Ipc__IngestPixelFormat fmt;
    char photometric_name[17];
    char why[320];
} request_ctx;

static uint64_t cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static int request_error(Agora__Ipc__IngestReply *r, request_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int request_error(Agora__Ipc__IngestReply *r, request_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    r->status = AGORA__IPC__INGEST_STATUS__INGEST_REQUEST_ERROR;
    r->code = AGORA_EINVAL;
    r->error = c->why;
    return -1;
}

static int file_error(Agora__Ipc__IngestReply *r, request_ctx *c, const char *what,
                      const agora__error *e)
{
    snprintf(c->why, sizeof c->why, "%s: %s", what, e->msg);
    r->status = AGORA__IPC__INGEST_STATUS__INGEST_FILE_ERROR;
    r->code = e->code < 0 ? e->code : AGORA_EINPUT;
    r->error = c->why;
    return -1;
}

static int map_input(const Agora__Ipc__IngestRequest *m, int fd, Agora__Ipc__IngestReply *r,
                     request_ctx *c)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return request_error(r, c, "the input descriptor is not a regular file");
    if (m->file_bytes == 0 || m->file_bytes > SIZE_MAX || st.st_size < 0 ||
        (uint64_t)st.st_size != m->file_bytes)
        return request_error(r, c, "the input holds %lld bytes but the request says %llu",
                             (long long)st.st_size, (unsigned long long)m->file_bytes);
    void *p = mmap(NULL, (size_t)m->file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return request_error(r, c, "mapping the input failed: %s", strerror(errno));
    c->file = p;
    c->file_len = (size_t)m->file_bytes;
    return 0;
}

/* Map only the `need` bytes the frames will fill (checked against the whole window): every
 * page is written, so populate them in one call instead of a fault per page. */
static int map_output(const Agora__Ipc__IngestRequest *m, int fd, uint64_t need,
                      Agora__Ipc__IngestReply *r, request_ctx *c)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 0)
        return request_error(r, c, "the output descriptor cannot be examined");
    uint64_t end = m->output_offset + m->output_bytes;
    if (m->output_bytes == 0 || end < m->output_offset || end > (uint64_t)st.st_size ||
        end > SIZE_MAX)
        return request_error(r, c,
                             "the output window (%llu bytes at %llu) does not lie inside the "
                             "output memfd (%lld bytes)",
                             (unsigned long long)m->output_bytes,
                             (unsigned long long)m->output_offset, (long long)st.st_size);
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t page = pg > 0 ? (uint64_t)pg : 4096u;
    uint64_t base = m->output_offset - m->output_offset % page;
    size_t len = (size_t)(m->output_offset + need - base);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)base);
    if (p == MAP_FAILED)
        return request_error(r, c, "mapping the output memfd failed: %s", strerror(errno));
    c->out_map = p;
    c->out_map_len = len;
    c->out = c->out_map + (m->output_offset - base);
    c->out_len = (size_t)need;
    return 0;
}

static int do_metadata(request_ctx *c, Agora__Ipc__IngestReply *r)
{
    agora__dicom_limits lim;
    agora__dicom_limits_default(&lim);
    lim.flags |= AGORA__DICOM_READ_STOP_AT_PIXELS;
    agora__error e = {0};
    if (agora__dicom_read(c->file, c->file_len, &lim, &c->f, &e) != 0)
        return file_error(r, c, "unreadable", &e);
    int mrc = agora__runner_ingest_meta(c->f, 1, &c->meta);
    if (mrc == -2) {
        e.code = AGORA_ELIMIT;
        agora__strlcpy(e.msg,
                       "the enhanced multi-frame object varies in more per-frame values than one "
                       "reply carries (6 MiB); split the object into fewer frames per file",
                       sizeof e.msg);
        return file_error(r, c, "functional groups", &e);
    }
    if (mrc != 0) {
        e.code = AGORA_ENOMEM;
        agora__strlcpy(e.msg, "out of memory for the metadata", sizeof e.msg);
        return file_error(r, c, "metadata", &e);
    }
    r->metadata = &c->meta.meta;
    return 0;
}

static int do_decode(const Agora__Ipc__IngestRequest *m, int out_fd, request_ctx *c,
                     Agora__Ipc__IngestReply *r)
{
    int mode;
    if (m->mode == AGORA__IPC__INGEST_PIXEL_MODE__INGEST_PIXELS_NORMALIZED)
        mode = AGORA__DICOM_DECODE_NORMALIZED;
    else if (m->mode == AGORA__IPC__INGEST_PIXEL_MODE__INGEST_PIXELS_RAW)
        mode = AGORA__DICOM_DECODE_RAW;
    else
        return request_error(r, c, "decode mode %d is not NORMALIZED or RAW", (int)m->mode);
    if (m->n_frames == 0)
        return request_error(r, c, "a decode request must ask for at least one frame");
    agora__error e = {0};
    if (agora__dicom_read(c->file, c->file_len, NULL, &c->f, &e) != 0)
        return file_error(r, c, "unreadable", &e);
    if (agora__runner_ingest_meta(c->f, 0, &c->meta) != 0) {
        e.code = AGORA_ENOMEM;
        agora__strlcpy(e.msg, "out of memory for the metadata", sizeof e.msg);
        return file_error(r, c, "metadata", &e);
    }
    r->metadata = &c->meta.meta;
    agora__dicom_pixel_desc d;
    agora__dicom_pixel_format pf;
    if (agora__dicom_pixel_describe(c->f, &d, &e) != 0)
        return file_error(r, c, "pixel data", &e);
    if (agora__dicom_pixel_format_for(c->f, &d, mode, &pf, &e) != 0)
        return file_error(r, c, "pixel format", &e);
    if (m->first_frame >= d.frames || m->n_frames > d.frames - m->first_frame)
        return request_error(r, c, "frames %u..%u requested but the file has %u", m->first_frame,
                             m->first_frame + (m->n_frames - 1), d.frames);
    if (pf.frame_bytes == 0 || pf.frame_bytes > SIZE_MAX / m->n_frames ||
        pf.frame_bytes * m->n_frames > m->output_bytes)
        return request_error(r, c, "%u frames of %llu bytes do not fit the %llu-byte output window",
                             m->n_frames, (unsigned long long)pf.frame_bytes,
                             (unsigned long long)m->output_bytes);
    if (map_output(m, out_fd, pf.frame_bytes * m->n_frames, r, c) != 0)
        return -1;
    for (uint32_t i = 0; i < m->n_frames; i++) {
        if (agora__dicom_decode_frame(c->f, &d, m->first_frame + i, mode,
                                      c->out + (size_t)pf.frame_bytes * i, (size_t)pf.frame_bytes,
                                      &e) != 0) {
            char what[48];
            snprintf(what, sizeof what, "frame %u", m->first_frame + i);
            return file_error(r, c, what, &e);
        }
        r->frames_decoded = i + 1;
    }
    agora__ipc__ingest_pixel_format__init(&c->fmt);
    c->fmt.pixel_type = pf.pixel_type;
    c->fmt.samples_per_pixel = pf.samples_per_pixel;
    c->fmt.bytes_per_sample = pf.bytes_per_sample;
    c->fmt.photometric = pf.photometric;
    agora__strlcpy(c->photometric_name, pf.photometric_name, sizeof c->photometric_name);
    c->fmt.photometric_name = c->photometric_name;
    c->fmt.frame_bytes = pf.frame_bytes;
    r->format = &c->fmt;
    return 0;
}

/* Tests only: die or hang mid-request the way a hostile file could make the parser do. */
static void inject_fault(const Agora__Ipc__IngestRequest *m, int fd, const request_ctx *c)
{
    switch (m->test_fault) {
    case AGORA__IPC__INGEST_TEST_FAULT__INGEST_FAULT_SEGV:
        raise(SIGSEGV);
        break;
    case AGORA__IPC__INGEST_TEST_FAULT__INGEST_FAULT_SYSCALL:
        (void)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        break;
    case AGORA__IPC__INGEST_TEST_FAULT__INGEST_FAULT_SPIN:
        for (volatile uint64_t i = 0;; i++)
            ;
    case AGORA__IPC__INGEST_TEST_FAULT__INGEST_FAULT_SIGBUS: {
        /* A mapping longer than the file: the first page wholly past the end faults. */
        long pg = sysconf(_SC_PAGESIZE);
        size_t page = pg > 0 ? (size_t)pg : 4096u;
        size_t end = (c->file_len + page - 1) / page * page;
        volatile const uint8_t *p = mmap(NULL, end + page, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED)
            (void)p[end];
        break;
    }
    default:
        break;
    }
}

static void handle(const Agora__Ipc__IngestRequest *m, int fds[2])
{
    request_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, AGORA_ENOMEM,
                           "out of memory for an ingest request");
    uint64_t cpu0 = cpu_us();
    Agora__Ipc__IngestReply r = AGORA__IPC__INGEST_REPLY__INIT;
    r.request_id = m->request_id;
    r.status = AGORA__IPC__INGEST_STATUS__INGEST_OK;
    int rc = 0;
    ingest_extra *extra = NULL; /* DEID_UIDS, DEID_WRITE, DUMP (ingest_deid.c) */
    if (m->op != AGORA__IPC__INGEST_OP__INGEST_METADATA &&
        m->op != AGORA__IPC__INGEST_OP__INGEST_DECODE &&
        m->op != AGORA__IPC__INGEST_OP__INGEST_DEID_UIDS &&
        m->op != AGORA__IPC__INGEST_OP__INGEST_DEID_WRITE &&
        m->op != AGORA__IPC__INGEST_OP__INGEST_DUMP)
        rc = request_error(&r, c, "ingest operation %d is not one this worker knows", (int)m->op);
    if (rc == 0)
        rc = map_input(m, fds[0], &r, c);
    if (rc == 0 && m->test_fault != AGORA__IPC__INGEST_TEST_FAULT__INGEST_FAULT_NONE)
        inject_fault(m, fds[0], c);
    if (rc == 0) {
        if (m->op == AGORA__IPC__INGEST_OP__INGEST_METADATA)
            rc = do_metadata(c, &r);
        else if (m->op == AGORA__IPC__INGEST_OP__INGEST_DECODE)
            rc = do_decode(m, fds[1], c, &r);
        else
            rc = agora__runner_ingest_extra(m, c->file, c->file_len, fds[1], &r, &extra);
    }
    if (rc != 0 && r.status == AGORA__IPC__INGEST_STATUS__INGEST_REQUEST_ERROR) {
        r.metadata = NULL;
        r.format = NULL;
        r.deid = NULL;
    }
    /* Drop the writable output mapping BEFORE replying: the host seals the memfd against writes
     * as soon as it has the reply, and the kernel refuses that seal (EBUSY) while any writable
     * shared mapping exists. */
    if (c->out_map) {
        munmap(c->out_map, c->out_map_len);
        c->out_map = NULL;
    }
    r.cpu_us = cpu_us() - cpu0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0)
        r.peak_rss_kb = (uint64_t)ru.ru_maxrss;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_INGEST_REPLY;
    f.ingest_reply = &r;
    int sent = agora__runner_send(&f);
    if (sent == -EMSGSIZE) {
        /* Bounded by construction (512 elements of 1 KiB, 65536 positions); fail the file. */
        r.metadata = NULL;
        r.format = NULL;
        r.deid = NULL;
        r.output_used = 0;
        r.frames_decoded = 0;
        r.status = AGORA__IPC__INGEST_STATUS__INGEST_FILE_ERROR;
        r.code = AGORA_ELIMIT;
        r.error = (char *)"the metadata exceeded the reply size limit";
        sent = agora__runner_send(&f);
    }
    if (sent != 0)
        _exit(AGORA__RUNNER_EXIT_PROTOCOL); /* the host is gone */
    agora__runner_ingest_extra_free(extra);
    agora__dicom_file_free(c->f);
    agora__runner_ingest_meta_free(&c->meta);
    if (c->file)
        munmap((void *)(uintptr_t)c->file, c->file_len);
    if (c->out_map)
        munmap(c->out_map, c->out_map_len);
    free(c);
    /* No malloc_trim here: glibc already returns large blocks (mmap'ed) and the heap top, and
     * trimming every request made the next one fault the same pages back in. */
}

int agora__runner_serve_ingest(void)
{
    for (;;) {
        Agora__Ipc__Frame *f;
        int fds[AGORA__FRAME_MAX_FDS] = {-1, -1};
        size_t n_fds;
        char why[256];
        int rc = agora__runner_frame_read(AGORA__RUNNER_FD, AGORA__FRAME_HOST_TO_RUNNER_MAX, &f,
                                          fds, &n_fds, why, sizeof why);
        if (rc == -2)
            break; /* the host closed the channel: same as Shutdown */
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO, "%s", why);
        int shutdown = 0;
        switch (f->msg_case) {
        case AGORA__IPC__FRAME__MSG_INGEST_REQUEST:
            handle(f->ingest_request, fds);
            for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
            break;
        case AGORA__IPC__FRAME__MSG_SHUTDOWN:
            shutdown = 1;
            break;
        case AGORA__IPC__FRAME__MSG_CANCEL:
            break; /* requests are answered one at a time; nothing to cancel */
        default: {
            int type = (int)f->msg_case;
            agora__ipc__frame__free_unpacked(f, NULL);
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO,
                               "the host sent an unexpected frame of type %d to an ingest worker",
                               type);
        }
        }
        agora__ipc__frame__free_unpacked(f, NULL);
        if (shutdown)
            break;
    }
    return AGORA__RUNNER_EXIT_OK;
}
