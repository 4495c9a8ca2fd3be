/*
 * The worker pool: warm sandboxed runner processes per plugin, driven from a libuv loop.
 *
 * Each worker is one agora-runner process with one socket (uv_poll) and one timer (setup, job,
 * cancel-grace and shutdown-grace deadlines). Processes are reaped from a SIGCHLD uv_signal
 * with wait4() on our own pids only, so other uv_process users of the loop are unaffected and
 * we get the child's rusage for classification.
 *
 * A worker's end is handled in one place (worker_finish): the socket is drained first (a runner
 * sends Error or Result right before exiting), then the outcome is classified once, the job it
 * held (if any) completes with that outcome, and the pool decides about respawn, backoff and
 * quarantine.
 *
 * Fork-per-job (protocol 2): a job never travels on the worker's (the zygote's) socket. Each job
 * gets a socketpair of its own (a jchan); ForkJob hands one end to the zygote, which forks the
 * job process and closes its copy; the Job and its memfds go on the other end, and the Result
 * (at most one: a second is a protocol error) comes back on it. The job completes when the
 * zygote's JobExit says the job process is gone, so nothing of it can still touch the output
 * area while the host reads it.
 */
#include "frame.h"
#include "runner_proc.h"
#include "worker_internal.h"
#include "closure.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define COMPONENT         "worker"
#define MAX_WORKERS       64
#define SHUTDOWN_GRACE_MS 2000
#define BACKOFF_MIN_MS    50
#define BACKOFF_MAX_MS    5000

typedef enum { W_SPAWNING, W_IDLE, W_BUSY, W_STOPPING, W_DEAD } wstate;

typedef struct job {
    uint64_t id;
    struct job *next; /* queue link */
    uint8_t *wire;    /* the packed Job frame, length-prefixed */
    size_t wire_len;
    int pix_fd;     /* dup of the caller's sealed memfd; owned */
    int out_fd;     /* output memfd; created at dispatch; owned unless out_shared */
    int out_shared; /* out_fd is the pool's empty_out_fd (jobs without an output area) */
    agora__result_geom geom;
    agora__job_cb cb;
    void *arg;
    uint64_t start_ns;
    int cancel_requested;
    struct worker *w;
} job;

typedef struct outmsg {
    struct outmsg *next;
    uint8_t *buf;
    size_t len, off;
    int fds[2]; /* borrowed: owned by the pool (plugin memfd) or the job */
    unsigned n_fds;
    int own_fd; /* closed once sent or dropped (ForkJob's job-process end); -1 none */
} outmsg;

/* A fork-mode job's own channel (host end). Lives from dispatch until the job completes or the
 * worker dies; closed through uv_close (jchan_closed frees it). */
typedef struct jchan {
    struct worker *w; /* NULL once detached */
    int fd;
    uv_poll_t poll;
    int poll_active, poll_events, eof;
    agora__frame_reader rd;
    uint8_t *out; /* pending bytes (Job, then maybe Cancel); fds ride on the first byte */
    size_t out_len, out_off;
    int out_fds[2];
    unsigned out_nfds;
    Agora__Ipc__Frame *result; /* the one Result (owned, freed with rd) */
    int got_error;
    char error_msg[256];
} jchan;

typedef struct worker {
    agora__pool *pool;
    struct worker *next;
    wstate state;
    pid_t pid;
    int sock;
    int reaped;
    int wstatus;
    struct rusage ru;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    int poll_active;
    int poll_events; /* events of the last uv_poll_start, to skip redundant epoll_ctl */
    int eof;
    int retiring;       /* the host asked it to stop (recycle, quarantine, close) */
    int setup_hung;     /* killed because it did not become ready in setup_timeout_ms */
    uint32_t log_lines; /* Log messages since the current job started */
    agora__frame_reader rd;
    outmsg *out_head, *out_tail;
    job *job;
    uint32_t jobs_done;
    /* A verdict reached by the host (timeout, protocol error, cancel) before it killed the
     * worker; takes precedence over what the exit status suggests. */
    int has_verdict;
    agora__job_status verdict;
    char verdict_msg[256];
    /* An Error message the runner sent before exiting. */
    int got_error;
    int32_t error_stage, error_code;
    char error_msg[256];
    /* Outcome of the last Result that failed (kept when the worker stays alive). */
    char cgroup[640]; /* the worker's own cgroup v2 directory, "" without one */
    /* Development mode: "forbidden system call: NAME (NR)" from the runner's trap, "" none. */
    char violation[96];
    jchan *jc; /* fork mode: the running job's channel */
} worker;

struct agora__pool {
    uv_loop_t *loop;
    agora__plugin_spec spec; /* strings below are owned copies */
    char *runner_path, *plugin_id, *plugin_version;
    int plugin_fd;    /* sealed memfd with the verified plugin bytes */
    int empty_out_fd; /* sealed 0-byte memfd sent as the output area of jobs without masks */
    agora__asset *assets; /* n spec.n_assets; names and sizes copied, fds dup()ed and owned */
    uv_signal_t sigchld;
    uv_timer_t respawn;
    int open_handles;
    worker *workers;
    job *q_head, *q_tail;
    uint32_t queued;
    uint64_t next_job_id;
    uint32_t consecutive_failures;
    uint32_t backoff_ms;
    uint64_t next_spawn_ns;
    int quarantined;
    char quarantine_reason[300];
    int closing;
    void (*closed_cb)(void *);
    void *closed_arg;
    agora__progress_cb progress_cb;
    void *progress_arg;
    agora__pool_stats stats;
    agora__closure closure; /* the sandbox root: the plugin's dependency closure */
};

static void maintain(agora__pool *pool);
static void on_violation(struct worker *w, const Agora__Ipc__Violation *v);
static void dispatch(agora__pool *pool);
static void worker_kill(worker *w, agora__job_status verdict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void worker_finish(worker *w);
static void try_close_pool(agora__pool *pool);

/* ---- Jobs ---------------------------------------------------------------------------------- */

static void job_free(job *j)
{
    if (j == NULL)
        return;
    free(j->wire);
    if (j->pix_fd >= 0)
        close(j->pix_fd);
    if (j->out_fd >= 0 && !j->out_shared)
        close(j->out_fd);
    free(j);
}

/* Complete a job: build its document, run the callback once, free everything. */
static void job_complete(agora__pool *pool, job *j, agora__job_status st, int32_t plugin_code,
                         int sig, const char *msg, agora__validated *v, uint64_t cpu_us,
                         uint64_t peak_rss_kb)
{
    agora__result_metrics m = {0};
    if (j->start_ns != 0)
        m.wall_ms = (agora__now_ns() - j->start_ns) / 1000000u;
    m.cpu_us = cpu_us;
    m.peak_rss_kb = peak_rss_kb;
    char line[AGORA__MAX_ERROR_LEN + 1];
    agora__sanitize_message(st == AGORA__JOB_OK ? "" : msg, line, sizeof line);
    agora__job_result res = {0};
    res.job_id = j->id;
    res.status = st;
    res.plugin_code = plugin_code;
    res.signal = sig;
    res.error = line;
    res.doc = agora__result_doc(pool->plugin_id, pool->plugin_version, j->id, st, line,
                                st == AGORA__JOB_OK ? v : NULL, &m);
    if (v != NULL && st == AGORA__JOB_OK) {
        res.masks = v->masks;
        res.masks_len = v->masks_len;
        res.mask_index = v->mask_index;
        res.n_masks = v->n_masks;
        v->masks = NULL; /* handed to res; freed below unless the callback takes it */
    }
    pool->stats.completed++;
    agora__log(st == AGORA__JOB_OK ? AGORA_LOG_DEBUG : AGORA_LOG_INFO, COMPONENT,
               "job %llu of %s finished: %s%s%s", (unsigned long long)j->id, pool->plugin_id,
               agora__job_status_name(st), st == AGORA__JOB_OK ? "" : ": ",
               st == AGORA__JOB_OK ? "" : line);
    if (j->cb != NULL)
        j->cb(&res, j->arg);
    json_decref(res.doc);
    free(res.masks);
    job_free(j);
}

/* ---- Sending ------------------------------------------------------------------------------- */

static void update_poll(worker *w);

static void outmsg_free(outmsg *m)
{
    if (m->own_fd >= 0)
        close(m->own_fd);
    free(m->buf);
    free(m);
}

static void flush_out(worker *w)
{
    while (w->out_head != NULL) {
        outmsg *m = w->out_head;
        ssize_t n = agora__frame_sendmsg(w->sock, m->buf + m->off, m->len - m->off,
                                         m->off == 0 ? m->fds : NULL, m->off == 0 ? m->n_fds : 0);
        if (n == AGORA__EAGAIN)
            break;
        if (n < 0) {
            /* The peer is gone (EPIPE) or broken; its exit will be classified on reap. */
            while (w->out_head != NULL) {
                outmsg *x = w->out_head;
                w->out_head = x->next;
                outmsg_free(x);
            }
            w->out_tail = NULL;
            break;
        }
        m->off += (size_t)n;
        if (m->off < m->len)
            continue;
        w->out_head = m->next;
        if (w->out_head == NULL)
            w->out_tail = NULL;
        outmsg_free(m);
    }
    update_poll(w);
}

/* Queue a packed frame (ownership of buf, and of own_fd when >= 0, passes to the worker). */
static int send_frame_own(worker *w, uint8_t *buf, size_t len, const int *fds, unsigned n_fds,
                          int own_fd)
{
    outmsg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        free(buf);
        if (own_fd >= 0)
            close(own_fd);
        return AGORA_ENOMEM;
    }
    m->own_fd = own_fd;
    m->buf = buf;
    m->len = len;
    for (unsigned i = 0; i < n_fds && i < 2; i++)
        m->fds[i] = fds[i];
    m->n_fds = n_fds;
    if (w->out_tail != NULL)
        w->out_tail->next = m;
    else
        w->out_head = m;
    w->out_tail = m;
    flush_out(w);
    return 0;
}

static int send_frame(worker *w, uint8_t *buf, size_t len, const int *fds, unsigned n_fds)
{
    return send_frame_own(w, buf, len, fds, n_fds, -1);
}

static int send_simple(worker *w, Agora__Ipc__Frame *f)
{
    uint8_t *buf;
    size_t len;
    agora__error err;
    if (agora__frame_pack(f, AGORA__FRAME_HOST_TO_RUNNER_MAX, &buf, &len, &err) < 0)
        return err.code;
    return send_frame(w, buf, len, NULL, 0);
}

/* ---- Timers and killing -------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(worker *w, uint64_t ms)
{
    /* The loop's clock is only refreshed once per iteration; submit and pool_new can run long
     * after it (e.g. after the caller decoded a large series), and a stale clock would make the
     * deadline fire early. */
    uv_update_time(w->pool->loop);
    uv_timer_start(&w->timer, on_timer, ms, 0);
}

static void worker_kill(worker *w, agora__job_status verdict, const char *fmt, ...)
{
    if (!w->has_verdict) {
        w->has_verdict = 1;
        w->verdict = verdict;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->verdict_msg, sizeof w->verdict_msg, fmt, ap);
        va_end(ap);
    }
    if (!w->reaped && w->pid > 0) {
        kill(w->pid, SIGKILL);
        w->pool->stats.killed++;
    }
    /* Nothing more is read from a worker under a verdict. */
    if (w->poll_active) {
        uv_poll_stop(&w->poll);
        w->poll_active = 0;
    }
    uv_timer_stop(&w->timer);
}

static void on_timer(uv_timer_t *t)
{
    worker *w = t->data;
    agora__pool *pool = w->pool;
    if (w->got_error) {
        /* The runner said why it stops but did not exit: kill it, keep its reason. */
        if (!w->reaped && w->pid > 0) {
            kill(w->pid, SIGKILL);
            pool->stats.killed++;
        }
        return;
    }
    if (w->eof && w->state != W_STOPPING) {
        /* It closed its channel yet lives on (the grace armed at end of stream ran out). */
        worker_kill(w, AGORA__JOB_PROTOCOL_ERROR,
                    "protocol error: the worker closed its channel but did not exit");
        return;
    }
    switch (w->state) {
    case W_SPAWNING:
        /* A plugin whose init does not return in time will not on the next try either:
         * retrying would multiply the caller's time limit (issue 8), so this quarantines. */
        w->setup_hung = 1;
        worker_kill(w, AGORA__JOB_SETUP_ERROR,
                    "the plugin did not become ready within %u ms (its init or constructors did "
                    "not return); not retried",
                    pool->spec.setup_timeout_ms);
        break;
    case W_BUSY:
        if (w->job != NULL && w->job->cancel_requested)
            worker_kill(w, AGORA__JOB_CANCELLED,
                        "cancelled; the worker did not stop within %u ms and was killed",
                        pool->spec.cancel_grace_ms);
        else
            worker_kill(w, AGORA__JOB_TIMEOUT, "the job exceeded its time limit of %u ms",
                        pool->spec.timeout_ms);
        break;
    case W_STOPPING:
        /* A retired worker that ignores Shutdown: not a failure of any job. */
        if (!w->has_verdict) {
            w->has_verdict = 1;
            w->verdict = AGORA__JOB_OK;
        }
        if (!w->reaped && w->pid > 0) {
            kill(w->pid, SIGKILL);
            pool->stats.killed++;
        }
        break;
    default:
        break;
    }
}

/* ---- Receiving ----------------------------------------------------------------------------- */

static void protocol_error(worker *w, const char *what)
{
    worker_kill(w, AGORA__JOB_PROTOCOL_ERROR, "protocol error: %s", what);
}

static void on_ready(worker *w, const Agora__Ipc__Ready *r)
{
    agora__pool *pool = w->pool;
    agora__error rerr = {0};
    if (agora__ready_check(r, AGORA__PROTO_VERSION, pool->plugin_id, pool->plugin_version, &rerr) <
        0)
        return protocol_error(w, rerr.msg);
    for (size_t i = 0; i < r->n_isolation_warnings && i < 16; i++) {
        char line[AGORA__MAX_ERROR_LEN + 1];
        agora__sanitize_message(r->isolation_warnings[i], line, sizeof line);
        agora__log(AGORA_LOG_WARN, COMPONENT, "weak isolation for %s: %s", pool->plugin_id, line);
    }
    uv_timer_stop(&w->timer);
    w->state = W_IDLE;
    dispatch(pool);
}

static void on_log(worker *w, const Agora__Ipc__Log *l)
{
    /* The runner caps log lines per job; a runner that does not is capped here as well. */
    if (++w->log_lines > w->pool->spec.limits.max_log_lines + 16)
        return;
    char line[AGORA__MAX_ERROR_LEN + 1];
    agora__sanitize_message(l->text, line, sizeof line);
    int level = l->level >= AGORA_LOG_ERROR  ? AGORA_LOG_WARN
                : l->level >= AGORA_LOG_INFO ? AGORA_LOG_INFO
                                             : AGORA_LOG_DEBUG;
    /* Plugin lines are demoted one step: a plugin cannot raise host log noise to error. */
    agora__log(level, "plugin", "%s job=%llu: %s", w->pool->plugin_id,
               (unsigned long long)l->job_id, line);
}

static void on_progress(worker *w, const Agora__Ipc__Progress *p)
{
    if (w->job == NULL || p->job_id != w->job->id)
        return protocol_error(w, "Progress for a job the worker is not running");
    if (!isfinite(p->fraction) || p->fraction < 0.0 || p->fraction > 1.0)
        return protocol_error(w, "Progress fraction outside [0,1]");
    if (w->pool->progress_cb != NULL)
        w->pool->progress_cb(w->job->id, p->fraction, w->pool->progress_arg);
}

static void note_failure(agora__pool *pool, const char *msg);
static void note_failure_now(agora__pool *pool, const char *msg, int at_once);
static void note_success(agora__pool *pool);
static void retire(worker *w);

static void on_result(worker *w, const Agora__Ipc__Result *r)
{
    agora__pool *pool = w->pool;
    job *j = w->job;
    if (j == NULL || r->job_id != j->id)
        return protocol_error(w, "Result for a job the worker is not running");
    agora__job_status st;
    int32_t code = 0;
    int sig = 0;
    char msg[AGORA__MAX_ERROR_LEN + 64];
    msg[0] = '\0';
    agora__validated v = {0};
    agora__error err = {0};
    switch (r->status) {
    case AGORA__IPC__JOB_STATUS__JOB_OK:
        if (agora__result_validate(r, &j->geom, j->out_fd, &v, &err) < 0) {
            char why[AGORA__MAX_ERROR_LEN + 1];
            agora__sanitize_message(err.msg, why, sizeof why);
            return protocol_error(w, why);
        }
        st = AGORA__JOB_OK;
        break;
    case AGORA__IPC__JOB_STATUS__JOB_PLUGIN_ERROR: {
        char text[AGORA__MAX_ERROR_LEN + 1];
        agora__sanitize_message(r->error, text, sizeof text);
        if (r->plugin_code >= 0)
            return protocol_error(w, "plugin error with a non-negative code");
        code = r->plugin_code;
        if (code == AGORA_ENOMEM) {
            st = AGORA__JOB_OUT_OF_MEMORY;
            snprintf(msg, sizeof msg, "the plugin reported AGORA_ENOMEM: %s", text);
        } else if (code == AGORA_ECANCELLED && j->cancel_requested) {
            st = AGORA__JOB_CANCELLED;
            snprintf(msg, sizeof msg, "cancelled");
        } else {
            st = AGORA__JOB_PLUGIN_ERROR;
            snprintf(msg, sizeof msg, "the plugin failed with code %d: %s", (int)code,
                     text[0] ? text : "(no message)");
        }
        break;
    }
    case AGORA__IPC__JOB_STATUS__JOB_CANCELLED:
        st = AGORA__JOB_CANCELLED;
        snprintf(msg, sizeof msg, "cancelled");
        break;
    case AGORA__IPC__JOB_STATUS__JOB_INPUT_ERROR: {
        char text[AGORA__MAX_ERROR_LEN + 1];
        agora__sanitize_message(r->error, text, sizeof text);
        st = AGORA__JOB_INPUT_ERROR;
        snprintf(msg, sizeof msg, "the worker refused the job's input: %s", text);
        break;
    }
    case AGORA__IPC__JOB_STATUS__JOB_CHILD_DIED: {
        /* Fork-per-job: the discarded child died; the zygote lives on. */
        sig = r->child_signal;
        uint64_t limit_kb = pool->spec.limits.memory_bytes / 1024;
        if (sig == SIGSYS) {
            st = AGORA__JOB_POLICY_VIOLATION;
            if (w->violation[0] != '\0')
                snprintf(msg, sizeof msg, "the plugin was killed: %s", w->violation);
            else
                snprintf(msg, sizeof msg, "the plugin made a forbidden system call (SIGSYS)");
            w->violation[0] = '\0';
        } else if (sig <= 0 && r->child_exit == AGORA__RUNNER_EXIT_OOM) {
            /* The child's crash probe found its memory at the cap (sandbox/memcap.c). */
            st = AGORA__JOB_OUT_OF_MEMORY;
            snprintf(msg, sizeof msg,
                     "the job process crashed with its memory at its limit of %llu KiB (one more "
                     "MiB could not be mapped; peak RSS %llu KiB)",
                     (unsigned long long)limit_kb, (unsigned long long)r->peak_rss_kb);
        } else if (sig > 0 && sig < 65) {
            st = AGORA__JOB_SIGNAL;
            snprintf(msg, sizeof msg, "the job process died from signal %d (%s)", sig,
                     strsignal(sig));
        } else if (r->child_exit == -1) {
            st = AGORA__JOB_PROTOCOL_ERROR;
            snprintf(msg, sizeof msg, "the zygote could not fork the job process");
        } else {
            st = AGORA__JOB_PROTOCOL_ERROR;
            snprintf(msg, sizeof msg, "the job process exited with status %d without a result",
                     (int)r->child_exit);
        }
        break;
    }
    default:
        return protocol_error(w, "Result with an unknown status");
    }
    uv_timer_stop(&w->timer);
    w->job = NULL;
    w->jobs_done++;
    w->state = W_IDLE;
    /* Retire before the callback runs: a submit from inside it must not land on this worker. */
    if (pool->spec.max_jobs_per_worker != 0 && w->jobs_done >= pool->spec.max_jobs_per_worker) {
        pool->stats.recycled++;
        retire(w);
    }
    switch (st) {
    case AGORA__JOB_OK:
    case AGORA__JOB_PLUGIN_ERROR:
        note_success(pool);
        break;
    case AGORA__JOB_CANCELLED:
    case AGORA__JOB_INPUT_ERROR:
        break;
    default:
        note_failure(pool, msg);
        break;
    }
    job_complete(pool, j, st, code, sig, msg, &v, r->cpu_us, r->peak_rss_kb);
    agora__validated_free(&v);
    maintain(pool);
}

/* ---- Fork mode: the job's own channel ------------------------------------------------------ */

static void jchan_closed(uv_handle_t *h)
{
    jchan *jc = h->data;
    close(jc->fd);
    if (jc->result != NULL)
        agora__frame_free(&jc->rd, jc->result);
    agora__frame_reader_free(&jc->rd);
    free(jc->out);
    free(jc);
}

/* Stop reading the worker's job channel and release it (the struct lives until its close
 * callback, so a frame taken from its reader may still be freed through it until then). */
static void jchan_detach(worker *w)
{
    jchan *jc = w->jc;
    if (jc == NULL)
        return;
    w->jc = NULL;
    jc->w = NULL;
    if (jc->poll_active)
        uv_poll_stop(&jc->poll);
    jc->poll_active = 0;
    uv_close((uv_handle_t *)&jc->poll, jchan_closed);
}

static void on_jpoll(uv_poll_t *h, int status, int events);

static void jchan_update(jchan *jc)
{
    worker *w = jc->w;
    int ev = 0;
    if (w != NULL && !w->has_verdict) {
        if (!jc->eof)
            ev |= UV_READABLE | UV_DISCONNECT;
        if (jc->out_off < jc->out_len)
            ev |= UV_WRITABLE;
    }
    if (ev == 0) {
        if (jc->poll_active)
            uv_poll_stop(&jc->poll);
        jc->poll_active = 0;
        return;
    }
    if (jc->poll_active && jc->poll_events == ev)
        return;
    if (uv_poll_start(&jc->poll, ev, on_jpoll) == 0) {
        jc->poll_active = 1;
        jc->poll_events = ev;
    }
}

static void jchan_flush(jchan *jc)
{
    while (jc->out_off < jc->out_len) {
        ssize_t n = agora__frame_sendmsg(jc->fd, jc->out + jc->out_off, jc->out_len - jc->out_off,
                                         jc->out_nfds ? jc->out_fds : NULL, jc->out_nfds);
        if (n == AGORA__EAGAIN)
            break;
        if (n < 0) {
            jc->out_off = jc->out_len; /* the job process is gone; JobExit says how */
            break;
        }
        jc->out_nfds = 0; /* the descriptors rode on the first byte */
        jc->out_off += (size_t)n;
    }
    if (jc->out_off == jc->out_len) {
        free(jc->out);
        jc->out = NULL;
        jc->out_len = jc->out_off = 0;
    }
    jchan_update(jc);
}

/* Queue bytes after what is pending (takes buf). */
static int jchan_append(jchan *jc, uint8_t *buf, size_t len)
{
    size_t rest = jc->out_len - jc->out_off;
    uint8_t *n = malloc(rest + len);
    if (n == NULL) {
        free(buf);
        return AGORA_ENOMEM;
    }
    if (rest)
        memcpy(n, jc->out + jc->out_off, rest);
    memcpy(n + rest, buf, len);
    free(buf);
    free(jc->out);
    jc->out = n;
    jc->out_len = rest + len;
    jc->out_off = 0;
    jchan_flush(jc);
    return 0;
}

/* 1 when the frame was kept (the Result). */
static int jchan_handle(jchan *jc, Agora__Ipc__Frame *f)
{
    worker *w = jc->w;
    switch (f->msg_case) {
    case AGORA__IPC__FRAME__MSG_LOG:
        on_log(w, f->log);
        return 0;
    case AGORA__IPC__FRAME__MSG_PROGRESS:
        on_progress(w, f->progress);
        return 0;
    case AGORA__IPC__FRAME__MSG_RESULT:
        if (jc->result != NULL) {
            protocol_error(w, "a second Result on a job channel (the host accepts one per job)");
            return 0;
        }
        if (w->job == NULL || f->result->job_id != w->job->id) {
            protocol_error(w, "a Result for another job on a job channel");
            return 0;
        }
        jc->result = f;
        return 1;
    case AGORA__IPC__FRAME__MSG_VIOLATION:
        on_violation(w, f->violation);
        return 0;
    case AGORA__IPC__FRAME__MSG_ERROR:
        if (!jc->got_error) {
            jc->got_error = 1;
            agora__sanitize_message(f->error->message, jc->error_msg, sizeof jc->error_msg);
        }
        return 0;
    default:
        protocol_error(w, "a job process sent a message that is not Log, Progress, Result or "
                          "Error");
        return 0;
    }
}

static void jchan_drain(jchan *jc)
{
    while (jc->w != NULL && !jc->w->has_verdict && !jc->eof) {
        agora__error err = {0};
        int rc = agora__frame_reader_fill(&jc->rd, jc->fd, &err);
        if (rc == AGORA__EAGAIN)
            break;
        if (rc == 0)
            jc->eof = 1;
        if (rc < 0) {
            protocol_error(jc->w, err.msg);
            break;
        }
        for (;;) {
            Agora__Ipc__Frame *f = NULL;
            int n = agora__frame_reader_next(&jc->rd, &f, &err);
            if (n < 0) {
                protocol_error(jc->w, err.msg);
                break;
            }
            if (n == 0)
                break;
            if (!jchan_handle(jc, f))
                agora__frame_free(&jc->rd, f);
            if (jc->w == NULL || jc->w->has_verdict)
                break;
        }
    }
}

static void on_jpoll(uv_poll_t *h, int status, int events)
{
    jchan *jc = h->data;
    if (jc->w == NULL)
        return;
    if (status < 0) {
        jc->eof = 1; /* the zygote's JobExit decides */
    } else {
        if (events & UV_WRITABLE)
            jchan_flush(jc);
        if (events & (UV_READABLE | UV_DISCONNECT))
            jchan_drain(jc);
    }
    if (jc->w != NULL)
        jchan_update(jc);
}

/* Dispatch a job in fork mode: a socketpair of its own, ForkJob with one end to the zygote,
 * Job and memfds on the other. Takes wire. */
static int start_fork_job(worker *w, job *j, uint8_t *wire)
{
    agora__pool *pool = w->pool;
    int sv[2];
    /* Only the host's end is non-blocking: the job process reads its end blocking. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        free(wire);
        return -1;
    }
    jchan *jc = calloc(1, sizeof *jc);
    int fl = fcntl(sv[0], F_GETFL);
    if (jc == NULL || fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0 ||
        uv_poll_init(pool->loop, &jc->poll, sv[0]) < 0) {
        free(jc);
        free(wire);
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    jc->w = w;
    jc->fd = sv[0];
    jc->poll.data = jc;
    agora__frame_reader_init(&jc->rd, pool->spec.limits.max_result_bytes + 16, 0);
    jc->out = wire;
    jc->out_len = j->wire_len;
    jc->out_fds[0] = j->pix_fd;
    jc->out_fds[1] = j->out_fd;
    jc->out_nfds = 2;
    w->jc = jc;
    Agora__Ipc__ForkJob fj = AGORA__IPC__FORK_JOB__INIT;
    fj.job_id = j->id;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_FORK_JOB;
    f.fork_job = &fj;
    uint8_t *buf;
    size_t len;
    agora__error err;
    if (agora__frame_pack(&f, AGORA__FRAME_HOST_TO_RUNNER_MAX, &buf, &len, &err) < 0) {
        close(sv[1]);
        return -1;
    }
    /* The host's copy of the job process's end closes once ForkJob is sent. */
    if (send_frame_own(w, buf, len, &sv[1], 1, sv[1]) < 0)
        return -1;
    jchan_flush(jc);
    return 0;
}

static void on_job_exit(worker *w, const Agora__Ipc__JobExit *e)
{
    jchan *jc = w->jc;
    if (!w->pool->spec.fork_per_job || w->job == NULL || jc == NULL || e->job_id != w->job->id)
        return protocol_error(w, "JobExit for a job the worker is not running");
    /* The job process is gone: everything it sent is in the socket already. */
    jchan_drain(jc);
    if (w->has_verdict)
        return;
    Agora__Ipc__Frame *rf = jc->result;
    jc->result = NULL;
    agora__frame_reader *rd = &jc->rd;
    int clean = e->signal == 0 && e->exit_code == 0;
    jchan_detach(w); /* jc stays allocated until its close callback: rf is freed through rd */
    if (rf != NULL && clean) {
        on_result(w, rf->result);
    } else {
        /* Died (or the fork failed) without a Result, or died after sending one: the job
         * failed the way the process ended. */
        Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
        r.job_id = e->job_id;
        r.status = AGORA__IPC__JOB_STATUS__JOB_CHILD_DIED;
        r.child_signal = e->signal;
        r.child_exit = e->exit_code;
        r.cpu_us = e->cpu_us;
        r.peak_rss_kb = e->peak_rss_kb;
        on_result(w, &r);
    }
    if (rf != NULL)
        agora__frame_free(rd, rf);
}

/* The runner's SIGSYS trap (Setup.trap_violations) names the call it is about to die for.
 * Plugin code could send this frame too: it only ever names a SIGSYS death, never causes one. */
static void on_violation(worker *w, const Agora__Ipc__Violation *v)
{
    if (w->violation[0] != '\0' || !w->pool->spec.trap_violations)
        return;
    char name[33];
    size_t n = 0;
    for (const char *p = v->name; p != NULL && *p != '\0' && n < sizeof name - 1; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
            name[n++] = *p;
    name[n] = '\0';
    snprintf(w->violation, sizeof w->violation, "forbidden system call: %s (%u)",
             n ? name : "unknown", v->syscall);
}

static void on_error_msg(worker *w, const Agora__Ipc__Error *e)
{
    if (w->got_error)
        return;
    w->got_error = 1;
    w->error_stage = e->stage;
    w->error_code = e->code;
    agora__sanitize_message(e->message, w->error_msg, sizeof w->error_msg);
    /* The runner exits right after Error; give it the shutdown grace, then kill. */
    arm(w, SHUTDOWN_GRACE_MS);
}

static void handle_frame(worker *w, Agora__Ipc__Frame *f)
{
    switch (f->msg_case) {
    case AGORA__IPC__FRAME__MSG_READY:
        if (w->state != W_SPAWNING)
            return protocol_error(w, "unexpected Ready");
        return on_ready(w, f->ready);
    case AGORA__IPC__FRAME__MSG_LOG:
        return on_log(w, f->log);
    case AGORA__IPC__FRAME__MSG_PROGRESS:
        if (w->state != W_BUSY)
            return protocol_error(w, "Progress outside a job");
        return on_progress(w, f->progress);
    case AGORA__IPC__FRAME__MSG_RESULT:
        if (w->state != W_BUSY)
            return protocol_error(w, "Result outside a job");
        if (w->pool->spec.fork_per_job)
            return protocol_error(w, "a Result on the zygote's channel (fork mode: job "
                                     "channels only)");
        return on_result(w, f->result);
    case AGORA__IPC__FRAME__MSG_JOB_EXIT:
        if (w->state != W_BUSY)
            return protocol_error(w, "JobExit outside a job");
        return on_job_exit(w, f->job_exit);
    case AGORA__IPC__FRAME__MSG_ERROR:
        return on_error_msg(w, f->error);
    case AGORA__IPC__FRAME__MSG_VIOLATION:
        return on_violation(w, f->violation);
    default:
        return protocol_error(w, "a host-to-runner message came from the runner");
    }
}

/* Read and handle everything available. Stops at a verdict. */
static void drain(worker *w)
{
    while (!w->has_verdict && !w->eof) {
        agora__error err = {0};
        size_t before = w->rd.len;
        int rc = agora__frame_reader_fill(&w->rd, w->sock, &err);
        if (rc == AGORA__EAGAIN)
            break;
        /* A short read emptied the socket: skip the recvmsg that would only say EAGAIN (the
         * poll is level-triggered and reports anything that arrives later). */
        int drained = rc == 1 && w->rd.len - before < AGORA__FRAME_READ_CHUNK;
        if (rc == 0)
            w->eof = 1;
        if (rc < 0) {
            protocol_error(w, err.msg);
            break;
        }
        for (;;) {
            Agora__Ipc__Frame *f = NULL;
            int n = agora__frame_reader_next(&w->rd, &f, &err);
            if (n < 0) {
                protocol_error(w, err.msg);
                break;
            }
            if (n == 0)
                break;
            handle_frame(w, f);
            agora__frame_free(&w->rd, f);
            if (w->has_verdict)
                break;
        }
        if (drained)
            break;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    worker *w = h->data;
    if (status < 0) {
        protocol_error(w, "socket error");
        return;
    }
    if (events & UV_WRITABLE)
        flush_out(w);
    if (events & (UV_READABLE | UV_DISCONNECT))
        drain(w);
    if (w->eof && w->poll_active) {
        /* The runner closed its end; its exit status (SIGCHLD) says why. */
        uv_poll_stop(&w->poll);
        w->poll_active = 0;
        if (!w->reaped)
            arm(w, SHUTDOWN_GRACE_MS);
    } else if (w->poll_active) {
        update_poll(w);
    }
}

static void update_poll(worker *w)
{
    if (w->has_verdict || w->eof || w->state == W_DEAD)
        return;
    int ev = UV_READABLE | UV_DISCONNECT | (w->out_head != NULL ? UV_WRITABLE : 0);
    if (w->poll_active && w->poll_events == ev)
        return;
    if (uv_poll_start(&w->poll, ev, on_poll) == 0) {
        w->poll_active = 1;
        w->poll_events = ev;
    }
}

/* ---- Pool bookkeeping: failures, backoff, quarantine ---------------------------------------- */

static void fail_queue(agora__pool *pool, agora__job_status st, const char *msg)
{
    while (pool->q_head != NULL) {
        job *j = pool->q_head;
        pool->q_head = j->next;
        pool->queued--;
        job_complete(pool, j, st, 0, 0, msg, NULL, 0, 0);
    }
    pool->q_tail = NULL;
}

static void note_success(agora__pool *pool)
{
    pool->consecutive_failures = 0;
    pool->backoff_ms = 0;
}

static void note_failure(agora__pool *pool, const char *msg)
{
    note_failure_now(pool, msg, 0);
}

/* at_once: quarantine now, whatever the count (a hung init). */
static void note_failure_now(agora__pool *pool, const char *msg, int at_once)
{
    pool->consecutive_failures++;
    pool->backoff_ms = pool->backoff_ms == 0 ? BACKOFF_MIN_MS : pool->backoff_ms * 2;
    if (pool->backoff_ms > BACKOFF_MAX_MS)
        pool->backoff_ms = BACKOFF_MAX_MS;
    pool->next_spawn_ns = agora__now_ns() + (uint64_t)pool->backoff_ms * 1000000u;
    if (!pool->quarantined &&
        (at_once || pool->consecutive_failures >= pool->spec.quarantine_after)) {
        pool->quarantined = 1;
        char line[AGORA__MAX_ERROR_LEN + 1];
        agora__sanitize_message(msg, line, sizeof line);
        if (at_once)
            snprintf(pool->quarantine_reason, sizeof pool->quarantine_reason,
                     "plugin %s quarantined: %s", pool->plugin_id, line);
        else
            snprintf(pool->quarantine_reason, sizeof pool->quarantine_reason,
                     "plugin %s quarantined after %u consecutive failures (last: %s)",
                     pool->plugin_id, pool->consecutive_failures, line);
        agora__log(AGORA_LOG_WARN, COMPONENT, "%s", pool->quarantine_reason);
        char why[400];
        snprintf(why, sizeof why, "%s; fix or remove the plugin", pool->quarantine_reason);
        fail_queue(pool, AGORA__JOB_QUARANTINED, why);
        for (worker *w = pool->workers; w != NULL; w = w->next)
            if (w->state == W_IDLE || w->state == W_SPAWNING)
                retire(w);
    }
}

/* ---- Worker lifecycle ---------------------------------------------------------------------- */

static void send_setup(worker *w)
{
    agora__pool *pool = w->pool;
    Agora__Ipc__Limits lim = AGORA__IPC__LIMITS__INIT;
    lim.memory_bytes = pool->spec.limits.memory_bytes;
    lim.cpu_seconds = pool->spec.limits.cpu_seconds;
    lim.max_threads = pool->spec.limits.max_threads;
    lim.max_result_bytes = pool->spec.limits.max_result_bytes;
    lim.max_items = pool->spec.limits.max_items;
    lim.max_log_lines = pool->spec.limits.max_log_lines;
    lim.job_map_bytes = pool->spec.limits.job_map_bytes;
    Agora__Ipc__Setup s = AGORA__IPC__SETUP__INIT;
    s.protocol_version = AGORA__PROTO_VERSION;
    s.host_abi_version = AGORA_ABI_VERSION;
    s.mode = AGORA__IPC__MODE__MODE_PLUGIN;
    s.plugin_sha256.data = pool->spec.plugin_sha256;
    s.plugin_sha256.len = 32;
    s.plugin_size = pool->spec.plugin_size;
    s.limits = &lim;
    s.allow_weak_isolation = pool->spec.allow_weak_isolation != 0;
    s.plugin_id = pool->plugin_id;
    s.plugin_version = pool->plugin_version;
    s.fork_per_job = pool->spec.fork_per_job != 0;
    s.root_files = pool->closure.entries;
    s.n_root_files = pool->closure.n;
    s.trap_violations = pool->spec.trap_violations != 0;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_SETUP;
    f.setup = &s;
    uint8_t *buf;
    size_t len;
    agora__error err;
    s.n_assets = pool->spec.n_assets;
    if (agora__frame_pack(&f, AGORA__FRAME_HOST_TO_RUNNER_MAX, &buf, &len, &err) < 0 ||
        send_frame(w, buf, len, &pool->plugin_fd, 1) < 0) {
        worker_kill(w, AGORA__JOB_SETUP_ERROR, "could not send Setup");
        return;
    }
    /* The assets follow at once, one frame and one sealed memfd each (protocol 3). */
    for (uint32_t i = 0; i < pool->spec.n_assets; i++) {
        Agora__Ipc__Asset a = AGORA__IPC__ASSET__INIT;
        a.name = pool->assets[i].name;
        a.size = pool->assets[i].size;
        Agora__Ipc__Frame af = AGORA__IPC__FRAME__INIT;
        af.msg_case = AGORA__IPC__FRAME__MSG_ASSET;
        af.asset = &a;
        if (agora__frame_pack(&af, AGORA__FRAME_HOST_TO_RUNNER_MAX, &buf, &len, &err) < 0 ||
            send_frame(w, buf, len, &pool->assets[i].fd, 1) < 0) {
            worker_kill(w, AGORA__JOB_SETUP_ERROR, "could not send asset %s", a.name);
            return;
        }
    }
}

/* Copy the spec's assets (names, sizes, dup()ed descriptors) after checking each is a sealed
 * memfd of the announced size within the bounds: a runner would refuse it later, less clearly. */
static int pool_take_assets(agora__pool *pool, const agora__plugin_spec *spec, agora__error *err)
{
    pool->spec.assets = NULL;
    if (spec->n_assets == 0)
        return 0;
    if (spec->n_assets > AGORA__ASSETS_MAX || spec->assets == NULL)
        return agora__error_set(err, AGORA_ELIMIT, "a plugin has at most %u assets (got %u)",
                                AGORA__ASSETS_MAX, spec->n_assets);
    pool->assets = calloc(spec->n_assets, sizeof *pool->assets);
    if (pool->assets == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for the plugin's assets");
    for (uint32_t i = 0; i < spec->n_assets; i++)
        pool->assets[i].fd = -1;
    uint64_t total = 0;
    const int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    for (uint32_t i = 0; i < spec->n_assets; i++) {
        const agora__asset *a = &spec->assets[i];
        struct stat st;
        int seals = fcntl(a->fd, F_GET_SEALS);
        if (!agora__asset_name_valid(a->name) || seals < 0 || (seals & need) != need ||
            fstat(a->fd, &st) != 0 || (uint64_t)st.st_size != a->size || a->size == 0 ||
            a->size > AGORA__ASSET_SIZE_MAX || a->size > AGORA__ASSETS_TOTAL_MAX - total)
            return agora__error_set(err, AGORA_EINVAL,
                                    "asset %u is not a sealed memfd of its announced size within "
                                    "the bounds (agora__asset_load_file makes one)",
                                    i);
        total += a->size;
        pool->assets[i] = *a;
        pool->assets[i].fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 3);
        if (pool->assets[i].fd < 0)
            return agora__error_set(err, AGORA__ERR(errno), "dup of asset %s: %s", a->name,
                                    strerror(errno));
    }
    pool->spec.assets = pool->assets;
    return 0;
}

static void pool_free_assets(agora__pool *pool)
{
    agora__assets_close(pool->assets, pool->spec.n_assets);
    free(pool->assets);
    pool->assets = NULL;
}

static void on_handle_closed(uv_handle_t *h)
{
    worker *w = h->data;
    if (--w->open_handles > 0)
        return;
    agora__pool *pool = w->pool;
    close(w->sock);
    agora__frame_reader_free(&w->rd);
    while (w->out_head != NULL) {
        outmsg *m = w->out_head;
        w->out_head = m->next;
        outmsg_free(m);
    }
    for (worker **pp = &pool->workers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pool->stats.live_workers--;
    if (w->cgroup[0])
        agora__cgroup_remove(w->cgroup);
    free(w);
    maintain(pool);
    try_close_pool(pool);
}

static void spawn_one(agora__pool *pool)
{
    worker *w = calloc(1, sizeof *w);
    agora__error err = {0};
    if (w == NULL) {
        note_failure(pool, "out of memory starting a worker");
        return;
    }
    w->pool = pool;
    w->state = W_SPAWNING;
    const agora__cgroup_env *cg = agora__cgroup_detect();
    int procs_fd = -1;
    if (cg->usable) {
        /* memory.max: the cap plus the runner's own data and the threads' stacks (the same
         * headroom as its RLIMIT_DATA); pids.max as RLIMIT_NPROC. */
        uint64_t threads =
            (uint64_t)pool->spec.limits.max_threads * (pool->spec.fork_per_job ? 2 : 1);
        uint64_t mem = pool->spec.limits.memory_bytes + threads * (8ull << 20) + (16ull << 20);
        if (agora__cgroup_create(cg, mem, (uint32_t)threads + 4, w->cgroup, sizeof w->cgroup,
                                 &procs_fd, &err) < 0) {
            free(w);
            char msg[600];
            snprintf(msg, sizeof msg, "starting the runner: %s", err.msg);
            agora__log(AGORA_LOG_ERROR, COMPONENT, "%s", msg);
            note_failure(pool, msg);
            return;
        }
    }
    int spawned = agora__spawn_runner(pool->runner_path, procs_fd, &w->pid, &w->sock, &err);
    if (procs_fd >= 0)
        close(procs_fd);
    if (spawned < 0) {
        if (w->cgroup[0])
            agora__cgroup_remove(w->cgroup);
        free(w);
        char msg[600];
        snprintf(msg, sizeof msg, "starting the runner: %s", err.msg);
        agora__log(AGORA_LOG_ERROR, COMPONENT, "%s", msg);
        note_failure(pool, msg);
        return;
    }
    /* A Result of max_result_bytes still needs its Frame wrapper (a tag and a length). */
    agora__frame_reader_init(&w->rd, pool->spec.limits.max_result_bytes + 16, 0);
    if (uv_poll_init(pool->loop, &w->poll, w->sock) < 0 ||
        uv_timer_init(pool->loop, &w->timer) < 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        close(w->sock);
        agora__frame_reader_free(&w->rd);
        if (w->cgroup[0])
            agora__cgroup_remove(w->cgroup);
        free(w);
        note_failure(pool, "libuv refused a worker handle");
        return;
    }
    w->poll.data = w;
    w->timer.data = w;
    w->open_handles = 2;
    w->next = pool->workers;
    pool->workers = w;
    pool->stats.spawned++;
    pool->stats.live_workers++;
    update_poll(w);
    arm(w, pool->spec.setup_timeout_ms);
    send_setup(w);
}

/* Retire a worker that is not running a job: Shutdown, then kill after the grace period. */
static void retire(worker *w)
{
    if (w->state == W_STOPPING || w->state == W_DEAD || w->has_verdict)
        return;
    w->retiring = 1;
    if (w->state == W_SPAWNING) {
        /* Possibly mid-init: nothing worth waiting for. */
        w->has_verdict = 1;
        w->verdict = AGORA__JOB_OK;
        kill(w->pid, SIGKILL);
        w->pool->stats.killed++;
        w->state = W_STOPPING;
        return;
    }
    Agora__Ipc__Shutdown sd = AGORA__IPC__SHUTDOWN__INIT;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_SHUTDOWN;
    f.shutdown = &sd;
    w->state = W_STOPPING;
    send_simple(w, &f);
    arm(w, SHUTDOWN_GRACE_MS);
}

/* Classify how a worker ended, from the host's verdict, the runner's last Error, and its wait
 * status and rusage (docs/protocol.md, "Classification"). */
/* The runner's Error.code is a value of its own wire protocol (sandbox/ sends AGORA_E* or
 * -errno), not a host error code: it is read here only, against the errno it names. */
static int runner_errno_is(int32_t code, int e)
{
    return code == -e;
}

static agora__job_status classify_exit(worker *w, int *sig_out, char *msg, size_t msg_size)
{
    agora__pool *pool = w->pool;
    *sig_out = 0;
    if (w->has_verdict) {
        agora__strlcpy(msg, w->verdict_msg, msg_size);
        return w->verdict;
    }
    /* With cgroup v2 the kernel says itself whether its OOM killer stopped the worker. */
    if (w->cgroup[0] && agora__cgroup_oom_kills(w->cgroup) > 0) {
        snprintf(msg, msg_size,
                 "the worker was killed by the kernel at its cgroup memory.max (limit %llu KiB, "
                 "peak RSS %llu KiB): out of memory",
                 (unsigned long long)(pool->spec.limits.memory_bytes / 1024),
                 (unsigned long long)w->ru.ru_maxrss);
        return AGORA__JOB_OUT_OF_MEMORY;
    }
    if (w->got_error) {
        if (w->error_code == AGORA_ENOMEM || runner_errno_is(w->error_code, ENOMEM)) {
            snprintf(msg, msg_size, "the worker ran out of memory: %s", w->error_msg);
            return AGORA__JOB_OUT_OF_MEMORY;
        }
        if (runner_errno_is(w->error_code, EPROTO) && w->state != W_SPAWNING) {
            /* The runner saw the channel break or a message it could not accept. */
            snprintf(msg, msg_size, "the worker reported a protocol error: %s", w->error_msg);
            return AGORA__JOB_PROTOCOL_ERROR;
        }
        if (w->error_stage == AGORA__IPC__STAGE__STAGE_JOB) {
            snprintf(msg, msg_size, "the worker failed during the job: %s", w->error_msg);
            return AGORA__JOB_INPUT_ERROR;
        }
        static const char *const stages[] = {"?", "setup", "confine", "load", "init", "job"};
        int stage = w->error_stage >= 0 && w->error_stage <= 5 ? w->error_stage : 0;
        snprintf(msg, msg_size, "the worker failed at %s (code %d): %s", stages[stage],
                 (int)w->error_code, w->error_msg);
        return AGORA__JOB_SETUP_ERROR;
    }
    int sig = 0;
    const char *how = "";
    if (WIFSIGNALED(w->wstatus)) {
        sig = WTERMSIG(w->wstatus);
    } else if (WIFEXITED(w->wstatus) && WEXITSTATUS(w->wstatus) > 128 &&
               WEXITSTATUS(w->wstatus) < 128 + 65) {
        /* A runner whose sandboxed child died reports it as 128+signal, like a shell. */
        sig = WEXITSTATUS(w->wstatus) - 128;
        how = " (reported by the runner's exit status)";
    }
    if (sig == 0) {
        /* Exit codes of agora-runner (proto.h): SETUP..INIT are refusals before any job. */
        static const char *const why[] = {"setup was refused",         "confinement failed",
                                          "the plugin failed to load", "plugin init failed",
                                          "it saw a protocol error",   "it hit an internal error"};
        int code = WIFEXITED(w->wstatus) ? WEXITSTATUS(w->wstatus) : -1;
        if (code == AGORA__RUNNER_EXIT_OOM) {
            /* The runner's crash probe saw its memory at the cap (sandbox/memcap.c). */
            snprintf(msg, msg_size,
                     "the worker crashed with its memory at its limit of %llu KiB (one more MiB "
                     "could not be mapped; peak RSS %llu KiB): out of memory",
                     (unsigned long long)(pool->spec.limits.memory_bytes / 1024),
                     (unsigned long long)w->ru.ru_maxrss);
            return AGORA__JOB_OUT_OF_MEMORY;
        }
        if (code >= AGORA__RUNNER_EXIT_SETUP && code <= AGORA__RUNNER_EXIT_INTERNAL)
            snprintf(msg, msg_size, "the worker exited with status %d (%s) without a result", code,
                     why[code - AGORA__RUNNER_EXIT_SETUP]);
        else
            snprintf(msg, msg_size, "the worker exited with status %d without a result", code);
        if (w->state == W_SPAWNING ||
            (code >= AGORA__RUNNER_EXIT_SETUP && code <= AGORA__RUNNER_EXIT_INIT))
            return AGORA__JOB_SETUP_ERROR;
        return AGORA__JOB_PROTOCOL_ERROR;
    }
    *sig_out = sig;
    uint64_t cpu_s = (uint64_t)w->ru.ru_utime.tv_sec + (uint64_t)w->ru.ru_stime.tv_sec;
    uint64_t rss_kb = (uint64_t)w->ru.ru_maxrss;
    uint64_t limit_kb = pool->spec.limits.memory_bytes / 1024;
    if (sig == SIGSYS) {
        if (w->violation[0] != '\0')
            snprintf(msg, msg_size, "the plugin was killed: %s%s", w->violation, how);
        else
            snprintf(msg, msg_size, "the plugin made a forbidden system call (SIGSYS)%s", how);
        return AGORA__JOB_POLICY_VIOLATION;
    }
    if (sig == SIGXCPU || (sig == SIGKILL && cpu_s + 1 >= pool->spec.limits.cpu_seconds)) {
        snprintf(msg, msg_size, "the worker hit its CPU limit of %u s%s",
                 pool->spec.limits.cpu_seconds, how);
        return AGORA__JOB_TIMEOUT;
    }
    if (sig == SIGKILL) {
        /* Not the host's SIGKILL (no verdict) and not the CPU limit. Under rlimits the cap
         * never kills (allocations fail instead), so this is the plugin itself or the kernel's
         * OOM killer acting for the whole machine: a signal, not this plugin's cap. */
        snprintf(msg, msg_size,
                 "the worker was killed by SIGKILL that the host did not send (peak RSS %llu "
                 "KiB, limit %llu KiB)%s",
                 (unsigned long long)rss_kb, (unsigned long long)limit_kb, how);
        return AGORA__JOB_SIGNAL;
    }
    snprintf(msg, msg_size, "the worker died from signal %d (%s)%s", sig, strsignal(sig), how);
    return AGORA__JOB_SIGNAL;
}

static void on_worker_timer_closed(uv_handle_t *h)
{
    on_handle_closed(h);
}

/* The process is reaped: drain its last words, classify, complete its job, release it. */
static void worker_finish(worker *w)
{
    agora__pool *pool = w->pool;
    if (!w->has_verdict && !w->eof)
        drain(w);
    int clean_stop = w->retiring && w->job == NULL;
    int sig = 0;
    char msg[AGORA__MAX_ERROR_LEN + 64];
    agora__job_status st = classify_exit(w, &sig, msg, sizeof msg);
    int was_spawning = w->state == W_SPAWNING;
    w->state = W_DEAD;
    if (w->poll_active) {
        uv_poll_stop(&w->poll);
        w->poll_active = 0;
    }
    uv_timer_stop(&w->timer);
    jchan_detach(w);
    job *j = w->job;
    w->job = NULL;
    if (j != NULL) {
        if (st == AGORA__JOB_OK) {
            st = AGORA__JOB_PROTOCOL_ERROR;
            snprintf(msg, sizeof msg, "the worker stopped without a result");
        }
        if (st != AGORA__JOB_CANCELLED && st != AGORA__JOB_INPUT_ERROR)
            note_failure(pool, msg);
        job_complete(pool, j, st, 0, sig, msg, NULL, 0, (uint64_t)w->ru.ru_maxrss);
    } else if (!clean_stop && st != AGORA__JOB_OK) {
        /* No job was lost, but a worker that cannot start or dies idle is a failing plugin. */
        agora__log(AGORA_LOG_WARN, COMPONENT, "worker of %s %s: %s", pool->plugin_id,
                   was_spawning ? "failed to start" : "died", msg);
        note_failure_now(pool, msg, w->setup_hung);
    }
    uv_close((uv_handle_t *)&w->poll, on_handle_closed);
    uv_close((uv_handle_t *)&w->timer, on_worker_timer_closed);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    agora__pool *pool = h->data;
    for (worker *w = pool->workers; w != NULL; w = w->next) {
        if (w->reaped || w->pid <= 0)
            continue;
        int status;
        struct rusage ru;
        pid_t p;
        do {
            p = wait4(w->pid, &status, WNOHANG, &ru);
        } while (p < 0 && errno == EINTR);
        if (p != w->pid)
            continue;
        w->reaped = 1;
        w->wstatus = status;
        w->ru = ru;
    }
    /* Finish outside the scan: finishing may change the list. */
    for (int again = 1; again;) {
        again = 0;
        for (worker *w = pool->workers; w != NULL; w = w->next)
            if (w->reaped && w->state != W_DEAD) {
                worker_finish(w);
                again = 1;
                break;
            }
    }
}

/* ---- Scheduling ---------------------------------------------------------------------------- */

static void on_respawn(uv_timer_t *t)
{
    maintain(t->data);
}

static void dispatch(agora__pool *pool)
{
    /* Fresh mode keeps spares beside busy workers: still no more than `workers` jobs at once. */
    uint32_t busy = 0;
    int started = 0;
    for (worker *w = pool->workers; w != NULL; w = w->next)
        busy += w->state == W_BUSY;
    for (worker *w = pool->workers; w != NULL && pool->q_head != NULL; w = w->next) {
        if (w->state != W_IDLE || w->has_verdict || w->reaped || w->eof)
            continue;
        if (pool->spec.fresh_per_job && busy >= pool->spec.workers)
            break;
        busy++;
        job *j = pool->q_head;
        pool->q_head = j->next;
        if (pool->q_head == NULL)
            pool->q_tail = NULL;
        pool->queued--;
        j->next = NULL;
        /* The output area is sized now and sealed against resizing (the worker may still write
         * into it): its size is what mask offsets are checked against. */
        if (j->geom.output_bytes == 0) {
            /* Nothing can be written to a sealed empty file: one serves every such job. */
            j->out_fd = pool->empty_out_fd;
            j->out_shared = 1;
        } else {
            j->out_fd = memfd_create("agora-output", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        }
        if (j->out_fd < 0 ||
            (!j->out_shared &&
             (ftruncate(j->out_fd, (off_t)j->geom.output_bytes) < 0 ||
              fcntl(j->out_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0))) {
            job_complete(pool, j, AGORA__JOB_INPUT_ERROR, 0, 0,
                         "could not create the job's output area", NULL, 0, 0);
            busy--; /* this worker stays idle */
            continue;
        }
        j->w = w;
        w->log_lines = 0;
        j->start_ns = agora__now_ns();
        w->job = j;
        w->state = W_BUSY;
        int fds[2] = {j->pix_fd, j->out_fd};
        uint8_t *wire = j->wire;
        j->wire = NULL;
        arm(w, pool->spec.timeout_ms);
        started = 1;
        if (pool->spec.fork_per_job) {
            if (start_fork_job(w, j, wire) < 0)
                worker_kill(w, AGORA__JOB_PROTOCOL_ERROR, "could not start the job's channel");
        } else if (send_frame(w, wire, j->wire_len, fds, 2) < 0) {
            worker_kill(w, AGORA__JOB_PROTOCOL_ERROR, "could not send the job");
        }
    }
    /* Fresh mode: the worker that just took a job retires after it; start its spare now, so
     * that the next job does not wait for a runner to start. (maintain dispatches again, but
     * the spare is still starting: no deeper recursion.) */
    if (started && pool->spec.fresh_per_job)
        maintain(pool);
}

static void maintain(agora__pool *pool)
{
    if (pool->closing == 2)
        return;
    if (pool->closing) {
        for (worker *w = pool->workers; w != NULL; w = w->next)
            if (w->state == W_IDLE || w->state == W_SPAWNING)
                retire(w);
        return;
    }
    if (pool->quarantined)
        return;
    uint32_t live = 0;
    for (worker *w = pool->workers; w != NULL; w = w->next)
        if ((w->state == W_SPAWNING || w->state == W_IDLE ||
             (w->state == W_BUSY && !pool->spec.fresh_per_job)) &&
            !w->reaped)
            live++; /* fresh mode: a busy worker retires after its job; its spare starts now */
    while (live < pool->spec.workers && !pool->quarantined) {
        uint64_t now = agora__now_ns();
        if (pool->next_spawn_ns > now) {
            if (!uv_is_active((uv_handle_t *)&pool->respawn)) {
                uv_update_time(pool->loop); /* see arm() */
                uv_timer_start(&pool->respawn, on_respawn,
                               (pool->next_spawn_ns - now) / 1000000u + 1, 0);
            }
            break;
        }
        spawn_one(pool);
        live++;
    }
    dispatch(pool);
}

/* ---- Public API ---------------------------------------------------------------------------- */

static char *dupstr(const char *s)
{
    return strdup(s != NULL ? s : "");
}

int agora__pool_new(uv_loop_t *loop, const agora__plugin_spec *spec, agora__pool **out,
                    agora__error *err)
{
    *out = NULL;
    if (spec->plugin_bytes == NULL || spec->plugin_size == 0 || spec->plugin_id == NULL ||
        spec->plugin_version == NULL)
        return agora__error_set(err, AGORA_EINVAL, "plugin spec lacks bytes, id or version");
    if (spec->fresh_per_job && spec->fork_per_job)
        return agora__error_set(err, AGORA_EINVAL,
                                "fresh_per_job and fork_per_job exclude each other; choose one");
    if (spec->workers > MAX_WORKERS)
        return agora__error_set(err, AGORA_EINVAL, "%u workers requested; at most %d",
                                spec->workers, MAX_WORKERS);
    uint8_t digest[32];
    agora__sha256(spec->plugin_bytes, spec->plugin_size, digest);
    if (memcmp(digest, spec->plugin_sha256, 32) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin bytes do not match the expected sha256; reinstall the "
                                "plugin");
    char runner[4096];
    if (spec->runner_path != NULL)
        agora__strlcpy(runner, spec->runner_path, sizeof runner);
    else if (agora__runner_path(runner, sizeof runner, err) < 0)
        return err ? err->code : AGORA_EINVAL;

    agora__pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory creating a pool");
    pool->loop = loop;
    pool->spec = *spec;
    pool->plugin_fd = -1;
    pool->empty_out_fd = -1;
    agora__plugin_spec *s = &pool->spec;
    if (s->workers == 0)
        s->workers = 1;
    if (s->fresh_per_job)
        s->max_jobs_per_worker = 1;
    if (s->timeout_ms == 0)
        s->timeout_ms = 60000;
    /* Setup (spawn, confinement, load, init) is bounded by the job's time limit too: a caller's
     * --timeout 5 must not wait 30 s for an init that hangs. */
    if (s->setup_timeout_ms == 0)
        s->setup_timeout_ms = s->timeout_ms < 30000 ? s->timeout_ms : 30000;
    if (s->cancel_grace_ms == 0)
        s->cancel_grace_ms = 2000;
    if (s->quarantine_after == 0)
        s->quarantine_after = 3;
    if (s->max_queue == 0)
        s->max_queue = 256;
    if (s->max_output_bytes == 0)
        s->max_output_bytes = (uint64_t)256 << 20;
    if (s->limits.memory_bytes == 0)
        s->limits.memory_bytes = (uint64_t)512 << 20;
    if (s->limits.cpu_seconds == 0)
        s->limits.cpu_seconds = 3600;
    if (s->limits.max_threads == 0)
        s->limits.max_threads = 1;
    if (s->limits.max_result_bytes == 0 ||
        s->limits.max_result_bytes > AGORA__FRAME_RUNNER_TO_HOST_MAX - 16)
        s->limits.max_result_bytes = AGORA__FRAME_RUNNER_TO_HOST_MAX - 16;
    /* A stored result never holds more items than the one table allows: a larger cap would
     * let results through here that the results validator refuses. */
    if (s->limits.max_items == 0 || s->limits.max_items > AGORA__RESULT_ITEMS_MAX)
        s->limits.max_items = AGORA__RESULT_ITEMS_MAX;
    if (s->limits.max_log_lines == 0)
        s->limits.max_log_lines = 100;
    if (s->limits.job_map_bytes == 0)
        s->limits.job_map_bytes = AGORA__PIXBUF_MAX + s->max_output_bytes;
    /* The sandbox root holds exactly what the loader will open for these bytes. */
    if (agora__closure_resolve(spec->plugin_bytes, spec->plugin_size, &pool->closure, err) !=
        AGORA_OK) {
        agora__error_prefix(err, "resolving the libraries of %s", spec->plugin_id);
        goto fail;
    }
    pool->runner_path = strdup(runner);
    pool->plugin_id = dupstr(spec->plugin_id);
    pool->plugin_version = dupstr(spec->plugin_version);
    s->plugin_bytes = NULL; /* not kept: the memfd below holds the verified copy */
    s->runner_path = pool->runner_path;
    s->plugin_id = pool->plugin_id;
    s->plugin_version = pool->plugin_version;
    if (pool->runner_path == NULL || pool->plugin_id == NULL || pool->plugin_version == NULL) {
        agora__error_set(err, AGORA_ENOMEM, "out of memory creating a pool");
        goto fail;
    }
    /* The verified bytes go into a sealed memfd: workers load exactly these bytes. */
    agora__pixbuf pb;
    if (agora__pixbuf_create(spec->plugin_size, &pb, err) < 0)
        goto fail;
    memcpy(pb.data, spec->plugin_bytes, spec->plugin_size);
    if (agora__pixbuf_seal(&pb, err) < 0) {
        agora__pixbuf_free(&pb);
        goto fail;
    }
    pool->plugin_fd = pb.fd;
    if (pool_take_assets(pool, spec, err) < 0)
        goto fail;
    pool->empty_out_fd = memfd_create("agora-output-empty", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (pool->empty_out_fd < 0 ||
        fcntl(pool->empty_out_fd, F_ADD_SEALS,
              F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        agora__error_set(err, AGORA__ERR(errno), "creating the empty output area: %s",
                         strerror(errno));
        goto fail;
    }
    if (uv_signal_init(loop, &pool->sigchld) < 0) {
        agora__error_set(err, AGORA_EINTERNAL, "libuv refused a signal handle");
        goto fail;
    }
    pool->sigchld.data = pool;
    pool->open_handles++;
    uv_timer_init(loop, &pool->respawn);
    pool->respawn.data = pool;
    pool->open_handles++;
    if (uv_signal_start(&pool->sigchld, on_sigchld, SIGCHLD) < 0) {
        agora__error_set(err, AGORA_EINTERNAL, "libuv refused to watch SIGCHLD");
        pool->closing = 1;
        uv_close((uv_handle_t *)&pool->sigchld, NULL);
        uv_close((uv_handle_t *)&pool->respawn, NULL);
        /* Handles close on the next loop turn; the pool struct must outlive them. Leak the
         * small struct rather than free memory libuv still references. */
        return err->code;
    }
    pool->next_job_id = 1;
    const agora__cgroup_env *cg = agora__cgroup_detect();
    agora__log(AGORA_LOG_INFO, COMPONENT, "memory cap of %s: %llu MiB enforced by %s (%s)",
               pool->plugin_id, (unsigned long long)(s->limits.memory_bytes >> 20),
               cg->usable ? "cgroup v2 and the runner's rlimits"
                          : "the runner's rlimits and seccomp",
               cg->why);
    maintain(pool);
    *out = pool;
    return 0;
fail:
    if (pool->plugin_fd >= 0)
        close(pool->plugin_fd);
    if (pool->empty_out_fd >= 0)
        close(pool->empty_out_fd);
    pool_free_assets(pool);
    free(pool->runner_path);
    free(pool->plugin_id);
    free(pool->plugin_version);
    agora__closure_free(&pool->closure);
    free(pool);
    return err ? err->code : AGORA_EINVAL;
}

void agora__pool_set_progress_cb(agora__pool *pool, agora__progress_cb cb, void *arg)
{
    pool->progress_cb = cb;
    pool->progress_arg = arg;
}

static double or_nan(const agora__frame_input *fi, int which, int k)
{
    if (fi == NULL)
        return (double)NAN;
    return which == 0 ? fi->position[k] : fi->orientation[k];
}

/* Bytes of one normalized frame of a series, from its geometry (0 for an unknown type). */
static uint64_t frame_bytes_of(const agora__job_input *in)
{
    uint64_t ss = in->pixel_type == AGORA_PIXEL_U8 || in->pixel_type == AGORA_PIXEL_I8     ? 1
                  : in->pixel_type == AGORA_PIXEL_U16 || in->pixel_type == AGORA_PIXEL_I16 ? 2
                  : in->pixel_type == AGORA_PIXEL_F64                                      ? 8
                  : in->pixel_type >= AGORA_PIXEL_U32 && in->pixel_type <= AGORA_PIXEL_F32 ? 4
                                                                                           : 0;
    return (uint64_t)in->rows * in->columns * in->samples_per_pixel * ss;
}

/* Series i of a job: 0 is the input itself, then its more_series. */
static const agora__job_input *series_at(const agora__job_input *in, uint32_t i)
{
    return i == 0 ? in : &in->more_series[i - 1];
}

static uint32_t total_frames(const agora__job_input *in)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i <= in->n_more_series; i++)
        n += series_at(in, i)->frames; /* each <= 65536, at most 16 series: no overflow */
    return n;
}

/* The ImageInfo of one series; ps holds its pixel spacing (the message points to it). */
static void image_info(Agora__Ipc__ImageInfo *im, const agora__job_input *in, double ps[2],
                       uint64_t frame_bytes)
{
    agora__ipc__image_info__init(im);
    im->rows = in->rows;
    im->columns = in->columns;
    im->frames = in->frames;
    im->samples_per_pixel = in->samples_per_pixel;
    im->pixel_type = in->pixel_type;
    im->bits_stored = in->bits_stored;
    im->photometric = in->photometric;
    ps[0] = in->pixel_spacing[0];
    ps[1] = in->pixel_spacing[1];
    im->n_pixel_spacing = 2;
    im->pixel_spacing = ps;
    im->slice_thickness = in->slice_thickness;
    im->spacing_between_slices = in->spacing_between_slices;
    im->rescale_slope = in->rescale_slope;
    im->rescale_intercept = in->rescale_intercept;
    im->rescale_type = (char *)(in->rescale_type ? in->rescale_type : "");
    im->modality = (char *)(in->modality ? in->modality : "");
    im->study_uid = (char *)(in->study_uid ? in->study_uid : "");
    im->series_uid = (char *)(in->series_uid ? in->series_uid : "");
    im->frame_bytes = frame_bytes;
}

/* Pack the Job message once at submit; the queued job carries only bytes and descriptors. A
 * study-scope job (more_series) lists the frames of all its series and one SeriesInfo each. */
static int build_job(agora__pool *pool, job *j, const agora__job_input *in, agora__error *err)
{
    uint32_t nf = total_frames(in), ns = 1 + in->n_more_series;
    Agora__Ipc__FrameInfo *fis = calloc(nf, sizeof *fis);
    Agora__Ipc__FrameInfo **fip = calloc(nf, sizeof *fip);
    double *geo = calloc((size_t)nf * 9, sizeof *geo);
    Agora__Ipc__Attribute *ats = calloc(in->n_attrs ? in->n_attrs : 1, sizeof *ats);
    Agora__Ipc__Attribute **atp = calloc(in->n_attrs ? in->n_attrs : 1, sizeof *atp);
    Agora__Ipc__ImageInfo *ims = calloc(ns, sizeof *ims);
    Agora__Ipc__SeriesInfo *sis = calloc(ns, sizeof *sis);
    Agora__Ipc__SeriesInfo **sip = calloc(ns, sizeof *sip);
    double(*ps)[2] = calloc(ns, sizeof *ps);
    int rc = 0;
    if (fis == NULL || fip == NULL || geo == NULL || ats == NULL || atp == NULL || ims == NULL ||
        sis == NULL || sip == NULL || ps == NULL) {
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory building a job");
        goto done;
    }
    uint32_t at = 0;
    for (uint32_t s = 0; s < ns; s++) {
        const agora__job_input *si = series_at(in, s);
        image_info(&ims[s], si, ps[s],
                   in->n_more_series ? frame_bytes_of(si) : in->pixels->size / nf);
        agora__ipc__series_info__init(&sis[s]);
        sis[s].image = &ims[s];
        sis[s].first_frame = at;
        sip[s] = &sis[s];
        for (uint32_t k = 0; k < si->frames; k++, at++) {
            const agora__frame_input *fi = si->frame_info ? &si->frame_info[k] : NULL;
            agora__ipc__frame_info__init(&fis[at]);
            double *g = geo + (size_t)at * 9;
            for (int q = 0; q < 3; q++)
                g[q] = or_nan(fi, 0, q);
            for (int q = 0; q < 6; q++)
                g[3 + q] = or_nan(fi, 1, q);
            fis[at].n_position = 3;
            fis[at].position = g;
            fis[at].n_orientation = 6;
            fis[at].orientation = g + 3;
            fis[at].sop_instance_uid =
                (char *)(fi && fi->sop_instance_uid ? fi->sop_instance_uid : "");
            fis[at].offset = fi ? fi->offset : (uint64_t)k * (in->pixels->size / nf);
            fis[at].rescale_slope =
                fi && fi->rescale_slope != 0.0 ? fi->rescale_slope : si->rescale_slope;
            fis[at].rescale_intercept =
                fi && fi->rescale_slope != 0.0 ? fi->rescale_intercept : si->rescale_intercept;
            fip[at] = &fis[at];
        }
    }
    for (uint32_t i = 0; i < in->n_attrs; i++) {
        agora__ipc__attribute__init(&ats[i]);
        ats[i].keyword = (char *)in->attrs[i].keyword;
        ats[i].value = (char *)(in->attrs[i].value ? in->attrs[i].value : "");
        atp[i] = &ats[i];
    }
    Agora__Ipc__Job jb = AGORA__IPC__JOB__INIT;
    jb.job_id = j->id;
    jb.image = &ims[0];
    jb.n_frames = nf;
    jb.frames = fip;
    jb.n_attributes = in->n_attrs;
    jb.attributes = atp;
    jb.pixel_bytes = in->pixels->size;
    jb.output_bytes = j->geom.output_bytes;
    jb.timeout_ms = pool->spec.timeout_ms;
    if (in->n_more_series) {
        jb.n_series = ns;
        jb.series = sip;
    }
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_JOB;
    f.job = &jb;
    rc = agora__frame_pack(&f, AGORA__FRAME_HOST_TO_RUNNER_MAX, &j->wire, &j->wire_len, err);
done:
    free(fis);
    free(fip);
    free(geo);
    free(ats);
    free(atp);
    free(ims);
    free(sis);
    free(sip);
    free(ps);
    return rc;
}

/* A string handed to a plugin: NULL (meaning ""), or bounded valid UTF-8. */
static int text_ok(const char *t, size_t max)
{
    if (t == NULL)
        return 1;
    size_t n = strnlen(t, max + 1);
    return n <= max && agora__utf8_valid(t, n);
}

static const char *check_frames(const agora__job_input *in, uint64_t fb)
{
    for (uint32_t i = 0; i < in->frames; i++) {
        if (fb > in->pixels->size || in->frame_info[i].offset > in->pixels->size - fb)
            return "a frame offset lies outside the pixel buffer";
        if (!text_ok(in->frame_info[i].sop_instance_uid, 64))
            return "a frame's SOP instance UID is too long or not UTF-8";
        if (!isfinite(in->frame_info[i].rescale_slope) ||
            !isfinite(in->frame_info[i].rescale_intercept))
            return "a frame's rescale slope or intercept is not finite";
    }
    return NULL;
}

/* A study-scope job: every series described in full, its frames inside the one buffer. */
static const char *check_study(const agora__job_input *in)
{
    if (in->n_more_series >= AGORA_STUDY_MAX_SERIES)
        return "a study-scope job has more than 16 series";
    if (total_frames(in) > 65536)
        return "a study-scope job has more than 65536 frames in all";
    for (uint32_t s = 0; s <= in->n_more_series; s++) {
        const agora__job_input *si = series_at(in, s);
        uint64_t fb = frame_bytes_of(si);
        if (si->rows == 0 || si->columns == 0 || si->frames == 0 || si->frame_info == NULL ||
            fb == 0 || (si->samples_per_pixel != 1 && si->samples_per_pixel != 3))
            return "a series of a study-scope job lacks rows, columns, frames, a known pixel "
                   "type or its frame table";
        if (!text_ok(si->rescale_type, 64) || !text_ok(si->modality, 16) ||
            !text_ok(si->study_uid, 64) || !text_ok(si->series_uid, 64))
            return "an image string (rescale type, modality, UIDs) is too long or not UTF-8";
        const agora__job_input view = {
            .frames = si->frames, .frame_info = si->frame_info, .pixels = in->pixels};
        const char *bad = check_frames(&view, fb);
        if (bad != NULL)
            return bad;
    }
    return NULL;
}

static const char *check_input(const agora__pool *pool, const agora__job_input *in)
{
    if (in->pixels == NULL || !in->pixels->sealed || in->pixels->fd < 0)
        return "the pixel buffer is missing or not sealed; call agora__pixbuf_seal first";
    if (in->rows == 0 || in->columns == 0 || in->frames == 0)
        return "the image has zero rows, columns or frames";
    if (in->frames > 65536)
        return "the image has more than 65536 frames";
    if (in->n_more_series == 0 && in->pixels->size % in->frames != 0)
        return "the pixel buffer size is not a whole number of frames";
    if (in->n_attrs > 1024)
        return "more than 1024 attributes";
    for (uint32_t i = 0; i < in->n_attrs; i++) {
        if (in->attrs[i].keyword == NULL || in->attrs[i].keyword[0] == '\0' ||
            !text_ok(in->attrs[i].keyword, 64))
            return "an attribute keyword is empty, too long or not UTF-8";
        if (!text_ok(in->attrs[i].value, 1024))
            return "an attribute value is longer than 1024 bytes or not UTF-8";
    }
    if (!text_ok(in->rescale_type, 64) || !text_ok(in->modality, 16) ||
        !text_ok(in->study_uid, 64) || !text_ok(in->series_uid, 64))
        return "an image string (rescale type, modality, UIDs) is too long or not UTF-8";
    if (in->output_bytes > pool->spec.max_output_bytes)
        return "the requested output area exceeds the pool's max_output_bytes";
    if (in->pixels->size > pool->spec.limits.job_map_bytes ||
        in->output_bytes > pool->spec.limits.job_map_bytes - in->pixels->size)
        return "the pixel buffer and output area exceed the worker's job mapping allowance "
               "(limits.job_map_bytes)";
    if (in->n_more_series > 0)
        return check_study(in);
    if (in->frame_info != NULL) {
        const char *bad = check_frames(in, in->pixels->size / in->frames);
        if (bad != NULL)
            return bad;
    }
    return NULL;
}

int agora__pool_submit(agora__pool *pool, const agora__job_input *in, agora__job_cb cb, void *arg,
                       uint64_t *job_id, agora__error *err)
{
    if (pool->closing)
        return agora__error_set(err, AGORA_ESTATE, "the pool is closing; submit to a new pool");
    if (pool->quarantined)
        return agora__error_set(err, AGORA_ESTATE, "%s; fix or remove the plugin",
                                pool->quarantine_reason);
    if (pool->queued >= pool->spec.max_queue)
        return agora__error_set(err, AGORA_ELIMIT,
                                "the queue is full (%u jobs); wait for jobs to finish",
                                pool->spec.max_queue);
    const char *bad = check_input(pool, in);
    if (bad != NULL)
        return agora__error_set(err, AGORA_EINVAL, "invalid job: %s", bad);
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory queuing a job");
    j->out_fd = -1;
    j->pix_fd = fcntl(in->pixels->fd, F_DUPFD_CLOEXEC, 3);
    if (j->pix_fd < 0) {
        free(j);
        return agora__error_set(err, AGORA__ERR(errno), "duplicating the pixel buffer: %s",
                                strerror(errno));
    }
    j->id = pool->next_job_id++;
    j->cb = cb;
    j->arg = arg;
    j->geom.rows = in->rows;
    j->geom.columns = in->columns;
    j->geom.frames = total_frames(in);
    j->geom.output_bytes = in->output_bytes;
    if (in->n_more_series > 0) {
        uint32_t first = 0;
        for (uint32_t s = 0; s <= in->n_more_series; s++) {
            const agora__job_input *si = series_at(in, s);
            j->geom.series[s].first = first;
            j->geom.series[s].frames = si->frames;
            j->geom.series[s].rows = si->rows;
            j->geom.series[s].columns = si->columns;
            first += si->frames;
        }
        j->geom.n_series = 1 + in->n_more_series;
    }
    j->geom.max_items = pool->spec.limits.max_items;
    if (build_job(pool, j, in, err) < 0) {
        job_free(j);
        return err ? err->code : AGORA_EINVAL;
    }
    if (pool->q_tail != NULL)
        pool->q_tail->next = j;
    else
        pool->q_head = j;
    pool->q_tail = j;
    pool->queued++;
    if (job_id != NULL)
        *job_id = j->id;
    dispatch(pool);
    return 0;
}

int agora__pool_cancel(agora__pool *pool, uint64_t job_id, agora__error *err)
{
    for (job **pp = &pool->q_head, *prev = NULL; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
        job *j = *pp;
        if (j->id != job_id)
            continue;
        *pp = j->next;
        if (pool->q_tail == j)
            pool->q_tail = prev;
        pool->queued--;
        job_complete(pool, j, AGORA__JOB_CANCELLED, 0, 0, "cancelled before it started", NULL, 0,
                     0);
        return 0;
    }
    for (worker *w = pool->workers; w != NULL; w = w->next) {
        job *j = w->job;
        if (j == NULL || j->id != job_id || w->state != W_BUSY)
            continue;
        if (j->cancel_requested)
            return 0;
        j->cancel_requested = 1;
        Agora__Ipc__Cancel c = AGORA__IPC__CANCEL__INIT;
        c.job_id = job_id;
        Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
        f.msg_case = AGORA__IPC__FRAME__MSG_CANCEL;
        f.cancel = &c;
        int rc;
        if (w->jc != NULL) {
            /* Fork mode: the job process reads only its own channel. */
            uint8_t *buf;
            size_t len;
            agora__error e2;
            rc = agora__frame_pack(&f, AGORA__FRAME_HOST_TO_RUNNER_MAX, &buf, &len, &e2);
            if (rc >= 0)
                rc = jchan_append(w->jc, buf, len);
        } else {
            rc = send_simple(w, &f);
        }
        if (rc < 0)
            worker_kill(w, AGORA__JOB_CANCELLED, "cancelled; the worker was killed");
        else
            arm(w, pool->spec.cancel_grace_ms);
        return 0;
    }
    return agora__error_set(err, AGORA_EINVAL, "job %llu is not queued or running",
                            (unsigned long long)job_id);
}

int agora__pool_quarantined(const agora__pool *pool, char *reason, size_t reason_size)
{
    if (reason != NULL && reason_size > 0)
        agora__strlcpy(reason, pool->quarantined ? pool->quarantine_reason : "", reason_size);
    return pool->quarantined;
}

const char *agora__pool_memory_mechanism(const agora__pool *pool, const char **detail)
{
    (void)pool; /* one host, one answer; per pool so that a future per-pool choice fits */
    const agora__cgroup_env *c = agora__cgroup_detect();
    if (detail != NULL)
        *detail = c->why;
    return agora__cgroup_mechanism(c);
}

void agora__pool_get_stats(const agora__pool *pool, agora__pool_stats *st)
{
    *st = pool->stats;
    st->queued = pool->queued;
}

static void on_pool_handle_closed(uv_handle_t *h)
{
    agora__pool *pool = h->data;
    if (--pool->open_handles > 0)
        return;
    void (*cb)(void *) = pool->closed_cb;
    void *arg = pool->closed_arg;
    if (pool->plugin_fd >= 0)
        close(pool->plugin_fd);
    if (pool->empty_out_fd >= 0)
        close(pool->empty_out_fd);
    pool_free_assets(pool);
    free(pool->runner_path);
    free(pool->plugin_id);
    free(pool->plugin_version);
    agora__closure_free(&pool->closure);
    free(pool);
    if (cb != NULL)
        cb(arg);
}

static void try_close_pool(agora__pool *pool)
{
    /* closing: 1 while workers wind down, 2 once the pool's own handles are closing. */
    if (pool->closing != 1 || pool->workers != NULL)
        return;
    pool->closing = 2;
    uv_close((uv_handle_t *)&pool->sigchld, on_pool_handle_closed);
    uv_close((uv_handle_t *)&pool->respawn, on_pool_handle_closed);
}

void agora__pool_close(agora__pool *pool, void (*closed_cb)(void *arg), void *arg)
{
    if (pool->closing)
        return;
    pool->closing = 1;
    pool->closed_cb = closed_cb;
    pool->closed_arg = arg;
    uv_timer_stop(&pool->respawn);
    fail_queue(pool, AGORA__JOB_CANCELLED, "cancelled: the pool was closed");
    for (worker *w = pool->workers; w != NULL; w = w->next) {
        if (w->state == W_BUSY && w->job != NULL)
            agora__pool_cancel(pool, w->job->id, NULL);
        else
            retire(w);
    }
    try_close_pool(pool);
}
