/*
 * A plugin whose sandbox root runner_driver --check-root lists from outside (through
 * /proc/PID/root of the worker) and compares with the closure it sent (sandbox-root-*). Built
 * plain (libc only) and with libblas.so.3 (an /etc/alternatives chain), which it calls to show
 * the library really loaded. Not hostile.
 */
#include "agora/agora.h"

#ifdef WITH_BLAS
/* Any symbol of libblas.so.3, which Debian reaches through /etc/alternatives. */
extern double ddot_(const int *n, const double *x, const int *incx, const double *y,
                    const int *incy);
#endif

static const agora_host *host;

static int32_t rl_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t rl_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
#ifdef WITH_BLAS
    double x[2] = {1, 2}, y[2] = {3, 4};
    int n = 2, one = 1;
    if (ddot_(&n, x, &one, y, &one) != 11.0) {
        host->set_error(job, "libblas computed a wrong dot product");
        return AGORA_EINTERNAL;
    }
#endif
    host->set_summary(job, "loaded");
    return AGORA_OK;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.rootlist",
    .version = "1.0.0",
    .init = rl_init,
    .process = rl_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
