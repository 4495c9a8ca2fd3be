/* The smallest plugin: the benchmark's unit of work (no allocation, no threads). */
#include "agora/agora.h"

static const agora_host *host;

static int32_t trivial_init(const agora_host *h, void **state)
{
    host = h;
    *state = 0;
    return AGORA_OK;
}

static int32_t trivial_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    const uint8_t *px = host->frame(job, 0)->data;
    agora_measurement m = {sizeof m, "first", (double)px[0], "1", 0, AGORA_NONE, 0, 0, 0};
    (void)image;
    return host->add_measurement(job, &m);
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.bench.trivial",
    .version = "1.0.0",
    .init = trivial_init,
    .process = trivial_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &descriptor;
}
