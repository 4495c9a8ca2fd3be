/*
 * Benchmark (not a test): sandboxed ingest vs the in-process reader, same files, same run.
 *
 *   1. metadata of 300 files (a synthetic CT series written to a temp dir): in-process
 *      map + agora__dicom_read(STOP_AT_PIXELS) + the instance fields, vs agora__ingest_metadata
 *   2. decode of that 512x512x300 series (16-bit): agora__dicom_series_decode into a memfd
 *      mapping vs agora__ingest_series_decode into the same memfd (one request per file)
 *   3. worker start (spawn + confinement until Ready)
 *
 * Prints medians of RUNS runs and the ratios. Usage: bench_ingest [RUNS] (default 5).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "study.h"

#define N_FILES 300
#define DIM     512

static char dir[] = "/tmp/agora-bench-ingest-XXXXXX";

static size_t put(uint8_t *p, uint16_t g, uint16_t e, const char *vr, const void *v, size_t n)
{
    size_t o = 0;
    p[o++] = (uint8_t)g;
    p[o++] = (uint8_t)(g >> 8);
    p[o++] = (uint8_t)e;
    p[o++] = (uint8_t)(e >> 8);
    p[o++] = (uint8_t)vr[0];
    p[o++] = (uint8_t)vr[1];
    size_t padded = n + (n & 1);
    if (strcmp(vr, "OW") == 0) {
        p[o++] = 0;
        p[o++] = 0;
        for (int k = 0; k < 4; k++)
            p[o++] = (uint8_t)(padded >> (8 * k));
    } else {
        p[o++] = (uint8_t)padded;
        p[o++] = (uint8_t)(padded >> 8);
    }
    memcpy(p + o, v, n);
    if (n & 1)
        p[o + n] = (strcmp(vr, "UI") == 0) ? 0 : ' ';
    return o + padded;
}

static size_t put_s(uint8_t *p, uint16_t g, uint16_t e, const char *vr, const char *s)
{
    return put(p, g, e, vr, s, strlen(s));
}

static size_t put_us(uint8_t *p, uint16_t g, uint16_t e, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return put(p, g, e, "US", b, 2);
}

static void write_series(void)
{
    size_t px = (size_t)DIM * DIM * 2;
    uint8_t *buf = malloc(px + 4096);
    if (buf == NULL || mkdtemp(dir) == NULL) {
        perror("bench setup");
        exit(1);
    }
    for (int i = 0; i < N_FILES; i++) {
        memset(buf, 0, 128);
        memcpy(buf + 128, "DICM", 4);
        size_t o = 132;
        char s[96];
        o += put_s(buf + o, 0x0002, 0x0010, "UI", AGORA__DICOM_TS_EXPLICIT_LE);
        o += put_s(buf + o, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
        snprintf(s, sizeof s, "1.2.826.0.1.3680043.2.1125.9.%d", i + 1);
        o += put_s(buf + o, 0x0008, 0x0018, "UI", s);
        o += put_s(buf + o, 0x0008, 0x0060, "CS", "CT");
        o += put_s(buf + o, 0x0010, 0x0010, "PN", "Bench^Synthetic");
        o += put_s(buf + o, 0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.2.1125.9.1000");
        o += put_s(buf + o, 0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.2.1125.9.1001");
        snprintf(s, sizeof s, "%d", i + 1);
        o += put_s(buf + o, 0x0020, 0x0013, "IS", s);
        snprintf(s, sizeof s, "0\\0\\%d", i);
        o += put_s(buf + o, 0x0020, 0x0032, "DS", s);
        o += put_s(buf + o, 0x0020, 0x0037, "DS", "1\\0\\0\\0\\1\\0");
        o += put_us(buf + o, 0x0028, 0x0002, 1);
        o += put_s(buf + o, 0x0028, 0x0004, "CS", "MONOCHROME2");
        o += put_us(buf + o, 0x0028, 0x0010, DIM);
        o += put_us(buf + o, 0x0028, 0x0011, DIM);
        o += put_s(buf + o, 0x0028, 0x0030, "DS", "0.5\\0.5");
        o += put_us(buf + o, 0x0028, 0x0100, 16);
        o += put_us(buf + o, 0x0028, 0x0101, 12);
        o += put_us(buf + o, 0x0028, 0x0102, 11);
        o += put_us(buf + o, 0x0028, 0x0103, 0);
        uint8_t *pix = malloc(px);
        if (pix == NULL)
            exit(1);
        for (size_t k = 0; k < px / 2; k++) {
            uint16_t v = (uint16_t)((k * 7 + (size_t)i * 13) & 0x0FFF);
            pix[2 * k] = (uint8_t)v;
            pix[2 * k + 1] = (uint8_t)(v >> 8);
        }
        char path[128];
        snprintf(path, sizeof path, "%s/im%03d.dcm", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        size_t hdr = o + put(buf + o, 0x7FE0, 0x0010, "OW", "", 0) - 4;
        buf[hdr] = (uint8_t)px;
        buf[hdr + 1] = (uint8_t)(px >> 8);
        buf[hdr + 2] = (uint8_t)(px >> 16);
        buf[hdr + 3] = (uint8_t)(px >> 24);
        if (fd < 0 || write(fd, buf, hdr + 4) != (ssize_t)(hdr + 4) ||
            write(fd, pix, px) != (ssize_t)px || close(fd) != 0) {
            perror(path);
            exit(1);
        }
        free(pix);
    }
    free(buf);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double ms_since(uint64_t t0)
{
    return (double)(agora__now_ns() - t0) / 1e6;
}

/* CPU time of this thread (ms): the host side's cost, independent of the machine's load. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void inprocess_meta(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        exit(1);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    agora__dicom_limits lim;
    agora__dicom_limits_default(&lim);
    lim.flags |= AGORA__DICOM_READ_STOP_AT_PIXELS;
    agora__dicom_file *f = NULL;
    agora__error e = {0};
    if (p == MAP_FAILED || agora__dicom_read(p, (size_t)st.st_size, &lim, &f, &e) != 0) {
        fprintf(stderr, "%s: %s\n", path, e.msg);
        exit(1);
    }
    char s[65];
    int64_t v;
    double d[6];
    agora__dicom_get_string(&f->dataset, AGORA__DICOM_TAG(0x0008, 0x0018), 0, s, sizeof s);
    agora__dicom_get_int(&f->dataset, AGORA__DICOM_TAG(0x0028, 0x0010), 0, &v);
    for (int k = 0; k < 6; k++)
        agora__dicom_get_double(&f->dataset, AGORA__DICOM_TAG(0x0020, 0x0037), (size_t)k, &d[k]);
    agora__dicom_file_free(f);
    munmap(p, (size_t)st.st_size);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 50)
        runs = 5;
    write_series();
    char paths[N_FILES][128];
    for (int i = 0; i < N_FILES; i++)
        snprintf(paths[i], sizeof paths[i], "%s/im%03d.dcm", dir, i);
    agora__ingest *ing = NULL;
    agora__error e = {0};
    double start[50];
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = agora__now_ns();
        if (agora__ingest_open(NULL, &ing, &e) != 0) {
            fprintf(stderr, "ingest: %s\n", e.msg);
            return 1;
        }
        start[r] = ms_since(t0);
        if (r + 1 < runs)
            agora__ingest_close(ing);
    }
    double in_meta[50], sb_meta[50], in_dec[50], sb_dec[50];
    double in_meta_cpu[50], sb_meta_cpu[50], in_dec_cpu[50], sb_dec_cpu[50];
    agora__ingest_stats st;
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = agora__now_ns();
        double c0 = cpu_ms();
        for (int i = 0; i < N_FILES; i++)
            inprocess_meta(paths[i]);
        in_meta[r] = ms_since(t0);
        in_meta_cpu[r] = cpu_ms() - c0;
        agora__ingest_get_stats(ing, &st);
        uint64_t w0 = st.worker_cpu_us;
        c0 = cpu_ms();
        t0 = agora__now_ns();
        for (int i = 0; i < N_FILES; i++) {
            agora__ingest_meta m;
            if (agora__ingest_metadata(ing, paths[i], &m, &e) != 0) {
                fprintf(stderr, "%s\n", e.msg);
                return 1;
            }
            agora__ingest_meta_free(&m);
        }
        sb_meta[r] = ms_since(t0);
        agora__ingest_get_stats(ing, &st);
        sb_meta_cpu[r] = cpu_ms() - c0 + (double)(st.worker_cpu_us - w0) / 1e3;
    }
    const char *p0 = dir;
    agora__dicom_scan *scan = NULL;
    if (agora__dicom_scan_paths(&p0, 1, NULL, &scan, &e) != 0 || scan->n_series != 1 ||
        scan->series[0].n_frames != N_FILES) {
        fprintf(stderr, "scan: %s\n", e.msg);
        return 1;
    }
    size_t vol = (size_t)N_FILES * DIM * DIM * 2;
    int mfd = memfd_create("bench-volume", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, (off_t)vol) != 0)
        return 1;
    uint8_t *map = mmap(NULL, vol, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (map == MAP_FAILED)
        return 1;
    uint8_t *ref = malloc(vol);
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = agora__now_ns();
        double c0 = cpu_ms();
        if (agora__dicom_series_decode(&scan->series[0], AGORA__DICOM_DECODE_NORMALIZED, map, vol,
                                       NULL, &e) != 0) {
            fprintf(stderr, "decode: %s\n", e.msg);
            return 1;
        }
        in_dec[r] = ms_since(t0);
        in_dec_cpu[r] = cpu_ms() - c0;
        if (r == 0 && ref)
            memcpy(ref, map, vol);
        memset(map, 0, vol);
        agora__ingest_get_stats(ing, &st);
        uint64_t w0 = st.worker_cpu_us;
        c0 = cpu_ms();
        t0 = agora__now_ns();
        if (agora__ingest_series_decode(ing, &scan->series[0], AGORA__DICOM_DECODE_NORMALIZED, mfd,
                                        0, vol, NULL, &e) != 0) {
            fprintf(stderr, "sandboxed decode: %s\n", e.msg);
            return 1;
        }
        sb_dec[r] = ms_since(t0);
        agora__ingest_get_stats(ing, &st);
        sb_dec_cpu[r] = cpu_ms() - c0 + (double)(st.worker_cpu_us - w0) / 1e3;
        if (ref && memcmp(ref, map, vol) != 0) {
            fprintf(stderr, "sandboxed decode differs from in-process\n");
            return 1;
        }
    }
    agora__ingest_get_stats(ing, &st);
    double a = median(in_meta, runs), b = median(sb_meta, runs);
    double c = median(in_dec, runs), d = median(sb_dec, runs);
    printf("ingest bench, %d runs, medians (wall clock; machine load affects both sides alike)\n",
           runs);
    printf("  worker start (spawn+confine+Ready) %8.1f ms\n", median(start, runs));
    printf("  metadata, %d files: in-process %8.1f ms (%6.1f us/file)  sandboxed %8.1f ms "
           "(%6.1f us/file)  ratio %.2fx\n",
           N_FILES, a, a * 1000 / N_FILES, b, b * 1000 / N_FILES, b / a);
    printf("  decode %dx%dx%d u16 (%zu MiB): in-process %8.1f ms  sandboxed %8.1f ms  ratio "
           "%.2fx\n",
           DIM, DIM, N_FILES, vol >> 20, c, d, d / c);
    double ac = median(in_meta_cpu, runs), bc = median(sb_meta_cpu, runs);
    double cc = median(in_dec_cpu, runs), dc = median(sb_dec_cpu, runs);
    printf("  CPU (host thread + worker's reported CPU): metadata in-process %8.1f ms, sandboxed "
           "%8.1f ms (ratio %.2fx); decode in-process %8.1f ms, sandboxed %8.1f ms (ratio "
           "%.2fx)\n",
           ac, bc, bc / ac, cc, dc, dc / cc);
    printf("  requests %llu, workers spawned %u, deaths %u\n", (unsigned long long)st.requests,
           st.spawns, st.worker_deaths);
    agora__ingest_close(ing);
    agora__dicom_scan_free(scan);
    free(ref);
    munmap(map, vol);
    close(mfd);
    for (int i = 0; i < N_FILES; i++)
        unlink(paths[i]);
    rmdir(dir);
    return 0;
}
