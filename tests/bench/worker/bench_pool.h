/*
 * What the pool benchmarks share (isolation-bench, assets-bench): the loop, one job at a time
 * through a pool (exits on failure), medians, idling the loop between blocks, closing a pool.
 * Each benchmark is one translation unit: everything here is static. Set bench_name, runner
 * and weak before use.
 */
#ifndef AGORA_BENCH_POOL_H
#define AGORA_BENCH_POOL_H

#include "worker.h"

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

#endif
