/*
 * Carry-over probes for fork-per-job: each build (CHANNEL) tries one way by which init or job N
 * could hand data to job N+1. Every job first looks for what an earlier job (or init) planted
 * and reports "FOUND ..." in its summary when it sees it; otherwise it plants and reports
 * "clean". The test (runner_driver --forbid FOUND) searches every job's result from outside.
 * Where the plant itself is refused the job ends as the sandbox decides (EPERM, EBADF, or
 * SIGSYS), which the test expects.
 *
 * Harmless if the sandbox failed: no memory beyond a page, at most two processes (C_ORPHAN; they
 * live in the sandbox's pid namespace and end with it), no files outside /carry and
 * /dev/shm/agora-carry (read-only roots in the sandbox), signals only to itself or its direct
 * parent (ptrace only of the direct parent), no network.
 */
#include "agora/agora.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define C_GLOBAL     0
#define C_ENV        1
#define C_SHM_INIT   2
#define C_PIPE_INIT  3
#define C_THREAD     4
#define C_FORGE      5
#define C_FILE       6
#define C_SIGNAL     7
#define C_OUTPUT     8
#define C_JOB_THREAD 9
#define C_SYSV_SHM   10
#define C_ABSTRACT   11
#define C_DEV_SHM    12
#define C_PTRACE     13
#define C_SIGCHLD    14
#define C_TIMER      15
#define C_ORPHAN     16
#define C_ATFORK     17

#ifndef CHANNEL
#error "build with -DCHANNEL=n"
#endif

static const agora_host *host;
static char marker[32]; /* built at run time so no summary contains it by accident */
static char global_buf[64];
static char *shared_page;
static int pipe_fds[2] = {-1, -1};
static volatile int lingering_alive;
static volatile int sigchld_status = -1;
static int jobs_seen;
static volatile int prepares;
static char stolen[64];

/* Runs in the process that forks (the zygote) if the runner uses fork(): it would hold the job's
 * channel at fd 3 then, so peek at what the host sent there. */
static void atfork_prepare(void)
{
    prepares++;
    ssize_t n = recv(3, stolen, sizeof stolen - 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        stolen[n] = '\0';
}

static void make_marker(void)
{
    snprintf(marker, sizeof marker, "%s-%d", "CARRY", 7331);
}

static int32_t report(agora_job *job, const char *found)
{
    char msg[256];
    if (found != NULL) {
        snprintf(msg, sizeof msg, "FOUND %s (planted by an earlier job or init)", found);
        host->set_summary(job, msg);
    } else {
        snprintf(msg, sizeof msg, "clean (job %d of this process)", ++jobs_seen);
        host->set_summary(job, msg);
    }
    return AGORA_OK;
}

static int32_t fail(agora_job *job, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, "blocked: %s: %s", what, strerror(errno));
    host->set_error(job, msg);
    return AGORA_EINTERNAL;
}

static void *init_lurker(void *arg)
{
    (void)arg;
    for (;;)
        sleep(1);
    return NULL;
}

static void *job_lurker(void *arg)
{
    (void)arg;
    for (;;) {
        lingering_alive++;
        usleep(1000);
    }
    return NULL;
}

static void on_sigchld(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    sigchld_status = si->si_status;
}

static void on_usr1(int sig)
{
    (void)sig;
}

static int32_t carry_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    make_marker();
    switch (CHANNEL) {
    case C_SHM_INIT: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        shared_page = p == MAP_FAILED ? NULL : p; /* refused in fork mode: the job says so */
        break;
    }
    case C_PIPE_INIT:
        if (pipe2(pipe_fds, O_NONBLOCK) != 0)
            return AGORA_EINTERNAL;
        break;
    case C_THREAD: {
        pthread_t t;
        if (pthread_create(&t, NULL, init_lurker, NULL) != 0)
            return AGORA_EINTERNAL;
        break;
    }
    case C_ATFORK:
        pthread_atfork(atfork_prepare, NULL, NULL);
        break;
    case C_ORPHAN: {
        /* A grandchild orphaned to the sandbox's reaper, out of the zygote's wait: it would
         * hold a copy of the zygote's host socket. (Ends with the sandbox.) */
        pid_t c = fork();
        if (c == 0) {
            if (fork() == 0)
                for (;;)
                    sleep(1);
            _exit(0);
        }
        if (c > 0)
            waitpid(c, NULL, 0);
        break;
    }
    case C_SIGCHLD: {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigchld;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigaction(SIGCHLD, &sa, NULL);
        break;
    }
    default:
        break;
    }
    return AGORA_OK;
}

/* A Result frame for job 1 with a summary, as the runner would encode it (forged). */
static size_t forged_result(uint8_t *out)
{
    static const char text[] = "FORGED result from job 1";
    uint8_t body[64];
    size_t n = 0;
    body[n++] = 0x08; /* job_id = 1 */
    body[n++] = 1;
    body[n++] = 0x10; /* status = JOB_OK */
    body[n++] = 1;
    body[n++] = 0x42; /* summary */
    body[n++] = (uint8_t)(sizeof text - 1);
    memcpy(body + n, text, sizeof text - 1);
    n += sizeof text - 1;
    size_t len = 2 + n;
    out[0] = (uint8_t)len;
    out[1] = out[2] = out[3] = 0;
    out[4] = 0x42; /* Frame.result (field 8, length-delimited) */
    out[5] = (uint8_t)n;
    memcpy(out + 6, body, n);
    return 4 + len;
}

static int32_t carry_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    switch (CHANNEL) {
    case C_GLOBAL:
        if (strcmp(global_buf, marker) == 0)
            return report(job, "in a global variable");
        snprintf(global_buf, sizeof global_buf, "%s", marker);
        return report(job, NULL);
    case C_ENV: {
        const char *v = getenv("AGORA_CARRY");
        if (v != NULL && strcmp(v, marker) == 0)
            return report(job, "in the environment");
        setenv("AGORA_CARRY", marker, 1);
        return report(job, NULL);
    }
    case C_SHM_INIT:
        if (shared_page == NULL) {
            errno = EPERM;
            return fail(job, "init's shared anonymous mapping was refused");
        }
        if (strcmp(shared_page, marker) == 0)
            return report(job, "in init's shared anonymous mapping");
        memcpy(shared_page, marker, strlen(marker) + 1);
        return report(job, NULL);
    case C_PIPE_INIT: {
        char buf[64] = {0};
        /* The number may name another descriptor now: never block on it. */
        int fl = fcntl(pipe_fds[0], F_GETFL);
        if (fl >= 0)
            (void)fcntl(pipe_fds[0], F_SETFL, fl | O_NONBLOCK);
        ssize_t n = read(pipe_fds[0], buf, sizeof buf - 1);
        if (n > 0 && strstr(buf, marker) != NULL)
            return report(job, "in init's pipe");
        if (write(pipe_fds[1], marker, strlen(marker)) < 0)
            return fail(job, "writing init's pipe");
        return report(job, NULL);
    }
    case C_THREAD:
        return report(job, NULL); /* never reached in fork mode: init left a thread */
    case C_FORGE: {
        /* Answer our own job with a forged Result on every descriptor, then listen on them
         * all for the next job. */
        uint8_t fr[128];
        size_t n = forged_result(fr);
        int wrote = 0;
        for (int fd = 0; fd < 16; fd++)
            if (write(fd, fr, n) == (ssize_t)n)
                wrote++;
        if (wrote == 0)
            return fail(job, "no descriptor took the forged Result");
        struct pollfd pf[16];
        for (int fd = 0; fd < 16; fd++)
            pf[fd] = (struct pollfd){.fd = fd, .events = POLLIN};
        if (poll(pf, 16, 1000) > 0)
            for (int fd = 0; fd < 16; fd++) {
                char buf[4096];
                if ((pf[fd].revents & POLLIN) && read(fd, buf, sizeof buf) > 0)
                    return report(job, "a frame read from a descriptor after the forged Result");
            }
        return report(job, NULL);
    }
    case C_FILE:
    case C_DEV_SHM: {
        const char *path = CHANNEL == C_FILE ? "/carry" : "/dev/shm/agora-carry";
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            close(fd);
            return report(job, "in a file of the sandbox root");
        }
        fd = open(path, O_WRONLY | O_CREAT, 0600); /* refused by the policy */
        if (fd < 0)
            return fail(job, "creating a file");
        if (write(fd, marker, strlen(marker)) < 0)
            return fail(job, "writing a file");
        close(fd);
        return report(job, NULL);
    }
    case C_SIGNAL: {
        /* A handler, a blocked signal, and a signal to the parent (the zygote). */
        struct sigaction old;
        sigaction(SIGUSR1, NULL, &old);
        sigset_t cur;
        sigprocmask(SIG_BLOCK, NULL, &cur);
        if (old.sa_handler == on_usr1)
            return report(job, "a signal handler installed by an earlier job");
        if (sigismember(&cur, SIGUSR2))
            return report(job, "a signal mask set by an earlier job");
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sigset_t s2;
        sigemptyset(&s2);
        sigaddset(&s2, SIGUSR2);
        sigprocmask(SIG_BLOCK, &s2, NULL);
        syscall(SYS_tgkill, getppid(), getppid(), SIGUSR1);
        return report(job, NULL);
    }
    case C_OUTPUT:
        for (int fd = 0; fd < 16; fd++) {
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4096)
                continue;
            char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED)
                continue; /* the sealed pixel memfd */
            int found = memcmp(p, marker, strlen(marker)) == 0;
            memcpy(p, marker, strlen(marker));
            munmap(p, 4096);
            if (found)
                return report(job, "in the output memfd");
        }
        return report(job, NULL);
    case C_JOB_THREAD: {
        int before = lingering_alive;
        usleep(20000);
        if (lingering_alive != before)
            return report(job, "a thread of an earlier job still running");
        pthread_t t;
        if (pthread_create(&t, NULL, job_lurker, NULL) != 0)
            return fail(job, "pthread_create");
        pthread_detach(t);
        return report(job, NULL);
    }
    case C_SYSV_SHM:
        if (syscall(SYS_shmget, 0x7331, 4096, 01000 | 0600) < 0) /* IPC_CREAT */
            return fail(job, "shmget");
        return report(job, NULL);
    case C_ABSTRACT: {
        int s = socket(AF_UNIX, SOCK_DGRAM, 0);
        if (s < 0)
            return fail(job, "socket");
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        memcpy(a.sun_path + 1, "agora-carry", 11);
        if (bind(s, (struct sockaddr *)&a, sizeof(sa_family_t) + 12) != 0)
            return fail(job, "bind");
        return report(job, NULL);
    }
    case C_PTRACE: {
        /* Attach to the direct parent (the zygote in fork mode) to read its memory. */
        if (ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) != 0)
            return fail(job, "ptrace");
        return report(job, "ptrace attached to the parent");
    }
    case C_SIGCHLD:
        if (sigchld_status == 0x5A)
            return report(job, "an exit status seen by init's SIGCHLD handler in the zygote");
        _exit(0x5A); /* job 1 ends without a Result, with a status init's handler would see */
    case C_ATFORK:
        /* One prepare per fork of the zygote would show here; a job process counts none. */
        if (prepares > 0)
            return report(job, stolen[0] ? "job bytes peeked by init's atfork handler in the "
                                           "zygote"
                                         : "init's atfork handler ran in the zygote");
        return report(job, NULL);
    case C_TIMER: {
        struct itimerval it = {{0, 0}, {3600, 0}};
        if (setitimer(ITIMER_REAL, &it, NULL) != 0)
            return fail(job, "setitimer");
        return report(job, NULL);
    }
    default:
        return report(job, NULL);
    }
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.hostile",
    .version = "1.0.0",
    .init = carry_init,
    .process = carry_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
