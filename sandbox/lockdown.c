/*
 * The worker's last steps before plugin code: die with the reaper, shed capabilities (bounding
 * and ambient sets too), empty the environment, keep only the host socket, set resource limits,
 * no_new_privs, Landlock when the kernel has it, and the loader seccomp filter. Each step that
 * fails ends the worker with Error{CONFINE}: it never continues half-confined.
 */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CONFINE_FAIL(code, ...)                                                                    \
    agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, (code), __VA_ARGS__)

static void limit(int res, rlim_t soft, rlim_t hard, const char *name)
{
    struct rlimit rl = {soft, hard};
    if (setrlimit(res, &rl) != 0)
        CONFINE_FAIL(-errno, "setting %s failed: %s", name, strerror(errno));
}

/* Bounding and ambient sets first, while CAP_SETPCAP is still held; then lock the securebits. */
static void drop_bounding(void)
{
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            CONFINE_FAIL(-errno, "dropping capability %d from the bounding set failed: %s", cap,
                         strerror(errno));
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        CONFINE_FAIL(-errno, "clearing ambient capabilities failed: %s", strerror(errno));
    if (prctl(PR_SET_SECUREBITS,
              SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                  SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
              0, 0, 0) != 0)
        CONFINE_FAIL(-errno, "PR_SET_SECUREBITS failed: %s", strerror(errno));
}

/* Then the effective, permitted and inheritable sets, and check that nothing is left. */
static void drop_caps(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) != 0)
        CONFINE_FAIL(-errno, "capset to nothing failed: %s", strerror(errno));
    memset(data, 0xff, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0 || data[0].effective || data[0].permitted ||
        data[0].inheritable || data[1].effective || data[1].permitted || data[1].inheritable)
        CONFINE_FAIL(-EPERM, "capabilities are still present after dropping them");
}

/* stdin/stdout/stderr become the read end of an empty pipe whose write end is closed: reads see
 * EOF, writes fail with EBADF. Nothing a plugin prints reaches the host or fills a disk, and the
 * low descriptor numbers can never alias a job memfd. */
static void inert_stdio(void)
{
    int p[2];
    if (pipe2(p, 0) != 0)
        CONFINE_FAIL(-errno, "pipe for stdio failed: %s", strerror(errno));
    close(p[1]);
    for (int fd = 0; fd <= 2; fd++)
        if (p[0] != fd && dup2(p[0], fd) != fd)
            CONFINE_FAIL(-errno, "dup2 onto stdio failed: %s", strerror(errno));
    if (p[0] > 2)
        close(p[0]);
}

static void close_others(int keep)
{
    /* Everything above the host socket goes, except the weak-mode plugin memfd. */
    if (keep < 0) {
        if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
            CONFINE_FAIL(-errno, "close_range failed: %s", strerror(errno));
        return;
    }
    if (keep > 4 && syscall(SYS_close_range, 4u, (unsigned)keep - 1, 0u) != 0)
        CONFINE_FAIL(-errno, "close_range failed: %s", strerror(errno));
    if (syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) != 0)
        CONFINE_FAIL(-errno, "close_range failed: %s", strerror(errno));
}

void agora__runner_lock_down(agora__runner_setup *s)
{
    agora__runner_ns *ns = &agora__runner_ns_state;
    drop_bounding();
    if (!(ns->flags & CLONE_NEWUSER) && geteuid() == 0) {
        /* Weak mode without a user namespace: at least stop being the host's root. */
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            CONFINE_FAIL(-errno, "switching to uid/gid 65534 failed: %s", strerror(errno));
    }
    /* Not dumpable: a worker killed by SIGSYS/SIGSEGV leaves no core (even through a pipe
     * core_pattern, which ignores RLIMIT_CORE=0) and cannot be ptraced by same-uid processes.
     * Both this and the parent-death signal are reset by id changes, so they come after. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        CONFINE_FAIL(-errno, "PR_SET_DUMPABLE failed: %s", strerror(errno));
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        CONFINE_FAIL(-errno, "PR_SET_PDEATHSIG failed: %s", strerror(errno));
    if (getppid() != ((ns->flags & CLONE_NEWPID) ? 1 : ns->reaper_pid))
        _exit(AGORA__RUNNER_EXIT_CONFINE); /* the reaper died already */
    drop_caps();
    if (clearenv() != 0 || (!s->ingest && agora__runner_fixed_env(s->cpus) != 0))
        CONFINE_FAIL(-ENOMEM, "setting the fixed environment failed");
    inert_stdio();
    close_others(ns->plugin_fd);
    if (s->fork_per_job) {
        /* The zygote keeps its host socket high, so that fd 3 is free when a ForkJob's channel
         * arrives: the job process then finds its own channel at fd 3, as a warm worker does
         * (no dup is allowed once the loader filter is on). */
        int hi = fcntl(AGORA__RUNNER_FD, F_DUPFD_CLOEXEC, AGORA__RUNNER_ZYGOTE_FD);
        if (hi != AGORA__RUNNER_ZYGOTE_FD || close(AGORA__RUNNER_FD) != 0)
            CONFINE_FAIL(-EBADF, "moving the zygote's host socket to fd %d failed",
                         AGORA__RUNNER_ZYGOTE_FD);
        agora__runner_channel_set_fd(hi);
    }

    const agora__runner_limits *l = &s->limits;
    agora__memcap mc;
    agora__memcap_compute(l, s->fork_per_job, &mc);
    /* Fewer malloc arenas: each reserves 64 MiB of address space, all of it inside RLIMIT_AS. */
    if (mallopt(M_ARENA_MAX, (int)mc.arenas) != 1)
        CONFINE_FAIL(-EINVAL, "mallopt(M_ARENA_MAX) failed");
    if (agora__memcap_install_crash_probe() != 0)
        CONFINE_FAIL(-errno, "installing the out-of-memory crash probe failed: %s",
                     strerror(errno));
    limit(RLIMIT_DATA, mc.data_bytes, mc.data_bytes, "RLIMIT_DATA");
    limit(RLIMIT_AS, mc.as_bytes, mc.as_bytes, "RLIMIT_AS");
    limit(RLIMIT_STACK, AGORA__MEMCAP_MAIN_STACK, AGORA__MEMCAP_MAIN_STACK, "RLIMIT_STACK");
    limit(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
    limit(RLIMIT_FSIZE, 0, 0, "RLIMIT_FSIZE");
    limit(RLIMIT_NOFILE, 16, 16, "RLIMIT_NOFILE");
    limit(RLIMIT_MEMLOCK, 0, 0, "RLIMIT_MEMLOCK");
    limit(RLIMIT_MSGQUEUE, 0, 0, "RLIMIT_MSGQUEUE");
    /* Threads count as processes. Room for the worker, the reaper and (zygote mode) one job
     * child with its threads. Counted per user namespace on this kernel (see docs/sandbox.md). */
    rlim_t nproc = (rlim_t)l->max_threads * (s->fork_per_job ? 2 : 1) + 4;
    limit(RLIMIT_NPROC, nproc, nproc, "RLIMIT_NPROC");
    /* SIGXCPU at the soft limit, SIGKILL one second later. */
    limit(RLIMIT_CPU, l->cpu_seconds, (rlim_t)l->cpu_seconds + 1, "RLIMIT_CPU");

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        CONFINE_FAIL(-errno, "PR_SET_NO_NEW_PRIVS failed: %s", strerror(errno));

    /* Landlock: read (and execute) of exactly the files the root holds: the closure's regular
     * files (symlinks need no rule: opening one checks its target), the loader cache, the
     * plugin, and in a private root the CPU view. Without a mount namespace the paths are the
     * host's: the same list fences them. */
    char why[256];
    static const char *const fixed[] = {"/etc/ld.so.cache", "/plugin", "/proc/cpuinfo",
                                        "/sys/devices/system/cpu"};
    size_t n_fixed = s->ingest ? 0 : (ns->flags & CLONE_NEWNS) ? 4 : 1;
    const char **ro = malloc((n_fixed + s->n_root_files + 1) * sizeof *ro);
    if (ro == NULL)
        CONFINE_FAIL(-ENOMEM, "out of memory for the Landlock rules");
    size_t n_ro = 0;
    for (size_t i = 0; i < n_fixed; i++)
        ro[n_ro++] = fixed[i];
    for (size_t i = 0; i < s->n_root_files && !s->ingest; i++)
        ro[n_ro++] = s->root_files[i];
    int rc = agora__runner_landlock(ro, n_ro, -1, why, sizeof why);
    free(ro);
    if (rc < 0)
        CONFINE_FAIL(rc, "Landlock: %s", why);

    rc = agora__runner_filter_install(&s->bpf[AGORA__PROFILE_LOADER]);
    if (rc != 0)
        CONFINE_FAIL(rc, "installing the loader seccomp filter failed: %s", strerror(-rc));
}
