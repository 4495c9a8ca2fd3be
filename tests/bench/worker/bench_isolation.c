/*
 * isolation-bench: what "no state between patients" costs. One-image jobs of the null plugin,
 * one at a time (submit -> result), in three pool modes measured in the same run, rounds
 * interleaved so that machine load falls on all three alike:
 *   warm   one runner serves every job (the baseline);
 *   fork   --fork-per-job: a job process forked from the initialised zygote per job (protocol 2:
 *          per-job socketpair, JobExit);
 *   fresh  a fresh runner per job (fresh_per_job: spawn, confine, load, init per job; a spare
 *          starts while a job runs). Measured twice: jobs back to back (the spare cannot be
 *          ready: each job pays a runner start) and one job per sample after the spare is ready
 *          (latency when jobs arrive slower than a runner starts).
 * Jobs run in blocks of BLOCK back to back; a block's time / BLOCK is one sample, so the fresh
 * mode's figure includes starting the next runner (there is no idle time to hide it in). After
 * every block the loop idles SETTLE_MS so that no runner of one mode is still starting while
 * another mode is measured. Prints medians and the per-job overhead over warm.
 */
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK     5
#define SETTLE_MS 400

static uv_loop_t loop;
static const char *runner;
static int weak;

typedef struct {
    int done;
    agora__job_status status;
    char error[512];
} outcome;

static void on_done(agora__job_result *res, void *arg)
{
    outcome *o = arg;
    o->done = 1;
    o->status = res->status;
    snprintf(o->error, sizeof o->error, "%s", res->error);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static agora__pool *make_pool(const uint8_t *bytes, size_t len, int mode)
{
    agora__plugin_spec s;
    memset(&s, 0, sizeof s);
    s.runner_path = runner;
    s.plugin_bytes = bytes;
    s.plugin_size = len;
    agora__sha256(bytes, len, s.plugin_sha256);
    s.plugin_id = "org.agora.bench.null";
    s.plugin_version = "1.0.0";
    s.workers = 1;
    s.allow_weak_isolation = weak;
    s.timeout_ms = 60000;
    s.quarantine_after = 1000;
    s.limits.memory_bytes = (uint64_t)256 << 20;
    s.fork_per_job = mode == 1;
    s.fresh_per_job = mode >= 2;
    agora__pool *p;
    agora__error err;
    if (agora__pool_new(&loop, &s, &p, &err) < 0) {
        fprintf(stderr, "isolation-bench: %s\n", err.msg);
        exit(1);
    }
    return p;
}

static double one_job(agora__pool *p, const agora__job_input *in)
{
    outcome o = {0};
    agora__error err;
    uint64_t t0 = agora__now_ns();
    if (agora__pool_submit(p, in, on_done, &o, NULL, &err) < 0) {
        fprintf(stderr, "isolation-bench: submit: %s\n", err.msg);
        exit(1);
    }
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (o.status != AGORA__JOB_OK) {
        fprintf(stderr, "isolation-bench: job failed: %s: %s%s\n", agora__job_status_name(o.status),
                o.error, weak ? "" : " (try --weak if namespaces are refused here)");
        exit(1);
    }
    return (double)(agora__now_ns() - t0) / 1000.0;
}

static void on_settled(uv_timer_t *t)
{
    (void)t;
}

static void settle(void)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_settled, SETTLE_MS, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int closed;
static void on_closed(void *a)
{
    (void)a;
    closed = 1;
}

int main(int argc, char **argv)
{
    int rounds = 15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            rounds = 5;
        else if (strcmp(argv[i], "--weak") == 0)
            weak = 1;
        else if (strcmp(argv[i], "--runner") == 0 && i + 1 < argc)
            runner = argv[++i];
        else {
            fprintf(stderr, "usage: isolation-bench [--quick] [--weak] [--runner PATH]\n"
                            "Per-job latency of warm, fork-per-job and fresh-runner-per-job "
                            "pools (null plugin, one job at a time), medians.\n");
            return 2;
        }
    }
    if (runner == NULL)
        runner = getenv("AGORA_RUNNER") ? getenv("AGORA_RUNNER") : BENCH_RUNNER;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    uint8_t *bytes;
    size_t len;
    agora__error err;
    if (agora__read_file(BENCH_NULL_PLUGIN, 64u << 20, &bytes, &len, &err) < 0) {
        fprintf(stderr, "isolation-bench: %s\n", err.msg);
        return 1;
    }
    agora__pixbuf px;
    if (agora__pixbuf_create(64, &px, &err) < 0 || agora__pixbuf_seal(&px, &err) < 0)
        return 1;
    agora__job_input in;
    memset(&in, 0, sizeof in);
    in.rows = 8;
    in.columns = 8;
    in.frames = 1;
    in.samples_per_pixel = 1;
    in.pixel_type = AGORA_PIXEL_U8;
    in.bits_stored = 8;
    in.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    in.rescale_slope = 1;
    in.modality = "OT";
    in.pixels = &px;
    enum { MODES = 4 };
    static const char *const names[] = {"warm", "fork-per-job", "fresh-runner-per-job",
                                        "fresh, spare ready"};
    agora__pool *pools[MODES];
    double *t[MODES];
    for (int m = 0; m < MODES; m++) {
        pools[m] = make_pool(bytes, len, m);
        t[m] = calloc((size_t)rounds, sizeof(double));
        for (int i = 0; i < 3; i++)
            (void)one_job(pools[m], &in); /* warm-up: the first worker is ready */
    }
    settle();
    for (int k = 0; k < rounds; k++)
        for (int m = 0; m < MODES; m++) {
            int n = m == 3 ? 1 : BLOCK;
            double sum = 0;
            for (int i = 0; i < n; i++)
                sum += one_job(pools[m], &in);
            t[m][k] = sum / n;
            settle();
        }
    double med[MODES];
    for (int m = 0; m < MODES; m++)
        med[m] = median(t[m], (size_t)rounds);
    printf("isolation-bench: %d rounds x %d one-image jobs per mode, one at a time, modes "
           "interleaved by block\n",
           rounds, BLOCK);
    for (int m = 0; m < MODES; m++)
        printf("  %-22s median %9.1f us/job   overhead over warm %+9.1f us (%.1fx)%s\n", names[m],
               med[m], med[m] - med[0], med[m] / med[0], m == 0 ? "   [baseline]" : "");
    for (int m = 0; m < MODES; m++) {
        closed = 0;
        agora__pool_close(pools[m], on_closed, NULL);
        while (!closed)
            uv_run(&loop, UV_RUN_ONCE);
        free(t[m]);
    }
    agora__pixbuf_free(&px);
    free(bytes);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return 0;
}
