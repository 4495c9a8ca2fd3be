/*
 * The asset reader of tests/integration/assets: looks up org.agora.assets/1 in init (where
 * models are loaded), takes every asset its manifest declares ("weights.bin", "labels.txt"),
 * and reports in each job's summary what it sees, so the test can compare with the files:
 *   "weights.bin size=N fnv=HEX; labels.txt size=N fnv=HEX; same=1 unknown=-1 null=-1"
 * (FNV-1a 64 of the bytes; same: get in process returns init's pointer; unknown/null: the codes
 * for an undeclared name and NULL arguments, AGORA_EINVAL expected).
 */
#include "agora/agora.h"

#include <stdio.h>
#include <string.h>

static const agora_host *H;
static const agora_assets *A;

static const char *const names[] = {"weights.bin", "labels.txt"};
static const void *init_data[2];
static uint64_t init_size[2];

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
    if (A == NULL || !AGORA_HAS(A, agora_assets, get))
        return AGORA_EUNSUPPORTED;
    for (int i = 0; i < 2; i++)
        if (A->get(host, names[i], &init_data[i], &init_size[i]) != AGORA_OK)
            return AGORA_EINVAL;
    return AGORA_OK;
}

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    char text[512];
    size_t at = 0;
    int same = 1;
    for (int i = 0; i < 2; i++) {
        const void *p = NULL;
        uint64_t n = 0;
        int32_t rc = A->get(H, names[i], &p, &n);
        if (rc != AGORA_OK) {
            H->set_error(job, "a declared asset is missing");
            return rc;
        }
        same &= p == init_data[i] && n == init_size[i];
        at += (size_t)snprintf(text + at, sizeof text - at, "%s size=%llu fnv=%016llx; ", names[i],
                               (unsigned long long)n, (unsigned long long)fnv(p, n));
    }
    const void *p;
    uint64_t n;
    int32_t unknown = A->get(H, "undeclared.bin", &p, &n);
    int32_t null = A->get(H, NULL, &p, &n);
    snprintf(text + at, sizeof text - at, "same=%d unknown=%d null=%d", same, (int)unknown,
             (int)null);
    return H->set_summary(job, text);
}

static const agora_plugin desc = {sizeof desc, AGORA_ABI_VERSION, "org.agora.tests.assets",
                                  "1.0.0", init, process, NULL, NULL};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &desc;
}
