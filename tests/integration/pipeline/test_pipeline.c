/*
 * The run pipeline library (host/pipeline) driven directly, as a daemon would, not through the
 * CLI: synthetic series (host/synth), the real agora-runner and sandbox, the example 'stats'
 * plugin, and a hostile plugin that crashes. Checks that the callbacks fire with the right
 * counts, that every outcome is reported exactly once with its classified status, and that with
 * a store home and a ledger each validated result is stored and every invocation recorded.
 *
 * Environment (set by meson): AGORA_RUNNER, PLUGIN_DIR (build/plugins-examples: stats.so and
 * stats.manifest.json), HOSTILE_DIR (build/tests/hostile: hostile_segfault.so); PIPELINE_TEST_TRACE
 * set: print each outcome to stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "jobs.h"
#include "ledger.h"
#include "pipeline.h"
#include "results.h"
#include "synth.h"

#define N_SERIES 2

/* What the callbacks saw. */
typedef struct seen {
    size_t scans, scan_series, starts, outcomes, ok, validated, failed_ran;
    size_t series_hit[8];
    char last_status[32], last_error[256], invocation[N_SERIES][64];
    agora__job_status last_job_status;
    size_t cancelled;
    agora__pipeline *cancel_pipe; /* non-NULL: cancel it from the first outcome */
} seen;

static int on_scan(void *arg, const agora__dicom_scan *scan)
{
    seen *s = arg;
    s->scans++;
    s->scan_series = scan->n_series;
    return 0;
}

static void on_start(void *arg, size_t job, size_t n_jobs, const agora__pipeline_plugin *pl,
                     size_t series_index, const char *label)
{
    seen *s = arg;
    assert_non_null(pl);
    assert_non_null(label);
    assert_true(job >= 1 && job <= n_jobs);
    assert_true(series_index < n_jobs);
    s->starts++;
}

static void on_outcome(void *arg, const agora__pipeline_outcome *o)
{
    seen *s = arg;
    assert_non_null(o->status);
    assert_non_null(o->error);
    if (o->series_index < 8)
        s->series_hit[o->series_index]++;
    snprintf(s->last_status, sizeof s->last_status, "%s", o->status);
    snprintf(s->last_error, sizeof s->last_error, "%s", o->error);
    s->last_job_status = o->job_status;
    if (o->end == AGORA__PIPELINE_RAN && strcmp(o->status, "ok") == 0)
        s->ok++;
    else if (o->end == AGORA__PIPELINE_RAN)
        s->failed_ran++;
    if (o->validated) {
        s->validated++;
        assert_non_null(o->doc);
    }
    if (s->outcomes < N_SERIES)
        snprintf(s->invocation[s->outcomes], sizeof s->invocation[0], "%s", o->invocation_id);
    if (getenv("PIPELINE_TEST_TRACE"))
        fprintf(stderr, "outcome end=%d status=%s job=%zu/%zu series=%zu error=%s\n", (int)o->end,
                o->status, o->job, o->n_jobs, o->series_index, o->error);
    if (o->end == AGORA__PIPELINE_CANCELLED) {
        assert_string_equal(o->status, "cancelled");
        assert_false(o->validated);
        s->cancelled++;
    }
    s->outcomes++;
    if (s->cancel_pipe != NULL && s->outcomes == 1)
        agora__pipeline_cancel(s->cancel_pipe);
}

static char tmp_root[4096];
static char study_dirs[N_SERIES][4096];
static agora__synth_planted planted[N_SERIES];

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmp_root, sizeof tmp_root, "%s/agora-pipeline-XXXXXX", base);
    if (mkdtemp(tmp_root) == NULL)
        return -1;
    for (int i = 0; i < N_SERIES; i++) {
        snprintf(study_dirs[i], sizeof study_dirs[i], "%s/in/s%d", tmp_root, i);
        agora__synth_opts o = {.ct = i == 0,
                               .slices = 3,
                               .rows = 32,
                               .cols = 32,
                               .seed = 1000u + (unsigned)i,
                               .have_seed = 1,
                               .out = study_dirs[i],
                               .burned_in = 0};
        agora__error err = {0};
        if (agora__synth_write(&o, &planted[i], &err) != 0) {
            fprintf(stderr, "synth: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* One pipeline under test, what its callbacks saw and its one plugin. Lives on the test's
 * stack: the callbacks point into it. */
typedef struct run {
    seen s;
    agora__pipeline *p;
    agora__manifest m;
    uint8_t *bytes; /* the plugin build, borrowed by the pipeline until run_close */
    agora__pipeline_plugin pl;
} run;

static void run_open(run *r, const char *home, agora__ledger *ledger)
{
    memset(r, 0, sizeof *r);
    agora__pipeline_config cfg = {
        .store_home = home,
        .ledger = ledger,
        .cb = {.on_scan = on_scan, .on_start = on_start, .on_outcome = on_outcome, .arg = &r->s},
    };
    randombytes_buf(cfg.uid_key, sizeof cfg.uid_key);
    agora__error err = {0};
    if (agora__pipeline_new(NULL, &cfg, &r->p, &err) != 0)
        fail_msg("pipeline_new: %s", err.msg);
}

/* Describe the plugin build so_path ("" for the stats example) with the stats manifest (it
 * declares every modality and a 128 MiB memory cap, fine for the crashing plugin too). */
static void run_load(run *r, const char *so_path)
{
    const char *pdir = getenv("PLUGIN_DIR");
    assert_non_null(pdir);
    char mpath[4096], stats[4096];
    snprintf(mpath, sizeof mpath, "%s/stats.manifest.json", pdir);
    snprintf(stats, sizeof stats, "%s/stats.so", pdir);
    if (so_path[0] == '\0')
        so_path = stats;
    agora__error err = {0};
    uint8_t *mb = NULL;
    size_t mlen = 0, plen = 0;
    assert_int_equal(agora__read_file(mpath, AGORA__TRUST_MANIFEST_MAX, &mb, &mlen, &err), 0);
    assert_int_equal(agora__manifest_parse(mb, mlen, &r->m, &err), 0);
    free(mb);
    assert_int_equal(agora__read_file(so_path, AGORA__TRUST_PLUGIN_MAX, &r->bytes, &plen, &err), 0);
    r->pl.id = r->m.id;
    r->pl.version = r->m.version;
    r->pl.manifest = &r->m;
    r->pl.every_series = 1;
    agora__jobs_spec_from_manifest(&r->m, r->bytes, plen, 30, &r->pl.spec);
}

static void run_add(run *r)
{
    agora__error err = {0};
    int idx = agora__pipeline_add_plugin(r->p, &r->pl, &err);
    if (idx < 0)
        fail_msg("add_plugin: %s", err.msg);
    assert_int_equal(idx, 0);
    assert_int_equal(agora__pipeline_n_plugins(r->p), 1);
}

static void run_scan(run *r)
{
    char in[4096];
    snprintf(in, sizeof in, "%s/in", tmp_root);
    const char *paths[] = {in};
    agora__error err = {0};
    if (agora__pipeline_scan(r->p, paths, 1, &err) != 0)
        fail_msg("scan: %s", err.msg);
    assert_int_equal(r->s.scans, 1);
    assert_int_equal(r->s.scan_series, N_SERIES);
    assert_int_equal(agora__pipeline_scanned(r->p)->n_series, N_SERIES);
}

/* Dispatch every job; the pipeline itself succeeds whatever the jobs' outcomes. */
static void run_dispatch(run *r)
{
    assert_int_equal(agora__pipeline_job_count(r->p), N_SERIES);
    agora__error err = {0};
    if (agora__pipeline_dispatch(r->p, &err) != 0)
        fail_msg("dispatch: %s", err.msg);
    assert_int_equal(r->s.outcomes, N_SERIES);
}

/* Every job started, ran ok and passed validation. */
static void assert_all_ok(const run *r)
{
    assert_int_equal(r->s.starts, N_SERIES);
    assert_int_equal(r->s.ok, N_SERIES);
    assert_int_equal(r->s.validated, N_SERIES);
}

static void run_close(run *r)
{
    agora__pipeline_free(r->p);
    free(r->bytes);
}

/* No home (dev run's shape): one job per series, each ok, start and outcome counts equal. */
static void test_stats_every_series(void **state)
{
    (void)state;
    run r;
    run_open(&r, NULL, NULL);
    run_scan(&r); /* dev run's order: the sandbox starts once there is something to run */
    run_load(&r, "");
    run_add(&r);
    run_dispatch(&r);
    assert_all_ok(&r);
    for (size_t i = 0; i < N_SERIES; i++) {
        assert_int_equal(r.s.series_hit[i], 1);
        assert_string_equal(r.s.invocation[i], ""); /* not metered without a ledger */
    }
    run_close(&r);
}

/* With a store home and a ledger (agora run's shape): every invocation gets a ledger id and is
 * recorded, and each validated result is stored under the real Study UID. */
static void test_store_and_meter(void **state)
{
    (void)state;
    char home[4096];
    snprintf(home, sizeof home, "%s/home", tmp_root);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", home);
    assert_int_equal(system(cmd), 0);
    uint8_t bill_key[32];
    randombytes_buf(bill_key, sizeof bill_key);
    agora__ledger *ledger = NULL;
    agora__error err = {0};
    if (agora__ledger_open(home, bill_key, &ledger, &err) != 0)
        fail_msg("ledger_open: %s", err.msg);

    run r;
    run_open(&r, home, ledger);
    run_load(&r, "");
    agora__ledger_pricing pricing = {
        .plugin_id = r.m.id,
        .plugin_version = r.m.version,
        .vendor = "Agora Examples",
        .catalog_version = 1,
        .model = AGORA__MODEL_PER_SERIES,
        .price_minor = 10,
        .currency = "EUR",
        .vendor_share_bps = 7000,
    };
    r.pl.pricing = &pricing;
    run_add(&r); /* agora run's order: plugins first, then the scan */
    run_scan(&r);
    run_dispatch(&r);
    assert_all_ok(&r);

    for (size_t i = 0; i < N_SERIES; i++) {
        assert_int_equal(strlen(r.s.invocation[i]), AGORA__LEDGER_ID_LEN);
        int64_t seq = -1;
        if (agora__ledger_seq_of(ledger, r.s.invocation[i], &seq, &err) != 0)
            fail_msg("invocation %s not in the ledger: %s", r.s.invocation[i], err.msg);
        assert_true(seq > 0);
    }
    int64_t bad = -1, rows = 0;
    assert_int_equal(agora__ledger_verify(ledger, &bad, &rows, &err), 0);
    assert_int_equal(rows, N_SERIES);

    /* Stored under the real (re-identified) Study UID of each synthetic series. */
    for (size_t i = 0; i < N_SERIES; i++) {
        json_t *list = NULL;
        if (agora__results_list(home, planted[i].study_uid, &list, &err) != 0)
            fail_msg("results_list: %s", err.msg);
        assert_int_equal(json_array_size(list), 1);
        json_decref(list);
    }
    run_close(&r);
    agora__ledger_close(ledger);
}

/* A plugin that crashes: one outcome per series, RAN with a failure status and its reason,
 * nothing validated, and the pipeline itself reports success (every job reported). */
static void test_crashing_plugin(void **state)
{
    (void)state;
    const char *hdir = getenv("HOSTILE_DIR");
    assert_non_null(hdir);
    char so[4096];
    snprintf(so, sizeof so, "%s/hostile_segfault.so", hdir);
    run r;
    run_open(&r, NULL, NULL);
    run_scan(&r);
    run_load(&r, so);
    /* The hostile build names itself; the stats manifest is borrowed for its resources. */
    r.pl.id = r.pl.spec.plugin_id = "org.agora.test.hostile";
    r.pl.version = r.pl.spec.plugin_version = "1.0.0";
    r.pl.spec.fresh_per_job = 1; /* no warm-pool retries to reason about */
    run_add(&r);
    run_dispatch(&r);
    assert_int_equal(r.s.ok, 0);
    assert_int_equal(r.s.validated, 0);
    assert_int_equal(r.s.failed_ran, N_SERIES);
    assert_int_equal(r.s.last_job_status, AGORA__JOB_SIGNAL);
    assert_string_not_equal(r.s.last_status, "ok");
    assert_true(r.s.last_error[0] != '\0');
    run_close(&r);
}

/* Cancelled from the first outcome (as a daemon's signal handle would): the job not yet
 * dispatched is still reported, once, as cancelled, and never started. */
static void test_cancel(void **state)
{
    (void)state;
    run r;
    run_open(&r, NULL, NULL);
    r.s.cancel_pipe = r.p;
    run_scan(&r);
    run_load(&r, "");
    run_add(&r);
    run_dispatch(&r);
    assert_int_equal(r.s.starts, 1);
    assert_int_equal(r.s.ok, 1);
    assert_int_equal(r.s.cancelled, N_SERIES - 1);
    assert_string_equal(r.s.last_status, "cancelled");
    run_close(&r);
}

/* An input that does not exist: the scan fails with a message and no callback runs; dispatch
 * then refuses, there being no scan. */
static void test_missing_input(void **state)
{
    (void)state;
    run r;
    run_open(&r, NULL, NULL);
    char in[4096];
    snprintf(in, sizeof in, "%s/does-not-exist", tmp_root);
    const char *paths[] = {in};
    agora__error err = {0};
    assert_true(agora__pipeline_scan(r.p, paths, 1, &err) < 0);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(r.s.scans, 0);
    agora__error derr = {0};
    assert_true(agora__pipeline_dispatch(r.p, &derr) < 0);
    assert_true(derr.msg[0] != '\0');
    assert_int_equal(r.s.outcomes, 0);
    run_close(&r);
}

int main(void)
{
    if (getenv("AGORA_RUNNER") == NULL || getenv("PLUGIN_DIR") == NULL) {
        fprintf(stderr, "skipped: AGORA_RUNNER and PLUGIN_DIR must be set (run through meson)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_every_series), cmocka_unit_test(test_store_and_meter),
        cmocka_unit_test(test_crashing_plugin),    cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_missing_input),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
