/*
 * Hostile plugins against the memory cap (issue 8). One source, one attack per build: MEMATTACK
 * selects it and IN_CTOR=1 runs it from a constructor (under the loader filter, where MAP_FIXED
 * must be allowed) instead of from process(). The attack keeps what it got until the job ends, so
 * the test (runner_driver --max-peak-mib) sees it in the sandbox's peak RSS read from /proc.
 *
 * The plugin reports "held N MiB: ..." as a plugin error, or "ESCAPED: ..." as a successful job
 * when it held 1 GiB or more (the level issue 8 reproduced); the tests fail on the latter and on
 * a peak RSS above the documented bound.
 *
 * Harmless even if the sandbox failed: every attack touches at most HOLD_MAX (1 GiB) and stops
 * at the first refusal; threads are capped at 16; nothing leaves the process.
 */
#include "agora/agora.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MEMATTACK
#error "build with -DMEMATTACK=<n>"
#endif
#ifndef IN_CTOR
#define IN_CTOR 0
#endif

#define MIB      (1ul << 20)
#define HOLD_MAX (1ul << 30)

static char outcome[512];
static int outcome_code = AGORA_EINTERNAL;
static size_t held;
static const agora_host *hostile_mem_host;
static size_t cap_mib; /* the test's memory_mb, from the job attribute MemoryMiB */

#ifdef BIG_BSS_MIB
static uint8_t big_bss[(size_t)BIG_BSS_MIB << 20];
#endif
#ifdef BIG_TLS_MIB
static __thread uint8_t big_tls[(size_t)BIG_TLS_MIB << 20];
#endif

static void report(const char *what, int err)
{
    if (held >= HOLD_MAX) {
        snprintf(outcome, sizeof outcome, "ESCAPED: %s: held %zu MiB", what, held / MIB);
        outcome_code = AGORA_OK;
        return;
    }
    snprintf(outcome, sizeof outcome, "held %zu MiB: %s stopped: %s", held / MIB, what,
             err ? strerror(err) : "limit reached");
    outcome_code = err == ENOMEM ? AGORA_ENOMEM : AGORA_EINTERNAL;
}

static void touch(volatile uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
}

/* mmap chunks of `flags` until refused or HOLD_MAX, touching each. */
static void chunks(const char *what, int prot, int flags)
{
    for (;;) {
        if (held >= HOLD_MAX)
            return report(what, 0);
        void *p = mmap(NULL, 64 * MIB, prot, flags, -1, 0);
        if (p == MAP_FAILED)
            return report(what, errno);
        touch(p, 64 * MIB);
        held += 64 * MIB;
    }
}

/* A PROT_NONE reservation replaced by a read-write MAP_FIXED mapping: the kernel subtracts the
 * replaced pages from the new mapping's charge whatever they were. Greedy: reserve the largest
 * block the address space still allows, replace, fill, repeat. */
static void fixed_remap(void)
{
    size_t sz = 512 * MIB;
    while (held < HOLD_MAX && sz >= MIB) {
        void *r = mmap(NULL, sz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) {
            sz /= 2;
            continue;
        }
        void *p = mmap(r, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       -1, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            munmap(r, sz);
            return report("MAP_FIXED over a PROT_NONE reservation", e);
        }
        touch(p, sz);
        held += sz;
    }
    report("MAP_FIXED over a PROT_NONE reservation", ENOMEM);
}

/* The same reservation made writable with mprotect (charged: must stop at the cap). */
static void mprotect_reserve(void)
{
    size_t sz = HOLD_MAX;
    void *r = MAP_FAILED;
    while (sz >= MIB && (r = mmap(NULL, sz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) ==
                            MAP_FAILED)
        sz /= 2;
    if (r == MAP_FAILED)
        return report("PROT_NONE reservation", errno);
    for (size_t off = 0; off < sz; off += 16 * MIB) {
        if (mprotect((uint8_t *)r + off, 16 * MIB, PROT_READ | PROT_WRITE) != 0)
            return report("mprotect of a reservation to read-write", errno);
        touch((uint8_t *)r + off, 16 * MIB);
        held += 16 * MIB;
    }
    report("mprotect of a reservation to read-write", 0);
}

/* A huge read-only mapping read sparsely: no RSS, but one page-table page per 2 MiB. */
static void sparse_ro(void)
{
    size_t sz = (size_t)64 << 30;
    void *r = MAP_FAILED;
    while (sz >= MIB && (r = mmap(NULL, sz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                                  -1, 0)) == MAP_FAILED)
        sz /= 2;
    if (r == MAP_FAILED)
        return report("a read-only mapping", errno);
    volatile const uint8_t *p = r;
    unsigned sum = 0;
    for (size_t off = 0; off < sz; off += 2 * MIB)
        sum += p[off];
    /* What would count is the page tables: sz / 512. Report the mapping size as "held". */
    held = sz >= ((size_t)512 << 30) ? HOLD_MAX : sz / 512 * 512 >= HOLD_MAX ? HOLD_MAX : 0;
    snprintf(outcome, sizeof outcome, "held %zu MiB of read-only mapping (sum %u): %s",
             sz / MIB, sum, sz >= HOLD_MAX ? "ESCAPED: over 1 GiB of address space" : "bounded");
    outcome_code = sz >= HOLD_MAX ? AGORA_OK : AGORA_ELIMIT;
}

/* Grow one private mapping with mremap: growth is charged. Then try moving it onto a chosen
 * address (MREMAP_FIXED), which the policy refuses. */
static void mremap_grow(void)
{
    size_t sz = 16 * MIB;
    uint8_t *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return report("mmap", errno);
    touch(p, sz);
    held = sz;
    while (held < HOLD_MAX) {
        uint8_t *q = mremap(p, sz, sz + 64 * MIB, MREMAP_MAYMOVE);
        if (q == MAP_FAILED)
            break;
        touch(q + sz, 64 * MIB);
        p = q;
        sz += 64 * MIB;
        held = sz;
    }
    int e = errno;
    void *fixed = mremap(p, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED, p + sz + 64 * MIB);
    if (fixed != MAP_FAILED)
        return report("mremap growth (and MREMAP_FIXED was allowed)", 0);
    report("mremap growth", e);
}

static void brk_grow(void)
{
    while (held < HOLD_MAX) {
        void *p = sbrk(16 * MIB);
        if (p == (void *)-1)
            return report("brk", errno);
        touch(p, 16 * MIB);
        held += 16 * MIB;
    }
    report("brk", 0);
}

/* Threads that each fill most of their 8 MiB stack, then malloc until refused. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static size_t deep(size_t depth)
{
    volatile uint8_t frame[64 * 1024];
    touch(frame, sizeof frame);
    return depth == 0 ? frame[0] : deep(depth - 1) + frame[1];
}
static void *stack_filler(void *arg)
{
    (void)arg;
    size_t r = deep(100); /* ~6.4 MiB of stack */
    pthread_mutex_lock(&mu);
    held += 6 * MIB + (r & 0);
    pthread_mutex_unlock(&mu);
    return NULL;
}
static void thread_stacks(void)
{
    pthread_t t[16];
    int n = 0;
    while (n < 16 && pthread_create(&t[n], NULL, stack_filler, NULL) == 0)
        n++;
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    /* The stacks stay mapped in glibc's cache; now the heap until malloc says no. */
    while (held < HOLD_MAX) {
        uint8_t *p = malloc(8 * MIB);
        if (p == NULL)
            return report("thread stacks, then malloc", ENOMEM);
        touch(p, 8 * MIB);
        held += 8 * MIB;
    }
    report("thread stacks, then malloc", 0);
}

static void sysv_shm(void)
{
    int id = shmget(IPC_PRIVATE, HOLD_MAX, IPC_CREAT | 0600);
    if (id < 0)
        return report("shmget", errno);
    void *p = shmat(id, NULL, 0);
    shmctl(id, IPC_RMID, NULL);
    if (p == (void *)-1)
        return report("shmat", errno);
    touch(p, HOLD_MAX);
    held = HOLD_MAX;
    report("System V shared memory", 0);
}

static void memfd(void)
{
    int fd = (int)syscall(SYS_memfd_create, "hostile", 0u);
    if (fd < 0)
        return report("memfd_create", errno);
    if (ftruncate(fd, (off_t)HOLD_MAX) != 0)
        return report("ftruncate of a memfd", errno);
    void *p = mmap(NULL, HOLD_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return report("mmap of a memfd", errno);
    touch(p, HOLD_MAX);
    held = HOLD_MAX;
    report("memfd", 0);
}

static void shared_anon(void)
{
    chunks("shared anonymous memory", PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
}

static void growsdown(void)
{
    chunks("MAP_GROWSDOWN", PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN);
}

/* Touch the big static segments (refused before dlopen when they exceed the cap). */
static void static_segments(void)
{
#ifdef BIG_BSS_MIB
    touch(big_bss, sizeof big_bss);
    held += sizeof big_bss;
#endif
#ifdef BIG_TLS_MIB
    touch(big_tls, sizeof big_tls);
    held += sizeof big_tls;
#endif
    report("static segments", 0);
}

/* Not an attack: a plugin that stays under its cap and uses 90% of it in several ways must run.
 * .bss (BIG_BSS_MIB), small and large mallocs, three threads each allocating, and a private
 * anonymous mapping; every byte touched. */
static size_t share; /* bytes each of the five ways uses */
static void *alloc_thread(void *arg)
{
    (void)arg;
    size_t got = 0;
    while (got < share / 3) {
        uint8_t *p = malloc(256 * 1024);
        if (p == NULL)
            return (void *)1;
        touch(p, 256 * 1024);
        got += 256 * 1024;
    }
    return NULL;
}
static void ninety(void)
{
    size_t want = cap_mib * MIB / 10 * 9;
    size_t used = 0;
#ifdef BIG_BSS_MIB
    touch(big_bss, sizeof big_bss);
    used += sizeof big_bss;
#endif
    share = (want - used) / 4;
    size_t small = 0;
    while (small < share) { /* small blocks: the main arena */
        uint8_t *p = malloc(1000);
        if (p == NULL)
            return report("ninety: small malloc failed", ENOMEM);
        touch(p, 1000);
        small += 1000;
    }
    uint8_t *large = malloc(share); /* one large block: mmap'ed by malloc */
    if (large == NULL)
        return report("ninety: large malloc failed", ENOMEM);
    memset(large, 1, share);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], NULL, alloc_thread, NULL) != 0)
            return report("ninety: a thread could not start", EAGAIN);
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed |= r != NULL;
    }
    if (failed)
        return report("ninety: a thread's malloc failed", ENOMEM);
    uint8_t *m = mmap(NULL, share, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return report("ninety: private mmap failed", errno);
    touch(m, share);
    used += 4 * share;
    snprintf(outcome, sizeof outcome, "used %zu MiB of %zu MiB in five ways", used / MIB,
             cap_mib);
    outcome_code = AGORA_OK;
}

static void (*const attacks[])(void) = {shared_anon, growsdown, fixed_remap, mprotect_reserve,
                                         sparse_ro,   mremap_grow, brk_grow, thread_stacks,
                                         sysv_shm,    memfd,      static_segments, ninety};

static void attack(void)
{
    attacks[MEMATTACK]();
}

#if IN_CTOR
__attribute__((constructor)) static void hostile_ctor(void)
{
    attack();
}
#endif

static int32_t hostile_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
#if !IN_CTOR
    const char *cap = hostile_mem_host->attr_get(job, "MemoryMiB");
    cap_mib = cap != NULL ? (size_t)atoi(cap) : 64;
    attack();
#endif
    if (outcome_code == AGORA_OK) {
        hostile_mem_host->set_summary(job, outcome);
        return AGORA_OK;
    }
    hostile_mem_host->set_error(job, outcome);
    return outcome_code;
}

static int32_t hostile_init(const agora_host *host, void **state)
{
    hostile_mem_host = host;
    *state = NULL;
    return AGORA_OK;
}

static const agora_plugin desc = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.hostile",
    .version = "1.0.0",
    .init = hostile_init,
    .process = hostile_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi)
{
    (void)host_abi;
    return &desc;
}
