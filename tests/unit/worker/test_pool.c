/* The pool against a fake runner: every outcome is classified, only its job fails, and the next
 * job on the same pool succeeds; timeouts, cancellation, recycling, quarantine, fork-per-job,
 * closing. The fake runner path comes from $AGORA_FAKE_RUNNER (set by meson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <elf.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

typedef struct outcome {
    int done;
    agora__job_status status;
    int signal;
    char error[512];
    char *doc;
    uint8_t *masks;
    uint64_t masks_len;
    double sum, pid, jobs;
} outcome;

static uv_loop_t loop;
static const char *fake;

static double measurement(json_t *doc, const char *name)
{
    json_t *ms = json_object_get(doc, "measurements");
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
            return json_real_value(json_object_get(m, "value"));
    }
    return -1;
}

static void on_done(agora__job_result *res, void *arg)
{
    outcome *o = arg;
    o->done = 1;
    o->status = res->status;
    o->signal = res->signal;
    snprintf(o->error, sizeof o->error, "%s", res->error);
    o->doc = json_dumps(res->doc, JSON_SORT_KEYS | JSON_COMPACT);
    o->sum = measurement(res->doc, "sum");
    o->pid = measurement(res->doc, "pid");
    o->jobs = measurement(res->doc, "jobs");
    o->masks = res->masks; /* taken */
    o->masks_len = res->masks_len;
    res->masks = NULL;
}

static void outcome_free(outcome *o)
{
    free(o->doc);
    free(o->masks);
    memset(o, 0, sizeof *o);
}

static const char *plugin_text = "fake-plugin setup=ok";

/* The pool resolves the plugin's libraries from its ELF dynamic section before starting any
 * runner: the fake's text rides behind a minimal x86-64 ELF64 shared-object header (one PT_NULL
 * program header, no PT_DYNAMIC: nothing to load). */
static agora__plugin_spec spec_for(const char *text)
{
    static uint8_t bufs[8][512];
    static unsigned next;
    uint8_t *b = bufs[next++ % 8];
    memset(b, 0, 120);
    Elf64_Ehdr eh = {.e_type = ET_DYN, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                     .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
                     .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    memcpy(b, &eh, sizeof eh);
    size_t hdr = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
    size_t tl = strlen(text);
    memcpy(b + hdr, text, tl);
    agora__plugin_spec s;
    memset(&s, 0, sizeof s);
    s.runner_path = fake;
    s.plugin_bytes = b;
    s.plugin_size = hdr + tl;
    agora__sha256(b, hdr + tl, s.plugin_sha256);
    s.plugin_id = "com.example.fake";
    s.plugin_version = "1.0.0";
    s.workers = 1;
    s.quarantine_after = 100;
    s.timeout_ms = 5000;
    s.setup_timeout_ms = 5000;
    s.cancel_grace_ms = 300;
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

static agora__pixbuf pixels; /* 2 frames of 4x4 u8, bytes 0..31: sum 496 */

static int submit(agora__pool *p, const char *behaviour, outcome *o, uint64_t *id)
{
    agora__attr a = {"fake", behaviour};
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
    in.n_attrs = 1;
    in.pixels = &pixels;
    in.output_bytes = 64;
    agora__error err = {0};
    int rc = agora__pool_submit(p, &in, on_done, o, id, &err);
    return rc;
}

static void wait_for(outcome *o)
{
    uint64_t end = agora__now_ns() + 20ull * 1000000000ull;
    while (!o->done && agora__now_ns() < end)
        uv_run(&loop, UV_RUN_ONCE);
    if (!o->done)
        fail_msg("job did not complete");
}

static void run_one(agora__pool *p, const char *behaviour, outcome *o)
{
    memset(o, 0, sizeof *o);
    assert_int_equal(submit(p, behaviour, o, NULL), 0);
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
    uint64_t end = agora__now_ns() + 10ull * 1000000000ull;
    while (!closed && agora__now_ns() < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(closed);
}

static void expect_ok(agora__pool *p)
{
    outcome o;
    run_one(p, "ok", &o);
    if (o.status != AGORA__JOB_OK)
        fail_msg("expected ok, got %s: %s", agora__job_status_name(o.status), o.error);
    assert_true(o.sum == 496.0);
    outcome_free(&o);
}

static void test_ok_and_mask(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    agora__pool *p = new_pool(&s);
    outcome o;
    run_one(p, "mask", &o);
    assert_int_equal(o.status, AGORA__JOB_OK);
    assert_true(o.sum == 496.0);
    assert_int_equal(o.masks_len, 16);
    assert_int_equal(o.masks[0], 0);
    assert_int_equal(o.masks[1], 1);
    assert_non_null(strstr(o.doc, "\"kind\":\"mask\""));
    assert_non_null(
        strstr(o.doc, "\"plugin\":{\"id\":\"com.example.fake\",\"version\":\"1.0.0\"}"));
    assert_non_null(strstr(o.doc, "\"summary\":\"fake summary\""));
    outcome_free(&o);
    close_pool(p);
}

typedef struct {
    const char *behaviour;
    agora__job_status status;
    int signal;
    const char *needle;
} expectation;

static void test_every_outcome_then_ok(void **state)
{
    (void)state;
    static const expectation cases[] = {
        {"segv", AGORA__JOB_SIGNAL, SIGSEGV, "signal 11"},
        {"sigsys", AGORA__JOB_POLICY_VIOLATION, SIGSYS, "forbidden system call"},
        {"abort", AGORA__JOB_SIGNAL, SIGABRT, "signal 6"},
        {"plugin-error", AGORA__JOB_PLUGIN_ERROR, 0, "not a chest CT"},
        {"enomem", AGORA__JOB_OUT_OF_MEMORY, 0, "AGORA_ENOMEM"},
        {"exit3", AGORA__JOB_PROTOCOL_ERROR, 0, "status 3"},
        {"send-fd", AGORA__JOB_PROTOCOL_ERROR, 0, "descriptor"},
        {"oversize", AGORA__JOB_PROTOCOL_ERROR, 0, "exceeds the cap"},
        {"garbage", AGORA__JOB_PROTOCOL_ERROR, 0, "undecodable"},
        {"bad-result", AGORA__JOB_PROTOCOL_ERROR, 0, "confidence"},
        {"wrong-job", AGORA__JOB_PROTOCOL_ERROR, 0, "not running"},
        {"child-sigsys", AGORA__JOB_POLICY_VIOLATION, SIGSYS, "forbidden system call"},
        /* A SIGKILL the host did not send is not the cap (issue 8): under rlimits the cap
         * makes allocations fail; only the runner's own report says out-of-memory. */
        {"sigkill-self", AGORA__JOB_SIGNAL, SIGKILL, "SIGKILL that the host did not send"},
        {"child-sigkill", AGORA__JOB_SIGNAL, SIGKILL, "signal 9"},
        {"exit-oom", AGORA__JOB_OUT_OF_MEMORY, 0, "memory at its limit"},
        {"child-oom", AGORA__JOB_OUT_OF_MEMORY, 0, "memory at its limit"},
        {"error-job", AGORA__JOB_OUT_OF_MEMORY, 0, "cannot allocate"},
        {"eproto", AGORA__JOB_PROTOCOL_ERROR, 0, "the channel broke"},
        {"close-and-hang", AGORA__JOB_PROTOCOL_ERROR, 0, "closed its channel"},
    };
    agora__plugin_spec s = spec_for(plugin_text);
    agora__pool *p = new_pool(&s);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        outcome o;
        run_one(p, cases[i].behaviour, &o);
        if (o.status != cases[i].status || strstr(o.error, cases[i].needle) == NULL)
            fail_msg("%s: got %s (%s), expected %s mentioning \"%s\"", cases[i].behaviour,
                     agora__job_status_name(o.status), o.error,
                     agora__job_status_name(cases[i].status), cases[i].needle);
        assert_int_equal(o.signal, cases[i].signal);
        assert_non_null(strstr(o.doc, agora__job_status_name(cases[i].status)));
        outcome_free(&o);
        expect_ok(p);
    }
    assert_int_equal(agora__pool_quarantined(p, NULL, 0), 0);
    close_pool(p);
}

static void test_timeout(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    s.timeout_ms = 300;
    agora__pool *p = new_pool(&s);
    outcome o;
    uint64_t t0 = agora__now_ns();
    run_one(p, "sleep", &o);
    uint64_t ms = (agora__now_ns() - t0) / 1000000u;
    assert_int_equal(o.status, AGORA__JOB_TIMEOUT);
    assert_non_null(strstr(o.error, "300 ms"));
    assert_true(ms >= 290 && ms < 3000);
    outcome_free(&o);
    expect_ok(p);
    close_pool(p);
}

static void test_stale_loop_clock(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    s.timeout_ms = 500;
    agora__pool *p = new_pool(&s);
    expect_ok(p);
    /* The caller spends longer than the timeout without running the loop (decoding a series,
     * say), then submits: the job's deadline counts from the submit, not from the loop's last
     * clock update. */
    usleep(800000);
    expect_ok(p);
    close_pool(p);
}

static void test_cancel(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    agora__pool *p = new_pool(&s);
    outcome a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    uint64_t ida, idb, idc;
    assert_int_equal(submit(p, "sleep-cancellable", &a, &ida), 0);
    assert_int_equal(submit(p, "ok", &b, &idb), 0);
    /* Let the first job reach the worker. */
    uint64_t end = agora__now_ns() + 2000000000ull;
    agora__pool_stats st;
    do {
        uv_run(&loop, UV_RUN_NOWAIT);
        agora__pool_get_stats(p, &st);
    } while (st.queued != 1 && agora__now_ns() < end);
    /* Queued: dropped at once. */
    assert_int_equal(agora__pool_cancel(p, idb, NULL), 0);
    assert_true(b.done);
    assert_int_equal(b.status, AGORA__JOB_CANCELLED);
    /* Running and cooperative: the worker answers Cancel and stays. */
    uint64_t spawned = st.spawned;
    usleep(100000);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(agora__pool_cancel(p, ida, NULL), 0);
    wait_for(&a);
    assert_int_equal(a.status, AGORA__JOB_CANCELLED);
    agora__pool_get_stats(p, &st);
    assert_int_equal(st.spawned, spawned);
    /* Running and ignoring Cancel: killed after the grace period, still "cancelled". */
    assert_int_equal(submit(p, "sleep", &c, &idc), 0);
    usleep(100000);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(agora__pool_cancel(p, idc, NULL), 0);
    wait_for(&c);
    assert_int_equal(c.status, AGORA__JOB_CANCELLED);
    assert_non_null(strstr(c.error, "killed"));
    /* Unknown or finished jobs cannot be cancelled. */
    assert_int_equal(agora__pool_cancel(p, ida, NULL), AGORA_EINVAL);
    outcome_free(&a);
    outcome_free(&b);
    outcome_free(&c);
    expect_ok(p);
    assert_int_equal(agora__pool_quarantined(p, NULL, 0), 0);
    close_pool(p);
}

static void test_recycle(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    s.max_jobs_per_worker = 2;
    agora__pool *p = new_pool(&s);
    double pids[5];
    for (int i = 0; i < 5; i++) {
        outcome o;
        run_one(p, "ok", &o);
        assert_int_equal(o.status, AGORA__JOB_OK);
        pids[i] = o.pid;
        assert_true(o.jobs == (double)(i % 2 + 1));
        outcome_free(&o);
    }
    assert_true(pids[0] == pids[1]);
    assert_true(pids[1] != pids[2]);
    assert_true(pids[2] == pids[3]);
    assert_true(pids[3] != pids[4]);
    agora__pool_stats st;
    agora__pool_get_stats(p, &st);
    assert_true(st.recycled >= 2);
    close_pool(p);
}

static void test_quarantine(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    s.quarantine_after = 2;
    agora__pool *p = new_pool(&s);
    outcome o[3];
    memset(o, 0, sizeof o);
    assert_int_equal(submit(p, "segv", &o[0], NULL), 0);
    assert_int_equal(submit(p, "segv", &o[1], NULL), 0);
    assert_int_equal(submit(p, "ok", &o[2], NULL), 0);
    wait_for(&o[2]);
    assert_int_equal(o[0].status, AGORA__JOB_SIGNAL);
    assert_int_equal(o[1].status, AGORA__JOB_SIGNAL);
    assert_int_equal(o[2].status, AGORA__JOB_QUARANTINED);
    assert_non_null(strstr(o[2].error, "quarantined after 2 consecutive failures"));
    char why[300];
    assert_int_equal(agora__pool_quarantined(p, why, sizeof why), 1);
    assert_non_null(strstr(why, "signal 11"));
    outcome x;
    memset(&x, 0, sizeof x);
    assert_int_equal(submit(p, "ok", &x, NULL), AGORA_ESTATE);
    for (int i = 0; i < 3; i++)
        outcome_free(&o[i]);
    close_pool(p);
}

static void test_setup_failures(void **state)
{
    (void)state;
    static const char *texts[] = {"fake-plugin setup=error", "fake-plugin setup=crash",
                                  "fake-plugin setup=wrong-id", "fake-plugin setup=hang"};
    static const char *needles[] = {"init failed: no model", "signal 11", "another plugin id",
                                    "did not become ready"};
    for (int i = 0; i < 4; i++) {
        agora__plugin_spec s = spec_for(texts[i]);
        s.quarantine_after = 2;
        s.setup_timeout_ms = 300;
        agora__pool *p = new_pool(&s);
        outcome o;
        run_one(p, "ok", &o);
        assert_int_equal(o.status, AGORA__JOB_QUARANTINED);
        if (strstr(o.error, needles[i]) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", texts[i], o.error, needles[i]);
        outcome_free(&o);
        close_pool(p);
    }
    /* Bytes that do not match the expected hash never reach a worker. */
    agora__plugin_spec s = spec_for(plugin_text);
    s.plugin_sha256[0] ^= 1;
    agora__pool *p = NULL;
    agora__error err;
    assert_int_equal(agora__pool_new(&loop, &s, &p, &err), AGORA_EINVAL);
    assert_null(p);
}

static void test_fork_per_job(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    s.fork_per_job = 1;
    agora__pool *p = new_pool(&s);
    outcome a, b, c;
    run_one(p, "ok", &a);
    run_one(p, "segv", &b);
    run_one(p, "ok", &c);
    assert_int_equal(a.status, AGORA__JOB_OK);
    assert_int_equal(b.status, AGORA__JOB_SIGNAL);
    assert_int_equal(b.signal, SIGSEGV);
    assert_int_equal(c.status, AGORA__JOB_OK);
    /* Each job ran in a fresh child: no state carried (the job counter restarts at 1). */
    assert_true(a.jobs == 1.0 && c.jobs == 1.0);
    assert_true(a.pid != c.pid);
    agora__pool_stats st;
    agora__pool_get_stats(p, &st);
    assert_int_equal(st.spawned, 1); /* the zygote survived the child's crash */
    outcome_free(&a);
    outcome_free(&b);
    outcome_free(&c);
    close_pool(p);
}

static int progress_calls;
static double last_fraction;
static void on_progress(uint64_t id, double f, void *arg)
{
    (void)id;
    (void)arg;
    progress_calls++;
    last_fraction = f;
}

static void test_progress_log_and_workers(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    s.workers = 3;
    agora__pool *p = new_pool(&s);
    agora__pool_set_progress_cb(p, on_progress, NULL);
    outcome o;
    run_one(p, "progress", &o);
    assert_int_equal(o.status, AGORA__JOB_OK);
    assert_int_equal(progress_calls, 1);
    assert_true(last_fraction == 0.5);
    outcome_free(&o);
    run_one(p, "log", &o);
    assert_int_equal(o.status, AGORA__JOB_OK);
    outcome_free(&o);
    /* Three jobs at once on a pool whose three workers were all started warm. */
    outcome m[3];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++)
        assert_int_equal(submit(p, "ok", &m[i], NULL), 0);
    for (int i = 0; i < 3; i++)
        wait_for(&m[i]);
    agora__pool_stats st;
    agora__pool_get_stats(p, &st);
    assert_int_equal(st.spawned, 3);
    assert_int_equal(st.live_workers, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(m[i].status, AGORA__JOB_OK);
        outcome_free(&m[i]);
    }
    close_pool(p);
}

static void test_close_with_queue_and_bad_input(void **state)
{
    (void)state;
    agora__plugin_spec s = spec_for(plugin_text);
    agora__pool *p = new_pool(&s);
    outcome o[4];
    memset(o, 0, sizeof o);
    assert_int_equal(submit(p, "sleep-cancellable", &o[0], NULL), 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(submit(p, "ok", &o[i], NULL), 0);
    /* Invalid input is refused synchronously. */
    agora__pixbuf unsealed;
    agora__error err;
    assert_int_equal(agora__pixbuf_create(32, &unsealed, &err), 0);
    agora__job_input in;
    memset(&in, 0, sizeof in);
    in.rows = in.columns = 4;
    in.frames = 2;
    in.pixels = &unsealed;
    assert_int_equal(agora__pool_submit(p, &in, on_done, &o[0], NULL, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "not sealed"));
    agora__pixbuf_free(&unsealed);
    in.pixels = &pixels;
    in.output_bytes = (uint64_t)1 << 40;
    assert_int_equal(agora__pool_submit(p, &in, on_done, &o[0], NULL, &err), AGORA_EINVAL);
    in.output_bytes = 0;
    in.modality = "C\xffT";
    assert_int_equal(agora__pool_submit(p, &in, on_done, &o[0], NULL, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "UTF-8"));
    in.modality = "CT";
    agora__attr bad = {"PatientAge", "0\x01"};
    in.attrs = &bad;
    in.n_attrs = 1;
    assert_int_equal(agora__pool_submit(p, &in, on_done, &o[0], NULL, &err), AGORA_EINVAL);
    agora__frame_input fi[2];
    memset(fi, 0, sizeof fi);
    fi[1].offset = 17; /* frame of 16 bytes would end at 33 > 32 */
    in.n_attrs = 0;
    in.frame_info = fi;
    assert_int_equal(agora__pool_submit(p, &in, on_done, &o[0], NULL, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "frame offset"));
    close_pool(p);
    for (int i = 0; i < 4; i++) {
        assert_true(o[i].done);
        assert_int_equal(o[i].status, AGORA__JOB_CANCELLED);
        outcome_free(&o[i]);
    }
}

int main(void)
{
    fake = getenv("AGORA_FAKE_RUNNER");
    if (fake == NULL) {
        fprintf(stderr, "AGORA_FAKE_RUNNER is not set (run through meson test)\n");
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
        cmocka_unit_test(test_ok_and_mask),
        cmocka_unit_test(test_every_outcome_then_ok),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_stale_loop_clock),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_recycle),
        cmocka_unit_test(test_quarantine),
        cmocka_unit_test(test_setup_failures),
        cmocka_unit_test(test_fork_per_job),
        cmocka_unit_test(test_progress_log_and_workers),
        cmocka_unit_test(test_close_with_queue_and_bad_input),
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
