/* Atomic output files (see outfile.h). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int agora__deid_write_out(const char *path, const void *data, size_t len, agora__error *err)
{
    size_t plen = strlen(path);
    if (plen > 4000)
        return agora__error_set(err, AGORA_ELIMIT, "output path too long");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, -errno, "cannot create a file next to %s: %s", path,
                                strerror(errno));
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return agora__error_set(err, -e, "cannot write %s: %s", path, strerror(e));
        }
        done += (size_t)n;
    }
    if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return agora__error_set(err, -e, "cannot finish %s: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return agora__error_set(err, -e, "cannot rename into %s: %s", path, strerror(e));
    }
    return 0;
}

int agora__deid_sync_dir(const char *dir, agora__error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, -errno, "cannot open %s: %s", dir, strerror(errno));
    int rc = 0;
    if (syncfs(fd) != 0)
        rc = agora__error_set(err, -errno, "cannot sync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}
