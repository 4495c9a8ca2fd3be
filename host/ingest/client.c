/*
 * The blocking ingest client: one agora-runner in MODE_INGEST, spawned lazily, one request at a
 * time. Lifetime: agora__ingest owns the runner process and its socket; a worker that dies or
 * misbehaves is reaped, its death reported against the file it was working on, and a new one is
 * spawned by the next request.
 */
#include "ingest_internal.h"
#include "runner_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define REAP_GRACE_MS 2000u

struct agora__ingest {
    agora__ingest_options opt;
    char runner[PATH_MAX];
    pid_t pid; /* 0 when no worker runs */
    int sock;
    uint64_t next_id;
    uint32_t served; /* requests answered by the current worker */
    int fault_next;  /* testing hook: IngestRequest.test_fault of the next request */
    agora__ingest_stats stats;
};

void agora__ingest_options_default(agora__ingest_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->memory_bytes = 512ull << 20;
    opt->timeout_ms = 30000;
    opt->start_timeout_ms = 10000;
    opt->max_file_bytes = 4ull << 30;
}

static uint64_t deadline_in(uint32_t ms)
{
    return agora__now_ns() + (uint64_t)ms * 1000000u;
}

/* ---- process life ---------------------------------------------------------------------------- */

/* How a worker ended, for messages: "crashed (SIGSEGV)" etc. */
static void describe_status(int st, char *out, size_t size)
{
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *ab = sigabbrev_np(sig);
        if (sig == SIGSYS)
            snprintf(out, size, "broke the sandbox policy (SIGSYS)");
        else if (sig == SIGXCPU)
            snprintf(out, size, "ran out of CPU time (SIGXCPU)");
        else if (sig == SIGKILL)
            snprintf(out, size, "was killed (SIGKILL)");
        else
            snprintf(out, size, "crashed (SIG%s)", ab ? ab : "?");
    } else if (WIFEXITED(st)) {
        int code = WEXITSTATUS(st);
        if (code == AGORA__RUNNER_EXIT_PROTOCOL)
            snprintf(out, size, "ended with a protocol error (exit %d)", code);
        else if (code >= AGORA__RUNNER_EXIT_SETUP && code <= AGORA__RUNNER_EXIT_INIT)
            snprintf(out, size, "failed to set up its sandbox (exit %d)", code);
        else if (code == AGORA__RUNNER_EXIT_INTERNAL)
            snprintf(out, size, "failed internally (exit %d)", code);
        else
            snprintf(out, size, "exited with status %d", code);
    } else {
        snprintf(out, size, "ended");
    }
}

/* Close the socket, wait up to the grace period, then SIGKILL; describe how it ended. */
static void reap(agora__ingest *ing, int kill_now, char *why, size_t why_len)
{
    if (ing->sock >= 0) {
        close(ing->sock);
        ing->sock = -1;
    }
    if (ing->pid <= 0) {
        if (why)
            snprintf(why, why_len, "was not running");
        return;
    }
    if (kill_now)
        kill(ing->pid, SIGKILL);
    int st = 0;
    uint64_t until = deadline_in(REAP_GRACE_MS);
    for (;;) {
        pid_t r = waitpid(ing->pid, &st, WNOHANG);
        if (r == ing->pid)
            break;
        if (r < 0 && errno != EINTR) {
            st = 0;
            break;
        }
        if (agora__now_ns() >= until) {
            kill(ing->pid, SIGKILL);
            while (waitpid(ing->pid, &st, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        usleep(1000);
    }
    if (why)
        describe_status(st, why, why_len);
    ing->pid = 0;
    ing->served = 0;
    ing->stats.pid = 0;
}

/* Send f (with fds) and read one frame, each within deadline_ns: host/proto's codec with the
 * protocol's caps per direction. */
static int send_frame(agora__ingest *ing, const Agora__Ipc__Frame *f, const int *fds, size_t n_fds,
                      uint64_t deadline_ns, agora__error *err)
{
    return agora__frame_send_until(ing->sock, f, AGORA__FRAME_HOST_TO_RUNNER_MAX, fds,
                                   (unsigned)n_fds, deadline_ns, err);
}

static int recv_frame(agora__ingest *ing, uint64_t deadline_ns, Agora__Ipc__Frame **out,
                      agora__error *err)
{
    return agora__frame_recv_until(ing->sock, AGORA__FRAME_RUNNER_TO_HOST_MAX, deadline_ns, out,
                                   err);
}

static int spawn(agora__ingest *ing, agora__error *err)
{
    pid_t p = 0;
    int sock = -1;
    int rc = agora__spawn_runner(ing->runner, -1, &p, &sock, err);
    if (rc < 0)
        return rc;
    ing->pid = p;
    ing->sock = sock;
    ing->served = 0;
    ing->stats.spawns++;

    Agora__Ipc__Limits lim = AGORA__IPC__LIMITS__INIT;
    lim.memory_bytes = ing->opt.memory_bytes;
    lim.max_threads = 4; /* the codecs run single-threaded; slack for glibc */
    /* RLIMIT_CPU is a backstop over the worker's whole life, and ingest workers are long-lived:
     * the per-request timeout is what bounds one file. */
    lim.cpu_seconds = 86400;
    Agora__Ipc__Setup su = AGORA__IPC__SETUP__INIT;
    su.protocol_version = AGORA__PROTO_VERSION_BASE;
    su.host_abi_version = AGORA_ABI_VERSION;
    su.mode = AGORA__IPC__MODE__MODE_INGEST;
    su.limits = &lim;
    su.allow_weak_isolation = ing->opt.allow_weak_isolation != 0;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_SETUP;
    f.setup = &su;
    uint64_t deadline = deadline_in(ing->opt.start_timeout_ms);
    char why[160];
    if (send_frame(ing, &f, NULL, 0, deadline, err) != 0) {
        reap(ing, 1, why, sizeof why);
        return agora__error_prefix(err, "starting the DICOM parser worker (it %s)", why);
    }
    Agora__Ipc__Frame *in = NULL;
    rc = recv_frame(ing, deadline, &in, err);
    if (rc == 1 && in->msg_case == AGORA__IPC__FRAME__MSG_READY) {
        agora__error rerr = {0};
        if (agora__ready_check(in->ready, AGORA__PROTO_VERSION_BASE, NULL, NULL, &rerr) == 0) {
            ing->stats.pid = p;
            agora__frame_decoded_free(in);
            return 0;
        }
        agora__frame_decoded_free(in);
        reap(ing, 1, why, sizeof why);
        return agora__error_set(err, AGORA_EINTERNAL,
                                "the DICOM parser worker broke the protocol at start: %s",
                                rerr.msg);
    }
    char msg[200] = "";
    if (rc == 1 && in->msg_case == AGORA__IPC__FRAME__MSG_ERROR && in->error->message) {
        size_t n = strnlen(in->error->message, sizeof msg - 1);
        for (size_t i = 0; i < n; i++) {
            char c = in->error->message[i];
            msg[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
        msg[n] = '\0';
    }
    agora__frame_decoded_free(in);
    reap(ing, rc == AGORA__ERR(ETIMEDOUT) || msg[0] == '\0', why, sizeof why);
    if (rc == AGORA__ERR(ETIMEDOUT))
        return agora__error_set(err, AGORA_EINTERNAL,
                                "the DICOM parser worker did not start within %u ms; check the "
                                "machine's load or raise the start timeout",
                                ing->opt.start_timeout_ms);
    if (msg[0])
        return agora__error_set(err, AGORA_EINTERNAL,
                                "the DICOM parser worker could not start its sandbox: %s", msg);
    return agora__error_set(err, AGORA_EINTERNAL,
                            "the DICOM parser worker %s before it was ready; check that %s is "
                            "agora-runner",
                            why, ing->runner);
}

int agora__ingest_open(const agora__ingest_options *opt, agora__ingest **out, agora__error *err)
{
    *out = NULL;
    agora__ingest *ing = calloc(1, sizeof *ing);
    if (ing == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    agora__ingest_options_default(&ing->opt);
    if (opt != NULL) {
        ing->opt = *opt;
        if (ing->opt.memory_bytes == 0)
            ing->opt.memory_bytes = 512ull << 20;
        if (ing->opt.timeout_ms == 0)
            ing->opt.timeout_ms = 30000;
        if (ing->opt.start_timeout_ms == 0)
            ing->opt.start_timeout_ms = 10000;
        if (ing->opt.max_file_bytes == 0)
            ing->opt.max_file_bytes = 4ull << 30;
    }
    ing->sock = -1;
    ing->next_id = 1;
    int rc;
    if (ing->opt.runner_path != NULL) {
        if (strlen(ing->opt.runner_path) >= sizeof ing->runner)
            rc = agora__error_set(err, AGORA_EINVAL, "runner path too long");
        else {
            agora__strlcpy(ing->runner, ing->opt.runner_path, sizeof ing->runner);
            rc = 0;
        }
    } else {
        rc = agora__runner_path(ing->runner, sizeof ing->runner, err);
    }
    ing->opt.runner_path = NULL; /* the copy above is what we keep */
    if (rc == 0)
        rc = spawn(ing, err);
    if (rc != 0) {
        free(ing);
        return rc;
    }
    *out = ing;
    return 0;
}

void agora__ingest_close(agora__ingest *ing)
{
    if (ing == NULL)
        return;
    if (ing->pid > 0 && ing->sock >= 0) {
        Agora__Ipc__Shutdown sd = AGORA__IPC__SHUTDOWN__INIT;
        Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
        f.msg_case = AGORA__IPC__FRAME__MSG_SHUTDOWN;
        f.shutdown = &sd;
        agora__error e = {0};
        (void)send_frame(ing, &f, NULL, 0, deadline_in(1000), &e);
    }
    reap(ing, 0, NULL, 0);
    free(ing);
}

void agora__ingest_get_stats(const agora__ingest *ing, agora__ingest_stats *out)
{
    *out = ing->stats;
}

void agora__ingest_debug_fault_next(agora__ingest *ing, int fault)
{
    ing->fault_next = fault;
}

/* ---- one request ----------------------------------------------------------------------------- */

static int open_input(const agora__ingest *ing, const char *path, int *fd, uint64_t *size,
                      agora__error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (*fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = agora__error_set(err, AGORA_EINPUT, "%s: not a regular file", path);
    else if (st.st_size == 0)
        rc = agora__error_set(err, AGORA_EINPUT, "%s: empty file", path);
    else if ((uint64_t)st.st_size > ing->opt.max_file_bytes)
        rc = agora__error_set(err, AGORA_ELIMIT, "%s: larger than %llu bytes", path,
                              (unsigned long long)ing->opt.max_file_bytes);
    if (rc != 0) {
        close(*fd);
        *fd = -1;
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* The worker died or broke the contract while working on path: reap it and fail the file. */
static int worker_lost(agora__ingest *ing, const char *path, int kill_now, const char *detail,
                       agora__error *err)
{
    char how[120];
    reap(ing, kill_now, how, sizeof how);
    ing->stats.worker_deaths++;
    if (detail != NULL)
        return agora__error_set(err, AGORA_EINPUT,
                                "the DICOM parser worker misbehaved on %s (%s) and was killed; "
                                "the file was refused",
                                path, detail);
    return agora__error_set(err, AGORA_EINPUT,
                            "the DICOM parser worker %s on %s; the file was refused", how, path);
}

/* Send req with fds, read and check the reply. Spawns a worker when none runs; a send that fails
 * because an idle worker had died is retried once on a fresh worker. */
static int roundtrip(agora__ingest *ing, const char *path, Agora__Ipc__IngestRequest *req,
                     const int *fds, size_t n_fds, uint64_t out_len, agora__ingest_meta *meta,
                     agora__dicom_pixel_format *fmt, agora__ingest_check_fn check, void *ctx,
                     agora__error *err)
{
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_INGEST_REQUEST;
    f.ingest_request = req;
    req->test_fault = (Agora__Ipc__IngestTestFault)ing->fault_next;
    ing->fault_next = 0;
    int sent = 0;
    for (int attempt = 0; attempt < 2 && !sent; attempt++) {
        if (ing->pid == 0) {
            int rc = spawn(ing, err);
            if (rc != 0)
                return agora__error_prefix(err, "%s", path);
        }
        req->request_id = ing->next_id++;
        agora__error e = {0};
        if (send_frame(ing, &f, fds, n_fds, deadline_in(ing->opt.timeout_ms), &e) == 0) {
            sent = 1;
        } else {
            reap(ing, 1, NULL, 0); /* it died while idle: not this file's fault */
            ing->stats.worker_deaths++;
            if (attempt == 1)
                return agora__error_set(err, AGORA_EINTERNAL,
                                        "%s: the DICOM parser worker cannot take requests: %s",
                                        path, e.msg);
        }
    }
    ing->stats.requests++;
    Agora__Ipc__Frame *in = NULL;
    agora__error e = {0};
    int rc = recv_frame(ing, deadline_in(ing->opt.timeout_ms), &in, &e);
    if (rc == AGORA__ERR(ETIMEDOUT)) {
        reap(ing, 1, NULL, 0);
        ing->stats.worker_deaths++;
        return agora__error_set(err, AGORA_EINPUT,
                                "the DICOM parser worker took longer than %u ms on %s and was "
                                "killed; the file was refused",
                                ing->opt.timeout_ms, path);
    }
    if (rc == 0)
        return worker_lost(ing, path, 0, NULL, err);
    if (rc < 0) /* a broken protocol is named; an I/O failure is told by how the worker ended */
        return worker_lost(ing, path, 1, rc == AGORA_EINVAL || rc == AGORA_ELIMIT ? e.msg : NULL,
                           err);
    if (in->msg_case != AGORA__IPC__FRAME__MSG_INGEST_REPLY) {
        int error_frame = in->msg_case == AGORA__IPC__FRAME__MSG_ERROR;
        agora__frame_decoded_free(in);
        /* An Error frame precedes the worker's own exit: report how it exited. */
        return worker_lost(ing, path, !error_frame,
                           error_frame ? NULL : "it sent a frame that is not an IngestReply", err);
    }
    int code = 0;
    int verdict = agora__ingest_check_reply(in->ingest_reply, req->request_id, (int)req->op,
                                            req->n_frames, out_len, meta, fmt, &code, &e);
    if (check != NULL && verdict != AGORA__INGEST_REPLY_HOSTILE)
        verdict = check(in->ingest_reply, verdict, ctx, &e);
    /* The worker's own CPU figure, for statistics only (capped at an hour per request). */
    uint64_t cpu = in->ingest_reply->cpu_us;
    if (cpu > 3600ull * 1000000u)
        cpu = 3600ull * 1000000u;
    agora__frame_decoded_free(in);
    if (verdict != AGORA__INGEST_REPLY_HOSTILE) {
        ing->stats.worker_cpu_us += cpu;
        if (verdict == AGORA__INGEST_REPLY_OK && meta != NULL)
            meta->worker_cpu_us = cpu;
    }
    if (verdict == AGORA__INGEST_REPLY_HOSTILE)
        return worker_lost(ing, path, 1, e.msg, err);
    ing->served++;
    if (ing->opt.max_requests && ing->served >= ing->opt.max_requests)
        reap(ing, 1, NULL, 0); /* recycled: the next request starts a fresh worker */
    if (verdict == AGORA__INGEST_REPLY_FILE)
        return agora__error_set(err, code < 0 ? code : AGORA_EINTERNAL, "%s: %s", path, e.msg);
    return 0;
}

int agora__ingest_metadata(agora__ingest *ing, const char *path, agora__ingest_meta *out,
                           agora__error *err)
{
    memset(out, 0, sizeof *out);
    out->instance_number = INT64_MIN;
    int fd = -1;
    uint64_t size = 0;
    int rc = open_input(ing, path, &fd, &size, err);
    if (rc != 0)
        return rc;
    Agora__Ipc__IngestRequest req = AGORA__IPC__INGEST_REQUEST__INIT;
    req.op = AGORA__IPC__INGEST_OP__INGEST_METADATA;
    req.file_bytes = size;
    rc = roundtrip(ing, path, &req, &fd, 1, 0, out, NULL, NULL, NULL, err);
    close(fd);
    return rc;
}

static int decode_checked(agora__ingest *ing, const char *path, uint32_t first_frame,
                          uint32_t n_frames, int mode, int out_fd, uint64_t out_offset,
                          uint64_t out_len, agora__dicom_pixel_format *fmt,
                          agora__ingest_meta *meta, agora__error *err)
{
    if (n_frames == 0 ||
        (mode != AGORA__DICOM_DECODE_NORMALIZED && mode != AGORA__DICOM_DECODE_RAW))
        return agora__error_set(err, AGORA_EINVAL, "decode needs >= 1 frame and a valid mode");
    struct stat st;
    if (fstat(out_fd, &st) != 0 || st.st_size < 0 || out_len == 0 ||
        out_offset + out_len < out_offset || out_offset + out_len > (uint64_t)st.st_size)
        return agora__error_set(err, AGORA_EINVAL,
                                "the output window (%llu bytes at %llu) is not inside the output "
                                "descriptor",
                                (unsigned long long)out_len, (unsigned long long)out_offset);
    int fds[2] = {-1, out_fd};
    uint64_t size = 0;
    int rc = open_input(ing, path, &fds[0], &size, err);
    if (rc != 0)
        return rc;
    Agora__Ipc__IngestRequest req = AGORA__IPC__INGEST_REQUEST__INIT;
    req.op = AGORA__IPC__INGEST_OP__INGEST_DECODE;
    req.file_bytes = size;
    req.mode = mode == AGORA__DICOM_DECODE_RAW
                   ? AGORA__IPC__INGEST_PIXEL_MODE__INGEST_PIXELS_RAW
                   : AGORA__IPC__INGEST_PIXEL_MODE__INGEST_PIXELS_NORMALIZED;
    req.first_frame = first_frame;
    req.n_frames = n_frames;
    req.output_bytes = out_len;
    req.output_offset = out_offset;
    rc = roundtrip(ing, path, &req, fds, 2, out_len, meta, fmt, NULL, NULL, err);
    close(fds[0]);
    return rc;
}

int agora__ingest_decode(agora__ingest *ing, const char *path, uint32_t first_frame,
                         uint32_t n_frames, int mode, int out_fd, uint64_t out_offset,
                         uint64_t out_len, agora__dicom_pixel_format *fmt_out, agora__error *err)
{
    agora__dicom_pixel_format fmt;
    int rc = decode_checked(ing, path, first_frame, n_frames, mode, out_fd, out_offset, out_len,
                            &fmt, NULL, err);
    if (rc == 0 && fmt_out != NULL)
        *fmt_out = fmt;
    return rc;
}

/* One series decode: frames go to out_offset + position * frame_bytes, in any request order. */
typedef struct series_dec {
    agora__ingest *ing;
    const agora__dicom_series *s;
    int mode, out_fd;
    uint64_t out_offset, out_len;
    uint64_t fb; /* frame bytes, known after the first request (0 before) */
    agora__dicom_pixel_format first;
    agora__error *err;
} series_dec;

/* The reply's file is the scanned one and decodes to the first request's layout. */
static int check_decoded(series_dec *d, uint32_t inst, const agora__dicom_pixel_format *fmt,
                         agora__ingest_meta *meta)
{
    const agora__dicom_instance *in = &d->s->instances[inst];
    int same = strcmp(meta->sop_uid, in->sop_uid) == 0 && meta->rows == in->rows &&
               meta->columns == in->columns && meta->frames == in->frames;
    agora__ingest_meta_free(meta);
    if (!same)
        return agora__error_set(d->err, AGORA_EINPUT, "%s: the file changed since it was scanned",
                                in->path);
    if (d->fb == 0) {
        if (fmt->frame_bytes == 0 || (uint64_t)d->s->n_frames > d->out_len / fmt->frame_bytes)
            return agora__error_set(d->err, AGORA_EINVAL,
                                    "output window of %llu bytes is smaller than the series",
                                    (unsigned long long)d->out_len);
        d->first = *fmt;
        d->fb = fmt->frame_bytes;
    } else if (fmt->frame_bytes != d->first.frame_bytes ||
               fmt->pixel_type != d->first.pixel_type) {
        return agora__error_set(d->err, AGORA_EINPUT,
                                "instance %u decodes to a different layout than the first", inst);
    }
    return 0;
}

/* File frames [frame, frame+n) of instance inst straight to series positions pos.. (a run). */
static int decode_run(series_dec *d, uint32_t inst, uint32_t frame, uint32_t n, uint32_t pos)
{
    uint64_t off = d->fb ? (uint64_t)pos * d->fb : 0; /* pos is 0 for the very first request */
    agora__dicom_pixel_format fmt;
    agora__ingest_meta meta;
    int rc = decode_checked(d->ing, d->s->instances[inst].path, frame, n, d->mode, d->out_fd,
                            d->out_offset + off, d->out_len - off, &fmt, &meta, d->err);
    return rc != 0 ? rc : check_decoded(d, inst, &fmt, &meta);
}

/* Bytes of scratch for one scattered request; a frame larger than this goes alone. */
#define SCATTER_SCRATCH_BYTES ((uint64_t)256 << 20)

/* File frames [frame, frame+n) of instance inst into a scratch memfd in one request, then each
 * wanted one (dest[k] = series position + 1, 0 = not wanted) copied to its place. */
static int decode_scatter(series_dec *d, uint32_t inst, uint32_t frame, uint32_t n,
                          const uint32_t *dest, int scratch)
{
    uint64_t room = (uint64_t)n * d->fb;
    if (ftruncate(scratch, 0) != 0 || ftruncate(scratch, (off_t)room) != 0)
        return agora__error_set(d->err, AGORA__ERR(errno), "scratch memfd: %s", strerror(errno));
    agora__dicom_pixel_format fmt;
    agora__ingest_meta meta;
    int rc = decode_checked(d->ing, d->s->instances[inst].path, frame, n, d->mode, scratch, 0,
                            room, &fmt, &meta, d->err);
    if (rc == 0)
        rc = check_decoded(d, inst, &fmt, &meta);
    if (rc != 0)
        return rc;
    /* Untrusted pixels, like any the worker writes: only copied, never interpreted. */
    const uint8_t *map = mmap(NULL, (size_t)room, PROT_READ, MAP_SHARED, scratch, 0);
    if (map == MAP_FAILED)
        return agora__error_set(d->err, AGORA__ERR(errno), "mapping the scratch memfd: %s", strerror(errno));
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        if (dest[k] == 0)
            continue;
        uint64_t off = (uint64_t)(dest[k] - 1) * d->fb;
        const uint8_t *src = map + (uint64_t)k * d->fb;
        for (uint64_t w = 0; w < d->fb && rc == 0;) {
            ssize_t r = pwrite(d->out_fd, src + w, (size_t)(d->fb - w),
                               (off_t)(d->out_offset + off + w));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                rc = agora__error_set(d->err, AGORA__ERR(errno), "writing a frame: %s", strerror(errno));
            else
                w += (uint64_t)r;
        }
    }
    munmap((void *)(uintptr_t)map, (size_t)room);
    return rc;
}

/* Every frame of instance inst the series still wants (dest over file frames [lo, hi]), when
 * they are not one run in series order (shuffled frames, or a volume of an enhanced object
 * whose frames interleave with other volumes'). Windows of the file are decoded once each into
 * scratch and the wanted frames copied out: one request per window instead of one per frame.
 * A window is decoded whole when the file is uncompressed (decoding is a copy) or at least a
 * quarter of its frames are wanted; otherwise its wanted runs are decoded on their own, so a
 * compressed object is never decoded many times over. */
static int decode_instance_scattered(series_dec *d, uint32_t inst, uint32_t lo, uint32_t hi,
                                     const uint32_t *dest)
{
    int native = agora__dicom_ts_is_native(d->s->instances[inst].transfer_syntax);
    uint64_t per = SCATTER_SCRATCH_BYTES / d->fb;
    uint32_t window = per == 0 ? 1 : per > UINT32_MAX ? UINT32_MAX : (uint32_t)per;
    int scratch = memfd_create("agora-ingest-scratch", MFD_CLOEXEC);
    if (scratch < 0)
        return agora__error_set(d->err, AGORA__ERR(errno), "memfd_create: %s", strerror(errno));
    int rc = 0;
    for (uint64_t c = lo; c <= hi && rc == 0; c += window) {
        uint32_t n = (uint32_t)((uint64_t)hi - c + 1 < window ? (uint64_t)hi - c + 1 : window);
        const uint32_t *dc = dest + (c - lo);
        uint32_t a = 0, b = n, wanted = 0; /* first and one past the last wanted */
        while (a < n && dc[a] == 0)
            a++;
        while (b > a && dc[b - 1] == 0)
            b--;
        for (uint32_t k = a; k < b; k++)
            wanted += dc[k] != 0;
        if (wanted == 0)
            continue;
        if (native || (uint64_t)wanted * 4 >= (uint64_t)(b - a)) {
            rc = decode_scatter(d, inst, (uint32_t)c + a, b - a, dc + a, scratch);
            continue;
        }
        for (uint32_t k = a; k < b && rc == 0;) {
            if (dc[k] == 0) {
                k++;
                continue;
            }
            uint32_t m = 1;
            while (k + m < b && dc[k + m] == dc[k] + m)
                m++;
            rc = decode_run(d, inst, (uint32_t)c + k, m, dc[k] - 1);
            k += m;
        }
    }
    close(scratch);
    return rc;
}

int agora__ingest_series_decode(agora__ingest *ing, const agora__dicom_series *s, int mode,
                                int out_fd, uint64_t out_offset, uint64_t out_len,
                                agora__dicom_pixel_format *fmt_out, agora__error *err)
{
    if (s == NULL || s->n_frames == 0)
        return agora__error_set(err, AGORA_EINVAL, "empty series");
    if (!s->decodable)
        return agora__error_set(err, AGORA_EINPUT,
                                "the series mixes pixel layouts; it cannot be decoded as one "
                                "volume (see its warnings)");
    for (uint32_t i = 0; i < s->n_frames; i++)
        if (s->frames[i].instance >= s->n_instances ||
            s->frames[i].frame >= s->instances[s->frames[i].instance].frames)
            return agora__error_set(err, AGORA_EINVAL, "series frame %u names no instance frame",
                                    i);
    series_dec d = {.ing = ing, .s = s, .mode = mode, .out_fd = out_fd,
                    .out_offset = out_offset, .out_len = out_len, .err = err};
    /* Runs: consecutive series positions holding consecutive frames of one instance. An
     * instance with more than one run is decoded scattered (below), the others run by run. */
    uint32_t *runs = calloc(s->n_instances, sizeof *runs);
    if (runs == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < s->n_frames; i++)
        if (i == 0 || s->frames[i].instance != s->frames[i - 1].instance ||
            s->frames[i].frame != s->frames[i - 1].frame + 1)
            runs[s->frames[i].instance]++;
    int rc = 0;
    uint32_t first_run = 0; /* series frames decoded by the very first request */
    for (uint32_t i = 0; i < s->n_frames && rc == 0;) {
        const agora__dicom_series_frame *fr = &s->frames[i];
        uint32_t n = 1;
        while (i + n < s->n_frames && s->frames[i + n].instance == fr->instance &&
               s->frames[i + n].frame == fr->frame + n)
            n++;
        /* The first run always goes straight to position 0: it tells the frame size. */
        if (i == 0 || runs[fr->instance] <= 1)
            rc = decode_run(&d, fr->instance, fr->frame, n, i);
        if (i == 0)
            first_run = n;
        i += n;
    }
    for (uint32_t inst = 0; inst < s->n_instances && rc == 0; inst++) {
        if (runs[inst] <= 1)
            continue;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (uint32_t i = first_run; i < s->n_frames; i++)
            if (s->frames[i].instance == inst) {
                lo = s->frames[i].frame < lo ? s->frames[i].frame : lo;
                hi = s->frames[i].frame > hi ? s->frames[i].frame : hi;
            }
        if (lo > hi)
            continue;
        uint32_t *dest = calloc((size_t)(hi - lo) + 1, sizeof *dest);
        if (dest == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
            break;
        }
        for (uint32_t i = first_run; i < s->n_frames; i++)
            if (s->frames[i].instance == inst)
                dest[s->frames[i].frame - lo] = i + 1;
        rc = decode_instance_scattered(&d, inst, lo, hi, dest);
        free(dest);
    }
    free(runs);
    if (rc == 0 && fmt_out != NULL)
        *fmt_out = d.first;
    return rc;
}

int agora__ingest_meta_to_instance(agora__ingest_meta *m, const char *path,
                                   agora__dicom_instance *in, char study_uid[65],
                                   char series_uid[65], char modality[17], agora__error *err)
{
    memset(in, 0, sizeof *in);
    if (m->rows == 0 || m->columns == 0)
        return agora__error_set(err, AGORA_EINPUT, "no image (no Rows/Columns)");
    agora__strlcpy(study_uid, m->study_uid, 65);
    agora__strlcpy(series_uid, m->series_uid, 65);
    agora__strlcpy(modality, m->modality, 17);
    agora__strlcpy(in->sop_uid, m->sop_uid, sizeof in->sop_uid);
    in->instance_number = m->instance_number;
    in->frames = m->frames;
    in->rows = m->rows;
    in->columns = m->columns;
    in->samples_per_pixel = m->samples_per_pixel;
    in->bits_allocated = m->bits_allocated;
    in->bits_stored = m->bits_stored;
    in->pixel_representation = m->pixel_representation;
    agora__strlcpy(in->photometric, m->photometric, sizeof in->photometric);
    agora__strlcpy(in->transfer_syntax, m->transfer_syntax, sizeof in->transfer_syntax);
    in->has_position = m->has_position;
    in->has_orientation = m->has_orientation;
    in->has_spacing = m->has_spacing;
    memcpy(in->position, m->position, sizeof in->position);
    memcpy(in->orientation, m->orientation, sizeof in->orientation);
    memcpy(in->pixel_spacing, m->pixel_spacing, sizeof in->pixel_spacing);
    in->path = strdup(path);
    if (in->path == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    in->frame_positions = m->frame_positions;
    m->frame_positions = NULL;
    in->frame_meta = m->frame_meta;
    m->frame_meta = NULL;
    in->has_rescale = m->has_rescale;
    memcpy(in->rescale, m->rescale, sizeof in->rescale);
    agora__strlcpy(in->rescale_type, m->rescale_type, sizeof in->rescale_type);
    return 0;
}

int agora__ingest_roundtrip_checked(agora__ingest *ing, const char *path,
                                    Agora__Ipc__IngestRequest *req, const int *fds, size_t n_fds,
                                    agora__ingest_check_fn check, void *ctx, agora__error *err)
{
    return roundtrip(ing, path, req, fds, n_fds, 0, NULL, NULL, check, ctx, err);
}
