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
#include <sys/mman.h>
#include <sys/resource.h>
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

/* An echo child on a socketpair, kept for the whole run so baseline batches can be interleaved
 * with the measured ones (the machine's load then affects both alike). */
static int echo_fd = -1;
static pid_t echo_pid;

static int echo_start(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    echo_pid = fork();
    if (echo_pid < 0)
        return -1;
    if (echo_pid == 0) {
        close(sv[0]);
        char b[64];
        while (full_io(sv[1], b, 64, 0) == 0 && full_io(sv[1], b, 64, 1) == 0)
            ;
        _exit(0);
    }
    close(sv[1]);
    echo_fd = sv[0];
    return 0;
}

static void echo_stop(void)
{
    close(echo_fd);
    waitpid(echo_pid, NULL, 0);
}

/* Mean round trip (us) of n 64-byte messages. */
static double baseline_batch(int n)
{
    char b[64] = {0};
    uint64_t t0 = agora__now_ns();
    for (int i = 0; i < n; i++)
        if (full_io(echo_fd, b, 64, 1) < 0 || full_io(echo_fd, b, 64, 0) < 0) {
            fprintf(stderr, "worker-bench: echo child failed\n");
            exit(1);
        }
    return (double)(agora__now_ns() - t0) / n / 1000.0;
}

/* CPU time (user + system) this process has used, in microseconds: unlike wall time it does not
 * include waiting for a CPU on a loaded machine. */
static double cpu_us_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
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
    int quick = 0, njobs = 2000;
    char rbuf[4096];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--weak") == 0)
            weak = 1;
        else if (strcmp(argv[i], "--runner") == 0 && i + 1 < argc)
            runner = argv[++i];
        else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            njobs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: worker-bench [--quick] [--weak] [--runner PATH] [--jobs N]\n");
            return 2;
        }
    }
    agora__error err;
#ifdef BENCH_RUNNER
    if (runner == NULL && getenv("AGORA_RUNNER") == NULL)
        runner = BENCH_RUNNER; /* the runner of this build tree */
#endif
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

    if (echo_start() < 0) {
        fprintf(stderr, "worker-bench: cannot start the echo child\n");
        return 1;
    }
    baseline_batch(500); /* warm up */

    /* (a) + (b): batches of baseline round trips and warm calls, alternating. */
    agora__pixbuf tiny;
    if (agora__pixbuf_create(64, &tiny, &err) < 0 || agora__pixbuf_seal(&tiny, &err) < 0)
        return 1;
    uint8_t *nb;
    agora__pool *p = make_pool(BENCH_NULL_PLUGIN, "org.agora.bench.null", &nb);
    agora__job_input in = tiny_input(&tiny);
    outcome o;
    for (int i = 0; i < 100; i++) {
        submit(p, &in, &o);
        run_until(&o);
        check(&o, "warm-up");
    }
    int rounds = quick ? 7 : 21, per_round = quick ? 100 : 200;
    double *ra = calloc((size_t)rounds, sizeof *ra), *rb = calloc((size_t)rounds, sizeof *rb);
    double *rr = calloc((size_t)rounds, sizeof *rr);
    double host_cpu_us = 0;
    for (int k = 0; k < rounds; k++) {
        ra[k] = baseline_batch(per_round);
        double c0 = cpu_us_self();
        uint64_t t0 = agora__now_ns();
        for (int i = 0; i < per_round; i++) {
            submit(p, &in, &o);
            run_until(&o);
            check(&o, "warm call");
        }
        rb[k] = (double)(agora__now_ns() - t0) / per_round / 1000.0;
        host_cpu_us += cpu_us_self() - c0;
        rr[k] = rb[k] / ra[k];
    }
    double rtt = median(ra, (size_t)rounds), warm = median(rb, (size_t)rounds);
    double ratio_b = median(rr, (size_t)rounds);
    printf("(a) socketpair round trip, 64 B, two processes: median %.2f us   [baseline]\n", rtt);
    printf("(b) warm call, null plugin, 8x8 image: median %.2f us; median of per-round ratios "
           "%.2fx baseline (target <= 2x); host CPU %.1f us per call\n",
           warm, ratio_b, host_cpu_us / ((double)rounds * per_round));

    /* (c): 2,000 jobs queued at once, each round preceded by a baseline batch. */
    int reps = quick ? 3 : 7;
    if (njobs < 1 || njobs > 4000)
        njobs = 2000;
    double *per = calloc((size_t)reps, sizeof *per), *pr = calloc((size_t)reps, sizeof *pr);
    outcome *os = calloc((size_t)njobs, sizeof *os);
    for (int r = 0; r < reps; r++) {
        double base = baseline_batch(1000);
        uint64_t t0 = agora__now_ns();
        for (int i = 0; i < njobs; i++)
            submit(p, &in, &os[i]);
        run_until(&os[njobs - 1]);
        per[r] = (double)(agora__now_ns() - t0) / njobs / 1000.0;
        pr[r] = per[r] / base;
        for (int i = 0; i < njobs; i++)
            check(&os[i], "batch job");
    }
    double marg = median(per, (size_t)reps), ratio_c = median(pr, (size_t)reps);
    printf("(c) %d one-image jobs queued on one warm worker: median %.2f us/job; median ratio "
           "%.2fx baseline (target <= 3x)\n",
           njobs, marg, ratio_c);
    free(per);
    free(pr);
    free(os);
    close_pool(p);
    free(nb);

    free(ra);
    free(rb);
    free(rr);
    agora__pixbuf_free(&tiny);
    echo_stop();

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
    /* Baselines: copy the volume and sum it in one process, (cold) into freshly allocated
     * memory, page faults included as the worker's mapping has them, and (warm) into a reused,
     * already faulted buffer: the stricter comparison. */
    double *base = calloc((size_t)reps, sizeof *base);
    double *basew = calloc((size_t)reps, sizeof *basew);
    volatile int64_t sink = 0;
    int16_t *reuse = malloc(bytes);
    memset(reuse, 1, bytes);
    for (int r = 0; r < reps; r++) {
        for (int hot = 0; hot < 2; hot++) {
            uint64_t t0 = agora__now_ns();
            int16_t *dst = hot ? reuse : malloc(bytes);
            memcpy(dst, src, bytes);
            int64_t s = 0;
            for (uint64_t i = 0; i < bytes / 2; i++)
                s += dst[i];
            sink = s;
            if (!hot)
                free(dst);
            (hot ? basew : base)[r] = (double)(agora__now_ns() - t0) / 1e6;
        }
    }
    free(reuse);
    /* The floor of a zero-copy design: a fresh read-only mapping of the sealed memfd in this
     * process, summed (what the worker does, without the sandbox and the messages). */
    double *basem = calloc((size_t)reps, sizeof *basem);
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = agora__now_ns();
        const int16_t *mp = mmap(NULL, bytes, PROT_READ, MAP_SHARED, vol.fd, 0);
        if (mp == MAP_FAILED)
            return 1;
        int64_t s = 0;
        for (uint64_t i = 0; i < bytes / 2; i++)
            s += mp[i];
        sink = s;
        munmap((void *)mp, bytes);
        basem[r] = (double)(agora__now_ns() - t0) / 1e6;
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
    double mb = median(base, (size_t)reps), mw = median(basew, (size_t)reps);
    double mm = median(basem, (size_t)reps), mv = median(vt, (size_t)reps);
    printf("(d) 512x512x300 int16 (150 MiB) summed by a sandboxed plugin: median %.1f ms\n"
           "    in one process: memcpy into a fresh buffer + sum %.1f ms (ratio %.2fx); memcpy "
           "into a reused, already-mapped buffer + sum %.1f ms (ratio %.2fx); fresh read-only "
           "mmap of the memfd + sum %.1f ms (ratio %.2fx) (target <= 2x)\n",
           mv, mb, mv / mb, mw, mv / mw, mm, mv / mm);
    close_pool(p);
    free(sb);
    free(base);
    free(basew);
    free(basem);
    free(vt);
    free(src);
    agora__pixbuf_free(&vol);
    uv_loop_close(&loop);
    return 0;
}
