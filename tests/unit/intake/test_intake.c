/*
 * Intake of `agora serve` (host/daemon/intake.h) on a real spool with real DICOM: synthetic CT
 * series (host/synth, as `agora dicom synth` writes them) are received into a temporary home
 * through the spool API (agora__spool_begin/write/commit, as the DIMSE listener does) with an
 * injected clock, then grouped through the real sandboxed reader (agora-runner, $AGORA_RUNNER)
 * and completed by polls at chosen times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "dicom.h"
#include "intake.h"
#include "spool.h"
#include "synth.h"

#define S  1000 /* one second in ms */
#define T0 ((int64_t)1700000000000)

typedef struct spooled {
    char sop[65], sop_class[65], ts[65];
    uint8_t *data; /* the data set bytes (after the meta group) */
    size_t len;
} spooled;

typedef struct series_files {
    spooled f[8];
    size_t n;
    char study_uid[65], series_uid[65];
} series_files;

typedef struct emitted {
    char key[17], reason[16];
    uint32_t generation;
    size_t n_series, n_instances;
    char series0_modality[17], series0_body[17];
    double series0_thickness;
    uint32_t series0_rows;
    const char *origins[4];
    char calling[4][17];
    int paths_ok; /* every path exists and sop_uids[] match the files */
} emitted;

static struct {
    char root[256], home[300];
    int64_t now; /* the spool's injected clock */
    agora__spool *sp;
    emitted out[8];
    size_t n_out;
    int fail_next; /* on_complete refuses this many hand-overs */
    char log[8192];
    size_t log_len;
} fx;

/* ---- fixtures ----------------------------------------------------------------------------------
 */

static int64_t clock_fn(void *arg)
{
    (void)arg;
    return fx.now;
}

static void log_fn(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    int n = snprintf(fx.log + fx.log_len, sizeof fx.log - fx.log_len, "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof fx.log - fx.log_len)
        fx.log_len += (size_t)n;
}

/* Synthesize series `series` (1, 2, ...) of the study of `seed`: n 16x16 CT slices. */
static void make_series(uint64_t seed, unsigned series, unsigned n, series_files *out)
{
    memset(out, 0, sizeof *out);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/synth-%llu-%u", fx.root, (unsigned long long)seed, series);
    agora__synth_opts o = {0};
    o.ct = 1;
    o.slices = n;
    o.rows = 16;
    o.cols = 16;
    o.seed = seed;
    o.have_seed = 1;
    o.out = dir;
    o.burned_in = 0;
    o.series = series;
    agora__synth_planted pl;
    agora__error e = {0};
    assert_int_equal(agora__synth_write(&o, &pl, &e), 0);
    strcpy(out->study_uid, pl.study_uid);
    strcpy(out->series_uid, pl.series_uid);
    for (unsigned i = 0; i < n; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/IM%05u.dcm", dir, i + 1);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(agora__read_file(p, 1u << 24, &buf, &len, &e), 0);
        agora__dicom_file *f = NULL;
        /* The test (not the code under test) reads the file in-process to know what to send. */
        assert_int_equal(agora__dicom_read(buf, len, NULL, &f, &e), 0);
        spooled *s = &out->f[out->n++];
        assert_int_equal(
            agora__dicom_get_string(&f->dataset, AGORA__DICOM_TAG(0x0008, 0x0018), 0, s->sop, 65),
            0);
        assert_int_equal(agora__dicom_get_string(&f->dataset, AGORA__DICOM_TAG(0x0008, 0x0016), 0,
                                                 s->sop_class, 65),
                         0);
        strcpy(s->ts, f->transfer_syntax);
        s->len = len - (size_t)f->dataset_offset;
        s->data = malloc(s->len);
        assert_non_null(s->data);
        memcpy(s->data, buf + f->dataset_offset, s->len);
        agora__dicom_file_free(f);
        free(buf);
    }
}

static void free_series(series_files *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->f[i].data);
    s->n = 0;
}

/* Receive one file at fx.now as announced (sop NULL: its own SOP Instance UID). origin
 * "stow-marker": as host/http/stow.c records STOW-RS (calling "STOW", called "", no origin). */
static int receive_as(const spooled *f, const char *sop, const char *origin, size_t len)
{
    int marker = origin && strcmp(origin, "stow-marker") == 0;
    agora__spool_instance inst = {
        f->sop_class,          sop ? sop : f->sop,    f->ts, marker ? "STOW" : "CT01",
        marker ? "" : "AGORA", marker ? NULL : origin};
    agora__spool_txn *t = NULL;
    agora__error e = {0};
    assert_int_equal(agora__spool_begin(fx.sp, &inst, &t, &e), 0);
    assert_int_equal(agora__spool_write(t, f->data, len, &e), 0);
    int dup = -1;
    assert_int_equal(agora__spool_commit(t, &dup, &e), 0);
    return dup;
}

/* Receive the files of s, one every `gap` ms from fx.now (fx.now ends at the last arrival). */
static void receive(const series_files *s, int64_t gap, const char *origin)
{
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            fx.now += gap;
        assert_int_equal(receive_as(&s->f[i], NULL, origin, s->f[i].len), 0);
    }
}

static int on_complete(void *arg, const agora__intake_study *st)
{
    (void)arg;
    if (fx.fail_next > 0) {
        fx.fail_next--;
        return -1;
    }
    assert_true(fx.n_out < 8);
    emitted *e = &fx.out[fx.n_out++];
    memset(e, 0, sizeof *e);
    assert_int_equal(strlen(st->key), AGORA__INTAKE_KEY_LEN);
    strcpy(e->key, st->key);
    strcpy(e->reason, st->reason);
    e->generation = st->generation;
    e->n_series = st->n_series;
    e->n_instances = st->n_instances;
    e->paths_ok = 1;
    size_t total = 0;
    for (size_t i = 0; i < st->n_series; i++) {
        const agora__intake_series *x = &st->series[i];
        if (i < 4) {
            e->origins[i] = x->attrs.origin;
            strcpy(e->calling[i], x->attrs.calling_ae);
        }
        total += x->n;
        for (size_t k = 0; k < x->n; k++) {
            struct stat sb;
            if (stat(x->paths[k], &sb) != 0 || x->paths[k][0] != '/' || strlen(x->sop_uids[k]) < 5)
                e->paths_ok = 0;
        }
    }
    assert_int_equal(total, st->n_instances);
    if (st->n_series > 0) {
        strcpy(e->series0_modality, st->series[0].attrs.modality);
        strcpy(e->series0_body, st->series[0].attrs.body_part);
        e->series0_thickness = st->series[0].attrs.slice_thickness;
        e->series0_rows = st->series[0].attrs.rows;
    }
    return 0;
}

static agora__intake *open_intake(const agora__intake_config *c)
{
    agora__intake_config d;
    agora__intake_config_default(&d);
    if (c == NULL)
        c = &d;
    agora__intake_config cc = *c;
    cc.log = log_fn;
    agora__intake *in = NULL;
    agora__error e = {0};
    assert_int_equal(agora__intake_open(fx.home, &cc, &in, &e), 0);
    return in;
}

static agora__intake_poll_stats poll_at(agora__intake *in, int64_t now)
{
    agora__intake_poll_stats ps;
    agora__error e = {0};
    int rc = agora__intake_poll(in, now, on_complete, NULL, &ps, &e);
    if (rc != 0)
        fail_msg("poll failed: %s", e.msg);
    return ps;
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    strcpy(fx.root, "/tmp/agora-intake-XXXXXX");
    assert_non_null(mkdtemp(fx.root));
    snprintf(fx.home, sizeof fx.home, "%s/home", fx.root);
    agora__error e = {0};
    assert_int_equal(agora__spool_open(fx.home, 1u << 26, &fx.sp, &e), 0);
    agora__spool_debug_clock(fx.sp, clock_fn, NULL);
    fx.now = T0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    agora__spool_close(fx.sp);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- completion timers
 * ------------------------------------------------------------------------------ */

/* Defaults 10 s / 60 s: a series quiet is not enough, the study timer runs from the LAST
 * instance of any series, and the study is emitted once with both series. */
static void test_series_then_study_quiet(void **state)
{
    (void)state;
    series_files a, b;
    make_series(11, 1, 3, &a);
    make_series(11, 2, 2, &b);
    agora__intake *in = open_intake(NULL);
    receive(&a, 1 * S, NULL);
    fx.now += 5 * S;
    receive(&b, 1 * S, NULL);
    int64_t last = fx.now;
    agora__intake_poll_stats ps = poll_at(in, last + 10 * S); /* every series quiet */
    assert_int_equal(ps.grouped, 5);
    assert_int_equal(ps.backlog, 0);
    assert_int_equal(fx.n_out, 0);
    poll_at(in, last + 60 * S - 1);
    assert_int_equal(fx.n_out, 0);
    ps = poll_at(in, last + 60 * S);
    assert_int_equal(ps.completed, 1);
    assert_int_equal(ps.emitted, 1);
    assert_int_equal(fx.n_out, 1);
    emitted *e = &fx.out[0];
    assert_int_equal(e->generation, 1);
    assert_int_equal(e->n_series, 2);
    assert_int_equal(e->n_instances, 5);
    assert_string_equal(e->reason, "quiet");
    assert_true(e->paths_ok);
    /* Routing attributes from the sandboxed reader. */
    assert_string_equal(e->series0_modality, "CT");
    assert_string_equal(e->series0_body, "CHEST");
    assert_true(fabs(e->series0_thickness - 1.25) < 1e-9);
    assert_int_equal(e->series0_rows, 16);
    assert_string_equal(e->origins[0], "dimse");
    poll_at(in, last + 600 * S);
    assert_int_equal(fx.n_out, 1); /* once */
    agora__intake_close(in);
    free_series(&a);
    free_series(&b);
}

/* A series still inside its own timer blocks the study although the study timer has passed
 * (series quiet 120 s > study quiet 60 s); an early series that is quiet does not. */
static void test_series_timer_blocks(void **state)
{
    (void)state;
    agora__intake_config c;
    agora__intake_config_default(&c);
    c.series_quiet_ms = 120 * S;
    c.study_quiet_ms = 60 * S;
    series_files a, b;
    make_series(12, 1, 2, &a);
    make_series(12, 2, 2, &b);
    agora__intake *in = open_intake(&c);
    receive(&a, S, NULL);
    fx.now += 200 * S; /* series a is long quiet by the time b arrives */
    receive(&b, S, NULL);
    int64_t last = fx.now;
    poll_at(in, last + 60 * S);
    assert_int_equal(fx.n_out, 0);
    poll_at(in, last + 120 * S - 1);
    assert_int_equal(fx.n_out, 0);
    size_t n = 0;
    int more = 0;
    agora__intake_entry *v = NULL;
    agora__error e = {0};
    assert_int_equal(agora__intake_list(in, last, 0, 10, &v, &n, &more, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].state, AGORA__INTAKE_RECEIVING);
    assert_true(v[0].complete_at_ms == last + 120 * S); /* the later of the two timers */
    assert_true(v[0].remaining_ms == 120 * S);
    assert_true(v[0].force_at_ms == v[0].first_arrival_ms + 90 * 60 * S);
    assert_int_equal(v[0].n_series, 2);
    assert_int_equal(v[0].n_instances, 4);
    assert_string_equal(v[0].modalities, "CT");
    free(v);
    poll_at(in, last + 120 * S);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_series, 2);
    agora__intake_close(in);
    free_series(&a);
    free_series(&b);
}

/* Force-complete after the maximum age with each action. */
static void run_force(agora__intake_action action)
{
    agora__intake_config c;
    agora__intake_config_default(&c);
    c.study_quiet_ms = 600 * S;
    c.series_quiet_ms = 10 * S;
    c.force_after_ms = 300 * S;
    c.force_action = action;
    series_files a;
    make_series(20 + (uint64_t)action, 1, 3, &a);
    agora__intake *in = open_intake(&c);
    int64_t first = fx.now;
    receive(&a, 100 * S, NULL); /* arrivals at 0, 100, 200 s */
    poll_at(in, first + 300 * S - 1);
    assert_int_equal(fx.n_out, 0);
    agora__intake_poll_stats ps = poll_at(in, first + 300 * S);
    agora__intake_counts cn;
    agora__error e = {0};
    assert_int_equal(agora__intake_counts_get(in, &cn, &e), 0);
    assert_int_equal(cn.grouped, 3);
    size_t n = 0;
    agora__intake_entry *v = NULL;
    assert_int_equal(agora__intake_list(in, fx.now, 0, 10, &v, &n, NULL, &e), 0);
    if (action == AGORA__INTAKE_PROCEED) {
        assert_int_equal(ps.forced, 1);
        assert_int_equal(fx.n_out, 1);
        assert_string_equal(fx.out[0].reason, "forced");
        assert_int_equal(fx.out[0].n_instances, 3);
        assert_int_equal(n, 0);
        assert_int_equal(cn.studies[AGORA__INTAKE_DISPATCHED], 1);
    } else if (action == AGORA__INTAKE_DISCARD) {
        assert_int_equal(ps.discarded, 1);
        assert_int_equal(fx.n_out, 0);
        assert_int_equal(n, 0); /* not waiting any more */
        assert_int_equal(cn.studies[AGORA__INTAKE_DISCARDED], 1);
        poll_at(in, first + 3600 * S);
        assert_int_equal(fx.n_out, 0);
    } else {
        assert_int_equal(ps.held, 1);
        assert_int_equal(fx.n_out, 0);
        assert_int_equal(n, 1);
        assert_int_equal(v[0].state, AGORA__INTAKE_HELD);
        poll_at(in, first + 3600 * S);
        assert_int_equal(fx.n_out, 0); /* held until the operator says */
        char key[17];
        strcpy(key, v[0].key);
        key[8] = '\0'; /* a unique prefix is enough */
        assert_int_equal(agora__intake_force(in, key, first + 3601 * S, &e), 0);
        poll_at(in, first + 3602 * S);
        assert_int_equal(fx.n_out, 1);
        assert_string_equal(fx.out[0].reason, "operator");
        assert_int_equal(agora__intake_force(in, key, first + 3603 * S, &e), AGORA_ESTATE);
    }
    free(v);
    agora__intake_close(in);
    free_series(&a);
}

static void test_force_proceed(void **state)
{
    (void)state;
    run_force(AGORA__INTAKE_PROCEED);
}

static void test_force_discard(void **state)
{
    (void)state;
    run_force(AGORA__INTAKE_DISCARD);
}

static void test_force_hold(void **state)
{
    (void)state;
    run_force(AGORA__INTAKE_HOLD);
}

/* Operator force of a receiving study, and the key checks. */
static void test_operator_force(void **state)
{
    (void)state;
    series_files a;
    make_series(30, 1, 2, &a);
    agora__intake *in = open_intake(NULL);
    receive(&a, S, NULL);
    poll_at(in, fx.now + S);
    agora__intake_entry *v = NULL;
    size_t n = 0;
    agora__error e = {0};
    assert_int_equal(agora__intake_list(in, fx.now, 0, 10, &v, &n, NULL, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(agora__intake_force(in, "abc", fx.now, &e), AGORA_EINVAL);    /* short */
    assert_int_equal(agora__intake_force(in, "zzzzzz", fx.now, &e), AGORA_EINVAL); /* not hex */
    char other[17];
    strcpy(other, v[0].key);
    other[0] = other[0] == '0' ? '1' : '0';
    assert_int_equal(agora__intake_force(in, other, fx.now, &e), AGORA__ENOENT);
    assert_int_equal(agora__intake_force(in, v[0].key, fx.now, &e), 0);
    poll_at(in, fx.now + 2 * S); /* well inside both quiet timers */
    assert_int_equal(fx.n_out, 1);
    assert_string_equal(fx.out[0].reason, "operator");
    assert_string_equal(fx.out[0].key, v[0].key);
    free(v);
    agora__intake_close(in);
    free_series(&a);
}

/* ---- restart, amendments, hand-over
 * ---------------------------------------------------------------- */

/* The timers resume from the stored arrival times after a restart (nothing reset). */
static void test_restart_resume(void **state)
{
    (void)state;
    series_files a;
    make_series(40, 1, 3, &a);
    agora__intake *in = open_intake(NULL);
    receive(&a, S, NULL);
    int64_t last = fx.now;
    agora__intake_poll_stats ps = poll_at(in, last + 30 * S);
    assert_int_equal(ps.grouped, 3);
    agora__intake_close(in);
    /* Restart: a new spool handle and a new intake, later in time. */
    agora__spool_close(fx.sp);
    agora__error e = {0};
    assert_int_equal(agora__spool_open(fx.home, 1u << 26, &fx.sp, &e), 0);
    agora__spool_debug_clock(fx.sp, clock_fn, NULL);
    assert_int_equal(agora__spool_count(fx.sp), 3);
    in = open_intake(NULL);
    ps = poll_at(in, last + 59 * S);
    assert_int_equal(ps.grouped, 0); /* nothing re-read */
    assert_int_equal(fx.n_out, 0);
    poll_at(in, last + 60 * S); /* 60 s after the stored arrival, not after the restart */
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_instances, 3);
    agora__intake_close(in);
    /* Restart again: dispatched stays dispatched. */
    in = open_intake(NULL);
    poll_at(in, last + 3600 * S);
    assert_int_equal(fx.n_out, 1);
    agora__intake_close(in);
    free_series(&a);
}

/* A late series after the dispatch: generation 2 with ALL series, exactly once; a resend of
 * what was dispatched already changes nothing. */
static void test_late_series_amendment(void **state)
{
    (void)state;
    series_files a, b;
    make_series(50, 1, 2, &a);
    make_series(50, 2, 3, &b);
    agora__intake *in = open_intake(NULL);
    receive(&a, S, NULL);
    poll_at(in, fx.now + 60 * S);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].generation, 1);
    assert_int_equal(fx.out[0].n_series, 1);
    fx.now += 120 * S;
    /* The same study sent again: the spool keeps one copy, nothing reopens. */
    for (size_t i = 0; i < a.n; i++)
        assert_int_equal(receive_as(&a.f[i], NULL, NULL, a.f[i].len), 1);
    poll_at(in, fx.now + 120 * S);
    assert_int_equal(fx.n_out, 1);
    fx.now += 300 * S;
    receive(&b, S, NULL); /* the late series */
    int64_t last = fx.now;
    poll_at(in, last + 30 * S);
    assert_int_equal(fx.n_out, 1);
    agora__intake_entry *v = NULL;
    size_t n = 0;
    agora__error e = {0};
    assert_int_equal(agora__intake_list(in, last, 0, 10, &v, &n, NULL, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].generation, 2);
    assert_true(v[0].first_arrival_ms == last - 2 * S); /* the generation's first arrival */
    free(v);
    poll_at(in, last + 60 * S);
    assert_int_equal(fx.n_out, 2);
    assert_int_equal(fx.out[1].generation, 2);
    assert_int_equal(fx.out[1].n_series, 2);
    assert_int_equal(fx.out[1].n_instances, 5);
    assert_string_equal(fx.out[1].key, fx.out[0].key);
    poll_at(in, last + 600 * S);
    poll_at(in, last + 6000 * S);
    assert_int_equal(fx.n_out, 2); /* exactly once */
    agora__intake_close(in);
    free_series(&a);
    free_series(&b);
}

/* on_complete failing: the study stays complete and is emitted again by the next poll. */
static void test_handover_retry(void **state)
{
    (void)state;
    series_files a;
    make_series(60, 1, 2, &a);
    agora__intake *in = open_intake(NULL);
    receive(&a, S, NULL);
    fx.fail_next = 2;
    agora__intake_poll_stats ps = poll_at(in, fx.now + 60 * S);
    assert_int_equal(ps.handover_failed, 1);
    assert_int_equal(fx.n_out, 0);
    ps = poll_at(in, fx.now + 61 * S);
    assert_int_equal(ps.handover_failed, 1);
    agora__intake_counts cn;
    agora__error e = {0};
    assert_int_equal(agora__intake_counts_get(in, &cn, &e), 0);
    assert_int_equal(cn.studies[AGORA__INTAKE_COMPLETE], 1);
    ps = poll_at(in, fx.now + 62 * S);
    assert_int_equal(ps.emitted, 1);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].generation, 1);
    poll_at(in, fx.now + 63 * S);
    assert_int_equal(fx.n_out, 1);
    assert_non_null(strstr(fx.log, "hand-over failed"));
    agora__intake_close(in);
    free_series(&a);
}

/* ---- what the reader decides
 * ---------------------------------------------------------------------- */

/* A data set whose SOP Instance UID is not the announced one is rejected, counted and logged
 * without UIDs; a damaged file is rejected; an instance without pixel data is grouped. The
 * study completes with what was good. */
static void test_rejects_and_no_pixels(void **state)
{
    (void)state;
    series_files a;
    make_series(70, 1, 4, &a);
    agora__intake *in = open_intake(NULL);
    assert_int_equal(receive_as(&a.f[0], NULL, NULL, a.f[0].len), 0);
    const char *liar = "1.2.826.0.1.3680043.99.12345";
    assert_int_equal(receive_as(&a.f[1], liar, NULL, a.f[1].len), 0);
    /* f[2] cut inside its header: damaged. */
    assert_int_equal(receive_as(&a.f[2], NULL, NULL, 40), 0);
    /* f[3] without its Pixel Data (as an SR or KO has none): cut before (7FE0,0010). */
    size_t cut = 0;
    for (size_t i = a.f[3].len - 4; i > 0; i--)
        if (memcmp(a.f[3].data + i, "\xe0\x7f\x10\x00", 4) == 0) {
            cut = i;
            break;
        }
    assert_true(cut > 0);
    assert_int_equal(receive_as(&a.f[3], NULL, NULL, cut), 0);
    agora__intake_poll_stats ps = poll_at(in, fx.now + 60 * S);
    assert_int_equal(ps.grouped, 2);
    assert_int_equal(ps.rejected, 2);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_instances, 2);
    agora__intake_counts cn;
    agora__error e = {0};
    assert_int_equal(agora__intake_counts_get(in, &cn, &e), 0);
    assert_int_equal(cn.rejected, 2);
    assert_int_equal(cn.grouped, 2);
    assert_int_equal(cn.received, 0);
    assert_non_null(strstr(fx.log, "sop-mismatch"));
    assert_non_null(strstr(fx.log, "unreadable"));
    /* No UID of any kind in what was logged. */
    assert_null(strstr(fx.log, liar));
    assert_null(strstr(fx.log, a.study_uid));
    assert_null(strstr(fx.log, a.series_uid));
    for (size_t i = 0; i < a.n; i++)
        assert_null(strstr(fx.log, a.f[i].sop));
    assert_null(strstr(fx.log, "2.25."));
    /* The rejected rows are kept, with their reason. */
    char db[400];
    snprintf(db, sizeof db, "%s/spool/spool.db", fx.home);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT reject_reason FROM spool_instance WHERE"
                                        " state = 'rejected' ORDER BY reject_reason",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "sop-mismatch");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "unreadable");
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    /* The grouped rows carry what the reader reported. */
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT study_instance_uid, modality, body_part,"
                                        " slice_thickness, image_rows, image_columns, n_frames,"
                                        " generation, ds_sop_class_uid FROM spool_instance"
                                        " WHERE state = 'grouped'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), a.study_uid);
        assert_string_equal((const char *)sqlite3_column_text(st, 1), "CT");
        assert_string_equal((const char *)sqlite3_column_text(st, 2), "CHEST");
        assert_true(sqlite3_column_double(st, 3) == 1.25);
        assert_int_equal(sqlite3_column_int(st, 4), 16);
        assert_int_equal(sqlite3_column_int(st, 5), 16);
        assert_int_equal(sqlite3_column_int(st, 6), 1);
        assert_int_equal(sqlite3_column_int(st, 7), 1);
        assert_string_equal((const char *)sqlite3_column_text(st, 8), a.f[0].sop_class);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(h);
    agora__intake_close(in);
    free_series(&a);
}

/* A file that makes the reader crash (SIGSEGV) or hang past its timeout is rejected as
 * unreadable; the reader is respawned and the rest of the study is grouped and completed. */
static void test_reader_dies_on_a_file(void **state)
{
    (void)state;
    agora__ingest_options io;
    agora__ingest_options_default(&io);
    io.timeout_ms = 1500; /* generous under load, short for the spinning file */
    agora__intake_config c;
    agora__intake_config_default(&c);
    c.ingest = &io;
    series_files a;
    make_series(85, 1, 3, &a);
    agora__intake *in = open_intake(&c);
    assert_int_equal(receive_as(&a.f[0], NULL, NULL, a.f[0].len), 0);
    agora__intake_debug_fault_next(in, AGORA__INGEST_FAULT_SEGV);
    agora__intake_poll_stats ps = poll_at(in, fx.now + S);
    assert_int_equal(ps.rejected, 1);
    fx.now += S;
    assert_int_equal(receive_as(&a.f[1], NULL, NULL, a.f[1].len), 0);
    agora__intake_debug_fault_next(in, AGORA__INGEST_FAULT_SPIN);
    ps = poll_at(in, fx.now + S);
    assert_int_equal(ps.rejected, 1);
    fx.now += S;
    assert_int_equal(receive_as(&a.f[2], NULL, NULL, a.f[2].len), 0);
    ps = poll_at(in, fx.now + 60 * S);
    assert_int_equal(ps.grouped, 1);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_instances, 1);
    agora__intake_counts cn;
    agora__error e = {0};
    assert_int_equal(agora__intake_counts_get(in, &cn, &e), 0);
    assert_int_equal(cn.rejected, 2);
    assert_non_null(strstr(fx.log, "unreadable"));
    agora__intake_close(in);
    free_series(&a);
}

/* A row whose spool file disappeared is rejected 'missing-file' (kept, counted), not retried. */
static void test_missing_file(void **state)
{
    (void)state;
    series_files a;
    make_series(86, 1, 2, &a);
    agora__intake *in = open_intake(NULL);
    receive(&a, S, NULL);
    char db[400];
    snprintf(db, sizeof db, "%s/spool/spool.db", fx.home);
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(h, "SELECT path FROM spool_instance LIMIT 1", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char p[600];
    snprintf(p, sizeof p, "%s/spool/%s", fx.home, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    assert_int_equal(unlink(p), 0);
    agora__intake_poll_stats ps = poll_at(in, fx.now + 60 * S);
    assert_int_equal(ps.rejected, 1);
    assert_int_equal(ps.grouped, 1);
    assert_int_equal(fx.n_out, 1);
    assert_non_null(strstr(fx.log, "missing-file"));
    agora__intake_close(in);
    free_series(&a);
}

/* DIMSE and STOW-RS arrivals of one study are one bucket. */
static void test_dimse_and_stow_merge(void **state)
{
    (void)state;
    series_files a, b, c;
    make_series(80, 1, 2, &a);
    make_series(80, 2, 2, &b);
    make_series(80, 3, 2, &c);
    agora__intake *in = open_intake(NULL);
    receive(&a, S, NULL);
    fx.now += 3 * S;
    receive(&b, S, "stow");
    fx.now += 3 * S;
    receive(&c, S, "stow-marker");
    poll_at(in, fx.now + 60 * S);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_series, 3);
    assert_string_equal(fx.out[0].origins[0], "dimse");
    assert_string_equal(fx.out[0].calling[0], "CT01");
    assert_string_equal(fx.out[0].origins[1], "stow");
    assert_string_equal(fx.out[0].origins[2], "stow");
    assert_string_equal(fx.out[0].calling[2], ""); /* the marker is not an AE title */
    agora__intake_close(in);
    free_series(&a);
    free_series(&b);
    free_series(&c);
}

/* Rows waiting to be grouped hold every emission back; batches are bounded. */
static void test_backlog_blocks_emission(void **state)
{
    (void)state;
    agora__intake_config c;
    agora__intake_config_default(&c);
    c.batch = 2;
    c.budget_ms = 0; /* one batch per poll */
    series_files a;
    make_series(90, 1, 5, &a);
    agora__intake *in = open_intake(&c);
    receive(&a, S, NULL);
    int64_t late = fx.now + 3600 * S; /* long after every timer */
    agora__intake_poll_stats ps = poll_at(in, late);
    assert_int_equal(ps.grouped, 2);
    assert_int_equal(ps.backlog, 3);
    assert_int_equal(fx.n_out, 0);
    ps = poll_at(in, late);
    assert_int_equal(ps.grouped, 2);
    assert_int_equal(ps.backlog, 1);
    assert_int_equal(fx.n_out, 0);
    ps = poll_at(in, late);
    assert_int_equal(ps.grouped, 1);
    assert_int_equal(ps.backlog, 0);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_instances, 5);
    /* Bounds of the configuration. */
    agora__intake *bad = NULL;
    agora__error e = {0};
    c.batch = AGORA__INTAKE_BATCH_MAX + 1;
    assert_int_equal(agora__intake_open(fx.home, &c, &bad, &e), AGORA_EINVAL);
    agora__intake_config_default(&c);
    c.study_quiet_ms = AGORA__INTAKE_QUIET_MAX_MS + 1;
    assert_int_equal(agora__intake_open(fx.home, &c, &bad, &e), AGORA_EINVAL);
    assert_null(bad);
    agora__intake_action act;
    assert_int_equal(agora__intake_action_parse("hold", &act), 0);
    assert_int_equal(act, AGORA__INTAKE_HOLD);
    assert_int_equal(agora__intake_action_parse("ignore", &act), AGORA_EINVAL);
    agora__intake_close(in);
    free_series(&a);
}

/* Two intakes on one spool (the daemon and a restarted one, or the CLI): nothing is grouped
 * or emitted twice. */
static void test_two_handles(void **state)
{
    (void)state;
    series_files a;
    make_series(95, 1, 4, &a);
    agora__intake *x = open_intake(NULL), *y = open_intake(NULL);
    assert_int_equal(receive_as(&a.f[0], NULL, NULL, a.f[0].len), 0);
    assert_int_equal(receive_as(&a.f[1], NULL, NULL, a.f[1].len), 0);
    assert_int_equal(poll_at(x, fx.now + S).grouped, 2);
    fx.now += 2 * S;
    assert_int_equal(receive_as(&a.f[2], NULL, NULL, a.f[2].len), 0);
    assert_int_equal(receive_as(&a.f[3], NULL, NULL, a.f[3].len), 0);
    assert_int_equal(poll_at(y, fx.now + S).grouped, 2);
    assert_int_equal(poll_at(x, fx.now + S).grouped, 0);
    poll_at(y, fx.now + 60 * S);
    poll_at(x, fx.now + 61 * S);
    assert_int_equal(fx.n_out, 1);
    assert_int_equal(fx.out[0].n_instances, 4);
    agora__intake_entry *v = NULL;
    size_t n = 0;
    agora__error e = {0};
    assert_int_equal(
        agora__intake_list(x, fx.now, 1u << AGORA__INTAKE_DISPATCHED, 10, &v, &n, NULL, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].n_instances, 4);
    assert_int_equal(v[0].n_series, 1);
    free(v);
    agora__intake_close(x);
    agora__intake_close(y);
    free_series(&a);
}

/* A version-1 spool (the first slice's) is migrated in place, its rows kept. */
static void test_migrate_v1(void **state)
{
    (void)state;
    agora__spool_close(fx.sp);
    fx.sp = NULL;
    char home[400], dir[500], db[600];
    snprintf(home, sizeof home, "%s/old", fx.root);
    snprintf(dir, sizeof dir, "%s/spool", home);
    agora__error e = {0};
    assert_int_equal(agora__mkdirs(dir, 0700, &e), 0);
    snprintf(db, sizeof db, "%s/spool.db", dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            h,
            "CREATE TABLE spool_meta (k VARCHAR(32) PRIMARY KEY, v VARCHAR(64) NOT NULL);"
            "INSERT INTO spool_meta VALUES ('format', 'agora.spool/1');"
            "CREATE TABLE spool_instance (sop_instance_uid VARCHAR(64) PRIMARY KEY,"
            " sop_class_uid VARCHAR(64) NOT NULL, transfer_syntax_uid VARCHAR(64) NOT NULL,"
            " study_instance_uid VARCHAR(64), series_instance_uid VARCHAR(64),"
            " calling_ae VARCHAR(16) NOT NULL, called_ae VARCHAR(16) NOT NULL,"
            " path VARCHAR(96) NOT NULL, size_bytes BIGINT NOT NULL,"
            " dataset_bytes BIGINT NOT NULL, dataset_sha256 CHAR(64) NOT NULL,"
            " received_at_ms BIGINT NOT NULL,"
            " state VARCHAR(16) NOT NULL DEFAULT 'received');"
            "INSERT INTO spool_instance (sop_instance_uid, sop_class_uid,"
            " transfer_syntax_uid, calling_ae, called_ae, path, size_bytes,"
            " dataset_bytes, dataset_sha256, received_at_ms) VALUES ('1.2.3', '1.2',"
            " '1.2.840.10008.1.2.1', 'A', 'B', 'in/00/x.dcm', 10, 5, 'ab', 7);",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);
    agora__spool *sp = NULL;
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), 0);
    assert_int_equal(agora__spool_count(sp), 1);
    agora__spool_close(sp);
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT m.v, i.origin, i.state, i.read_failures FROM"
                                        " spool_meta m, spool_instance i WHERE m.k = 'format'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), AGORA__SPOOL_FORMAT);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "dimse");
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "received");
    assert_int_equal(sqlite3_column_int(st, 3), 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    /* Opening again changes nothing (the migration ran once). */
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), 0);
    agora__spool_close(sp);
    /* An unknown future format is refused. */
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "UPDATE spool_meta SET v = 'agora.spool/9'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(agora__spool_open(home, 1u << 20, &sp, &e), AGORA_EUNSUPPORTED);
    assert_null(sp);
}

int main(void)
{
    if (getenv("AGORA_RUNNER") == NULL) {
        printf("SKIP: AGORA_RUNNER is not set (run through meson test)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_series_then_study_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_timer_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_proceed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_series_amendment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_and_no_pixels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_dies_on_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dimse_and_stow_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_blocks_emission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
