/* Bench plugin: does nothing, so a job measures only the platform's overhead. */
#include <agora/agora.h>

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)job;
    (void)image;
    return AGORA_OK;
}

static const agora_plugin desc = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.bench.null",
    .version = "1.0.0",
    .process = process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    return AGORA_ABI_MAJOR(host_abi_version) == AGORA_ABI_VERSION_MAJOR ? &desc : NULL;
}
