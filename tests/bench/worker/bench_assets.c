/*
 * assets-bench (issue 10): does a large asset slow down worker start? Two pools of the null
 * plugin in fresh-runner-per-job mode (every job is served by a runner started for it: spawn,
 * Setup, confine, load, init), one without assets (the baseline) and one with a 100 MB asset,
 * measured in the same run with blocks interleaved so machine load falls on both alike. The
 * asset is verified once, when it is copied into its sealed memfd (printed separately); a runner
 * only checks the seals and maps it, so the target is start(with) / start(without) <= 1.2.
 * Prints both medians and the ratio. Usage: assets-bench [--quick] [--weak] [--runner PATH]
 */
#include "bench_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK       3
#define SETTLE_MS   300
#define ASSET_BYTES ((uint64_t)100 << 20)

static agora__pool *make_pool(const uint8_t *bytes, size_t len, const agora__asset *asset)
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
    s.fresh_per_job = 1;
    s.assets = asset;
    s.n_assets = asset != NULL ? 1 : 0;
    agora__pool *p;
    agora__error err;
    if (agora__pool_new(&loop, &s, &p, &err) < 0) {
        fprintf(stderr, "assets-bench: %s\n", err.msg);
        exit(1);
    }
    return p;
}

/* A 100 MB file of pseudo-random bytes under $TMPDIR, removed before exit. */
static int make_asset_file(char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, size, "%s/agora-assets-bench-XXXXXX", tmp != NULL ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    uint8_t *buf = malloc(1 << 20);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int rc = buf != NULL ? 0 : -1;
    for (uint64_t done = 0; rc == 0 && done < ASSET_BYTES; done += 1 << 20) {
        for (size_t i = 0; i < (1 << 20); i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        rc = agora__write_all(fd, buf, 1 << 20);
    }
    free(buf);
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = 11;
    uint8_t *bytes;
    size_t len;
    int st = bench_start("assets-bench",
                         "Worker start time with a 100 MB asset vs without (fresh runner "
                         "per job, null plugin), medians and ratio.",
                         argc, argv, &rounds, &bytes, &len);
    if (st != 0)
        return st;
    agora__error err;
    char path[4096];
    if (make_asset_file(path, sizeof path) != 0) {
        fprintf(stderr, "assets-bench: cannot write the 100 MB asset file under $TMPDIR\n");
        return 1;
    }
    agora__asset asset;
    uint64_t v0 = agora__now_ns();
    int rc = agora__asset_load_file(path, "model.bin", NULL, 0, &asset, &err);
    double verify_ms = (double)(agora__now_ns() - v0) / 1e6;
    unlink(path);
    if (rc != 0) {
        fprintf(stderr, "assets-bench: %s\n", err.msg);
        return 1;
    }
    agora__pixbuf px;
    agora__job_input in;
    if (bench_tiny_job(&px, &in) != 0)
        return 1;
    agora__pool *pools[2] = {make_pool(bytes, len, NULL), make_pool(bytes, len, &asset)};
    double *t[2];
    for (int m = 0; m < 2; m++) {
        t[m] = calloc((size_t)rounds, sizeof(double));
        (void)one_job(pools[m], &in); /* warm-up */
    }
    settle(SETTLE_MS);
    for (int k = 0; k < rounds; k++)
        for (int m = 0; m < 2; m++) {
            double sum = 0;
            for (int i = 0; i < BLOCK; i++)
                sum += one_job(pools[m], &in) / 1000.0; /* ms */
            t[m][k] = sum / BLOCK;
            settle(SETTLE_MS);
        }
    double without = median(t[0], (size_t)rounds), with = median(t[1], (size_t)rounds);
    printf("assets-bench: %d rounds x %d jobs, each in a runner started for it (fresh per job)\n",
           rounds, BLOCK);
    printf("  start + job, no asset         median %8.2f ms   [baseline]\n", without);
    printf("  start + job, 100 MB asset     median %8.2f ms   ratio %.3f (target <= 1.2)\n", with,
           with / without);
    printf("  verifying the asset once (copy into a sealed memfd, sha256): %.1f ms\n", verify_ms);
    for (int m = 0; m < 2; m++) {
        close_pool(pools[m]);
        free(t[m]);
    }
    agora__assets_close(&asset, 1);
    agora__pixbuf_free(&px);
    free(bytes);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return 0;
}
