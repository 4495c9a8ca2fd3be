/*
 * The host side of DEID_UIDS, DEID_WRITE and DUMP (see ingest.h). Everything a worker replies
 * is checked here before it is used: counts and sizes against the caps, UIDs for syntax, the
 * written SOP Instance UID against the pseudonyms the host issued, dump bytes for the character
 * classes the renderer produces. None of these checks interprets DICOM: the host handles
 * protobuf fields and byte classes only.
 */
#include "ingest_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void agora__ingest_deid_uids_free(agora__ingest_deid_uids *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->uids[i]);
    free(u->uids);
    memset(u, 0, sizeof *u);
}

static int hostile(agora__error *err, const char *what)
{
    agora__error_set(err, AGORA_EINTERNAL, "%s", what);
    return AGORA__INGEST_REPLY_HOSTILE;
}

static int check_uids(const Agora__Ipc__DeidReply *d, agora__ingest_deid_check *x,
                      agora__error *err)
{
    if (d->n_uids > AGORA__INGEST_DEID_MAX_UIDS)
        return hostile(err, "a dry-run reply with too many UIDs");
    if (d->patient_id.len > 255)
        return hostile(err, "a dry-run reply with a Patient ID over 255 bytes");
    agora__ingest_deid_uids *u = x->uids;
    memset(u, 0, sizeof *u);
    if (d->patient_id.len > 0) {
        if (memchr(d->patient_id.data, '\0', d->patient_id.len) != NULL)
            return hostile(err, "a dry-run reply with a NUL in the Patient ID");
        memcpy(u->patient_id, d->patient_id.data, d->patient_id.len);
    }
    if (d->n_uids == 0)
        return AGORA__INGEST_REPLY_OK;
    u->uids = calloc(d->n_uids, sizeof *u->uids);
    if (u->uids == NULL)
        return hostile(err, "out of memory for the UIDs of a dry run");
    size_t total = 0;
    for (size_t i = 0; i < d->n_uids; i++) {
        const ProtobufCBinaryData *b = &d->uids[i];
        total += b->len;
        if (b->len == 0 || b->len > AGORA__INGEST_DEID_UID_MAX ||
            total > AGORA__INGEST_DEID_MAX_UID_BYTES || memchr(b->data, '\0', b->len) ||
            memchr(b->data, '\\', b->len))
            return hostile(err, "a dry-run reply with an empty, overlong or malformed UID");
        u->uids[i] = malloc(b->len + 1);
        if (u->uids[i] == NULL)
            return hostile(err, "out of memory for the UIDs of a dry run");
        memcpy(u->uids[i], b->data, b->len);
        u->uids[i][b->len] = '\0';
        u->n = i + 1;
    }
    return AGORA__INGEST_REPLY_OK;
}

/* The written SOP Instance UID names the output file: it must be one of the pseudonyms the host
 * issued (or, under rtnUIDsOpt, when none were issued, at least a valid UID: digits and dots). */
static int check_written(const Agora__Ipc__IngestReply *r, const Agora__Ipc__DeidReply *d,
                         agora__ingest_deid_check *x, agora__error *err)
{
    agora__ingest_deid_written *w = x->written;
    memset(w, 0, sizeof *w);
    const char *sop = d->sop_instance_uid;
    size_t n = sop ? strnlen(sop, 65) : 0;
    if (n == 0 || n > 64)
        return hostile(err, "a write reply without a valid SOP Instance UID");
    for (size_t i = 0; i < n; i++)
        if (!((sop[i] >= '0' && sop[i] <= '9') || sop[i] == '.'))
            return hostile(err, "a write reply whose SOP Instance UID is not digits and dots");
    if (x->n_issued > 0) {
        size_t i = 0;
        while (i < x->n_issued && strcmp(x->issued[i], sop) != 0)
            i++;
        if (i == x->n_issued)
            return hostile(err, "a write reply naming a SOP Instance UID the host did not issue");
    }
    memcpy(w->sop, sop, n);
    w->sop[n] = '\0';
    if (r->output_used < 132 || r->output_used > x->out_cap)
        return hostile(err, "a write reply whose output size is out of range");
    w->used = r->output_used;
    if (d->n_stats != 10)
        return hostile(err, "a write reply without its 10 counters");
    for (size_t i = 0; i < 10; i++)
        w->stats[i] = d->stats[i] > (1ull << 40) ? (1ull << 40) : d->stats[i];
    return AGORA__INGEST_REPLY_OK;
}

int agora__ingest_check_deid(const Agora__Ipc__IngestReply *r, int verdict, void *ctx,
                             agora__error *err)
{
    agora__ingest_deid_check *x = ctx;
    const Agora__Ipc__DeidReply *d = r->deid;
    if (verdict == AGORA__INGEST_REPLY_FILE) {
        if (d != NULL && d->not_dicom)
            x->why = AGORA__INGEST_DEID_NOT_DICOM;
        else if (d != NULL && d->refused)
            x->why = AGORA__INGEST_DEID_REFUSED;
        return verdict;
    }
    if (d == NULL)
        return hostile(err, "a de-identification reply without its part");
    return x->uids != NULL ? check_uids(d, x, err) : check_written(r, d, x, err);
}

int agora__ingest_deid_uids_of(agora__ingest *ing, const char *path, int fd, uint64_t size,
                               const agora__ingest_deid_profile *p, agora__ingest_deid_uids *out,
                               int *why, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (why)
        *why = AGORA__INGEST_DEID_FAILED;
    Agora__Ipc__DeidRequest d = AGORA__IPC__DEID_REQUEST__INIT;
    d.options = p->options;
    d.flags = p->flags;
    d.write_flags = p->write_flags;
    Agora__Ipc__IngestRequest req = AGORA__IPC__INGEST_REQUEST__INIT;
    req.op = AGORA__IPC__INGEST_OP__INGEST_DEID_UIDS;
    req.file_bytes = size;
    req.deid = &d;
    agora__ingest_deid_check x = {AGORA__INGEST_DEID_FAILED, out, NULL, NULL, 0, 0};
    int rc =
        agora__ingest_roundtrip_checked(ing, path, &req, &fd, 1, agora__ingest_check_deid, &x, err);
    if (rc != 0)
        agora__ingest_deid_uids_free(out); /* a hostile reply may have filled part of it */
    if (why)
        *why = x.why;
    return rc;
}

int agora__ingest_deid_write(agora__ingest *ing, const char *path, int fd, uint64_t size,
                             const agora__ingest_deid_profile *p, const char *const *uids,
                             const char *const *pseudonyms, size_t n, int days, int out_fd,
                             uint64_t out_cap, agora__ingest_deid_written *out, int *why,
                             agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (why)
        *why = AGORA__INGEST_DEID_FAILED;
    if (n > AGORA__INGEST_DEID_MAX_UIDS)
        return agora__error_set(err, AGORA_ELIMIT, "%s: more than %u UIDs to replace", path,
                                AGORA__INGEST_DEID_MAX_UIDS);
    Agora__Ipc__DeidPseudonym *ps = n ? calloc(n, sizeof *ps) : NULL;
    Agora__Ipc__DeidPseudonym **pp = n ? calloc(n, sizeof *pp) : NULL;
    if (n && (ps == NULL || pp == NULL)) {
        free(ps);
        free(pp);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        agora__ipc__deid_pseudonym__init(&ps[i]);
        ps[i].uid.data = (uint8_t *)(uintptr_t)uids[i];
        ps[i].uid.len = strlen(uids[i]);
        ps[i].pseudonym = (char *)(uintptr_t)pseudonyms[i];
        pp[i] = &ps[i];
    }
    Agora__Ipc__DeidRequest d = AGORA__IPC__DEID_REQUEST__INIT;
    d.options = p->options;
    d.flags = p->flags;
    d.write_flags = p->write_flags;
    d.n_pseudonyms = n;
    d.pseudonyms = pp;
    d.date_offset_days = days;
    Agora__Ipc__IngestRequest req = AGORA__IPC__INGEST_REQUEST__INIT;
    req.op = AGORA__IPC__INGEST_OP__INGEST_DEID_WRITE;
    req.file_bytes = size;
    req.deid = &d;
    req.output_bytes = out_cap;
    req.output_offset = 0;
    agora__ingest_deid_check x = {AGORA__INGEST_DEID_FAILED, NULL, out, pseudonyms, n, out_cap};
    int fds[2] = {fd, out_fd};
    int rc =
        agora__ingest_roundtrip_checked(ing, path, &req, fds, 2, agora__ingest_check_deid, &x, err);
    free(ps);
    free(pp);
    if (why)
        *why = x.why;
    return rc;
}

/* ---- DUMP ------------------------------------------------------------------------------------ */

int agora__ingest_check_dump(const Agora__Ipc__IngestReply *r, int verdict, void *ctx,
                             agora__error *err)
{
    agora__ingest_dump_check *x = ctx;
    if (verdict != AGORA__INGEST_REPLY_OK)
        return verdict;
    if (r->output_used == 0 || r->output_used > x->cap)
        return hostile(err, "a dump reply whose size is out of range");
    x->used = r->output_used;
    return verdict;
}

int agora__ingest_dump(agora__ingest *ing, const char *path, int json, uint64_t cap, char **out,
                       size_t *len, agora__error *err)
{
    *out = NULL;
    *len = 0;
    if (cap == 0 || cap > SIZE_MAX - 1)
        return agora__error_set(err, AGORA_EINVAL, "dump size cap out of range");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "%s: cannot open: %s", path,
                                strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return agora__error_set(err, AGORA_EINPUT, "%s: not a regular, non-empty file", path);
    }
    /* A sparse memfd: only the pages the renderer writes cost memory. */
    int mfd = memfd_create("agora-dump", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || ftruncate(mfd, (off_t)cap) != 0) {
        int e = errno;
        close(fd);
        if (mfd >= 0)
            close(mfd);
        return agora__error_set(err, AGORA__ERR(e), "memfd for the dump: %s", strerror(e));
    }
    Agora__Ipc__IngestRequest req = AGORA__IPC__INGEST_REQUEST__INIT;
    req.op = AGORA__IPC__INGEST_OP__INGEST_DUMP;
    req.file_bytes = (uint64_t)st.st_size;
    req.dump_json = json != 0;
    req.output_bytes = cap;
    agora__ingest_dump_check x = {cap, 0};
    int fds[2] = {fd, mfd};
    int rc =
        agora__ingest_roundtrip_checked(ing, path, &req, fds, 2, agora__ingest_check_dump, &x, err);
    close(fd);
    if (rc == 0 && fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) != 0)
        rc = agora__error_set(err, AGORA_EINPUT,
                              "%s: the DICOM parser worker kept its output writable; the dump "
                              "was refused",
                              path);
    char *text = NULL;
    if (rc == 0) {
        text = malloc((size_t)x.used + 1);
        if (text == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory for the dump");
    }
    if (rc == 0) {
        size_t got = 0;
        while (got < x.used) {
            ssize_t k = pread(mfd, text + got, (size_t)x.used - got, (off_t)got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                rc = agora__error_set(err, AGORA_EINTERNAL, "reading the dump back failed");
                break;
            }
            got += (size_t)k;
        }
    }
    close(mfd);
    if (rc == 0) {
        int ok;
        if (json) {
            ok = 1;
            for (size_t i = 0; i < x.used && ok; i++)
                ok = (text[i] >= 0x20 && text[i] < 0x7f) || text[i] == '\n';
        } else {
            ok = memchr(text, '\0', (size_t)x.used) == NULL &&
                 agora__utf8_valid(text, (size_t)x.used);
        }
        if (!ok)
            rc = agora__error_set(err, AGORA_EINPUT,
                                  "%s: the DICOM parser worker produced bytes the renderer never "
                                  "writes; the dump was refused",
                                  path);
    }
    if (rc != 0) {
        free(text);
        return rc;
    }
    text[x.used] = '\0';
    *out = text;
    *len = (size_t)x.used;
    return 0;
}
