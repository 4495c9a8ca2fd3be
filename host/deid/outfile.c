/* Atomic output files (see outfile.h). */
#include "outfile.h"
#include "writer.h"

#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* Write iov[0..n) fully (the array is consumed), handling short writes. */
static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* A temporary name next to path: ".NAME.tmp.<12 random hex digits>" in the same directory, so
 * rename(2) is atomic and a leftover (after a crash) is a hidden file that directory walks skip;
 * removed on every failure. */
static int open_temp(const char *path, char tmp[4096], int mode)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        uint8_t rnd[6];
        char hex[13];
        randombytes_buf(rnd, sizeof rnd);
        agora__hex(rnd, sizeof rnd, hex);
        const char *slash = strrchr(path, '/');
        int dirlen = slash ? (int)(slash - path + 1) : 0;
        snprintf(tmp, 4096, "%.*s.%s.tmp.%s", dirlen, path, path + dirlen, hex);
        /* 0644 before umask: exported files are meant to be shared; no extra fchmod call. */
        int fd = open(tmp, mode | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

static int write_iov(const char *path, struct iovec *iov, int n, agora__error *err)
{
    if (strlen(path) > 4000)
        return agora__error_set(err, AGORA_ELIMIT, "output path too long");
    char tmp[4096];
    int fd = open_temp(path, tmp, O_WRONLY);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot create a file next to %s: %s", path,
                                strerror(errno));
    int e = write_all(fd, iov, n);
    if (e != 0) {
        close(fd);
        unlink(tmp);
        return agora__error_set(err, AGORA__ERR(e), "cannot write %s: %s", path, strerror(e));
    }
    if (close(fd) != 0) {
        e = errno;
        unlink(tmp);
        return agora__error_set(err, AGORA__ERR(e), "cannot finish %s: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return agora__error_set(err, AGORA__ERR(e), "cannot rename into %s: %s", path, strerror(e));
    }
    return 0;
}

int agora__deid_write_fd(const char *path, int src, size_t len, const void *prefix,
                         size_t prefix_len, agora__error *err)
{
    if (strlen(path) > 4000)
        return agora__error_set(err, AGORA_ELIMIT, "output path too long");
    char tmp[4096];
    int fd = open_temp(path, tmp, O_RDWR);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot create a file next to %s: %s", path,
                                strerror(errno));
    int rc = 0;
    off_t off = 0;
    while (rc == 0 && (size_t)off < len) {
        ssize_t n = sendfile(fd, src, &off, len - (size_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = agora__error_set(err, n < 0 ? AGORA__ERR(errno) : AGORA_EINPUT,
                                  "cannot write %s: %s", path,
                                  n < 0 ? strerror(errno) : "the source is shorter than expected");
    }
    /* Checked in the copy itself: what is renamed into place is what was checked, whatever
     * the source does meanwhile. */
    if (rc == 0 && prefix_len > 0) {
        uint8_t head[256];
        if (prefix_len > sizeof head || prefix_len > len ||
            pread(fd, head, prefix_len, 0) != (ssize_t)prefix_len ||
            memcmp(head, prefix, prefix_len) != 0)
            rc = agora__error_set(err, AGORA_EINPUT,
                                  "%s: the output does not start as it must; it was not written",
                                  path);
    }
    if (rc == 0 && close(fd) != 0)
        rc =
            agora__error_set(err, AGORA__ERR(errno), "cannot finish %s: %s", path, strerror(errno));
    else if (rc != 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot rename into %s: %s", path,
                              strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int agora__deid_write_buf(const char *path, const struct agora__deid_buf *b, agora__error *err)
{
    struct iovec iov[2 * AGORA__DEID_MAX_REFS + 1];
    int n = 0;
    size_t at = 0;
    for (size_t i = 0; i < b->n_refs; i++) {
        if (b->refs[i].at > at)
            iov[n++] = (struct iovec){b->data + at, b->refs[i].at - at};
        at = b->refs[i].at;
        iov[n++] = (struct iovec){(void *)(uintptr_t)b->refs[i].p, b->refs[i].n};
    }
    if (b->len > at)
        iov[n++] = (struct iovec){b->data + at, b->len - at};
    return write_iov(path, iov, n, err);
}

int agora__deid_sync_dir(const char *dir, agora__error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open %s: %s", dir, strerror(errno));
    int rc = 0;
    if (syncfs(fd) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot sync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}
