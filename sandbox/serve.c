/*
 * The job loop of a confined worker. A Job carries two memfds: [0] pixels (must be sealed
 * against write/grow/shrink; mapped read-only) and [1] the output area for masks (mapped
 * read-write, never more than its size). Every offset and size in the Job is checked against
 * the mappings before the plugin sees a pointer.
 *
 * fork_per_job (zygote): the initialised worker forks one child per Job; the child stacks the
 * compute filter (no fork), runs the job, sends Result and _exits; the zygote reports a child
 * that died without a Result as JOB_CHILD_DIED.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FRAMES          65536u
#define MAX_DIM             65536u
#define MAX_ATTRS           1024u
#define EXIT_CHILD_SHUTDOWN 3 /* zygote child: Result sent and the host asked to shut down */

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

/* Map the memfds and build the image view. Returns 0 or -1 with why filled. */
static int prepare(agora_job *job, const Agora__Ipc__Job *m, int fds[2], mapped_job *mj, char *why,
                   size_t why_len)
{
    memset(mj, 0, sizeof *mj);
    const Agora__Ipc__ImageInfo *ii = m->image;
    if (ii == NULL) {
        snprintf(why, why_len, "job has no image description");
        return -1;
    }
    size_t ss = sample_size(ii->pixel_type);
    if (ii->rows == 0 || ii->rows > MAX_DIM || ii->columns == 0 || ii->columns > MAX_DIM ||
        (ii->samples_per_pixel != 1 && ii->samples_per_pixel != 3) || ss == 0 || ii->frames == 0 ||
        ii->frames > MAX_FRAMES || m->n_frames != ii->frames ||
        (ii->photometric < AGORA_PHOTOMETRIC_MONOCHROME1 ||
         ii->photometric > AGORA_PHOTOMETRIC_RGB) ||
        m->n_attributes > MAX_ATTRS) {
        snprintf(why, why_len,
                 "job image description is invalid (dimensions, type, frame or "
                 "attribute counts)");
        return -1;
    }
    uint64_t fb = (uint64_t)ii->rows * ii->columns * ii->samples_per_pixel * ss;
    if (ii->frame_bytes != fb) {
        snprintf(why, why_len, "job frame_bytes %llu does not match the geometry (%llu)",
                 (unsigned long long)ii->frame_bytes, (unsigned long long)fb);
        return -1;
    }
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
    for (uint32_t i = 0; i < m->n_frames; i++) {
        uint64_t off = m->frames[i]->offset;
        if (off > m->pixel_bytes || fb > m->pixel_bytes - off) {
            snprintf(why, why_len, "frame %u lies outside the pixel memfd", i);
            return -1;
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
    if (frames == NULL) {
        snprintf(why, why_len, "out of memory for %zu frame descriptors", m->n_frames);
        return -1;
    }
    for (uint32_t i = 0; i < m->n_frames; i++) {
        const Agora__Ipc__FrameInfo *fi = m->frames[i];
        frames[i].struct_size = sizeof(agora_frame);
        frames[i].index = i;
        frames[i].data = mj->pixels + fi->offset;
        frames[i].size_bytes = fb;
        copy_doubles(frames[i].position, 3, fi->position, fi->n_position);
        copy_doubles(frames[i].orientation, 6, fi->orientation, fi->n_orientation);
        frames[i].sop_instance_uid = fi->sop_instance_uid;
        /* A slope of 0 is "not sent" (an older host): the image's rescale holds. */
        int own = fi->rescale_slope != 0.0;
        frames[i].rescale_slope = own ? fi->rescale_slope : ii->rescale_slope;
        frames[i].rescale_intercept = own ? fi->rescale_intercept : ii->rescale_intercept;
    }
    agora_image *im = &job->image;
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
                   int fds[2], int *result_sent_flag)
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
    if (result_sent_flag != NULL)
        *result_sent_flag = 1;
    send_result(&r);
    int shutdown = job->shutdown_requested;
    agora__job_free_results(job);
    free(job->frames);
    job->frames = NULL;
    job->n_frames = 0;
    job->attrs = NULL;
    job->n_attrs = 0;
    unmap(&mj);
    return shutdown;
}

static void child_died(uint64_t job_id, int st)
{
    char why[160];
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    r.job_id = job_id;
    r.status = AGORA__IPC__JOB_STATUS__JOB_CHILD_DIED;
    r.plugin_code = AGORA_EINTERNAL;
    if (WIFSIGNALED(st)) {
        r.child_signal = WTERMSIG(st);
        r.child_exit = -1;
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        snprintf(why, sizeof why, "the job process was killed by signal %d (SIG%s)%s", WTERMSIG(st),
                 abbrev ? abbrev : "?",
                 WTERMSIG(st) == SIGSYS ? ": the plugin made a call the sandbox forbids" : "");
    } else {
        r.child_exit = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        snprintf(why, sizeof why, "the job process exited with status %d before sending a result",
                 r.child_exit);
    }
    r.error = why;
    send_result(&r);
}

/* Zygote: fork a child for the job. Returns 1 when the host asked to shut down. */
static int zygote_job(const agora__runner_setup *s, agora__runner_plugin *p,
                      const Agora__Ipc__Job *m, int fds[2], volatile int *sent)
{
    *sent = 0;
    pid_t pid = fork();
    if (pid < 0) {
        Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
        char why[128];
        snprintf(why, sizeof why, "forking the job process failed: %s", strerror(errno));
        r.job_id = m->job_id;
        r.status = AGORA__IPC__JOB_STATUS__JOB_CHILD_DIED;
        r.plugin_code = AGORA_EINTERNAL;
        r.child_exit = -1;
        r.error = why;
        send_result(&r);
        return 0;
    }
    if (pid == 0) {
        int rc = agora__runner_filter_install(&s->bpf[AGORA__PROFILE_COMPUTE]);
        if (rc != 0)
            _exit(AGORA__RUNNER_EXIT_CONFINE);
        int shutdown = run_job(s, p, m, fds, (int *)sent);
        _exit(shutdown ? EXIT_CHILD_SHUTDOWN : 0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            _exit(AGORA__RUNNER_EXIT_INTERNAL);
    }
    if (!*sent) {
        child_died(m->job_id, st);
        return 0;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == EXIT_CHILD_SHUTDOWN;
}

int agora__runner_serve(const agora__runner_setup *s, agora__runner_plugin *p)
{
    volatile int *sent = NULL;
    if (s->fork_per_job) {
        /* One shared word the child sets just before it sends its Result. */
        void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -errno,
                               "mapping the zygote's shared page failed: %s", strerror(errno));
        sent = page;
    }
    for (;;) {
        Agora__Ipc__Frame *f;
        int fds[AGORA__RUNNER_MAX_FDS];
        size_t n_fds;
        char why[256];
        int rc = agora__runner_frame_read(AGORA__RUNNER_FD, AGORA__RUNNER_MAX_IN_FRAME, &f, fds,
                                          &n_fds, why, sizeof why);
        if (rc == -2)
            break; /* the host closed the channel: same as Shutdown */
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO, "%s", why);
        int shutdown = 0;
        switch (f->msg_case) {
        case AGORA__IPC__FRAME__MSG_JOB:
            if (s->fork_per_job)
                shutdown = zygote_job(s, p, f->job, fds, sent);
            else
                shutdown = run_job(s, p, f->job, fds, NULL);
            close(fds[0]);
            close(fds[1]);
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
