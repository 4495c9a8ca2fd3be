/* The run pipeline object: scan, prepare, dispatch, report (see pipeline.h). Settling a
 * finished job (validate, re-identify, store, meter) is settle.c. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ingest.h"
#include "jobs.h"
#include "pipeline_private.h"

/* Distinct views decoded per series: more plugins than this with distinct grants decode again. */
#define VIEW_KEYS_MAX 256

static int series_matches(const agora__pipeline *p, const agora__pipeline_plugin *pl,
                          const agora__dicom_series *s)
{
    /* A queued job runs its own plugin only; the pipeline's other warm pools stay idle. */
    if (p->job != NULL && pl != &p->plugins[p->job->plugin_index].desc)
        return 0;
    if (pl->every_series)
        return 1;
    const agora__manifest *m = pl->manifest;
    int modality = m->any_modality;
    for (uint32_t i = 0; i < m->n_modalities && !modality; i++)
        modality = strcmp(m->modalities[i], s->modality) == 0;
    return modality && s->n_frames >= m->min_frames && s->n_frames <= m->max_frames;
}

/* A plugin that asks for a whole study per job (manifest inputs.scope "study"). */
static int study_scope(const agora__pipeline_plugin *pl)
{
    return pl->manifest != NULL && pl->manifest->study_scope;
}

/* Non-zero when series si is the first of its study in scan order. */
static int first_of_study(const agora__dicom_scan *scan, size_t si)
{
    for (size_t k = 0; k < si; k++)
        if (strcmp(scan->series[k].study_uid, scan->series[si].study_uid) == 0)
            return 0;
    return 1;
}

/* The series of si's study that plugin pl takes, in scan order, into idx (up to cap); returns
 * how many there are (possibly more than cap). */
static size_t study_series(const agora__pipeline *p, size_t si, const agora__pipeline_plugin *pl,
                           size_t *idx, size_t cap)
{
    const agora__dicom_scan *scan = p->scan;
    size_t n = 0;
    for (size_t k = si; k < scan->n_series; k++) {
        if (strcmp(scan->series[k].study_uid, scan->series[si].study_uid) != 0 ||
            !series_matches(p, pl, &scan->series[k]))
            continue;
        if (n < cap)
            idx[n] = k;
        n++;
    }
    return n;
}

int agora__pipeline_new(uv_loop_t *loop, const agora__pipeline_config *cfg, agora__pipeline **out,
                        agora__error *err)
{
    *out = NULL;
    if ((cfg->store_home == NULL) != (cfg->ledger == NULL))
        return agora__error_set(err, AGORA_EINVAL,
                                "a pipeline stores and meters together: give both a home and a "
                                "ledger, or neither");
    agora__pipeline *p = calloc(1, sizeof *p);
    if (p == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory starting the run pipeline");
    p->cfg = *cfg;
    if (loop == NULL) {
        int rc = uv_loop_init(&p->own_loop);
        if (rc != 0) {
            free(p);
            return agora__error_set(err, AGORA_EINTERNAL, "uv_loop_init: %s", uv_strerror(rc));
        }
        p->owns_loop = 1;
        loop = &p->own_loop;
    }
    p->loop = loop;
    *out = p;
    return 0;
}

int agora__pipeline_add_plugin(agora__pipeline *p, const agora__pipeline_plugin *pl,
                               agora__error *err)
{
    if (p->n_plugins == p->cap_plugins) {
        size_t cap = p->cap_plugins ? p->cap_plugins * 2 : 8;
        agora__pipeline__slot *n = realloc(p->plugins, cap * sizeof *n);
        if (n == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory adding a plugin");
        p->plugins = n;
        p->cap_plugins = cap;
    }
    agora__pipeline__slot *slot = &p->plugins[p->n_plugins];
    memset(slot, 0, sizeof *slot);
    slot->desc = *pl;
    int rc = agora__pool_new(p->loop, &slot->desc.spec, &slot->pool, err);
    if (rc != 0)
        return rc;
    return (int)p->n_plugins++;
}

size_t agora__pipeline_n_plugins(const agora__pipeline *p)
{
    return p->n_plugins;
}

agora__pool *agora__pipeline_pool(agora__pipeline *p, size_t i)
{
    return i < p->n_plugins ? p->plugins[i].pool : NULL;
}

int agora__pipeline_scan(agora__pipeline *p, const char *const *paths, size_t n,
                         agora__error *err)
{
    if (p->ing == NULL) {
        /* Every DICOM byte is parsed by a sandboxed worker (rule of two). */
        agora__ingest_options iopt;
        agora__ingest_options_default(&iopt);
        iopt.allow_weak_isolation = p->cfg.allow_weak_isolation;
        int rc = agora__ingest_open(&iopt, &p->ing, err);
        if (rc != 0)
            return agora__error_prefix(err, "cannot start the sandboxed DICOM reader");
    }
    if (p->scan != NULL) {
        agora__dicom_scan_free(p->scan);
        p->scan = NULL;
    }
    agora__dicom_scan_options opt;
    agora__dicom_scan_options_default(&opt);
    opt.extract = agora__ingest_extract;
    opt.extract_ctx = p->ing;
    int rc = agora__dicom_scan_paths(paths, n, &opt, &p->scan, err);
    if (rc != 0) {
        p->scan = NULL;
        return rc;
    }
    return p->cfg.cb.on_scan != NULL ? p->cfg.cb.on_scan(p->cfg.cb.arg, p->scan) : 0;
}

const agora__dicom_scan *agora__pipeline_scanned(const agora__pipeline *p)
{
    return p->scan;
}

size_t agora__pipeline_job_count(const agora__pipeline *p)
{
    size_t n = 0, idx[1];
    for (size_t s = 0; p->scan != NULL && s < p->scan->n_series; s++)
        for (size_t i = 0; i < p->n_plugins; i++) {
            const agora__pipeline_plugin *pl = &p->plugins[i].desc;
            if (!study_scope(pl))
                n += (size_t)series_matches(p, pl, &p->scan->series[s]);
            else if (first_of_study(p->scan, s))
                n += study_series(p, s, pl, idx, 1) > 0; /* one job per study */
        }
    return n;
}

void agora__pipeline_cancel(agora__pipeline *p)
{
    p->cancelled = 1;
    if (p->running != NULL)
        (void)agora__pool_cancel(p->running, p->running_id, NULL);
}

static void report(agora__pipeline *p, const agora__pipeline_outcome *o)
{
    if (p->cfg.cb.on_outcome != NULL)
        p->cfg.cb.on_outcome(p->cfg.cb.arg, o);
}

/* One (series, plugin) job on a prepared series: admit, mint, dispatch, settle, report. */
static void run_job(agora__pipeline *p, size_t si, size_t pi, const agora__prepared *prep,
                    const char *label, agora__pipeline_outcome *o)
{
    agora__pipeline__slot *slot = &p->plugins[pi];
    agora__error err = {0};
    char inv[AGORA__LEDGER_ID_LEN + 1] = "";
    o->job = ++p->done;
    o->plugin = &slot->desc;
    o->plugin_index = pi;
    o->invocation_id = inv;
    if (p->cancelled) {
        o->end = AGORA__PIPELINE_CANCELLED;
        o->status = "cancelled";
        o->error = "the run was cancelled before this job was dispatched";
        report(p, o);
        return;
    }
    if (p->cfg.cb.admit != NULL && p->cfg.cb.admit(p->cfg.cb.arg, &slot->desc, &err) != 0) {
        o->end = AGORA__PIPELINE_REFUSED;
        o->status = "refused";
        o->error = err.msg;
        report(p, o);
        return;
    }
    if (p->cfg.cb.on_start != NULL)
        p->cfg.cb.on_start(p->cfg.cb.arg, o->job, o->n_jobs, &slot->desc, si, label);
    agora__job_outcome out = {0};
    /* The invocation id exists before dispatch, so a crash mid-job leaves a traceable gap. */
    int rc = 0;
    if (p->job != NULL)
        agora__strlcpy(inv, p->job->invocation_id, sizeof inv); /* minted at enqueue */
    else if (p->cfg.ledger != NULL)
        rc = agora__ledger_mint(inv, &err);
    if (rc == 0) {
        p->running = slot->pool;
        rc = agora__jobs_run_one(p->loop, slot->pool, prep, &out, &p->running_id, &err);
        p->running = NULL;
    }
    if (rc != 0) {
        o->end = AGORA__PIPELINE_NOT_RUN;
        o->status = "input-error";
        o->error = err.msg;
        report(p, o);
        return;
    }
    o->end = AGORA__PIPELINE_RAN;
    agora__pipeline__settle(p, &slot->desc, prep, &out, o);
    report(p, o);
    agora__job_outcome_free(&out);
}

/* Every job of series si: one decode per distinct view, shared by the plugins with that view. */
static void run_series(agora__pipeline *p, size_t si, size_t n_jobs)
{
    const agora__dicom_series *ser = &p->scan->series[si];
    char label[96];
    agora__series_label(ser, label, sizeof label);
    uint32_t keys_done[VIEW_KEYS_MAX];
    size_t n_keys = 0;
    for (size_t pi = 0; pi < p->n_plugins; pi++) {
        const agora__pipeline_plugin *lead = &p->plugins[pi].desc;
        if (study_scope(lead) || !series_matches(p, lead, ser))
            continue;
        int seen = 0;
        for (size_t k = 0; k < n_keys; k++)
            seen |= keys_done[k] == lead->view_key;
        if (seen)
            continue;
        if (n_keys < VIEW_KEYS_MAX)
            keys_done[n_keys++] = lead->view_key;
        agora__pipeline_outcome o = {
            .n_jobs = n_jobs, .series_index = si, .series = ser, .label = label,
            .error = "", .invocation_id = "", .ledger_error = "",
        };
        agora__prepared prep;
        agora__error err = {0};
        if (p->cancelled) {
            /* Nothing decoded: report the jobs of this view as cancelled. */
            for (size_t q = pi; q < p->n_plugins; q++)
                if (p->plugins[q].desc.view_key == lead->view_key &&
                    !study_scope(&p->plugins[q].desc) && series_matches(p, &p->plugins[q].desc, ser))
                    run_job(p, si, q, NULL, label, &o);
            continue;
        }
        if (agora__prepare_series(p->ing, ser, p->cfg.uid_key, lead->granted, lead->n_granted,
                                  p->cfg.deid_flags, &prep, &err) != 0) {
            o.end = AGORA__PIPELINE_SERIES_FAILED;
            o.status = "input-error";
            o.error = err.msg;
            o.job = p->done;
            report(p, &o);
            continue;
        }
        for (size_t q = pi; q < p->n_plugins; q++) {
            const agora__pipeline_plugin *pl = &p->plugins[q].desc;
            if (pl->view_key != lead->view_key || study_scope(pl) || !series_matches(p, pl, ser))
                continue;
            agora__pipeline_outcome oq = o;
            run_job(p, si, q, &prep, label, &oq);
        }
        agora__prepared_free(&prep);
    }
}

/* The study-scope jobs of the study whose first series is si: one per study-scope plugin that
 * takes any of its series, each decoded on its own (a study job is the plugin's own view). */
static void run_study(agora__pipeline *p, size_t si, size_t n_jobs)
{
    for (size_t pi = 0; pi < p->n_plugins; pi++) {
        const agora__pipeline_plugin *pl = &p->plugins[pi].desc;
        if (!study_scope(pl))
            continue;
        size_t idx[AGORA_STUDY_MAX_SERIES];
        size_t n = study_series(p, si, pl, idx, AGORA_STUDY_MAX_SERIES);
        if (n == 0)
            continue;
        const agora__dicom_series *ser[AGORA_STUDY_MAX_SERIES];
        uint32_t frames = 0;
        for (size_t k = 0; k < n && k < AGORA_STUDY_MAX_SERIES; k++) {
            ser[k] = &p->scan->series[idx[k]];
            frames += ser[k]->n_frames;
        }
        char label[96];
        snprintf(label, sizeof label, "study of %zu series, %u frames", n, frames);
        agora__pipeline_outcome o = {
            .n_jobs = n_jobs, .series_index = idx[0], .series = ser[0], .label = label,
            .error = "", .invocation_id = "", .ledger_error = "",
        };
        agora__prepared prep;
        agora__error err = {0};
        if (p->cancelled) {
            run_job(p, idx[0], pi, NULL, label, &o);
            continue;
        }
        if (n > AGORA_STUDY_MAX_SERIES) {
            agora__error_set(&err, AGORA_ELIMIT,
                             "the study has %zu series this plugin takes; a study-scope job "
                             "takes at most %d",
                             n, AGORA_STUDY_MAX_SERIES);
        } else if (agora__prepare_study(p->ing, ser, (uint32_t)n, p->cfg.uid_key, pl->granted,
                                        pl->n_granted, p->cfg.deid_flags, &prep, &err) == 0) {
            run_job(p, idx[0], pi, &prep, label, &o);
            agora__prepared_free(&prep);
            continue;
        }
        /* Not prepared: this plugin's job on the study is reported failed, once. */
        o.end = AGORA__PIPELINE_NOT_RUN;
        o.status = "input-error";
        o.error = err.msg;
        o.plugin = pl;
        o.plugin_index = pi;
        o.job = ++p->done;
        report(p, &o);
    }
}

int agora__pipeline_dispatch(agora__pipeline *p, agora__error *err)
{
    if (p->scan == NULL)
        return agora__error_set(err, AGORA_ESTATE, "nothing scanned: call agora__pipeline_scan "
                                                   "first");
    size_t n_jobs = agora__pipeline_job_count(p);
    p->done = 0;
    for (size_t si = 0; si < p->scan->n_series; si++)
        run_series(p, si, n_jobs);
    for (size_t si = 0; si < p->scan->n_series; si++)
        if (first_of_study(p->scan, si))
            run_study(p, si, n_jobs);
    return 0;
}

int agora__pipeline_dispatch_job(agora__pipeline *p, const agora__pipeline_job *job,
                                 agora__error *err)
{
    if (p->cfg.ledger == NULL || job == NULL || job->invocation_id == NULL ||
        strlen(job->invocation_id) != AGORA__LEDGER_ID_LEN || job->before_record == NULL ||
        job->in_txn == NULL)
        return agora__error_set(err, AGORA_EINVAL, "a queued job needs a ledger, its invocation "
                                                   "id and its settle callbacks");
    if (p->scan == NULL)
        return agora__error_set(err, AGORA_ESTATE, "nothing scanned: call agora__pipeline_scan "
                                                   "first");
    if (job->plugin_index >= p->n_plugins)
        return agora__error_set(err, AGORA_EINVAL, "a queued job names no plugin of the pipeline");
    p->job = job;
    size_t n = agora__pipeline_job_count(p);
    if (n != 1) {
        p->job = NULL;
        return agora__error_set(err, AGORA_EINVAL,
                                "a queued job runs one invocation, but its files make %zu", n);
    }
    int rc = agora__pipeline_dispatch(p, err);
    p->job = NULL;
    return rc;
}

void agora__pipeline_free(agora__pipeline *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_plugins; i++)
        agora__jobs_close_pool(p->loop, p->plugins[i].pool);
    free(p->plugins);
    if (p->scan != NULL)
        agora__dicom_scan_free(p->scan);
    agora__ingest_close(p->ing);
    if (p->owns_loop)
        uv_loop_close(&p->own_loop);
    sodium_memzero(p->cfg.uid_key, sizeof p->cfg.uid_key);
    free(p);
}
