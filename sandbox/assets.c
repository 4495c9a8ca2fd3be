/*
 * The plugin's assets inside the worker (extension org.agora.assets/1). Right after Setup the
 * host sends one Asset frame per asset with a memfd it filled while hashing against the
 * catalog's pin and then sealed (write, grow, shrink, seal). The runner checks the seals and the
 * size, maps each PROT_READ + MAP_SHARED and closes the descriptor, all before confinement, so
 * the mappings are inherited by the worker and no path or descriptor of an asset is left for the
 * plugin to reach. Because the memfd is write-sealed, the kernel refuses any writable shared
 * mapping of it and clears VM_MAYWRITE on ours: mprotect(PROT_WRITE) fails. The bytes are not
 * hashed again here: the seals guarantee they are the ones the host verified, which is what
 * keeps worker start independent of asset size.
 *
 * The table is written once, before any plugin code runs, and only read afterwards: get is
 * safe from any thread without a lock. Mappings live until the process exits (after fini).
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asset.h"

typedef struct mapped_asset {
    char name[AGORA__ASSET_NAME_MAX + 1];
    const void *data;
    uint64_t size;
} mapped_asset;

static mapped_asset table[AGORA__ASSETS_MAX];
static uint32_t n_table;

#define SETUP_FAIL(code, ...)                                                                      \
    agora__runner_fail(AGORA__IPC__STAGE__STAGE_SETUP, (code), __VA_ARGS__)

static void map_one(const Agora__Ipc__Asset *a, int fd, uint64_t *total)
{
    if (a->name == NULL || !agora__asset_name_valid(a->name))
        SETUP_FAIL(AGORA_EINVAL, "Asset.name is not 1..%u bytes of [A-Za-z0-9._-]",
                   AGORA__ASSET_NAME_MAX);
    for (uint32_t i = 0; i < n_table; i++)
        if (strcmp(table[i].name, a->name) == 0)
            SETUP_FAIL(AGORA_EINVAL, "asset %s was sent twice", a->name);
    if (a->size == 0 || a->size > AGORA__ASSET_SIZE_MAX || a->size > AGORA__ASSETS_TOTAL_MAX - *total)
        SETUP_FAIL(AGORA_ELIMIT, "asset %s: %llu bytes is outside the asset bounds (1..%llu each, "
                                 "%llu in total)",
                   a->name, (unsigned long long)a->size, (unsigned long long)AGORA__ASSET_SIZE_MAX,
                   (unsigned long long)AGORA__ASSETS_TOTAL_MAX);
    const int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & need) != need)
        SETUP_FAIL(AGORA_EINVAL, "the memfd of asset %s is not sealed against write, grow, shrink "
                                 "and further sealing; the host must seal it before sending",
                   a->name);
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != a->size)
        SETUP_FAIL(AGORA_EINVAL, "the memfd of asset %s holds %lld bytes, Asset says %llu",
                   a->name, (long long)st.st_size, (unsigned long long)a->size);
    void *p = mmap(NULL, (size_t)a->size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        SETUP_FAIL(-ENOMEM, "mapping asset %s (%llu bytes) failed: %s", a->name,
                   (unsigned long long)a->size, strerror(errno));
    mapped_asset *m = &table[n_table++];
    memcpy(m->name, a->name, strlen(a->name) + 1);
    m->data = p;
    m->size = a->size;
    *total += a->size;
}

uint64_t agora__runner_assets_read(uint32_t n)
{
    if (n > AGORA__ASSETS_MAX)
        SETUP_FAIL(AGORA_ELIMIT, "Setup.n_assets %u is above the %u assets a plugin may have", n,
                   AGORA__ASSETS_MAX);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        Agora__Ipc__Frame *f;
        int fds[AGORA__FRAME_MAX_FDS];
        size_t n_fds;
        char why[256];
        int rc = agora__runner_frame_read(AGORA__RUNNER_FD, AGORA__FRAME_HOST_TO_RUNNER_MAX, &f,
                                          fds, &n_fds, why, sizeof why);
        if (rc != 0)
            SETUP_FAIL(-EPROTO, "reading Asset %u of %u: %s", i + 1, n, why);
        if (f->msg_case != AGORA__IPC__FRAME__MSG_ASSET || n_fds != 1)
            SETUP_FAIL(-EPROTO, "Setup announced %u assets but frame %u is not an Asset with "
                                "one descriptor (type %d)",
                       n, i + 1, (int)f->msg_case);
        map_one(f->asset, fds[0], &total);
        close(fds[0]);
        agora__ipc__frame__free_unpacked(f, NULL);
    }
    return total;
}

int32_t agora__runner_asset_get(const char *name, const void **data, uint64_t *size)
{
    if (name == NULL || data == NULL || size == NULL)
        return AGORA_EINVAL;
    size_t len = strnlen(name, AGORA__ASSET_NAME_MAX + 1);
    if (len == 0 || len > AGORA__ASSET_NAME_MAX)
        return AGORA_EINVAL;
    for (uint32_t i = 0; i < n_table; i++) {
        if (strcmp(table[i].name, name) == 0) {
            *data = table[i].data;
            *size = table[i].size;
            return AGORA_OK;
        }
    }
    return AGORA_EINVAL;
}
