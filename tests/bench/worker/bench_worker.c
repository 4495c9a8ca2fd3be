/*
 * worker-bench — what a job through the sandboxed pool costs, against baselines measured in the
 * same run:
 *   (a) round trip of a 64-byte message over a socketpair between two processes (baseline)
 *   (b) one warm call through the sandbox: null plugin, 8x8 image         target <= 2x (a)
 *   (c) 2,000 one-image jobs queued on one warm worker: marginal cost/job  target <= 3x (a)
 *   (d) a 512x512x300 int16 volume (150 MiB) summed by a plugin, vs memcpy + sum in one
 *       process                                                            target <= 2x
 * Medians over repetitions. Usage: worker-bench [--quick] [--weak] [--runner PATH]
 *   --weak  allow weak isolation (namespaces the kernel refuses are skipped, with a warning)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker.h"

#ifndef BENCH_NULL_PLUGIN
#define BENCH_NULL_PLUGIN "null_plugin.so"
#endif
#ifndef BENCH_SUM_PLUGIN
#define BENCH_SUM_PLUGIN "sum_plugin.so"
#endif

static uv_loop_t loop;
static const char *runner;
static int weak;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- (a) baseline ---- */

static int full_io(int fd, void *buf, size_t n, int wr)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r =
            wr ? write(fd, (char *)buf + off, n - off) : read(fd, (char *)buf + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

static double bench_socketpair(int batches, int per_batch)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        char b[64];
        while (full_io(sv[1], b, 64, 0) == 0 && full_io(sv[1], b, 64, 1) == 0)
            ;
        _exit(0);
    }
    close(sv[1]);
    char b[64] = {0};
    double *per = calloc((size_t)batches, sizeof *per);
    for (int i = 0; i < 200; i++) /* warm up */
        if (full_io(sv[0], b, 64, 1) < 0 || full_io(sv[0], b, 64, 0) < 0)
            return -1;
    for (int k = 0; k < batches; k++) {
        uint64_t t0 = agora__now_ns();
        for (int i = 0; i < per_batch; i++)
            if (full_io(sv[0], b, 64, 1) < 0 || full_io(sv[0], b, 64, 0) < 0)
                return -1;
        per[k] = (double)(agora__now_ns() - t0) / per_batch / 1000.0;
    }
    close(sv[0]);
    waitpid(c, NULL, 0);
    double m = median(per, (size_t)batches);
    free(per);
    return m;
}

/* ---- pool helpers ---- */

typedef struct {
    int done;
    agora__job_status status;
    char error[512];
    double sum;
} outcome;

static void on_done(agora__job_result *res, void *arg)
{
    outcome *o = arg;
    o->done = 1;
    o->status = res->status;
    snprintf(o->error, sizeof o->error, "%s", res->error);
    json_t *ms = json_object_get(res->doc, "measurements");
    json_t *m0 = json_array_get(ms, 0);
    o->sum = m0 ? json_real_value(json_object_get(m0, "value")) : 0;
}

static uint8_t *plugin_bytes(const char *path, size_t *len)
{
    uint8_t *b;
    agora__error err;
    if (agora__read_file(path, 64u << 20, &b, len, &err) < 0) {
        fprintf(stderr, "worker-bench: %s\n", err.msg);
        exit(1);
    }
    return b;
}

static agora__pool *make_pool(const char *so, const char *id, uint8_t **bytes)
{
    size_t len;
    *bytes = plugin_bytes(so, &len);
    agora__plugin_spec s;
    memset(&s, 0, sizeof s);
    s.runner_path = runner;
    s.plugin_bytes = *bytes;
    s.plugin_size = len;
    agora__sha256(*bytes, len, s.plugin_sha256);
    s.plugin_id = id;
    s.plugin_version = "1.0.0";
    s.workers = 1;
    s.allow_weak_isolation = weak;
    s.max_queue = 4096;
    s.timeout_ms = 120000;
    s.limits.memory_bytes = (uint64_t)256 << 20;
    agora__pool *p;
    agora__error err;
    if (agora__pool_new(&loop, &s, &p, &err) < 0) {
        fprintf(stderr, "worker-bench: %s\n", err.msg);
        exit(1);
    }
    return p;
}

static void run_until(outcome *o)
{
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
}

static int closed;
static void on_closed(void *a)
{
    (void)a;
    closed = 1;
}

static void close_pool(agora__pool *p)
{
    closed = 0;
    agora__pool_close(p, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
}

static agora__job_input tiny_input(agora__pixbuf *px)
{
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
    in.pixels = px;
    return in;
}

static int submit(agora__pool *p, const agora__job_input *in, outcome *o)
{
    agora__error err;
    memset(o, 0, sizeof *o);
    if (agora__pool_submit(p, in, on_done, o, NULL, &err) < 0) {
        fprintf(stderr, "worker-bench: submit: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

static void check(const outcome *o, const char *what)
{
    if (o->status != AGORA__JOB_OK) {
        fprintf(stderr, "worker-bench: %s: %s: %s%s\n", what, agora__job_status_name(o->status),
                o->error, weak ? "" : " (try --weak if namespaces are refused here)");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int quick = 0;
    char rbuf[4096];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--weak") == 0)
            weak = 1;
        else if (strcmp(argv[i], "--runner") == 0 && i + 1 < argc)
            runner = argv[++i];
        else {
            fprintf(stderr, "usage: worker-bench [--quick] [--weak] [--runner PATH]\n");
            return 2;
        }
    }
    agora__error err;
    if (runner == NULL) {
        if (agora__runner_path(rbuf, sizeof rbuf, &err) < 0) {
            fprintf(stderr, "worker-bench: %s\n", err.msg);
            return 1;
        }
        runner = rbuf;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    printf("worker-bench: runner %s%s\n", runner, weak ? " (weak isolation allowed)" : "");

    /* (a) */
    double rtt = bench_socketpair(quick ? 5 : 21, quick ? 1000 : 5000);
    printf("(a) socketpair round trip, 64 B, two processes: median %.2f us   [baseline]\n", rtt);

    /* (b) */
    agora__pixbuf tiny;
    if (agora__pixbuf_create(64, &tiny, &err) < 0 || agora__pixbuf_seal(&tiny, &err) < 0)
        return 1;
    uint8_t *nb;
    agora__pool *p = make_pool(BENCH_NULL_PLUGIN, "org.agora.bench.null", &nb);
    agora__job_input in = tiny_input(&tiny);
    outcome o;
    for (int i = 0; i < 50; i++) {
        submit(p, &in, &o);
        run_until(&o);
        check(&o, "warm-up");
    }
    int nb_calls = quick ? 300 : 2000;
    double *lat = calloc((size_t)nb_calls, sizeof *lat);
    for (int i = 0; i < nb_calls; i++) {
        uint64_t t0 = agora__now_ns();
        submit(p, &in, &o);
        run_until(&o);
        lat[i] = (double)(agora__now_ns() - t0) / 1000.0;
        check(&o, "warm call");
    }
    double warm = median(lat, (size_t)nb_calls);
    printf("(b) warm call, null plugin, 8x8 image: median %.2f us = %.2fx baseline (target <= "
           "2x)\n",
           warm, warm / rtt);
    free(lat);

    /* (c) */
    int reps = quick ? 3 : 5, njobs = 2000;
    double *per = calloc((size_t)reps, sizeof *per);
    outcome *os = calloc((size_t)njobs, sizeof *os);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = agora__now_ns();
        for (int i = 0; i < njobs; i++)
            submit(p, &in, &os[i]);
        run_until(&os[njobs - 1]);
        per[r] = (double)(agora__now_ns() - t0) / njobs / 1000.0;
        for (int i = 0; i < njobs; i++)
            check(&os[i], "batch job");
    }
    double marg = median(per, (size_t)reps);
    printf("(c) %d one-image jobs queued on one warm worker: median %.2f us/job = %.2fx baseline "
           "(target <= 3x)\n",
           njobs, marg, marg / rtt);
    free(per);
    free(os);
    close_pool(p);
    free(nb);
    agora__pixbuf_free(&tiny);

    /* (d) */
    const uint32_t rows = 512, cols = 512, frames = 300;
    uint64_t bytes = (uint64_t)rows * cols * frames * 2;
    agora__pixbuf vol;
    if (agora__pixbuf_create(bytes, &vol, &err) < 0) {
        fprintf(stderr, "worker-bench: %s\n", err.msg);
        return 1;
    }
    int16_t *src = malloc(bytes);
    for (uint64_t i = 0; i < bytes / 2; i++)
        src[i] = (int16_t)((i * 2654435761u >> 7) % 4096 - 1024);
    memcpy(vol.data, src, bytes);
    if (agora__pixbuf_seal(&vol, &err) < 0)
        return 1;
    int64_t expect = 0;
    for (uint64_t i = 0; i < bytes / 2; i++)
        expect += src[i];
    /* Baseline: copy the volume into fresh memory (page faults included, as the worker's
     * mapping has them) and sum it. */
    double *base = calloc((size_t)reps, sizeof *base);
    volatile int64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = agora__now_ns();
        int16_t *dst = malloc(bytes);
        memcpy(dst, src, bytes);
        int64_t s = 0;
        for (uint64_t i = 0; i < bytes / 2; i++)
            s += dst[i];
        sink = s;
        free(dst);
        base[r] = (double)(agora__now_ns() - t0) / 1e6;
    }
    if (sink != expect)
        return 1;
    uint8_t *sb;
    p = make_pool(BENCH_SUM_PLUGIN, "org.agora.bench.sum", &sb);
    agora__job_input vin;
    memset(&vin, 0, sizeof vin);
    vin.rows = rows;
    vin.columns = cols;
    vin.frames = frames;
    vin.samples_per_pixel = 1;
    vin.pixel_type = AGORA_PIXEL_I16;
    vin.bits_stored = 12;
    vin.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    vin.rescale_slope = 1;
    vin.modality = "CT";
    vin.pixels = &vol;
    submit(p, &vin, &o); /* warm-up: the worker's first mapping */
    run_until(&o);
    check(&o, "volume warm-up");
    double *vt = calloc((size_t)reps, sizeof *vt);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = agora__now_ns();
        submit(p, &vin, &o);
        run_until(&o);
        vt[r] = (double)(agora__now_ns() - t0) / 1e6;
        check(&o, "volume job");
        if ((int64_t)o.sum != expect) {
            fprintf(stderr, "worker-bench: plugin sum %.0f != %lld\n", o.sum, (long long)expect);
            return 1;
        }
    }
    double mb = median(base, (size_t)reps), mv = median(vt, (size_t)reps);
    printf("(d) 512x512x300 int16 (150 MiB) summed in the sandbox: median %.1f ms; memcpy+sum in "
           "one process: median %.1f ms; ratio %.2fx (target <= 2x)\n",
           mv, mb, mv / mb);
    close_pool(p);
    free(sb);
    free(base);
    free(vt);
    free(src);
    agora__pixbuf_free(&vol);
    uv_loop_close(&loop);
    return 0;
}
