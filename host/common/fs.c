/* Bounded file reads and atomic writes. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int agora__read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                     agora__error *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open %s: %s", path,
                                strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return agora__error_set(err, AGORA__ERR(e), "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return agora__error_set(err, AGORA_EINVAL, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return agora__error_set(err, AGORA_ELIMIT,
                                "%s is %llu bytes, more than the %zu allowed; it is not a valid input",
                                path, (unsigned long long)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return agora__error_set(err, AGORA__ERR(e), "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break; /* file shrank while reading: take what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

int agora__atomic_open(const char *path, unsigned mode, agora__atomic_file *f, agora__error *err)
{
    f->fd = -1;
    f->path[0] = f->tmp[0] = '\0';
    if (strlen(path) + 16 > sizeof f->tmp)
        return agora__error_set(err, AGORA_ELIMIT, "path too long: %.64s...", path);
    agora__strlcpy(f->path, path, sizeof f->path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.XXXXXX", path);
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot create %s: %s", f->tmp,
                                strerror(errno));
    if (fchmod(f->fd, mode) != 0) {
        int e = errno;
        agora__atomic_abort(f);
        return agora__error_set(err, AGORA__ERR(e), "cannot chmod %s: %s", path, strerror(e));
    }
    return 0;
}

void agora__atomic_abort(agora__atomic_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        unlink(f->tmp);
    }
    f->fd = -1;
}

/* Commit by rename over path (replace) or by link to it (create: fails with AGORA__EEXIST when
 * path exists, so two racing creators cannot both win). */
static int commit(agora__atomic_file *f, int create, agora__error *err)
{
    if (fsync(f->fd) != 0) {
        int e = errno;
        agora__atomic_abort(f);
        return agora__error_set(err, AGORA__ERR(e), "cannot fsync %s: %s", f->tmp, strerror(e));
    }
    close(f->fd);
    f->fd = -1;
    if (create ? link(f->tmp, f->path) != 0 : rename(f->tmp, f->path) != 0) {
        int e = errno;
        unlink(f->tmp);
        return agora__error_set(err, AGORA__ERR(e), "cannot %s %s: %s",
                                create ? "create" : "rename to", f->path, strerror(e));
    }
    if (create)
        unlink(f->tmp);
    char dir[sizeof f->path];
    agora__strlcpy(dir, f->path, sizeof dir);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int agora__atomic_commit(agora__atomic_file *f, agora__error *err)
{
    return commit(f, 0, err);
}

int agora__write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return AGORA__ERR(errno);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_file(const char *path, const void *data, size_t len, unsigned mode, int create,
                      agora__error *err)
{
    agora__atomic_file f;
    int rc = agora__atomic_open(path, mode, &f, err);
    if (rc != 0)
        return rc;
    rc = agora__write_all(f.fd, data, len);
    if (rc != 0) {
        agora__atomic_abort(&f);
        return agora__error_set(err, rc, "cannot write %s: %s", path, agora__strerror(rc));
    }
    return commit(&f, create, err);
}

int agora__write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                             agora__error *err)
{
    return write_file(path, data, len, mode, 0, err);
}

int agora__write_file_new(const char *path, const void *data, size_t len, unsigned mode,
                          agora__error *err)
{
    return write_file(path, data, len, mode, 1, err);
}

int agora__mkdirs(const char *path, unsigned mode, agora__error *err)
{
    char buf[4096];
    size_t n = agora__strlcpy(buf, path, sizeof buf);
    if (n >= sizeof buf - 1)
        return agora__error_set(err, AGORA_ELIMIT, "path too long: %.64s...", path);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return agora__error_set(err, AGORA__ERR(errno), "cannot create directory %s: %s",
                                        buf, strerror(errno));
            buf[i] = saved;
        }
    }
    return 0;
}

int agora__create_private_file(const char *path, agora__error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    int e = errno;
    struct stat st;
    if (e == EEXIST && lstat(path, &st) == 0 && !S_ISLNK(st.st_mode))
        return 0;
    if (e == EEXIST)
        e = ELOOP;
    return agora__error_set(err, AGORA__ERR(e), "cannot create %s: %s", path, strerror(e));
}
