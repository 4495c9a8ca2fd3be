/*
 * Hostile plugins for the sandbox tests. One source, one attack per build: ATTACK selects it
 * (see attacks[] below) and IN_CTOR=1 runs it from a constructor at dlopen time instead of from
 * process(). If an attack returns (instead of the sandbox killing the process), the plugin
 * reports what happened: "blocked: ..." as a plugin error when the call failed, or "ESCAPED: ..."
 * as a successful job when it worked — the tests fail on the latter.
 *
 * Harmless even if the sandbox failed: only the direct parent is ever signalled, memory is capped
 * at 2 GiB, forks at 1, files are written only under HOSTILE_TMP (a build directory), and the
 * only connection attempted is to the test's own loopback listener.
 */
#include "agora/agora.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ATTACK
#error "build with -DATTACK=<n>"
#endif
#ifndef IN_CTOR
#define IN_CTOR 0
#endif
#ifndef HOSTILE_TMP
#define HOSTILE_TMP "/nonexistent-hostile-tmp"
#endif

static char outcome[512];
static int outcome_code = AGORA_EINTERNAL;
static int port = 9;
static const agora_host *hostile_host;

static void blocked(const char *what)
{
    snprintf(outcome, sizeof outcome, "blocked: %s: %s", what, strerror(errno));
}

static void escaped(const char *what)
{
    snprintf(outcome, sizeof outcome, "ESCAPED: %s", what);
    outcome_code = AGORA_OK;
}

static void a_read_file(void)
{
    int fd = open("/etc/passwd", O_RDONLY);
    if (fd < 0)
        return blocked("open /etc/passwd");
    char b[64];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    if (n > 0)
        escaped("read /etc/passwd");
    else
        blocked("read /etc/passwd");
}

static void a_write_file(void)
{
    int fd = open(HOSTILE_TMP "/escaped", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return blocked("create a file");
    ssize_t n = write(fd, "x", 1);
    close(fd);
    if (n == 1)
        escaped("wrote " HOSTILE_TMP "/escaped");
    else
        blocked("write");
}

static void a_connect(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return blocked("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        blocked("connect");
        close(s);
        return;
    }
    close(s);
    escaped("connected to the loopback listener");
}

static void a_exec(void)
{
    char *argv[] = {(char *)"/bin/true", NULL};
    char *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    blocked("execve /bin/true");
}

static void a_fork(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p < 0)
        return blocked("fork");
    waitpid(p, NULL, 0);
    escaped("forked a process");
}

static void a_kill_parent(void)
{
    if (kill(getppid(), SIGTERM) != 0)
        return blocked("kill(getppid(), SIGTERM)");
    escaped("signalled the parent");
}

static void a_ptrace(void)
{
    if (ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) != 0)
        return blocked("ptrace attach");
    escaped("attached to the parent");
}

static void a_memory(void)
{
    enum { CHUNK = 16 << 20, MAX_CHUNKS = 128 }; /* 2 GiB cap */
    void *chunks[MAX_CHUNKS];
    int n = 0;
    for (; n < MAX_CHUNKS; n++) {
        chunks[n] = malloc(CHUNK);
        if (chunks[n] == NULL)
            break;
        memset(chunks[n], 0xa5, CHUNK);
    }
    for (int i = 0; i < n; i++)
        free(chunks[i]);
    if (n == MAX_CHUNKS) {
        escaped("allocated 2 GiB");
        return;
    }
    snprintf(outcome, sizeof outcome, "blocked: allocation failed after %d MiB", n * 16);
    outcome_code = AGORA_ENOMEM;
}

static void a_spin(void)
{
    for (volatile unsigned long i = 0;; i++)
        ;
}

static void a_segfault(void)
{
    static volatile uintptr_t addr = 16; /* volatile: the compiler cannot see it is bogus */
    volatile int *p = (volatile int *)addr;
    *p = 1;
    blocked("segfault did not fault");
}

static int recurse(int depth)
{
    volatile char pad[4096];
    pad[0] = (char)depth;
    return recurse(depth + 1) + pad[0];
}

static void a_stack(void)
{
    (void)recurse(0);
    blocked("stack overflow did not fault");
}

static void a_garbage(void)
{
    static const char junk[] = "\x10\x00\x00\x00 this is not a protobuf frame at all!";
    if (write(3, junk, sizeof junk) < 0)
        return blocked("write garbage to fd 3");
    snprintf(outcome, sizeof outcome, "wrote garbage to fd 3");
}

static void a_oversized(void)
{
    static const unsigned char hdr[4] = {0xff, 0xff, 0xff, 0x7f};
    if (write(3, hdr, 4) < 0)
        return blocked("write an oversized header to fd 3");
    static char filler[4096];
    for (int i = 0; i < 16; i++)
        if (write(3, filler, sizeof filler) < 0)
            break;
    snprintf(outcome, sizeof outcome, "wrote an oversized frame header to fd 3");
}

static void a_flood(void)
{
    static char buf[65536];
    memset(buf, 'A', sizeof buf);
    uint64_t ok = 0;
    for (int i = 0; i < 512; i++) { /* 32 MiB to each of stdout and stderr */
        ssize_t a = write(1, buf, sizeof buf);
        ssize_t b = write(2, buf, sizeof buf);
        ok += (uint64_t)(a > 0 ? a : 0) + (uint64_t)(b > 0 ? b : 0);
    }
    if (ok > 0)
        escaped("wrote to stdout/stderr");
    else
        blocked("write to stdout/stderr");
}

static void a_int80(void)
{
    long ret;
    /* 32-bit getpid (20) through the i386 entry point. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    if (ret > 0)
        escaped("i386 syscall returned");
    else {
        errno = (int)-ret;
        blocked("int 0x80");
    }
}

static void a_x32(void)
{
    long r = syscall(0x40000000L | SYS_getpid);
    if (r > 0)
        escaped("x32 syscall returned");
    else
        blocked("x32 getpid");
}

static void a_io_uring(void)
{
    char params[120];
    memset(params, 0, sizeof params);
    long fd = syscall(425 /* io_uring_setup */, 4, params);
    if (fd < 0)
        return blocked("io_uring_setup");
    close((int)fd);
    escaped("created an io_uring");
}

static void a_exec_mem(void)
{
    void *p =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return blocked("mmap");
        if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0)
            return blocked("mprotect PROT_EXEC");
    }
    escaped("got executable memory");
}

static void a_unshare(void)
{
    if (unshare(CLONE_NEWUSER) == 0)
        return escaped("created a user namespace");
    if (mount("none", "/", "tmpfs", 0, NULL) == 0)
        return escaped("mounted a tmpfs");
    blocked("unshare/mount");
}

static void a_sendfd(void)
{
    int fd = 0; /* any descriptor will do */
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(3, &msg, 0) < 0)
        return blocked("sendmsg SCM_RIGHTS on fd 3");
    snprintf(outcome, sizeof outcome, "sent a descriptor to the host");
}

/* Out-of-band data on the host socket: unneeded kernel surface (issue 8). */
static void a_oob(void)
{
    char byte = 'x';
    if (sendto(3, &byte, 1, MSG_OOB, NULL, 0) < 0)
        return blocked("sendto MSG_OOB on fd 3");
    escaped("sent out-of-band data");
}

/* fcntl(F_DUPFD*) is dup by another name (issue 8). */
static void a_dupfd(void)
{
    int fd = fcntl(3, F_DUPFD_CLOEXEC, 10);
    if (fd < 0)
        fd = fcntl(3, F_DUPFD, 10);
    if (fd < 0)
        return blocked("fcntl F_DUPFD of fd 3");
    escaped("duplicated fd 3 with fcntl");
}

static volatile int release_threads;

static void *idle_thread(void *arg)
{
    (void)arg;
    while (!release_threads)
        usleep(1000);
    return NULL;
}

static void a_threads(void)
{
    enum { WANT = 64 }; /* the driver allows 16 threads */
    pthread_t t[WANT];
    int n = 0;
    for (; n < WANT; n++)
        if (pthread_create(&t[n], NULL, idle_thread, NULL) != 0)
            break;
    release_threads = 1;
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    if (n == WANT) {
        escaped("started 64 threads");
        return;
    }
    snprintf(outcome, sizeof outcome, "blocked: thread %d of %d refused", n + 1, WANT);
}

static void (*const attacks[])(void) = {
    a_read_file, a_write_file, a_connect, a_exec,    a_fork,      a_kill_parent, a_ptrace, a_memory,
    a_spin,      a_segfault,   a_stack,   a_garbage, a_oversized, a_flood,       a_int80,  a_x32,
    a_io_uring,  a_exec_mem,   a_unshare, a_sendfd,  a_threads,   a_oob,         a_dupfd,
};

#if IN_CTOR
__attribute__((constructor)) static void hostile_ctor(void)
{
    attacks[ATTACK]();
}
#endif

static int32_t hostile_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
#if !IN_CTOR
    const char *p = hostile_host->attr_get(job, "Port");
    if (p != NULL)
        port = atoi(p);
    attacks[ATTACK]();
#endif
    if (outcome_code == AGORA_OK) {
        hostile_host->set_summary(job, outcome);
        return AGORA_OK;
    }
    hostile_host->set_error(job, outcome[0] ? outcome : "attack returned");
    return outcome_code;
}

static int32_t hostile_init(const agora_host *host, void **state)
{
    hostile_host = host;
    *state = NULL;
    return AGORA_OK;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.hostile",
    .version = "1.0.0",
    .init = hostile_init,
    .process = hostile_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
