/*
 * The worker's filesystem: a small tmpfs that holds only what the dynamic loader needs, bound
 * read-only from the host (Debian 12 is merged-/usr: the libraries live in
 * /usr/lib/x86_64-linux-gnu, /lib and /lib64 are symlinks), /etc/ld.so.cache, and the verified
 * plugin bytes written by us. No /proc, /dev, /sys, /tmp. After pivot_root the old root is
 * detached and the tmpfs superblock is remounted read-only.
 */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CONFINE_FAIL(code, ...)                                                                    \
    agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, (code), __VA_ARGS__)

#define PLUGIN_DIR  "plugin"
#define PLUGIN_FILE "plugin/plugin.so"

/* Paths bound read-only (host path == path inside). Missing ones are skipped. */
static const char *const loader_dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib64"};
static const char *const loader_files[] = {"/etc/ld.so.cache"};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p for a relative path inside the new root. */
static void mkdirs(const char *rel)
{
    char buf[256];
    size_t n = strlen(rel);
    if (n >= sizeof buf)
        CONFINE_FAIL(-ENAMETOOLONG, "path too long for the sandbox root: %s", rel);
    memcpy(buf, rel, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                CONFINE_FAIL(-errno, "mkdir %s in the sandbox root failed: %s", buf,
                             strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
}

static void bind_ro(const char *src, const char *rel)
{
    if (mount(src, rel, NULL, MS_BIND, NULL) != 0)
        CONFINE_FAIL(-errno, "bind mount of %s failed: %s", src, strerror(errno));
    /* Keep the flags the kernel locked on the source mount (a user namespace may not clear
     * them) and add read-only, nosuid, nodev. */
    struct statvfs sv;
    unsigned long keep = 0;
    if (statvfs(rel, &sv) == 0) {
        if (sv.f_flag & ST_NOEXEC)
            keep |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
            keep |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
            keep |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
            keep |= MS_RELATIME;
    }
    if (mount(NULL, rel, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | keep,
              NULL) != 0)
        CONFINE_FAIL(-errno, "read-only remount of %s failed: %s", src, strerror(errno));
}

static void write_all(int fd, const uint8_t *p, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            CONFINE_FAIL(w < 0 ? -errno : -EIO, "writing %s failed: %s", what,
                         w < 0 ? strerror(errno) : "short write");
        p += w;
        n -= (size_t)w;
    }
}

static void pivot_to_cwd(void);

void agora__runner_build_root(agora__runner_setup *s)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        CONFINE_FAIL(-errno, "making mounts private failed: %s", strerror(errno));
    /* Any existing directory serves as the mount point; the mount is private to us. */
    static const char *const bases[] = {"/tmp", "/mnt", "/var/tmp", "/run"};
    const char *base = NULL;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0] && base == NULL; i++)
        if (is_dir(bases[i]))
            base = bases[i];
    if (base == NULL)
        CONFINE_FAIL(-ENOENT, "no directory to mount the sandbox root on (tried /tmp, /mnt, "
                              "/var/tmp, /run)");
    char opts[96];
    snprintf(opts, sizeof opts, "mode=0755,size=%zu,nr_inodes=64", s->plugin_size + (1u << 20));
    if (mount("agora", base, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        CONFINE_FAIL(-errno, "mounting the tmpfs root failed: %s", strerror(errno));
    if (chdir(base) != 0)
        CONFINE_FAIL(-errno, "chdir to the new root failed: %s", strerror(errno));

    if (s->ingest) {
        /* An ingest worker loads nothing after exec: its root stays empty. */
        pivot_to_cwd();
        return;
    }
    mkdirs("usr/lib");
    mkdirs("etc");
    mkdirs(PLUGIN_DIR);
    if (symlink("usr/lib", "lib") != 0)
        CONFINE_FAIL(-errno, "symlink /lib failed: %s", strerror(errno));
    for (size_t i = 0; i < sizeof loader_dirs / sizeof loader_dirs[0]; i++) {
        if (!is_dir(loader_dirs[i]))
            continue;
        const char *rel = loader_dirs[i] + 1;
        mkdirs(rel);
        bind_ro(loader_dirs[i], rel);
    }
    if (is_dir("usr/lib64") && symlink("usr/lib64", "lib64") != 0)
        CONFINE_FAIL(-errno, "symlink /lib64 failed: %s", strerror(errno));
    for (size_t i = 0; i < sizeof loader_files / sizeof loader_files[0]; i++) {
        struct stat st;
        if (stat(loader_files[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        const char *rel = loader_files[i] + 1;
        int fd = open(rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0)
            CONFINE_FAIL(-errno, "creating the mount point for %s failed: %s", loader_files[i],
                         strerror(errno));
        close(fd);
        bind_ro(loader_files[i], rel);
    }

    /* The bytes whose hash was verified, never a path the host could swap. */
    int fd = open(PLUGIN_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0555);
    if (fd < 0)
        CONFINE_FAIL(-errno, "creating the plugin file failed: %s", strerror(errno));
    write_all(fd, s->plugin, s->plugin_size, "the plugin file");
    if (close(fd) != 0)
        CONFINE_FAIL(-errno, "closing the plugin file failed: %s", strerror(errno));
    free(s->plugin);
    s->plugin = NULL;
    snprintf(s->plugin_path, sizeof s->plugin_path, "/%s", PLUGIN_FILE);
    pivot_to_cwd();
}

static void pivot_to_cwd(void)
{
    /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the
     * tmpfs. No directory for the old root is needed. */
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        CONFINE_FAIL(-errno, "pivot_root failed: %s", strerror(errno));
    if (umount2(".", MNT_DETACH) != 0)
        CONFINE_FAIL(-errno, "detaching the old root failed: %s", strerror(errno));
    if (chdir("/") != 0)
        CONFINE_FAIL(-errno, "chdir / failed: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        CONFINE_FAIL(-errno, "remounting the sandbox root read-only failed: %s", strerror(errno));
}

void agora__runner_plugin_memfd(agora__runner_setup *s)
{
    int fd = memfd_create("agora-plugin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        CONFINE_FAIL(-errno, "memfd for the plugin failed: %s", strerror(errno));
    write_all(fd, s->plugin, s->plugin_size, "the plugin memfd");
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        CONFINE_FAIL(-errno, "sealing the plugin memfd failed: %s", strerror(errno));
    /* The lock-down step keeps this descriptor open for the loader. */
    agora__runner_ns_state.plugin_fd = fd;
    free(s->plugin);
    s->plugin = NULL;
    snprintf(s->plugin_path, sizeof s->plugin_path, "/proc/self/fd/%d", fd);
}
