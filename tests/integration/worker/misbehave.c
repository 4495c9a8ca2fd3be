/*
 * misbehave — a test plugin for the pool integration tests whose behaviour is chosen per job by
 * the granted attribute "Behave", so one warm pool can see a crash and then a good job.
 * Harmless even if the sandbox failed: it forks at most once (and the child exits at once),
 * allocates at most 1 GiB, spins at most 20 s, and writes only to its own channel (fd 3).
 */
#include <agora/agora.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const agora_host *host;
static uint32_t jobs; /* state carried between jobs of one worker process */

static int32_t init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int32_t report_jobs(agora_job *job)
{
    agora_measurement m = {0};
    m.struct_size = sizeof m;
    m.name = "jobs";
    m.value = jobs;
    m.unit = "1";
    m.frame = AGORA_NONE;
    m.region = AGORA_NONE;
    return host->add_measurement(job, &m);
}

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    jobs++;
    const char *b = host->attr_get(job, "Behave");
    if (b == NULL || strcmp(b, "ok") == 0)
        return report_jobs(job);
    if (strcmp(b, "segv") == 0) {
        static volatile uintptr_t addr = 16;
        *(volatile int *)addr = 1;
    }
    if (strcmp(b, "forbidden") == 0) {
        pid_t p = fork(); /* the compute filter kills this with SIGSYS */
        if (p == 0)
            _exit(0);
        host->set_error(job, "fork was not stopped");
        return AGORA_EINTERNAL;
    }
    if (strcmp(b, "plugin-error") == 0) {
        host->set_error(job, "not my kind of image");
        return AGORA_EINPUT;
    }
    if (strcmp(b, "enomem") == 0) {
        enum { CHUNK = 16 << 20, MAX = 64 }; /* 1 GiB cap */
        void *c[MAX];
        int n = 0;
        for (; n < MAX && (c[n] = malloc(CHUNK)) != NULL; n++)
            memset(c[n], 0x5a, CHUNK);
        for (int i = 0; i < n; i++)
            free(c[i]);
        host->set_error(job, n < MAX ? "allocation failed" : "no memory limit");
        return n < MAX ? AGORA_ENOMEM : AGORA_EINTERNAL;
    }
    if (strcmp(b, "garbage") == 0) {
        static const char junk[] = "\x10\x00\x00\x00 not a protobuf frame";
        if (write(3, junk, sizeof junk) < 0)
            return AGORA_EINTERNAL;
        return report_jobs(job);
    }
    if (strcmp(b, "oversized") == 0) {
        static const unsigned char hdr[4] = {0xff, 0xff, 0xff, 0x7f};
        if (write(3, hdr, 4) < 0)
            return AGORA_EINTERNAL;
        return report_jobs(job);
    }
    if (strcmp(b, "spin") == 0 || strcmp(b, "spin-cancellable") == 0) {
        int coop = b[4] == '-';
        double end = now_s() + 20;
        while (now_s() < end)
            if (coop && host->cancelled(job))
                return AGORA_ECANCELLED;
        host->set_error(job, "spun for 20 s without being stopped");
        return AGORA_EINTERNAL;
    }
    if (strcmp(b, "mask") == 0) {
        uint64_t n = (uint64_t)image->rows * image->columns;
        uint8_t *labels = malloc(n);
        if (labels == NULL)
            return AGORA_ENOMEM;
        for (uint64_t i = 0; i < n; i++)
            labels[i] = (uint8_t)(i % 3 == 0);
        agora_mask mk = {0};
        mk.struct_size = sizeof mk;
        mk.first_frame = 0;
        mk.n_frames = 1;
        mk.rows = image->rows;
        mk.columns = image->columns;
        mk.bits = 8;
        mk.labels = labels;
        mk.label = "every third pixel";
        int32_t id;
        int32_t rc = host->add_mask(job, &mk, &id);
        free(labels);
        if (rc != AGORA_OK) {
            host->set_error(job, "add_mask refused");
            return rc;
        }
        host->progress(job, 0.5);
        return report_jobs(job);
    }
    host->set_error(job, "unknown behaviour");
    return AGORA_EINVAL;
}

static const agora_plugin desc = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.misbehave",
    .version = "1.0.0",
    .init = init,
    .process = process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    return AGORA_ABI_MAJOR(host_abi_version) == AGORA_ABI_VERSION_MAJOR ? &desc : NULL;
}
