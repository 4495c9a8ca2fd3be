/* Bench plugin: sums every voxel of an int16 volume and reports the sum, so delivering a large
 * series (sealed memfd, read-only mapping) can be compared with memcpy + sum in one process. */
#include <agora/agora.h>

static const agora_host *host;

static int32_t init(const agora_host *h, void **state)
{
    host = h;
    *state = 0;
    return AGORA_OK;
}

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    if (image->pixel_type != AGORA_PIXEL_I16 || image->samples_per_pixel != 1) {
        host->set_error(job, "sum plugin: int16 grayscale only");
        return AGORA_EINPUT;
    }
    int64_t sum = 0;
    uint64_t n = (uint64_t)image->rows * image->columns;
    for (uint32_t f = 0; f < image->frames; f++) {
        const agora_frame *fr = host->frame(job, f);
        if (fr == 0 || fr->size_bytes < n * 2) {
            host->set_error(job, "sum plugin: short frame");
            return AGORA_EINPUT;
        }
        const int16_t *p = fr->data;
        for (uint64_t i = 0; i < n; i++)
            sum += p[i];
    }
    agora_measurement m = {0};
    m.struct_size = sizeof m;
    m.name = "sum";
    m.value = (double)sum;
    m.unit = "1";
    m.frame = AGORA_NONE;
    m.region = AGORA_NONE;
    return host->add_measurement(job, &m);
}

static const agora_plugin desc = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.bench.sum",
    .version = "1.0.0",
    .init = init,
    .process = process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    return AGORA_ABI_MAJOR(host_abi_version) == AGORA_ABI_VERSION_MAJOR ? &desc : NULL;
}
