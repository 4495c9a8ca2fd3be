/* Asset names, bounds and the streaming hash-while-copying used everywhere an asset moves. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)

int agora__asset_name_valid(const char *s)
{
    if (s == NULL || s[0] == '\0' || s[0] == '.')
        return 0;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= AGORA__ASSET_NAME_MAX)
            return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int agora__copy_hash(int in_fd, uint64_t in_off, uint64_t len, int out_fd, uint8_t sha[32],
                     const char *what, agora__error *err)
{
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory copying %s", what);
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint64_t done = 0;
    int rc = 0;
    while (done < len) {
        size_t want = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
        ssize_t n = pread(in_fd, buf, want, (off_t)(in_off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", what,
                                  strerror(errno));
            break;
        }
        if (n == 0) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "%s ends after %llu of its %llu bytes (truncated)", what,
                                  (unsigned long long)done, (unsigned long long)len);
            break;
        }
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        if (out_fd >= 0 && (rc = agora__write_all(out_fd, buf, (size_t)n)) != 0) {
            rc = agora__error_set(err, rc, "cannot write a copy of %s: %s", what,
                                  agora__strerror(rc));
            break;
        }
        done += (uint64_t)n;
    }
    free(buf);
    if (rc == 0)
        crypto_hash_sha256_final(&st, sha);
    return rc;
}

int agora__asset_open(const char *path, const char *name, int *fd, uint64_t *size,
                      agora__error *err)
{
    *size = 0;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (*fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "asset %s: cannot open %s: %s", name, path,
                                strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = agora__error_set(err, AGORA_EINVAL, "asset %s: %s is not a regular file", name, path);
    else if (st.st_size <= 0 || (uint64_t)st.st_size > AGORA__ASSET_SIZE_MAX)
        rc = agora__error_set(err, AGORA_ELIMIT,
                              "asset %s: %s is %lld bytes; an asset must be 1..%llu bytes", name,
                              path, (long long)st.st_size,
                              (unsigned long long)AGORA__ASSET_SIZE_MAX);
    if (rc != 0) {
        close(*fd);
        *fd = -1;
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int agora__asset_load_file(const char *path, const char *name, const uint8_t *pin,
                           uint64_t pin_size, agora__asset *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!agora__asset_name_valid(name))
        return agora__error_set(err, AGORA_EINVAL,
                                "'%.140s' is not an asset name (1..%u bytes of [A-Za-z0-9._-], "
                                "not starting with '.')",
                                name, AGORA__ASSET_NAME_MAX);
    agora__strlcpy(out->name, name, sizeof out->name);
    int in;
    int rc = agora__asset_open(path, name, &in, &out->size, err);
    if (rc == 0 && pin != NULL && out->size != pin_size) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "tampered: asset %s (%s) is %llu bytes, the catalog pins %llu; "
                              "refused",
                              name, path, (unsigned long long)out->size,
                              (unsigned long long)pin_size);
        close(in);
    }
    if (rc != 0)
        return rc;
    char label[AGORA__ASSET_NAME_MAX + 16];
    snprintf(label, sizeof label, "agora-asset-%s", name);
    int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        rc = agora__error_set(err, AGORA__ERR(errno), "asset %s: memfd_create: %s", name,
                              strerror(errno));
        close(in);
        return rc;
    }
    char what[4096 + 160];
    snprintf(what, sizeof what, "asset %s (%s)", name, path);
    rc = agora__copy_hash(in, 0, out->size, fd, out->sha256, what, err);
    close(in);
    struct stat mst;
    if (rc == 0 && (fstat(fd, &mst) != 0 || (uint64_t)mst.st_size != out->size))
        rc = agora__error_set(err, AGORA_EINVAL, "%s changed size while it was copied", what);
    if (rc == 0 && pin != NULL && sodium_memcmp(out->sha256, pin, 32) != 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "tampered: asset %s (%s) does not match the sha256 the catalog "
                              "pins; refused (reinstall the plugin)",
                              name, path);
    const int seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    if (rc == 0 && fcntl(fd, F_ADD_SEALS, seals) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "asset %s: sealing its memfd failed: %s",
                              name, strerror(errno));
    if (rc != 0) {
        close(fd);
        return rc;
    }
    out->fd = fd;
    return 0;
}

void agora__assets_close(agora__asset *assets, size_t n)
{
    for (size_t i = 0; assets != NULL && i < n; i++) {
        if (assets[i].fd >= 0)
            close(assets[i].fd);
        assets[i].fd = -1;
    }
}
