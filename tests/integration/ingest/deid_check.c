/*
 * The sandboxed `agora deid` and `agora dicom dump` (host/ingest deid.c + agora-runner
 * DEID_UIDS / DEID_WRITE / DUMP) against the in-process profile and renderer, which this
 * program links too:
 *
 *   deid_check dump DIR   every file of DIR: the worker's text and JSON dumps are byte for byte
 *                         the in-process renderer's; files the reader refuses are refused
 *   deid_check deid DIR   every file of DIR under three option sets: the worker's de-identified
 *                         Part 10 bytes, SOP Instance UID and counters equal agora__deid_apply's
 *                         with the same secret; refusals agree (refused vs not DICOM vs failed)
 *
 * Exit 0 pass, 1 fail, 77 skip (with the reason printed).
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deid.h"
#include "dicom.h"
#include "dump.h"
#include "ingest.h"
#include "profile.h"
#include "rules.h"
#include "writer.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL: ");                                                                      \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return b;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_dir(const char *dir, char **names, size_t max)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
            names[n++] = strdup(p);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    return n;
}

static agora__ingest *open_ingest(void)
{
    agora__ingest *ing = NULL;
    agora__error e = {0};
    if (agora__ingest_open(NULL, &ing, &e) != 0) {
        printf("FAIL: cannot start the ingest worker: %s\n", e.msg);
        exit(1);
    }
    return ing;
}

/* ---- dump ------------------------------------------------------------------------------------ */

static int run_dump(const char *dir)
{
    char *names[512];
    size_t n = list_dir(dir, names, 512);
    if (n == 0) {
        printf("SKIP: %s is missing or empty (pydicom test files not installed)\n", dir);
        return 77;
    }
    agora__ingest *ing = open_ingest();
    size_t same = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = slurp(names[i], &len);
        agora__dicom_file *f = NULL;
        agora__error e = {0};
        int in_rc = buf ? agora__dicom_read(buf, len, NULL, &f, &e) : -1;
        for (int json = 0; json <= 1; json++) {
            char *got = NULL;
            size_t got_len = 0;
            agora__error se = {0};
            int rc = agora__ingest_dump(ing, names[i], json, 256u << 20, &got, &got_len, &se);
            if (in_rc != 0) {
                CHECK(rc != 0, "%s: in-process refused (%s), the worker dumped it", names[i],
                      e.msg);
                refused += rc != 0 && json;
                free(got);
                continue;
            }
            char *want = NULL;
            size_t want_len = 0;
            if (json) {
                json_t *j = agora__dicom_dump_json(f);
                want = j ? json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII) : NULL;
                want_len = want ? strlen(want) : 0;
                json_decref(j);
            } else {
                FILE *m = open_memstream(&want, &want_len);
                agora__dicom_dump_text(f, m);
                fclose(m);
            }
            CHECK(rc == 0, "%s: the worker's %s dump failed: %s", names[i], json ? "JSON" : "text",
                  se.msg);
            if (rc == 0) {
                int eq = want_len == got_len && memcmp(want, got, got_len) == 0;
                CHECK(eq, "%s: %s dump differs (%zu vs %zu bytes)", names[i],
                      json ? "JSON" : "text", got_len, want_len);
                same += eq;
            }
            free(want);
            free(got);
        }
        agora__dicom_file_free(f);
        free(buf);
    }
    agora__ingest_stats st;
    agora__ingest_get_stats(ing, &st);
    printf("dump: %zu dumps identical, %zu files refused by both, %u worker deaths\n", same,
           refused, st.worker_deaths);
    CHECK(same >= 40, "too few dumps compared (%zu)", same);
    CHECK(st.worker_deaths == 0, "a worker died on the corpus");
    agora__ingest_close(ing);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return failures ? 1 : 0;
}

/* ---- deid ------------------------------------------------------------------------------------ */

static const uint8_t secret[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* What the sandbox produced for one file: 0 written (out/out_len/sop/stats), else the kind. */
static int sandboxed(agora__ingest *ing, const char *path, const agora__deid_profile *prof,
                     uint8_t **out, size_t *out_len, char sop[65], uint64_t stats[10],
                     char *why_msg, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    agora__ingest_deid_profile ip = {prof->options, prof->flags, prof->write_flags};
    agora__ingest_deid_uids u;
    agora__error e = {0};
    int why = 0;
    if (agora__ingest_deid_uids_of(ing, path, fd, (uint64_t)st.st_size, &ip, &u, &why, &e) != 0) {
        close(fd);
        snprintf(why_msg, why_size, "%s", e.msg);
        return 10 + why;
    }
    char(*ps)[65] = calloc(u.n + 1, 65);
    const char **pp = calloc(u.n + 1, sizeof *pp);
    for (size_t i = 0; i < u.n; i++) {
        if (agora__deid_uid(secret, u.uids[i], ps[i], &e) != 0)
            printf("FAIL: %s: hashing a UID the worker returned: %s\n", path, e.msg);
        pp[i] = ps[i];
    }
    int days = (prof->options & (1u << AGORA__PS315_RTN_LONG_MODIF_DATES))
                   ? agora__deid_date_offset(secret, u.patient_id, strlen(u.patient_id))
                   : 0;
    uint64_t cap = 6 * (uint64_t)st.st_size + (1u << 20);
    int mfd = memfd_create("deid-check", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || ftruncate(mfd, (off_t)cap) != 0)
        return -1;
    agora__ingest_deid_written w;
    int rc = agora__ingest_deid_write(ing, path, fd, (uint64_t)st.st_size, &ip,
                                      (const char *const *)u.uids, pp, u.n, days, mfd, cap, &w,
                                      &why, &e);
    close(fd);
    agora__ingest_deid_uids_free(&u);
    free(ps);
    free(pp);
    if (rc != 0) {
        close(mfd);
        snprintf(why_msg, why_size, "%s", e.msg);
        return 10 + why;
    }
    *out = malloc((size_t)w.used);
    *out_len = (size_t)w.used;
    if (pread(mfd, *out, (size_t)w.used, 0) != (ssize_t)w.used)
        printf("FAIL: %s: reading the output memfd back\n", path);
    close(mfd);
    memcpy(sop, w.sop, 65);
    memcpy(stats, w.stats, sizeof w.stats);
    return 0;
}

static int run_deid(const char *dir)
{
    char *names[512];
    size_t n = list_dir(dir, names, 512);
    if (n == 0) {
        printf("SKIP: %s is missing or empty (pydicom test files not installed)\n", dir);
        return 77;
    }
    agora__ingest *ing = open_ingest();
    const uint32_t option_sets[3] = {
        0, (1u << AGORA__PS315_RTN_LONG_MODIF_DATES) | (1u << AGORA__PS315_RTN_SAFE_PRIV),
        1u << AGORA__PS315_RTN_UIDS};
    size_t same = 0, refused = 0, skipped = 0;
    for (int o = 0; o < 3; o++) {
        agora__deid_profile prof = {secret, option_sets[o],
                                    o == 2 ? AGORA__DEID_ALLOW_BURNED_IN : 0,
                                    o == 1 ? AGORA__DEID_W_DEFINED_LENGTHS : 0};
        for (size_t i = 0; i < n; i++) {
            size_t len;
            uint8_t *buf = slurp(names[i], &len);
            int want_kind; /* 0 written, 11 not DICOM, 12 refused, 10 failed */
            agora__deid_buf out;
            agora__deid_buf_init(&out, 0);
            agora__deid_buf_reset(&out, 6 * len + (1u << 20));
            agora__deid_stats st = {0};
            char sop[65] = "";
            agora__dicom_file *f = NULL;
            agora__error e = {0};
            if (buf == NULL || !agora__dicom_sniff(buf, len)) {
                want_kind = 11;
            } else if (agora__dicom_read(buf, len, NULL, &f, &e) != 0) {
                want_kind = 10;
            } else {
                int rc = agora__deid_apply(f, &prof, &out, &st, sop, &e);
                want_kind = rc == 0                                            ? 0
                            : (rc == AGORA_EINPUT || rc == AGORA_EUNSUPPORTED) ? 12
                                                                               : 10;
            }
            uint8_t *got = NULL;
            size_t got_len = 0;
            char got_sop[65] = "";
            uint64_t got_stats[10] = {0};
            char msg[400] = "";
            int kind = sandboxed(ing, names[i], &prof, &got, &got_len, got_sop, got_stats, msg,
                                 sizeof msg);
            CHECK(kind == want_kind, "%s (options %#x): in-process gave %d, the sandbox %d (%s)",
                  names[i], option_sets[o], want_kind, kind, msg);
            if (kind == 0 && want_kind == 0) {
                int eq = got_len == out.len && memcmp(got, out.data, out.len) == 0;
                CHECK(eq, "%s (options %#x): the de-identified bytes differ (%zu vs %zu)", names[i],
                      option_sets[o], got_len, out.len);
                CHECK(strcmp(sop, got_sop) == 0, "%s: the SOP Instance UID differs", names[i]);
                const uint64_t s[10] = {st.kept,
                                        st.removed,
                                        st.emptied,
                                        st.dummied,
                                        st.uids,
                                        st.dates_shifted,
                                        st.private_removed,
                                        st.private_kept,
                                        st.overlay_curve_removed,
                                        st.added};
                CHECK(memcmp(s, got_stats, sizeof s) == 0, "%s: the counters differ", names[i]);
                same += eq;
            }
            refused += kind == 12 && want_kind == 12;
            skipped += kind == 11 && want_kind == 11;
            free(got);
            agora__deid_buf_free(&out);
            agora__dicom_file_free(f);
            free(buf);
        }
    }
    agora__ingest_stats s;
    agora__ingest_get_stats(ing, &s);
    printf("deid: %zu outputs identical, %zu refused by both, %zu not DICOM for both, %u worker "
           "deaths\n",
           same, refused, skipped, s.worker_deaths);
    CHECK(same >= 60, "too few outputs compared (%zu)", same);
    CHECK(s.worker_deaths == 0, "a worker died on the corpus");
    agora__ingest_close(ing);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "dump") == 0)
        return run_dump(argv[2]);
    if (argc == 3 && strcmp(argv[1], "deid") == 0)
        return run_deid(argv[2]);
    fprintf(stderr, "usage: deid_check dump DIR | deid DIR\n");
    return 2;
}
