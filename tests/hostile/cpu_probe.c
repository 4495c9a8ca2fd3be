/*
 * Reports the CPU view and environment a plugin sees (sandbox-cpuview-*): CPUs counted in
 * /proc/cpuinfo, the /sys/devices/system/cpu/online range, sysconf's counts, the thread
 * variables, how many variables there are at all, and an FNV-1a sum of cpuinfo's first flags
 * line (runner_driver --host-flags compares it with the host's). Read in a constructor: the
 * compute filter answers every open with EACCES.
 */
#include "agora/agora.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static char report[1024];

static size_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    return got;
}

__attribute__((constructor)) static void cpu_ctor(void)
{
    static char info[1 << 20];
    slurp("/proc/cpuinfo", info, sizeof info);
    int cpus = 0;
    for (const char *p = info; (p = strstr(p, "processor")) != NULL; p++)
        if (p == info || p[-1] == '\n')
            cpus++;
    const char *fl = strstr(info, "\nflags");
    uint32_t h = 2166136261u;
    for (const char *p = fl != NULL ? fl + 1 : ""; *p && *p != '\n'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    char online[64] = "";
    slurp("/sys/devices/system/cpu/online", online, sizeof online);
    online[strcspn(online, "\n")] = '\0';
    int n_env = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        n_env++;
    const char *omp = getenv("OMP_NUM_THREADS"), *ob = getenv("OPENBLAS_NUM_THREADS");
    const char *mkl = getenv("MKL_NUM_THREADS"), *lim = getenv("OMP_THREAD_LIMIT");
    snprintf(
        report, sizeof report,
        "cpuinfo=%d online=%s onln=%ld conf=%ld omp=%s openblas=%s mkl=%s limit=%s env=%d "
        "avx2=%d flagsum=%08x",
        cpus, online, sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF), omp ? omp : "-",
        ob ? ob : "-", mkl ? mkl : "-", lim ? lim : "-", n_env,
        fl != NULL && strstr(fl, " avx2") != NULL && strstr(fl, " avx2") < strchr(fl + 1, '\n'), h);
}

static const agora_host *host;

static int32_t cp_init(const agora_host *hst, void **state)
{
    host = hst;
    *state = NULL;
    return AGORA_OK;
}

static int32_t cp_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    host->set_summary(job, report);
    return AGORA_OK;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.cpu",
    .version = "1.0.0",
    .init = cp_init,
    .process = cp_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
