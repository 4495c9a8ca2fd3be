/*
 * The job loop of a confined worker. A Job carries two memfds: [0] pixels (must be sealed
 * against write/grow/shrink; mapped read-only) and [1] the output area for masks (mapped
 * read-write, never more than its size). Every offset and size in the Job is checked against
 * the mappings before the plugin sees a pointer.
 *
 * fork_per_job (zygote, protocol 2): see "zygote mode" below.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAMES          65536u
#define MAX_DIM             65536u
#define MAX_ATTRS           1024u

typedef struct mapped_job {
    const uint8_t *pixels;
    size_t pixel_len;
    uint8_t *out;
    size_t out_len;
} mapped_job;

static size_t sample_size(int32_t type)
{
    switch (type) {
    case AGORA_PIXEL_U8:
    case AGORA_PIXEL_I8:
        return 1;
    case AGORA_PIXEL_U16:
    case AGORA_PIXEL_I16:
        return 2;
    case AGORA_PIXEL_U32:
    case AGORA_PIXEL_I32:
    case AGORA_PIXEL_F32:
        return 4;
    case AGORA_PIXEL_F64:
        return 8;
    default:
        return 0;
    }
}

static void copy_doubles(double *dst, size_t want, const double *src, size_t n)
{
    for (size_t i = 0; i < want; i++)
        dst[i] = (n == want) ? src[i] : (double)NAN;
}

/* Bytes of one frame of a valid image description, else 0. */
static uint64_t image_frame_bytes(const Agora__Ipc__ImageInfo *ii)
{
    size_t ss = ii ? sample_size(ii->pixel_type) : 0;
    if (ss == 0 || ii->rows == 0 || ii->rows > MAX_DIM || ii->columns == 0 ||
        ii->columns > MAX_DIM || (ii->samples_per_pixel != 1 && ii->samples_per_pixel != 3) ||
        ii->frames == 0 || ii->frames > MAX_FRAMES ||
        ii->photometric < AGORA_PHOTOMETRIC_MONOCHROME1 || ii->photometric > AGORA_PHOTOMETRIC_RGB)
        return 0;
    uint64_t fb = (uint64_t)ii->rows * ii->columns * ii->samples_per_pixel * ss;
    return ii->frame_bytes == fb ? fb : 0;
}

static void fill_image(agora_image *im, const Agora__Ipc__ImageInfo *ii)
{
    im->struct_size = sizeof(agora_image);
    im->rows = ii->rows;
    im->columns = ii->columns;
    im->frames = ii->frames;
    im->samples_per_pixel = ii->samples_per_pixel;
    im->pixel_type = ii->pixel_type;
    im->bits_stored = ii->bits_stored;
    im->photometric = ii->photometric;
    copy_doubles(im->pixel_spacing, 2, ii->pixel_spacing, ii->n_pixel_spacing);
    im->slice_thickness = ii->slice_thickness;
    im->spacing_between_slices = ii->spacing_between_slices;
    im->rescale_slope = ii->rescale_slope;
    im->rescale_intercept = ii->rescale_intercept;
    im->rescale_type = ii->rescale_type;
    im->modality = ii->modality;
    im->study_uid = ii->study_uid;
    im->series_uid = ii->series_uid;
}

/* The series of a job: one (the image) or, for a study-scope job, Job.series, checked to be
 * contiguous, to start with the image and to cover every frame. Returns the count or 0. */
static uint32_t job_series(const Agora__Ipc__Job *m, const Agora__Ipc__ImageInfo **sii,
                           uint32_t *first, uint64_t *fb, char *why, size_t why_len)
{
    const Agora__Ipc__ImageInfo *ii = m->image;
    if (m->n_series == 0) {
        sii[0] = ii;
        first[0] = 0;
        fb[0] = image_frame_bytes(ii);
        if (fb[0] == 0 || m->n_frames != ii->frames) {
            snprintf(why, why_len,
                     "job image description is invalid (dimensions, type, frame counts or "
                     "frame_bytes)");
            return 0;
        }
        return 1;
    }
    if (m->n_series > AGORA_STUDY_MAX_SERIES || m->n_frames > MAX_FRAMES) {
        snprintf(why, why_len, "a study-scope job has more than %u series or %u frames",
                 AGORA_STUDY_MAX_SERIES, MAX_FRAMES);
        return 0;
    }
    uint64_t next = 0;
    for (uint32_t s = 0; s < m->n_series; s++) {
        const Agora__Ipc__SeriesInfo *si = m->series[s];
        sii[s] = si ? si->image : NULL;
        first[s] = si ? si->first_frame : 0;
        fb[s] = image_frame_bytes(sii[s]);
        if (fb[s] == 0 || first[s] != next) {
            snprintf(why, why_len,
                     "series %u of the study-scope job is invalid (dimensions, type, frame "
                     "counts or not contiguous)",
                     s);
            return 0;
        }
        next += sii[s]->frames;
    }
    if (next != m->n_frames || sii[0]->frames != ii->frames || sii[0]->rows != ii->rows ||
        sii[0]->columns != ii->columns || sii[0]->pixel_type != ii->pixel_type) {
        snprintf(why, why_len,
                 "the study-scope job's series do not cover its frames or do not start with "
                 "its image");
        return 0;
    }
    return m->n_series;
}

/* Map the memfds and build the image views. Returns 0 or -1 with why filled. */
static int prepare(agora_job *job, const Agora__Ipc__Job *m, int fds[2], mapped_job *mj, char *why,
                   size_t why_len)
{
    memset(mj, 0, sizeof *mj);
    const Agora__Ipc__ImageInfo *ii = m->image;
    if (ii == NULL) {
        snprintf(why, why_len, "job has no image description");
        return -1;
    }
    if (m->n_attributes > MAX_ATTRS) {
        snprintf(why, why_len, "job carries more than %u attributes", MAX_ATTRS);
        return -1;
    }
    const Agora__Ipc__ImageInfo *sii[AGORA_STUDY_MAX_SERIES];
    uint32_t first[AGORA_STUDY_MAX_SERIES];
    uint64_t fbs[AGORA_STUDY_MAX_SERIES];
    uint32_t ns = job_series(m, sii, first, fbs, why, why_len);
    if (ns == 0)
        return -1;
    int seals = fcntl(fds[0], F_GET_SEALS);
    int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
    if (seals < 0 || (seals & need) != need) {
        snprintf(why, why_len, "the pixel memfd is not sealed against write/shrink/grow");
        return -1;
    }
    struct stat st0, st1;
    if (fstat(fds[0], &st0) != 0 || fstat(fds[1], &st1) != 0 || st0.st_size < 0 ||
        st1.st_size < 0 || (uint64_t)st0.st_size < m->pixel_bytes ||
        (uint64_t)st1.st_size < m->output_bytes || m->pixel_bytes == 0 ||
        m->pixel_bytes > SIZE_MAX || m->output_bytes > SIZE_MAX) {
        snprintf(why, why_len, "a job memfd is smaller than the sizes the job declares");
        return -1;
    }
    for (uint32_t s = 0, i = 0; s < ns; s++) {
        for (uint32_t k = 0; k < sii[s]->frames; k++, i++) {
            uint64_t off = m->frames[i]->offset;
            if (off > m->pixel_bytes || fbs[s] > m->pixel_bytes - off) {
                snprintf(why, why_len, "frame %u lies outside the pixel memfd", i);
                return -1;
            }
        }
    }
    void *px = mmap(NULL, (size_t)m->pixel_bytes, PROT_READ, MAP_SHARED, fds[0], 0);
    if (px == MAP_FAILED) {
        snprintf(why, why_len, "mapping the pixel memfd failed: %s", strerror(errno));
        return -1;
    }
    mj->pixels = px;
    mj->pixel_len = (size_t)m->pixel_bytes;
    if (m->output_bytes > 0) {
        void *o =
            mmap(NULL, (size_t)m->output_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
        if (o == MAP_FAILED) {
            snprintf(why, why_len, "mapping the output memfd failed: %s", strerror(errno));
            return -1;
        }
        mj->out = o;
        mj->out_len = (size_t)m->output_bytes;
    }
    agora_frame *frames = calloc(m->n_frames, sizeof *frames);
    agora_image *images = ns > 1 ? calloc(ns, sizeof *images) : NULL;
    if (frames == NULL || (ns > 1 && images == NULL)) {
        free(frames);
        snprintf(why, why_len, "out of memory for %zu frame descriptors", m->n_frames);
        return -1;
    }
    for (uint32_t s = 0, i = 0; s < ns; s++) {
        for (uint32_t k = 0; k < sii[s]->frames; k++, i++) {
            const Agora__Ipc__FrameInfo *fi = m->frames[i];
            frames[i].struct_size = sizeof(agora_frame);
            frames[i].index = i;
            frames[i].data = mj->pixels + fi->offset;
            frames[i].size_bytes = fbs[s];
            copy_doubles(frames[i].position, 3, fi->position, fi->n_position);
            copy_doubles(frames[i].orientation, 6, fi->orientation, fi->n_orientation);
            frames[i].sop_instance_uid = fi->sop_instance_uid;
            /* A slope of 0 is "not sent" (an older host): the image's rescale holds. */
            int own = fi->rescale_slope != 0.0;
            frames[i].rescale_slope = own ? fi->rescale_slope : sii[s]->rescale_slope;
            frames[i].rescale_intercept = own ? fi->rescale_intercept : sii[s]->rescale_intercept;
        }
        if (images != NULL)
            fill_image(&images[s], sii[s]);
        job->series_first[s] = first[s];
    }
    fill_image(&job->image, ii);
    job->series_images = images != NULL ? images : &job->image;
    job->n_series = ns;
    job->frames = frames;
    job->n_frames = m->n_frames;
    job->attrs = m->attributes;
    job->n_attrs = m->n_attributes;
    job->out_area = mj->out;
    job->out_size = mj->out_len;
    return 0;
}

static void unmap(mapped_job *mj)
{
    if (mj->pixels)
        munmap((void *)mj->pixels, mj->pixel_len);
    if (mj->out)
        munmap(mj->out, mj->out_len);
    memset(mj, 0, sizeof *mj);
}

static uint64_t cpu_us(const struct rusage *ru)
{
    return (uint64_t)ru->ru_utime.tv_sec * 1000000u + (uint64_t)ru->ru_utime.tv_usec +
           (uint64_t)ru->ru_stime.tv_sec * 1000000u + (uint64_t)ru->ru_stime.tv_usec;
}

static void send_result(Agora__Ipc__Result *r)
{
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_RESULT;
    f.result = r;
    int rc = agora__runner_send(&f);
    if (rc == -EMSGSIZE) {
        /* Should not happen (items and bytes are capped as they arrive); fail the job, not the
         * worker. */
        r->n_findings = r->n_measurements = r->n_regions = 0;
        r->summary = (char *)"";
        r->status = AGORA__IPC__JOB_STATUS__JOB_PLUGIN_ERROR;
        r->plugin_code = AGORA_ELIMIT;
        r->error = (char *)"the result exceeded the frame size limit";
        rc = agora__runner_send(&f);
    }
    if (rc != 0)
        _exit(AGORA__RUNNER_EXIT_PROTOCOL); /* the host is gone */
}

/* Run one job in this process and send its Result. Returns 1 when the host asked to shut
 * down during the job. */
static int run_job(const agora__runner_setup *s, agora__runner_plugin *p, const Agora__Ipc__Job *m,
                   int fds[2])
{
    agora_job *job = agora__runner_job();
    agora__job_init(job, &s->limits, m->job_id);
    mapped_job mj;
    char why[256];
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    r.job_id = m->job_id;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    if (prepare(job, m, fds, &mj, why, sizeof why) != 0 ||
        agora__runner_fit_abi(job, p->desc->abi_version, why, sizeof why) != 0) {
        r.status = AGORA__IPC__JOB_STATUS__JOB_INPUT_ERROR;
        r.plugin_code = AGORA_EINVAL;
        r.error = why;
    } else {
        agora__job_set_active(job, 1);
        int32_t rc = p->desc->process(p->state, job, &job->image);
        agora__job_set_active(job, 0);
        agora__job_fill_result(job, &r);
        r.plugin_code = rc;
        if (rc == AGORA_OK)
            r.status = AGORA__IPC__JOB_STATUS__JOB_OK;
        else if (rc == AGORA_ECANCELLED && job->cancelled)
            r.status = AGORA__IPC__JOB_STATUS__JOB_CANCELLED;
        else
            r.status = AGORA__IPC__JOB_STATUS__JOB_PLUGIN_ERROR;
        if (job->error != NULL)
            r.error = job->error;
        else if (rc != AGORA_OK) {
            snprintf(why, sizeof why, "the plugin returned %d without calling set_error", rc);
            r.error = why;
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    r.cpu_us = cpu_us(&ru1) - cpu_us(&ru0);
    r.peak_rss_kb = ru1.ru_maxrss > 0 ? (uint64_t)ru1.ru_maxrss : 0;
    send_result(&r);
    int shutdown = job->shutdown_requested;
    agora__job_free_results(job);
    free(job->frames);
    job->frames = NULL;
    job->n_frames = 0;
    if (job->series_images != &job->image)
        free(job->series_images);
    job->series_images = NULL;
    job->n_series = 0;
    job->attrs = NULL;
    job->n_attrs = 0;
    unmap(&mj);
    return shutdown;
}

/* ---- zygote mode (protocol 2) ----------------------------------------------------------------
 *
 * The zygote runs only runner code after init: no thread of the plugin's (checked before Ready
 * and before every fork), no signal handler of the plugin's, no descriptor of the plugin's. For
 * each ForkJob it forks a job process and closes its copy of the job channel at once; it never
 * reads a job channel and never sees a job's memfds. The job process keeps only its channel,
 * receives its Job there, sends one Result there and exits. The zygote reports the wait status
 * as JobExit; nothing is shared back (no shared page: the host learns whether a Result came
 * from the job channel itself). */

/* unshare(CLONE_THREAD|CLONE_SIGHAND|CLONE_VM) unshares nothing but fails with EINVAL while
 * another thread (or a task sharing the address space or the signal handlers) exists. A thread
 * that was joined may take a moment to leave the thread group: retry for up to ~200 ms. */
static int single_threaded(void)
{
    for (int i = 0; i < 100; i++) {
        if (unshare(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) == 0)
            return 1;
        if (errno != EINVAL)
            return 0;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int max_fds(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4096)
        return 4096;
    return (int)rl.rlim_cur;
}

/* Close every descriptor but keep (fd 3, where the plugin finds the host channel in warm mode
 * too), then make 0..2 read ends of fresh empty pipes whose write ends are closed
 * (reads see EOF, writes fail): pipe2 returns the lowest free numbers. Returns 0 or -errno. */
static int only_descriptor(int keep)
{
    int n = max_fds();
    for (int fd = 0; fd < n; fd++)
        if (fd != keep)
            (void)close(fd);
    if (keep != AGORA__RUNNER_FD)
        return -EBADF; /* the zygote keeps 0..2 open and 3 free: ForkJob's channel is fd 3 */
    for (int want = 0; want <= 2; want++) {
        int p[2];
        if (pipe2(p, 0) != 0)
            return -errno;
        if (p[1] != want)
            (void)close(p[1]);
        if (p[0] != want)
            (void)close(p[0]);
    }
    return 0;
}

static void signals_to(void (*handler)(int))
{
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        /* SIGCHLD keeps its default (ignored, but wait4 still sees the child). */
        sa.sa_handler = sig == SIGCHLD ? SIG_DFL : handler;
        sigemptyset(&sa.sa_mask);
        (void)sigaction(sig, &sa, NULL); /* glibc refuses its two internal signals: fine */
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    stack_t ss = {.ss_flags = SS_DISABLE};
    (void)sigaltstack(&ss, NULL);
}

/* How many more tasks RLIMIT_NPROC lets this worker's user start: fork children that block
 * on a pipe until fork fails with EAGAIN, then release and reap them. The count is per user
 * namespace, so it sees every process and thread of this sandbox, wherever it was reparented.
 * Returns the count, or -errno (-ENOSPC when the limit does not bind: nothing to compare). */
int agora__runner_spare_tasks(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NPROC, &rl) != 0)
        return -errno;
    int cap = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4096 ? 4096 : (int)rl.rlim_cur;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t kids[4097];
    int n = 0, err = 0;
    while (n <= cap) {
        pid_t c = _Fork(); /* no atfork handler of the plugin's runs (see zygote_fork) */
        if (c == 0) {
            char b;
            close(p[1]);
            while (read(p[0], &b, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        if (c < 0) {
            err = errno;
            break;
        }
        kids[n++] = c;
    }
    close(p[0]);
    close(p[1]);
    for (int i = 0; i < n; i++)
        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    if (n > cap)
        return -ENOSPC;
    return err == EAGAIN ? n : -(err ? err : EIO);
}

void agora__runner_zygote_prepare(int spare_before)
{
    if (!single_threaded())
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_INIT, AGORA_EUNSUPPORTED,
                           "fork-per-job: the plugin's init left threads running; in this mode "
                           "init must join every thread it starts (jobs may start threads), "
                           "because a thread in the zygote would see every later job");
    /* A process init forked and left running would share the zygote's descriptors. Reap
     * what has exited; refuse when one still lives. (A grandchild orphaned to the reaper is
     * not seen here: docs/sandbox.md, "What fork mode does not guarantee".) */
    for (;;) {
        int st;
        pid_t c = waitpid(-1, &st, WNOHANG);
        if (c > 0)
            continue;
        if (c == 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_INIT, AGORA_EUNSUPPORTED,
                               "fork-per-job: the plugin's init left a process running; init "
                               "must not start processes");
        break; /* ECHILD: none */
    }
    /* Any task init left anywhere in the sandbox (an orphan under the reaper too) uses up one
     * of the user's RLIMIT_NPROC slots that were free before init. An exiting task may take a
     * moment to go: retry for up to ~200 ms. */
    int spare = -1;
    for (int i = 0; i < 20; i++) {
        spare = agora__runner_spare_tasks();
        if (spare >= spare_before || spare < 0)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (spare < 0)
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_INIT, spare,
                           "fork-per-job: counting the sandbox's tasks after init failed: %s",
                           strerror(-spare));
    if (spare < spare_before)
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_INIT, AGORA_EUNSUPPORTED,
                           "fork-per-job: the plugin's init left %d task(s) running in the "
                           "sandbox (a process or thread); init must not start processes and "
                           "must join its threads",
                           spare_before - spare);
    /* A signal from a job process (tgkill is allowed in jobs) is ignored: no plugin handler is
     * left to run in the zygote. SIGKILL/SIGSTOP still end or stop it (the host then kills the
     * worker on its job deadline: no later job runs in it). */
    signals_to(SIG_IGN);
    /* Pipes, eventfds and the like made in init (and any stdio the plugin replaced) go; the
     * host socket stays. */
    int n = max_fds();
    for (int fd = 0; fd < n; fd++)
        if (fd != AGORA__RUNNER_ZYGOTE_FD && fd > 2)
            (void)close(fd);
    for (int fd = 0; fd <= 2; fd++)
        (void)close(fd);
    for (int want = 0; want <= 2; want++) {
        int p[2];
        if (pipe2(p, 0) != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_INIT, -errno,
                               "fork-per-job: a pipe for the zygote's stdio failed: %s",
                               strerror(errno));
        if (p[1] != want)
            (void)close(p[1]);
        if (p[0] != want)
            (void)close(p[0]);
    }
}

static void send_job_exit(uint64_t job_id, int st, const struct rusage *ru)
{
    Agora__Ipc__JobExit e = AGORA__IPC__JOB_EXIT__INIT;
    e.job_id = job_id;
    if (ru == NULL) { /* the fork failed: no job process */
        e.exit_code = -1;
        e.signal = 0;
    } else if (WIFSIGNALED(st)) {
        e.exit_code = -1;
        e.signal = WTERMSIG(st);
    } else {
        e.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        e.signal = 0;
    }
    if (ru != NULL) {
        e.cpu_us = cpu_us(ru);
        e.peak_rss_kb = ru->ru_maxrss > 0 ? (uint64_t)ru->ru_maxrss : 0;
    }
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_JOB_EXIT;
    f.job_exit = &e;
    if (agora__runner_send(&f) != 0)
        _exit(AGORA__RUNNER_EXIT_PROTOCOL); /* the host is gone */
}

/* The job process: only its channel, the compute filter, one Job, one Result, exit. */
static void __attribute__((noreturn))
job_process(const agora__runner_setup *s, agora__runner_plugin *p, int chan, uint64_t job_id)
{
    if (agora__runner_filter_install(&s->bpf[AGORA__PROFILE_COMPUTE]) != 0)
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    if (only_descriptor(chan) != 0)
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    chan = AGORA__RUNNER_FD;
    signals_to(SIG_DFL);
    agora__runner_channel_set_fd(chan);
    Agora__Ipc__Frame *f;
    int fds[AGORA__FRAME_MAX_FDS];
    size_t n_fds;
    char why[256];
    int rc = agora__runner_frame_read(chan, AGORA__FRAME_HOST_TO_RUNNER_MAX, &f, fds, &n_fds, why,
                                      sizeof why);
    if (rc == -2)
        _exit(AGORA__RUNNER_EXIT_PROTOCOL); /* the host closed the job channel */
    if (rc != 0)
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO, "%s", why);
    if (f->msg_case != AGORA__IPC__FRAME__MSG_JOB || f->job->job_id != job_id)
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO,
                           "a job channel must carry the Job of its ForkJob first (got type %d)",
                           (int)f->msg_case);
    (void)run_job(s, p, f->job, fds);
    _exit(0);
}

/* One ForkJob. Returns 0, or exits when the zygote cannot continue. */
static void zygote_fork(const agora__runner_setup *s, agora__runner_plugin *p, uint64_t job_id,
                        int chan)
{
    if (!single_threaded())
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, AGORA_EINTERNAL,
                           "fork-per-job: the zygote is no longer single-threaded; refusing "
                           "to fork");
    /* _Fork, not fork: fork() would run the pthread_atfork handlers init registered, i.e.
     * plugin code in the zygote while it holds this job's channel. Without threads (checked)
     * nothing else fork() does is needed. */
    pid_t pid = _Fork();
    if (pid == 0)
        job_process(s, p, chan, job_id);
    int e = errno;
    close(chan); /* at once: the zygote never holds a job's channel while it runs */
    if (pid < 0) {
        (void)e;
        send_job_exit(job_id, 0, NULL);
        return;
    }
    int st = 0;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR)
            _exit(AGORA__RUNNER_EXIT_INTERNAL);
    }
    send_job_exit(job_id, st, &ru);
}

int agora__runner_serve(const agora__runner_setup *s, agora__runner_plugin *p)
{
    for (;;) {
        Agora__Ipc__Frame *f;
        int fds[AGORA__FRAME_MAX_FDS];
        size_t n_fds;
        char why[256];
        int rc =
            agora__runner_frame_read(agora__runner_channel_fd(), AGORA__FRAME_HOST_TO_RUNNER_MAX,
                                     &f, fds, &n_fds, why, sizeof why);
        if (rc == -2)
            break; /* the host closed the channel: same as Shutdown */
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO, "%s", why);
        int shutdown = 0;
        int want = s->fork_per_job ? AGORA__IPC__FRAME__MSG_FORK_JOB : AGORA__IPC__FRAME__MSG_JOB;
        if ((f->msg_case == AGORA__IPC__FRAME__MSG_JOB ||
             f->msg_case == AGORA__IPC__FRAME__MSG_FORK_JOB) &&
            (int)f->msg_case != want) {
            agora__ipc__frame__free_unpacked(f, NULL);
            for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO,
                               s->fork_per_job
                                   ? "in fork-per-job mode jobs come as ForkJob, never as Job"
                                   : "ForkJob is only valid in fork-per-job mode");
        }
        switch (f->msg_case) {
        case AGORA__IPC__FRAME__MSG_JOB:
            shutdown = run_job(s, p, f->job, fds);
            close(fds[0]);
            close(fds[1]);
            break;
        case AGORA__IPC__FRAME__MSG_FORK_JOB:
            zygote_fork(s, p, f->fork_job->job_id, fds[0]);
            break;
        case AGORA__IPC__FRAME__MSG_SHUTDOWN:
            shutdown = 1;
            break;
        case AGORA__IPC__FRAME__MSG_CANCEL:
            break; /* for a job that already finished */
        default: {
            int type = (int)f->msg_case;
            agora__ipc__frame__free_unpacked(f, NULL);
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO,
                               "the host sent an unexpected frame of type %d", type);
        }
        }
        agora__ipc__frame__free_unpacked(f, NULL);
        if (shutdown)
            break;
    }
    if (p->desc->fini != NULL)
        p->desc->fini(p->state);
    return AGORA__RUNNER_EXIT_OK;
}
