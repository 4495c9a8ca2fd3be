/*
 * A thread started by init outlives init and acts only once process() runs: the compute filter
 * must cover it too (installed with TSYNC). Under the loader filter alone its read-only open of a
 * library would succeed; under compute it must get EACCES.
 */
#include "agora/agora.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const agora_host *host;
static pthread_t th;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, done, opened, err;

static void *lurker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!go)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    int fd = open("/usr/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY);
    pthread_mutex_lock(&mu);
    opened = fd >= 0;
    err = errno;
    done = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int32_t tsync_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return pthread_create(&th, NULL, lurker, NULL) == 0 ? AGORA_OK : AGORA_EINTERNAL;
}

static int32_t tsync_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    pthread_mutex_lock(&mu);
    go = 1;
    pthread_cond_signal(&cv);
    while (!done)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    char msg[128];
    if (opened) {
        host->set_summary(job, "ESCAPED: a thread from init opened a file during a job");
        return AGORA_OK;
    }
    snprintf(msg, sizeof msg, "blocked: init's thread could not open: %s", strerror(err));
    host->set_error(job, msg);
    return AGORA_EINTERNAL;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.hostile",
    .version = "1.0.0",
    .init = tsync_init,
    .process = tsync_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
