/*
 * Turns the policy table (policy.c) into BPF with libseccomp, before any namespace exists, and
 * installs compiled programs later with the raw seccomp(2) call: after compilation no libseccomp
 * code (and no allocation) is needed to confine.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NS_FLAGS                                                                                   \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |  \
     CLONE_NEWNET)

static uint32_t action_of(int act)
{
    switch (act) {
    case AGORA__ACT_ALLOW:
        return SCMP_ACT_ALLOW;
    case AGORA__ACT_ENOSYS:
        return SCMP_ACT_ERRNO(ENOSYS);
    case AGORA__ACT_EACCES:
        return SCMP_ACT_ERRNO(EACCES);
    case AGORA__ACT_EPERM:
        return SCMP_ACT_ERRNO(EPERM);
    case AGORA__ACT_ENOTTY:
        return SCMP_ACT_ERRNO(ENOTTY);
    default:
        return SCMP_ACT_KILL_PROCESS;
    }
}

static int add_clone(scmp_filter_ctx ctx, int nr, uint32_t act, int fork_too)
{
    int rc = seccomp_rule_add(
        ctx, act, nr, 1,
        SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_VM | NS_FLAGS, CLONE_THREAD | CLONE_VM));
    if (rc == 0 && fork_too)
        rc = seccomp_rule_add(ctx, act, nr, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_VM | NS_FLAGS, 0));
    return rc;
}

/* mmap flag bits the rules look at: the mapping type (shared/private/shared-validate),
 * anonymous, fixed, grows-down. Any other bit (NORESERVE, POPULATE, STACK, FIXED_NOREPLACE...)
 * is accepted as it is charged like the mapping it modifies. */
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#define MMAP_TYPE  0x0fu
#define MMAP_CARED (MMAP_TYPE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN)

/* PROT_EXEC outside what the loader maps from files answers EPERM: oneDNN and other JIT
 * libraries test for executable memory and fall back to plain code; nothing becomes executable.
 * Disjoint from every allow (those pin PROT_EXEC to 0, except the loader's private file ones,
 * which these do not match). */
static int exec_refuse(scmp_filter_ctx ctx, int nr, int loader)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    if (!loader)
        return seccomp_rule_add(ctx, eperm, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
    int rc = seccomp_rule_add(ctx, eperm, nr, 2, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC),
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, MAP_ANONYMOUS));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, eperm, nr, 2, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC),
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MMAP_TYPE, MAP_SHARED));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, eperm, nr, 2, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC),
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MMAP_TYPE, MAP_SHARED_VALIDATE));
    return rc;
}

static int mmap_allow(scmp_filter_ctx ctx, int nr, uint32_t a, uint64_t flags, int exec_ok)
{
    if (exec_ok)
        return seccomp_rule_add(ctx, a, nr, 1, SCMP_A3(SCMP_CMP_MASKED_EQ, MMAP_CARED, flags));
    return seccomp_rule_add(ctx, a, nr, 2, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
                            SCMP_A3(SCMP_CMP_MASKED_EQ, MMAP_CARED, flags));
}

/* Refusals answer EPERM instead of killing: allocators and libraries that try them can fall
 * back, and a hostile plugin is stopped either way. The refused patterns never overlap an
 * allowed one (every allow pins the type, anonymous, fixed and grows-down bits). */
static int mmap_refuse(scmp_filter_ctx ctx, int nr, int fixed_too)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    int rc = seccomp_rule_add(
        ctx, eperm, nr, 1,
        SCMP_A3(SCMP_CMP_MASKED_EQ, MMAP_TYPE | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, eperm, nr, 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MMAP_TYPE | MAP_ANONYMOUS,
                                      MAP_SHARED_VALIDATE | MAP_ANONYMOUS));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, eperm, nr, 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_GROWSDOWN, MAP_GROWSDOWN));
    if (rc == 0 && fixed_too)
        rc = seccomp_rule_add(ctx, eperm, nr, 1, SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_FIXED, MAP_FIXED));
    return rc;
}

static int add_mmap(scmp_filter_ctx ctx, int nr, uint32_t a, int loader)
{
    int rc = mmap_allow(ctx, nr, a, MAP_PRIVATE | MAP_ANONYMOUS, 0);
    if (rc == 0)
        rc = mmap_allow(ctx, nr, a, MAP_PRIVATE, loader);
    if (rc == 0)
        rc = mmap_allow(ctx, nr, a, MAP_SHARED, 0);
    if (rc == 0 && loader)
        rc = mmap_allow(ctx, nr, a, MAP_PRIVATE | MAP_FIXED, 1);
    if (rc == 0 && loader)
        rc = mmap_allow(ctx, nr, a, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
    if (rc == 0)
        rc = mmap_refuse(ctx, nr, !loader);
    if (rc == 0)
        rc = exec_refuse(ctx, nr, loader);
    return rc;
}

/* fcntl commands a worker may use; F_DUPFD and F_DUPFD_CLOEXEC are not among them (dup). */
static const int fcntl_ok[] = {F_GETFD,     F_SETFD,      F_GETFL,      F_SETFL,
                               F_GETLK,     F_SETLK,      F_SETLKW,     F_OFD_GETLK,
                               F_OFD_SETLK, F_OFD_SETLKW, F_GETPIPE_SZ, F_GET_SEALS};

/* Trap mode: the worker's SIGSYS handler (trap.c) is the runner's. rt_sigaction(SIGSYS, act)
 * answers EPERM; reading it, and every other signal, stay allowed. */
static int add_sigaction_trap(scmp_filter_ctx ctx, int nr, uint32_t a)
{
    int rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A0(SCMP_CMP_NE, SIGSYS));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, a, nr, 2, SCMP_A0(SCMP_CMP_EQ, SIGSYS),
                              SCMP_A1(SCMP_CMP_EQ, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 2, SCMP_A0(SCMP_CMP_EQ, SIGSYS),
                              SCMP_A1(SCMP_CMP_NE, 0));
    return rc;
}

static int add_row(scmp_filter_ctx ctx, const agora__policy_row *row, int profile, int fork_too,
                   int trap)
{
    int act = row->action[profile];
    if (act == AGORA__ACT_KILL)
        return 0; /* the default action already kills (or traps, in trap mode) */
    int nr = seccomp_syscall_resolve_name(row->syscall);
    if (nr == __NR_SCMP_ERROR)
        return -ENOENT;
    uint32_t a = action_of(act);
    if (row->arg == AGORA__ARG_SOCKET_UNIX)
        return seccomp_rule_add(ctx, a, nr, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (trap && act == AGORA__ACT_ALLOW && strcmp(row->syscall, "rt_sigaction") == 0)
        return add_sigaction_trap(ctx, nr, a);
    if (act != AGORA__ACT_ALLOW || row->arg == AGORA__ARG_ANY)
        return seccomp_rule_add(ctx, a, nr, 0);
    int flags_arg = strcmp(row->syscall, "open") == 0 ? 1 : 2;
    const uint64_t wr = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | 020000000 /*TMPFILE*/;
    int rc;
    switch (row->arg) {
    case AGORA__ARG_NO_EXEC:
        rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
        return rc;
    case AGORA__ARG_MMAP_LOAD:
        return add_mmap(ctx, nr, a, 1);
    case AGORA__ARG_MMAP_DATA:
        return add_mmap(ctx, nr, a, 0);
    case AGORA__ARG_MREMAP_MOVE:
        rc = seccomp_rule_add(ctx, a, nr, 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MREMAP_FIXED | MREMAP_DONTUNMAP, 0));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                                  SCMP_A3(SCMP_CMP_MASKED_EQ, MREMAP_FIXED, MREMAP_FIXED));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                                  SCMP_A3(SCMP_CMP_MASKED_EQ, MREMAP_DONTUNMAP, MREMAP_DONTUNMAP));
        return rc;
    case AGORA__ARG_SEND_NO_OOB:
        return seccomp_rule_add(ctx, a, nr, 1, SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_OOB, 0));
    case AGORA__ARG_FCNTL_NO_DUP:
        for (size_t i = 0; i < sizeof fcntl_ok / sizeof fcntl_ok[0]; i++) {
            rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A1(SCMP_CMP_EQ, (uint64_t)fcntl_ok[i]));
            if (rc != 0)
                return rc;
        }
        return 0;
    case AGORA__ARG_EXEC_FILE_ONLY:
        rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, 0));
        return rc;
    case AGORA__ARG_OPEN_RDONLY:
        if (flags_arg == 1)
            return seccomp_rule_add(ctx, a, nr, 1, SCMP_A1(SCMP_CMP_MASKED_EQ, wr, 0));
        return seccomp_rule_add(ctx, a, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, wr, 0));
    case AGORA__ARG_CLONE_THREAD:
        return add_clone(ctx, nr, a, fork_too);
    case AGORA__ARG_PRCTL_NAME:
        rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, a, nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
        return rc;
    case AGORA__ARG_RLIMIT_GET:
        return seccomp_rule_add(ctx, a, nr, 2, SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0));
    case AGORA__ARG_SECCOMP_FILTER:
        return seccomp_rule_add(ctx, a, nr, 1, SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER));
    case AGORA__ARG_UNSHARE_NOOP:
        return seccomp_rule_add(ctx, a, nr, 1,
                                SCMP_A0(SCMP_CMP_EQ, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM));
    default:
        return -EINVAL;
    }
}

static scmp_filter_ctx build(int profile, int fork_per_job, int trap, char *why, size_t why_len)
{
    /* Trap mode (development): a forbidden call raises SIGSYS for the runner's reporter, which
     * then dies of it; the supervisor never runs plugin code and always kills. */
    trap = trap && profile != AGORA__PROFILE_SUPERVISOR;
    scmp_filter_ctx ctx = seccomp_init(trap ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL) {
        snprintf(why, why_len, "seccomp_init failed (libseccomp out of memory)");
        return NULL;
    }
    /* Anything that is not a native x86_64 call (int $0x80 i386 calls, x32 calls) kills; the
     * runner sets no_new_privs itself, at the point the design orders it. */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc != 0) {
        snprintf(why, why_len, "setting filter attributes failed: %s", strerror(-rc));
        seccomp_release(ctx);
        return NULL;
    }
    int fork_too =
        profile == AGORA__PROFILE_ZYGOTE || (profile == AGORA__PROFILE_LOADER && fork_per_job);
    for (size_t i = 0; i < agora__policy_table_len; i++) {
        rc = add_row(ctx, &agora__policy_table[i], profile, fork_too, trap);
        if (rc != 0) {
            snprintf(why, why_len, "policy row '%s' (profile %d) rejected by libseccomp: %s",
                     agora__policy_table[i].syscall, profile, strerror(-rc));
            seccomp_release(ctx);
            return NULL;
        }
    }
    return ctx;
}

int agora__runner_filter_compile(int profile, int fork_per_job, int trap, agora__bpf *out,
                                 char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    scmp_filter_ctx ctx = build(profile, fork_per_job, trap, why, why_len);
    if (ctx == NULL)
        return -EINVAL;
    /* libseccomp 2.5 exports only to a descriptor. A filter is at most BPF_MAXINSNS (4096) * 8
     * bytes = 32 KiB, which fits a pipe's default 64 KiB buffer without a reader. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        int e = errno;
        snprintf(why, why_len, "pipe for BPF export failed: %s", strerror(e));
        seccomp_release(ctx);
        return -e;
    }
    int rc = seccomp_export_bpf(ctx, p[1]);
    seccomp_release(ctx);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        snprintf(why, why_len, "exporting BPF failed: %s", strerror(-rc));
        return rc;
    }
    size_t cap = BPF_MAXINSNS * sizeof(struct sock_filter);
    uint8_t *buf = malloc(cap + 1);
    if (buf == NULL) {
        close(p[0]);
        snprintf(why, why_len, "out of memory for BPF");
        return -ENOMEM;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(p[0], buf + got, cap + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got > cap)
            break;
    }
    close(p[0]);
    if (got == 0 || got > cap || got % sizeof(struct sock_filter) != 0) {
        free(buf);
        snprintf(why, why_len, "exported BPF has an impossible size (%zu bytes)", got);
        return -EINVAL;
    }
    out->insns = (struct sock_filter *)(void *)buf;
    out->len = (unsigned short)(got / sizeof(struct sock_filter));
    return 0;
}

int agora__runner_filter_install(const agora__bpf *prog)
{
    struct sock_fprog fp = {.len = prog->len, .filter = prog->insns};
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp);
    if (rc == 0)
        return 0;
    /* TSYNC reports the id of a thread it could not synchronise as a positive value. */
    return rc > 0 ? -EAGAIN : -errno;
}

int agora__runner_filter_print(int fd)
{
    static const char *const names[] = {"supervisor", "loader", "compute", "zygote"};
    /* A Markdown table: docs/sandbox.md carries the same rows (a test keeps them equal). */
    dprintf(fd, "| syscall | supervisor | loader | compute | zygote | why |\n");
    dprintf(fd, "| --- | --- | --- | --- | --- | --- |\n");
    static const char *const acts[] = {"kill", "allow", "ENOSYS", "EACCES", "EPERM", "ENOTTY"};
    static const char *const args[] = {
        "",
        " (no PROT_EXEC; PROT_EXEC: EPERM)",
        " (read-only)",
        " (threads)",
        " (fork)",
        " (name only)",
        " (get only)",
        " (filter only)",
        " (exec: files only)",
        " (exec: private files only, other exec: EPERM; MAP_FIXED; shared anon, growsdown: EPERM)",
        " (PROT_EXEC, shared anon, growsdown, MAP_FIXED: EPERM)",
        " (no MREMAP_FIXED/DONTUNMAP: EPERM)",
        " (no MSG_OOB)",
        " (no F_DUPFD)",
        " (thread check only)",
        " (AF_UNIX only; other domains: kill)"};
    for (size_t i = 0; i < agora__policy_table_len; i++) {
        const agora__policy_row *r = &agora__policy_table[i];
        dprintf(fd, "| `%s` |", r->syscall);
        for (int p = 0; p < AGORA__PROFILE_COUNT; p++) {
            int a = r->action[p];
            const char *arg = a == AGORA__ACT_ALLOW || r->arg == AGORA__ARG_SOCKET_UNIX
                                  ? args[r->arg]
                                  : "";
            if (a == AGORA__ACT_ALLOW && r->arg == AGORA__ARG_CLONE_THREAD)
                arg = p == AGORA__PROFILE_ZYGOTE   ? " (threads, fork)"
                      : p == AGORA__PROFILE_LOADER ? " (threads; fork too in fork-per-job mode)"
                                                   : arg;
            dprintf(fd, " %s%s |", acts[a], arg);
        }
        dprintf(fd, " %s |\n", r->why);
    }
    for (int p = 0; p < AGORA__PROFILE_COUNT; p++) {
        char why[256];
        scmp_filter_ctx ctx = build(p, 1, 0, why, sizeof why);
        if (ctx == NULL) {
            dprintf(fd, "profile %s: %s\n", names[p], why);
            return -1;
        }
        dprintf(fd, "\n# ---- profile %s (libseccomp pseudo-code) ----\n", names[p]);
        int rc = seccomp_export_pfc(ctx, fd);
        seccomp_release(ctx);
        if (rc != 0)
            return -1;
    }
    return 0;
}
