/* Plugin assets (issue 10): the files a bundle carries beside the plugin binary (model weights,
 * label maps). The one definition of an asset name and of the bounds, shared by the manifest
 * check, the bundle format, the catalog, the worker pool and the runner; and the one streaming
 * copy that hashes while it copies, so no asset is ever read whole into memory.
 * See docs/bundle-format.md (format version 2) and docs/abi.md (org.agora.assets/1). */
#ifndef AGORA_HOST_ASSET_H
#define AGORA_HOST_ASSET_H

#include <stddef.h>
#include <stdint.h>

#include "agora/agora.h"

struct agora__error;

#define AGORA__ASSET_NAME_MAX   AGORA_ASSET_NAME_MAX /* bytes, without the NUL */
#define AGORA__ASSETS_MAX       64u                  /* assets of one plugin */
#define AGORA__ASSET_SIZE_MAX   ((uint64_t)8 << 30)  /* one asset: 1 byte .. 8 GiB */
#define AGORA__ASSETS_TOTAL_MAX ((uint64_t)16 << 30) /* all assets of one plugin */

/* 1 when s is 1..128 bytes of [A-Za-z0-9._-] not starting with '.' (so it is never "." or ".."
 * or a hidden file when stored under the clinic home), else 0. */
int agora__asset_name_valid(const char *s);

/* One asset held as a sealed memfd (F_SEAL_WRITE|GROW|SHRINK|SEAL): the bytes cannot change
 * after the hash was taken, so every worker handed the descriptor sees exactly those bytes. */
typedef struct agora__asset {
    char name[AGORA__ASSET_NAME_MAX + 1];
    int fd; /* sealed memfd, CLOEXEC; owned by whoever holds the struct; -1 when none */
    uint64_t size;
    uint8_t sha256[32];
} agora__asset;

/* Stream `len` bytes of in_fd from in_off (pread, 1 MiB at a time) into out_fd (write at its
 * current offset; -1: hash only), hashing as it goes. A short input fails (AGORA_EINVAL, "ends
 * after N bytes"). sha (32 bytes) receives the digest. what names the input in messages. */
int agora__copy_hash(int in_fd, uint64_t in_off, uint64_t len, int out_fd, uint8_t sha[32],
                     const char *what, struct agora__error *err);

/* Open the regular file at path as asset `name`: *fd (CLOEXEC, the caller closes it) and its
 * *size, 1..AGORA__ASSET_SIZE_MAX bytes, else an error naming the asset. */
int agora__asset_open(const char *path, const char *name, int *fd, uint64_t *size,
                      struct agora__error *err);

/* Copy the regular file at path into a new sealed memfd named after the asset, hashing while
 * copying. Sizes outside 1..AGORA__ASSET_SIZE_MAX are refused. When pin is not NULL, a digest or
 * size that differs from it (pin_size) fails with AGORA_EINVAL and "tampered" in the message.
 * out->fd is owned by the caller (agora__asset_close). */
int agora__asset_load_file(const char *path, const char *name, const uint8_t *pin,
                           uint64_t pin_size, agora__asset *out, struct agora__error *err);
/* Close the descriptor of each of n assets (safe on fd -1). */
void agora__assets_close(agora__asset *assets, size_t n);

#endif
