/*
 * A well-behaved long job (not hostile): reports progress every few milliseconds for up to ten
 * seconds and stops with AGORA_ECANCELLED as soon as the host cancels. Tests Cancel delivery.
 */
#include "agora/agora.h"

#include <time.h>

static const agora_host *host;

static int32_t slow_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t slow_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 2000; i++) {
        if (host->progress(job, i / 2000.0) == AGORA_ECANCELLED || host->cancelled(job)) {
            host->set_error(job, "cancelled by the host");
            return AGORA_ECANCELLED;
        }
        nanosleep(&ts, NULL);
    }
    return AGORA_OK;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.slow",
    .version = "1.0.0",
    .init = slow_init,
    .process = slow_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
