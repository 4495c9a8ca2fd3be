/*
 * MODE_INGEST requests of `agora deid` and `agora dicom dump`: the profile is applied, and the
 * dump rendered, where the hostile file is parsed (rule of two), and the result goes into the
 * host's output memfd.
 *
 * De-identification takes two requests so that the clinic secret never enters the worker:
 * DEID_UIDS applies the profile dry and returns every UID it would replace (and the Patient ID
 * the date offset is keyed on); the host computes the pseudonyms (HMAC with the secret) and
 * sends them with DEID_WRITE, which applies the profile again with those and writes the Part 10
 * bytes. Both requests parse the file afresh: nothing is kept between them.
 *
 * Ownership: ingest_extra holds everything the reply points into (UID copies, the SOP Instance
 * UID, the statistics); it lives until agora__runner_ingest_extra_free after the reply is sent.
 * The output window is unmapped before returning (the host seals the memfd on the reply).
 */
#include "ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "profile.h"
#include "rules.h"
#include "writer.h"

struct ingest_extra {
    agora__dicom_file *f;
    Agora__Ipc__DeidReply deid;
    ProtobufCBinaryData uids[AGORA__INGEST_DEID_MAX_UIDS];
    size_t uid_bytes;
    char patient_id[256];
    char sop[65];
    uint64_t stats[10];
    char why[320];
    /* DEID_WRITE: the request's pseudonyms sorted by UID (pointers into the request). */
    const Agora__Ipc__DeidPseudonym **sorted;
    size_t n_sorted;
};

/* Reused from request to request: a fresh multi-megabyte buffer per file would cost page
 * faults that dominate a 300-file run. The worker is single-threaded. */
static agora__deid_buf out_buf;
static int out_buf_ready;

static int fail(Agora__Ipc__IngestReply *r, ingest_extra *x, int status, int code, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
static int fail(Agora__Ipc__IngestReply *r, ingest_extra *x, int status, int code, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof x->why, fmt, ap);
    va_end(ap);
    r->status = (Agora__Ipc__IngestStatus)status;
    r->code = code;
    r->error = x->why;
    return -1;
}

#define FILE_ERR AGORA__IPC__INGEST_STATUS__INGEST_FILE_ERROR
#define REQ_ERR  AGORA__IPC__INGEST_STATUS__INGEST_REQUEST_ERROR

/* Map [output_offset, output_offset + need) of the host's memfd read-write, after checking
 * that the request's whole window lies inside it. */
static uint8_t *map_window(const Agora__Ipc__IngestRequest *m, int fd, uint64_t need, int populate,
                           void **base_out, size_t *len_out)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 0)
        return NULL;
    uint64_t end = m->output_offset + m->output_bytes;
    if (need == 0 || need > m->output_bytes || end < m->output_offset ||
        end > (uint64_t)st.st_size || end > SIZE_MAX)
        return NULL;
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t page = pg > 0 ? (uint64_t)pg : 4096u;
    uint64_t base = m->output_offset - m->output_offset % page;
    size_t len = (size_t)(m->output_offset + need - base);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0),
                   fd, (off_t)base);
    if (p == MAP_FAILED)
        return NULL;
    *base_out = p;
    *len_out = len;
    return (uint8_t *)p + (m->output_offset - base);
}

static int parse(const uint8_t *file, size_t len, Agora__Ipc__IngestReply *r, ingest_extra *x)
{
    if (!agora__dicom_sniff(file, len)) {
        x->deid.not_dicom = 1;
        return fail(r, x, FILE_ERR, AGORA_EUNSUPPORTED, "not a DICOM file");
    }
    agora__error e = {0};
    if (agora__dicom_read(file, len, NULL, &x->f, &e) != 0)
        return fail(r, x, FILE_ERR, e.code < 0 ? e.code : AGORA_EINPUT, "not readable DICOM (%s)",
                    e.msg);
    return 0;
}

/* ---- DEID_UIDS: the dry run ------------------------------------------------------------------ */

static int collect_uid(void *ctx, const char *uid, char out[65], agora__error *err)
{
    ingest_extra *x = ctx;
    size_t n = strlen(uid);
    for (size_t i = 0; i < x->deid.n_uids; i++)
        if (x->uids[i].len == n && memcmp(x->uids[i].data, uid, n) == 0)
            goto done;
    if (x->deid.n_uids >= AGORA__INGEST_DEID_MAX_UIDS ||
        x->uid_bytes + n > AGORA__INGEST_DEID_MAX_UID_BYTES)
        return agora__error_set(err, AGORA_ELIMIT,
                                "more than %u UIDs (or %u bytes of them) to replace",
                                AGORA__INGEST_DEID_MAX_UIDS, AGORA__INGEST_DEID_MAX_UID_BYTES);
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    memcpy(copy, uid, n);
    x->uids[x->deid.n_uids].data = copy;
    x->uids[x->deid.n_uids].len = n;
    x->deid.n_uids++;
    x->uid_bytes += n;
done:
    memcpy(out, "2.25.1", 7); /* a placeholder: the dry run's output is thrown away */
    return 0;
}

static void profile_from(const Agora__Ipc__DeidRequest *d, agora__deid_profile *p)
{
    memset(p, 0, sizeof *p);
    p->options = d->options;
    p->flags = d->flags;
    p->write_flags = d->write_flags;
    p->days_given = 1;
    p->days = d->date_offset_days;
}

static int apply(ingest_extra *x, const agora__deid_profile *p, size_t file_len,
                 agora__deid_stats *st, Agora__Ipc__IngestReply *r)
{
    if (!out_buf_ready) {
        agora__deid_buf_init(&out_buf, 0);
        out_buf_ready = 1;
    }
    /* The same cap as the in-process writer had: 6 x the input plus 1 MiB (see cmd_deid.c). */
    agora__deid_buf_reset(&out_buf, 6 * file_len + (1u << 20));
    out_buf.refs_allowed = 1; /* the input mapping outlives the copy into the memfd */
    agora__error e = {0};
    int rc = agora__deid_apply(x->f, p, &out_buf, st, x->sop, &e);
    if (rc == 0)
        return 0;
    x->deid.refused = rc == AGORA_EINPUT || rc == AGORA_EUNSUPPORTED;
    return fail(r, x, FILE_ERR, rc, "%s", e.msg);
}

static int deid_uids(const Agora__Ipc__IngestRequest *m, const uint8_t *file, size_t len,
                     Agora__Ipc__IngestReply *r, ingest_extra *x)
{
    if (parse(file, len, r, x) != 0)
        return -1;
    agora__deid_profile p;
    profile_from(m->deid, &p);
    p.pseudonym = collect_uid;
    p.pseudonym_ctx = x;
    agora__deid_stats st = {0};
    if (apply(x, &p, len, &st, r) != 0)
        return -1;
    if (m->deid->options & (1u << AGORA__PS315_RTN_LONG_MODIF_DATES)) {
        agora__deid_patient_id(x->f, x->patient_id);
        x->deid.patient_id.data = (uint8_t *)x->patient_id;
        x->deid.patient_id.len = strlen(x->patient_id);
    }
    return 0;
}

/* ---- DEID_WRITE ------------------------------------------------------------------------------ */

static int cmp_bytes(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int cmp_pseudonym(const void *a, const void *b)
{
    const Agora__Ipc__DeidPseudonym *x = *(const Agora__Ipc__DeidPseudonym *const *)a;
    const Agora__Ipc__DeidPseudonym *y = *(const Agora__Ipc__DeidPseudonym *const *)b;
    return cmp_bytes(&x->uid, &y->uid);
}

static int lookup_uid(void *ctx, const char *uid, char out[65], agora__error *err)
{
    const ingest_extra *x = ctx;
    ProtobufCBinaryData key = {strlen(uid), (uint8_t *)(uintptr_t)uid};
    size_t lo = 0, hi = x->n_sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_bytes(&x->sorted[mid]->uid, &key);
        if (c == 0) {
            const char *ps = x->sorted[mid]->pseudonym;
            size_t n = ps ? strnlen(ps, 65) : 65;
            if (n == 0 || n > 64)
                break;
            memcpy(out, ps, n + 1);
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return agora__error_set(err, AGORA_EINPUT,
                            "a UID has no pseudonym in the request (did the file change between "
                            "the two requests?)");
}

static int deid_write(const Agora__Ipc__IngestRequest *m, const uint8_t *file, size_t len,
                      int out_fd, Agora__Ipc__IngestReply *r, ingest_extra *x)
{
    const Agora__Ipc__DeidRequest *d = m->deid;
    if (d->n_pseudonyms > AGORA__INGEST_DEID_MAX_UIDS)
        return fail(r, x, REQ_ERR, AGORA_EINVAL, "%zu pseudonyms (at most %u)", d->n_pseudonyms,
                    AGORA__INGEST_DEID_MAX_UIDS);
    if (d->n_pseudonyms > 0) {
        x->sorted = malloc(d->n_pseudonyms * sizeof *x->sorted);
        if (x->sorted == NULL)
            return fail(r, x, FILE_ERR, AGORA_ENOMEM, "out of memory");
        for (size_t i = 0; i < d->n_pseudonyms; i++)
            x->sorted[i] = d->pseudonyms[i];
        qsort(x->sorted, d->n_pseudonyms, sizeof *x->sorted, cmp_pseudonym);
        x->n_sorted = d->n_pseudonyms;
    }
    if (parse(file, len, r, x) != 0)
        return -1;
    agora__deid_profile p;
    profile_from(d, &p);
    p.pseudonym = lookup_uid;
    p.pseudonym_ctx = x;
    agora__deid_stats st = {0};
    if (apply(x, &p, len, &st, r) != 0)
        return -1;
    size_t need = agora__deid_buf_size(&out_buf);
    if (need > m->output_bytes)
        return fail(r, x, FILE_ERR, AGORA_ELIMIT,
                    "the de-identified file (%zu bytes) does not fit the %llu-byte output", need,
                    (unsigned long long)m->output_bytes);
    void *base = NULL;
    size_t map_len = 0;
    uint8_t *o = map_window(m, out_fd, need, 1, &base, &map_len);
    if (o == NULL)
        return fail(r, x, REQ_ERR, AGORA_EINVAL,
                    "the output window does not lie inside the output memfd, or mapping it "
                    "failed");
    /* The encoder's data interleaved with the referenced input bytes (outfile.c's order). */
    size_t at = 0, w = 0;
    for (size_t i = 0; i < out_buf.n_refs; i++) {
        memcpy(o + w, out_buf.data + at, out_buf.refs[i].at - at);
        w += out_buf.refs[i].at - at;
        at = out_buf.refs[i].at;
        memcpy(o + w, out_buf.refs[i].p, out_buf.refs[i].n);
        w += out_buf.refs[i].n;
    }
    memcpy(o + w, out_buf.data + at, out_buf.len - at);
    w += out_buf.len - at;
    munmap(base, map_len);
    r->output_used = w;
    x->deid.sop_instance_uid = x->sop;
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
    memcpy(x->stats, s, sizeof s);
    x->deid.stats = x->stats;
    x->deid.n_stats = 10;
    return 0;
}

/* ---- DUMP ------------------------------------------------------------------------------------ */

static int dump(const Agora__Ipc__IngestRequest *m, const uint8_t *file, size_t len, int out_fd,
                Agora__Ipc__IngestReply *r, ingest_extra *x)
{
    agora__error e = {0};
    if (agora__dicom_read(file, len, NULL, &x->f, &e) != 0)
        return fail(r, x, FILE_ERR, e.code < 0 ? e.code : AGORA_EINPUT, "%s", e.msg);
    void *base = NULL;
    size_t map_len = 0;
    uint8_t *o = map_window(m, out_fd, m->output_bytes, 0, &base, &map_len);
    if (o == NULL)
        return fail(r, x, REQ_ERR, AGORA_EINVAL,
                    "the output window does not lie inside the output memfd, or mapping it "
                    "failed");
    size_t cap = (size_t)m->output_bytes, used = 0;
    int rc = 0;
    if (m->dump_json) {
        json_t *j = agora__dicom_dump_json(x->f);
        size_t n = j ? json_dumpb(j, (char *)o, cap, JSON_INDENT(1) | JSON_ENSURE_ASCII) : 0;
        json_decref(j);
        if (n == 0)
            rc = fail(r, x, FILE_ERR, AGORA_ENOMEM, "cannot render JSON (out of memory)");
        else if (n > cap)
            rc = fail(r, x, FILE_ERR, AGORA_ELIMIT, "the dump exceeds %zu bytes", cap);
        used = n;
    } else {
        /* fmemopen writes into the window itself: no copy, no system call. */
        FILE *fp = fmemopen(o, cap, "w");
        if (fp == NULL)
            return fail(r, x, FILE_ERR, AGORA_ENOMEM, "cannot render text (out of memory)");
        setvbuf(fp, NULL, _IONBF, 0);
        agora__dicom_dump_text(x->f, fp);
        long pos = ftell(fp);
        int bad = ferror(fp);
        fclose(fp);
        if (bad || pos < 0 || (size_t)pos >= cap - 1)
            rc = fail(r, x, FILE_ERR, AGORA_ELIMIT, "the dump exceeds %zu bytes", cap - 1);
        used = pos > 0 ? (size_t)pos : 0;
    }
    munmap(base, map_len);
    if (rc == 0)
        r->output_used = used;
    return rc;
}

int agora__runner_ingest_extra(const Agora__Ipc__IngestRequest *m, const uint8_t *file, size_t len,
                               int out_fd, Agora__Ipc__IngestReply *r, ingest_extra **state)
{
    ingest_extra *x = calloc(1, sizeof *x);
    *state = x;
    if (x == NULL) {
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_JOB, AGORA_ENOMEM,
                           "out of memory for an ingest request");
        return -1;
    }
    agora__ipc__deid_reply__init(&x->deid);
    x->deid.uids = x->uids; /* n_uids counts what is filled */
    int rc;
    if (m->op == AGORA__IPC__INGEST_OP__INGEST_DUMP) {
        rc = dump(m, file, len, out_fd, r, x);
    } else if (m->deid == NULL) {
        rc = fail(r, x, REQ_ERR, AGORA_EINVAL, "a de-identification request without its profile");
    } else {
        rc = m->op == AGORA__IPC__INGEST_OP__INGEST_DEID_UIDS
                 ? deid_uids(m, file, len, r, x)
                 : deid_write(m, file, len, out_fd, r, x);
        if (r->status != REQ_ERR)
            r->deid = &x->deid;
    }
    return rc;
}

void agora__runner_ingest_extra_free(ingest_extra *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->deid.n_uids; i++)
        free(x->uids[i].data);
    free(x->sorted);
    agora__dicom_file_free(x->f);
    free(x);
}
