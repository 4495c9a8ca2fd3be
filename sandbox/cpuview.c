/*
 * The CPU view and the fixed environment (docs/binary-environment.md). Numerical libraries size
 * their thread pools from sysconf(_SC_NPROCESSORS_*), /sys/devices/system/cpu and /proc/cpuinfo,
 * and pick their kernels (AVX2...) from cpuinfo's flags: inside the root they find a synthetic,
 * read-only view of exactly `cpus` CPUs, made from the host's own /proc/cpuinfo (flags kept),
 * and OMP_NUM_THREADS and the like say the same number. Nothing else of the host's environment
 * reaches the worker.
 */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFINE_FAIL(code, ...)                                                                    \
    agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, (code), __VA_ARGS__)

#define CPUINFO_MAX (1u << 20) /* of the host's file read, and of the one written */

uint32_t agora__runner_cpu_count(uint32_t max_threads)
{
    cpu_set_t set;
    uint32_t host = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        host = (uint32_t)CPU_COUNT(&set);
    uint32_t n = max_threads < host ? max_threads : host;
    return n > 0 ? n : 1;
}

int agora__runner_fixed_env(uint32_t cpus)
{
    /* The thread-count variables of OpenMP (libgomp), OpenBLAS, MKL, BLIS, and the OpenMP cap on
     * all threads together; one value, the worker's CPUs. */
    static const char *const vars[] = {"OMP_NUM_THREADS",      "OMP_THREAD_LIMIT",
                                       "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                                       "MKL_NUM_THREADS",      "BLIS_NUM_THREADS"};
    char v[16];
    snprintf(v, sizeof v, "%u", cpus);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (setenv(vars[i], v, 1) != 0)
            return -1;
    return 0;
}

static void write_file(const char *rel, const char *data, size_t len)
{
    int fd = open(rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        CONFINE_FAIL(-errno, "creating %s in the sandbox root failed: %s", rel, strerror(errno));
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            CONFINE_FAIL(-EIO, "writing %s in the sandbox root failed", rel);
        data += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0)
        CONFINE_FAIL(-errno, "closing %s failed: %s", rel, strerror(errno));
}

/* The host's /proc/cpuinfo (NUL-terminated, malloc), or a minimal block without flags. */
static char *host_cpuinfo(void)
{
    char *b = malloc(CPUINFO_MAX + 1);
    if (b == NULL)
        CONFINE_FAIL(-ENOMEM, "out of memory for the CPU view");
    size_t got = 0;
    int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < CPUINFO_MAX) {
        ssize_t n = read(fd, b + got, CPUINFO_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    b[got] = '\0';
    if (strstr(b, "processor") == NULL)
        snprintf(b, CPUINFO_MAX, "processor\t: 0\n\n");
    return b;
}

/* Append one CPU's block: the template block with processor, siblings, cpu cores, core id and
 * apicid rewritten for CPU k of n (one package, one thread per core). */
static size_t put_block(char *out, size_t off, size_t cap, const char *blk, size_t blen, uint32_t k,
                        uint32_t n)
{
    static const struct {
        const char *key;
        int which; /* 0: k, 1: n */
    } fix[] = {{"processor", 0}, {"siblings", 1}, {"cpu cores", 1},
               {"core id", 0},   {"apicid", 0},   {"initial apicid", 0}};
    const char *p = blk, *end = blk + blen;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        int done = 0;
        for (size_t i = 0; i < sizeof fix / sizeof fix[0] && !done; i++) {
            size_t kl = strlen(fix[i].key);
            if (ll > kl && memcmp(p, fix[i].key, kl) == 0 &&
                (p[kl] == '\t' || p[kl] == ' ' || p[kl] == ':')) {
                int w =
                    snprintf(out + off, cap - off, "%s\t: %u\n", fix[i].key, fix[i].which ? n : k);
                if (w > 0 && (size_t)w < cap - off)
                    off += (size_t)w;
                done = 1;
            }
        }
        if (!done && ll + 1 < cap - off) {
            memcpy(out + off, p, ll);
            out[off + ll] = '\n';
            off += ll + 1;
        }
        p += ll + 1;
    }
    if (off + 1 < cap)
        out[off++] = '\n';
    return off;
}

void agora__runner_cpuview_build(uint32_t cpus)
{
    char range[32];
    if (cpus == 1)
        snprintf(range, sizeof range, "0\n");
    else
        snprintf(range, sizeof range, "0-%u\n", cpus - 1);
    static const char *const files[] = {"sys/devices/system/cpu/possible",
                                        "sys/devices/system/cpu/present",
                                        "sys/devices/system/cpu/online"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        write_file(files[i], range, strlen(range));
    /* glibc's get_nprocs_conf() may count cpuN directories instead. */
    for (uint32_t k = 0; k < cpus; k++) {
        char d[64];
        snprintf(d, sizeof d, "sys/devices/system/cpu/cpu%u", k);
        if (mkdir(d, 0555) != 0)
            CONFINE_FAIL(-errno, "mkdir %s failed: %s", d, strerror(errno));
    }
    char *host = host_cpuinfo();
    char *out = malloc(CPUINFO_MAX);
    if (out == NULL)
        CONFINE_FAIL(-ENOMEM, "out of memory for the CPU view");
    /* Blocks are separated by an empty line; CPU k takes host block k, or the last one. */
    const char *blocks[1024];
    size_t lens[1024], nb = 0;
    for (const char *p = host; *p != '\0' && nb < 1024;) {
        const char *e = strstr(p, "\n\n");
        size_t l = e != NULL ? (size_t)(e - p) + 1 : strlen(p);
        if (l > 1) {
            blocks[nb] = p;
            lens[nb++] = l;
        }
        p += l + (e != NULL ? 1 : 0);
    }
    size_t off = 0;
    for (uint32_t k = 0; k < cpus && nb > 0; k++) {
        size_t b = k < nb ? k : nb - 1;
        off = put_block(out, off, CPUINFO_MAX, blocks[b], lens[b], k, cpus);
    }
    write_file("proc/cpuinfo", out, off);
    free(out);
    free(host);
}
