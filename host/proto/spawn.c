/* Starting a runner process, for both host clients: its only channel to the host is
 * AGORA__RUNNER_FD; it inherits nothing else of ours (no other descriptors, no environment
 * beyond the log level). */
#include "runner_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Child side, between fork and exec: async-signal-safe calls only (the host has threads). */
static void child(const char *path, int sock, int devnull, int cg_fd, char *const envp[])
{
    /* Into the worker's cgroup first: everything the runner forks is born inside it. Fail
     * closed: never run a worker outside the cap it was given. */
    if (cg_fd >= 0 && write(cg_fd, "0\n", 2) != 2)
        _exit(AGORA__RUNNER_EXIT_CGROUP);
    /* Default signal dispositions and an empty mask: libuv blocks and handles signals in the
     * parent, and the runner must see SIGPIPE etc. normally. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    if (sock == AGORA__RUNNER_FD) {
        int fl = fcntl(AGORA__RUNNER_FD, F_GETFD);
        if (fl < 0 || fcntl(AGORA__RUNNER_FD, F_SETFD, fl & ~FD_CLOEXEC) < 0)
            _exit(AGORA__RUNNER_EXIT_EXEC);
    } else {
        /* Move devnull out of the way first if it sits on the runner's fd. */
        if (devnull == AGORA__RUNNER_FD) {
            int d = fcntl(devnull, F_DUPFD_CLOEXEC, AGORA__RUNNER_FD + 1);
            if (d < 0)
                _exit(AGORA__RUNNER_EXIT_EXEC);
            devnull = d;
        }
        if (dup2(sock, AGORA__RUNNER_FD) < 0)
            _exit(AGORA__RUNNER_EXIT_EXEC);
    }
    if (devnull != 0 && dup2(devnull, 0) < 0)
        _exit(AGORA__RUNNER_EXIT_EXEC);
    if (devnull != 1 && dup2(devnull, 1) < 0)
        _exit(AGORA__RUNNER_EXIT_EXEC);
    /* Close everything above the runner's fd, CLOEXEC or not. */
    if (syscall(SYS_close_range, AGORA__RUNNER_FD + 1u, ~0u, 0u) < 0) {
        for (int fd = AGORA__RUNNER_FD + 1; fd < 1024; fd++)
            close(fd);
    }
    char *const argv[] = {(char *)path, NULL};
    execve(path, argv, envp);
    _exit(AGORA__RUNNER_EXIT_EXEC);
}

int agora__spawn_runner(const char *runner_path, int cgroup_procs_fd, pid_t *pid, int *sock,
                        agora__error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return agora__error_set(err, AGORA__ERR(errno), "socketpair: %s", strerror(errno));
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return agora__error_set(err, AGORA__ERR(e), "opening /dev/null: %s", strerror(e));
    }
    /* The environment is built before fork: the child may not allocate. */
    static char logenv[64];
    const char *lv = getenv("AGORA_LOG");
    char *envp[2] = {NULL, NULL};
    if (lv != NULL && strlen(lv) < sizeof logenv - 11) {
        agora__strlcpy(logenv, "AGORA_LOG=", sizeof logenv);
        agora__strlcpy(logenv + 10, lv, sizeof logenv - 10);
        envp[0] = logenv;
    }
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        close(devnull);
        return agora__error_set(err, AGORA__ERR(e), "fork: %s", strerror(e));
    }
    if (p == 0)
        child(runner_path, sv[1], devnull, cgroup_procs_fd, envp);
    close(sv[1]);
    close(devnull);
    int fl = fcntl(sv[0], F_GETFL);
    if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(sv[0]);
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
        return agora__error_set(err, AGORA__ERR(e), "making the worker socket non-blocking: %s",
                                strerror(e));
    }
    *pid = p;
    *sock = sv[0];
    return 0;
}
