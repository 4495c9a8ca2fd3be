/*
 * Hostile plugin (issue 10): tries to get write access to its asset (org.agora.assets/1), which
 * the host hands in as a sealed memfd mapped PROT_READ + MAP_SHARED. ASSET_ATTACK selects:
 *   0  probe: every way to a writable view that does not kill the worker, each reported in the
 *      summary ("mprotect=refused mremap=refused fds=refused intact=1"): mprotect of the mapping
 *      to PROT_WRITE, a duplicate of the mapping made with mremap (old_size 0) then made
 *      writable, and a writable shared mapping of any write-sealed memfd among the
 *      process's descriptors (the asset's own is closed before confinement; the pixels' is
 *      sealed the same way) (write() is not tried: RLIMIT_FSIZE 0 answers any file write with SIGXFSZ); then the asset is hashed again to show it is unchanged;
 *   1  store: writes one byte straight into the mapping, which must fault (the job then fails
 *      with a signal and the summary below is never sent).
 * Harmless if the sandbox fails: the only memory it writes is the asset's own mapping (so at
 * worst a copy of the test's own random file), it signals nothing and opens no path.
 */
#include "agora/agora.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef ASSET_ATTACK
#error "build with -DASSET_ATTACK=<n>"
#endif

static const agora_host *H;
static const agora_assets *A;
static uint64_t hash0;

static uint64_t fnv(const unsigned char *p, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int32_t init(const agora_host *host, void **state)
{
    H = host;
    *state = NULL;
    A = host->get_extension(host, AGORA_EXT_ASSETS);
    const void *p;
    uint64_t n;
    if (A == NULL || A->get(host, "weights.bin", &p, &n) != AGORA_OK)
        return AGORA_EINVAL;
    hash0 = fnv(p, n);
    return AGORA_OK;
}

/* "refused" when the attempt failed, "GRANTED" when it gave write access. */
#define VERDICT(granted) ((granted) ? "GRANTED" : "refused")

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    const void *cp;
    uint64_t n;
    if (A->get(H, "weights.bin", &cp, &n) != AGORA_OK)
        return AGORA_EINVAL;
    unsigned char *p = (unsigned char *)(uintptr_t)cp;
#if ASSET_ATTACK == 1
    p[n / 2] ^= 0xff; /* must fault: the mapping is read-only and cannot be made writable */
    H->set_summary(job, "store=GRANTED");
    return AGORA_OK;
#else
    long page = sysconf(_SC_PAGESIZE);
    int mprotect_ok = mprotect(p, (size_t)page, PROT_READ | PROT_WRITE) == 0;
    int mremap_ok = 0;
    void *dup = mremap(p, 0, (size_t)page, MREMAP_MAYMOVE);
    if (dup != MAP_FAILED) {
        mremap_ok = mprotect(dup, (size_t)page, PROT_READ | PROT_WRITE) == 0;
        munmap(dup, (size_t)page);
    }
    int fd_ok = 0, memfds = 0;
    for (int fd = 0; fd < 1024; fd++) {
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || !(seals & F_SEAL_WRITE))
            continue; /* not a write-sealed memfd (the job's output area is writable by design) */
        memfds++;
        void *w = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (w != MAP_FAILED) {
            fd_ok = 1;
            munmap(w, (size_t)page);
        }
    }
    char text[256];
    snprintf(text, sizeof text, "mprotect=%s mremap=%s fds=%s memfds=%d intact=%d",
             VERDICT(mprotect_ok), VERDICT(mremap_ok), VERDICT(fd_ok), memfds,
             fnv(p, n) == hash0);
    return H->set_summary(job, text);
#endif
}

static const agora_plugin desc = {sizeof desc, AGORA_ABI_VERSION, "org.agora.tests.asset-write",
                                  "1.0.0", init, process, NULL, NULL};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &desc;
}
