/* The clinic daemon (daemon.h): threads, the job life from a complete study to its delivery, and
 * shutdown. */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "queue.h"
#include "export.h"
#include "home.h"
#include "ledger.h"
#include "pipeline.h"
#include "results.h"
#include "route_rules.h"
#include "server.h"
#include "stow.h"
#include "trust.h"

#define COMPONENT        "daemon"
#define LEASE_MS         60000u /* renewed every HEARTBEAT_MS by the intake thread */
#define HEARTBEAT_MS     10000u
#define RESCUE_MS        30000u
#define RUN_RETRY_MS     30000u /* a run that could not start (sandbox, host) retries after */
#define MAX_PLUGINS      64u    /* warm pools one dispatch thread keeps */
#define MAX_OUTBOX_FILES 4096u

typedef struct daemon daemon_t;

/* One cached plugin of a dispatch thread's pipeline. */
typedef struct warm {
    agora__pipeline_trusted t;
    int index; /* in the pipeline */
} warm;

/* A dispatch thread. The running job is shared with the watchdog under d->mu. */
typedef struct worker {
    daemon_t *d;
    unsigned no;
    pthread_t thr;
    uv_loop_t loop;    /* the pipeline's loop (this thread's) */
    uv_async_t cancel; /* another thread asks to cancel the running job */
    agora__pipeline *pipe;
    warm *warm[MAX_PLUGINS];
    size_t n_warm;
    agora__job *running; /* under d->mu; owned by the worker */
    int cancel_asked;    /* under d->mu */
    /* the job being settled */
    agora__queue_settle settle;
    char settle_class[AGORA__QUEUE_CLASS_LEN + 1];
    char settle_msg[AGORA__QUEUE_ERROR_LEN + 1];
    int recorded, saw_outcome, not_run_transient, permanent;
    char why[256];
    int loop_ok;
    agora__ingest *export_ing;
    agora__trust_home *th;
    agora__queue *q;
    agora__ledger *ledger;
} worker;

struct daemon {
    const agora__daemon_config *cfg;
    char host[AGORA__QUEUE_HOST_LEN + 1]; /* lease owner */
    uint8_t uid_key[32], bill_key[32];
    agora__rules *rules;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t stop_timer;
    agora__serve_listener *dimse;
    agora__http_server *http;
    agora__stow *stow;
    agora__queue *health_q; /* the HTTP thread's */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* jobs enqueued / settled, or stopping */
    atomic_int stopping; /* no claims; threads leave their loops when idle */
    atomic_int hard;     /* grace over: running jobs are cancelled */
    int dimse_stopped;
    uint64_t stop_started_ms;
    worker *workers;
    unsigned n_workers;
    pthread_t intake_thr, sender_thr;
    int intake_started, sender_started;
};

static uint64_t now_ms(void)
{
    return agora__now_ns() / 1000000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on d->wake for at most ms (d->mu held by the caller). */
static void wait_ms(daemon_t *d, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&d->wake, &d->mu, &ts);
}

static void nap(daemon_t *d, unsigned ms)
{
    pthread_mutex_lock(&d->mu);
    if (!atomic_load(&d->stopping))
        wait_ms(d, ms);
    pthread_mutex_unlock(&d->mu);
}

static void wake_all(daemon_t *d)
{
    pthread_mutex_lock(&d->mu);
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->mu);
}

/* ---- destinations ----------------------------------------------------------------------- */

int agora__daemon_dest_init(agora__daemon_dest *out, const char *name, const char *ae,
                            const char *host, int port, const char *url, const char *calling_ae,
                            agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (strlen(name) == 0 || strlen(name) >= sizeof out->name)
        return agora__error_set(err, AGORA_EINVAL, "a destination name is 1..64 characters");
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return agora__error_set(err, AGORA_EINVAL,
                                    "destination name '%.64s': use letters, digits, '-', '_', '.'",
                                    name);
    agora__strlcpy(out->name, name, sizeof out->name);
    out->d.name = out->name;
    out->d.calling_ae = calling_ae;
    if (url != NULL) {
        if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
            strlen(url) >= sizeof out->url)
            return agora__error_set(err, AGORA_EINVAL,
                                    "destination %s: a STOW-RS destination is the DICOMweb base "
                                    "URL, http://HOST:PORT/PATH (\"/studies\" is appended)",
                                    name);
        agora__strlcpy(out->url, url, sizeof out->url);
        out->d.kind = AGORA__DEST_STOW;
        out->d.url = out->url;
        return 0;
    }
    size_t ae_len = strlen(ae);
    if (ae_len == 0 || ae_len >= sizeof out->ae || strlen(host) == 0 ||
        strlen(host) >= sizeof out->host || port < 1 || port > 65535)
        return agora__error_set(err, AGORA_EINVAL,
                                "destination %s: not AE@HOST:PORT (the PACS's AE title, 1..16 "
                                "characters, host and DICOM port, e.g. PACS@127.0.0.1:4242)",
                                name);
    for (size_t i = 0; i < ae_len; i++)
        if (ae[i] <= 0x20 || ae[i] > 0x7E || ae[i] == '\\')
            return agora__error_set(err, AGORA_EINVAL,
                                    "destination %s: the AE title must be printable ASCII "
                                    "without spaces or backslashes",
                                    name);
    agora__strlcpy(out->ae, ae, sizeof out->ae);
    agora__strlcpy(out->host, host, sizeof out->host);
    out->d.kind = AGORA__DEST_DIMSE;
    out->d.ae_title = out->ae;
    out->d.host = out->host;
    out->d.port = port;
    return 0;
}

static const agora__daemon_dest *dest_find(const agora__daemon_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_dests; i++)
        if (strcmp(cfg->dests[i].name, name) == 0)
            return &cfg->dests[i];
    return NULL;
}

/* The spool file of a SOP instance (spool.h's layout: in/HH/<sha256 hex>.dcm). */
static int spool_file(const char *home, const char *sop, char *out, size_t size, agora__error *err)
{
    uint8_t h[32];
    char hex[65];
    agora__sha256(sop, strlen(sop), h);
    agora__hex(h, sizeof h, hex);
    char dir[4096];
    if (agora__home_path(home, AGORA__HOME_SPOOL, dir, sizeof dir, err) != 0)
        return err->code;
    int n = snprintf(out, size, "%s/in/%.2s/%s.dcm", dir, hex, hex);
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT, "spool path too long");
    return 0;
}

static int outbox_dir(const char *home, int64_t job, char *out, size_t size, agora__error *err)
{
    char dir[4096];
    if (agora__home_path(home, AGORA__HOME_OUTBOX, dir, sizeof dir, err) != 0)
        return err->code;
    int n = snprintf(out, size, "%s/%lld", dir, (long long)job);
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT, "outbox path too long");
    return 0;
}

/* ---- the dispatch threads -------------------------------------------------------------- */

static void on_cancel_async(uv_async_t *a)
{
    worker *w = a->data;
    if (w->pipe != NULL)
        agora__pipeline_cancel(w->pipe);
}

/* Ask worker w to cancel its running job (any thread). */
static void worker_cancel(worker *w)
{
    pthread_mutex_lock(&w->d->mu);
    if (w->running != NULL) {
        w->cancel_asked = 1;
        uv_async_send(&w->cancel);
    }
    pthread_mutex_unlock(&w->d->mu);
}

static void written_file(void *arg, const char *path)
{
    (void)path;
    (*(size_t *)arg)++;
}

/* Export the SR/SEG of the job's stored result into its outbox. */
static int export_outbox(worker *w, const agora__job *job, const char *inv, agora__error *err)
{
    const char *home = w->d->cfg->home;
    char dir[4096];
    int rc = outbox_dir(home, job->id, dir, sizeof dir, err);
    if (rc == 0)
        rc = agora__mkdirs(dir, 0700, err);
    if (rc != 0)
        return rc;
    if (w->export_ing == NULL) {
        agora__ingest_options iopt;
        agora__ingest_options_default(&iopt);
        rc = agora__ingest_open(&iopt, &w->export_ing, err);
        if (rc != 0)
            return agora__error_prefix(err, "cannot start the sandboxed DICOM reader");
    }
    json_t *result = NULL;
    rc = agora__results_load(home, job->study_uid, inv, &result, err);
    if (rc != 0)
        return rc;
    /* The sources: the job's spool files (the real study as received). */
    const char **paths = calloc(job->n_sop, sizeof *paths);
    char *buf = calloc(job->n_sop, 4096);
    if (paths == NULL || buf == NULL) {
        free(paths);
        free(buf);
        json_decref(result);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < job->n_sop && rc == 0; i++) {
        rc = spool_file(home, job->sop_uids[i], buf + i * 4096, 4096, err);
        paths[i] = buf + i * 4096;
    }
    size_t n_written = 0;
    if (rc == 0) {
        const agora__export_result_opts eo = {.want_sr = 1,
                                              .want_seg = 1,
                                              .sources = paths,
                                              .n_sources = job->n_sop,
                                              .view_key = w->d->uid_key};
        rc = agora__export_result(w->export_ing, home, job->study_uid, result, &eo, dir,
                                  written_file, &n_written, err);
    }
    free(paths);
    free(buf);
    json_decref(result);
    return rc;
}

static void set_settle(worker *w, agora__job_state next, const char *cls, const char *msg)
{
    w->settle.next = next;
    agora__strlcpy(w->settle_class, cls ? cls : "", sizeof w->settle_class);
    agora__strlcpy(w->settle_msg, msg ? msg : "", sizeof w->settle_msg);
    w->settle.error_class = next == AGORA__QJOB_FAILED ? w->settle_class : NULL;
    w->settle.error_msg = next == AGORA__QJOB_FAILED ? w->settle_msg : NULL;
}

/* The pipeline's before_record: this outcome ends the run phase unless we are stopping. */
static int job_before_record(void *arg, const agora__pipeline_outcome *o)
{
    worker *w = arg;
    const agora__job *job = w->running;
    w->saw_outcome = 1;
    pthread_mutex_lock(&w->d->mu);
    int cancel = w->cancel_asked;
    pthread_mutex_unlock(&w->d->mu);
    if (cancel || strcmp(o->status, "cancelled") == 0)
        return 0; /* no row: the job goes back (SIGTERM) or was cancelled already */
    if (o->validated) {
        agora__error err = {0};
        if (export_outbox(w, job, o->invocation_id, &err) != 0) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "job %lld: export failed: %s",
                       (long long)job->id, err.msg);
            set_settle(w, AGORA__QJOB_FAILED, "export-failed", err.msg);
        } else {
            set_settle(w, job->send_to[0] ? AGORA__QJOB_SENDING : AGORA__QJOB_DONE, NULL, NULL);
        }
    } else {
        /* The app's job ended badly or its result was refused: recorded (not billed) and
         * failed; `agora queue retry` runs it again. The plugin's own text is not stored. */
        char msg[128];
        snprintf(msg, sizeof msg, "the app's run ended %s", o->status);
        set_settle(w, AGORA__QJOB_FAILED, o->status, msg);
    }
    return 1;
}

static int job_in_txn(void *arg, struct sqlite3 *db, agora__error *err)
{
    worker *w = arg;
    int rc = agora__queue_settle_cb(&w->settle, db, err);
    if (rc == 0)
        w->recorded = 1;
    return rc;
}

static void job_outcome(void *arg, const agora__pipeline_outcome *o)
{
    worker *w = arg;
    w->saw_outcome = 1;
    if (o->end == AGORA__PIPELINE_NOT_RUN) {
        w->not_run_transient = 1;
        agora__strlcpy(w->why, o->error, sizeof w->why);
    } else if (o->end == AGORA__PIPELINE_SERIES_FAILED) {
        w->permanent = 1;
        agora__strlcpy(w->why, o->error, sizeof w->why);
    } else if (o->end == AGORA__PIPELINE_REFUSED) {
        w->permanent = 1;
        snprintf(w->why, sizeof w->why, "refused: %s", o->error);
    } else if (o->ledger_failed) {
        w->not_run_transient = 1;
        snprintf(w->why, sizeof w->why, "cannot record in the ledger: %s", o->ledger_error);
    }
}

static int job_admit(void *arg, const agora__pipeline_plugin *pl, agora__error *err)
{
    worker *w = arg;
    return agora__trust_allowed(w->th, pl->id, pl->version, err);
}

/* The warm pool of job's plugin, loading and starting it on first use. */
static int warm_plugin(worker *w, const agora__job *job, int *index, agora__error *err)
{
    for (size_t i = 0; i < w->n_warm; i++)
        if (strcmp(w->warm[i]->t.lp.info.id, job->plugin_id) == 0 &&
            strcmp(w->warm[i]->t.lp.info.version, job->plugin_version) == 0) {
            *index = w->warm[i]->index;
            return 0;
        }
    if (w->n_warm == MAX_PLUGINS)
        return agora__error_set(err, AGORA_ELIMIT, "more than %u apps on one dispatch thread",
                                MAX_PLUGINS);
    warm *wp = calloc(1, sizeof *wp);
    if (wp == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    int rc = agora__trust_load(w->th, job->plugin_id, &wp->t.lp, err);
    if (rc != 0) {
        free(wp);
        return rc;
    }
    if (strcmp(wp->t.lp.info.version, job->plugin_version) != 0) {
        agora__trust_loaded_free(&wp->t.lp);
        free(wp);
        return agora__error_set(err, AGORA_ESTATE,
                                "the job is for %s@%s but %s is installed; install that "
                                "version or cancel the job",
                                job->plugin_id, job->plugin_version, job->plugin_version);
    }
    agora__pipeline_plugin pl;
    rc = agora__pipeline_trusted_describe(&wp->t, w->d->cfg->timeout_s, 0, &pl, err);
    if (rc == 0) {
        pl.user = wp;
        rc = agora__pipeline_add_plugin(w->pipe, &pl, err);
    }
    if (rc < 0) {
        agora__trust_loaded_free(&wp->t.lp);
        free(wp);
        return rc;
    }
    wp->index = rc;
    w->warm[w->n_warm++] = wp;
    *index = wp->index;
    return 0;
}

/* Run one claimed job to its settlement (or leave it leased for the requeue at shutdown). */
static void run_job(worker *w, agora__job *job)
{
    daemon_t *d = w->d;
    agora__error err = {0};
    w->recorded = w->saw_outcome = w->not_run_transient = w->permanent = 0;
    w->why[0] = 0;
    w->settle = (agora__queue_settle){.job_id = job->id, .lease_token = job->lease_token};
    agora__log(AGORA_LOG_INFO, COMPONENT,
               "job %lld: running %s@%s study=%s scope=%s instances=%zu attempt=%u worker=%u",
               (long long)job->id, job->plugin_id, job->plugin_version, job->study_hash, job->scope,
               job->n_sop, job->attempts, w->no);
    int index = -1;
    int rc = warm_plugin(w, job, &index, &err);
    if (rc != 0) {
        int transient = rc == AGORA_ENOMEM;
        agora__log(AGORA_LOG_WARN, COMPONENT, "job %lld: not run: %s", (long long)job->id, err.msg);
        agora__error e2 = {0};
        if (agora__queue_run_failed(w->q, job, !transient,
                                    transient ? "host-error" : "not-runnable", err.msg,
                                    RUN_RETRY_MS, &e2) != 0)
            agora__log(AGORA_LOG_ERROR, COMPONENT, "job %lld: %s", (long long)job->id, e2.msg);
        return;
    }
    /* The job's instances in the spool, scanned by the pipeline's sandboxed reader. */
    char **paths = calloc(job->n_sop, sizeof *paths);
    for (size_t i = 0; paths != NULL && i < job->n_sop && rc == 0; i++) {
        paths[i] = malloc(4096);
        rc = paths[i] == NULL ? agora__error_set(&err, AGORA_ENOMEM, "out of memory")
                              : spool_file(d->cfg->home, job->sop_uids[i], paths[i], 4096, &err);
    }
    if (paths == NULL)
        rc = agora__error_set(&err, AGORA_ENOMEM, "out of memory");
    if (rc == 0)
        rc = agora__pipeline_scan(w->pipe, (const char *const *)paths, job->n_sop, &err);
    int permanent_input = 0;
    if (rc == 0) {
        const agora__pipeline_job pj = {.plugin_index = (size_t)index,
                                        .invocation_id = job->invocation_id,
                                        .before_record = job_before_record,
                                        .in_txn = job_in_txn,
                                        .arg = w};
        rc = agora__pipeline_dispatch_job(w->pipe, &pj, &err);
        permanent_input = rc == AGORA_EINVAL; /* the files do not make one job of this app */
    }
    for (size_t i = 0; paths != NULL && i < job->n_sop; i++)
        free(paths[i]);
    free(paths);
    pthread_mutex_lock(&d->mu);
    int cancelled = w->cancel_asked;
    pthread_mutex_unlock(&d->mu);
    agora__error e2 = {0};
    if (w->recorded) {
        agora__log(AGORA_LOG_INFO, COMPONENT, "job %lld: %s%s%s", (long long)job->id,
                   agora__job_state_name(w->settle.next), w->settle_class[0] ? " class=" : "",
                   w->settle_class);
    } else if (cancelled) {
        /* Shutdown (requeued by requeue_mine) or cancelled by the operator/revocation. */
        agora__log(AGORA_LOG_INFO, COMPONENT, "job %lld: cancelled in its pool",
                   (long long)job->id);
    } else if (rc != 0 || w->permanent || w->not_run_transient || !w->saw_outcome) {
        int permanent = permanent_input || w->permanent;
        const char *why = rc != 0 ? err.msg : w->why[0] ? w->why : "no outcome";
        agora__log(AGORA_LOG_WARN, COMPONENT, "job %lld: not run (%s): %s", (long long)job->id,
                   permanent ? "permanent" : "will retry", why);
        if (agora__queue_run_failed(w->q, job, permanent, permanent ? "input-error" : "host-error",
                                    why, RUN_RETRY_MS, &e2) != 0)
            agora__log(AGORA_LOG_WARN, COMPONENT, "job %lld: %s", (long long)job->id, e2.msg);
    } else {
        agora__log(AGORA_LOG_WARN, COMPONENT, "job %lld: not settled (the ledger refused it)",
                   (long long)job->id);
    }
    if (w->recorded)
        wake_all(d); /* the sender */
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    daemon_t *d = w->d;
    agora__error err = {0};
    while (!atomic_load(&d->stopping)) {
        agora__job *job = NULL;
        if (agora__queue_claim(w->q, AGORA__QJOB_WAITING, d->host, LEASE_MS, &job, &err) != 0) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "worker %u: claim: %s", w->no, err.msg);
            nap(d, 1000);
            continue;
        }
        if (job == NULL) {
            nap(d, 1000);
            continue;
        }
        pthread_mutex_lock(&d->mu);
        w->running = job;
        w->cancel_asked = atomic_load(&d->hard);
        pthread_mutex_unlock(&d->mu);
        run_job(w, job);
        pthread_mutex_lock(&d->mu);
        w->running = NULL;
        w->cancel_asked = 0;
        pthread_cond_broadcast(&d->wake);
        pthread_mutex_unlock(&d->mu);
        agora__job_free(job);
    }
    return NULL;
}

static int worker_open(daemon_t *d, worker *w, agora__error *err)
{
    int rc = uv_loop_init(&w->loop);
    if (rc != 0)
        return agora__error_set(err, AGORA_EINTERNAL, "uv_loop_init: %s", uv_strerror(rc));
    w->loop_ok = 1;
    uv_async_init(&w->loop, &w->cancel, on_cancel_async);
    w->cancel.data = w;
    uv_unref((uv_handle_t *)&w->cancel); /* the pipeline runs the loop until its job is done */
    rc = agora__trust_home_open(d->cfg->home, &w->th, err);
    if (rc == 0)
        rc = agora__queue_open(d->cfg->home, &w->q, err);
    if (rc == 0)
        rc = agora__ledger_open(d->cfg->home, d->bill_key, &w->ledger, err);
    if (rc != 0)
        return rc;
    agora__pipeline_config pc = {
        .deid_flags = d->cfg->deid_flags,
        .store_home = d->cfg->home,
        .ledger = w->ledger,
        .cb = {.admit = job_admit, .on_outcome = job_outcome, .arg = w},
    };
    memcpy(pc.uid_key, d->uid_key, sizeof pc.uid_key);
    rc = agora__pipeline_new(&w->loop, &pc, &w->pipe, err);
    sodium_memzero(pc.uid_key, sizeof pc.uid_key);
    return rc;
}

static void on_closed_nothing(uv_handle_t *h)
{
    (void)h;
}

static void worker_close(worker *w)
{
    agora__pipeline_free(w->pipe); /* pools first: they run the bytes warm[] holds */
    w->pipe = NULL;
    for (size_t i = 0; i < w->n_warm; i++) {
        agora__trust_loaded_free(&w->warm[i]->t.lp);
        free(w->warm[i]);
    }
    w->n_warm = 0;
    if (w->loop_ok) {
        uv_close((uv_handle_t *)&w->cancel, on_closed_nothing);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    agora__ingest_close(w->export_ing);
    agora__ledger_close(w->ledger);
    agora__queue_close(w->q);
    agora__trust_home_close(w->th);
}

/* ---- the sender thread ----------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The outbox files of a job, sorted. *paths malloc'ed (each string too). */
static int outbox_files(const char *home, int64_t job, char ***paths, size_t *n, agora__error *err)
{
    char dir[4096];
    *paths = NULL;
    *n = 0;
    int rc = outbox_dir(home, job, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return agora__error_set(err, AGORA__ERR(errno), "the job's outbox is missing: %s",
                                strerror(errno));
    char **v = NULL;
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL && k < MAX_OUTBOX_FILES) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".dcm") != 0)
            continue;
        char **g = realloc(v, (k + 1) * sizeof *v);
        if (g == NULL)
            break;
        v = g;
        size_t sz = strlen(dir) + len + 2;
        v[k] = malloc(sz);
        if (v[k] == NULL)
            break;
        snprintf(v[k], sz, "%s/%s", dir, e->d_name);
        k++;
    }
    closedir(dh);
    qsort(v, k, sizeof *v, cmp_str);
    *paths = v;
    *n = k;
    return 0;
}

static void send_job(daemon_t *d, agora__queue *q, agora__job *job)
{
    agora__error err = {0};
    const char *name = job->send_to;
    const agora__daemon_dest *dest = dest_find(d->cfg, name);
    agora__send_kind kind;
    const char *cls = NULL;
    char msg[300] = "";
    uint64_t backoff = 0;
    char **paths = NULL;
    size_t n = 0;
    if (dest == NULL) {
        kind = AGORA__SEND_PERMANENT;
        cls = "configuration-error";
        snprintf(msg, sizeof msg,
                 "no destination named %.64s is configured (--send-to, --send-stow or "
                 "--dest NAME=...); fix the configuration, then agora queue retry",
                 name);
    } else if (outbox_files(d->cfg->home, job->id, &paths, &n, &err) != 0 || n == 0) {
        kind = AGORA__SEND_PERMANENT;
        cls = "outbox-missing";
        snprintf(msg, sizeof msg, "%s",
                 n == 0 && err.msg[0] == 0 ? "the job's outbox is empty" : err.msg);
    } else {
        agora__deliver_outcome out = {0};
        agora__deliver_files(&dest->d, (const char *const *)paths, n, &out, &err);
        cls = out.error_class;
        snprintf(msg, sizeof msg, "%s", out.msg);
        kind = out.cls == AGORA__DELIVER_OK          ? AGORA__SEND_DELIVERED
               : out.cls == AGORA__DELIVER_TRANSIENT ? AGORA__SEND_TRANSIENT
                                                     : AGORA__SEND_PERMANENT;
        backoff = agora__deliver_backoff_ms(job->attempts ? job->attempts : 1);
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    agora__error e2 = {0};
    if (agora__queue_send_result(q, job, kind, kind == AGORA__SEND_DELIVERED ? NULL : cls, msg,
                                 backoff, &e2) != 0)
        agora__log(AGORA_LOG_WARN, COMPONENT, "job %lld: %s", (long long)job->id, e2.msg);
    agora__log(kind == AGORA__SEND_DELIVERED ? AGORA_LOG_INFO : AGORA_LOG_WARN, COMPONENT,
               "job %lld: %s to %s files=%zu%s%s%s", (long long)job->id,
               kind == AGORA__SEND_DELIVERED   ? "delivered"
               : kind == AGORA__SEND_TRANSIENT ? "not delivered, will retry"
                                               : "not delivered, failed",
               name, n, cls && kind != AGORA__SEND_DELIVERED ? " class=" : "",
               kind != AGORA__SEND_DELIVERED && cls ? cls : "",
               kind != AGORA__SEND_DELIVERED ? "" : "");
}

static void *sender_main(void *arg)
{
    daemon_t *d = arg;
    agora__queue *q = NULL;
    agora__error err = {0};
    if (agora__queue_open(d->cfg->home, &q, &err) != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "sender: %s", err.msg);
        return NULL;
    }
    while (!atomic_load(&d->stopping)) {
        agora__job *job = NULL;
        if (agora__queue_claim(q, AGORA__QJOB_SENDING, d->host, LEASE_MS, &job, &err) != 0) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "sender: claim: %s", err.msg);
            nap(d, 1000);
            continue;
        }
        if (job == NULL) {
            nap(d, 1000);
            continue;
        }
        send_job(d, q, job);
        agora__job_free(job);
    }
    agora__queue_close(q);
    return NULL;
}

/* ---- the intake thread: completion -> rules -> enqueue; leases; catalog sync ------------- */

typedef struct intake_ctx {
    daemon_t *d;
    agora__queue *q;
    agora__trust_home *th;
    agora__trust_plugin *apps; /* listed at the first complete study of a poll */
    size_t n_apps;
    int listed;
    size_t enqueued;
} intake_ctx;

static const agora__trust_plugin *app_find(const intake_ctx *c, const char *id)
{
    for (size_t i = 0; i < c->n_apps; i++)
        if (strcmp(c->apps[i].id, id) == 0)
            return &c->apps[i];
    return NULL;
}

/* The destination name a job gets from a match: its first ("default" only if configured). */
static const char *job_dest(const daemon_t *d, const agora__rule_match *m)
{
    if (m->n_send_to == 0)
        return "";
    if (m->n_send_to > 1)
        agora__log(AGORA_LOG_WARN, COMPONENT,
                   "rule %s names %zu destinations; this daemon sends to the first only",
                   m->rule_id, m->n_send_to);
    const char *n = m->send_to[0];
    if (strcmp(n, AGORA__RULES_DEST_DEFAULT) == 0 && dest_find(d->cfg, n) == NULL)
        return ""; /* no --send-to: results stay in the home */
    return n;
}

/* Does app's manifest take series se (its modality)? A study job's instance set is the series
 * the app takes, so objects that arrive later for the study which it would not read (our own
 * SR/SEG sent back with the study) do not make a new job. */
static int app_takes(const agora__trust_plugin *app, const agora__intake_series *se)
{
    const agora__manifest *m = &app->manifest;
    if (m->any_modality)
        return 1;
    for (uint32_t i = 0; i < m->n_modalities; i++)
        if (strcmp(m->modalities[i], se->attrs.modality) == 0)
            return 1;
    return 0;
}

static int enqueue_one(intake_ctx *c, const agora__intake_study *st, const agora__rule_match *m,
                       const char *scope, const agora__intake_series *only,
                       const agora__trust_plugin *app)
{
    agora__error err = {0};
    size_t n_sop = only ? only->n : st->n_instances;
    size_t n_series = only ? 1 : st->n_series;
    const char **sops = calloc(n_sop ? n_sop : 1, sizeof *sops);
    const char **series = calloc(n_series, sizeof *series);
    if (sops == NULL || series == NULL) {
        free(sops);
        free(series);
        return -1;
    }
    size_t k = 0, ns = 0;
    for (size_t s = 0; s < st->n_series; s++) {
        const agora__intake_series *se = &st->series[s];
        if ((only != NULL && se != only) || (only == NULL && app != NULL && !app_takes(app, se)))
            continue;
        for (size_t i = 0; i < se->n && k < n_sop; i++)
            sops[k++] = se->sop_uids[i];
        series[ns++] = se->series_uid;
    }
    if (k == 0) {
        free(sops);
        free(series);
        return 0; /* nothing of the study this app reads */
    }
    agora__job_spec spec = {
        .plugin_id = m->plugin_id,
        .plugin_version = m->plugin_version,
        .study_uid = st->study_uid,
        .sop_uids = sops,
        .n_sop = k,
        .scope = scope,
        .series_uids = series,
        .n_series = ns,
        .priority = m->priority,
        .send_to = job_dest(c->d, m),
        .rule_id = strcmp(m->rule_id, AGORA__RULES_ID_DEFAULT) == 0 ? "" : m->rule_id,
    };
    int64_t id = 0;
    int dup = 0;
    int rc = agora__queue_enqueue(c->q, &spec, &id, &dup, &err);
    free(sops);
    free(series);
    if (rc != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "study %s: cannot enqueue %s: %s", st->key,
                   m->plugin_id, err.msg);
        return rc;
    }
    agora__log(AGORA_LOG_INFO, COMPONENT, "study %s: job %lld %s@%s scope=%s priority=%s%s%s%s",
               st->key, (long long)id, m->plugin_id, m->plugin_version, scope,
               agora__rules_priority_name(m->priority), spec.send_to[0] ? " send_to=" : "",
               spec.send_to, dup ? " (duplicate: nothing new)" : "");
    c->enqueued += !dup;
    return 0;
}

static int on_study(void *arg, const agora__intake_study *st)
{
    intake_ctx *c = arg;
    daemon_t *d = c->d;
    agora__error err = {0};
    if (!c->listed) {
        free(c->apps);
        c->apps = NULL;
        c->n_apps = 0;
        if (agora__trust_list(c->th, &c->apps, &c->n_apps, &err) != 0) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "cannot list the installed apps: %s", err.msg);
            return -1;
        }
        c->listed = 1;
    }
    agora__log(AGORA_LOG_INFO, COMPONENT,
               "study %s complete (%s) generation=%u series=%zu instances=%zu", st->key, st->reason,
               st->generation, st->n_series, st->n_instances);
    /* Study-scope jobs of this study, by plugin: one per plugin whatever its series. */
    const char *study_done[256];
    size_t n_study_done = 0;
    int rc = 0;
    for (size_t s = 0; s < st->n_series && rc == 0; s++) {
        agora__route_plan plan;
        if (agora__rules_eval(d->rules, c->apps, c->n_apps, &st->series[s].attrs, &plan, NULL, NULL,
                              &err) != 0) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "study %s: routing: %s", st->key, err.msg);
            return -1;
        }
        char desc[160];
        agora__route_plan_describe(&plan, desc, sizeof desc);
        agora__log(AGORA_LOG_INFO, COMPONENT, "study %s series %zu: %s", st->key, s + 1, desc);
        for (size_t m = 0; m < plan.n_matches && rc == 0; m++) {
            const agora__rule_match *mt = &plan.matches[m];
            const agora__trust_plugin *app = app_find(c, mt->plugin_id);
            /* The pipeline runs a series-scope app per series: a rule's "study" scope for it
             * gives its jobs per series; a study-scope app (manifest) runs once per study. */
            int study = app != NULL && app->manifest_ok && app->manifest.study_scope;
            if (!study) {
                rc = enqueue_one(c, st, mt, "series", &st->series[s], app);
                continue;
            }
            int seen = 0;
            for (size_t k = 0; k < n_study_done; k++)
                seen |= strcmp(study_done[k], mt->plugin_id) == 0;
            if (seen)
                continue;
            if (n_study_done < sizeof study_done / sizeof study_done[0])
                study_done[n_study_done++] = app->id;
            rc = enqueue_one(c, st, mt, "study", NULL, app);
        }
        agora__route_plan_free(&plan);
    }
    return rc;
}

/* Catalog sync from the directory of the last sync; revoked builds stop. */
static void sync_catalog(daemon_t *d, intake_ctx *c)
{
    agora__error err = {0};
    char src[4096];
    struct stat sb;
    if (agora__home_path(d->cfg->home, AGORA__HOME_CATALOG_SRC, src, sizeof src, &err) == 0 &&
        stat(src, &sb) == 0) {
        /* catalog/source holds the path of the directory of the last sync (agora sync). */
        char target[4096];
        const char *dir = NULL;
        uint8_t *text = NULL;
        size_t len = 0;
        if (agora__read_file(src, sizeof target - 1, &text, &len, &err) == 0) {
            while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = 0;
            agora__strlcpy(target, (const char *)text, sizeof target);
            dir = target;
        }
        free(text);
        agora__catalog old = {0};
        agora__error e2 = {0};
        if (dir != NULL && agora__home_sync(c->th, dir, &old, &e2) == 0)
            agora__log(AGORA_LOG_INFO, COMPONENT, "catalog synced (version %llu held before)",
                       (unsigned long long)old.version);
        else if (dir != NULL)
            agora__log(AGORA_LOG_DEBUG, COMPONENT, "catalog sync: %s", e2.msg);
        agora__catalog_free(&old);
    }
    agora__trust_plugin *apps = NULL;
    size_t n_apps = 0;
    if (agora__trust_list(c->th, &apps, &n_apps, &err) != 0) {
        agora__log(AGORA_LOG_WARN, COMPONENT, "catalog check: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n_apps; i++) {
        if (apps[i].status != AGORA__TRUST_REVOKED)
            continue;
        char reason[300];
        snprintf(reason, sizeof reason, "revoked by the catalog: %s",
                 apps[i].revoked_reason[0] ? apps[i].revoked_reason : "no reason given");
        for (char *p = reason; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                *p = '?';
        size_t n = 0;
        if (agora__queue_cancel_plugin(c->q, apps[i].id, apps[i].version, reason, &n, &err) != 0)
            agora__log(AGORA_LOG_WARN, COMPONENT, "cancel %s: %s", apps[i].id, err.msg);
        else if (n > 0)
            agora__log(AGORA_LOG_WARN, COMPONENT, "%s@%s revoked: %zu job(s) cancelled", apps[i].id,
                       apps[i].version, n);
        for (unsigned w = 0; w < d->n_workers; w++) {
            worker *wk = &d->workers[w];
            pthread_mutex_lock(&d->mu);
            int hit = wk->running != NULL && strcmp(wk->running->plugin_id, apps[i].id) == 0 &&
                      strcmp(wk->running->plugin_version, apps[i].version) == 0;
            pthread_mutex_unlock(&d->mu);
            if (hit)
                worker_cancel(wk);
        }
    }
    free(apps);
}

/* Renew the leases of running jobs; a cancelled one is cancelled in its pool. */
static void heartbeat(daemon_t *d, agora__queue *q)
{
    for (unsigned i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        agora__job copy;
        int have = 0;
        pthread_mutex_lock(&d->mu);
        if (w->running != NULL) {
            copy = *w->running;
            copy.series_uids = copy.sop_uids = NULL;
            have = 1;
        }
        pthread_mutex_unlock(&d->mu);
        if (!have)
            continue;
        agora__error err = {0};
        int rc = agora__queue_heartbeat(q, &copy, LEASE_MS, &err);
        if (rc == AGORA_ECANCELLED || rc == AGORA_ESTATE) {
            agora__log(AGORA_LOG_WARN, COMPONENT, "job %lld: %s; cancelling its run",
                       (long long)copy.id, rc == AGORA_ECANCELLED ? "cancelled" : "lease lost");
            worker_cancel(w);
        }
    }
}

static void intake_log(void *arg, int level, const char *msg)
{
    (void)arg;
    agora__log(level == 0   ? AGORA_LOG_INFO
               : level == 1 ? AGORA_LOG_WARN
                            : AGORA_LOG_ERROR,
               "intake", "%s", msg);
}

static void *intake_main(void *arg)
{
    daemon_t *d = arg;
    agora__error err = {0};
    intake_ctx c = {.d = d};
    agora__intake *in = NULL;
    agora__intake_config icfg = d->cfg->intake;
    icfg.log = intake_log;
    if (agora__intake_open(d->cfg->home, &icfg, &in, &err) != 0 ||
        agora__queue_open(d->cfg->home, &c.q, &err) != 0 ||
        agora__trust_home_open(d->cfg->home, &c.th, &err) != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "intake: %s", err.msg);
        agora__intake_close(in);
        agora__queue_close(c.q);
        agora__trust_home_close(c.th);
        return NULL;
    }
    uint64_t next_beat = 0, next_rescue = 0, next_sync = 0;
    while (!atomic_load(&d->stopping)) {
        uint64_t t = now_ms();
        c.listed = 0;
        c.enqueued = 0;
        agora__intake_poll_stats st = {0};
        if (agora__intake_poll(in, wall_ms(), on_study, &c, &st, &err) != 0)
            agora__log(AGORA_LOG_ERROR, COMPONENT, "intake poll: %s", err.msg);
        if (c.enqueued > 0)
            wake_all(d);
        if (t >= next_beat) {
            heartbeat(d, c.q);
            next_beat = t + HEARTBEAT_MS;
        }
        if (t >= next_rescue) {
            size_t n = 0;
            if (agora__queue_rescue(c.q, &n, &err) == 0 && n > 0)
                agora__log(AGORA_LOG_WARN, COMPONENT, "%zu expired lease(s) returned", n);
            next_rescue = t + RESCUE_MS;
        }
        if (d->cfg->sync_interval_s > 0 && t >= next_sync) {
            if (next_sync != 0)
                sync_catalog(d, &c);
            next_sync = t + (uint64_t)d->cfg->sync_interval_s * 1000u;
        }
        nap(d, st.backlog > 0 ? 50 : 1000);
    }
    free(c.apps);
    agora__intake_close(in);
    agora__queue_close(c.q);
    agora__trust_home_close(c.th);
    return NULL;
}

/* ---- health (HTTP thread) --------------------------------------------------------------- */

static int health(void *arg, json_t *root)
{
    daemon_t *d = arg;
    agora__error err = {0};
    if (d->health_q == NULL && agora__queue_open(d->cfg->home, &d->health_q, &err) != 0)
        return -1;
    uint64_t counts[AGORA__QJOB_STATE_COUNT] = {0};
    if (agora__queue_counts(d->health_q, counts, &err) != 0)
        return -1;
    json_t *q = json_object();
    for (int s = 0; s < AGORA__QJOB_STATE_COUNT; s++)
        json_object_set_new(q, agora__job_state_name((agora__job_state)s),
                            json_integer((json_int_t)counts[s]));
    json_object_set_new(root, "queue", q);
    json_object_set_new(root, "status", json_string(atomic_load(&d->stopping) ? "stopping" : "ok"));
    json_object_set_new(root, "workers", json_integer((json_int_t)d->n_workers));
    json_object_set_new(root, "dicom", json_boolean(d->cfg->dicom_on));
    return 0;
}

/* ---- the loop thread: signals and shutdown ---------------------------------------------- */

static unsigned busy_workers(daemon_t *d)
{
    unsigned n = 0;
    pthread_mutex_lock(&d->mu);
    for (unsigned i = 0; i < d->n_workers; i++)
        n += d->workers[i].running != NULL;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static void on_dimse_stopped(void *arg)
{
    daemon_t *d = arg;
    d->dimse_stopped = 1;
}

static void on_stop_tick(uv_timer_t *t)
{
    daemon_t *d = t->data;
    unsigned busy = busy_workers(d);
    if (!atomic_load(&d->hard) && busy > 0 && now_ms() - d->stop_started_ms >= d->cfg->grace_ms) {
        agora__log(AGORA_LOG_WARN, COMPONENT,
                   "shutdown grace over: cancelling %u running job(s); they go back to the queue",
                   busy);
        atomic_store(&d->hard, 1);
        for (unsigned i = 0; i < d->n_workers; i++)
            worker_cancel(&d->workers[i]);
    }
    if (busy == 0 && d->dimse_stopped) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, on_closed_nothing);
        uv_close((uv_handle_t *)&d->sigterm, on_closed_nothing);
        uv_close((uv_handle_t *)&d->sigint, on_closed_nothing);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_t *d = h->data;
    if (atomic_load(&d->stopping))
        return;
    agora__log(AGORA_LOG_INFO, COMPONENT,
               "signal %d: stopping (no new work; running jobs get %u ms)", signum,
               d->cfg->grace_ms);
    atomic_store(&d->stopping, 1);
    d->stop_started_ms = now_ms();
    wake_all(d);
    if (d->http != NULL)
        agora__http_stop(d->http);
    if (d->dimse != NULL)
        agora__serve_stop(d->dimse, on_dimse_stopped, d);
    else
        d->dimse_stopped = 1;
    uv_timer_start(&d->stop_timer, on_stop_tick, 100, 100);
}

/* ---- start, check, run ------------------------------------------------------------------ */

static void lease_host(char out[AGORA__QUEUE_HOST_LEN + 1])
{
    char h[256] = "";
    if (gethostname(h, sizeof h - 1) != 0 || h[0] == 0)
        snprintf(h, sizeof h, "localhost");
    size_t k = 0;
    for (const char *p = h; *p && k < AGORA__QUEUE_HOST_LEN; p++)
        out[k++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_')
                       ? *p
                       : '-';
    out[k] = 0;
}

static int derive_keys(daemon_t *d, agora__error *err)
{
    agora__trust_home *th = NULL;
    int rc = agora__trust_home_open(d->cfg->home, &th, err);
    if (rc == 0 && (agora__trust_derive_key(th, AGORA__KEY_UID, d->uid_key) != 0 ||
                    agora__trust_derive_key(th, AGORA__KEY_BILLING, d->bill_key) != 0))
        rc = agora__error_set(err, AGORA_EINVAL,
                              "cannot derive the clinic's keys (the home has no secret; run "
                              "agora init)");
    agora__trust_home_close(th);
    return rc;
}

/* The rules load and name only configured destinations. */
static int load_rules(const agora__daemon_config *cfg, agora__rules **out, agora__error *err)
{
    *out = NULL;
    if (cfg->rules_path == NULL)
        return 0;
    int rc = agora__rules_load(cfg->rules_path, out, err);
    if (rc != 0)
        return rc;
    const char **names = NULL;
    size_t n = 0;
    rc = agora__rules_destinations(*out, &names, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(names[i], AGORA__RULES_DEST_DEFAULT) != 0 && dest_find(cfg, names[i]) == NULL)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "the rules send to '%s', which is not configured; add "
                                  "--dest %s=AE@HOST:PORT (or dest = ... in the config file)",
                                  names[i], names[i]);
    free(names);
    if (rc != 0) {
        agora__rules_free(*out);
        *out = NULL;
    }
    return rc;
}

static unsigned default_workers(void);

int agora__daemon_check(const agora__daemon_config *cfg,
                        void (*report)(void *arg, const char *line), void *arg, agora__error *err)
{
    char line[512];
#define REPORT(...)                                                                                \
    do {                                                                                           \
        snprintf(line, sizeof line, __VA_ARGS__);                                                  \
        if (report != NULL)                                                                        \
            report(arg, line);                                                                     \
    } while (0)
    daemon_t d = {.cfg = cfg};
    int rc = cfg->dicom_on ? agora__serve_check_spool(&cfg->dicom, err) : 0;
    if (rc != 0)
        return rc;
    if (cfg->dicom_on)
        REPORT("dicom: %s port %d ae_title=%s allow_ae=%zu max_associations=%u max_pdu=%u "
               "spool_watermark=%llu",
               cfg->dicom.host, cfg->dicom.port, cfg->dicom.ae_title, cfg->dicom.n_allow_ae,
               cfg->dicom.max_associations, cfg->dicom.max_pdu,
               (unsigned long long)cfg->dicom.spool_watermark);
    else
        REPORT("dicom: off");
    if (cfg->http_host != NULL) {
        agora__http_config hc = AGORA__HTTP_CONFIG_INIT;
        hc.host = cfg->http_host;
        hc.port = cfg->http_port;
        agora__http_server *hs = NULL;
        rc = agora__http_create(&hc, &hs, err);
        agora__http_destroy(hs);
        if (rc != 0)
            return rc;
        REPORT("http: %s port %d (STOW-RS /dicomweb/studies, /healthz)", cfg->http_host,
               cfg->http_port);
    } else {
        REPORT("http: off");
    }
    agora__error kerr = {0};
    rc = derive_keys(&d, &kerr);
    sodium_memzero(d.uid_key, sizeof d.uid_key);
    sodium_memzero(d.bill_key, sizeof d.bill_key);
    if (rc != 0) {
        REPORT("home: %s: %s; serve would receive and spool only (no app runs)", cfg->home,
               kerr.msg);
        agora__rules *r = NULL;
        rc = load_rules(cfg, &r, err);
        agora__rules_free(r);
        return rc;
    }
    agora__queue *q = NULL;
    rc = agora__queue_open(cfg->home, &q, err);
    uint64_t counts[AGORA__QJOB_STATE_COUNT] = {0};
    if (rc == 0)
        rc = agora__queue_counts(q, counts, err);
    agora__queue_close(q);
    if (rc != 0)
        return rc;
    REPORT("home: %s queue: %llu waiting, %llu running, %llu sending, %llu failed", cfg->home,
           (unsigned long long)counts[AGORA__QJOB_WAITING],
           (unsigned long long)counts[AGORA__QJOB_RUNNING],
           (unsigned long long)counts[AGORA__QJOB_SENDING],
           (unsigned long long)counts[AGORA__QJOB_FAILED]);
    agora__rules *rules = NULL;
    rc = load_rules(cfg, &rules, err);
    if (rc != 0)
        return rc;
    if (rules != NULL)
        REPORT("rules: %s, %zu rule(s), fallback %s", cfg->rules_path, agora__rules_count(rules),
               agora__rules_fallback(rules));
    else
        REPORT("rules: the default rule (every installed app whose manifest accepts the "
               "series' modality)");
    agora__rules_free(rules);
    for (size_t i = 0; i < cfg->n_dests; i++) {
        const agora__dest *de = &cfg->dests[i].d;
        if (de->kind == AGORA__DEST_DIMSE)
            REPORT("destination %s: C-STORE %s@%s:%d", de->name, de->ae_title, de->host, de->port);
        else
            REPORT("destination %s: STOW-RS %s", de->name, de->url);
    }
    if (cfg->n_dests == 0)
        REPORT("destination: none (results stay in the home; --send-to AE@HOST:PORT sends them)");
    agora__trust_home *th = NULL;
    agora__trust_plugin *apps = NULL;
    size_t n_apps = 0;
    rc = agora__trust_home_open(cfg->home, &th, err);
    if (rc == 0)
        rc = agora__trust_list(th, &apps, &n_apps, err);
    agora__trust_home_close(th);
    if (rc != 0)
        return rc;
    size_t ok = 0;
    for (size_t i = 0; i < n_apps; i++)
        ok += apps[i].status == AGORA__TRUST_OK;
    REPORT("apps: %zu installed, %zu can run", n_apps, ok);
    free(apps);
    REPORT("intake: series quiet %llu ms, study quiet %llu ms, force after %llu ms (%s); "
           "workers %u; catalog sync every %u s",
           (unsigned long long)cfg->intake.series_quiet_ms,
           (unsigned long long)cfg->intake.study_quiet_ms,
           (unsigned long long)cfg->intake.force_after_ms,
           agora__intake_action_name(cfg->intake.force_action),
           cfg->workers ? cfg->workers : default_workers(), cfg->sync_interval_s);
#undef REPORT
    return 0;
}

static unsigned default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1                                 ? 1u
           : n > (long)AGORA__DAEMON_MAX_WORKERS ? AGORA__DAEMON_MAX_WORKERS
                                                 : (unsigned)n;
}

static int start_http(daemon_t *d, agora__error *err)
{
    const agora__daemon_config *cfg = d->cfg;
    agora__http_config hc = AGORA__HTTP_CONFIG_INIT;
    hc.host = cfg->http_host;
    hc.port = cfg->http_port;
    hc.health = health;
    hc.health_arg = d;
    int rc = agora__http_create(&hc, &d->http, err);
    if (rc != 0)
        return rc;
    agora__stow_config sc = {
        .home = cfg->home,
        .max_instance_bytes = cfg->dicom.max_instance_bytes,
        .spool_watermark = cfg->dicom.spool_watermark,
        .retry_after_s = AGORA__STOW_DEFAULT_RETRY_AFTER_S,
        .max_parts = AGORA__STOW_DEFAULT_MAX_PARTS,
        .max_part_header_bytes = AGORA__STOW_DEFAULT_PART_HEADER,
        .max_part_headers = AGORA__STOW_DEFAULT_PART_HEADERS,
        .max_request_bytes = AGORA__STOW_DEFAULT_MAX_REQUEST,
    };
    rc = agora__stow_register(d->http, &sc, &d->stow, err);
    if (rc == 0)
        rc = agora__http_start(d->http, err);
    if (rc == 0)
        agora__log(AGORA_LOG_INFO, COMPONENT, "http listening on %s port %d", cfg->http_host,
                   agora__http_port(d->http));
    return rc;
}

int agora__daemon_run(const agora__daemon_config *cfg, agora__error *err)
{
    daemon_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    d->cfg = cfg;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->wake, NULL);
    lease_host(d->host);
    /* A home that is not initialised (no secret, no catalog) still receives: the spool fills,
     * and the apps run once the home is set up and the daemon restarted. */
    agora__error kerr = {0};
    int receive_only = derive_keys(d, &kerr) != 0;
    if (receive_only)
        agora__log(AGORA_LOG_WARN, COMPONENT,
                   "receiving only, no app runs: %s (set the home up with agora init, agora "
                   "sync and agora install, then restart)",
                   kerr.msg);
    int rc = load_rules(cfg, &d->rules, err);
    /* Leases a previous process of this host held (a crash, a kill) end now, not at expiry. */
    if (rc == 0 && !receive_only) {
        agora__queue *q = NULL;
        size_t n = 0;
        rc = agora__queue_open(cfg->home, &q, err);
        if (rc == 0)
            rc = agora__queue_expire_mine(q, d->host, &n, err);
        agora__queue_close(q);
        if (rc == 0 && n > 0)
            agora__log(AGORA_LOG_WARN, COMPONENT,
                       "%zu job(s) a previous run of this host left leased are due again", n);
    }
    uv_loop_init(&d->loop);
    if (rc == 0 && cfg->dicom_on)
        rc = agora__serve_listen(&d->loop, &cfg->dicom, &d->dimse, err);
    if (rc == 0 && cfg->http_host != NULL)
        rc = start_http(d, err);
    d->n_workers = receive_only ? 0 : cfg->workers ? cfg->workers : default_workers();
    d->workers = rc == 0 ? calloc(d->n_workers ? d->n_workers : 1, sizeof *d->workers) : NULL;
    if (rc == 0 && d->workers == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    unsigned started = 0;
    for (unsigned i = 0; rc == 0 && i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        w->d = d;
        w->no = i + 1;
        rc = worker_open(d, w, err);
        if (rc == 0 && pthread_create(&w->thr, NULL, worker_main, w) != 0)
            rc = agora__error_set(err, AGORA_EINTERNAL, "cannot start a dispatch thread");
        if (rc == 0)
            started++;
    }
    if (rc == 0 && !receive_only && pthread_create(&d->sender_thr, NULL, sender_main, d) == 0)
        d->sender_started = 1;
    if (rc == 0 && !receive_only && pthread_create(&d->intake_thr, NULL, intake_main, d) == 0)
        d->intake_started = 1;
    if (rc == 0 && !receive_only && (!d->sender_started || !d->intake_started))
        rc = agora__error_set(err, AGORA_EINTERNAL, "cannot start the daemon's threads");
    if (rc == 0) {
        uv_signal_init(&d->loop, &d->sigterm);
        uv_signal_init(&d->loop, &d->sigint);
        uv_timer_init(&d->loop, &d->stop_timer);
        d->sigterm.data = d->sigint.data = d->stop_timer.data = d;
        uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        uv_signal_start(&d->sigint, on_signal, SIGINT);
        agora__log(AGORA_LOG_INFO, COMPONENT,
                   "serving: workers=%u rules=%s destinations=%zu sync_interval=%us", d->n_workers,
                   d->rules ? "file" : "default", cfg->n_dests, cfg->sync_interval_s);
        uv_run(&d->loop, UV_RUN_DEFAULT);
    } else {
        atomic_store(&d->stopping, 1);
        atomic_store(&d->hard, 1);
        if (d->http != NULL)
            agora__http_stop(d->http);
        if (d->dimse != NULL)
            agora__serve_stop(d->dimse, NULL, NULL);
        wake_all(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
    }
    /* Stopping: the threads leave their loops (a cancelled job ends promptly). */
    atomic_store(&d->stopping, 1);
    wake_all(d);
    for (unsigned i = 0; i < started; i++)
        pthread_join(d->workers[i].thr, NULL);
    if (d->sender_started)
        pthread_join(d->sender_thr, NULL);
    if (d->intake_started)
        pthread_join(d->intake_thr, NULL);
    for (unsigned i = 0; d->workers != NULL && i < d->n_workers; i++)
        if (d->workers[i].d != NULL)
            worker_close(&d->workers[i]);
    /* What this host still leases goes back, the attempt given back. */
    agora__queue *q = NULL;
    agora__error e2 = {0};
    size_t n = 0;
    if (agora__queue_open(cfg->home, &q, &e2) == 0 &&
        agora__queue_requeue_mine(q, d->host, &n, &e2) == 0 && n > 0)
        agora__log(AGORA_LOG_INFO, COMPONENT, "%zu job(s) requeued for the next start", n);
    agora__queue_close(q);
    if (d->stow != NULL)
        agora__stow_close(d->stow);
    agora__http_destroy(d->http);
    agora__queue_close(d->health_q);
    agora__serve_free(d->dimse);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    agora__rules_free(d->rules);
    free(d->workers);
    sodium_memzero(d->uid_key, sizeof d->uid_key);
    sodium_memzero(d->bill_key, sizeof d->bill_key);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->wake);
    if (rc == 0)
        agora__log(AGORA_LOG_INFO, COMPONENT, "stopped");
    free(d);
    return rc;
}
