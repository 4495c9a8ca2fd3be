/*
 * `agora certify --check`: run a bundle in the real sandbox through the run pipeline over the
 * reference set (refset.c) and judge what it did (the checks are listed in certify.h).
 *
 * How it runs: every job gets a runner of its own (fresh-per-job), so the peak RSS the pool
 * reports (the worker's ru_maxrss, a lifetime figure: docs/sandbox.md) is that one job's peak;
 * a forbidden system call is trapped and named (trap mode, as `agora dev run`) rather than only
 * killed; the plugin is never quarantined, so every job shows its own outcome. Pass one and two run
 * the same accepted inputs with the same pseudonymisation key, so their result documents must be
 * equal but for job_id and metrics (wall time, CPU, RSS), which legitimately vary. Refused inputs
 * are scanned by a pipeline that honours the manifest's declared inputs (it must dispatch none of
 * them) and then given to the plugin directly, as a host bug or a borderline study would: it must
 * answer with a result or an error status.
 */
#include "certify_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "jobs.h"
#include "pipeline.h"
#include "results.h"

#define JOBS_MAX     512 /* jobs recorded; an operator folder with more series is refused */
#define EVIDENCE_MAX 8   /* offending jobs listed per check */
#define ERROR_TEXT   200 /* bytes of a job's error kept in the report */

/* One job as the checks see it. */
typedef struct job_rec {
    size_t item;         /* index into the reference set */
    size_t series_index; /* within its scan */
    int run;             /* 1, 2: accepted inputs; 0: a refused input given to the plugin */
    agora__pipeline_end end;
    char status[32];
    int validated;
    char error[ERROR_TEXT + 1];
    json_t *doc; /* a copy of the worker's result document, owned; NULL when none */
    uint64_t wall_ms, peak_rss_kb;
} job_rec;

typedef struct run_ctx {
    const agora__cert_refset *rs;
    job_rec *jobs;
    size_t n_jobs;
    int run;
    int overflow;
} run_ctx;

/* The reference item a series was read from: the longest item folder its first file is in. */
static size_t item_of(const agora__cert_refset *rs, const agora__dicom_series *s)
{
    size_t best = rs->n, best_len = 0;
    const char *path = s != NULL && s->n_instances ? s->instances[0].path : "";
    for (size_t i = 0; i < rs->n; i++) {
        size_t n = strlen(rs->items[i].dir);
        if (n > best_len && strncmp(path, rs->items[i].dir, n) == 0 &&
            (path[n] == '/' || rs->items[i].dir[n - 1] == '/')) {
            best = i;
            best_len = n;
        }
    }
    return best;
}

static void on_outcome(void *arg, const agora__pipeline_outcome *o)
{
    run_ctx *c = arg;
    if (c->n_jobs >= JOBS_MAX) {
        c->overflow = 1;
        return;
    }
    job_rec *j = &c->jobs[c->n_jobs++];
    memset(j, 0, sizeof *j);
    j->item = item_of(c->rs, o->series);
    j->series_index = o->series_index;
    j->run = c->run;
    j->end = o->end;
    agora__strlcpy(j->status, o->status, sizeof j->status);
    j->validated = o->validated;
    agora__strlcpy(j->error, o->error != NULL ? o->error : "", sizeof j->error);
    j->wall_ms = o->wall_ms;
    if (o->doc != NULL) {
        j->doc = json_deep_copy(o->doc);
        json_t *metrics = json_object_get(o->doc, "metrics");
        j->peak_rss_kb = (uint64_t)json_integer_value(json_object_get(metrics, "peak_rss_kb"));
    }
}

/* What every pass shares: the plugin as the pipeline runs it. */
typedef struct cert_run {
    const agora__certcheck_opts *opts;
    const agora__manifest *m;
    agora__pipeline_plugin pl;
    uint8_t uid_key[32];
    run_ctx ctx;
    char mechanism[32], mechanism_detail[256];
    size_t host_refused_jobs; /* jobs the declared-inputs pipeline would run on refused inputs */
} cert_run;

static size_t paths_of(const agora__cert_refset *rs, int refused, const char **paths)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++)
        if ((rs->items[i].role == AGORA__CERT_REFUSED) == (refused != 0))
            paths[n++] = rs->items[i].dir;
    return n;
}

static int new_pipeline(cert_run *r, int every_series, agora__pipeline **p, agora__error *err)
{
    agora__pipeline_config cfg = {
        .allow_weak_isolation = r->opts->allow_weak_isolation,
        .cb = {.on_outcome = on_outcome, .arg = &r->ctx},
    };
    memcpy(cfg.uid_key, r->uid_key, sizeof cfg.uid_key);
    int rc = agora__pipeline_new(NULL, &cfg, p, err);
    sodium_memzero(cfg.uid_key, sizeof cfg.uid_key);
    if (rc != 0)
        return rc;
    r->pl.every_series = every_series;
    if (agora__pipeline_add_plugin(*p, &r->pl, err) < 0) {
        agora__error_prefix(err, "cannot start the sandbox");
        return err->code ? err->code : AGORA_EINTERNAL;
    }
    return 0;
}

/* Pass one and two over the accepted inputs, and the host's dispatch decision on the refused
 * ones, in a pipeline that honours the declared inputs; then the refused inputs given to the
 * plugin directly. */
static int run_all(cert_run *r, const agora__cert_refset *rs, agora__error *err)
{
    const char *paths[AGORA__CERT_ITEMS_MAX];
    agora__pipeline *p = NULL;
    int rc = new_pipeline(r, 0, &p, err);
    if (rc == 0) {
        const char *detail = "";
        agora__strlcpy(r->mechanism,
                       agora__pool_memory_mechanism(agora__pipeline_pool(p, 0), &detail),
                       sizeof r->mechanism);
        agora__strlcpy(r->mechanism_detail, detail, sizeof r->mechanism_detail);
    }
    size_t n = paths_of(rs, 0, paths);
    for (int run = 1; rc == 0 && run <= 2; run++) {
        r->ctx.run = run;
        rc = agora__pipeline_scan(p, paths, n, err);
        if (rc == 0 && agora__pipeline_scanned(p)->n_series > JOBS_MAX / 4)
            rc = agora__error_set(err, AGORA_ELIMIT,
                                  "the reference folder holds more than %d series; give a "
                                  "smaller one",
                                  JOBS_MAX / 4);
        if (rc == 0)
            rc = agora__pipeline_dispatch(p, err);
    }
    size_t n_refused = paths_of(rs, 1, paths);
    if (rc == 0 && n_refused > 0) {
        rc = agora__pipeline_scan(p, paths, n_refused, err);
        if (rc == 0)
            r->host_refused_jobs = agora__pipeline_job_count(p);
    }
    agora__pipeline_free(p);
    p = NULL;
    if (rc == 0 && n_refused > 0) {
        r->ctx.run = 0;
        rc = new_pipeline(r, 1, &p, err);
        if (rc == 0)
            rc = agora__pipeline_scan(p, paths, n_refused, err);
        if (rc == 0)
            rc = agora__pipeline_dispatch(p, err);
        agora__pipeline_free(p);
    }
    if (rc == 0 && r->ctx.overflow)
        rc = agora__error_set(err, AGORA_ELIMIT,
                              "more than %d jobs; give a smaller reference "
                              "folder",
                              JOBS_MAX);
    return rc;
}

/* ---- the checks ------------------------------------------------------------------------- */

static const char *const output_names[AGORA__OUT_COUNT] = {"findings", "measurements", "regions",
                                                           "masks", "summary"};

static json_t *outputs_json(uint32_t bits)
{
    json_t *a = json_array();
    for (unsigned i = 0; a != NULL && i < AGORA__OUT_COUNT; i++)
        if (bits & (1u << i))
            json_array_append_new(a, json_string(output_names[i]));
    return a;
}

static int job_ok(const job_rec *j)
{
    return j->end == AGORA__PIPELINE_RAN && j->validated && strcmp(j->status, "ok") == 0;
}

/* An answer that is not a crash: a kept result, or the plugin's own error status. */
static int job_answered(const job_rec *j)
{
    return job_ok(j) || strcmp(j->status, "plugin-error") == 0;
}

static json_t *job_ref(const agora__cert_refset *rs, const job_rec *j, const char *error)
{
    json_t *o =
        json_pack("{s:s, s:i, s:s}", "input", j->item < rs->n ? rs->items[j->item].name : "?",
                  "run", j->run, "status", j->status);
    if (o != NULL && error != NULL && error[0] != '\0')
        json_object_set_new(o, "error", json_string(error));
    return o;
}

static void add_check(json_t *checks, const char *name, int passed, const char *detail,
                      json_t *evidence)
{
    json_array_append_new(checks, json_pack("{s:s, s:b, s:s, s:o}", "name", name, "passed", passed,
                                            "detail", detail, "evidence", evidence));
}

/* Append v to arr while it holds fewer than EVIDENCE_MAX items (else drop it). */
static void note(json_t *arr, json_t *v)
{
    if (json_array_size(arr) < EVIDENCE_MAX)
        json_array_append_new(arr, v);
    else
        json_decref(v);
}

static void check_outcome(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    json_t *failed = json_array();
    size_t n = 0, ok = 0, bad = 0, missing = 0;
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        if (j->run == 0)
            continue;
        n++;
        int borderline = j->item < rs->n && rs->items[j->item].role == AGORA__CERT_BORDERLINE;
        if (job_ok(j))
            ok++;
        else if (!(borderline && job_answered(j))) {
            bad++;
            note(failed, job_ref(rs, j, j->error));
        }
    }
    /* Every accepted synthetic study must have been dispatched in both passes. */
    for (size_t k = 0; k < rs->n; k++) {
        if (!rs->items[k].synthetic || rs->items[k].role == AGORA__CERT_REFUSED)
            continue;
        for (int run = 1; run <= 2; run++) {
            int seen = 0;
            for (size_t i = 0; i < r->ctx.n_jobs; i++)
                seen |= r->ctx.jobs[i].item == k && r->ctx.jobs[i].run == run;
            if (!seen) {
                missing++;
                note(failed, json_pack("{s:s, s:i, s:s}", "input", rs->items[k].name, "run", run,
                                       "status", "not-dispatched"));
            }
        }
    }
    char detail[160];
    int passed = bad == 0 && missing == 0 && n > 0;
    if (passed)
        snprintf(detail, sizeof detail, "%zu job(s) on accepted inputs, all ended ok", n);
    else if (n == 0)
        snprintf(detail, sizeof detail, "no job ran on an accepted input");
    else
        snprintf(detail, sizeof detail,
                 "%zu of %zu job(s) on accepted inputs did not end ok, %zu input(s) not "
                 "dispatched",
                 bad, n, missing);
    add_check(checks, "outcome", passed, detail,
              json_pack("{s:I, s:I, s:o}", "jobs", (json_int_t)n, "ok", (json_int_t)ok, "failed",
                        failed));
}

static void check_limits(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    uint64_t limit_ms = (uint64_t)(r->m->time_s ? r->m->time_s : 60) * 1000u;
    uint64_t limit_kb = (uint64_t)(r->m->memory_mb ? r->m->memory_mb : 256) * 1024u;
    uint64_t max_ms = 0, max_kb = 0;
    json_t *slow = json_array(), *big = json_array();
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        if (j->end != AGORA__PIPELINE_RAN)
            continue;
        max_ms = j->wall_ms > max_ms ? j->wall_ms : max_ms;
        max_kb = j->peak_rss_kb > max_kb ? j->peak_rss_kb : max_kb;
        if (j->wall_ms > limit_ms || strcmp(j->status, "timeout") == 0) {
            json_t *o = job_ref(rs, j, NULL);
            json_object_set_new(o, "wall_ms", json_integer((json_int_t)j->wall_ms));
            note(slow, o);
        }
        if (j->peak_rss_kb > limit_kb || strcmp(j->status, "out-of-memory") == 0) {
            json_t *o = job_ref(rs, j, NULL);
            json_object_set_new(o, "peak_rss_kb", json_integer((json_int_t)j->peak_rss_kb));
            note(big, o);
        }
    }
    char detail[200];
    size_t n_slow = json_array_size(slow), n_big = json_array_size(big);
    if (n_slow == 0)
        snprintf(detail, sizeof detail, "longest job %llu ms, within resources.time_s %u s",
                 (unsigned long long)max_ms, (unsigned)(limit_ms / 1000));
    else
        snprintf(detail, sizeof detail, "job(s) ran past resources.time_s %u s (longest %llu ms)",
                 (unsigned)(limit_ms / 1000), (unsigned long long)max_ms);
    add_check(checks, "time", n_slow == 0, detail,
              json_pack("{s:I, s:I, s:o}", "limit_ms", (json_int_t)limit_ms, "max_wall_ms",
                        (json_int_t)max_ms, "over", slow));
    if (n_big == 0)
        snprintf(detail, sizeof detail,
                 "largest peak RSS %llu KiB, within resources.memory_mb %llu MiB",
                 (unsigned long long)max_kb, (unsigned long long)(limit_kb / 1024));
    else
        snprintf(detail, sizeof detail,
                 "peak RSS %llu KiB is over resources.memory_mb %llu MiB (%llu KiB), though "
                 "the sandbox's hard cap let the job finish",
                 (unsigned long long)max_kb, (unsigned long long)(limit_kb / 1024),
                 (unsigned long long)limit_kb);
    add_check(checks, "memory", n_big == 0, detail,
              json_pack("{s:I, s:I, s:o}", "limit_kb", (json_int_t)limit_kb, "max_peak_rss_kb",
                        (json_int_t)max_kb, "over", big));
}

static void check_schema(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    size_t n = 0;
    json_t *invalid = json_array();
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        agora__error e = {0};
        if (strcmp(j->status, "invalid-result") == 0) {
            n++;
            note(invalid, job_ref(rs, j, j->error));
        } else if (j->doc != NULL && strcmp(j->status, "ok") == 0) {
            n++;
            if (agora__results_validate(j->doc, AGORA__RESULT_WORKER, &e) != 0)
                note(invalid, job_ref(rs, j, e.msg));
        }
    }
    char detail[160];
    size_t bad = json_array_size(invalid);
    if (bad == 0)
        snprintf(detail, sizeof detail,
                 "%zu result(s), every one valid against schemas/result.schema.json", n);
    else
        snprintf(detail, sizeof detail, "result(s) fail schemas/result.schema.json");
    add_check(checks, "schema", bad == 0, detail,
              json_pack("{s:I, s:o}", "results", (json_int_t)n, "invalid", invalid));
}

/* The kinds of output a worker result document holds (AGORA__OUT_* bits). */
static uint32_t outputs_seen(const json_t *doc)
{
    uint32_t bits = 0;
    if (json_array_size(json_object_get(doc, "findings")) > 0)
        bits |= AGORA__OUT_FINDINGS;
    if (json_array_size(json_object_get(doc, "measurements")) > 0)
        bits |= AGORA__OUT_MEASUREMENTS;
    size_t i;
    json_t *reg;
    json_array_foreach(json_object_get(doc, "regions"), i, reg)
    {
        const char *kind = json_string_value(json_object_get(reg, "kind"));
        bits |= kind != NULL && strcmp(kind, "mask") == 0 ? AGORA__OUT_MASKS : AGORA__OUT_REGIONS;
    }
    if (json_object_get(doc, "summary") != NULL)
        bits |= AGORA__OUT_SUMMARY;
    return bits;
}

static void check_outputs(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    uint32_t seen = 0;
    json_t *jobs = json_array();
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        if (j->doc == NULL || strcmp(j->status, "ok") != 0)
            continue;
        uint32_t s = outputs_seen(j->doc);
        seen |= s;
        if (s & ~r->m->outputs) {
            json_t *o = job_ref(rs, j, NULL);
            json_object_set_new(o, "undeclared", outputs_json(s & ~r->m->outputs));
            note(jobs, o);
        }
    }
    uint32_t extra = seen & ~r->m->outputs;
    char detail[200], names[96] = "";
    for (unsigned i = 0; i < AGORA__OUT_COUNT; i++)
        if (extra & (1u << i)) {
            size_t l = strlen(names);
            snprintf(names + l, sizeof names - l, "%s%s", l ? ", " : "", output_names[i]);
        }
    if (extra == 0)
        snprintf(detail, sizeof detail, "results hold only outputs the manifest declares");
    else
        snprintf(detail, sizeof detail,
                 "results hold %s, which the manifest's outputs do not "
                 "declare",
                 names);
    add_check(checks, "outputs", extra == 0, detail,
              json_pack("{s:o, s:o, s:o, s:o}", "declared", outputs_json(r->m->outputs), "seen",
                        outputs_json(seen), "undeclared", outputs_json(extra), "jobs", jobs));
}

/* The top-level fields in which two result documents differ, ignoring job_id and metrics. */
static json_t *differing_fields(const json_t *a, const json_t *b)
{
    json_t *fields = json_array();
    const json_t *docs[2] = {a, b};
    for (int d = 0; d < 2; d++) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)docs[d], key, v)
        {
            if (strcmp(key, "job_id") == 0 || strcmp(key, "metrics") == 0)
                continue;
            if (d == 1 && json_object_get(a, key) != NULL)
                continue; /* compared in the first round */
            if (!json_equal(v, json_object_get(docs[1 - d], key)))
                json_array_append_new(fields, json_string(key));
        }
    }
    return fields;
}

static void check_determinism(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    size_t pairs = 0;
    json_t *differ = json_array();
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *a = &r->ctx.jobs[i];
        if (a->run != 1)
            continue;
        for (size_t k = 0; k < r->ctx.n_jobs; k++) {
            const job_rec *b = &r->ctx.jobs[k];
            if (b->run != 2 || b->item != a->item || b->series_index != a->series_index)
                continue;
            /* Both failed: the outcome check judges them; one failed: that is a difference. */
            if (!job_ok(a) && !job_ok(b))
                continue;
            pairs++;
            json_t *fields;
            if (strcmp(a->status, b->status) != 0)
                fields = json_pack("[s]", "status");
            else if (a->doc != NULL && b->doc != NULL)
                fields = differing_fields(a->doc, b->doc);
            else
                fields = json_array();
            if (json_array_size(fields) > 0)
                note(differ, json_pack("{s:s, s:I, s:o}", "input",
                                       a->item < rs->n ? rs->items[a->item].name : "?", "series",
                                       (json_int_t)a->series_index + 1, "fields", fields));
            else
                json_decref(fields);
        }
    }
    size_t bad = json_array_size(differ);
    char detail[200];
    if (bad == 0 && pairs == 0)
        snprintf(detail, sizeof detail,
                 "not judged: no input ended ok in both passes (the outcome check says why)");
    else if (bad == 0)
        snprintf(detail, sizeof detail,
                 "%zu input(s) run twice gave equal result documents (ignoring job_id, metrics)",
                 pairs);
    else
        snprintf(detail, sizeof detail,
                 "the same input run twice gave different result documents (%zu of %zu)", bad,
                 pairs);
    add_check(checks, "determinism", bad == 0, detail,
              json_pack("{s:I, s:[s,s], s:o}", "pairs", (json_int_t)pairs, "ignored", "job_id",
                        "metrics", "differing", differ));
}

static void check_refusal(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    size_t n_refused = 0, n_border = 0;
    for (size_t k = 0; k < rs->n; k++) {
        n_refused += rs->items[k].role == AGORA__CERT_REFUSED;
        n_border += rs->items[k].role == AGORA__CERT_BORDERLINE;
    }
    json_t *answers = json_array(), *crashed = json_array();
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        int border = j->item < rs->n && rs->items[j->item].role == AGORA__CERT_BORDERLINE;
        if (j->run != 0 && !border)
            continue;
        json_array_append_new(answers, job_ref(rs, j, NULL));
        /* A forbidden call is the policy check's finding, not a crash of this one. */
        if (!job_answered(j) && strcmp(j->status, "policy-violation") != 0)
            note(crashed, job_ref(rs, j, j->error));
    }
    size_t bad = json_array_size(crashed);
    int passed = bad == 0 && r->host_refused_jobs == 0;
    char detail[240];
    if (n_refused == 0 && n_border == 0)
        snprintf(detail, sizeof detail,
                 "nothing to refuse: the manifest accepts both synthetic modalities and every "
                 "frame count from 1");
    else if (r->host_refused_jobs > 0)
        snprintf(detail, sizeof detail,
                 "the host dispatched %zu job(s) on inputs the manifest "
                 "refuses",
                 r->host_refused_jobs);
    else if (bad > 0)
        snprintf(detail, sizeof detail,
                 "given a refused or borderline input, the plugin crashed instead of answering "
                 "with an error status (AGORA_EINPUT)");
    else
        snprintf(detail, sizeof detail,
                 "%zu refused input(s), none dispatched by the host; the plugin answered %zu "
                 "refused or borderline job(s) without crashing",
                 n_refused, json_array_size(answers));
    add_check(checks, "refusal", passed, detail,
              json_pack("{s:I, s:I, s:I, s:o, s:o}", "refused_inputs", (json_int_t)n_refused,
                        "borderline_inputs", (json_int_t)n_border, "dispatched_by_host",
                        (json_int_t)r->host_refused_jobs, "answers", answers, "crashed", crashed));
}

static void check_policy(const cert_run *r, const agora__cert_refset *rs, json_t *checks)
{
    json_t *v = json_array();
    for (size_t i = 0; i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        if (strcmp(j->status, "policy-violation") == 0)
            note(v, job_ref(rs, j, j->error));
    }
    int passed = json_array_size(v) == 0;
    add_check(checks, "policy", passed,
              passed ? "no job made a system call the sandbox forbids"
                     : "a job made a system call the sandbox forbids (trapped and named)",
              json_pack("{s:I, s:o}", "jobs", (json_int_t)r->ctx.n_jobs, "violations", v));
}

/* ---- the run ------------------------------------------------------------------------------- */

/* The bundle's assets as sealed memfds, checked against its table while copied. */
static int load_assets(const agora__bundle_file *bf, agora__asset *assets, uint32_t *n,
                       agora__error *err)
{
    *n = 0;
    for (uint32_t i = 0; i < bf->b.n_assets; i++) {
        int fd = memfd_create(bf->b.assets[i].name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
            return agora__error_set(err, AGORA__ERR(errno), "memfd_create: %s", strerror(errno));
        int rc = agora__bundle_asset_copy(bf, i, fd, err);
        if (rc == 0 &&
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
            rc = agora__error_set(err, AGORA__ERR(errno), "sealing asset %s: %s",
                                  bf->b.assets[i].name, strerror(errno));
        if (rc != 0) {
            close(fd);
            return rc;
        }
        agora__asset *a = &assets[(*n)++];
        agora__strlcpy(a->name, bf->b.assets[i].name, sizeof a->name);
        a->fd = fd;
        a->size = bf->b.assets[i].size;
        memcpy(a->sha256, bf->b.assets[i].sha256, 32);
    }
    return 0;
}

static json_t *declared_json(const agora__manifest *m)
{
    json_t *mods = json_array();
    if (m->any_modality)
        json_array_append_new(mods, json_string("*"));
    for (uint32_t i = 0; i < m->n_modalities; i++)
        json_array_append_new(mods, json_string(m->modalities[i]));
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:o}", "modalities", mods, "min_frames",
                     (json_int_t)m->min_frames, "max_frames", (json_int_t)m->max_frames,
                     "memory_mb", (json_int_t)m->memory_mb, "time_s", (json_int_t)m->time_s,
                     "outputs", outputs_json(m->outputs));
}

static json_t *jobs_json(const cert_run *r, const agora__cert_refset *rs)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->ctx.n_jobs; i++) {
        const job_rec *j = &r->ctx.jobs[i];
        json_t *o = job_ref(rs, j, NULL);
        json_object_set_new(o, "series", json_integer((json_int_t)j->series_index + 1));
        json_object_set_new(o, "wall_ms", json_integer((json_int_t)j->wall_ms));
        json_object_set_new(o, "peak_rss_kb", json_integer((json_int_t)j->peak_rss_kb));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *build_report(const cert_run *r, const agora__cert_refset *rs, const agora__bundle *b,
                            const uint8_t bundle_sha[32], uint64_t bundle_size, int *passed)
{
    json_t *checks = json_array();
    check_outcome(r, rs, checks);
    check_limits(r, rs, checks);
    check_schema(r, rs, checks);
    check_outputs(r, rs, checks);
    check_determinism(r, rs, checks);
    check_refusal(r, rs, checks);
    check_policy(r, rs, checks);
    *passed = 1;
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) *passed &= json_is_true(json_object_get(c, "passed"));
    char hex[65], date[AGORA__TIME_TEXT];
    agora__hex(bundle_sha, 32, hex);
    agora__time_format(agora__trust_now(), date);
    return json_pack(
        "{s:s, s:s, s:{s:s, s:I}, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:b}, "
        "s:o, s:o, s:o, s:o, s:b}",
        "schema", "agora.certification-report/1", "date", date, "bundle", "sha256", hex, "size",
        (json_int_t)bundle_size, "app", "id", b->parsed.id, "version", b->parsed.version, "vendor",
        b->parsed.vendor, "name", b->parsed.name, "host", "agora_version",
        r->opts->host_version ? r->opts->host_version : "unknown", "memory_cap", r->mechanism,
        "memory_cap_detail", r->mechanism_detail, "mode", "fresh-per-job", "isolation",
        r->opts->allow_weak_isolation ? "weak allowed" : "full", "trap_violations", 1, "declared",
        declared_json(&b->parsed), "reference_set", agora__cert_refset_json(rs), "jobs",
        jobs_json(r, rs), "checks", checks, "passed", *passed);
}

int agora__certcheck_run(const agora__certcheck_opts *opts, json_t **report, int *passed,
                         agora__error *err)
{
    *report = NULL;
    *passed = 0;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    agora__bundle_file *bf = calloc(1, sizeof *bf);
    cert_run *r = calloc(1, sizeof *r);
    job_rec *jobs = calloc(JOBS_MAX, sizeof *jobs);
    agora__cert_refset *rs = calloc(1, sizeof *rs);
    agora__asset assets[AGORA__ASSETS_MAX];
    uint32_t n_assets = 0;
    if (bf == NULL || r == NULL || jobs == NULL || rs == NULL) {
        free(bf);
        free(r);
        free(jobs);
        free(rs);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    bf->fd = -1;
    uint8_t sha[32];
    int rc = agora__bundle_open(opts->bundle_path, bf, err);
    if (rc == 0 && (rc = agora__elf_plugin_check(bf->b.plugin, bf->b.plugin_len, err)) != 0)
        agora__error_prefix(err, "not certified: %s@%s", bf->b.parsed.id, bf->b.parsed.version);
    if (rc == 0)
        rc = agora__copy_hash(bf->fd, 0, bf->file_len, -1, sha, "the bundle", err);
    if (rc == 0)
        rc = load_assets(bf, assets, &n_assets, err);
    if (rc == 0)
        rc = agora__cert_refset_make(&bf->b.parsed, opts->work_dir, opts->reference_dir, rs, err);
    if (rc == 0) {
        const agora__manifest *m = &bf->b.parsed;
        const char *grants[AGORA__OPT_COUNT];
        size_t n_grants = 0;
        for (unsigned i = 0; i < AGORA__OPT_COUNT; i++)
            if ((m->permissions & (1u << i)) && agora__trust_option_name(i) != NULL)
                grants[n_grants++] = agora__trust_option_name(i);
        r->opts = opts;
        r->m = m;
        r->ctx.rs = rs;
        r->ctx.jobs = jobs;
        randombytes_buf(r->uid_key, sizeof r->uid_key);
        r->pl.id = m->id;
        r->pl.version = m->version;
        r->pl.manifest = m;
        r->pl.granted = grants;
        r->pl.n_granted = n_grants;
        agora__jobs_spec_from_manifest(m, bf->b.plugin, bf->b.plugin_len, 0, &r->pl.spec);
        r->pl.spec.fresh_per_job = 1;
        r->pl.spec.allow_weak_isolation = opts->allow_weak_isolation;
        r->pl.spec.trap_violations = 1;
        /* Every job's own outcome is the evidence: no quarantine masking later jobs. */
        r->pl.spec.quarantine_after = JOBS_MAX;
        r->pl.spec.assets = assets;
        r->pl.spec.n_assets = n_assets;
        rc = run_all(r, rs, err);
        sodium_memzero(r->uid_key, sizeof r->uid_key);
    }
    if (rc == 0) {
        *report = build_report(r, rs, &bf->b, sha, bf->file_len, passed);
        if (*report == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory building the report");
    }
    agora__cert_refset_remove(rs);
    for (size_t i = 0; i < r->ctx.n_jobs; i++)
        json_decref(jobs[i].doc);
    agora__assets_close(assets, n_assets);
    agora__bundle_close(bf);
    free(bf);
    free(r);
    free(jobs);
    free(rs);
    return rc;
}

void agora__cert_report_failed(const json_t *report, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "checks"), i, c)
    {
        if (json_is_true(json_object_get(c, "passed")))
            continue;
        size_t l = strlen(buf);
        const char *name = json_string_value(json_object_get(c, "name"));
        snprintf(buf + l, size - l, "%s%s", l ? ", " : "", name ? name : "?");
    }
}
