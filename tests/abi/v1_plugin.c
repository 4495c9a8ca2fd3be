/*
 * A plugin compiled against the frozen ABI 1.0 header (tests/abi/v1/agora/agora.h), never
 * against the current one. It exercises every v1.0 host service once, so a host change that
 * breaks 1.0 plugins fails the integration test that runs this module.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <agora/agora.h>

static const agora_host *host;

static int32_t v1_init(const agora_host *h, void **state)
{
    if (h->struct_size < 120 || AGORA_ABI_MAJOR(h->abi_version) != 1)
        return AGORA_EVERSION;
    host = h;
    *state = (void *)h;
    h->log(h, NULL, AGORA_LOG_INFO, "v1 plugin initialised");
    return AGORA_OK;
}

static int32_t v1_process(void *state, agora_job *job, const agora_image *image)
{
    if (state != host || image->struct_size < 112)
        return AGORA_EINTERNAL;
    if (host->get_extension(host, "org.agora.does-not-exist/1") != NULL) {
        host->set_error(job, "unknown extension must be NULL");
        return AGORA_EINTERNAL;
    }
    const agora_frame *f0 = host->frame(job, 0);
    if (f0 == NULL || host->frame(job, image->frames) != NULL) {
        host->set_error(job, "frame accessor bounds");
        return AGORA_EINTERNAL;
    }
    uint32_t n = host->attr_count(job);
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        if (host->attr_at(job, i, &k, &v) != AGORA_OK || host->attr_get(job, k) == NULL)
            return AGORA_EINTERNAL;
    }
    double pts[6] = {0, 0, 1, 0, 1, 1};
    agora_region r = {sizeof r, AGORA_REGION_POLYGON, 0, pts, 3, "triangle"};
    int32_t rid = AGORA_NONE;
    int32_t rc = host->add_region(job, &r, &rid);
    if (rc != AGORA_OK)
        return rc;
    agora_finding fi = {sizeof fi, "DCM", "121071", "Finding", 0.5, 0, rid};
    if ((rc = host->add_finding(job, &fi)) != AGORA_OK)
        return rc;
    agora_measurement me = {sizeof me, "first sample byte", 0, "1", 0, AGORA_NONE, NULL, NULL, NULL};
    me.value = ((const uint8_t *)f0->data)[0];
    if ((rc = host->add_measurement(job, &me)) != AGORA_OK)
        return rc;
    uint8_t labels[1] = {1};
    agora_mask m = {sizeof m, 0, 1, 1, 1, 8, labels, "one pixel"};
    (void)m; /* masks must match the image size; only used when the image is 1x1 */
    if (image->rows == 1 && image->columns == 1 && image->frames == 1) {
        int32_t mid;
        if ((rc = host->add_mask(job, &m, &mid)) != AGORA_OK)
            return rc;
    }
    if (host->progress(job, 1.0) != AGORA_OK || host->cancelled(job))
        return AGORA_ECANCELLED;
    host->log(host, job, AGORA_LOG_DEBUG, "v1 plugin processed a job");
    return host->set_summary(job, "v1.0 plugin ran");
}

static void v1_fini(void *state)
{
    (void)state;
}

static const agora_plugin v1 = {sizeof(agora_plugin), AGORA_ABI_VERSION, "org.agora.tests.abi-v1",
                                "1.0.0", v1_init, v1_process, v1_fini, NULL};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    return AGORA_ABI_MAJOR(host_abi_version) == 1 ? &v1 : NULL;
}
