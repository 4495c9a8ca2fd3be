/*
 * The memory cap (docs/sandbox.md, "Memory"): how resources.memory_mb becomes kernel limits,
 * the check of the plugin's ELF segments before anything maps them, and how the runner tells
 * "crashed at the cap" from any other crash.
 *
 * The kernel charges RLIMIT_DATA only for private writable mappings, and it does not charge a
 * MAP_FIXED mapping that replaces an existing one (it subtracts the pages it replaces whatever
 * their kind). So:
 *   - RLIMIT_DATA = memory + thread stacks + the runner's own data: the cap on what a plugin
 *     allocates (malloc, brk, private mmap, mprotect of a reservation to writable);
 *   - the seccomp policy refuses every mapping RLIMIT_DATA does not see: shared anonymous,
 *     MAP_GROWSDOWN, and (in jobs) MAP_FIXED;
 *   - RLIMIT_AS = memory + headroom for reservations + the job mappings the host declared: the
 *     backstop for what seccomp must allow while the loader runs (MAP_FIXED over its own
 *     reservation, for .bss and data segments — and therefore also in constructors and init),
 *     for page tables (bounded by the address space they map) and for the main stack;
 *   - the ELF check refuses a plugin whose segments or TLS alone exceed the cap, before dlopen.
 */
#include "runner.h"

#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1ull << 20)

void agora__memcap_compute(const agora__runner_limits *l, int fork_per_job, agora__memcap *out)
{
    memset(out, 0, sizeof *out);
    uint64_t threads = (uint64_t)l->max_threads * (fork_per_job ? 2 : 1);
    out->stack_bytes = AGORA__MEMCAP_THREAD_STACK;
    out->arenas =
        l->max_threads < AGORA__MEMCAP_MAX_ARENAS ? l->max_threads : AGORA__MEMCAP_MAX_ARENAS;
    if (out->arenas == 0)
        out->arenas = 1;
    /* Thread stacks are private writable mappings: RLIMIT_DATA counts them whole. */
    out->data_bytes =
        l->memory_bytes + threads * (AGORA__MEMCAP_THREAD_STACK + 4096) + AGORA__MEMCAP_RUNNER_DATA;
    /* Address space: everything above, the malloc arenas' 64 MiB reservations, the runner's
     * executable and libraries (measured, see AGORA__MEMCAP_RUNNER_AS), the main stack, and the
     * (the main arena grows with brk and plain mmap, no reservation; each further one reserves)
     * job memfds the host may map at once, and the plugin's assets (shared read-only file
     * mappings: address space, never RLIMIT_DATA, and pages shared with every other worker). */
    out->as_bytes = out->data_bytes + (uint64_t)(out->arenas - 1) * AGORA__MEMCAP_ARENA +
                    AGORA__MEMCAP_RUNNER_AS + AGORA__MEMCAP_MAIN_STACK + l->job_map_bytes +
                    l->asset_bytes;
}

/* Read a little-endian value of n bytes at p (the check runs on untrusted bytes). */
static uint64_t rd(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int agora__memcap_check_elf(const uint8_t *b, size_t len, const agora__runner_limits *l, char *why,
                            size_t why_len)
{
    const uint64_t cap = l->memory_bytes;
    if (len < sizeof(Elf64_Ehdr) || memcmp(b, ELFMAG, SELFMAG) != 0 || b[EI_CLASS] != ELFCLASS64 ||
        b[EI_DATA] != ELFDATA2LSB) {
        snprintf(why, why_len, "the plugin is not a 64-bit little-endian ELF file");
        return AGORA_EINVAL;
    }
    uint64_t phoff = rd(b + offsetof(Elf64_Ehdr, e_phoff), 8);
    uint64_t phentsize = rd(b + offsetof(Elf64_Ehdr, e_phentsize), 2);
    uint64_t phnum = rd(b + offsetof(Elf64_Ehdr, e_phnum), 2);
    if (phentsize < sizeof(Elf64_Phdr) || phnum == 0 || phnum > 4096 || phoff > len ||
        phnum * phentsize > len - phoff) {
        snprintf(why, why_len, "the plugin's ELF program headers are missing or truncated");
        return AGORA_EINVAL;
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = b + phoff + i * phentsize;
        uint32_t type = (uint32_t)rd(ph + offsetof(Elf64_Phdr, p_type), 4);
        uint64_t vaddr = rd(ph + offsetof(Elf64_Phdr, p_vaddr), 8);
        uint64_t memsz = rd(ph + offsetof(Elf64_Phdr, p_memsz), 8);
        if (type == PT_LOAD) {
            if (memsz > cap) {
                snprintf(why, why_len,
                         "the plugin's loadable segment %llu needs %llu MiB of memory (p_memsz, "
                         "including .bss), more than its memory limit of %llu MiB; raise "
                         "resources.memory_mb or make the static data smaller",
                         (unsigned long long)i, (unsigned long long)((memsz + MIB - 1) / MIB),
                         (unsigned long long)(cap / MIB));
                return AGORA_ELIMIT;
            }
            if (vaddr > UINT64_MAX - memsz) {
                snprintf(why, why_len, "the plugin's loadable segment %llu wraps the address space",
                         (unsigned long long)i);
                return AGORA_EINVAL;
            }
            if (vaddr < lo)
                lo = vaddr;
            if (vaddr + memsz > hi)
                hi = vaddr + memsz;
        } else if (type == PT_TLS) {
            /* Every thread gets its own copy (the main thread and up to max_threads more). */
            uint64_t copies = (uint64_t)l->max_threads + 1;
            if (memsz > cap / copies) {
                snprintf(why, why_len,
                         "the plugin's thread-local storage segment (PT_TLS) needs %llu MiB per "
                         "thread, and %llu threads' copies exceed its memory limit of %llu MiB; "
                         "use heap memory instead of large thread-local arrays",
                         (unsigned long long)((memsz + MIB - 1) / MIB), (unsigned long long)copies,
                         (unsigned long long)(cap / MIB));
                return AGORA_ELIMIT;
            }
        }
    }
    if (hi > lo && hi - lo > cap) {
        snprintf(why, why_len,
                 "the plugin's loadable segments span %llu MiB of memory, more than its memory "
                 "limit of %llu MiB; raise resources.memory_mb or make the static data smaller",
                 (unsigned long long)((hi - lo + MIB - 1) / MIB), (unsigned long long)(cap / MIB));
        return AGORA_ELIMIT;
    }
    return AGORA_OK;
}

/* ---- crashes at the cap --------------------------------------------------------------------- */

static volatile sig_atomic_t in_crash;

/* A plugin that dereferences the NULL a failed malloc returned, or a C++ plugin aborting on
 * bad_alloc, dies of SIGSEGV/SIGBUS/SIGABRT. Whether that happened at the cap is what the runner
 * can see for itself: if one more MiB cannot be mapped now, the address space or the data limit
 * is exhausted. Then the worker exits with AGORA__RUNNER_EXIT_OOM, which the host reports as
 * out-of-memory; otherwise the signal is re-raised unchanged. Async-signal-safe: mmap, munmap,
 * sigaction, raise and _exit only. */
static void on_crash(int sig)
{
    if (!in_crash) {
        in_crash = 1;
        void *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED && errno == ENOMEM)
            _exit(AGORA__RUNNER_EXIT_OOM);
        if (p != MAP_FAILED)
            munmap(p, MIB);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    raise(sig); /* blocked until we return (no SA_NODEFER): then it is fatal, as before */
}

int agora__memcap_install_crash_probe(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return -errno;
    /* Thread stacks of the size the cap accounts for (glibc takes RLIMIT_STACK at start, which
     * the host may have left unlimited). */
    pthread_attr_t attr;
    if (pthread_getattr_default_np(&attr) == 0) {
        size_t sz = 0;
        if (pthread_attr_getstacksize(&attr, &sz) == 0 && sz > AGORA__MEMCAP_THREAD_STACK)
            (void)pthread_attr_setstacksize(&attr, AGORA__MEMCAP_THREAD_STACK);
        (void)pthread_setattr_default_np(&attr);
        pthread_attr_destroy(&attr);
    }
    return 0;
}
