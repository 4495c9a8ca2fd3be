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
#include "bench_pool.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK     5
#define SETTLE_MS 400

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

int main(int argc, char **argv)
{
    int rounds = 15;
    uint8_t *bytes;
    size_t len;
    int st = bench_start("isolation-bench",
                         "Per-job latency of warm, fork-per-job and fresh-runner-per-job "
                         "pools (null plugin, one job at a time), medians.",
                         argc, argv, &rounds, &bytes, &len);
    if (st != 0)
        return st;
    agora__pixbuf px;
    agora__job_input in;
    if (bench_tiny_job(&px, &in) != 0)
        return 1;
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
    settle(SETTLE_MS);
    for (int k = 0; k < rounds; k++)
        for (int m = 0; m < MODES; m++) {
            int n = m == 3 ? 1 : BLOCK;
            double sum = 0;
            for (int i = 0; i < n; i++)
                sum += one_job(pools[m], &in);
            t[m][k] = sum / n;
            settle(SETTLE_MS);
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
        close_pool(pools[m]);
        free(t[m]);
    }
    agora__pixbuf_free(&px);
    free(bytes);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return 0;
}
