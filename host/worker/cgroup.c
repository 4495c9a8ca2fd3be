/*
 * cgroup v2 for workers, when the host has it (docs/sandbox.md, "Memory"). With a usable
 * unified hierarchy every runner gets its own child cgroup with memory.max, memory.swap.max=0
 * and pids.max, entered by the spawned child itself before exec (so the reaper, the worker and
 * everything they fork start inside it), and a worker the kernel's cgroup OOM killer stopped is
 * reported out-of-memory from memory.events. Without it (cgroup v1 only, or v2 without the
 * memory and pids controllers delegated to us) the runner's rlimits and seccomp rules are the
 * cap, and the pool says so in its log and in `dev run --json`.
 *
 * Where: $AGORA_CGROUP_DIR when set (an operator-delegated directory), else the cgroup this
 * process is in, as /proc/self/cgroup and /proc/self/mountinfo say. Usable means: the directory
 * is writable and its cgroup.subtree_control enables memory and pids (or can be made to).
 */
#include "worker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A word of a space-separated list (cgroup.controllers, cgroup.subtree_control). */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        int start = p == list || p[-1] == ' ' || p[-1] == '\n';
        int end = p[n] == '\0' || p[n] == ' ' || p[n] == '\n';
        if (start && end)
            return 1;
    }
    return 0;
}

int agora__cgroup_controllers_ok(const char *list)
{
    return list != NULL && has_word(list, "memory") && has_word(list, "pids");
}

int agora__cgroup_parse(const char *mountinfo, const char *self_cgroup, char *dir, size_t dir_size,
                        char *why, size_t why_len)
{
    /* /proc/self/cgroup: "0::/path" is the unified hierarchy; v1 lines carry controller names. */
    const char *rel = NULL;
    size_t rel_len = 0;
    for (const char *l = self_cgroup; l != NULL && *l != '\0';) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len >= 3 && strncmp(l, "0::", 3) == 0) {
            rel = l + 3;
            rel_len = len - 3;
        }
        l = nl ? nl + 1 : NULL;
    }
    /* mountinfo: "... MOUNTPOINT OPTIONS [optional fields] - FSTYPE SOURCE SUPEROPTS" */
    char mnt[512] = "";
    for (const char *l = mountinfo; l != NULL && *l != '\0';) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[1024];
        if (len < sizeof line) {
            memcpy(line, l, len);
            line[len] = '\0';
            const char *dash = strstr(line, " - ");
            char point[512];
            if (dash != NULL && strncmp(dash + 3, "cgroup2 ", 8) == 0 &&
                sscanf(line, "%*s %*s %*s %*s %511s", point) == 1 && mnt[0] == '\0')
                agora__strlcpy(mnt, point, sizeof mnt);
        }
        l = nl ? nl + 1 : NULL;
    }
    if (mnt[0] == '\0') {
        snprintf(why, why_len, "no cgroup v2 hierarchy is mounted (cgroup v1 only)");
        return 0;
    }
    if (rel == NULL) {
        snprintf(why, why_len, "this process is not in the cgroup v2 hierarchy mounted at %.200s",
                 mnt);
        return 0;
    }
    if (rel_len == 0 || rel[0] != '/' || memmem(rel, rel_len, "..", 2) != NULL ||
        strlen(mnt) + rel_len + 1 > dir_size) {
        snprintf(why, why_len, "this process's cgroup path is unusable");
        return 0;
    }
    /* "/" is the root: the mount point itself. */
    snprintf(dir, dir_size, "%s%.*s", mnt, rel_len == 1 ? 0 : (int)rel_len, rel);
    return 1;
}

static int read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == size - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    return 0;
}

static int write_text(const char *dir, const char *file, const char *text)
{
    char path[700];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return AGORA__ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return AGORA__ERR(errno);
    ssize_t n = write(fd, text, strlen(text));
    int e = n == (ssize_t)strlen(text) ? 0 : (n < 0 ? AGORA__ERR(errno) : AGORA__EIO);
    close(fd);
    return e;
}

static agora__cgroup_env cached;
static int detected;

const agora__cgroup_env *agora__cgroup_detect(void)
{
    if (detected)
        return &cached;
    detected = 1;
    agora__cgroup_env *c = &cached;
    memset(c, 0, sizeof *c);
    const char *env = getenv("AGORA_CGROUP_DIR");
    static char mi[65536], sc[4096];
    if (env != NULL && env[0] == '/' && strlen(env) < sizeof c->base) {
        agora__strlcpy(c->base, env, sizeof c->base);
    } else if (read_text("/proc/self/mountinfo", mi, sizeof mi) != 0 ||
               read_text("/proc/self/cgroup", sc, sizeof sc) != 0) {
        snprintf(c->why, sizeof c->why, "/proc/self/mountinfo or /proc/self/cgroup unreadable");
        return c;
    } else if (!agora__cgroup_parse(mi, sc, c->base, sizeof c->base, c->why, sizeof c->why)) {
        return c;
    }
    char path[700], list[512];
    snprintf(path, sizeof path, "%s/cgroup.controllers", c->base);
    if (read_text(path, list, sizeof list) != 0 || !agora__cgroup_controllers_ok(list)) {
        snprintf(c->why, sizeof c->why, "cgroup v2 at %.300s lacks the memory and pids controllers",
                 c->base);
        return c;
    }
    if (access(c->base, W_OK) != 0) {
        snprintf(c->why, sizeof c->why, "cgroup v2 at %.300s is not writable by this user",
                 c->base);
        return c;
    }
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", c->base);
    if (read_text(path, list, sizeof list) != 0 ||
        (!agora__cgroup_controllers_ok(list) &&
         write_text(c->base, "cgroup.subtree_control", "+memory +pids") != 0)) {
        /* Typically EBUSY: a non-root cgroup with processes in it cannot delegate. */
        snprintf(c->why, sizeof c->why,
                 "cannot enable memory and pids for children of %.300s (set AGORA_CGROUP_DIR to "
                 "a delegated cgroup)",
                 c->base);
        return c;
    }
    c->usable = 1;
    snprintf(c->why, sizeof c->why, "cgroup v2 memory.max and pids.max under %.300s", c->base);
    return c;
}

const char *agora__cgroup_mechanism(const agora__cgroup_env *c)
{
    return c->usable ? "cgroup-v2" : "rlimit";
}

int agora__cgroup_create(const agora__cgroup_env *c, uint64_t memory_max, uint32_t pids_max,
                         char *path, size_t path_size, int *procs_fd, agora__error *err)
{
    static unsigned seq;
    *procs_fd = -1;
    if (snprintf(path, path_size, "%s/agora-worker-%d-%u", c->base, (int)getpid(), ++seq) >=
        (int)path_size)
        return agora__error_set(err, AGORA_ELIMIT, "cgroup path too long");
    if (mkdir(path, 0755) != 0)
        return agora__error_set(err, AGORA__ERR(errno), "creating the worker cgroup %s: %s", path,
                                strerror(errno));
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)memory_max);
    int e = write_text(path, "memory.max", num);
    if (e == 0)
        e = write_text(path, "memory.swap.max", "0");
    if (e == AGORA__ENOENT)
        e = 0; /* no swap accounting on this kernel: nothing to turn off */
    snprintf(num, sizeof num, "%u", pids_max);
    if (e == 0)
        e = write_text(path, "pids.max", num);
    char procs[720];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", path);
    if (e == 0 && (*procs_fd = open(procs, O_WRONLY | O_CLOEXEC)) < 0)
        e = AGORA__ERR(errno);
    if (e != 0) {
        rmdir(path);
        return agora__error_set(err, e, "configuring the worker cgroup %s: %s", path,
                                agora__strerror(e));
    }
    return 0;
}

long agora__cgroup_oom_kills_text(const char *events)
{
    const char *p = events;
    while (p != NULL && (p = strstr(p, "oom_kill ")) != NULL) {
        if (p == events || p[-1] == '\n')
            return strtol(p + 9, NULL, 10);
        p += 9;
    }
    return 0;
}

long agora__cgroup_oom_kills(const char *path)
{
    char file[720], text[1024];
    snprintf(file, sizeof file, "%s/memory.events", path);
    if (read_text(file, text, sizeof text) != 0)
        return 0;
    return agora__cgroup_oom_kills_text(text);
}

void agora__cgroup_remove(const char *path)
{
    /* Empty once every process of the worker is reaped; a failure leaves an empty directory. */
    (void)rmdir(path);
}
