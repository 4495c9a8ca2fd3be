/* The pool with the real agora-runner: each outcome is classified, only its job fails, and the
 * next job on the same warm pool succeeds; quarantine, timeout, cancel, recycle, fork-per-job;
 * and the sandbox's hostile plugins classified through the pool.
 * Environment (set by meson): AGORA_RUNNER, MISBEHAVE_PLUGIN, HOSTILE_DIR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

typedef struct outcome {
    int done;
    agora__job_status status;
    int signal;
    char error[512];
    char *doc;
    uint8_t *masks;
    uint64_t masks_len;
    double jobs;
} outcome;

static uv_loop_t loop;
static const char *runner, *misbehave, *hostile_dir;
static agora__pixbuf pixels; /* 2 frames of 4x4 u8 */

static void on_done(agora__job_result *res, void *arg)
{
    outcome *o = arg;
    o->done = 1;
    o->status = res->status;
    o->signal = res->signal;
    snprintf(o->error, sizeof o->error, "%s", res->error);
    o->doc = json_dumps(res->doc, JSON_SORT_KEYS | JSON_COMPACT);
    o->jobs = -1;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(res->doc, "measurements"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), "jobs") == 0)
            o->jobs = json_real_value(json_object_get(m, "value"));
    }
    o->masks = res->masks;
    o->masks_len = res->masks_len;
    res->masks = NULL;
}

static void outcome_free(outcome *o)
{
    free(o->doc);
    free(o->masks);
    memset(o, 0, sizeof *o);
}

typedef struct loaded {
    uint8_t *bytes;
    size_t len;
} loaded;

static agora__plugin_spec spec_for(const char *path, const char *id, loaded *l)
{
    agora__error err;
    if (agora__read_file(path, 64u << 20, &l->bytes, &l->len, &err) < 0)
        fail_msg("%s", err.msg);
    agora__plugin_spec s;
    memset(&s, 0, sizeof s);
    s.runner_path = runner;
    s.plugin_bytes = l->bytes;
    s.plugin_size = l->len;
    agora__sha256(l->bytes, l->len, s.plugin_sha256);
    s.plugin_id = id;
    s.plugin_version = "1.0.0";
    s.workers = 1;
    s.quarantine_after = 100;
    s.timeout_ms = 1500;
    s.setup_timeout_ms = 10000;
    s.cancel_grace_ms = 500;
    s.limits.memory_bytes = (uint64_t)64 << 20;
    return s;
}

static agora__pool *new_pool(const agora__plugin_spec *s)
{
    agora__pool *p = NULL;
    agora__error err = {0};
    if (agora__pool_new(&loop, s, &p, &err) != 0)
        fail_msg("pool_new: %s", err.msg);
    return p;
}

static int submit(agora__pool *p, const char *behave, outcome *o, uint64_t *id)
{
    agora__attr a = {"Behave", behave};
    agora__job_input in;
    memset(&in, 0, sizeof in);
    in.rows = 4;
    in.columns = 4;
    in.frames = 2;
    in.samples_per_pixel = 1;
    in.pixel_type = AGORA_PIXEL_U8;
    in.bits_stored = 8;
    in.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    in.rescale_slope = 1;
    in.modality = "CT";
    in.attrs = &a;
    in.n_attrs = behave ? 1 : 0;
    in.pixels = &pixels;
    in.output_bytes = 64;
    memset(o, 0, sizeof *o);
    agora__error err = {0};
    int rc = agora__pool_submit(p, &in, on_done, o, id, &err);
    if (rc != 0 && rc != AGORA_ESTATE)
        fail_msg("submit: %s", err.msg);
    return rc;
}

static void wait_for(outcome *o)
{
    uint64_t end = agora__now_ns() + 60ull * 1000000000ull;
    while (!o->done && agora__now_ns() < end)
        uv_run(&loop, UV_RUN_ONCE);
    if (!o->done)
        fail_msg("job did not complete");
}

static void run_one(agora__pool *p, const char *behave, outcome *o)
{
    assert_int_equal(submit(p, behave, o, NULL), 0);
    wait_for(o);
}

static int closed;
static void on_closed(void *arg)
{
    (void)arg;
    closed = 1;
}

static void close_pool(agora__pool *p)
{
    closed = 0;
    agora__pool_close(p, on_closed, NULL);
    uint64_t end = agora__now_ns() + 20ull * 1000000000ull;
    while (!closed && agora__now_ns() < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(closed);
}

static void expect(const outcome *o, const char *what, agora__job_status st, const char *needle)
{
    if (o->status != st || (needle && strstr(o->error, needle) == NULL))
        fail_msg("%s: got %s (%s), expected %s mentioning \"%s\"", what,
                 agora__job_status_name(o->status), o->error, agora__job_status_name(st),
                 needle ? needle : "");
}

static void test_each_outcome_then_ok(void **state)
{
    (void)state;
    static const struct {
        const char *behave;
        agora__job_status status;
        const char *needle;
    } cases[] = {
        {"segv", AGORA__JOB_SIGNAL, "signal 11"},
        {"forbidden", AGORA__JOB_POLICY_VIOLATION, "SIGSYS"},
        {"plugin-error", AGORA__JOB_PLUGIN_ERROR, "not my kind of image"},
        {"enomem", AGORA__JOB_OUT_OF_MEMORY, "allocation failed"},
        {"garbage", AGORA__JOB_PROTOCOL_ERROR, "protocol error"},
        {"oversized", AGORA__JOB_PROTOCOL_ERROR, "exceeds the cap"},
        {"spin", AGORA__JOB_TIMEOUT, "4000 ms"},
    };
    loaded l;
    agora__plugin_spec s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    /* Room for filling the memory limit on a slow, loaded VM. */
    s.timeout_ms = 4000;
    s.limits.memory_bytes = (uint64_t)48 << 20;
    agora__pool *p = new_pool(&s);
    outcome o;
    run_one(p, "ok", &o);
    expect(&o, "first job", AGORA__JOB_OK, NULL);
    outcome_free(&o);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_one(p, cases[i].behave, &o);
        expect(&o, cases[i].behave, cases[i].status, cases[i].needle);
        assert_non_null(strstr(o.doc, agora__job_status_name(cases[i].status)));
        outcome_free(&o);
        run_one(p, "ok", &o);
        expect(&o, "job after a failure", AGORA__JOB_OK, NULL);
        outcome_free(&o);
    }
    /* Masks come back through the output memfd, copied and hashed. */
    run_one(p, "mask", &o);
    expect(&o, "mask", AGORA__JOB_OK, NULL);
    assert_int_equal(o.masks_len, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(o.masks[i], i % 3 == 0);
    assert_non_null(strstr(o.doc, "\"kind\":\"mask\""));
    assert_non_null(strstr(o.doc, "\"label\":\"every third pixel\""));
    outcome_free(&o);
    assert_int_equal(agora__pool_quarantined(p, NULL, 0), 0);
    close_pool(p);
    free(l.bytes);
}

static void test_quarantine(void **state)
{
    (void)state;
    loaded l;
    agora__plugin_spec s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    s.quarantine_after = 2;
    agora__pool *p = new_pool(&s);
    outcome o[3];
    assert_int_equal(submit(p, "segv", &o[0], NULL), 0);
    assert_int_equal(submit(p, "forbidden", &o[1], NULL), 0);
    assert_int_equal(submit(p, "ok", &o[2], NULL), 0);
    wait_for(&o[2]);
    expect(&o[0], "first", AGORA__JOB_SIGNAL, NULL);
    expect(&o[1], "second", AGORA__JOB_POLICY_VIOLATION, NULL);
    expect(&o[2], "queued", AGORA__JOB_QUARANTINED, "2 consecutive failures");
    outcome x;
    assert_int_equal(submit(p, "ok", &x, NULL), AGORA_ESTATE);
    for (int i = 0; i < 3; i++)
        outcome_free(&o[i]);
    close_pool(p);
    free(l.bytes);
}

static void settle(int ms)
{
    uint64_t end = agora__now_ns() + (uint64_t)ms * 1000000u;
    while (agora__now_ns() < end)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_cancel(void **state)
{
    (void)state;
    loaded l;
    agora__plugin_spec s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    s.timeout_ms = 20000;
    agora__pool *p = new_pool(&s);
    outcome a, b;
    uint64_t ida, idb;
    run_one(p, "ok", &a); /* warm */
    outcome_free(&a);
    agora__pool_stats st0, st1;
    agora__pool_get_stats(p, &st0);
    /* Cooperative: the plugin sees cancelled() and returns; the worker stays. */
    assert_int_equal(submit(p, "spin-cancellable", &a, &ida), 0);
    settle(200);
    assert_int_equal(agora__pool_cancel(p, ida, NULL), 0);
    wait_for(&a);
    expect(&a, "cooperative cancel", AGORA__JOB_CANCELLED, NULL);
    agora__pool_get_stats(p, &st1);
    assert_int_equal(st1.killed, st0.killed);
    /* Deaf: killed after the grace period, still only "cancelled". */
    assert_int_equal(submit(p, "spin", &b, &idb), 0);
    settle(200);
    assert_int_equal(agora__pool_cancel(p, idb, NULL), 0);
    wait_for(&b);
    expect(&b, "deaf cancel", AGORA__JOB_CANCELLED, "killed");
    agora__pool_get_stats(p, &st1);
    assert_int_equal(st1.killed, st0.killed + 1);
    outcome_free(&a);
    outcome_free(&b);
    run_one(p, "ok", &a);
    expect(&a, "after cancels", AGORA__JOB_OK, NULL);
    outcome_free(&a);
    close_pool(p);
    free(l.bytes);
}

static void test_recycle(void **state)
{
    (void)state;
    loaded l;
    agora__plugin_spec s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    s.max_jobs_per_worker = 2;
    agora__pool *p = new_pool(&s);
    for (int i = 0; i < 5; i++) {
        outcome o;
        run_one(p, "ok", &o);
        expect(&o, "recycled pool", AGORA__JOB_OK, NULL);
        /* The plugin's own job counter restarts in every new worker. */
        assert_true(o.jobs == (double)(i % 2 + 1));
        outcome_free(&o);
    }
    agora__pool_stats st;
    agora__pool_get_stats(p, &st);
    assert_true(st.recycled >= 2);
    assert_true(st.spawned >= 3);
    close_pool(p);
    free(l.bytes);
}

static void test_fork_per_job(void **state)
{
    (void)state;
    loaded l;
    agora__plugin_spec s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    s.fork_per_job = 1;
    agora__pool *p = new_pool(&s);
    outcome o;
    for (int i = 0; i < 3; i++) {
        run_one(p, "ok", &o);
        expect(&o, "fork-per-job", AGORA__JOB_OK, NULL);
        assert_true(o.jobs == 1.0); /* nothing carried from the previous job */
        outcome_free(&o);
    }
    run_one(p, "segv", &o);
    expect(&o, "fork-per-job crash", AGORA__JOB_SIGNAL, NULL);
    outcome_free(&o);
    run_one(p, "forbidden", &o);
    expect(&o, "fork-per-job SIGSYS", AGORA__JOB_POLICY_VIOLATION, NULL);
    outcome_free(&o);
    run_one(p, "ok", &o);
    expect(&o, "fork-per-job after crashes", AGORA__JOB_OK, NULL);
    outcome_free(&o);
    /* Masks come back through the job's own output memfd on the job channel path. */
    run_one(p, "mask", &o);
    expect(&o, "fork-per-job mask", AGORA__JOB_OK, NULL);
    assert_non_null(o.masks);
    outcome_free(&o);
    /* Cancel reaches the job process on its own channel; the zygote is not killed. */
    uint64_t id;
    assert_int_equal(submit(p, "spin-cancellable", &o, &id), 0);
    settle(200);
    assert_int_equal(agora__pool_cancel(p, id, NULL), 0);
    wait_for(&o);
    expect(&o, "fork-per-job cooperative cancel", AGORA__JOB_CANCELLED, NULL);
    outcome_free(&o);
    agora__pool_stats st;
    agora__pool_get_stats(p, &st);
    assert_int_equal(st.spawned, 1); /* the zygote survived */
    assert_int_equal(st.killed, 0);
    /* A job process that writes garbage on its channel fails its job; the next job runs in a
     * fresh worker. */
    run_one(p, "garbage", &o);
    expect(&o, "fork-per-job garbage", AGORA__JOB_PROTOCOL_ERROR, "protocol error");
    outcome_free(&o);
    run_one(p, "ok", &o);
    expect(&o, "fork-per-job after garbage", AGORA__JOB_OK, NULL);
    assert_true(o.jobs == 1.0);
    outcome_free(&o);
    close_pool(p);
    free(l.bytes);
}

/* The carry-over probes through the pool: the host side accepts one Result per job channel and
 * nothing planted in job 1 shows in a later job's document. */
static void run_carry(const char *channel, int fresh, int jobs, agora__job_status want_last)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/carry_%s.so", hostile_dir, channel);
    loaded l;
    agora__plugin_spec s = spec_for(path, "org.agora.test.hostile", &l);
    s.fork_per_job = !fresh;
    s.fresh_per_job = fresh;
    if (want_last == AGORA__JOB_QUARANTINED)
        s.quarantine_after = 1; /* a setup refusal: the job is refused with its reason */
    agora__pool *p = new_pool(&s);
    outcome o;
    for (int i = 0; i < jobs; i++) {
        run_one(p, NULL, &o);
        if (strstr(o.doc, "FOUND") != NULL || strstr(o.error, "FOUND") != NULL)
            fail_msg("%s (%s): job %d carried data: %s", channel, fresh ? "fresh" : "fork", i + 1,
                     o.doc);
        if (i + 1 == jobs)
            expect(&o, channel, want_last,
                   want_last == AGORA__JOB_QUARANTINED ? "left threads running" : NULL);
        outcome_free(&o);
    }
    close_pool(p);
    free(l.bytes);
}

static void test_fork_carry(void **state)
{
    (void)state;
    run_carry("global", 0, 3, AGORA__JOB_OK);
    run_carry("job_thread", 0, 3, AGORA__JOB_OK);
    run_carry("output", 0, 3, AGORA__JOB_OK);
    /* A forged Result followed by the real one: the host takes at most one per job channel. */
    run_carry("forge", 0, 2, AGORA__JOB_PROTOCOL_ERROR);
    run_carry("thread", 0, 1, AGORA__JOB_QUARANTINED);
}

static void test_fresh_per_job(void **state)
{
    (void)state;
    loaded l;
    agora__plugin_spec s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    s.fresh_per_job = 1;
    s.timeout_ms = 20000;
    agora__pool *p = new_pool(&s);
    outcome o;
    for (int i = 0; i < 4; i++) {
        run_one(p, "ok", &o);
        expect(&o, "fresh-per-job", AGORA__JOB_OK, NULL);
        assert_true(o.jobs == 1.0); /* a new process: the plugin's counter starts again */
        outcome_free(&o);
    }
    run_one(p, "segv", &o);
    expect(&o, "fresh-per-job crash", AGORA__JOB_SIGNAL, NULL);
    outcome_free(&o);
    run_one(p, "ok", &o);
    expect(&o, "fresh-per-job after a crash", AGORA__JOB_OK, NULL);
    outcome_free(&o);
    /* The spare does not take a second job while one runs (workers = 1): b waits for a. */
    outcome a, b;
    uint64_t ida;
    assert_int_equal(submit(p, "spin-cancellable", &a, &ida), 0);
    assert_int_equal(submit(p, "ok", &b, NULL), 0);
    settle(1000); /* a spare is up well within this; it must still wait */
    assert_false(b.done);
    assert_int_equal(agora__pool_cancel(p, ida, NULL), 0);
    wait_for(&a);
    wait_for(&b);
    expect(&a, "fresh-per-job cancel", AGORA__JOB_CANCELLED, NULL);
    expect(&b, "fresh-per-job queued behind", AGORA__JOB_OK, NULL);
    outcome_free(&a);
    outcome_free(&b);
    agora__pool_stats st;
    agora__pool_get_stats(p, &st);
    assert_true(st.spawned >= 8);
    assert_true(st.recycled >= 7);
    close_pool(p);
    free(l.bytes);
    /* Refused together with fork mode. */
    s = spec_for(misbehave, "org.agora.test.misbehave", &l);
    s.fresh_per_job = 1;
    s.fork_per_job = 1;
    agora__pool *bad = NULL;
    agora__error err = {0};
    assert_int_not_equal(agora__pool_new(&loop, &s, &bad, &err), 0);
    assert_non_null(strstr(err.msg, "choose one"));
    free(l.bytes);
    run_carry("global", 1, 3, AGORA__JOB_OK);
    run_carry("pipe_init", 1, 3, AGORA__JOB_OK);
}

static void test_hostile_plugins(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        agora__job_status status;
        const char *needle;
    } cases[] = {
        {"segfault", AGORA__JOB_SIGNAL, "signal 11"},
        {"fork", AGORA__JOB_POLICY_VIOLATION, "SIGSYS"},
        {"kill_parent", AGORA__JOB_POLICY_VIOLATION, "SIGSYS"},
        {"sendfd", AGORA__JOB_POLICY_VIOLATION, "SIGSYS"},
        {"read_file", AGORA__JOB_PLUGIN_ERROR, "blocked"},
        {"memory", AGORA__JOB_OUT_OF_MEMORY, "allocation failed"},
        {"garbage", AGORA__JOB_PROTOCOL_ERROR, "protocol error"},
        {"oversized", AGORA__JOB_PROTOCOL_ERROR, "exceeds the cap"},
        {"spin", AGORA__JOB_TIMEOUT, "1500 ms"},
        /* Attacks from a constructor fail setup: with quarantine_after 1 the job is refused
         * with the setup failure as the reason. */
        {"fork_ctor", AGORA__JOB_QUARANTINED, "SIGSYS"},
        {"segfault_ctor", AGORA__JOB_QUARANTINED, "signal 11"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/hostile_%s.so", hostile_dir, cases[i].name);
        loaded l;
        agora__plugin_spec s = spec_for(path, "org.agora.test.hostile", &l);
        s.quarantine_after = 1;
        if (cases[i].status == AGORA__JOB_OUT_OF_MEMORY)
            s.timeout_ms = 30000; /* first-touch page faults are slow on these VMs */
        agora__pool *p = new_pool(&s);
        outcome o;
        run_one(p, NULL, &o);
        expect(&o, cases[i].name, cases[i].status, cases[i].needle);
        outcome_free(&o);
        close_pool(p);
        free(l.bytes);
    }
}

int main(void)
{
    runner = getenv("AGORA_RUNNER");
    misbehave = getenv("MISBEHAVE_PLUGIN");
    hostile_dir = getenv("HOSTILE_DIR");
    if (runner == NULL || misbehave == NULL || hostile_dir == NULL) {
        fprintf(stderr, "AGORA_RUNNER, MISBEHAVE_PLUGIN, HOSTILE_DIR must be set (meson does)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    agora__error err;
    if (agora__pixbuf_create(32, &pixels, &err) < 0)
        return 1;
    for (int i = 0; i < 32; i++)
        ((uint8_t *)pixels.data)[i] = (uint8_t)i;
    if (agora__pixbuf_seal(&pixels, &err) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_outcome_then_ok),
        cmocka_unit_test(test_quarantine),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_recycle),
        cmocka_unit_test(test_fork_per_job),
        cmocka_unit_test(test_fork_carry),
        cmocka_unit_test(test_fresh_per_job),
        cmocka_unit_test(test_hostile_plugins),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    agora__pixbuf_free(&pixels);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "the loop still has open handles after every pool closed\n");
        return 1;
    }
    return rc;
}
