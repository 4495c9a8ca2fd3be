/*
 * Integration checks of sandboxed ingest (host/ingest + agora-runner MODE_INGEST) against the
 * in-process reader and decoder (host/dicom), which this program links too.
 *
 *   ingest_check corpus DIR   every file of DIR: metadata and decoded frames (both modes)
 *                             through the sandbox equal the in-process results byte for byte;
 *                             files the in-process reader refuses are refused with the same code
 *   ingest_check hostile FILE truncated copies, garbage, a nesting bomb, a deflate bomb: each a
 *                             clean per-file error, the worker survives, the next file works
 *   ingest_check series DIR   every decodable series of an in-process scan of DIR: the
 *                             sandboxed series decoder equals agora__dicom_series_decode
 *   ingest_check kill FILE    a worker killed mid-request (SIGSEGV, SIGSYS) fails that file with
 *                             the reason and is respawned; a request over its timeout is killed
 *
 * Exit 0 pass, 1 fail, 77 skip (with the reason printed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dicom.h"
#include "ingest.h"
#include "pixels.h"
#include "study.h"

#define MAX_DECODE_BYTES  (64u << 20)
#define MAX_DECODE_FRAMES 16u
#define OUT_OFFSET        100u /* deliberately not page-aligned */

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    agora__error e = {0};
    if (agora__read_file(path, (size_t)1 << 30, &buf, len, &e) != 0)
        return NULL;
    return buf;
}

static agora__ingest *open_ingest(uint32_t timeout_ms)
{
    agora__ingest_options o;
    agora__ingest_options_default(&o);
    if (timeout_ms)
        o.timeout_ms = timeout_ms;
    agora__ingest *ing = NULL;
    agora__error e = {0};
    if (agora__ingest_open(&o, &ing, &e) != 0) {
        fprintf(stderr, "FAIL: cannot start the ingest worker: %s\n", e.msg);
        exit(1);
    }
    return ing;
}

/* ---- corpus ------------------------------------------------------------------------------- */

static size_t distinct_tags(const agora__dicom_dataset *ds)
{
    size_t n = 0;
    for (uint32_t i = 0; i < ds->n_elements; i++)
        if (i == 0 || ds->elements[i].tag != ds->elements[i - 1].tag)
            n++;
    return n;
}

static void compare_meta(const char *path, const agora__dicom_file *f, const agora__ingest_meta *m)
{
    const agora__dicom_dataset *ds = &f->dataset;
    char s[65];
    CHECK(strcmp(m->transfer_syntax, f->transfer_syntax) == 0, "%s: transfer syntax", path);
    if (agora__dicom_get_string(ds, AGORA__DICOM_TAG(0x0008, 0x0018), 0, s, sizeof s) == 0)
        CHECK(strcmp(s, m->sop_uid) == 0, "%s: SOP UID differs", path);
    if (agora__dicom_get_string(ds, AGORA__DICOM_TAG(0x0020, 0x000E), 0, s, sizeof s) == 0)
        CHECK(strcmp(s, m->series_uid) == 0, "%s: series UID differs", path);
    /* Routing attributes (issue 12): the in-process value when it is a code string / a finite
     * thickness of 0..10000 mm, else absent. */
    char bp[17];
    int bp_ok = agora__dicom_get_string(ds, AGORA__DICOM_TAG(0x0018, 0x0015), 0, bp, sizeof bp) == 0;
    for (size_t i = 0; bp_ok && bp[i]; i++)
        bp_ok = (bp[i] >= 'A' && bp[i] <= 'Z') || (bp[i] >= '0' && bp[i] <= '9') || bp[i] == '_' ||
                bp[i] == ' ';
    CHECK(strcmp(m->body_part, bp_ok ? bp : "") == 0, "%s: body part differs", path);
    double th;
    int th_ok = agora__dicom_get_double(ds, AGORA__DICOM_TAG(0x0018, 0x0050), 0, &th) == 0 &&
                th >= 0 && th <= 10000;
    CHECK(m->has_slice_thickness == th_ok && (!th_ok || m->slice_thickness == th),
          "%s: slice thickness differs", path);
    int64_t v;
    if (agora__dicom_get_int(ds, AGORA__DICOM_TAG(0x0028, 0x0010), 0, &v) == 0 && v > 0)
        CHECK((int64_t)m->rows == (v > 65535 ? 65535 : v), "%s: rows", path);
    if (agora__dicom_get_int(ds, AGORA__DICOM_TAG(0x0020, 0x0013), 0, &v) == 0)
        CHECK(m->instance_number == v, "%s: instance number", path);
    else
        CHECK(m->instance_number == INT64_MIN, "%s: instance number should be absent", path);
    CHECK(m->warnings == f->warnings, "%s: warnings %#x vs %#x", path, m->warnings, f->warnings);
    /* Every top-level tag is either carried or counted as omitted. */
    CHECK(m->n_elements + m->elements_omitted == distinct_tags(ds),
          "%s: %u carried + %u omitted != %zu tags", path, m->n_elements, m->elements_omitted,
          distinct_tags(ds));
    for (uint32_t i = 0; i < m->n_elements; i++) {
        const agora__ingest_element *x = &m->elements[i];
        const agora__dicom_element *e = agora__dicom_find(ds, x->tag);
        CHECK(e != NULL && e->vr == x->vr && e->value_len == x->length,
              "%s: element %08x differs in VR or length", path, x->tag);
        if (e == NULL || e->value_len != x->length || x->length == 0)
            continue;
        /* Little-endian files and text values: the stored bytes. Big-endian binary values:
         * swapped, so the first value read little-endian equals the reader's value. */
        static const char bin[][3] = {"US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"};
        int is_bin = 0;
        for (size_t k = 0; k < sizeof bin / sizeof bin[0]; k++)
            is_bin |= x->vr == AGORA__DICOM_VR(bin[k][0], bin[k][1]);
        int64_t iv = 0;
        if (!(e->flags & AGORA__DICOM_EL_BIG_ENDIAN) || !is_bin)
            CHECK(memcmp(e->value, x->value, x->length) == 0, "%s: element %08x bytes differ", path,
                  x->tag);
        else if (agora__dicom_el_int(e, 0, &iv) != 0)
            continue; /* FL/FD/AT: covered by the reader's own tests */
        else if (x->vr == AGORA__DICOM_VR('U', 'S') || x->vr == AGORA__DICOM_VR('S', 'S'))
            CHECK((uint16_t)(x->value[0] | x->value[1] << 8) == (uint16_t)iv,
                  "%s: element %08x is not little-endian", path, x->tag);
        else if (x->vr == AGORA__DICOM_VR('U', 'L') || x->vr == AGORA__DICOM_VR('S', 'L'))
            CHECK(((uint32_t)x->value[0] | (uint32_t)x->value[1] << 8 |
                   (uint32_t)x->value[2] << 16 | (uint32_t)x->value[3] << 24) == (uint32_t)iv,
                  "%s: element %08x is not little-endian", path, x->tag);
    }
}

/* Decode up to MAX_DECODE_FRAMES frames in-process and in the sandbox and compare. Returns 1
 * when frames were compared. */
static int compare_decode(agora__ingest *ing, const char *path, const agora__dicom_file *f,
                          int mode)
{
    agora__dicom_pixel_desc d;
    agora__dicom_pixel_format fmt;
    agora__error e = {0};
    if (agora__dicom_pixel_describe(f, &d, &e) != 0 ||
        agora__dicom_pixel_format_for(f, &d, mode, &fmt, &e) != 0)
        return 0;
    uint32_t n = d.frames < MAX_DECODE_FRAMES ? d.frames : MAX_DECODE_FRAMES;
    while (n > 1 && fmt.frame_bytes * n > MAX_DECODE_BYTES)
        n--;
    if (fmt.frame_bytes * n > MAX_DECODE_BYTES)
        return 0;
    size_t len = (size_t)fmt.frame_bytes * n;
    uint8_t *want = malloc(len);
    if (want == NULL)
        return 0;
    int in_rc = 0;
    for (uint32_t i = 0; i < n && in_rc == 0; i++)
        in_rc = agora__dicom_decode_frame(f, &d, i, mode, want + fmt.frame_bytes * i,
                                          (size_t)fmt.frame_bytes, &e);
    int mfd = memfd_create("ingest-out", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, (off_t)(len + OUT_OFFSET + 64)) != 0) {
        fprintf(stderr, "FAIL: memfd: %s\n", strerror(errno));
        exit(1);
    }
    agora__dicom_pixel_format got;
    agora__error se = {0};
    int rc = agora__ingest_decode(ing, path, 0, n, mode, mfd, OUT_OFFSET, len + 64, &got, &se);
    int compared = 0;
    if (in_rc != 0) {
        CHECK(rc == in_rc, "%s mode %d: in-process decode failed (%d: %s), sandbox gave %d (%s)",
              path, mode, in_rc, e.msg, rc, se.msg);
        CHECK(strstr(se.msg, "worker") == NULL, "%s: the worker died: %s", path, se.msg);
    } else {
        CHECK(rc == 0, "%s mode %d: sandbox decode failed: %s", path, mode, se.msg);
        if (rc == 0) {
            CHECK(got.frame_bytes == fmt.frame_bytes && got.pixel_type == fmt.pixel_type &&
                      got.samples_per_pixel == fmt.samples_per_pixel &&
                      got.photometric == fmt.photometric,
                  "%s mode %d: pixel format differs", path, mode);
            uint8_t *map = mmap(NULL, len + OUT_OFFSET, PROT_READ, MAP_SHARED, mfd, 0);
            CHECK(map != MAP_FAILED, "mmap output");
            if (map != MAP_FAILED) {
                CHECK(memcmp(map + OUT_OFFSET, want, len) == 0,
                      "%s mode %d: %u decoded frames differ from the in-process decoder", path,
                      mode, n);
                for (size_t k = 0; k < OUT_OFFSET; k++)
                    if (map[k] != 0) {
                        CHECK(0, "%s: the worker wrote before the output window", path);
                        break;
                    }
                munmap(map, len + OUT_OFFSET);
                compared = 1;
            }
        }
    }
    close(mfd);
    free(want);
    return compared;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_corpus(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        printf("SKIP: %s is missing (pydicom test files not installed)\n", dir);
        return 77;
    }
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 512) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            names[n++] = strdup(p);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    agora__ingest *ing = open_ingest(0);
    size_t meta_ok = 0, refused = 0, decoded = 0;
    for (size_t i = 0; i < n; i++) {
        const char *path = names[i];
        size_t len;
        uint8_t *buf = slurp(path, &len);
        if (buf == NULL || len == 0 || !agora__dicom_sniff(buf, len)) {
            free(buf);
            continue;
        }
        agora__dicom_limits lim;
        agora__dicom_limits_default(&lim);
        lim.flags |= AGORA__DICOM_READ_STOP_AT_PIXELS;
        agora__dicom_file *mf = NULL;
        agora__error e = {0};
        int in_rc = agora__dicom_read(buf, len, &lim, &mf, &e);
        agora__ingest_meta m;
        agora__error se = {0};
        int rc = agora__ingest_metadata(ing, path, &m, &se);
        if (in_rc != 0) {
            CHECK(rc == in_rc, "%s: in-process refused (%d: %s), sandbox gave %d (%s)", path, in_rc,
                  e.msg, rc, se.msg);
            CHECK(strstr(se.msg, path) != NULL, "%s: the error does not name the file", path);
            refused++;
        } else {
            CHECK(rc == 0, "%s: sandbox metadata failed: %s", path, se.msg);
            if (rc == 0) {
                compare_meta(path, mf, &m);
                meta_ok++;
            }
        }
        agora__ingest_meta_free(&m);
        agora__dicom_file_free(mf);
        agora__dicom_file *ff = NULL;
        if (agora__dicom_read(buf, len, NULL, &ff, &e) == 0) {
            decoded += (size_t)compare_decode(ing, path, ff, AGORA__DICOM_DECODE_NORMALIZED);
            decoded += (size_t)compare_decode(ing, path, ff, AGORA__DICOM_DECODE_RAW);
        }
        agora__dicom_file_free(ff);
        free(buf);
    }
    agora__ingest_stats st;
    agora__ingest_get_stats(ing, &st);
    printf("corpus: %zu files' metadata equal, %zu refused by both, %zu decodes equal, "
           "%llu requests, %u worker(s) spawned, %u died\n",
           meta_ok, refused, decoded, (unsigned long long)st.requests, st.spawns, st.worker_deaths);
    CHECK(st.worker_deaths == 0, "a worker died on the corpus");
    CHECK(meta_ok >= 20 && decoded >= 20, "too few files compared (%zu metadata, %zu decodes)",
          meta_ok, decoded);
    agora__ingest_close(ing);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return failures ? 1 : 0;
}

/* ---- series ------------------------------------------------------------------------------- */

static int run_series(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("SKIP: %s is missing (pydicom test files not installed)\n", dir);
        return 77;
    }
    agora__dicom_scan *scan = NULL;
    agora__error e = {0};
    if (agora__dicom_scan_paths(&dir, 1, NULL, &scan, &e) != 0) {
        fprintf(stderr, "FAIL: scan: %s\n", e.msg);
        return 1;
    }
    agora__ingest *ing = open_ingest(0);
    size_t compared = 0, multi = 0;
    for (size_t i = 0; i < scan->n_series; i++) {
        const agora__dicom_series *s = &scan->series[i];
        agora__dicom_pixel_format fmt;
        if (!s->decodable ||
            agora__dicom_series_format(s, AGORA__DICOM_DECODE_NORMALIZED, &fmt, &e) != 0)
            continue;
        if (fmt.frame_bytes * s->n_frames > MAX_DECODE_BYTES)
            continue;
        size_t len = (size_t)fmt.frame_bytes * s->n_frames;
        uint8_t *want = malloc(len);
        if (want == NULL || agora__dicom_series_decode(s, AGORA__DICOM_DECODE_NORMALIZED, want, len,
                                                       NULL, &e) != 0) {
            free(want);
            continue; /* the in-process decoder refuses it: not a comparison */
        }
        int mfd = memfd_create("series", MFD_CLOEXEC);
        CHECK(mfd >= 0 && ftruncate(mfd, (off_t)(len + OUT_OFFSET)) == 0, "memfd");
        agora__dicom_pixel_format got;
        agora__error se = {0};
        int rc = agora__ingest_series_decode(ing, s, AGORA__DICOM_DECODE_NORMALIZED, mfd,
                                             OUT_OFFSET, len, &got, &se);
        CHECK(rc == 0, "series %zu: sandboxed decode failed: %s", i, se.msg);
        if (rc == 0) {
            uint8_t *map = mmap(NULL, len + OUT_OFFSET, PROT_READ, MAP_SHARED, mfd, 0);
            CHECK(map != MAP_FAILED && memcmp(map + OUT_OFFSET, want, len) == 0,
                  "series %zu (%u instances, %u frames): volumes differ", i, s->n_instances,
                  s->n_frames);
            CHECK(got.frame_bytes == fmt.frame_bytes, "series %zu: frame size differs", i);
            if (map != MAP_FAILED)
                munmap(map, len + OUT_OFFSET);
            compared++;
            multi += s->n_instances > 1;
        }
        close(mfd);
        free(want);
    }
    printf("series: %zu volumes equal (%zu of several instances)\n", compared, multi);
    CHECK(compared >= 10 && multi >= 1, "too few series compared (%zu, %zu multi-instance)",
          compared, multi);
    agora__ingest_close(ing);
    agora__dicom_scan_free(scan);
    return failures ? 1 : 0;
}

/* ---- hostile inputs ------------------------------------------------------------------------- */

static char tmpdir[] = "/tmp/agora-ingest-XXXXXX";

static void write_file(const char *name, const uint8_t *data, size_t len, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) != 0) {
        fprintf(stderr, "FAIL: writing %s\n", path);
        exit(1);
    }
}

/* A Part 10 header: preamble, DICM, (0002,0010) transfer syntax. */
static size_t part10_header(uint8_t *p, const char *ts)
{
    memset(p, 0, 128);
    memcpy(p + 128, "DICM", 4);
    size_t o = 132;
    size_t tl = strlen(ts) + (strlen(ts) & 1);
    uint8_t h[8] = {0x02, 0x00, 0x10, 0x00, 'U', 'I', (uint8_t)tl, 0};
    memcpy(p + o, h, 8);
    o += 8;
    memset(p + o, 0, tl);
    memcpy(p + o, ts, strlen(ts));
    return o + tl;
}

static size_t put_undef_sq(uint8_t *p)
{
    /* (0040,A730) SQ, undefined length, then an item of undefined length */
    static const uint8_t sq[] = {0x40, 0x00, 0x30, 0xA7, 'S',  'Q',  0,    0,    0xFF, 0xFF,
                                 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF};
    memcpy(p, sq, sizeof sq);
    return sizeof sq;
}

static void expect_clean_error(agora__ingest *ing, const char *path, const char *good,
                               const char *what)
{
    agora__ingest_meta m;
    agora__error e = {0};
    agora__ingest_stats before, after;
    agora__ingest_get_stats(ing, &before);
    int rc = agora__ingest_metadata(ing, path, &m, &e);
    agora__ingest_meta_free(&m);
    CHECK(rc != 0, "%s: accepted", what);
    CHECK(strstr(e.msg, path) != NULL, "%s: the error does not name the file: %s", what, e.msg);
    CHECK(strchr(e.msg, '\n') == NULL, "%s: the error is not one line", what);
    agora__ingest_get_stats(ing, &after);
    CHECK(after.worker_deaths == before.worker_deaths, "%s: the worker died: %s", what, e.msg);
    printf("  %-28s -> %d: %s\n", what, rc, e.msg);
    agora__error ge = {0};
    rc = agora__ingest_metadata(ing, good, &m, &ge);
    CHECK(rc == 0 && m.rows > 0, "after %s the next file failed: %s", what, ge.msg);
    agora__ingest_meta_free(&m);
}

static int run_hostile(const char *good)
{
    size_t len;
    uint8_t *buf = slurp(good, &len);
    if (buf == NULL) {
        printf("SKIP: %s is missing (pydicom test files not installed)\n", good);
        return 77;
    }
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    agora__ingest *ing = open_ingest(0);
    char path[4200];
    /* Truncations at several points: header, meta, dataset. */
    size_t cuts[] = {1, 64, 131, 140, len / 3, len / 2};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= len)
            continue;
        char name[64], what[64];
        snprintf(name, sizeof name, "truncated-%zu.dcm", cuts[i]);
        write_file(name, buf, cuts[i], path, sizeof path);
        snprintf(what, sizeof what, "truncated at %zu bytes", cuts[i]);
        /* A cut inside the pixel data can still yield metadata: decode must then fail. */
        agora__ingest_meta m;
        agora__error e = {0};
        if (agora__ingest_metadata(ing, path, &m, &e) == 0) {
            agora__ingest_meta_free(&m);
            int mfd = memfd_create("o", MFD_CLOEXEC);
            CHECK(mfd >= 0 && ftruncate(mfd, 64 << 20) == 0, "memfd");
            int rc = agora__ingest_decode(ing, path, 0, 1, AGORA__DICOM_DECODE_NORMALIZED, mfd, 0,
                                          64 << 20, NULL, &e);
            CHECK(rc != 0, "%s: a truncated file decoded", what);
            CHECK(strstr(e.msg, "worker") == NULL, "%s: the worker died: %s", what, e.msg);
            printf("  %-28s -> decode %d: %s\n", what, rc, e.msg);
            close(mfd);
        } else {
            expect_clean_error(ing, path, good, what);
        }
    }
    /* Garbage that looks like nothing. */
    uint8_t garbage[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof garbage; i++) {
        x = x * 1103515245u + 12345u;
        garbage[i] = (uint8_t)(x >> 16);
    }
    write_file("garbage.dcm", garbage, sizeof garbage, path, sizeof path);
    expect_clean_error(ing, path, good, "garbage");
    /* Garbage after a valid Part 10 header. */
    uint8_t hdr[4096 + 256];
    size_t o = part10_header(hdr, AGORA__DICOM_TS_EXPLICIT_LE);
    memcpy(hdr + o, garbage, 4096);
    write_file("garbage-after-header.dcm", hdr, o + 4096, path, sizeof path);
    expect_clean_error(ing, path, good, "garbage after a header");
    /* A nesting bomb: 200 nested sequences, past the reader's depth limit. */
    static uint8_t deep[132 + 64 + 200 * 20];
    o = part10_header(deep, AGORA__DICOM_TS_EXPLICIT_LE);
    for (int i = 0; i < 200; i++)
        o += put_undef_sq(deep + o);
    write_file("nesting-bomb.dcm", deep, o, path, sizeof path);
    expect_clean_error(ing, path, good, "nesting bomb (depth limit)");
    /* A deflate bomb: 64 MiB of zeros deflated to a few KiB, past the inflate ratio limit. */
    size_t raw_len = 64u << 20;
    uint8_t *zeros = calloc(1, raw_len);
    uLongf zcap = compressBound((uLong)raw_len);
    uint8_t *bomb = malloc(zcap + 256);
    if (zeros == NULL || bomb == NULL) {
        fprintf(stderr, "FAIL: out of memory\n");
        return 1;
    }
    o = part10_header(bomb, AGORA__DICOM_TS_DEFLATED_LE);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
    zs.next_in = zeros;
    zs.avail_in = (uInt)raw_len;
    zs.next_out = bomb + o;
    zs.avail_out = (uInt)zcap;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END, "deflate");
    size_t blen = o + zs.total_out;
    deflateEnd(&zs);
    write_file("deflate-bomb.dcm", bomb, blen, path, sizeof path);
    expect_clean_error(ing, path, good, "deflate bomb (ratio limit)");
    free(zeros);
    free(bomb);
    /* An element bomb against a worker limited to 32 MiB: 1.5 million empty private elements
     * (12 MiB of file, which is mapped read-only and not charged) make the reader's element
     * tables outgrow RLIMIT_DATA. The file is refused with ELIMIT; the worker lives on. */
    {
        size_t n_el = 1500000;
        uint8_t *eb = malloc(256 + n_el * 8);
        if (eb == NULL) {
            fprintf(stderr, "FAIL: out of memory\n");
            return 1;
        }
        o = part10_header(eb, AGORA__DICOM_TS_EXPLICIT_LE);
        for (size_t k = 0; k < n_el; k++) {
            uint16_t g = (uint16_t)(0x0009 + 2 * (k / 0xFF00)),
                     el = (uint16_t)(0x0100 + k % 0xFF00);
            uint8_t h[8] = {
                (uint8_t)g, (uint8_t)(g >> 8), (uint8_t)el, (uint8_t)(el >> 8), 'L', 'O', 0, 0};
            memcpy(eb + o, h, 8);
            o += 8;
        }
        write_file("element-bomb.dcm", eb, o, path, sizeof path);
        free(eb);
        agora__ingest_options lo;
        agora__ingest_options_default(&lo);
        lo.memory_bytes = 32u << 20;
        agora__ingest *small = NULL;
        agora__error le = {0};
        CHECK(agora__ingest_open(&lo, &small, &le) == 0, "small worker: %s", le.msg);
        if (small != NULL) {
            expect_clean_error(small, path, good, "element bomb (memory limit)");
            agora__ingest_meta m;
            int lrc = agora__ingest_metadata(small, path, &m, &le);
            CHECK(lrc == AGORA_ELIMIT, "element bomb: rc %d, want ELIMIT: %s", lrc, le.msg);
            agora__ingest_close(small);
        }
    }
    /* Empty file: refused before any worker sees it. */
    write_file("empty.dcm", NULL, 0, path, sizeof path);
    expect_clean_error(ing, path, good, "empty file");
    /* Decode requests the file cannot satisfy: frames past the end, a window too small. */
    int mfd = memfd_create("o", MFD_CLOEXEC);
    CHECK(mfd >= 0 && ftruncate(mfd, 16) == 0, "memfd");
    agora__error e = {0};
    int rc =
        agora__ingest_decode(ing, good, 0, 1, AGORA__DICOM_DECODE_NORMALIZED, mfd, 0, 16, NULL, &e);
    CHECK(rc != 0 && strstr(e.msg, "do not fit") != NULL, "a too-small window: %d %s", rc, e.msg);
    rc = agora__ingest_decode(ing, good, 1000, 1, AGORA__DICOM_DECODE_NORMALIZED, mfd, 0, 16, NULL,
                              &e);
    CHECK(rc != 0 && strstr(e.msg, "requested but the file has") != NULL, "frames past the end: %s",
          e.msg);
    close(mfd);
    agora__ingest_stats st;
    agora__ingest_get_stats(ing, &st);
    CHECK(st.worker_deaths == 0 && st.spawns == 1, "%u deaths, %u spawns", st.worker_deaths,
          st.spawns);
    agora__ingest_close(ing);
    free(buf);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return failures ? 1 : 0;
}

/* ---- dying workers -------------------------------------------------------------------------- */

static int run_kill(const char *good, const char *slow)
{
    if (access(good, R_OK) != 0 || access(slow, R_OK) != 0) {
        printf("SKIP: %s or %s is missing (pydicom test files not installed)\n", good, slow);
        return 77;
    }
    agora__ingest *ing = open_ingest(0);
    static const struct {
        int sig;
        const char *want;
    } cases[] = {{AGORA__INGEST_FAULT_SEGV, "crashed (SIGSEGV)"},
                 {AGORA__INGEST_FAULT_SYSCALL, "broke the sandbox policy (SIGSYS)"},
                 {AGORA__INGEST_FAULT_SIGBUS, "crashed (SIGBUS)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agora__ingest_meta m;
        agora__error e = {0};
        agora__ingest_debug_fault_next(ing, cases[i].sig);
        int rc = agora__ingest_metadata(ing, good, &m, &e);
        agora__ingest_meta_free(&m);
        CHECK(rc == AGORA_EINPUT, "killed with %d: rc %d", cases[i].sig, rc);
        CHECK(strstr(e.msg, cases[i].want) && strstr(e.msg, good) &&
                  strstr(e.msg, "the file was refused"),
              "killed with %d: message '%s'", cases[i].sig, e.msg);
        printf("  killed mid-request -> %s\n", e.msg);
        rc = agora__ingest_metadata(ing, good, &m, &e);
        CHECK(rc == 0 && m.rows > 0, "the respawned worker failed: %s", e.msg);
        agora__ingest_meta_free(&m);
    }
    agora__ingest_stats st;
    agora__ingest_get_stats(ing, &st);
    CHECK(st.spawns == 4 && st.worker_deaths == 3, "%u spawns, %u deaths", st.spawns,
          st.worker_deaths);
    agora__ingest_close(ing);

    /* A request over its timeout: the worker is killed and the file refused; the next request
     * gets a fresh worker. */
    ing = open_ingest(1500);
    int mfd = memfd_create("o", MFD_CLOEXEC);
    CHECK(mfd >= 0 && ftruncate(mfd, 8 << 20) == 0, "memfd");
    agora__ingest_debug_fault_next(ing, AGORA__INGEST_FAULT_SPIN);
    agora__error e = {0};
    uint64_t t0 = agora__now_ns();
    int rc = agora__ingest_decode(ing, slow, 0, 1, AGORA__DICOM_DECODE_NORMALIZED, mfd, 0, 8 << 20,
                                  NULL, &e);
    double waited = (double)(agora__now_ns() - t0) / 1e6;
    CHECK(rc == AGORA_EINPUT && strstr(e.msg, "took longer than 1500 ms"), "timeout: rc %d '%s'",
          rc, e.msg);
    CHECK(waited >= 1400 && waited < 6000, "the timeout fired after %.0f ms", waited);
    printf("  timeout after %.0f ms -> %s\n", waited, e.msg);
    rc = agora__ingest_decode(ing, slow, 0, 1, AGORA__DICOM_DECODE_NORMALIZED, mfd, 0, 8 << 20,
                              NULL, &e);
    CHECK(rc == 0, "after a timeout the next decode failed: %s", e.msg);
    agora__ingest_get_stats(ing, &st);
    CHECK(st.spawns == 2 && st.worker_deaths == 1, "after a timeout: %u spawns, %u deaths",
          st.spawns, st.worker_deaths);
    close(mfd);
    agora__ingest_close(ing);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "corpus") == 0)
        return run_corpus(argv[2]);
    if (argc == 3 && strcmp(argv[1], "series") == 0)
        return run_series(argv[2]);
    if (argc == 3 && strcmp(argv[1], "hostile") == 0)
        return run_hostile(argv[2]);
    if (argc == 4 && strcmp(argv[1], "kill") == 0)
        return run_kill(argv[2], argv[3]);
    fprintf(stderr,
            "usage: ingest_check corpus DIR | series DIR | hostile FILE | kill FILE SLOWFILE\n");
    return 2;
}
