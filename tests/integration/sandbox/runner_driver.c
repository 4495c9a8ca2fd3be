/*
 * runner_driver: a small blocking test host for agora-runner. It spawns the runner (fd 3 = a
 * socketpair end, stdout/stderr = a pipe it drains and counts), sends Setup with the plugin in a
 * sealed memfd, sends Jobs with a tiny sealed image, reads frames, and prints one line:
 *
 *   outcome=<class> reason="<text>" findings=N measurements=N regions=N stdio_bytes=N
 *
 * class is one of: ok, plugin-error, oom, setup-error, policy-violation, signal, timeout,
 * protocol-error, input-error, cancelled. With --expect it exits 0 only when the class is one of
 * the expected ones (and --expect-reason is a substring of the reason), so meson can run it
 * directly as a test. A test tool, not the host's pool: everything is blocking with deadlines.
 */
#include "agora_ipc.pb-c.h"
#include "closure.h"
#include "common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_IN_FRAME (8u << 20)
#define MAX_ATTRS    8

typedef struct opts {
    const char *runner, *plugin, *id, *version, *expect, *expect_reason, *forbid;
    const char *root_has; /* --root-has "KIND PATH": a line the root listing must hold */
    int fork_per_job, bad_hash, listen, jobs, quiet, allow_weak, host_garbage, unsealed;
    int trap, check_root, host_flags;
    unsigned cancel_after_ms;
    const char *wrapper, *wrapper_arg;
    unsigned timeout_ms, memory_mib, threads, job_map_mib;
    unsigned max_peak_mib, max_pte_kib; /* 0: not checked */
    char *attr_k[MAX_ATTRS], *attr_v[MAX_ATTRS];
    int n_attrs;
} opts;

typedef struct state {
    pid_t pid;
    int sock, out_pipe;
    uint64_t stdio_bytes;
    char cls[32];
    char reason[1024];
    size_t findings, measurements, regions;
    int listen_fd;
    char warnings[512];
    pid_t family[8]; /* the runner's reaper and worker, to check nothing outlives a kill */
    size_t n_family;
    char jobs_seen[4096]; /* every job's class and reason, for --forbid */
} state;

/* The closure sent in Setup (what --check-root compares the plugin's listing with), the last
 * OK summary in full, and the trap's Violation (development mode). */
static agora__closure closure;
static char *summary_full;
static char *root_listing; /* --check-root: the worker's root as listed from outside */
static int root_unlistable; /* /proc/PID/root was refused (not root): the test skips */
static char violation[160];

static void note_violation(const Agora__Ipc__Violation *v)
{
    snprintf(violation, sizeof violation, "forbidden system call: %.40s (%u)",
             v->name ? v->name : "", v->syscall);
}

static const char *const fixed_root[] = {
    "f /etc/ld.so.cache",       "f /plugin/plugin.so",
    "f /proc/cpuinfo",          "f /sys/devices/system/cpu/possible",
    "f /sys/devices/system/cpu/present", "f /sys/devices/system/cpu/online"};

/* The listing must be exactly the closure plus the fixed runtime files (docs/sandbox.md), with
 * no directory that holds none of them (but the CPU view's empty cpuN). */
static int check_root(const char *listing)
{
    if (listing == NULL || strstr(listing, "\ne nd\n") == NULL) {
        printf("FAIL: the sandbox root could not be listed from outside\n");
        return -1;
    }
    int bad = 0;
    char *copy = strdup(listing);
    size_t n_seen = 0;
    for (char *line = strtok(copy, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (!strcmp(line, "e nd"))
            break;
        const char *path = line + 2;
        if (line[0] == 'd') {
            unsigned k;
            int found = !strcmp(path, "/") ||
                        sscanf(path, "/sys/devices/system/cpu/cpu%u", &k) == 1;
            size_t pl = strlen(path);
            for (size_t i = 0; i < closure.n && !found; i++)
                found = !strncmp(closure.entries[i], path, pl) && closure.entries[i][pl] == '/';
            for (size_t i = 0; i < sizeof fixed_root / sizeof *fixed_root && !found; i++)
                found = !strncmp(fixed_root[i] + 2, path, pl) && fixed_root[i][2 + pl] == '/';
            if (!found) {
                printf("FAIL: directory %s holds nothing of the closure\n", path);
                bad = 1;
            }
            continue;
        }
        n_seen++;
        int found = 0;
        for (size_t i = 0; i < sizeof fixed_root / sizeof *fixed_root && !found; i++)
            found = !strcmp(fixed_root[i], line);
        for (size_t i = 0; i < closure.n && !found; i++)
            found = !strcmp(closure.entries[i], path) &&
                    line[0] == (closure.is_link[i] ? 'l' : 'f');
        if (!found) {
            printf("FAIL: the sandbox root holds %s, which is not in the closure\n", line);
            bad = 1;
        }
    }
    free(copy);
    for (size_t i = 0; i < closure.n; i++) {
        char want[600];
        snprintf(want, sizeof want, "\n%c %s\n", closure.is_link[i] ? 'l' : 'f',
                 closure.entries[i]);
        if (strstr(listing, want) == NULL) {
            printf("FAIL: closure entry %s is missing from the sandbox root\n",
                   closure.entries[i]);
            bad = 1;
        }
    }
    printf("root: %zu entries listed, closure of %zu entries (%zu objects)\n", n_seen,
           closure.n, closure.n_objects);
    return bad ? -1 : 0;
}

static void collect_family(state *st, pid_t pid, int depth);

static void list_put(char **buf, size_t *len, size_t *cap, char kind, const char *path)
{
    size_t need = strlen(path) + 4;
    if (*len + need + 1 > *cap) {
        size_t nc = (*cap + need + 1) * 2;
        char *n = realloc(*buf, nc);
        if (n == NULL)
            return;
        *buf = n;
        *cap = nc;
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len, "%c %s\n", kind, path);
}

/* Walk prefix+rel (prefix = /proc/PID/root) without following symlinks. */
static int list_dir(const char *prefix, const char *rel, int depth, char **buf, size_t *len,
                    size_t *cap)
{
    char p[1200];
    snprintf(p, sizeof p, "%s%s", prefix, rel);
    DIR *d = opendir(p);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char r[1024];
        snprintf(r, sizeof r, "%s/%s", strcmp(rel, "/") ? rel : "", e->d_name);
        char full[1200];
        snprintf(full, sizeof full, "%s%s", prefix, r);
        struct stat st;
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            list_put(buf, len, cap, 'd', r);
            if (depth < 24)
                list_dir(prefix, r, depth + 1, buf, len, cap);
        } else {
            list_put(buf, len, cap, S_ISLNK(st.st_mode) ? 'l' : S_ISREG(st.st_mode) ? 'f' : '?',
                     r);
        }
    }
    closedir(d);
    return 0;
}

/* The worker's root, listed from outside while it runs (after Ready). */
static void list_root(state *st)
{
    st->n_family = 0;
    collect_family(st, st->pid, 1);
    if (st->n_family == 0)
        return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "/proc/%d/root", (int)st->family[st->n_family - 1]);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    list_put(&buf, &len, &cap, 'd', "/");
    if (list_dir(prefix, "/", 0, &buf, &len, &cap) != 0) {
        root_unlistable = errno == EACCES || errno == EPERM;
        free(buf);
        return;
    }
    list_put(&buf, &len, &cap, 'e', "nd");
    root_listing = buf;
}

/* FNV-1a of the host's first "flags" line: the CPU view must keep it (AVX2 detection). */
static int check_host_flags(const char *summary)
{
    /* /proc files report size 0: read until EOF. */
    static char t[1 << 20];
    size_t n = 0;
    int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
    ssize_t r;
    while (fd >= 0 && n + 1 < sizeof t && (r = read(fd, t + n, sizeof t - 1 - n)) > 0)
        n += (size_t)r;
    if (fd >= 0)
        close(fd);
    t[n] = '\0';
    const char *fl = strstr(t, "\nflags");
    uint32_t h = 2166136261u;
    for (const char *p = fl != NULL ? fl + 1 : ""; *p && *p != '\n'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    char want[32];
    snprintf(want, sizeof want, "flagsum=%08x", h);
    if (summary == NULL || strstr(summary, want) == NULL) {
        printf("FAIL: the CPU view's flags differ from the host's (want %s)\n", want);
        return -1;
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_outcome(state *st, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_outcome(state *st, const char *cls, const char *fmt, ...)
{
    snprintf(st->cls, sizeof st->cls, "%s", cls);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reason, sizeof st->reason, fmt, ap);
    va_end(ap);
}

static void drain_stdio(state *st)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(st->out_pipe, buf, sizeof buf);
        if (n <= 0)
            return;
        st->stdio_bytes += (uint64_t)n;
    }
}

static int send_frame(int fd, const Agora__Ipc__Frame *f, const int *fds, size_t n_fds)
{
    size_t len = protobuf_c_message_get_packed_size(&f->base);
    uint8_t *buf = malloc(len + 4);
    if (buf == NULL)
        return -1;
    buf[0] = (uint8_t)len;
    buf[1] = (uint8_t)(len >> 8);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 24);
    protobuf_c_message_pack(&f->base, buf + 4);
    size_t off = 0;
    int rc = 0;
    while (off < len + 4) {
        struct iovec iov = {buf + off, len + 4 - off};
        union {
            struct cmsghdr h;
            char b[CMSG_SPACE(sizeof(int) * 2)];
        } ctl;
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (off == 0 && n_fds > 0) {
            msg.msg_control = ctl.b;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)n;
    }
    free(buf);
    return rc;
}

/* Read exactly n bytes before the deadline. 0 ok, -1 EOF/error, -2 timeout, -3 fd received. */
static int recv_exact(state *st, uint8_t *p, size_t n, uint64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf[2] = {{st->sock, POLLIN, 0}, {st->out_pipe, POLLIN, 0}};
        uint64_t t = now_ms();
        if (t >= deadline)
            return -2;
        int pr = poll(pf, 2, (int)(deadline - t));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pf[1].revents)
            drain_stdio(st);
        if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        union {
            struct cmsghdr h;
            char b[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        struct iovec iov = {p + got, n - got};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
        ssize_t r = recvmsg(st->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        int got_fd = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    close(fd);
                }
                got_fd = 1;
            }
        }
        if (got_fd || (msg.msg_flags & MSG_CTRUNC))
            return -3;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* 0 frame, -1 EOF, -2 timeout, -4 protocol error (outcome set). */
static int read_frame(state *st, uint64_t deadline, Agora__Ipc__Frame **out)
{
    uint8_t hdr[4];
    int rc = recv_exact(st, hdr, 4, deadline);
    if (rc == -3) {
        set_outcome(st, "protocol-error", "the runner sent a file descriptor");
        return -4;
    }
    if (rc != 0)
        return rc;
    uint32_t len =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (len == 0 || len > MAX_IN_FRAME) {
        set_outcome(st, "protocol-error", "the runner sent a frame length of %u bytes", len);
        return -4;
    }
    uint8_t *body = malloc(len);
    if (body == NULL)
        return -1;
    rc = recv_exact(st, body, len, deadline);
    if (rc != 0) {
        free(body);
        if (rc == -3) {
            set_outcome(st, "protocol-error", "the runner sent a file descriptor");
            return -4;
        }
        if (rc == -1) {
            set_outcome(st, "protocol-error", "the runner closed the socket inside a frame");
            return -4;
        }
        return rc;
    }
    *out = agora__ipc__frame__unpack(NULL, len, body);
    free(body);
    if (*out == NULL || (*out)->msg_case == AGORA__IPC__FRAME__MSG__NOT_SET) {
        set_outcome(st, "protocol-error", "the runner sent %u bytes that are not a valid Frame",
                    len);
        return -4;
    }
    return 0;
}

/* ---- Memory observed from outside the sandbox --------------------------------------------
 * A thread samples, every 2 ms, VmHWM (peak RSS) and VmPTE (page tables) of the runner and all
 * its descendants (outer -> reaper -> worker -> fork-per-job child) from /proc, and keeps the
 * largest values seen. wait4's rusage of the runner (the largest peak RSS among it and every
 * descendant it reaped) backs it up for growth between the last sample and death. */
static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t mem_peak_kb, mem_pte_kb;
static volatile pid_t mem_root;
static volatile int mem_stop;

static uint64_t status_field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void sample_tree(pid_t pid, int depth)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        uint64_t hwm = status_field(buf, "VmHWM:"), pte = status_field(buf, "VmPTE:");
        pthread_mutex_lock(&mem_mu);
        if (hwm > mem_peak_kb)
            mem_peak_kb = hwm;
        if (pte > mem_pte_kb)
            mem_pte_kb = pte;
        pthread_mutex_unlock(&mem_mu);
    }
    if (depth == 0)
        return;
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    pid_t kids[16];
    size_t nk = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \n", &save); tok && nk < 16;
         tok = strtok_r(NULL, " \n", &save))
        kids[nk++] = (pid_t)atoi(tok);
    for (size_t i = 0; i < nk; i++)
        if (kids[i] > 0)
            sample_tree(kids[i], depth - 1);
}

static void *sampler(void *arg)
{
    (void)arg;
    while (!mem_stop) {
        pid_t r = mem_root;
        if (r > 0)
            sample_tree(r, 3);
        usleep(2000);
    }
    return NULL;
}

static void note_rusage(const struct rusage *ru)
{
    pthread_mutex_lock(&mem_mu);
    if ((uint64_t)ru->ru_maxrss > mem_peak_kb)
        mem_peak_kb = (uint64_t)ru->ru_maxrss;
    pthread_mutex_unlock(&mem_mu);
}

/* Children of pid as listed by /proc (needs CONFIG_PROC_CHILDREN; empty otherwise). */
static void collect_family(state *st, pid_t pid, int depth)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        pid_t c = (pid_t)atoi(tok);
        if (c > 0 && st->n_family < sizeof st->family / sizeof st->family[0]) {
            st->family[st->n_family++] = c;
            if (depth > 0)
                collect_family(st, c, depth - 1);
        }
    }
}

static int is_runner(pid_t pid)
{
    char path[64], comm[64] = {0};
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(comm, 1, sizeof comm - 1, f);
    fclose(f);
    comm[n] = '\0';
    return strncmp(comm, "agora-runner", 12) == 0;
}

static void kill_runner(state *st)
{
    if (st->pid <= 0)
        return;
    st->n_family = 0;
    collect_family(st, st->pid, 1);
    sample_tree(st->pid, 3); /* last look before the kill */
    kill(st->pid, SIGKILL);
    struct rusage ru;
    if (wait4(st->pid, NULL, 0, &ru) == st->pid)
        note_rusage(&ru);
    st->pid = -1;
    /* Killing the process the host knows must take the whole sandbox down with it. */
    uint64_t deadline = now_ms() + 2000;
    for (size_t i = 0; i < st->n_family; i++) {
        while (is_runner(st->family[i]) && now_ms() < deadline)
            usleep(5000);
        if (is_runner(st->family[i])) {
            set_outcome(st, "orphans", "sandbox process %d outlived the killed runner",
                        (int)st->family[i]);
            kill(st->family[i], SIGKILL); /* ours: the reaper/worker we just saw */
        }
    }
}

/* The runner's own exit, when it ended without a frame telling us why. */
static void classify_exit(state *st, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    int ws = 0;
    for (;;) {
        struct rusage ru;
        pid_t r = wait4(st->pid, &ws, WNOHANG, &ru);
        if (r == st->pid) {
            note_rusage(&ru);
            break;
        }
        if (now_ms() >= deadline) {
            kill_runner(st);
            set_outcome(st, "timeout", "the runner closed its socket but did not exit");
            return;
        }
        drain_stdio(st);
        usleep(2000);
    }
    st->pid = -1;
    drain_stdio(st);
    /* What a frame already told us (an Error) becomes part of the reason. */
    char prior[sizeof st->reason];
    memcpy(prior, st->reason, sizeof prior);
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        if (sig == SIGSYS)
            set_outcome(st, "policy-violation", "killed by SIGSYS: %s",
                        violation[0] ? violation : "the plugin made a call the sandbox forbids");
        else if (sig == SIGXCPU)
            set_outcome(st, "timeout", "killed by SIGXCPU: CPU limit reached");
        else
            set_outcome(st, "signal", "killed by signal %d (%s)", sig, strsignal(sig));
        return;
    }
    int code = WEXITSTATUS(ws);
    const char *sep = prior[0] ? ": " : "";
    if (code == 16)
        set_outcome(st, "oom", "exit 16 (crashed with memory at the cap)%s%s", sep, prior);
    else if (code >= 10 && code <= 13)
        set_outcome(st, "setup-error", "exit %d%s%s", code, sep, prior);
    else if (code == 14)
        set_outcome(st, "protocol-error", "exit 14%s%s", sep, prior);
    else
        set_outcome(st, code == 0 ? "ok" : "signal", "exit %d%s%s", code, sep, prior);
}

static int make_memfd(const char *name, const void *data, size_t len, int seal)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (len &&
        (ftruncate(fd, (off_t)len) != 0 || (data && pwrite(fd, data, len, 0) != (ssize_t)len))) {
        close(fd);
        return -1;
    }
    if (seal &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int spawn(const opts *o, state *st)
{
    int sv[2], op[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 || pipe2(op, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) != 0 || dup2(op[1], 1) != 1 || dup2(op[1], 2) != 2 ||
            dup2(sv[1], 3) != 3)
            _exit(127);
        char *argv[] = {(char *)o->runner, NULL, NULL, NULL};
        char *envp[] = {(char *)"AGORA_TEST_SECRET=must-not-leak", NULL};
        if (o->wrapper) {
            argv[0] = (char *)o->wrapper;
            argv[1] = (char *)(o->wrapper_arg ? o->wrapper_arg : "");
            argv[2] = (char *)o->runner;
            execve(o->wrapper, argv, envp);
        }
        execve(o->runner, argv, envp);
        _exit(127);
    }
    close(sv[1]);
    close(op[1]);
    fcntl(op[0], F_SETFL, O_NONBLOCK);
    st->pid = pid;
    mem_root = pid;
    st->sock = sv[0];
    st->out_pipe = op[0];
    return 0;
}

static int send_setup(const opts *o, state *st)
{
    uint8_t *bytes;
    size_t len;
    agora__error err;
    if (agora__read_file(o->plugin, 256u << 20, &bytes, &len, &err) != 0) {
        set_outcome(st, "setup-error", "driver: %s", err.msg);
        return -1;
    }
    uint8_t h[32];
    agora__sha256(bytes, len, h);
    if (o->bad_hash)
        h[0] ^= 1;
    int fd = make_memfd("plugin", bytes, len, 1);
    free(bytes);
    if (fd < 0) {
        set_outcome(st, "setup-error", "driver: memfd for the plugin failed");
        return -1;
    }
    Agora__Ipc__Limits lim = AGORA__IPC__LIMITS__INIT;
    lim.memory_bytes = (uint64_t)o->memory_mib << 20;
    lim.cpu_seconds = 30;
    lim.max_threads = o->threads;
    lim.job_map_bytes = (uint64_t)o->job_map_mib << 20;
    lim.max_items = 100;
    lim.max_log_lines = 20;
    Agora__Ipc__Setup su = AGORA__IPC__SETUP__INIT;
    su.protocol_version = 2;
    su.host_abi_version = AGORA_ABI_VERSION;
    su.mode = AGORA__IPC__MODE__MODE_PLUGIN;
    su.plugin_sha256.data = h;
    su.plugin_sha256.len = 32;
    su.plugin_size = len;
    su.limits = &lim;
    su.plugin_id = (char *)o->id;
    su.plugin_version = (char *)o->version;
    su.fork_per_job = o->fork_per_job;
    su.allow_weak_isolation = o->allow_weak;
    su.trap_violations = o->trap;
    /* The sandbox root: the host's resolution of the plugin's libraries (host/worker). */
    {
        uint8_t *pb;
        size_t pl;
        if (agora__read_file(o->plugin, 256u << 20, &pb, &pl, &err) != 0 ||
            agora__closure_resolve(pb, pl, &closure, &err) != AGORA_OK) {
            set_outcome(st, "setup-error", "driver: resolving the closure: %s", err.msg);
            close(fd);
            return -1;
        }
        free(pb);
        su.root_files = closure.entries;
        su.n_root_files = closure.n;
    }
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_SETUP;
    f.setup = &su;
    int rc = send_frame(st->sock, &f, &fd, 1);
    close(fd);
    return rc;
}

static int send_job(const opts *o, state *st, uint64_t job_id)
{
    enum { ROWS = 16, COLS = 16, FRAMES = 2 };
    uint8_t px[ROWS * COLS * FRAMES];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    int fds[2];
    fds[0] = make_memfd("pixels", px, sizeof px, !o->unsealed);
    fds[1] = make_memfd("output", NULL, 65536, 0);
    if (fds[0] < 0 || fds[1] < 0)
        return -1;
    Agora__Ipc__ImageInfo ii = AGORA__IPC__IMAGE_INFO__INIT;
    double spacing[2] = {0.5, 0.5};
    ii.rows = ROWS;
    ii.columns = COLS;
    ii.frames = FRAMES;
    ii.samples_per_pixel = 1;
    ii.pixel_type = AGORA_PIXEL_U8;
    ii.bits_stored = 8;
    ii.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    ii.pixel_spacing = spacing;
    ii.n_pixel_spacing = 2;
    ii.rescale_slope = 1.0;
    ii.modality = (char *)"CT";
    ii.study_uid = (char *)"2.25.1";
    ii.series_uid = (char *)"2.25.2";
    ii.frame_bytes = ROWS * COLS;
    Agora__Ipc__FrameInfo fi[FRAMES], *fip[FRAMES];
    double pos[FRAMES][3];
    for (int i = 0; i < FRAMES; i++) {
        agora__ipc__frame_info__init(&fi[i]);
        pos[i][0] = 0;
        pos[i][1] = 0;
        pos[i][2] = i;
        fi[i].position = pos[i];
        fi[i].n_position = 3;
        fi[i].offset = (uint64_t)i * ROWS * COLS;
        fi[i].sop_instance_uid = (char *)"2.25.3";
        fip[i] = &fi[i];
    }
    Agora__Ipc__Attribute at[MAX_ATTRS + 1], *atp[MAX_ATTRS + 1];
    size_t na = 0;
    char port[16];
    for (int i = 0; i < o->n_attrs; i++) {
        agora__ipc__attribute__init(&at[na]);
        at[na].keyword = o->attr_k[i];
        at[na].value = o->attr_v[i];
        atp[na] = &at[na];
        na++;
    }
    if (st->listen_fd >= 0) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        getsockname(st->listen_fd, (struct sockaddr *)&sa, &sl);
        snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
        agora__ipc__attribute__init(&at[na]);
        at[na].keyword = (char *)"Port";
        at[na].value = port;
        atp[na] = &at[na];
        na++;
    }
    Agora__Ipc__Job j = AGORA__IPC__JOB__INIT;
    j.job_id = job_id;
    j.image = &ii;
    j.frames = fip;
    j.n_frames = FRAMES;
    j.attributes = atp;
    j.n_attributes = na;
    j.pixel_bytes = sizeof px;
    j.output_bytes = 65536;
    j.timeout_ms = o->timeout_ms;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_JOB;
    f.job = &j;
    int rc = send_frame(st->sock, &f, fds, 2);
    close(fds[0]);
    close(fds[1]);
    return rc;
}

static void classify_result(state *st, const Agora__Ipc__Result *r)
{
    st->findings = r->n_findings;
    st->measurements = r->n_measurements;
    st->regions = r->n_regions;
    const char *e = r->error ? r->error : "";
    switch (r->status) {
    case AGORA__IPC__JOB_STATUS__JOB_OK:
        set_outcome(st, "ok", "%s", r->summary ? r->summary : "");
        free(summary_full);
        summary_full = strdup(r->summary ? r->summary : "");
        break;
    case AGORA__IPC__JOB_STATUS__JOB_PLUGIN_ERROR:
        set_outcome(st, r->plugin_code == AGORA_ENOMEM ? "oom" : "plugin-error", "code %d: %s",
                    r->plugin_code, e);
        break;
    case AGORA__IPC__JOB_STATUS__JOB_CANCELLED:
        set_outcome(st, "cancelled", "%s", e);
        break;
    case AGORA__IPC__JOB_STATUS__JOB_CHILD_DIED:
        if (r->child_signal == SIGSYS)
            set_outcome(st, "policy-violation", "%s", e);
        else if (r->child_signal <= 0 && r->child_exit == 16)
            set_outcome(st, "oom", "%s", e);
        else
            set_outcome(st, "signal", "%s", e);
        break;
    case AGORA__IPC__JOB_STATUS__JOB_INPUT_ERROR:
        set_outcome(st, "input-error", "%s", e);
        break;
    default:
        set_outcome(st, "protocol-error", "result with unknown status %d", (int)r->status);
    }
}

/* Wait for a frame of type want; logs and progress are consumed. 0 got it (*out set),
 * 1 outcome decided. */
static void send_simple(state *st, int which, uint64_t job_id)
{
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    Agora__Ipc__Cancel c = AGORA__IPC__CANCEL__INIT;
    Agora__Ipc__Shutdown sd = AGORA__IPC__SHUTDOWN__INIT;
    if (which == AGORA__IPC__FRAME__MSG_CANCEL) {
        c.job_id = job_id;
        f.msg_case = AGORA__IPC__FRAME__MSG_CANCEL;
        f.cancel = &c;
    } else {
        f.msg_case = AGORA__IPC__FRAME__MSG_SHUTDOWN;
        f.shutdown = &sd;
    }
    (void)send_frame(st->sock, &f, NULL, 0);
}

static int await(const opts *o, state *st, int want, Agora__Ipc__Frame **out, uint64_t job_id)
{
    uint64_t deadline = now_ms() + o->timeout_ms;
    uint64_t cancel_at = o->cancel_after_ms && want == AGORA__IPC__FRAME__MSG_RESULT
                             ? now_ms() + o->cancel_after_ms
                             : 0;
    for (;;) {
        Agora__Ipc__Frame *f = NULL;
        int rc;
        if (cancel_at) {
            rc = read_frame(st, cancel_at < deadline ? cancel_at : deadline, &f);
            if (rc == -2 && now_ms() < deadline) {
                send_simple(st, AGORA__IPC__FRAME__MSG_CANCEL, job_id);
                cancel_at = 0;
                continue;
            }
        } else {
            rc = read_frame(st, deadline, &f);
        }
        if (rc == -2) {
            set_outcome(st, "timeout", "no %s within %u ms; runner killed",
                        want == AGORA__IPC__FRAME__MSG_READY ? "Ready" : "Result", o->timeout_ms);
            kill_runner(st);
            return 1;
        }
        if (rc == -4) {
            kill_runner(st);
            return 1;
        }
        if (rc == -1) {
            classify_exit(st, 2000);
            if (strcmp(st->cls, "ok") == 0) /* exit 0 is only fine after Shutdown */
                set_outcome(st, "protocol-error",
                            "the runner exited with status 0 before "
                            "sending %s",
                            want == AGORA__IPC__FRAME__MSG_READY ? "Ready" : "Result");
            return 1;
        }
        if (f->msg_case == AGORA__IPC__FRAME__MSG_LOG) {
            if (!o->quiet)
                fprintf(stderr, "runner log [%d]: %s\n", f->log->level, f->log->text);
            agora__ipc__frame__free_unpacked(f, NULL);
            continue;
        }
        if (f->msg_case == AGORA__IPC__FRAME__MSG_PROGRESS) {
            agora__ipc__frame__free_unpacked(f, NULL);
            continue;
        }
        if (f->msg_case == AGORA__IPC__FRAME__MSG_VIOLATION) {
            note_violation(f->violation);
            agora__ipc__frame__free_unpacked(f, NULL);
            continue;
        }
        if (f->msg_case == AGORA__IPC__FRAME__MSG_ERROR) {
            snprintf(st->reason, sizeof st->reason, "Error stage=%d code=%d: %s",
                     (int)f->error->stage, f->error->code, f->error->message);
            agora__ipc__frame__free_unpacked(f, NULL);
            classify_exit(st, 2000);
            return 1;
        }
        if ((int)f->msg_case != want) {
            set_outcome(st, "protocol-error", "unexpected frame type %d", (int)f->msg_case);
            agora__ipc__frame__free_unpacked(f, NULL);
            kill_runner(st);
            return 1;
        }
        *out = f;
        return 0;
    }
}

/* Zygote mode (protocol 2): a socketpair for this job alone, ForkJob with one end on the
 * control channel, Job on the other; the Result (at most one) comes on the job channel, then
 * JobExit on the control channel. 0 continue, 1 outcome decided (runner gone or killed). */
static int fork_job(const opts *o, state *st, uint64_t id)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        set_outcome(st, "setup-error", "driver: socketpair failed");
        kill_runner(st);
        return 1;
    }
    Agora__Ipc__ForkJob fj = AGORA__IPC__FORK_JOB__INIT;
    fj.job_id = id;
    Agora__Ipc__Frame ff = AGORA__IPC__FRAME__INIT;
    ff.msg_case = AGORA__IPC__FRAME__MSG_FORK_JOB;
    ff.fork_job = &fj;
    int rc = send_frame(st->sock, &ff, &sv[1], 1);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        set_outcome(st, "protocol-error", "driver: sending ForkJob failed (runner gone?)");
        classify_exit(st, 2000);
        return 1;
    }
    int ctl = st->sock;
    st->sock = sv[0];
    (void)send_job(o, st, id); /* a job process that died early makes this fail: JobExit says */
    uint64_t deadline = now_ms() + o->timeout_ms;
    int got = 0;
    char err_text[512] = "";
    st->cls[0] = '\0';
    for (;;) {
        Agora__Ipc__Frame *f = NULL;
        rc = read_frame(st, deadline, &f);
        if (rc == -1)
            break; /* the job process closed its channel (exited) */
        if (rc == -2 || rc == -4) {
            if (rc == -2)
                set_outcome(st, "timeout", "no Result within %u ms; runner killed", o->timeout_ms);
            st->sock = ctl;
            close(sv[0]);
            kill_runner(st);
            return 1;
        }
        if (f->msg_case == AGORA__IPC__FRAME__MSG_RESULT) {
            if (got || f->result->job_id != id) {
                set_outcome(st, "protocol-error", "%s on a job channel",
                            got ? "a second Result" : "a Result for another job");
                agora__ipc__frame__free_unpacked(f, NULL);
                st->sock = ctl;
                close(sv[0]);
                kill_runner(st);
                return 1;
            }
            classify_result(st, f->result);
            got = 1;
        } else if (f->msg_case == AGORA__IPC__FRAME__MSG_ERROR) {
            snprintf(err_text, sizeof err_text, "Error stage=%d code=%d: %s", (int)f->error->stage,
                     f->error->code, f->error->message);
        } else if (f->msg_case == AGORA__IPC__FRAME__MSG_VIOLATION) {
            note_violation(f->violation);
        } else if (f->msg_case == AGORA__IPC__FRAME__MSG_LOG) {
            if (!o->quiet)
                fprintf(stderr, "job %llu log [%d]: %s\n", (unsigned long long)id, f->log->level,
                        f->log->text);
        } else if (f->msg_case != AGORA__IPC__FRAME__MSG_PROGRESS) {
            set_outcome(st, "protocol-error", "frame type %d on a job channel", (int)f->msg_case);
            agora__ipc__frame__free_unpacked(f, NULL);
            st->sock = ctl;
            close(sv[0]);
            kill_runner(st);
            return 1;
        }
        agora__ipc__frame__free_unpacked(f, NULL);
    }
    close(sv[0]);
    st->sock = ctl;
    char keep_cls[32], keep_reason[1024];
    memcpy(keep_cls, st->cls, sizeof keep_cls);
    memcpy(keep_reason, st->reason, sizeof keep_reason);
    Agora__Ipc__Frame *f;
    if (await(o, st, AGORA__IPC__FRAME__MSG_JOB_EXIT, &f, id) != 0)
        return 1;
    const Agora__Ipc__JobExit *e = f->job_exit;
    if (e->job_id != id) {
        agora__ipc__frame__free_unpacked(f, NULL);
        set_outcome(st, "protocol-error", "JobExit for the wrong job id");
        kill_runner(st);
        return 1;
    }
    if (e->signal != 0) {
        const char *ab = sigabbrev_np(e->signal);
        set_outcome(st, e->signal == SIGSYS ? "policy-violation" : "signal",
                    "the job process was killed by signal %d (SIG%s: %s)%s%s%s", e->signal,
                    ab ? ab : "?", strsignal(e->signal), got ? " after its Result" : "",
                    e->signal == SIGSYS ? ": " : "",
                    e->signal != SIGSYS ? ""
                    : violation[0]      ? violation
                                        : "the plugin made a call the sandbox forbids");
    } else if (e->exit_code != 0 || !got) {
        set_outcome(st, "protocol-error", "the job process exited with status %d %s%s%s",
                    e->exit_code, got ? "after its Result" : "without a result",
                    err_text[0] ? ": " : "", err_text);
    } else {
        memcpy(st->cls, keep_cls, sizeof keep_cls);
        memcpy(st->reason, keep_reason, sizeof keep_reason);
    }
    agora__ipc__frame__free_unpacked(f, NULL);
    return 0;
}

static void note_job(state *st, uint64_t id)
{
    size_t used = strlen(st->jobs_seen);
    snprintf(st->jobs_seen + used, sizeof st->jobs_seen - used, "job %llu: %s: %s; ",
             (unsigned long long)id, st->cls, st->reason);
}

static int run(const opts *o, state *st)
{
    if (spawn(o, st) != 0) {
        set_outcome(st, "setup-error", "driver: spawning %s failed", o->runner);
        return 1;
    }
    if (send_setup(o, st) != 0) {
        if (!st->cls[0])
            set_outcome(st, "setup-error", "driver: sending Setup failed");
        kill_runner(st);
        return 1;
    }
    Agora__Ipc__Frame *f;
    if (await(o, st, AGORA__IPC__FRAME__MSG_READY, &f, 0) != 0)
        return 1;
    if (!o->quiet)
        fprintf(stderr, "ready: pid=%u warnings=%zu\n", f->ready->runner_pid,
                f->ready->n_isolation_warnings);
    for (size_t i = 0; i < f->ready->n_isolation_warnings; i++) {
        size_t used = strlen(st->warnings);
        snprintf(st->warnings + used, sizeof st->warnings - used, "%s%s", used ? "; " : "",
                 f->ready->isolation_warnings[i]);
    }
    agora__ipc__frame__free_unpacked(f, NULL);
    if (o->check_root)
        list_root(st);
    if (o->host_garbage) {
        /* A host bug: a frame that is not a Frame. The runner must stop (protocol error). */
        static const uint8_t junk[] = {6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        if (write(st->sock, junk, sizeof junk) != (ssize_t)sizeof junk)
            return 1;
        classify_exit(st, 3000);
        return 1;
    }
    for (int j = 0; j < o->jobs && o->fork_per_job; j++) {
        int rc = fork_job(o, st, (uint64_t)j + 1);
        note_job(st, (uint64_t)j + 1);
        if (rc != 0)
            return 1;
    }
    for (int j = 0; j < o->jobs && !o->fork_per_job; j++) {
        if (send_job(o, st, (uint64_t)j + 1) != 0) {
            set_outcome(st, "protocol-error", "driver: sending Job failed (runner gone?)");
            classify_exit(st, 2000);
            return 1;
        }
        if (await(o, st, AGORA__IPC__FRAME__MSG_RESULT, &f, (uint64_t)j + 1) != 0)
            return 1;
        classify_result(st, f->result);
        note_job(st, (uint64_t)j + 1);
        int ok = f->result->job_id == (uint64_t)j + 1;
        agora__ipc__frame__free_unpacked(f, NULL);
        if (!ok) {
            set_outcome(st, "protocol-error", "result for the wrong job id");
            kill_runner(st);
            return 1;
        }
        if (strcmp(st->cls, "ok") != 0 && j + 1 < o->jobs && !o->fork_per_job)
            break;
    }
    Agora__Ipc__Shutdown sd = AGORA__IPC__SHUTDOWN__INIT;
    Agora__Ipc__Frame fr = AGORA__IPC__FRAME__INIT;
    fr.msg_case = AGORA__IPC__FRAME__MSG_SHUTDOWN;
    fr.shutdown = &sd;
    (void)send_frame(st->sock, &fr, NULL, 0);
    /* After Shutdown the runner must exit 0 promptly. */
    char keep_cls[32], keep_reason[1024];
    memcpy(keep_cls, st->cls, sizeof keep_cls);
    memcpy(keep_reason, st->reason, sizeof keep_reason);
    st->reason[0] = '\0';
    classify_exit(st, 3000);
    if (strcmp(st->cls, "ok") != 0 && strcmp(keep_cls, "ok") == 0) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "after Shutdown: %s", st->reason);
        set_outcome(st, st->cls, "%s", tmp);
        return 1;
    }
    memcpy(st->cls, keep_cls, sizeof keep_cls);
    memcpy(st->reason, keep_reason, sizeof keep_reason);
    return 0;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: runner_driver --plugin SO --id ID --version V [--runner PATH] [--jobs N]\n"
        "       [--fork-per-job] [--timeout-ms N] [--memory-mib N] [--attr K=V]...\n"
        "       [--bad-hash] [--listen] [--quiet] [--expect CLASS[,CLASS]] [--expect-reason S]\n"
        "       [--forbid S]  (fail when any job's class or reason contains S)\n"
        "The runner path defaults to $AGORA_RUNNER.\n");
    return 2;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    opts o = {.runner = getenv("AGORA_RUNNER"),
              .jobs = 1,
              .timeout_ms = 5000,
              .memory_mib = 256,
              .threads = 16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--fork-per-job"))
            o.fork_per_job = 1;
        else if (!strcmp(a, "--bad-hash"))
            o.bad_hash = 1;
        else if (!strcmp(a, "--listen"))
            o.listen = 1;
        else if (!strcmp(a, "--quiet"))
            o.quiet = 1;
        else if (!strcmp(a, "--allow-weak"))
            o.allow_weak = 1;
        else if (!strcmp(a, "--host-garbage"))
            o.host_garbage = 1;
        else if (!strcmp(a, "--unsealed"))
            o.unsealed = 1;
        else if (!strcmp(a, "--trap"))
            o.trap = 1;
        else if (!strcmp(a, "--check-root"))
            o.check_root = 1;
        else if (!strcmp(a, "--host-flags"))
            o.host_flags = 1;
        else if (!strcmp(a, "--needs-landlock")) {
            if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1u /* VERSION */) < 1) {
                printf("SKIP: this kernel has no Landlock, which this test exercises\n");
                return 77;
            }
        } else if (v == NULL)
            return usage();
        else if (!strcmp(a, "--runner"))
            o.runner = v, i++;
        else if (!strcmp(a, "--wrapper"))
            o.wrapper = v, i++;
        else if (!strcmp(a, "--wrapper-arg"))
            o.wrapper_arg = v, i++;
        else if (!strcmp(a, "--cancel-after-ms"))
            o.cancel_after_ms = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--plugin"))
            o.plugin = v, i++;
        else if (!strcmp(a, "--id"))
            o.id = v, i++;
        else if (!strcmp(a, "--version"))
            o.version = v, i++;
        else if (!strcmp(a, "--expect"))
            o.expect = v, i++;
        else if (!strcmp(a, "--expect-reason"))
            o.expect_reason = v, i++;
        else if (!strcmp(a, "--root-has"))
            o.root_has = v, i++;
        else if (!strcmp(a, "--forbid"))
            o.forbid = v, i++;
        else if (!strcmp(a, "--jobs"))
            o.jobs = atoi(v), i++;
        else if (!strcmp(a, "--timeout-ms"))
            o.timeout_ms = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--memory-mib"))
            o.memory_mib = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--max-peak-mib"))
            o.max_peak_mib = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--max-pte-kib"))
            o.max_pte_kib = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--threads"))
            o.threads = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--job-map-mib"))
            o.job_map_mib = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--attr") && o.n_attrs < MAX_ATTRS && strchr(v, '=')) {
            char *kv = strdup(v);
            char *eq = strchr(kv, '=');
            *eq = '\0';
            o.attr_k[o.n_attrs] = kv;
            o.attr_v[o.n_attrs++] = eq + 1;
            i++;
        } else
            return usage();
    }
    if (o.runner == NULL || o.plugin == NULL || o.id == NULL || o.version == NULL || o.jobs < 1)
        return usage();
    state st = {.pid = -1, .sock = -1, .out_pipe = -1, .listen_fd = -1};
    if (o.listen) {
        st.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (st.listen_fd < 0 || bind(st.listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            listen(st.listen_fd, 4) != 0) {
            fprintf(stderr, "runner_driver: cannot open a loopback listener\n");
            return 1;
        }
    }
    pthread_t smp;
    int sampling = pthread_create(&smp, NULL, sampler, NULL) == 0;
    run(&o, &st);
    if (st.pid > 0)
        kill_runner(&st);
    mem_stop = 1;
    if (sampling)
        pthread_join(smp, NULL);
    if (st.listen_fd >= 0) {
        int c = accept(st.listen_fd, NULL, NULL);
        if (c >= 0) {
            close(c);
            set_outcome(&st, "escaped", "the plugin connected to the test's loopback listener");
        }
    }
    printf("outcome=%s reason=\"%s\" warnings=\"%s\" findings=%zu measurements=%zu regions=%zu "
           "stdio_bytes=%llu peak_rss_kib=%llu page_tables_kib=%llu\n",
           st.cls, st.reason, st.warnings, st.findings, st.measurements, st.regions,
           (unsigned long long)st.stdio_bytes, (unsigned long long)mem_peak_kb,
           (unsigned long long)mem_pte_kb);
    fflush(stdout);
    if (o.expect == NULL) {
        for (int i = 0; i < o.n_attrs; i++)
            free(o.attr_k[i]);
        return 0;
    }
    int match = 0;
    char *exp = strdup(o.expect);
    for (char *tok = strtok(exp, ","); tok; tok = strtok(NULL, ","))
        if (!strcmp(tok, st.cls))
            match = 1;
    free(exp);
    if (match && o.expect_reason && strstr(st.reason, o.expect_reason) == NULL &&
        strstr(st.warnings, o.expect_reason) == NULL)
        match = 0;
    printf("jobs: %s\n", st.jobs_seen);
    if (o.check_root && root_unlistable) {
        printf("SKIP: /proc/PID/root of the worker is not readable (run as root to list the "
               "sandbox root from outside)\n");
        return 77;
    }
    if (match && o.check_root && check_root(root_listing) != 0)
        match = 0;
    if (match && o.root_has != NULL) {
        char want[600];
        snprintf(want, sizeof want, "\n%s\n", o.root_has);
        if (root_listing == NULL || strstr(root_listing, want) == NULL) {
            printf("FAIL: the sandbox root does not hold '%s'\n", o.root_has);
            match = 0;
        }
    }
    if (match && o.host_flags && check_host_flags(summary_full) != 0)
        match = 0;
    if (o.forbid != NULL && (strstr(st.jobs_seen, o.forbid) || strstr(st.reason, o.forbid))) {
        printf("FAIL: a job's result contains '%s' (data carried between jobs)\n", o.forbid);
        match = 0;
    }
    if (st.stdio_bytes > 65536) {
        printf("FAIL: the runner wrote %llu bytes to its stdout/stderr\n",
               (unsigned long long)st.stdio_bytes);
        match = 0;
    }
    if (o.max_peak_mib && mem_peak_kb > (uint64_t)o.max_peak_mib * 1024) {
        printf("FAIL: the sandbox's processes peaked at %llu KiB resident, above the bound of "
               "%u MiB\n",
               (unsigned long long)mem_peak_kb, o.max_peak_mib);
        match = 0;
    }
    if (o.max_peak_mib && mem_peak_kb == 0) {
        printf("FAIL: no memory sample of the sandbox's processes was taken\n");
        match = 0;
    }
    if (o.max_pte_kib && mem_pte_kb > o.max_pte_kib) {
        printf("FAIL: the sandbox's page tables reached %llu KiB, above the bound of %u KiB\n",
               (unsigned long long)mem_pte_kb, o.max_pte_kib);
        match = 0;
    }
    for (int i = 0; i < o.n_attrs; i++)
        free(o.attr_k[i]); /* the value lives in the same block */
    if (!match)
        printf("FAIL: expected outcome %s%s%s\n", o.expect,
               o.expect_reason ? " with reason containing " : "",
               o.expect_reason ? o.expect_reason : "");
    return match ? 0 : 1;
}
