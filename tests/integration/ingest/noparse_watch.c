/*
 * noparse_watch FILE... -- COMMAND ARGS...
 *
 * Runs COMMAND under ptrace and fails if the traced process (every thread of it, but not the
 * processes it forks: those are the sandboxed workers, which are meant to read) reads the bytes
 * of any FILE: read, pread64, readv, preadv, preadv2, mmap of the file, sendfile, splice,
 * copy_file_range or tee from a descriptor that is one of the FILEs (compared by device and
 * inode through /proc/TID/fd, so links and renamed paths count). Opening the file, fstat and
 * passing the descriptor on (SCM_RIGHTS) are allowed: that is how the host hands a file to the
 * ingest worker without looking at it. io_uring_setup is refused outright (it could read
 * without a system call per read). Directories among the FILEs add every regular file under
 * them (one level).
 *
 * Exit: COMMAND's own status when nothing was read, 99 (with the offending calls listed) when
 * something was, 77 when ptrace is unavailable or the machine is not x86_64.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WATCHED 4096
#define MAX_TRACEES 256

static struct {
    dev_t dev;
    ino_t ino;
} watched[MAX_WATCHED];
static size_t n_watched;

static void watch(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "noparse_watch: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            struct stat fs;
            if (stat(p, &fs) == 0 && S_ISREG(fs.st_mode))
                watch(p);
        }
        if (d)
            closedir(d);
        return;
    }
    if (n_watched < MAX_WATCHED) {
        watched[n_watched].dev = st.st_dev;
        watched[n_watched].ino = st.st_ino;
        n_watched++;
    }
}

/* Non-zero when descriptor fd of thread tid is one of the watched files. */
static int is_watched(pid_t tid, long long fd)
{
    if (fd < 0 || fd > 1 << 20)
        return 0;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%lld", (int)tid, fd);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    for (size_t i = 0; i < n_watched; i++)
        if (watched[i].dev == st.st_dev && watched[i].ino == st.st_ino)
            return 1;
    return 0;
}

static long violations;

static void check_call(pid_t tid, const struct user_regs_struct *r)
{
    long long nr = (long long)r->orig_rax;
    long long fd = -1;
    const char *name = NULL;
    switch (nr) {
    case SYS_read:
        name = "read", fd = (long long)r->rdi;
        break;
    case SYS_pread64:
        name = "pread64", fd = (long long)r->rdi;
        break;
    case SYS_readv:
        name = "readv", fd = (long long)r->rdi;
        break;
    case SYS_preadv:
        name = "preadv", fd = (long long)r->rdi;
        break;
    case SYS_preadv2:
        name = "preadv2", fd = (long long)r->rdi;
        break;
    case SYS_mmap:
        name = "mmap", fd = (long long)(int)r->r8;
        break;
    case SYS_sendfile:
        name = "sendfile", fd = (long long)r->rsi;
        break;
    case SYS_splice:
        name = "splice", fd = (long long)r->rdi;
        break;
    case SYS_tee:
        name = "tee", fd = (long long)r->rdi;
        break;
    case SYS_copy_file_range:
        name = "copy_file_range", fd = (long long)r->rdi;
        break;
    case SYS_io_uring_setup:
        fprintf(stderr, "noparse_watch: thread %d called io_uring_setup\n", (int)tid);
        violations++;
        return;
    default:
        return;
    }
    if (is_watched(tid, fd)) {
        fprintf(stderr, "noparse_watch: thread %d: %s on descriptor %lld, a watched DICOM file\n",
                (int)tid, name, fd);
        violations++;
    }
}

int main(int argc, char **argv)
{
#if !defined(__x86_64__)
    printf("SKIP: the watcher decodes x86_64 system calls only\n");
    return 77;
#else
    int sep = 1;
    while (sep < argc && strcmp(argv[sep], "--") != 0)
        watch(argv[sep++]);
    if (sep >= argc - 1 || n_watched == 0) {
        fprintf(stderr, "usage: noparse_watch FILE... -- COMMAND ARGS...\n");
        return 2;
    }
    pid_t child = fork();
    if (child < 0)
        return 2;
    if (child == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
            _exit(76);
        raise(SIGSTOP);
        execvp(argv[sep + 1], argv + sep + 1);
        _exit(127);
    }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) {
        printf("SKIP: ptrace is not available here\n");
        return 77;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 76) {
        printf("SKIP: ptrace is not permitted here\n");
        return 77;
    }
    /* Threads are followed (TRACECLONE); forks are not (no TRACEFORK/TRACEVFORK): the workers
     * the host spawns read the files, and tracing them would also disturb their sandbox. */
    if (ptrace(PTRACE_SETOPTIONS, child, NULL,
               (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL |
                              PTRACE_O_TRACEEXEC)) != 0) {
        printf("SKIP: PTRACE_SETOPTIONS failed: %s\n", strerror(errno));
        kill(child, SIGKILL);
        return 77;
    }
    struct {
        pid_t tid;
        int in_call;
    } t[MAX_TRACEES];
    size_t n_t = 1;
    t[0].tid = child;
    t[0].in_call = 0;
    ptrace(PTRACE_SYSCALL, child, NULL, NULL);
    int exit_code = 1;
    for (;;) {
        pid_t tid = waitpid(-1, &st, __WALL);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        size_t k = 0;
        while (k < n_t && t[k].tid != tid)
            k++;
        if (k == n_t && n_t < MAX_TRACEES) {
            t[n_t].tid = tid;
            t[n_t].in_call = 0;
            n_t++;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (tid == child) {
                exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            if (k < n_t)
                t[k] = t[--n_t];
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st);
        int deliver = 0;
        if (sig == (SIGTRAP | 0x80)) {
            if (k < n_t) {
                t[k].in_call = !t[k].in_call;
                if (t[k].in_call) {
                    struct user_regs_struct regs;
                    if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) == 0)
                        check_call(tid, &regs);
                }
            }
        } else if (sig == SIGTRAP && (st >> 16) != 0) {
            /* a ptrace event (clone, exec): the syscall-exit stop follows */
        } else if (sig == SIGSTOP && k == n_t - 1 && t[k].in_call == 0) {
            /* a new thread's first stop */
        } else {
            deliver = sig;
        }
        ptrace(PTRACE_SYSCALL, tid, NULL, (void *)(long)deliver);
    }
    if (violations > 0) {
        fprintf(stderr, "noparse_watch: %ld read(s) of watched DICOM bytes by the host process\n",
                violations);
        return 99;
    }
    return exit_code;
#endif
}
