/* Unit tests for the host API the runner gives plugins: every validation rule must refuse bad
 * input with the documented code, and accepted input must be copied faithfully. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner.h"

#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2];
static agora__runner_limits limits;
static agora_frame frames[3];
static uint8_t out_area[4096];
static const agora_host *H;
static agora_job *J;

static int setup(void **state)
{
    (void)state;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    agora__runner_channel_set_fd(sv[0]);
    agora__runner_limits_from(NULL, &limits);
    limits.max_items = 5;
    limits.max_log_lines = 2;
    H = agora__runner_host_table();
    J = agora__runner_job();
    agora__job_init(J, &limits, 7);
    J->image.rows = 4;
    J->image.columns = 5;
    J->image.frames = 3;
    J->frames = frames;
    J->n_frames = 3;
    J->out_area = out_area;
    J->out_size = sizeof out_area;
    agora__job_set_active(J, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agora__job_set_active(J, 0);
    agora__job_free_results(J);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static agora_finding finding(void)
{
    agora_finding f = {sizeof f, "SCT", "126713003", "Mass of lung", 0.5, AGORA_NONE, AGORA_NONE};
    return f;
}

static void test_finding_rules(void **state)
{
    (void)state;
    agora_finding f = finding();
    assert_int_equal(H->add_finding(J, &f), AGORA_OK);
    f.confidence = NAN;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f = finding();
    f.confidence = 1.5;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f = finding();
    f.meaning = "bad \xc3\x28 utf8";
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f = finding();
    f.scheme = NULL;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f = finding();
    f.frame = 3;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f = finding();
    f.region = 0; /* no region exists yet */
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f = finding();
    char longcode[300];
    memset(longcode, 'c', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';
    f.code = longcode;
    assert_int_equal(H->add_finding(J, &f), AGORA_ELIMIT);
    f = finding();
    f.struct_size = 8;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    /* wrong job pointer */
    f = finding();
    agora_job *other = (agora_job *)(void *)out_area;
    assert_int_equal(H->add_finding(other, &f), AGORA_EINVAL);
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    agora__job_fill_result(J, &r);
    assert_int_equal(r.n_findings, 1);
    assert_string_equal(r.findings[0]->code->meaning, "Mass of lung");
    assert_int_equal(r.job_id, 7);
}

static void test_item_limit_and_state(void **state)
{
    (void)state;
    agora_finding f = finding();
    for (int i = 0; i < 5; i++)
        assert_int_equal(H->add_finding(J, &f), AGORA_OK);
    assert_int_equal(H->add_finding(J, &f), AGORA_ELIMIT);
    agora__job_set_active(J, 0);
    assert_int_equal(H->set_summary(J, "late"), AGORA_ESTATE);
    assert_null(H->frame(J, 0));
    agora__job_set_active(J, 1);
}

static void test_measurement_rules(void **state)
{
    (void)state;
    agora_measurement m = {sizeof m, "volume", 12.5, "mL", 0, AGORA_NONE, NULL, NULL, NULL};
    assert_int_equal(H->add_measurement(J, &m), AGORA_OK);
    m.value = INFINITY;
    assert_int_equal(H->add_measurement(J, &m), AGORA_EINVAL);
    m.value = 1;
    m.code_scheme = "LN"; /* coded concept without a code */
    assert_int_equal(H->add_measurement(J, &m), AGORA_EINVAL);
    m.code = "1234-5";
    assert_int_equal(H->add_measurement(J, &m), AGORA_OK);
    m.unit = "";
    assert_int_equal(H->add_measurement(J, &m), AGORA_EINVAL);
}

static void test_region_rules(void **state)
{
    (void)state;
    double box[4] = {0, 0, 4, 3};
    agora_region r = {sizeof r, AGORA_REGION_BOX, 1, box, 2, "box"};
    int32_t id = -5;
    assert_int_equal(H->add_region(J, &r, &id), AGORA_OK);
    assert_int_equal(id, 1); /* region ids start at 1 */
    double inverted[4] = {3, 3, 1, 1};
    r.points = inverted;
    assert_int_equal(H->add_region(J, &r, &id), AGORA_EINVAL);
    double outside[4] = {0, 0, 4.6, 3}; /* columns = 5: x <= 4.5 */
    r.points = outside;
    assert_int_equal(H->add_region(J, &r, &id), AGORA_EINVAL);
    double nan_pt[2] = {NAN, 1};
    agora_region p = {sizeof p, AGORA_REGION_POINT, 0, nan_pt, 1, NULL};
    assert_int_equal(H->add_region(J, &p, &id), AGORA_EINVAL);
    double tri[4] = {0, 0, 1, 1};
    agora_region poly = {sizeof poly, AGORA_REGION_POLYGON, 0, tri, 2, NULL};
    assert_int_equal(H->add_region(J, &poly, &id), AGORA_EINVAL);
    r.points = box;
    r.frame = 3;
    assert_int_equal(H->add_region(J, &r, &id), AGORA_EINVAL);
    /* a finding may now reference region 1, but not region 0 or 2 */
    agora_finding f = finding();
    f.region = 1;
    assert_int_equal(H->add_finding(J, &f), AGORA_OK);
    f.region = 0;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
    f.region = 2;
    assert_int_equal(H->add_finding(J, &f), AGORA_EINVAL);
}

static void test_mask_rules(void **state)
{
    (void)state;
    uint8_t labels[2 * 4 * 5];
    for (size_t i = 0; i < sizeof labels; i++)
        labels[i] = (uint8_t)i;
    agora_mask m = {sizeof m, 1, 2, 4, 5, 8, labels, "organ"};
    int32_t id;
    assert_int_equal(H->add_mask(J, &m, &id), AGORA_OK);
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    agora__job_fill_result(J, &r);
    assert_int_equal(r.n_regions, 1);
    assert_int_equal(r.regions[0]->kind, 4);
    assert_int_equal(r.regions[0]->mask_length, sizeof labels);
    assert_memory_equal(out_area + r.regions[0]->mask_offset, labels, sizeof labels);
    m.rows = 3;
    assert_int_equal(H->add_mask(J, &m, &id), AGORA_EINVAL);
    m.rows = 4;
    m.first_frame = 2; /* 2 + 2 > 3 frames */
    assert_int_equal(H->add_mask(J, &m, &id), AGORA_EINVAL);
    m.first_frame = 0;
    m.bits = 12;
    assert_int_equal(H->add_mask(J, &m, &id), AGORA_EINVAL);
    /* bigger than what is left of the output area */
    J->out_size = 64;
    m.bits = 16;
    assert_int_equal(H->add_mask(J, &m, &id), AGORA_ELIMIT);
    J->out_size = sizeof out_area;
}

static void test_summary_and_error(void **state)
{
    (void)state;
    assert_int_equal(H->set_summary(J, "fine"), AGORA_OK);
    char *big = malloc(65537 + 1);
    memset(big, 's', 65537);
    big[65537] = '\0';
    assert_int_equal(H->set_summary(J, big), AGORA_ELIMIT);
    free(big);
    assert_int_equal(H->set_summary(J, "\xff"), AGORA_EINVAL);
    H->set_error(J, "bad \x01 control and \xff byte");
    assert_string_equal(J->error, "bad ? control and ? byte");
}

static size_t drain_frames(int want_case)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {sv[1], POLLIN, 0};
        if (poll(&p, 1, 0) != 1)
            return n;
        Agora__Ipc__Frame *f;
        int fds[2];
        size_t nf;
        char why[256];
        if (agora__runner_frame_read(sv[1], AGORA__FRAME_RUNNER_TO_HOST_MAX, &f, fds, &nf, why,
                                     sizeof why) != 0)
            return n;
        if ((int)f->msg_case == want_case) {
            n++;
            if (want_case == AGORA__IPC__FRAME__MSG_LOG)
                assert_true(strlen(f->log->text) <= 1024);
        }
        agora__ipc__frame__free_unpacked(f, NULL);
    }
}

static void test_log_rate_limit(void **state)
{
    (void)state;
    char line[3000];
    memset(line, 'l', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    for (int i = 0; i < 5; i++)
        H->log(H, J, AGORA_LOG_INFO, line);
    assert_int_equal(drain_frames(AGORA__IPC__FRAME__MSG_LOG), 2);
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    agora__job_fill_result(J, &r);
    assert_int_equal(r.dropped_log_lines, 3);
}

static void test_progress_and_cancel(void **state)
{
    (void)state;
    assert_int_equal(H->progress(J, 0.5), AGORA_OK);
    assert_int_equal(H->progress(J, 1.5), AGORA_EINVAL);
    assert_int_equal(drain_frames(AGORA__IPC__FRAME__MSG_PROGRESS), 1);
    assert_int_equal(H->cancelled(J), 0);
    Agora__Ipc__Cancel c = AGORA__IPC__CANCEL__INIT;
    c.job_id = 7;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_CANCEL;
    f.cancel = &c;
    assert_int_equal(agora__runner_frame_write(sv[1], &f, 1024), 0);
    assert_int_equal(H->progress(J, 0.6), AGORA_ECANCELLED);
    assert_int_equal(H->cancelled(J), 1);
}

static void test_inputs(void **state)
{
    (void)state;
    assert_ptr_equal(H->frame(J, 2), &frames[2]);
    assert_null(H->frame(J, 3));
    assert_int_equal(H->attr_count(J), 0);
    const char *k, *v;
    assert_int_equal(H->attr_at(J, 0, &k, &v), AGORA_EINVAL);
    assert_null(H->attr_get(J, "PatientAge"));
    assert_null(H->get_extension(H, "org.agora.unknown/1"));
}

static void test_sanitize(void **state)
{
    (void)state;
    /* "é" is two bytes: a 2-byte budget after "a" must not cut it in half. */
    char *s = agora__runner_sanitize_text("a\xc3\xa9", 2);
    assert_string_equal(s, "a");
    free(s);
    s = agora__runner_sanitize_text("ok\ttab", 100);
    assert_string_equal(s, "ok\ttab");
    free(s);
}

/* Issue 8: every add_* returned OK and then "the result exceeded the frame size limit". The
 * estimate must be an upper bound: fill a job to the byte cap with items whose encoding is the
 * largest per string byte (longest strings, AGORA_NONE references = 10-byte varints), a 4 KiB
 * error and a negative code, and check the real encoding fits. */
static size_t fill_and_pack(int kind)
{
    /* The longest strings the one table of result limits allows, per field. */
    static char scheme[AGORA__RESULT_SCHEME_MAX + 1], code[AGORA__RESULT_CODE_MAX + 1],
        meaning[AGORA__RESULT_MEANING_MAX + 1], name[AGORA__RESULT_NAME_MAX + 1],
        unit[AGORA__RESULT_UNIT_MAX + 1], label[AGORA__RESULT_LABEL_MAX + 1];
    memset(scheme, 's', sizeof scheme - 1);
    memset(code, 'c', sizeof code - 1);
    memset(meaning, 'm', sizeof meaning - 1);
    memset(name, 'n', sizeof name - 1);
    memset(unit, 'u', sizeof unit - 1);
    memset(label, 'l', sizeof label - 1);
    limits.max_items = 100000;
    limits.max_result_bytes = 256 * 1024;
    agora__job_free_results(J);
    agora__job_init(J, &limits, UINT64_MAX);
    J->image.rows = 4;
    J->image.columns = 5;
    J->frames = frames;
    J->n_frames = 3;
    agora__job_set_active(J, 1);
    double pts[8] = {0, 0, 1, 0, 1, 1, 0, 1};
    size_t added = 0;
    for (;;) {
        int32_t rc, id;
        if (kind == 0) {
            agora_finding f = {sizeof f, scheme, code, meaning, 1.0, AGORA_NONE, AGORA_NONE};
            rc = H->add_finding(J, &f);
        } else if (kind == 1) {
            agora_measurement m = {sizeof m, name,       -AGORA__RESULT_VALUE_MAX,
                                   unit,     AGORA_NONE, AGORA_NONE,
                                   scheme,   code,       meaning};
            rc = H->add_measurement(J, &m);
        } else {
            agora_region r = {sizeof r, AGORA_REGION_POLYGON, 2, pts, 4, label};
            rc = H->add_region(J, &r, &id);
        }
        if (rc == AGORA_ELIMIT)
            break;
        assert_int_equal(rc, AGORA_OK);
        added++;
    }
    assert_true(added > 10);
    char summary[1000];
    memset(summary, 'x', sizeof summary - 1);
    summary[sizeof summary - 1] = '\0';
    (void)H->set_summary(J, summary); /* may be refused when the items took the room */
    char err[5000];
    memset(err, 'e', sizeof err - 1);
    err[sizeof err - 1] = '\0';
    H->set_error(J, err);
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    agora__job_fill_result(J, &r);
    r.job_id = UINT64_MAX;
    r.status = AGORA__IPC__JOB_STATUS__JOB_PLUGIN_ERROR;
    r.plugin_code = AGORA_EINTERNAL;
    r.error = J->error;
    r.dropped_log_lines = UINT32_MAX;
    r.child_signal = -1;
    r.child_exit = -1;
    r.cpu_us = UINT64_MAX;
    r.peak_rss_kb = UINT64_MAX;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_RESULT;
    f.result = &r;
    return protobuf_c_message_get_packed_size(&f.base);
}

static void test_result_estimate_is_an_upper_bound(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        size_t packed = fill_and_pack(kind);
        if (packed > limits.max_result_bytes)
            fail_msg("kind %d: the Result encodes to %zu bytes, above max_result_bytes %llu", kind,
                     packed, (unsigned long long)limits.max_result_bytes);
        /* ... and not so pessimistic that most of the allowance is lost */
        assert_true(packed > limits.max_result_bytes / 10 * 8);
    }
}

static void test_limits_defaults_and_clamps(void **state)
{
    (void)state;
    agora__runner_limits l;
    Agora__Ipc__Limits in = AGORA__IPC__LIMITS__INIT;
    agora__runner_limits_from(&in, &l);
    assert_int_equal(l.memory_bytes, AGORA__RUNNER_DEFAULT_MEMORY);
    assert_int_equal(l.max_items, AGORA__RUNNER_DEFAULT_ITEMS);
    in.memory_bytes = 1024;           /* too small to load anything: raised to 16 MiB */
    in.max_threads = 100000;          /* clamped */
    in.max_result_bytes = 1ull << 40; /* must stay below the 8 MiB frame cap */
    agora__runner_limits_from(&in, &l);
    assert_int_equal(l.memory_bytes, 16u << 20);
    assert_int_equal(l.max_threads, 1024);
    assert_true(l.max_result_bytes < AGORA__FRAME_RUNNER_TO_HOST_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_finding_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_limit_and_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_measurement_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mask_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_and_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_estimate_is_an_upper_bound, setup, teardown),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_limits_defaults_and_clamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
