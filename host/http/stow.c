/* STOW-RS receive (stow.h): multipart parts -> Part 10 meta -> spool; the Store Instances
 * Response Module once every part is durable or refused. */
#include "stow.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assoc.h" /* the DIMSE listener's SOP class and transfer syntax lists */
#include "common.h"
#include "multipart.h"
#include "filemeta.h"
#include "spool.h"

#define COMPONENT "stow"

/* Failure Reason values (PS3.18 Table I.2-2). */
#define FAIL_RESOURCES  0xA700u
#define FAIL_CLASS      0x0122u
#define FAIL_SYNTAX     0xC122u
#define FAIL_UNDERSTAND 0xC000u

struct agora__stow {
    agora__stow_config cfg;
    agora__spool *sp;
    atomic_uint_fast64_t requests, stored, duplicates, failed, busy;
};

enum part_state { P_META, P_DATA, P_SKIP };

typedef struct stow_req {
    agora__stow *st;
    agora__multipart *mp;
    json_t *ok, *fail; /* arrays of response items */
    unsigned n_ok, n_dup, n_fail;
    enum part_state ps;
    unsigned pre_fail; /* a reason decided before the meta was read (kept to name the UIDs) */
    agora__filemeta_reader reader;
    agora__filemeta meta;
    int have_meta;
    agora__spool_txn *txn;
    int cut_part; /* a part was ended incomplete (the body ended inside it) */
} stow_req;

/* ---- spool usage ---- */

/* The usage of the whole spool (agora__spool_usage: every writer's receipts, the DIMSE
 * listener's included, cached by the spool for a short TTL). Unreadable counts as over: fail
 * closed (503, the client retries). */
static uint64_t spool_used(agora__stow *st, int *failed)
{
    uint64_t used = 0;
    agora__error err = {0};
    *failed = agora__spool_usage(st->sp, &used, NULL, &err) != 0;
    if (*failed)
        agora__log(AGORA_LOG_WARN, COMPONENT, "cannot read the spool's usage: %s", err.msg);
    return used;
}

static int over_watermark(agora__stow *st)
{
    if (st->cfg.spool_watermark == 0)
        return 0;
    int failed = 0;
    uint64_t used = spool_used(st, &failed);
    return failed || used >= st->cfg.spool_watermark;
}

/* ---- response items ---- */

static json_t *uid_attr(const char *v)
{
    return json_pack("{s:s, s:[s]}", "vr", "UI", "Value", v);
}

static json_t *item(const agora__filemeta *m, int have_meta, int failure, unsigned reason)
{
    json_t *it = json_object();
    if (it == NULL)
        return NULL;
    if (have_meta) {
        json_object_set_new(it, "00081150", uid_attr(m->sop_class));
        json_object_set_new(it, "00081155", uid_attr(m->sop_instance));
    }
    if (failure)
        json_object_set_new(it, "00081197",
                            json_pack("{s:s, s:[i]}", "vr", "US", "Value", (int)reason));
    else
        json_object_set_new(it, "00081190", json_pack("{s:s}", "vr", "UR"));
    return it;
}

static void add_ok(stow_req *r, int duplicate)
{
    json_array_append_new(r->ok, item(&r->meta, 1, 0, 0));
    r->n_ok++;
    atomic_fetch_add(&r->st->stored, 1);
    if (duplicate) {
        r->n_dup++;
        atomic_fetch_add(&r->st->duplicates, 1);
    }
}

static void add_fail(stow_req *r, unsigned reason)
{
    json_array_append_new(r->fail, item(&r->meta, r->have_meta, 1, reason));
    r->n_fail++;
    atomic_fetch_add(&r->st->failed, 1);
}

/* ---- multipart callbacks ---- */

static int media_is_dicom(const char *ct)
{
    if (ct[0] == 0)
        return 1; /* no Content-Type: the multipart's type (application/dicom) applies */
    const char *e = strchr(ct, ';');
    size_t n = e ? (size_t)(e - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == strlen("application/dicom") && strncasecmp(ct, "application/dicom", n) == 0;
}

static int on_part_begin(void *arg, const agora__multipart_part *part)
{
    stow_req *r = arg;
    r->have_meta = 0;
    r->pre_fail = 0;
    r->txn = NULL;
    memset(&r->meta, 0, sizeof r->meta);
    if (!media_is_dicom(part->content_type)) {
        add_fail(r, FAIL_UNDERSTAND);
        r->ps = P_SKIP;
        return 0;
    }
    if (over_watermark(r->st))
        r->pre_fail = FAIL_RESOURCES;
    agora__filemeta_init(&r->reader);
    r->ps = P_META;
    return 0;
}

static void skip_part(stow_req *r, unsigned reason)
{
    if (r->txn) {
        agora__spool_abandon(r->txn);
        r->txn = NULL;
    }
    add_fail(r, reason);
    r->ps = P_SKIP;
}

/* The meta is read: refuse, or start the spool file. */
static void meta_done(stow_req *r)
{
    r->have_meta = 1;
    if (r->pre_fail) {
        skip_part(r, r->pre_fail);
        return;
    }
    if (agora__dimse_abstract_kind(r->meta.sop_class) != AGORA__ABSTRACT_STORAGE) {
        skip_part(r, FAIL_CLASS);
        return;
    }
    if (!agora__dimse_ts_accepted(AGORA__ABSTRACT_STORAGE, r->meta.ts)) {
        skip_part(r, FAIL_SYNTAX);
        return;
    }
    agora__spool_instance inst = {r->meta.sop_class, r->meta.sop_instance, r->meta.ts,
                                  AGORA__STOW_CALLING_AE, AGORA__STOW_CALLED_AE};
    agora__error err = {0};
    if (agora__spool_begin(r->st->sp, &inst, &r->txn, &err) != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "cannot spool an instance: %s", err.msg);
        skip_part(r, FAIL_RESOURCES);
        return;
    }
    r->ps = P_DATA;
}

static void write_data(stow_req *r, const uint8_t *p, size_t n)
{
    agora__error err = {0};
    int rc = agora__spool_write(r->txn, p, n, &err);
    if (rc != 0) {
        if (rc != AGORA_ELIMIT)
            agora__log(AGORA_LOG_ERROR, COMPONENT, "instance not stored: %s", err.msg);
        skip_part(r, FAIL_RESOURCES);
    }
}

static int on_part_data(void *arg, const uint8_t *p, size_t n)
{
    stow_req *r = arg;
    if (r->ps == P_META) {
        size_t used = 0;
        agora__error err = {0};
        int rc = agora__filemeta_feed(&r->reader, p, n, &used, &r->meta, &err);
        if (rc == AGORA__FILEMETA_MORE)
            return 0;
        if (rc != AGORA__FILEMETA_DONE) {
            agora__log(AGORA_LOG_INFO, COMPONENT, "part %u refused: %s",
                       agora__multipart_parts(r->mp), err.msg);
            skip_part(r, FAIL_UNDERSTAND);
            return 0;
        }
        meta_done(r);
        p += used;
        n -= used;
    }
    if (r->ps == P_DATA && n > 0)
        write_data(r, p, n);
    return 0;
}

static int on_part_end(void *arg, int complete)
{
    stow_req *r = arg;
    if (!complete)
        r->cut_part = 1;
    if (r->ps == P_META) {
        /* The part ended inside its meta group. */
        skip_part(r, FAIL_UNDERSTAND);
        return 0;
    }
    if (r->ps == P_DATA) {
        if (!complete) {
            /* Cut short: by the end of the body, damage right after its data, or a limit. */
            skip_part(r, agora__multipart_failure(r->mp) == AGORA__MULTIPART_LIMIT
                             ? FAIL_RESOURCES
                             : FAIL_UNDERSTAND);
            return 0;
        }
        agora__error err = {0};
        int dup = 0;
        agora__spool_txn *t = r->txn;
        r->txn = NULL;
        if (agora__spool_commit(t, &dup, &err) != 0) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "instance not stored: %s", err.msg);
            add_fail(r, FAIL_RESOURCES);
        } else {
            add_ok(r, dup);
        }
    }
    r->ps = P_SKIP;
    return 0;
}

static const agora__multipart_cb part_cb = {on_part_begin, on_part_data, on_part_end};

/* ---- the route ---- */

static int uid_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && s[i - 1] != '.')))
            return 0;
    return 1;
}

/* Accept: absent, or naming application/dicom+json or a wildcard that covers it. */
static int accept_ok(const char *a)
{
    if (a == NULL || a[0] == 0)
        return 1;
    return strstr(a, "application/dicom+json") != NULL || strstr(a, "application/json") != NULL ||
           strstr(a, "*/*") != NULL || strstr(a, "application/*") != NULL ||
           strstr(a, "multipart/related") != NULL;
}

/* Refuse before the body; msg is our own text (no value from the request). */
static void refuse(agora__http_request *rq, unsigned status, const char *msg)
{
    agora__log(AGORA_LOG_INFO, COMPONENT, "request refused (%u): %s", status, msg);
    json_t *j = json_pack("{s:s}", "error", msg);
    if (j != NULL)
        agora__http_respond_json(rq, status, "application/json", j);
    else
        agora__http_respond(rq, status, NULL, NULL, 0);
    json_decref(j);
}

static int stow_begin(void *arg, agora__http_request *rq, void **ctx)
{
    agora__stow *st = arg;
    atomic_fetch_add(&st->requests, 1);
    const char *rest = agora__http_path_rest(rq);
    size_t rn = strlen(rest);
    if (rn > 1 && (rest[0] != '/' || !uid_ok(rest + 1, rn - 1))) {
        refuse(rq, 404,
               "not a STOW-RS resource: POST /dicomweb/studies or "
               "/dicomweb/studies/{StudyInstanceUID}");
        return 0;
    }
    char boundary[AGORA__MULTIPART_BOUNDARY_MAX + 1];
    int type_ok = 1;
    agora__error err = {0};
    int rc =
        agora__multipart_boundary(agora__http_header(rq, "Content-Type"), boundary, &type_ok, &err);
    if (rc == AGORA_EUNSUPPORTED || (rc == 0 && !type_ok)) {
        refuse(rq, 415,
               rc ? err.msg
                  : "the multipart type must be application/dicom (metadata and bulk "
                    "data requests are not supported)");
        return 0;
    }
    if (rc != 0) {
        refuse(rq, 400, err.msg);
        return 0;
    }
    agora__log(AGORA_LOG_DEBUG, COMPONENT, "multipart boundary of %zu characters",
               strlen(boundary));
    if (!accept_ok(agora__http_header(rq, "Accept"))) {
        refuse(rq, 406, "the STOW-RS response is application/dicom+json");
        return 0;
    }
    if (over_watermark(st)) {
        atomic_fetch_add(&st->busy, 1);
        refuse(rq, 503, "the receive spool is over its watermark; retry later");
        char ra[16];
        snprintf(ra, sizeof ra, "%u", st->cfg.retry_after_s);
        agora__http_respond_header(rq, "Retry-After", ra);
        agora__log(AGORA_LOG_WARN, COMPONENT, "spool over its watermark: request refused (503)");
        return 0;
    }
    stow_req *r = calloc(1, sizeof *r);
    if (r == NULL)
        return AGORA_ENOMEM;
    r->st = st;
    r->ok = json_array();
    r->fail = json_array();
    agora__multipart_limits lim = {st->cfg.max_parts, st->cfg.max_part_header_bytes,
                                   st->cfg.max_part_headers, st->cfg.max_request_bytes};
    if (r->ok == NULL || r->fail == NULL ||
        agora__multipart_create(boundary, &lim, &part_cb, r, &r->mp, &err) != 0) {
        json_decref(r->ok);
        json_decref(r->fail);
        free(r);
        return AGORA_ENOMEM;
    }
    *ctx = r;
    return 0;
}

static int stow_body(void *ctx, agora__http_request *rq, const uint8_t *p, size_t n)
{
    (void)rq;
    stow_req *r = ctx;
    agora__error err = {0};
    if (agora__multipart_feed(r->mp, p, n, &err) != 0) {
        return 1; /* the rest of the body is dropped; end answers */
    }
    return 0;
}

static int stow_end(void *ctx, agora__http_request *rq)
{
    stow_req *r = ctx;
    agora__error err = {0};
    int rc = agora__multipart_finish(r->mp, &err);
    agora__multipart_fail why = agora__multipart_failure(r->mp);
    if (rc != 0) {
        unsigned reason = why == AGORA__MULTIPART_LIMIT ? FAIL_RESOURCES : FAIL_UNDERSTAND;
        if (!r->cut_part) {
            /* Between parts or in a part's headers (a part open when the parser stopped was
             * ended incomplete and has its item): one item without UIDs stands for it. */
            memset(&r->meta, 0, sizeof r->meta);
            r->have_meta = 0;
            add_fail(r, reason);
        }
    }
    unsigned status;
    if (rc != 0 && why == AGORA__MULTIPART_LIMIT)
        status = 413;
    else if (rc != 0)
        status = r->n_ok ? 202 : 400;
    else if (r->n_ok + r->n_fail == 0)
        status = 400;
    else if (r->n_fail == 0)
        status = 200;
    else
        status = r->n_ok ? 202 : 409;
    json_t *doc = json_object();
    if (doc == NULL)
        return AGORA_ENOMEM;
    json_object_set_new(doc, "00081190", json_pack("{s:s}", "vr", "UR"));
    if (r->n_ok)
        json_object_set_new(doc, "00081199", json_pack("{s:s, s:O}", "vr", "SQ", "Value", r->ok));
    if (r->n_fail)
        json_object_set_new(doc, "00081198", json_pack("{s:s, s:O}", "vr", "SQ", "Value", r->fail));
    rc = agora__http_respond_json(rq, status, "application/dicom+json", doc);
    json_decref(doc);
    if (rc == 0 && err.msg[0]) {
        /* Why, for a person reading the response (our own text, no value from the request). */
        char w[320];
        snprintf(w, sizeof w, "299 agora \"%s\"", err.msg);
        agora__http_respond_header(rq, "Warning", w);
    }
    agora__log(status == 200 ? AGORA_LOG_INFO : AGORA_LOG_WARN, COMPONENT,
               "request: %u part(s), %u stored (%u duplicate), %u refused -> %u%s%s",
               agora__multipart_parts(r->mp), r->n_ok, r->n_dup, r->n_fail, status,
               err.msg[0] ? ": " : "", err.msg);
    return rc;
}

static void stow_done(void *ctx, int completed)
{
    stow_req *r = ctx;
    if (r == NULL)
        return;
    if (!completed && r->n_ok)
        agora__log(AGORA_LOG_WARN, COMPONENT,
                   "connection ended mid-request: %u instance(s) stored before", r->n_ok);
    if (r->txn)
        agora__spool_abandon(r->txn);
    agora__multipart_destroy(r->mp);
    json_decref(r->ok);
    json_decref(r->fail);
    free(r);
}

static const agora__http_handler stow_handler = {stow_begin, stow_body, stow_end, stow_done};

static int stow_health(void *arg, json_t *root)
{
    agora__stow *st = arg;
    int failed = 0;
    uint64_t used = spool_used(st, &failed);
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "requests",
        (json_int_t)atomic_load(&st->requests), "stored", (json_int_t)atomic_load(&st->stored),
        "duplicates", (json_int_t)atomic_load(&st->duplicates), "failed",
        (json_int_t)atomic_load(&st->failed), "refused_busy", (json_int_t)atomic_load(&st->busy),
        "spool_bytes", (json_int_t)used, "spool_watermark", (json_int_t)st->cfg.spool_watermark,
        "over_watermark",
        st->cfg.spool_watermark != 0 && (failed || used >= st->cfg.spool_watermark));
    if (j == NULL)
        return AGORA_ENOMEM;
    return json_object_set_new(root, "stow", j) == 0 ? 0 : AGORA_ENOMEM;
}

int agora__stow_register(agora__http_server *s, const agora__stow_config *cfg, agora__stow **out,
                         agora__error *err)
{
    *out = NULL;
    if (cfg->max_parts < 1 || cfg->max_part_header_bytes < 64 || cfg->max_part_headers < 1 ||
        cfg->max_request_bytes < 1 || cfg->max_instance_bytes < 1)
        return agora__error_set(err, AGORA_EINVAL, "STOW-RS limits must be positive");
    agora__stow *st = calloc(1, sizeof *st);
    if (st == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for STOW-RS");
    st->cfg = *cfg;
    int rc = agora__spool_open(cfg->home, cfg->max_instance_bytes, &st->sp, err);
    agora__http_route r = {.method = "POST",
                           .path = "/dicomweb/studies",
                           .flags = AGORA__HTTP_PREFIX,
                           .name = "stow",
                           .max_body = cfg->max_request_bytes,
                           .handler = &stow_handler,
                           .arg = st};
    if (rc == 0)
        rc = agora__http_route_add(s, &r, err);
    if (rc == 0)
        rc = agora__http_add_health(s, stow_health, st, err);
    if (rc != 0) {
        agora__stow_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void agora__stow_get_stats(const agora__stow *st, agora__stow_stats *out)
{
    out->requests = atomic_load(&st->requests);
    out->stored = atomic_load(&st->stored);
    out->duplicates = atomic_load(&st->duplicates);
    out->failed = atomic_load(&st->failed);
    out->refused_busy = atomic_load(&st->busy);
}

void agora__stow_close(agora__stow *st)
{
    if (st == NULL)
        return;
    agora__spool_close(st->sp);
    free(st);
}
