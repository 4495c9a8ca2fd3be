/*
 * Sandbox benchmarks, each against a baseline measured in the same run:
 *   cold start  spawn -> Ready of agora-runner with a trivial plugin (namespaces, root, seccomp,
 *               dlopen, init), vs `bwrap --unshare-all --ro-bind / / /bin/true` (spawn -> exit)
 *               and plain fork+exec of /bin/true;
 *   warm job    Job -> Result round trip on a warm worker, in-process and fork-per-job;
 *   idle RSS    VmRSS of the warm worker process (and of the reaper and outer waiter).
 * usage: bench_sandbox RUNNER PLUGIN [N]
 */
#include "agora_ipc.pb-c.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *runner_path;
static uint8_t *plugin_bytes;
static size_t plugin_len;
static uint8_t plugin_hash[32];

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int send_frame(int fd, const Agora__Ipc__Frame *f, const int *fds, size_t n_fds)
{
    uint8_t buf[4096];
    size_t len = protobuf_c_message_get_packed_size(&f->base);
    if (len + 4 > sizeof buf)
        return -1;
    buf[0] = (uint8_t)len;
    buf[1] = (uint8_t)(len >> 8);
    buf[2] = buf[3] = 0;
    protobuf_c_message_pack(&f->base, buf + 4);
    struct iovec iov = {buf, len + 4};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 2)];
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n_fds) {
        msg.msg_control = ctl.b;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    }
    return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)(len + 4) ? 0 : -1;
}

static int read_exact(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Next frame that is not a Log/Progress; NULL on error. */
static Agora__Ipc__Frame *next_frame(int fd)
{
    for (;;) {
        uint8_t h[4];
        if (read_exact(fd, h, 4) != 0)
            return NULL;
        uint32_t len =
            (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        if (len == 0 || len > (8u << 20))
            return NULL;
        uint8_t *b = malloc(len);
        if (b == NULL || read_exact(fd, b, len) != 0) {
            free(b);
            return NULL;
        }
        Agora__Ipc__Frame *f = agora__ipc__frame__unpack(NULL, len, b);
        free(b);
        if (f == NULL)
            return NULL;
        if (f->msg_case != AGORA__IPC__FRAME__MSG_LOG &&
            f->msg_case != AGORA__IPC__FRAME__MSG_PROGRESS)
            return f;
        agora__ipc__frame__free_unpacked(f, NULL);
    }
}

static int memfd_with(const void *data, size_t len, int seal)
{
    int fd = memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0 ||
        (data && pwrite(fd, data, len, 0) != (ssize_t)len))
        return -1;
    if (seal)
        fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    return fd;
}

typedef struct worker {
    pid_t pid;
    int sock;
    int fork_per_job;
} worker;

/* Spawn and wait for Ready. Returns 0 on success. */
static int start(worker *w, int fork_per_job)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    w->pid = fork();
    if (w->pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(sv[1], 3);
        char *argv[] = {(char *)runner_path, NULL};
        char *envp[] = {NULL};
        execve(runner_path, argv, envp);
        _exit(127);
    }
    close(sv[1]);
    w->sock = sv[0];
    int pfd = memfd_with(plugin_bytes, plugin_len, 1);
    Agora__Ipc__Setup su = AGORA__IPC__SETUP__INIT;
    su.protocol_version = 2;
    su.host_abi_version = AGORA_ABI_VERSION;
    su.mode = AGORA__IPC__MODE__MODE_PLUGIN;
    su.plugin_sha256.data = plugin_hash;
    su.plugin_sha256.len = 32;
    su.plugin_size = plugin_len;
    su.plugin_id = (char *)"org.agora.bench.trivial";
    su.plugin_version = (char *)"1.0.0";
    su.fork_per_job = fork_per_job;
    w->fork_per_job = fork_per_job;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_SETUP;
    f.setup = &su;
    int rc = send_frame(w->sock, &f, &pfd, 1);
    close(pfd);
    if (rc != 0)
        return -1;
    Agora__Ipc__Frame *r = next_frame(w->sock);
    int ok = r && r->msg_case == AGORA__IPC__FRAME__MSG_READY;
    if (r)
        agora__ipc__frame__free_unpacked(r, NULL);
    return ok ? 0 : -1;
}

static void stop(worker *w)
{
    Agora__Ipc__Shutdown sd = AGORA__IPC__SHUTDOWN__INIT;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_SHUTDOWN;
    f.shutdown = &sd;
    send_frame(w->sock, &f, NULL, 0);
    waitpid(w->pid, NULL, 0);
    close(w->sock);
}

static int job(worker *w, uint64_t id)
{
    static uint8_t px[64 * 64];
    int fds[2] = {memfd_with(px, sizeof px, 1), memfd_with(NULL, 4096, 0)};
    Agora__Ipc__ImageInfo ii = AGORA__IPC__IMAGE_INFO__INIT;
    ii.rows = 64;
    ii.columns = 64;
    ii.frames = 1;
    ii.samples_per_pixel = 1;
    ii.pixel_type = AGORA_PIXEL_U8;
    ii.bits_stored = 8;
    ii.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    ii.modality = (char *)"CT";
    ii.frame_bytes = sizeof px;
    Agora__Ipc__FrameInfo fi = AGORA__IPC__FRAME_INFO__INIT, *fip = &fi;
    Agora__Ipc__Job j = AGORA__IPC__JOB__INIT;
    j.job_id = id;
    j.image = &ii;
    j.frames = &fip;
    j.n_frames = 1;
    j.pixel_bytes = sizeof px;
    j.output_bytes = 4096;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_JOB;
    f.job = &j;
    /* Fork-per-job (protocol 2): the Job goes on a socketpair of its own, handed over with
     * ForkJob; the Result comes back on it and JobExit on the control channel. */
    int jsv[2] = {-1, -1};
    int chan = w->sock;
    if (w->fork_per_job) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, jsv) != 0)
            return -1;
        Agora__Ipc__ForkJob fj = AGORA__IPC__FORK_JOB__INIT;
        fj.job_id = id;
        Agora__Ipc__Frame ff = AGORA__IPC__FRAME__INIT;
        ff.msg_case = AGORA__IPC__FRAME__MSG_FORK_JOB;
        ff.fork_job = &fj;
        int src = send_frame(w->sock, &ff, &jsv[1], 1);
        close(jsv[1]);
        if (src != 0) {
            close(jsv[0]);
            return -1;
        }
        chan = jsv[0];
    }
    int rc = send_frame(chan, &f, fds, 2);
    close(fds[0]);
    close(fds[1]);
    Agora__Ipc__Frame *r = rc == 0 ? next_frame(chan) : NULL;
    int ok = r && r->msg_case == AGORA__IPC__FRAME__MSG_RESULT &&
             r->result->status == AGORA__IPC__JOB_STATUS__JOB_OK;
    if (r)
        agora__ipc__frame__free_unpacked(r, NULL);
    if (w->fork_per_job) {
        close(jsv[0]);
        r = next_frame(w->sock);
        ok = ok && r && r->msg_case == AGORA__IPC__FRAME__MSG_JOB_EXIT &&
             r->job_exit->job_id == id && r->job_exit->exit_code == 0;
        if (r)
            agora__ipc__frame__free_unpacked(r, NULL);
    }
    return ok ? 0 : -1;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static pid_t first_child(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int c = -1;
    if (f) {
        if (fscanf(f, "%d", &c) != 1)
            c = -1;
        fclose(f);
    }
    return (pid_t)c;
}

static double run_cmd(char *const argv[])
{
    double t0 = now_us();
    pid_t p = fork();
    if (p == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 1);
        dup2(nul, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return now_us() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_sandbox RUNNER PLUGIN [N]\n");
        return 2;
    }
    runner_path = argv[1];
    int n = argc > 3 ? atoi(argv[3]) : 30;
    if (n < 3 || n > 10000)
        n = 30;
    agora__error err;
    if (agora__read_file(argv[2], 64u << 20, &plugin_bytes, &plugin_len, &err) != 0) {
        fprintf(stderr, "bench_sandbox: %s\n", err.msg);
        return 1;
    }
    agora__sha256(plugin_bytes, plugin_len, plugin_hash);
    double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b),
           *c = calloc((size_t)n, sizeof *c);

    /* cold start */
    for (int i = 0; i < n; i++) {
        worker w;
        double t0 = now_us();
        if (start(&w, 0) != 0) {
            fprintf(stderr, "bench_sandbox: runner did not become ready\n");
            return 1;
        }
        a[i] = now_us() - t0;
        stop(&w);
    }
    char *bw[] = {(char *)"bwrap",
                  (char *)"--unshare-all",
                  (char *)"--ro-bind",
                  (char *)"/",
                  (char *)"/",
                  (char *)"/bin/true",
                  NULL};
    char *tr[] = {(char *)"/bin/true", NULL};
    int have_bwrap = run_cmd(bw) >= 0;
    for (int i = 0; i < n; i++) {
        b[i] = have_bwrap ? run_cmd(bw) : 0;
        c[i] = run_cmd(tr);
    }
    double ma = median(a, n), mb = median(b, n), mc = median(c, n);
    printf("cold start (spawn->Ready), median of %d:\n", n);
    printf("  agora-runner + trivial plugin   %9.0f us\n", ma);
    if (have_bwrap)
        printf("  bwrap --unshare-all /bin/true   %9.0f us   (runner/bwrap = %.2f)\n", mb, ma / mb);
    else
        printf("  bwrap                           not installed: baseline skipped\n");
    printf("  fork+exec /bin/true             %9.0f us   (runner/exec  = %.2f)\n", mc, ma / mc);

    /* warm jobs and idle RSS */
    for (int mode = 0; mode < 2; mode++) {
        worker w;
        if (start(&w, mode) != 0)
            return 1;
        usleep(100000);
        if (mode == 0) {
            pid_t reaper = first_child(w.pid), wk = reaper > 0 ? first_child(reaper) : -1;
            printf("idle RSS after Ready (VmRSS):\n");
            printf("  worker %ld KiB   reaper %ld KiB   outer waiter %ld KiB   (budget 4096 KiB "
                   "for the worker)\n",
                   wk > 0 ? rss_kb(wk) : -1, reaper > 0 ? rss_kb(reaper) : -1, rss_kb(w.pid));
        }
        for (int i = 0; i < n; i++) {
            double t0 = now_us();
            if (job(&w, (uint64_t)i + 1) != 0) {
                fprintf(stderr, "bench_sandbox: job failed\n");
                return 1;
            }
            a[i] = now_us() - t0;
        }
        if (mode == 0) {
            usleep(100000);
            pid_t reaper = first_child(w.pid), wk = reaper > 0 ? first_child(reaper) : -1;
            printf("  worker after %d jobs: %ld KiB\n", n, wk > 0 ? rss_kb(wk) : -1);
        }
        double m = median(a, n);
        printf("warm job round trip (Job->Result, 64x64 U8), %s, median of %d: %.0f us",
               mode ? "fork-per-job" : "in-process", n, m);
        printf(mode ? "   (vs cold start: %.1fx faster)\n" : "   (vs cold start: %.0fx faster)\n",
               ma / m);
        stop(&w);
    }
    free(a);
    free(b);
    free(c);
    free(plugin_bytes);
    return 0;
}
