/*
 * What the pool benchmarks share (isolation-bench, assets-bench): the loop, one job at a time
 * through a pool (exits on failure), medians, idling the loop between blocks, closing a pool.
 * Each benchmark is one translation unit: everything here is static. bench_start() parses the
 * common options, sets bench_name, runner and weak and loads the null plugin.
 */
#ifndef AGORA_BENCH_POOL_H
#define AGORA_BENCH_POOL_H

#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t loop;
static const char *runner;
static int weak;
static const char *bench_name = "bench";

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

/* Submit one job and run the loop until it completes; its wall time in microseconds. */
static double one_job(agora__pool *p, const agora__job_input *in)
{
    outcome o = {0};
    agora__error err;
    uint64_t t0 = agora__now_ns();
    if (agora__pool_submit(p, in, on_done, &o, NULL, &err) < 0) {
        fprintf(stderr, "%s: submit: %s\n", bench_name, err.msg);
        exit(1);
    }
    while (!o.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (o.status != AGORA__JOB_OK) {
        fprintf(stderr, "%s: job failed: %s: %s%s\n", bench_name, agora__job_status_name(o.status),
                o.error, weak ? "" : " (try --weak if namespaces are refused here)");
        exit(1);
    }
    return (double)(agora__now_ns() - t0) / 1000.0;
}

static void on_settled(uv_timer_t *t)
{
    (void)t;
}

/* Idle the loop for ms, so that no runner of one measurement is still starting in the next. */
static void settle(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_settled, ms, 0);
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

/* Close a pool and run the loop until every process and handle of it is gone. */
static void close_pool(agora__pool *p)
{
    closed = 0;
    agora__pool_close(p, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
}

/* The options every pool benchmark takes ([--quick] [--weak] [--runner PATH]; --quick sets
 * *rounds to 5), the runner (--runner, AGORA_RUNNER, else the build's), the loop, and the null
 * plugin's bytes (*bytes is the caller's to free). 0, or the exit status (2 usage, 1 failure)
 * after printing why. about: the one-line description for the usage text. */
static int bench_start(const char *name, const char *about, int argc, char **argv, int *rounds,
                       uint8_t **bytes, size_t *len)
{
    bench_name = name;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            *rounds = 5;
        else if (strcmp(argv[i], "--weak") == 0)
            weak = 1;
        else if (strcmp(argv[i], "--runner") == 0 && i + 1 < argc)
            runner = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--weak] [--runner PATH]\n%s\n", name, about);
            return 2;
        }
    }
    if (runner == NULL)
        runner = getenv("AGORA_RUNNER") ? getenv("AGORA_RUNNER") : BENCH_RUNNER;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    agora__error err;
    if (agora__read_file(BENCH_NULL_PLUGIN, 64u << 20, bytes, len, &err) < 0) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        return 1;
    }
    return 0;
}

/* A sealed 8x8 U8 frame in *px and the job that carries it (px must outlive the job). 0 or 1. */
static int bench_tiny_job(agora__pixbuf *px, agora__job_input *in)
{
    agora__error err;
    if (agora__pixbuf_create(64, px, &err) < 0 || agora__pixbuf_seal(px, &err) < 0) {
        fprintf(stderr, "%s: %s\n", bench_name, err.msg);
        return 1;
    }
    memset(in, 0, sizeof *in);
    in->rows = 8;
    in->columns = 8;
    in->frames = 1;
    in->samples_per_pixel = 1;
    in->pixel_type = AGORA_PIXEL_U8;
    in->bits_stored = 8;
    in->photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    in->rescale_slope = 1;
    in->modality = "OT";
    in->pixels = px;
    return 0;
}

#endif
