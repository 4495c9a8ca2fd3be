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

/* Temp file in path's directory, fsync, then rename over path (replace) or link to it (create:
 * fails with AGORA__EEXIST when path exists, so two racing creators cannot both win). */
static int write_file(const char *path, const void *data, size_t len, unsigned mode, int create,
                      agora__error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    char *dircopy = strdup(path);
    if (tmp == NULL || dircopy == NULL) {
        free(tmp);
        free(dircopy);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    int rc = 0;
    if (fd < 0) {
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, mode) != 0) {
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot chmod %s: %s", tmp, strerror(errno));
        goto fail;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot write %s: %s", tmp,
                                  strerror(errno));
            goto fail;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot fsync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (create ? link(tmp, path) != 0 : rename(tmp, path) != 0) {
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot %s %s: %s",
                              create ? "create" : "rename to", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (create)
        unlink(tmp);
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    goto out;
fail:
    close(fd);
    unlink(tmp);
out:
    free(tmp);
    free(dircopy);
    return rc;
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
