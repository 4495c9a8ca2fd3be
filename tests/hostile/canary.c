/*
 * The glibc canary: ordinary things a real plugin does — threads, small and large allocations,
 * stdio formatting, libm, getrandom, clocks, every result kind — must all work under the compute
 * policy. If this plugin is killed, the policy is too tight.
 */
#include "agora/agora.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const agora_host *host;

typedef struct work {
    const agora_frame *frame;
    agora_job *job;
    double sum;
} work;

static void *worker(void *arg)
{
    work *w = arg;
    const uint8_t *px = w->frame->data;
    for (uint64_t i = 0; i < w->frame->size_bytes; i++)
        w->sum += sqrt((double)px[i]) + sin((double)i) * exp(-1.0);
    void *tmp = malloc(1u << 20); /* per-thread arena */
    if (tmp)
        memset(tmp, 1, 1u << 20);
    free(tmp);
    host->log(host, w->job, AGORA_LOG_DEBUG, "thread done");
    return NULL;
}

static int32_t canary_init(const agora_host *h, void **state)
{
    host = h;
    *state = malloc(128);
    host->log(host, NULL, AGORA_LOG_INFO, "canary init");
    return *state ? AGORA_OK : AGORA_ENOMEM;
}

static int32_t canary_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    enum { NT = 4 };
    pthread_t t[NT];
    work w[NT];
    for (int i = 0; i < NT; i++) {
        w[i].frame = host->frame(job, (uint32_t)i % image->frames);
        w[i].job = job;
        w[i].sum = 0;
        if (w[i].frame == NULL || pthread_create(&t[i], NULL, worker, &w[i]) != 0) {
            host->set_error(job, "pthread_create or frame() failed");
            return AGORA_EINTERNAL;
        }
    }
    double total = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        total += w[i].sum;
    }
    /* large + small allocations */
    size_t big = 32u << 20;
    uint8_t *b = malloc(big);
    if (b == NULL) {
        host->set_error(job, "32 MiB malloc failed");
        return AGORA_ENOMEM;
    }
    memset(b, 3, big);
    free(b);
    for (int i = 0; i < 1000; i++)
        free(malloc((size_t)(i % 200) + 1));
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        host->set_error(job, "getrandom failed");
        return AGORA_EINTERNAL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("canary says %f\n", total); /* stdout is inert; must not crash */
    fflush(stdout);
    fprintf(stderr, "canary stderr\n");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char buf[256];
    snprintf(buf, sizeof buf, "sum=%.3f cpus=%ld spacing=%.2f modality=%s", total, ncpu,
             image->pixel_spacing[0], image->modality);
    int32_t region = -1, mask = -1;
    double pts[4] = {1, 1, 5, 6};
    agora_region r = {sizeof r, AGORA_REGION_BOX, 0, pts, 2, "box"};
    uint8_t labels[16 * 16];
    memset(labels, 0, sizeof labels);
    labels[17] = 1;
    agora_mask m = {sizeof m, 0, 1, image->rows, image->columns, 8, labels, "mask"};
    agora_finding f = {sizeof f, "SCT", "126713003", "Mass of lung", 0.75, 0, -1};
    agora_measurement me = {sizeof me, "mean", total / 4.0, "1", 0, -1, NULL, NULL, NULL};
    if (host->add_region(job, &r, &region) != AGORA_OK ||
        host->add_mask(job, &m, &mask) != AGORA_OK) {
        host->set_error(job, "add_region/add_mask refused");
        return AGORA_EINTERNAL;
    }
    f.region = region;
    me.region = mask;
    if (host->add_finding(job, &f) != AGORA_OK || host->add_measurement(job, &me) != AGORA_OK ||
        host->set_summary(job, buf) != AGORA_OK || host->progress(job, 1.0) != AGORA_OK) {
        host->set_error(job, "a result function refused valid input");
        return AGORA_EINTERNAL;
    }
    return AGORA_OK;
}

static void canary_fini(void *state)
{
    free(state);
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.canary",
    .version = "1.0.0",
    .init = canary_init,
    .process = canary_process,
    .fini = canary_fini,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
