/*
 * Process layout and namespaces.
 *
 *   host ──fork/exec──▶ outer (the pid the host knows; stays in the host namespaces)
 *                         │ clone(NEWUSER|NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS)
 *                         ▼
 *                       reaper (pid 1 inside; builds the root, then only reaps)
 *                         │ fork
 *                         ▼
 *                       worker (pid 2; drops everything, loads the plugin, serves jobs)
 *
 * The outer process writes the id maps of the new user namespace (a process inside cannot map
 * an id other than its own), then only waits: it closes every descriptor but a status pipe and
 * runs under the supervisor filter. The reaper writes the worker's raw wait status into that
 * pipe so the outer process can exit with exactly the worker's status (a worker killed by SIGSYS
 * makes the outer process die of SIGSYS too), which is what the host classifies.
 *
 * Everybody dies with its parent (PR_SET_PDEATHSIG), and when the reaper (pid 1) dies the kernel
 * kills everything left in the pid namespace.
 */
#include "runner.h"
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONFINE_FAIL(code, ...)                                                                    \
    agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, (code), __VA_ARGS__)

agora__runner_ns agora__runner_ns_state;

static const struct {
    int flag;
    const char *name;
} ns_flags[] = {
    {CLONE_NEWUSER, "user"},   {CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mount"},
    {CLONE_NEWNET, "network"}, {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"},
};

static long raw_clone(unsigned long flags)
{
    /* Raw clone without a new stack behaves like fork(); the runner is single-threaded here. */
    return syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

/* Is one namespace flag (plus those already accepted) allowed? Probed in a throwaway child. */
static int probe(unsigned long flags)
{
    long pid = raw_clone(flags);
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return 0;
    int st;
    while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR)
        ;
    return 1;
}

static void add_warning(agora__runner_setup *s, const char *what)
{
    if (s->n_warnings < sizeof s->warnings / sizeof s->warnings[0])
        snprintf(s->warnings[s->n_warnings++], sizeof s->warnings[0],
                 "no %s namespace (refused by the kernel)", what);
}

static int write_file(pid_t pid, const char *name, const char *text)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int e = n == (ssize_t)strlen(text) ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

static void close_all_but(int keep)
{
    for (int fd = 0; fd < keep; fd++)
        close(fd);
    syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u);
}

/* Die with exactly the status the worker died with. */
static void __attribute__((noreturn)) propagate(int st)
{
    if (WIFEXITED(st))
        _exit(WEXITSTATUS(st));
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        kill(getpid(), sig);
        _exit(128 + sig); /* a signal whose default is to ignore */
    }
    _exit(AGORA__RUNNER_EXIT_INTERNAL);
}

static void __attribute__((noreturn))
outer_wait(agora__runner_setup *s, pid_t reaper, int status_fd)
{
    /* Nothing but a status pipe and wait4 from here on. */
    if (dup2(status_fd, 0) < 0)
        _exit(AGORA__RUNNER_EXIT_INTERNAL);
    close_all_but(0);
    /* Not dumpable: no core of a re-raised SIGSYS (even with a pipe core_pattern), no ptrace. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        agora__runner_filter_install(&s->bpf[AGORA__PROFILE_SUPERVISOR]) != 0) {
        kill(reaper, SIGKILL);
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    }
    int wst = 0;
    size_t got = 0;
    while (got < sizeof wst) {
        ssize_t n = read(0, (char *)&wst + got, sizeof wst - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int rst = 0;
    while (waitpid(reaper, &rst, 0) < 0) {
        if (errno != EINTR)
            _exit(AGORA__RUNNER_EXIT_INTERNAL);
    }
    propagate(got == sizeof wst ? wst : rst);
}

static void __attribute__((noreturn))
reaper_loop(agora__runner_setup *s, pid_t worker, int status_fd)
{
    if (dup2(status_fd, 0) < 0)
        _exit(AGORA__RUNNER_EXIT_INTERNAL);
    close_all_but(0);
    /* Weak mode without a user namespace: the reaper would still be the host's root. */
    if (!(agora__runner_ns_state.flags & CLONE_NEWUSER) && geteuid() == 0 &&
        (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
         setresuid(65534, 65534, 65534) != 0)) {
        kill(worker, SIGKILL);
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        agora__runner_filter_install(&s->bpf[AGORA__PROFILE_SUPERVISOR]) != 0) {
        kill(worker, SIGKILL);
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    }
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            _exit(AGORA__RUNNER_EXIT_INTERNAL);
        }
        if (pid == worker) {
            (void)!write(0, &st, sizeof st);
            _exit(0);
        }
        /* Any other pid is an orphan of the worker (e.g. a zygote job child): just reaped. */
    }
}

void agora__runner_enter_sandbox(agora__runner_setup *s)
{
    agora__runner_ns *ns = &agora__runner_ns_state;
    memset(ns, 0, sizeof *ns);
    ns->plugin_fd = -1;
    int root = geteuid() == 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        CONFINE_FAIL(-errno, "PR_SET_PDEATHSIG failed: %s", strerror(errno));
    if (getppid() != s->host_pid)
        _exit(AGORA__RUNNER_EXIT_CONFINE); /* the host died before we armed it */
    /* Supplementary groups of the host would follow us into the namespace, where setgroups is
     * denied: shed them while we still can (root only; others have none that matter). */
    if (root && setgroups(0, NULL) != 0)
        CONFINE_FAIL(-errno, "setgroups(0) failed: %s", strerror(errno));
    struct rlimit nocore = {0, 0};
    if (setrlimit(RLIMIT_CORE, &nocore) != 0)
        CONFINE_FAIL(-errno, "RLIMIT_CORE=0 failed: %s", strerror(errno));

    unsigned long want = 0;
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++)
        want |= (unsigned long)ns_flags[i].flag;
    unsigned long have = want;
    int sync_p[2], status_p[2];
    if (pipe2(sync_p, O_CLOEXEC) != 0 || pipe2(status_p, O_CLOEXEC) != 0)
        CONFINE_FAIL(-errno, "pipe failed: %s", strerror(errno));

    long pid = raw_clone(want);
    if (pid < 0) {
        int e = errno;
        if (!s->allow_weak)
            CONFINE_FAIL(-e,
                         "the kernel refused new user/pid/mount/net/ipc/uts namespaces (clone: "
                         "%s); enable unprivileged user namespaces "
                         "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone) or "
                         "allow weak isolation for this plugin",
                         strerror(e));
        have = 0;
        for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
            if (probe(have | (unsigned long)ns_flags[i].flag))
                have |= (unsigned long)ns_flags[i].flag;
            else
                add_warning(s, ns_flags[i].name);
        }
        pid = raw_clone(have);
        if (pid < 0)
            CONFINE_FAIL(-errno, "clone with the namespaces the kernel allowed failed: %s",
                         strerror(errno));
    }
    ns->flags = have;
    if (pid > 0) {
        /* outer */
        close(sync_p[0]);
        close(status_p[1]);
        if (have & CLONE_NEWUSER) {
            char map[64];
            unsigned outer_uid = root ? 65534u : (unsigned)geteuid();
            unsigned outer_gid = root ? 65534u : (unsigned)getegid();
            int e = write_file((pid_t)pid, "setgroups", "deny");
            if (e == 0) {
                snprintf(map, sizeof map, "0 %u 1\n", outer_uid);
                e = write_file((pid_t)pid, "uid_map", map);
            }
            if (e == 0) {
                snprintf(map, sizeof map, "0 %u 1\n", outer_gid);
                e = write_file((pid_t)pid, "gid_map", map);
            }
            if (e != 0) {
                kill((pid_t)pid, SIGKILL);
                CONFINE_FAIL(e, "writing the user namespace id maps failed: %s", strerror(-e));
            }
        }
        if (write(sync_p[1], "G", 1) != 1) {
            kill((pid_t)pid, SIGKILL);
            CONFINE_FAIL(-errno, "releasing the sandbox failed: %s", strerror(errno));
        }
        close(sync_p[1]);
        outer_wait(s, (pid_t)pid, status_p[0]);
    }

    /* reaper: pid 1 of the new pid namespace (when the kernel gave us one) */
    close(sync_p[1]);
    close(status_p[0]);
    char go = 0;
    /* EOF here means the outer process died before releasing us. */
    if (read(sync_p[0], &go, 1) != 1 || go != 'G')
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    close(sync_p[0]);
    if (have & CLONE_NEWUSER) {
        /* Until now we still carried the host's ids; this switches to the mapped ones. */
        if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
            CONFINE_FAIL(-errno, "switching to the namespace's root ids failed: %s",
                         strerror(errno));
    }
    /* Armed only now: the kernel clears the parent-death signal whenever the effective ids
     * change, as they just did. If the outer process died in between, its end of the status
     * pipe is closed and the pipe reports an error. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        CONFINE_FAIL(-errno, "PR_SET_PDEATHSIG failed: %s", strerror(errno));
    struct pollfd pf = {.fd = status_p[1], .events = POLLOUT};
    if (poll(&pf, 1, 0) != 1 || (pf.revents & (POLLERR | POLLHUP)))
        _exit(AGORA__RUNNER_EXIT_CONFINE);
    if (have & CLONE_NEWUTS)
        (void)!sethostname("agora", 5);
    if (have & CLONE_NEWNS)
        agora__runner_build_root(s);
    else if (!s->ingest)
        agora__runner_plugin_memfd(s);
    ns->reaper_pid = getpid();
    pid_t worker = fork();
    if (worker < 0)
        CONFINE_FAIL(-errno, "forking the worker failed: %s", strerror(errno));
    if (worker > 0)
        reaper_loop(s, worker, status_p[1]);
    close(status_p[1]);
}
