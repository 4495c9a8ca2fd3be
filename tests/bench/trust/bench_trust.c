/* Benchmark of the trust checks `agora run` pays for: loading a verified plugin (read + sha256
 * of binary and manifest + catalog checks) against the baseline of reading and hashing the same
 * file, and the per-job agora__trust_allowed re-check for small and large catalogs.
 * usage: bench_trust [PLUGIN_MiB (default 64)] [ENTRIES (default 1000)]. Prints medians. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>

#include "trust_int.h"

#define RUNS 9

static double now_s(void)
{
    return (double)agora__now_ns() / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void die(const char *what, const agora__error *err)
{
    fprintf(stderr, "bench_trust: %s: %s\n", what, err != NULL ? err->msg : "");
    exit(1);
}

static void write_blob(const char *catdir, const uint8_t sha[32], const void *data, size_t len)
{
    char hex[65], path[4200];
    agora__error err;
    agora__hex(sha, 32, hex);
    snprintf(path, sizeof path, "%s/blobs/%s", catdir, hex);
    if (agora__write_file_atomic(path, data, len, 0644, &err) != 0)
        die("write blob", &err);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 64;
    size_t entries = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1000;
    if (mib < 1 || mib > 256 || entries < 1 || entries > 10000) {
        fprintf(stderr, "usage: bench_trust [PLUGIN_MiB 1..256] [ENTRIES 1..10000]\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    char dir[256], catdir[300], home[300], prefix[300], path[4200];
    snprintf(dir, sizeof dir, "/tmp/agora-bench-trust-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(catdir, sizeof catdir, "%s/cat", dir);
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(prefix, sizeof prefix, "%s/op", dir);
    agora__error err;
    agora__pubkey pub;
    agora__seckey op;
    if (agora__keygen_files(prefix, NULL, 0, &pub, &err) != 0)
        die("keygen", &err);
    snprintf(path, sizeof path, "%s.key", prefix);
    if (agora__seckey_read(path, NULL, 0, &op, &err) != 0)
        die("key", &err);

    /* A plugin of `mib` MiB: a valid ELF header followed by pseudo-random bytes. */
    size_t plen = mib << 20;
    uint8_t *plugin = malloc(plen);
    if (plugin == NULL)
        return 1;
    randombytes_buf(plugin, plen);
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph = {0};
    ph.p_type = PT_LOAD;
    memcpy(plugin, &eh, sizeof eh);
    memcpy(plugin + sizeof eh, &ph, sizeof ph);
    char manifest[2048];
    int mlen = snprintf(
        manifest, sizeof manifest,
        "{\"id\":\"com.example.bench\",\"name\":\"b\",\"vendor\":\"v\",\"version\":\"1.0.0\","
        "\"abi\":\"1.0\",\"inputs\":{\"modalities\":[\"*\"]},\"permissions\":[\"rtnPatCharsOpt\"],"
        "\"resources\":{\"memory_mb\":64,\"time_s\":10,\"threads\":1},\"outputs\":[\"summary\"]}");

    agora__catalog cat = {0};
    snprintf(path, sizeof path, "%s/blobs", catdir);
    if (agora__mkdirs(path, 0755, &err) != 0)
        die("mkdir", &err);
    int64_t t0 = agora__trust_now();
    uint8_t plugin_sha[32], manifest_sha[32];
    agora__sha256(plugin, plen, plugin_sha);
    agora__sha256(manifest, (size_t)mlen, manifest_sha);
    for (size_t i = 0; i < entries; i++) {
        agora__cat_entry *e = agora__catalog_add(&cat, &err);
        if (e == NULL)
            die("add", &err);
        snprintf(e->id, sizeof e->id, "com.example.%s%zu", i == 0 ? "bench" : "other", i);
        if (i == 0)
            agora__strlcpy(e->id, "com.example.bench", sizeof e->id);
        agora__strlcpy(e->version, "1.0.0", sizeof e->version);
        agora__strlcpy(e->name, "b", sizeof e->name);
        agora__strlcpy(e->vendor, "v", sizeof e->vendor);
        agora__strlcpy(e->level, "research", sizeof e->level);
        memcpy(e->plugin_sha, plugin_sha, 32);
        memcpy(e->manifest_sha, manifest_sha, 32);
        e->plugin_size = plen;
        e->manifest_size = (uint64_t)mlen;
        e->granted = AGORA__OPT_RTN_PAT_CHARS;
        agora__strlcpy(e->pricing.model, "free", sizeof e->pricing.model);
        agora__strlcpy(e->pricing.currency, "XXX", sizeof e->pricing.currency);
        e->certified_at = t0;
        if (i > 0) /* distinct pins for the other entries; their blobs are never read */
            e->plugin_sha[0] ^= (uint8_t)i;
    }
    write_blob(catdir, cat.entries[0].plugin_sha, plugin, plen);
    write_blob(catdir, cat.entries[0].manifest_sha, manifest, (size_t)mlen);
    cat.version = 1;
    cat.issued = t0;
    cat.expires = t0 + 86400;
    agora__strlcpy(cat.key_id, op.pub.id, sizeof cat.key_id);
    if (agora__catalog_write_dir(catdir, &cat, &op, &err) != 0)
        die("write catalog", &err);
    snprintf(path, sizeof path, "%s.pub", prefix);
    const char *trust[1] = {path};
    agora__init_opts o = {home, trust, 1, AGORA__OPT_RTN_PAT_CHARS, 0};
    char resolved[4096];
    if (agora__home_init(&o, resolved, sizeof resolved, &err) != 0)
        die("init", &err);
    agora__trust_home *h;
    if (agora__trust_home_open(home, &h, &err) != 0)
        die("open", &err);
    agora__catalog old;
    double t = now_s();
    if (agora__home_sync(h, catdir, &old, &err) < 0)
        die("sync", &err);
    double sync_s = now_s() - t;
    agora__catalog_free(&old);
    char version[80];
    if (agora__home_install(h, "com.example.bench", NULL, NULL, version, sizeof version, &err) != 0)
        die("install", &err);

    double v_read[RUNS], v_hash[RUNS], v_load[RUNS], v_allowed[RUNS];
    snprintf(path, sizeof path, "%s/plugins/com.example.bench/plugin.so", home);
    for (int r = 0; r < RUNS; r++) {
        uint8_t *buf, sha[32];
        size_t len;
        t = now_s();
        if (agora__read_file(path, AGORA__TRUST_PLUGIN_MAX, &buf, &len, &err) != 0)
            die("read", &err);
        v_read[r] = now_s() - t;
        free(buf);
        t = now_s();
        if (agora__read_file(path, AGORA__TRUST_PLUGIN_MAX, &buf, &len, &err) != 0)
            die("read", &err);
        agora__sha256(buf, len, sha);
        v_hash[r] = now_s() - t;
        free(buf);
        agora__trust_loaded lp;
        t = now_s();
        if (agora__trust_load(h, "com.example.bench", &lp, &err) != 0)
            die("load", &err);
        v_load[r] = now_s() - t;
        agora__trust_loaded_free(&lp);
        t = now_s();
        if (agora__trust_allowed(h, "com.example.bench", "1.0.0", &err) != 0)
            die("allowed", &err);
        v_allowed[r] = now_s() - t;
    }
    double m_read = median(v_read, RUNS), m_hash = median(v_hash, RUNS);
    double m_load = median(v_load, RUNS), m_allowed = median(v_allowed, RUNS);
    printf("trust bench: plugin %zu MiB, catalog %zu entries, median of %d runs\n", mib, entries,
           RUNS);
    printf("  baseline read only          %8.2f ms  (%.0f MiB/s)\n", m_read * 1e3,
           (double)mib / m_read);
    printf("  baseline read + sha256      %8.2f ms  (%.0f MiB/s)\n", m_hash * 1e3,
           (double)mib / m_hash);
    printf("  agora__trust_load           %8.2f ms  (%.2fx read+sha256)\n", m_load * 1e3,
           m_load / m_hash);
    printf("  agora__trust_allowed        %8.3f ms  (per queued job; catalog unchanged)\n",
           m_allowed * 1e3);
    printf("  agora__home_sync (1 run)    %8.2f ms\n", sync_s * 1e3);
    agora__trust_home_close(h);
    agora__catalog_free(&cat);
    agora__seckey_wipe(&op);
    free(plugin);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
