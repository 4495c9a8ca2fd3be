/* Benchmark (not a test): decoding uncompressed frames vs memcpy of the same bytes.
 * Builds files in memory (64 frames of 512 x 512), decodes every frame into one caller buffer,
 * and prints medians of 9 runs with memcpy bandwidth measured in the same run as the baseline.
 * Target: >= 50% of memcpy bandwidth. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom.h"
#include "pixels.h"

#define ROWS   512
#define COLS   512
#define FRAMES 64
#define RUNS   9

typedef struct buf {
    uint8_t *b;
    size_t n, cap;
    int big;
} buf;

static void put(buf *t, const void *p, size_t n)
{
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->b = realloc(t->b, t->cap);
        if (!t->b)
            abort();
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void u16(buf *t, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(t->big ? v >> 8 : v), (uint8_t)(t->big ? v : v >> 8)};
    put(t, b, 2);
}

static void u32(buf *t, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        uint8_t c = (uint8_t)(v >> (8 * (t->big ? 3 - i : i)));
        put(t, &c, 1);
    }
}

static void el(buf *t, uint16_t g, uint16_t e, const char *vr, const void *v, uint16_t len)
{
    u16(t, g);
    u16(t, e);
    put(t, vr, 2);
    u16(t, len);
    put(t, v, len);
}

static void us(buf *t, uint16_t g, uint16_t e, uint16_t v)
{
    u16(t, g);
    u16(t, e);
    put(t, "US", 2);
    u16(t, 2);
    u16(t, v);
}

static buf make(int big, uint16_t spp, uint16_t ba, uint16_t bs, uint16_t pr, uint16_t pc,
                const char *photo)
{
    buf t = {0};
    uint8_t pre[128] = {0};
    put(&t, pre, 128);
    put(&t, "DICM", 4);
    const char *ts = big ? "1.2.840.10008.1.2.2" : "1.2.840.10008.1.2.1";
    char tsb[22] = {0};
    size_t tl = strlen(ts);
    memcpy(tsb, ts, tl);
    el(&t, 0x0002, 0x0010, "UI", tsb, (uint16_t)(tl + (tl & 1)));
    t.big = big;
    us(&t, 0x0028, 0x0002, spp);
    char ph[16] = {0};
    size_t pl = strlen(photo);
    memcpy(ph, photo, pl);
    el(&t, 0x0028, 0x0004, "CS", ph, (uint16_t)(pl + (pl & 1)));
    if (spp > 1)
        us(&t, 0x0028, 0x0006, pc);
    el(&t, 0x0028, 0x0008, "IS", "64", 2);
    us(&t, 0x0028, 0x0010, ROWS);
    us(&t, 0x0028, 0x0011, COLS);
    us(&t, 0x0028, 0x0100, ba);
    us(&t, 0x0028, 0x0101, bs);
    us(&t, 0x0028, 0x0102, (uint16_t)(bs - 1));
    us(&t, 0x0028, 0x0103, pr);
    uint32_t len = (uint32_t)ROWS * COLS * spp * (ba / 8) * FRAMES;
    u16(&t, 0x7FE0);
    u16(&t, 0x0010);
    put(&t, ba > 8 ? "OW" : "OB", 2);
    u16(&t, 0);
    u32(&t, len);
    size_t at = t.n;
    uint8_t *zero = calloc(1, len);
    put(&t, zero, len);
    free(zero);
    for (uint32_t i = 0; i < len; i++)
        t.b[at + i] = (uint8_t)(i * 2654435761u >> 13);
    return t;
}

/* Thread CPU time: robust against other processes on a loaded host. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

static double median_ms(uint64_t *ns)
{
    qsort(ns, RUNS, sizeof *ns, cmp);
    return (double)ns[RUNS / 2] / 1e6;
}

static void bench(const char *name, buf t)
{
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    agora__dicom_pixel_desc d;
    agora__dicom_pixel_format fmt;
    if (agora__dicom_read(t.b, t.n, NULL, &f, &err) || agora__dicom_pixel_describe(f, &d, &err) ||
        agora__dicom_pixel_format_for(f, &d, AGORA__DICOM_DECODE_NORMALIZED, &fmt, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        exit(1);
    }
    size_t total = (size_t)fmt.frame_bytes * d.frames;
    size_t src_bytes = (size_t)d.native_frame_bytes * d.frames;
    uint8_t *out = malloc(total);
    memset(out, 1, total); /* fault the pages in before timing */
    uint64_t dec[RUNS], cpy[RUNS];
    for (int r = 0; r < RUNS; r++) {
        uint64_t t0 = cpu_ns();
        memcpy(out, d.pixel_data->value, src_bytes);
        uint64_t t1 = cpu_ns();
        for (uint32_t i = 0; i < d.frames; i++)
            if (agora__dicom_decode_frame(f, &d, i, AGORA__DICOM_DECODE_NORMALIZED,
                                          out + fmt.frame_bytes * i, (size_t)fmt.frame_bytes,
                                          &err)) {
                fprintf(stderr, "%s: %s\n", name, err.msg);
                exit(1);
            }
        uint64_t t2 = cpu_ns();
        cpy[r] = t1 - t0;
        dec[r] = t2 - t1;
    }
    double mc = median_ms(cpy), md = median_ms(dec);
    double mb = (double)src_bytes / (1 << 20);
    printf("%-34s %7.1f MiB  memcpy %7.2f ms (%6.0f MiB/s)  decode %7.2f ms (%6.0f MiB/s)  "
           "ratio %5.1f%%\n",
           name, mb, mc, mb / (mc / 1e3), md, mb / (md / 1e3), 100.0 * mc / md);
    free(out);
    agora__dicom_file_free(f);
    free(t.b);
}

int main(void)
{
    printf("native decode vs memcpy of the same bytes, %d frames of %dx%d, median of %d runs "
           "(thread CPU time)\n",
           FRAMES, ROWS, COLS, RUNS);
    bench("MONOCHROME2 u16 (bits stored 16)", make(0, 1, 16, 16, 0, 0, "MONOCHROME2"));
    bench("MONOCHROME2 i16 (bits stored 12)", make(0, 1, 16, 12, 1, 0, "MONOCHROME2"));
    bench("MONOCHROME2 u16 big-endian", make(1, 1, 16, 16, 0, 0, "MONOCHROME2"));
    bench("MONOCHROME2 u8", make(0, 1, 8, 8, 0, 0, "MONOCHROME2"));
    bench("RGB u8 interleaved", make(0, 3, 8, 8, 0, 0, "RGB"));
    bench("RGB u8 planar -> interleaved", make(0, 3, 8, 8, 0, 1, "RGB"));
    bench("YBR_FULL u8 -> RGB", make(0, 3, 8, 8, 0, 0, "YBR_FULL"));
    return 0;
}
