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

/* Fixed runtime files bound read-only besides the closure (host path == path inside). */
static const char *const loader_files[] = {"/etc/ld.so.cache"};
/* Where the closure's regular files may come from: the Debian packages' libraries. */
static const char *const file_prefixes[] = {"/usr/lib/", "/usr/lib64/"};
/* Made by the runner itself: no closure entry may land there. */
static const char *const reserved[] = {"/plugin", "/proc", "/sys", "/etc/ld.so.cache"};

static int has_prefix_dir(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

int agora__runner_root_files_check(char *const *paths, size_t n, char *why, size_t why_len)
{
    if (n > AGORA__ROOT_FILES_MAX) {
        snprintf(why, why_len, "%zu entries, at most %d", n, AGORA__ROOT_FILES_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        size_t l = strnlen(p, AGORA__ROOT_PATH_MAX);
        int bad = l == AGORA__ROOT_PATH_MAX || l < 2 || p[0] != '/' || p[l - 1] == '/' ||
                  strstr(p, "//") != NULL || strstr(p, "/./") != NULL ||
                  strstr(p, "/../") != NULL || (l >= 2 && strcmp(p + l - 2, "/.") == 0) ||
                  (l >= 3 && strcmp(p + l - 3, "/..") == 0);
        for (size_t r = 0; r < sizeof reserved / sizeof reserved[0] && !bad; r++)
            bad = has_prefix_dir(p, reserved[r]);
        for (size_t j = 0; j < i && !bad; j++)
            bad = strcmp(paths[j], p) == 0;
        if (bad) {
            snprintf(why, why_len,
                     "entry %zu ('%.*s') is not an absolute canonical path of at most %d bytes "
                     "outside /plugin, /proc and /sys, listed once",
                     i, (int)(l < 200 ? l : 200), p, AGORA__ROOT_PATH_MAX - 1);
            return -1;
        }
    }
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p for a relative path inside the new root. */
static void mkdirs(const char *rel)
{
    char buf[AGORA__ROOT_PATH_MAX];
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

static int file_allowed(const char *p)
{
    for (size_t i = 0; i < sizeof file_prefixes / sizeof file_prefixes[0]; i++)
        if (strncmp(p, file_prefixes[i], strlen(file_prefixes[i])) == 0)
            return 1;
    return 0;
}

/* mkdir -p of rel's parent directory. */
static void mkparent(const char *rel)
{
    char d[AGORA__ROOT_PATH_MAX];
    snprintf(d, sizeof d, "%s", rel);
    char *slash = strrchr(d, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    mkdirs(d);
}

/* Every directory above rel inside the new root is a real directory (never one of the symlinks
 * made from the list), so creating rel cannot land outside the root. */
static void check_parents_real(const char *rel)
{
    char d[AGORA__ROOT_PATH_MAX];
    snprintf(d, sizeof d, "%s", rel);
    for (char *p = strchr(d, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';
        struct stat st;
        if (lstat(d, &st) != 0 || !S_ISDIR(st.st_mode))
            CONFINE_FAIL(-ELOOP, "closure entry /%s lies under /%s, which is not a directory",
                         rel, d);
        *p = '/';
    }
}

/* The plugin's dependency closure (Setup.root_files, resolved by the host): regular files bound
 * read-only at their own path, symlinks recreated with their target. All directories and
 * files first, the symlinks last, so no path made here is ever resolved through one of them. */
static void add_closure(const agora__runner_setup *s)
{
    for (size_t i = 0; i < s->n_root_files; i++) {
        const char *src = s->root_files[i];
        const char *rel = src + 1;
        struct stat st;
        if (lstat(src, &st) != 0)
            CONFINE_FAIL(-errno, "closure entry %s: %s (was the package removed since the host "
                         "resolved it?)", src, strerror(errno));
        mkparent(rel);
        if (S_ISLNK(st.st_mode))
            continue;
        if (!S_ISREG(st.st_mode) || !file_allowed(src))
            CONFINE_FAIL(-EINVAL, "closure entry %s is not a regular file under /usr/lib", src);
        int fd = open(rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
        if (fd < 0)
            CONFINE_FAIL(-errno, "creating the mount point for %s failed: %s", src,
                         strerror(errno));
        close(fd);
        bind_ro(src, rel);
    }
    for (size_t i = 0; i < s->n_root_files; i++) {
        const char *src = s->root_files[i];
        struct stat st;
        if (lstat(src, &st) != 0 || !S_ISLNK(st.st_mode))
            continue;
        char target[AGORA__ROOT_PATH_MAX];
        ssize_t n = readlink(src, target, sizeof target);
        if (n <= 0 || (size_t)n >= sizeof target)
            CONFINE_FAIL(-EINVAL, "reading the symlink %s failed", src);
        target[n] = '\0';
        check_parents_real(src + 1);
        if (symlink(target, src + 1) != 0)
            CONFINE_FAIL(-errno, "recreating the symlink %s failed: %s", src, strerror(errno));
    }
}

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
    /* Room for the plugin, the CPU view (at most 1 MiB of cpuinfo) and one page per closure
     * entry; an inode per path component at most. */
    size_t inodes = 64 + s->cpus;
    for (size_t i = 0; i < s->n_root_files; i++)
        for (const char *c = s->root_files[i]; *c != '\0'; c++)
            inodes += *c == '/';
    char opts[128];
    snprintf(opts, sizeof opts, "mode=0755,size=%zu,nr_inodes=%zu",
             s->plugin_size + (3u << 20) + s->n_root_files * 4096u, inodes);
    if (mount("agora", base, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        CONFINE_FAIL(-errno, "mounting the tmpfs root failed: %s", strerror(errno));
    if (chdir(base) != 0)
        CONFINE_FAIL(-errno, "chdir to the new root failed: %s", strerror(errno));

    if (s->ingest) {
        /* An ingest worker loads nothing after exec: its root stays empty. */
        pivot_to_cwd();
        return;
    }
    mkdirs("etc");
    mkdirs(PLUGIN_DIR);
    mkdirs("proc");
    mkdirs("sys/devices/system/cpu");
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
    add_closure(s);
    /* The bytes whose hash was verified, never a path the host could swap. */
    int fd = open(PLUGIN_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0555);
    if (fd < 0)
        CONFINE_FAIL(-errno, "creating the plugin file failed: %s", strerror(errno));
    write_all(fd, s->plugin, s->plugin_size, "the plugin file");
    if (close(fd) != 0)
        CONFINE_FAIL(-errno, "closing the plugin file failed: %s", strerror(errno));
    agora__runner_cpuview_build(s->cpus);
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
