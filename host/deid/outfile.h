/* Writing output files without ever exposing a partial file (internal to deid). */
#ifndef AGORA_DEID_OUTFILE_H
#define AGORA_DEID_OUTFILE_H

#include <stddef.h>

#include "common.h"

/* Write an encoder buffer (its data interleaved with the referenced bytes, with writev) to path
 * through a temporary file in the same directory and rename(2): readers see the old file or the
 * whole new one, never a part. No fsync per file (hundreds of files would pay one each); call
 * agora__deid_sync_dir once after the batch. Mode 0644. */
struct agora__deid_buf;
int agora__deid_write_buf(const char *path, const struct agora__deid_buf *b, agora__error *err);
/* The same for len bytes of the descriptor src from offset 0 (copied by the kernel with
 * sendfile(2)). When prefix_len > 0 (<= 256) the written copy must start with prefix, else
 * nothing is renamed into place and AGORA_EINPUT says so. */
int agora__deid_write_fd(const char *path, int src, size_t len, const void *prefix,
                         size_t prefix_len, agora__error *err);
/* syncfs(2) on the file system holding dir: makes the batch durable with one call. */
int agora__deid_sync_dir(const char *dir, agora__error *err);

#endif
