/* Pixel buffers: memfds the host fills once, then seals so that neither the host nor any
 * worker can change the pixels a plugin is reading. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int agora__pixbuf_create(uint64_t size, agora__pixbuf *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (size == 0 || size > AGORA__PIXBUF_MAX)
        return agora__error_set(err, AGORA_EINVAL,
                                "pixel buffer of %llu bytes is outside 1..%llu; check the image "
                                "geometry",
                                (unsigned long long)size, (unsigned long long)AGORA__PIXBUF_MAX);
    int fd = memfd_create("agora-pixels", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return agora__error_set(err, AGORA__ERR(e), "sizing a %llu-byte pixel buffer: %s",
                                (unsigned long long)size, strerror(e));
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return agora__error_set(err, AGORA__ERR(e), "mapping a %llu-byte pixel buffer: %s",
                                (unsigned long long)size, strerror(e));
    }
    /* The writable mapping must not reach a child forked meanwhile by another thread (the
     * daemon's dispatch threads start workers while others fill buffers): a child's copy of it
     * would make the F_SEAL_WRITE below fail with EBUSY until that child execs. */
    if (madvise(p, (size_t)size, MADV_DONTFORK) != 0) {
        int e = errno;
        munmap(p, (size_t)size);
        close(fd);
        return agora__error_set(err, AGORA__ERR(e), "madvise(MADV_DONTFORK) on a pixel buffer: %s",
                                strerror(e));
    }
    /* Large series: ask for transparent huge pages so that every worker's fresh read-only
     * mapping costs one fault per 2 MiB instead of per 4 KiB (mapping, not reading, dominates a
     * big job on VMs). Effective only where shmem THP is enabled ("advise" or better); a refusal
     * changes nothing, so the result is ignored. */
    if (size >= ((uint64_t)2 << 20))
        (void)madvise(p, (size_t)size, MADV_HUGEPAGE);
    out->fd = fd;
    out->size = size;
    out->data = p;
    return 0;
}

int agora__pixbuf_seal(agora__pixbuf *pb, agora__error *err)
{
    if (pb == NULL || pb->fd < 0 || pb->size == 0)
        return agora__error_set(err, AGORA_EINVAL, "sealing an empty pixel buffer");
    if (pb->sealed)
        return 0;
    /* F_SEAL_WRITE is refused while a writable shared mapping exists, so unmap first. */
    if (pb->data != NULL) {
        munmap(pb->data, (size_t)pb->size);
        pb->data = NULL;
    }
    const int seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    if (fcntl(pb->fd, F_ADD_SEALS, seals) < 0)
        return agora__error_set(err, AGORA__ERR(errno),
                                "sealing the pixel buffer failed (%s); the kernel must support "
                                "memfd seals",
                                strerror(errno));
    int got = fcntl(pb->fd, F_GET_SEALS);
    if (got < 0 || (got & seals) != seals)
        return agora__error_set(err, AGORA_EINTERNAL,
                                "pixel buffer seals did not stick; refusing to use it");
    pb->sealed = 1;
    return 0;
}

void agora__pixbuf_free(agora__pixbuf *pb)
{
    if (pb == NULL)
        return;
    if (pb->data != NULL)
        munmap(pb->data, (size_t)pb->size);
    /* size is 0 in a zeroed struct, whose fd 0 is not ours. */
    if (pb->size > 0 && pb->fd >= 0)
        close(pb->fd);
    pb->data = NULL;
    pb->fd = -1;
    pb->size = 0;
    pb->sealed = 0;
}
