/*
 * Plugins for dev_run_limits.sh, one behaviour per build (KIND):
 *   0  init never returns (sleeps forever): dev run --timeout must bound setup, without retries
 *   1  results and a log line carrying C1 controls (U+009B, the terminal CSI) and C0 controls:
 *      dev run's text output must print them escaped, never raw
 */
#include "agora/agora.h"

#include <time.h>

#ifndef KIND
#error "build with -DKIND=<n>"
#endif

static const agora_host *H;

static int32_t init(const agora_host *host, void **state)
{
    H = host;
    *state = NULL;
#if KIND == 0
    for (;;) {
        struct timespec ts = {3600, 0};
        nanosleep(&ts, NULL);
    }
#endif
    return AGORA_OK;
}

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    /* U+009B (C2 9B) followed by "31m" would turn a terminal red; U+0085 is NEL. */
    H->log(H, job, AGORA_LOG_WARN,
           "log \xc2\x9b"
           "31m red \xc2\x85 nel");
    agora_finding f = {sizeof f,
                       "TEST",
                       "c1",
                       "meaning \xc2\x9b"
                       "2J cleared",
                       0.5,
                       AGORA_NONE,
                       AGORA_NONE};
    H->add_finding(job, &f);
    agora_measurement m = {sizeof m,
                           "name \xc2\x9b"
                           "1m",
                           1.0,
                           "mm",
                           AGORA_NONE,
                           AGORA_NONE,
                           NULL,
                           NULL,
                           NULL};
    H->add_measurement(job, &m);
    H->set_summary(job, "summary \xc2\x9b"
                        "31m tab\there \\ done");
    return AGORA_OK;
}

static const agora_plugin desc = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.tests.misbehave",
    .version = "1.0.0",
    .init = init,
    .process = process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi)
{
    (void)host_abi;
    return &desc;
}
