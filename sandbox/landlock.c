/*
 * Landlock, a second, independent filesystem fence under the mount namespace: even if a mount
 * trick exposed more of the host, only the files of the root (the plugin's closure, the loader
 * cache, the plugin, the CPU view) stay readable. Optional: a kernel
 * without Landlock (or with it disabled) is skipped silently, as the design allows. On ABI >= 4
 * TCP bind/connect are denied; on ABI >= 6 signals and abstract unix sockets are scoped to the
 * worker's own domain.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Kernel ABI, declared here because Debian 12's headers stop at Landlock ABI 3. */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH      1
#define LL_FS_EXECUTE             (1ull << 0)
#define LL_FS_READ_FILE           (1ull << 2)
#define LL_FS_READ_DIR            (1ull << 3)
#define LL_FS_V1_ALL              ((1ull << 13) - 1)
#define LL_FS_REFER               (1ull << 13)
#define LL_FS_TRUNCATE            (1ull << 14)
#define LL_FS_IOCTL_DEV           (1ull << 15)
#define LL_NET_BIND_TCP           (1ull << 0)
#define LL_NET_CONNECT_TCP        (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX    (1ull << 0)
#define LL_SCOPE_SIGNAL           (1ull << 1)

static int add_rule(int ruleset, int fd, uint64_t handled, char *why, size_t why_len,
                    const char *what)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_len, "fstat %s: %s", what, strerror(errno));
        return -errno;
    }
    uint64_t allow = LL_FS_READ_FILE | LL_FS_EXECUTE;
    if (S_ISDIR(st.st_mode))
        allow |= LL_FS_READ_DIR;
    struct ll_path_beneath_attr pb = {.allowed_access = allow & handled, .parent_fd = fd};
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) != 0) {
        int e = errno;
        snprintf(why, why_len, "adding the rule for %s failed: %s", what, strerror(e));
        return -e;
    }
    return 0;
}

int agora__runner_landlock(const char *const *read_exec_paths, size_t n, int extra_file_fd,
                           char *why, size_t why_len)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (abi < 1)
        return 0; /* ENOSYS or EOPNOTSUPP: no Landlock on this kernel */
    struct ll_ruleset_attr attr = {.handled_access_fs = LL_FS_V1_ALL};
    size_t attr_size = sizeof attr.handled_access_fs;
    if (abi >= 2)
        attr.handled_access_fs |= LL_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= LL_FS_IOCTL_DEV;
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        attr_size = offsetof(struct ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        attr_size = sizeof attr;
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0) {
        int e = errno;
        snprintf(why, why_len, "creating a ruleset (ABI %ld) failed: %s", abi, strerror(e));
        return -e;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* A symlink needs no rule (opening it checks the target's), and following one here could
         * widen a file rule into a directory's (merged-/usr's /lib). */
        int fd = open(read_exec_paths[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* not present in this root: nothing to allow */
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
            close(fd);
            continue;
        }
        rc = add_rule(rs, fd, attr.handled_access_fs, why, why_len, read_exec_paths[i]);
        close(fd);
    }
    if (rc == 0 && extra_file_fd >= 0)
        rc = add_rule(rs, extra_file_fd, attr.handled_access_fs, why, why_len, "the plugin memfd");
    if (rc == 0 && syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
        rc = -errno;
        snprintf(why, why_len, "landlock_restrict_self failed: %s", strerror(errno));
    }
    close(rs);
    return rc == 0 ? 1 : rc;
}
