/*
 * The calls library constructors make that the sandbox answers with an error instead of a kill
 * (docs/binary-environment.md): each module makes one (CALL) from its constructor (IN_CTOR=1,
 * loader filter) or from process() (compute filter stacked on it), and reports
 * "NAME=-1/ERRNO granted=no". granted=yes means the call had an effect it must not have (a
 * descriptor appeared, memory became executable or locked, a buffer was filled); the tests
 * (sandbox-errno-*) require the exact errno and granted=no.
 */
#include "agora/agora.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CALL
#error CALL selects the call
#endif

static char outcome[256];

static const char *errname(int e)
{
    switch (e) {
    case EACCES:
        return "EACCES";
    case ENOSYS:
        return "ENOSYS";
    case EPERM:
        return "EPERM";
    case 0:
        return "none";
    default:
        return strerror(e);
    }
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 64; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void run_call(void)
{
    static const char *const names[] = {
        "statfs",      "fstatfs",   "get_mempolicy", "set_mempolicy", "mbind",
        "mlock",       "munlock",   "mlock2",        "mlockall",      "munlockall",
        "socket_unix", "mmap_exec", "mprotect_exec"};
    long rc = 0;
    int granted = 0, e = 0;
    int fds_before = open_fds();
    static char page[8192] __attribute__((aligned(4096)));
    struct statfs sf;
    memset(&sf, 0xaa, sizeof sf);
    unsigned long mask[16] = {0};
    errno = 0;
    switch (CALL) {
    case 0:
        rc = statfs("/", &sf);
        e = errno;
        granted = ((unsigned char *)&sf)[0] != 0xaa;
        break;
    case 1:
        rc = fstatfs(0, &sf);
        e = errno;
        granted = ((unsigned char *)&sf)[0] != 0xaa;
        break;
    case 2:
        rc = syscall(SYS_get_mempolicy, NULL, mask, 1024ul, NULL, 0ul);
        e = errno;
        granted = mask[0] != 0;
        break;
    case 3:
        mask[0] = 1;
        rc = syscall(SYS_set_mempolicy, 2 /* MPOL_BIND */, mask, 64ul);
        e = errno;
        break;
    case 4:
        mask[0] = 1;
        rc = syscall(SYS_mbind, page, 4096ul, 2 /* MPOL_BIND */, mask, 64ul, 0u);
        e = errno;
        break;
    case 5:
        rc = mlock(page, 4096);
        e = errno;
        break;
    case 6:
        rc = munlock(page, 4096);
        e = errno;
        break;
    case 7:
        rc = syscall(SYS_mlock2, page, 4096ul, 0);
        e = errno;
        break;
    case 8:
        rc = mlockall(MCL_CURRENT);
        e = errno;
        break;
    case 9:
        rc = munlockall();
        e = errno;
        break;
    case 10:
        rc = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        e = errno;
        granted = rc >= 0 || open_fds() != fds_before;
        break;
    case 11: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        rc = p == MAP_FAILED ? -1 : 0;
        e = errno;
        granted = p != MAP_FAILED;
        break;
    }
    case 12: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            snprintf(outcome, sizeof outcome, "setup mmap failed: %s", strerror(errno));
            return;
        }
        rc = mprotect(p, 4096, PROT_READ | PROT_EXEC);
        e = errno;
        /* Still writable (not changed to R+X): a write after a partial grant would fault. */
        ((volatile char *)p)[0] = 1;
        granted = rc == 0;
        break;
    }
    default:
        break;
    }
    if (rc >= 0)
        e = 0;
    snprintf(outcome, sizeof outcome, "%s=%ld/%s granted=%s", names[CALL], rc < 0 ? -1L : rc,
             errname(e), granted || rc >= 0 ? "yes" : "no");
}

#if IN_CTOR
__attribute__((constructor)) static void errno_ctor(void)
{
    run_call();
}
#endif

static const agora_host *host;

static int32_t ep_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t ep_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
#if !IN_CTOR
    run_call();
#endif
    host->set_summary(job, outcome);
    return AGORA_OK;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.errno",
    .version = "1.0.0",
    .init = ep_init,
    .process = ep_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
