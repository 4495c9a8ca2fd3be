/*
 * Development mode (Setup.trap_violations, `agora dev run`): the worker's filters answer a
 * forbidden call with SECCOMP_RET_TRAP instead of killing, and this SIGSYS handler tells the
 * host which call it was (a Violation frame: number and name), then dies of SIGSYS, so the host
 * classifies it exactly as in production. The call itself never runs: TRAP, like KILL, stops it
 * in the kernel.
 *
 * The handler is installed with SA_RESETHAND|SA_NODEFER: the kernel puts SIGSYS back to its
 * default action as it enters the handler, so the tgkill() at the end kills the process. The
 * plugin cannot take the trap over: in trap mode the filters answer rt_sigaction(SIGSYS, act)
 * with EPERM (filter.c), and a plugin that blocks or ignores SIGSYS is killed by the kernel
 * without a report (a forced signal that is blocked or ignored takes its default action).
 */
#include "runner.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NAMES_MAX 512 /* x86-64 numbers in use are below 460 */
#define NAME_LEN  32

/* Filled before confinement (libseccomp allocates); read-only afterwards, so the handler can
 * use it. */
static char names[NAMES_MAX][NAME_LEN];

const char *agora__runner_syscall_name(long nr)
{
    if (nr < 0 || nr >= NAMES_MAX || names[nr][0] == '\0')
        return NULL;
    return names[nr];
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    int nr = si->si_syscall;
    const char *name = agora__runner_syscall_name(nr);
    Agora__Ipc__Violation v = AGORA__IPC__VIOLATION__INIT;
    v.syscall = nr >= 0 ? (uint32_t)nr : 0;
    v.name = (char *)(name != NULL ? name : "");
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_VIOLATION;
    f.violation = &v;
    /* protobuf-c packs into a caller's buffer without allocating. */
    static uint8_t buf[128];
    size_t len = protobuf_c_message_get_packed_size(&f.base);
    if (len <= sizeof buf - AGORA__FRAME_PREFIX) {
        protobuf_c_message_pack(&f.base, buf + AGORA__FRAME_PREFIX);
        for (unsigned i = 0; i < AGORA__FRAME_PREFIX; i++)
            buf[i] = (uint8_t)(len >> (8 * i));
        (void)agora__runner_channel_trywrite(buf, len + AGORA__FRAME_PREFIX);
    }
    errno = saved;
    /* SIGSYS is at its default again (SA_RESETHAND) and not blocked (SA_NODEFER). */
    syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
    _exit(AGORA__RUNNER_EXIT_INTERNAL);
}

int agora__runner_trap_install(void)
{
    for (int nr = 0; nr < NAMES_MAX; nr++) {
        char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
        if (n != NULL) {
            strncpy(names[nr], n, NAME_LEN - 1);
            free(n);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSYS, &sa, NULL) == 0 ? 0 : -errno;
}
