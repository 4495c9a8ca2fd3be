/*
 * hello — the smallest complete Agora plugin. It reports the size of the series it was given as
 * two measurements and a one-line summary. Start here.
 */
#include <stdio.h>

#include <agora/agora.h>

/* The host table lives from init until fini; keep it to call host services from process. */
static const agora_host *host;

static int32_t hello_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t hello_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    agora_measurement m = {sizeof m};
    m.name = "frames";
    m.value = image->frames;
    m.unit = "1";
    m.frame = AGORA_NONE;
    m.region = AGORA_NONE;
    int32_t rc = host->add_measurement(job, &m);
    if (rc != AGORA_OK)
        return rc;

    m.name = "pixels per frame";
    m.value = (double)image->rows * image->columns;
    rc = host->add_measurement(job, &m);
    if (rc != AGORA_OK)
        return rc;

    char text[128];
    snprintf(text, sizeof text, "Hello from the sandbox: %s series, %u frame(s) of %ux%u.",
             image->modality, image->frames, image->columns, image->rows);
    return host->set_summary(job, text);
}

static const agora_plugin hello_plugin = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.examples.hello",
    .version = "1.0.0",
    .init = hello_init,
    .process = hello_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version; /* the host checks compatibility; nothing to refuse here */
    return &hello_plugin;
}
