/*
 * The agora_host table the plugin calls. Every argument is untrusted: strings are length-capped
 * and checked for UTF-8, numbers for finiteness and range, counts against Limits, frame and
 * region references against the job. Everything is copied before returning (the plugin keeps
 * its memory). One mutex guards the job so plugin threads may call in during process(); result
 * functions refuse (AGORA_ESTATE) outside process().
 *
 * Lock order: job_mu, then the channel mutex (inside agora__runner_send).
 */
#include "runner.h"
#include "agora_result_limits.h"
#include "common.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a result may carry comes from the one table (agora_result_limits.h, generated from
 * schemas/result.schema.json): an item the plugin adds here passes the worker-side decoder and
 * the results validator, and one they would refuse is refused here, at the call, with
 * AGORA_ELIMIT (too long, too many) or AGORA_EINVAL (malformed). The error text and log lines
 * are cut, not refused, so their caps are the runner's own. */
#define MAX_ERROR   4096 /* set_error, on the wire (the host cuts it further) */
#define MAX_LOG     1024 /* one log line */
#define MAX_KEYWORD 1024 /* attr_get lookups: longer keywords are never granted */

/* Upper bounds of the protobuf encoding (issue 8: the old per-item guess was below the real
 * size, so add_* could all succeed and the Result still not fit its frame). Every field is
 * counted at its worst: a negative int32 is a 10-byte varint, a length prefix as long as the
 * length needs, repeated doubles as if unpacked (9 bytes each). */
#define F_INT 11u /* tag + 10-byte varint (int32/int64/uint64, negative int32) */
#define F_DBL 9u  /* tag + 8 bytes */
static uint64_t vlen(uint64_t v)
{
    uint64_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
static uint64_t f_str(uint64_t n) /* string/bytes/sub-message field of n bytes */
{
    return 1 + vlen(n) + n;
}
static uint64_t f_code(size_t scheme, size_t code, size_t meaning)
{
    return f_str(f_str(scheme) + f_str(code) + f_str(meaning));
}
/* Everything in a Result besides its items and summary: job_id, status, plugin_code, error (at
 * most MAX_ERROR bytes), dropped_log_lines, child_signal, child_exit, cpu_us, peak_rss_kb, and
 * the Frame's own tag and length. */
#define RESULT_FIXED (9u * F_INT + 1u + 2u + MAX_ERROR + 1u + 5u)

static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
static agora_job the_job;
static uint32_t global_log_budget = AGORA__RUNNER_DEFAULT_LOGS;

agora_job *agora__runner_job(void)
{
    return &the_job;
}

void agora__runner_set_global_log_budget(uint32_t lines)
{
    global_log_budget = lines;
}

char *agora__runner_sanitize_text(const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max + 4) : 0;
    char *out = malloc(max + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    while (i < n && o < max) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80                   ? 1
                     : (c >= 0xc2 && c <= 0xdf) ? 2
                     : (c >= 0xe0 && c <= 0xef) ? 3
                     : (c >= 0xf0 && c <= 0xf4) ? 4
                                                : 0;
        if (len == 0 || i + len > n || !agora__utf8_valid(s + i, len)) {
            out[o++] = '?'; /* invalid byte or control character */
            i++;
            continue;
        }
        if (o + len > max)
            break; /* never cut a character in half */
        memcpy(out + o, s + i, len);
        o += len;
        i += len;
    }
    out[o] = '\0';
    return out;
}

/* 0 when s is an acceptable string (NULL allowed iff optional, empty allowed iff optional). */
static int check_str(const char *s, size_t max, int optional, size_t *len)
{
    *len = 0;
    if (s == NULL)
        return optional ? AGORA_OK : AGORA_EINVAL;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return AGORA_ELIMIT;
    if (n == 0)
        return optional ? AGORA_OK : AGORA_EINVAL;
    if (!agora__utf8_valid(s, n))
        return AGORA_EINVAL;
    *len = n;
    return AGORA_OK;
}

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

/* Reserve room for one more item of est bytes; caller holds job_mu. */
static int reserve(agora_job *job, uint64_t est)
{
    uint64_t items = job->res.n_findings + job->res.n_measurements + job->res.n_regions;
    if (items >= job->limits->max_items)
        return AGORA_ELIMIT;
    if (job->limits->max_result_bytes < RESULT_FIXED ||
        job->result_bytes + est > job->limits->max_result_bytes - RESULT_FIXED)
        return AGORA_ELIMIT;
    return AGORA_OK;
}

static int grow(void ***arr, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void **p = realloc(*arr, nc * sizeof *p);
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static int valid_frame_ref(const agora_job *job, int32_t frame)
{
    return frame == AGORA_NONE || (frame >= 0 && (uint32_t)frame < job->n_frames);
}

static int valid_region_ref(const agora_job *job, int32_t region)
{
    return region == AGORA_NONE || (region >= 1 && (size_t)region <= job->res.n_regions);
}

/* Common entry: the job must be the one we handed out and process() must be running. */
static int enter(agora_job *job)
{
    if (job != &the_job)
        return AGORA_EINVAL;
    pthread_mutex_lock(&job_mu);
    if (!job->active) {
        pthread_mutex_unlock(&job_mu);
        return AGORA_ESTATE;
    }
    return AGORA_OK;
}

/* ---- logging, progress, cancellation ---- */

static void host_log(const agora_host *host, agora_job *job, int32_t level, const char *msg)
{
    (void)host;
    if (msg == NULL)
        return;
    if (level != AGORA_LOG_DEBUG && level != AGORA_LOG_INFO && level != AGORA_LOG_WARN &&
        level != AGORA_LOG_ERROR)
        level = AGORA_LOG_INFO;
    uint64_t job_id = 0;
    pthread_mutex_lock(&job_mu);
    if (job == &the_job && the_job.active) {
        if (the_job.log_lines >= the_job.limits->max_log_lines) {
            the_job.dropped_logs++;
            pthread_mutex_unlock(&job_mu);
            return;
        }
        the_job.log_lines++;
        job_id = the_job.job_id;
    } else {
        if (global_log_budget == 0) {
            pthread_mutex_unlock(&job_mu);
            return;
        }
        global_log_budget--;
    }
    char *text = agora__runner_sanitize_text(msg, MAX_LOG);
    if (text != NULL) {
        Agora__Ipc__Log lg = AGORA__IPC__LOG__INIT;
        lg.job_id = job_id;
        lg.level = level;
        lg.text = text;
        Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
        f.msg_case = AGORA__IPC__FRAME__MSG_LOG;
        f.log = &lg;
        (void)agora__runner_send(&f);
        free(text);
    }
    pthread_mutex_unlock(&job_mu);
}

/* Look for Cancel/Shutdown without blocking; caller holds job_mu. */
static void poll_host(agora_job *job)
{
    int fd = agora__runner_channel_fd();
    for (int rounds = 0; rounds < 8; rounds++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 1)
            return;
        Agora__Ipc__Frame *f;
        int fds[AGORA__FRAME_MAX_FDS];
        size_t n_fds;
        char why[256];
        int rc = agora__runner_frame_read(fd, AGORA__FRAME_HOST_TO_RUNNER_MAX, &f, fds, &n_fds, why,
                                          sizeof why);
        if (rc == -2) {
            /* The host is gone; nobody will read a result. */
            job->cancelled = 1;
            job->shutdown_requested = 1;
            return;
        }
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO, "%s", why);
        if (f->msg_case == AGORA__IPC__FRAME__MSG_CANCEL) {
            if (f->cancel->job_id == job->job_id)
                job->cancelled = 1;
        } else if (f->msg_case == AGORA__IPC__FRAME__MSG_SHUTDOWN) {
            job->shutdown_requested = 1;
        } else {
            int type = (int)f->msg_case;
            agora__ipc__frame__free_unpacked(f, NULL);
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO,
                               "the host sent a frame of type %d while a job was running", type);
        }
        agora__ipc__frame__free_unpacked(f, NULL);
    }
}

static int32_t host_progress(agora_job *job, double fraction)
{
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    if (!isfinite(fraction) || fraction < 0.0 || fraction > 1.0) {
        pthread_mutex_unlock(&job_mu);
        return AGORA_EINVAL;
    }
    Agora__Ipc__Progress pr = AGORA__IPC__PROGRESS__INIT;
    pr.job_id = job->job_id;
    pr.fraction = fraction;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_PROGRESS;
    f.progress = &pr;
    (void)agora__runner_send(&f);
    poll_host(job);
    rc = job->cancelled ? AGORA_ECANCELLED : AGORA_OK;
    pthread_mutex_unlock(&job_mu);
    return rc;
}

static int32_t host_cancelled(agora_job *job)
{
    if (enter(job) != AGORA_OK)
        return 0;
    poll_host(job);
    int c = job->cancelled;
    pthread_mutex_unlock(&job_mu);
    return c;
}

static int32_t host_set_urgent(agora_job *job, const char *reason);

static const agora_triage_ext triage_ext = {
    .struct_size = sizeof(agora_triage_ext),
    .set_urgent = host_set_urgent,
};

static uint32_t host_series_count(agora_job *job);
static int32_t host_series_image(agora_job *job, uint32_t i, const agora_image **image);
static const agora_frame *host_series_frame(agora_job *job, uint32_t i, uint32_t k);

static const agora_study_ext study_ext = {
    .struct_size = sizeof(agora_study_ext),
    .series_count = host_series_count,
    .series_image = host_series_image,
    .series_frame = host_series_frame,
};

/* org.agora.assets/1: the host argument only identifies the table; the worker has one. */
static int32_t assets_get(const agora_host *host, const char *name, const void **data,
                          uint64_t *size)
{
    if (host != agora__runner_host_table())
        return AGORA_EINVAL;
    return agora__runner_asset_get(name, data, size);
}

static const agora_assets assets_ext = {
    .struct_size = sizeof(agora_assets),
    .get = assets_get,
};

static const void *host_get_extension(const agora_host *host, const char *id)
{
    (void)host;
    if (id == NULL || strnlen(id, 64) >= 64)
        return NULL;
    if (strcmp(id, AGORA_EXT_TRIAGE) == 0)
        return &triage_ext;
    if (strcmp(id, AGORA_EXT_STUDY) == 0)
        return &study_ext;
    if (strcmp(id, AGORA_EXT_ASSETS) == 0)
        return &assets_ext;
    return NULL;
}

/* Number of series and series s's view: a job set up without series (n_series 0) is one
 * series, its image. job_mu held. */
static uint32_t n_series_of(const agora_job *job)
{
    return job->n_series ? job->n_series : 1;
}

static const agora_image *series_img(const agora_job *job, uint32_t s)
{
    return job->series_images != NULL ? &job->series_images[s] : &job->image;
}

/* Frames of series s. job_mu held. */
static uint32_t series_frames(const agora_job *job, uint32_t s)
{
    return series_img(job, s)->frames;
}

/* The series holding job-wide frame f (< n_frames): its index. job_mu held. */
static uint32_t series_of(const agora_job *job, uint32_t f)
{
    uint32_t s = 0;
    while (s + 1 < n_series_of(job) && f >= job->series_first[s + 1])
        s++;
    return s;
}

static uint32_t host_series_count(agora_job *job)
{
    if (enter(job) != AGORA_OK)
        return 0;
    uint32_t n = n_series_of(job);
    pthread_mutex_unlock(&job_mu);
    return n;
}

static int32_t host_series_image(agora_job *job, uint32_t i, const agora_image **image)
{
    if (image == NULL)
        return AGORA_EINVAL;
    *image = NULL;
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    if (i < n_series_of(job))
        *image = series_img(job, i);
    else
        rc = AGORA_EINVAL;
    pthread_mutex_unlock(&job_mu);
    return rc;
}

static const agora_frame *host_series_frame(agora_job *job, uint32_t i, uint32_t k)
{
    if (enter(job) != AGORA_OK)
        return NULL;
    const agora_frame *f = i < n_series_of(job) && k < series_frames(job, i)
                               ? &job->frames[job->series_first[i] + k]
                               : NULL;
    pthread_mutex_unlock(&job_mu);
    return f;
}

/* ---- inputs ---- */

static const agora_frame *host_frame(agora_job *job, uint32_t index)
{
    if (enter(job) != AGORA_OK)
        return NULL;
    const agora_frame *f = index < job->n_frames ? &job->frames[index] : NULL;
    pthread_mutex_unlock(&job_mu);
    return f;
}

static uint32_t host_attr_count(agora_job *job)
{
    if (enter(job) != AGORA_OK)
        return 0;
    uint32_t n = (uint32_t)job->n_attrs;
    pthread_mutex_unlock(&job_mu);
    return n;
}

static int32_t host_attr_at(agora_job *job, uint32_t index, const char **keyword,
                            const char **value)
{
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    if (index >= job->n_attrs || keyword == NULL || value == NULL) {
        pthread_mutex_unlock(&job_mu);
        return AGORA_EINVAL;
    }
    *keyword = job->attrs[index]->keyword;
    *value = job->attrs[index]->value;
    pthread_mutex_unlock(&job_mu);
    return AGORA_OK;
}

static const char *host_attr_get(agora_job *job, const char *keyword)
{
    if (keyword == NULL || enter(job) != AGORA_OK)
        return NULL;
    const char *v = NULL;
    size_t klen = strnlen(keyword, MAX_KEYWORD + 1);
    if (klen <= MAX_KEYWORD)
        for (size_t i = 0; i < job->n_attrs && v == NULL; i++)
            if (strcmp(job->attrs[i]->keyword, keyword) == 0)
                v = job->attrs[i]->value;
    pthread_mutex_unlock(&job_mu);
    return v;
}

/* ---- results ---- */

static int32_t host_add_finding(agora_job *job, const agora_finding *in)
{
    if (in == NULL || in->struct_size < offsetof(agora_finding, region) + sizeof in->region)
        return AGORA_EINVAL;
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    size_t l1, l2, l3;
    if ((rc = check_str(in->scheme, AGORA__RESULT_SCHEME_MAX, 0, &l1)) != AGORA_OK ||
        (rc = check_str(in->code, AGORA__RESULT_CODE_MAX, 0, &l2)) != AGORA_OK ||
        (rc = check_str(in->meaning, AGORA__RESULT_MEANING_MAX, 0, &l3)) != AGORA_OK)
        goto out;
    rc = AGORA_EINVAL;
    if (!isfinite(in->confidence) || in->confidence < 0.0 || in->confidence > 1.0 ||
        !valid_frame_ref(job, in->frame) || !valid_region_ref(job, in->region))
        goto out;
    uint64_t est = f_str(f_code(l1, l2, l3) + F_DBL + 2 * F_INT);
    if ((rc = reserve(job, est)) != AGORA_OK)
        goto out;
    rc = AGORA_ENOMEM;
    if (grow((void ***)&job->res.findings, job->res.n_findings, &job->res.cap_findings) != 0)
        goto out;
    Agora__Ipc__Finding *f = calloc(1, sizeof *f);
    Agora__Ipc__Code *c = calloc(1, sizeof *c);
    if (f == NULL || c == NULL) {
        free(f);
        free(c);
        goto out;
    }
    agora__ipc__finding__init(f);
    agora__ipc__code__init(c);
    c->scheme = dup_str(in->scheme);
    c->code = dup_str(in->code);
    c->meaning = dup_str(in->meaning);
    f->code = c;
    f->confidence = in->confidence;
    f->frame = in->frame;
    f->region = in->region;
    job->res.findings[job->res.n_findings++] = f;
    job->result_bytes += est;
    rc = (c->scheme && c->code && c->meaning) ? AGORA_OK : AGORA_ENOMEM;
out:
    pthread_mutex_unlock(&job_mu);
    return rc;
}

static int32_t host_add_measurement(agora_job *job, const agora_measurement *in)
{
    if (in == NULL ||
        in->struct_size < offsetof(agora_measurement, code_meaning) + sizeof in->code_meaning)
        return AGORA_EINVAL;
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    size_t l1, l2, l3 = 0, l4 = 0, l5 = 0;
    if ((rc = check_str(in->name, AGORA__RESULT_NAME_MAX, 0, &l1)) != AGORA_OK ||
        (rc = check_str(in->unit, AGORA__RESULT_UNIT_MAX, 0, &l2)) != AGORA_OK)
        goto out;
    int coded = in->code_scheme != NULL || in->code != NULL || in->code_meaning != NULL;
    if (coded && ((rc = check_str(in->code_scheme, AGORA__RESULT_SCHEME_MAX, 0, &l3)) != AGORA_OK ||
                  (rc = check_str(in->code, AGORA__RESULT_CODE_MAX, 0, &l4)) != AGORA_OK ||
                  (rc = check_str(in->code_meaning, AGORA__RESULT_MEANING_MAX, 1, &l5)) !=
                      AGORA_OK))
        goto out;
    rc = AGORA_EINVAL;
    if (!isfinite(in->value) || fabs(in->value) > AGORA__RESULT_VALUE_MAX ||
        !valid_frame_ref(job, in->frame) ||
        !valid_region_ref(job, in->region))
        goto out;
    uint64_t est =
        f_str(f_str(l1) + f_str(l2) + F_DBL + 2 * F_INT + (coded ? f_code(l3, l4, l5) : 0));
    if ((rc = reserve(job, est)) != AGORA_OK)
        goto out;
    rc = AGORA_ENOMEM;
    if (grow((void ***)&job->res.measurements, job->res.n_measurements,
             &job->res.cap_measurements) != 0)
        goto out;
    Agora__Ipc__Measurement *m = calloc(1, sizeof *m);
    if (m == NULL)
        goto out;
    agora__ipc__measurement__init(m);
    m->name = dup_str(in->name);
    m->unit = dup_str(in->unit);
    m->value = in->value;
    m->frame = in->frame;
    m->region = in->region;
    int ok = m->name && m->unit;
    if (coded) {
        Agora__Ipc__Code *c = calloc(1, sizeof *c);
        if (c != NULL) {
            agora__ipc__code__init(c);
            c->scheme = dup_str(in->code_scheme);
            c->code = dup_str(in->code);
            c->meaning = dup_str(in->code_meaning);
            ok = ok && c->scheme && c->code && c->meaning;
        }
        m->code = c;
        ok = ok && c != NULL;
    }
    job->res.measurements[job->res.n_measurements++] = m;
    job->result_bytes += est;
    rc = ok ? AGORA_OK : AGORA_ENOMEM;
out:
    pthread_mutex_unlock(&job_mu);
    return rc;
}

/* A point inside the image of the series that frame (< n_frames) belongs to. */
static int point_ok(const agora_job *job, uint32_t frame, double x, double y)
{
    const agora_image *im = series_img(job, series_of(job, frame));
    return isfinite(x) && isfinite(y) && x >= -0.5 && y >= -0.5 && x <= (double)im->columns - 0.5 &&
           y <= (double)im->rows - 0.5;
}

/* Append a region (caller validated it); returns the id or a negative code. */
static int32_t push_region(agora_job *job, Agora__Ipc__Region *r, uint64_t est)
{
    if (grow((void ***)&job->res.regions, job->res.n_regions, &job->res.cap_regions) != 0)
        return AGORA_ENOMEM;
    r->id = (int32_t)job->res.n_regions + 1; /* ids start at 1: 0 reads as "unset" */
    job->res.regions[job->res.n_regions++] = r;
    job->result_bytes += est;
    return r->id;
}

static int32_t host_add_region(agora_job *job, const agora_region *in, int32_t *region_id)
{
    if (in == NULL || region_id == NULL ||
        in->struct_size < offsetof(agora_region, label) + sizeof in->label)
        return AGORA_EINVAL;
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    size_t llen;
    if ((rc = check_str(in->label, AGORA__RESULT_LABEL_MAX, 1, &llen)) != AGORA_OK)
        goto out;
    rc = AGORA_EINVAL;
    uint32_t n = in->n_points;
    if (in->frame >= job->n_frames || in->points == NULL)
        goto out;
    if (!((in->kind == AGORA_REGION_POINT && n == 1) || (in->kind == AGORA_REGION_BOX && n == 2) ||
          (in->kind == AGORA_REGION_POLYGON && n >= 3)))
        goto out;
    rc = AGORA_ELIMIT;
    if (n > AGORA__RESULT_POINTS_MAX || job->n_points + n > AGORA__RESULT_POINTS_TOTAL_MAX)
        goto out;
    rc = AGORA_EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (!point_ok(job, in->frame, in->points[2 * i], in->points[2 * i + 1]))
            goto out;
    if (in->kind == AGORA_REGION_BOX &&
        (in->points[0] > in->points[2] || in->points[1] > in->points[3]))
        goto out;
    uint64_t est = f_str(3 * F_INT + f_str((uint64_t)n * 2 * F_DBL) + f_str(llen) + 4 * F_INT);
    if ((rc = reserve(job, est)) != AGORA_OK)
        goto out;
    rc = AGORA_ENOMEM;
    Agora__Ipc__Region *r = calloc(1, sizeof *r);
    double *pts = malloc((size_t)n * 2 * sizeof(double));
    char *label = dup_str(in->label);
    if (r == NULL || pts == NULL || label == NULL) {
        free(r);
        free(pts);
        free(label);
        goto out;
    }
    agora__ipc__region__init(r);
    memcpy(pts, in->points, (size_t)n * 2 * sizeof(double));
    r->kind = in->kind;
    r->frame = in->frame;
    r->points = pts;
    r->n_points = (size_t)n * 2;
    r->label = label;
    rc = push_region(job, r, est);
    if (rc < 0) {
        free(pts);
        free(label);
        free(r);
        goto out;
    }
    job->n_points += n;
    *region_id = rc;
    rc = AGORA_OK;
out:
    pthread_mutex_unlock(&job_mu);
    return rc;
}

static int32_t host_add_mask(agora_job *job, const agora_mask *in, int32_t *region_id)
{
    if (in == NULL || region_id == NULL ||
        in->struct_size < offsetof(agora_mask, label) + sizeof in->label)
        return AGORA_EINVAL;
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    size_t llen;
    if ((rc = check_str(in->label, AGORA__RESULT_LABEL_MAX, 1, &llen)) != AGORA_OK)
        goto out;
    rc = AGORA_EINVAL;
    if (in->labels == NULL || !AGORA__RESULT_MASK_BITS_OK(in->bits) || in->n_frames == 0 ||
        in->first_frame >= job->n_frames)
        goto out;
    /* A mask lies within one series and has its rows and columns. */
    uint32_t ms = series_of(job, in->first_frame);
    const agora_image *mim = series_img(job, ms);
    if (in->rows != mim->rows || in->columns != mim->columns ||
        (uint64_t)in->first_frame + in->n_frames > (uint64_t)job->series_first[ms] + mim->frames)
        goto out;
    uint64_t len;
    if (__builtin_mul_overflow((uint64_t)in->n_frames, (uint64_t)in->rows, &len) ||
        __builtin_mul_overflow(len, (uint64_t)in->columns, &len) ||
        __builtin_mul_overflow(len, (uint64_t)(in->bits / 8), &len))
        goto out;
    uint64_t off = (job->out_used + 7) & ~(uint64_t)7;
    rc = AGORA_ELIMIT;
    if (len > AGORA__RESULT_MASK_BYTES_MAX || off < job->out_used || off > job->out_size ||
        len > job->out_size - off)
        goto out;
    uint64_t est = f_str(3 * F_INT + f_str(llen) + 4 * F_INT);
    if ((rc = reserve(job, est)) != AGORA_OK)
        goto out;
    rc = AGORA_ENOMEM;
    Agora__Ipc__Region *r = calloc(1, sizeof *r);
    char *label = dup_str(in->label);
    if (r == NULL || label == NULL) {
        free(r);
        free(label);
        goto out;
    }
    memcpy(job->out_area + off, in->labels, (size_t)len);
    agora__ipc__region__init(r);
    r->kind = AGORA__REGION_MASK;
    r->frame = in->first_frame;
    r->label = label;
    r->mask_frames = in->n_frames;
    r->mask_bits = in->bits;
    r->mask_offset = off;
    r->mask_length = len;
    rc = push_region(job, r, est);
    if (rc < 0) {
        free(label);
        free(r);
        goto out;
    }
    job->out_used = off + len;
    *region_id = rc;
    rc = AGORA_OK;
out:
    pthread_mutex_unlock(&job_mu);
    return rc;
}

/* Replace a job's string *slot (summary, urgent reason) with a copy of text (n bytes, checked
 * by the caller), keeping the Result size estimate within max_result_bytes. job_mu held. */
static int32_t replace_text(agora_job *job, char **slot, const char *text, size_t n)
{
    uint64_t old = *slot ? f_str(strlen(*slot)) : 0;
    uint64_t want = n ? f_str(n) : 0;
    if (job->limits->max_result_bytes < RESULT_FIXED ||
        job->result_bytes - old + want > job->limits->max_result_bytes - RESULT_FIXED)
        return AGORA_ELIMIT;
    char *copy = dup_str(text);
    if (copy == NULL)
        return AGORA_ENOMEM;
    free(*slot);
    *slot = copy;
    job->result_bytes = job->result_bytes - old + want;
    return AGORA_OK;
}

static int32_t host_set_summary(agora_job *job, const char *text)
{
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    size_t n;
    if ((rc = check_str(text, AGORA__RESULT_SUMMARY_MAX, 1, &n)) == AGORA_OK) {
        rc = replace_text(job, &job->summary, text, n);
    }
    pthread_mutex_unlock(&job_mu);
    return rc;
}

_Static_assert(AGORA_TRIAGE_MAX_REASON == AGORA__RESULT_TRIAGE_REASON_MAX,
               "agora.h and the result limits table disagree on the triage reason length");

/* org.agora.triage/1: the reason is bounded, valid UTF-8 without any control character; the
 * worker pool checks it again (host/worker/validate.c). */
static int32_t host_set_urgent(agora_job *job, const char *reason)
{
    int rc = enter(job);
    if (rc != AGORA_OK)
        return rc;
    size_t n = reason ? strnlen(reason, AGORA__RESULT_TRIAGE_REASON_MAX + 1) : 0;
    if (n > AGORA__RESULT_TRIAGE_REASON_MAX) {
        rc = AGORA_ELIMIT;
    } else if (!agora__triage_reason_valid(reason, n, AGORA__RESULT_TRIAGE_REASON_MAX)) {
        rc = AGORA_EINVAL;
    } else {
        rc = replace_text(job, &job->urgent_reason, reason, n);
    }
    pthread_mutex_unlock(&job_mu);
    return rc;
}

static void host_set_error(agora_job *job, const char *message)
{
    if (message == NULL || enter(job) != AGORA_OK)
        return;
    char *copy = agora__runner_sanitize_text(message, MAX_ERROR);
    if (copy != NULL) {
        free(job->error);
        job->error = copy;
    }
    pthread_mutex_unlock(&job_mu);
}

static const agora_host host_table = {
    .struct_size = sizeof(agora_host),
    .abi_version = AGORA_ABI_VERSION,
    .log = host_log,
    .get_extension = host_get_extension,
    .frame = host_frame,
    .attr_count = host_attr_count,
    .attr_at = host_attr_at,
    .attr_get = host_attr_get,
    .add_finding = host_add_finding,
    .add_measurement = host_add_measurement,
    .add_region = host_add_region,
    .add_mask = host_add_mask,
    .set_summary = host_set_summary,
    .set_error = host_set_error,
    .progress = host_progress,
    .cancelled = host_cancelled,
};

const agora_host *agora__runner_host_table(void)
{
    return &host_table;
}

/* ---- job lifecycle (called by serve.c on the main thread) ---- */

void agora__job_init(agora_job *job, const agora__runner_limits *limits, uint64_t job_id)
{
    pthread_mutex_lock(&job_mu);
    memset(job, 0, sizeof *job);
    job->limits = limits;
    job->job_id = job_id;
    pthread_mutex_unlock(&job_mu);
}

void agora__job_set_active(agora_job *job, int active)
{
    pthread_mutex_lock(&job_mu);
    job->active = active;
    pthread_mutex_unlock(&job_mu);
}

void agora__job_free_results(agora_job *job)
{
    pthread_mutex_lock(&job_mu);
    for (size_t i = 0; i < job->res.n_findings; i++)
        agora__ipc__finding__free_unpacked(job->res.findings[i], NULL);
    for (size_t i = 0; i < job->res.n_measurements; i++)
        agora__ipc__measurement__free_unpacked(job->res.measurements[i], NULL);
    for (size_t i = 0; i < job->res.n_regions; i++)
        agora__ipc__region__free_unpacked(job->res.regions[i], NULL);
    free(job->res.findings);
    free(job->res.measurements);
    free(job->res.regions);
    memset(&job->res, 0, sizeof job->res);
    free(job->summary);
    free(job->urgent_reason);
    free(job->error);
    job->summary = NULL;
    job->urgent_reason = NULL;
    job->error = NULL;
    job->result_bytes = 0;
    job->n_points = 0;
    pthread_mutex_unlock(&job_mu);
}

void agora__job_fill_result(agora_job *job, Agora__Ipc__Result *r)
{
    pthread_mutex_lock(&job_mu);
    r->job_id = job->job_id;
    r->findings = job->res.findings;
    r->n_findings = job->res.n_findings;
    r->measurements = job->res.measurements;
    r->n_measurements = job->res.n_measurements;
    r->regions = job->res.regions;
    r->n_regions = job->res.n_regions;
    r->summary = job->summary ? job->summary : (char *)"";
    r->urgent_reason = job->urgent_reason ? job->urgent_reason : (char *)"";
    r->dropped_log_lines = job->dropped_logs;
    pthread_mutex_unlock(&job_mu);
}
