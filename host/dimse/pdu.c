/* DICOM upper layer PDU codec (pdu.h). Big-endian fields, items of type(1) reserved(1)
 * length(2); every read is checked against the remaining bytes of its enclosing item. */
#include "pdu.h"

#include <string.h>

#include "common.h"

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void agora__pdu_header(const uint8_t h[AGORA__PDU_HEADER_LEN], uint8_t *type, uint32_t *len)
{
    *type = h[0];
    *len = be32(h + 2);
}

int agora__uid_valid(const char *s, size_t len)
{
    if (len == 0 || len > AGORA__PDU_UID_MAX || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* A UID item value: some implementations pad with one NUL (PS3.8 says no padding). */
static int copy_uid(const uint8_t *p, size_t n, char out[AGORA__PDU_UID_MAX + 1], const char *what,
                    agora__error *err)
{
    if (n > 0 && p[n - 1] == 0)
        n--;
    if (!agora__uid_valid((const char *)p, n))
        return agora__error_set(err, AGORA_EINVAL, "%s is not a valid UID (%zu bytes)", what, n);
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* AE titles: 16 bytes, space padded, printable ASCII without backslash. */
static int copy_ae(const uint8_t *p, char out[AGORA__PDU_AE_MAX + 1], const char *what,
                   agora__error *err)
{
    size_t b = 0, e = AGORA__PDU_AE_MAX;
    while (b < e && p[b] == ' ')
        b++;
    while (e > b && (p[e - 1] == ' ' || p[e - 1] == 0))
        e--;
    if (b == e)
        return agora__error_set(err, AGORA_EINVAL, "%s AE title is empty", what);
    for (size_t i = b; i < e; i++)
        if (p[i] < 0x20 || p[i] > 0x7E || p[i] == '\\')
            return agora__error_set(err, AGORA_EINVAL,
                                    "%s AE title has a byte that is not "
                                    "printable ASCII",
                                    what);
    memcpy(out, p + b, e - b);
    out[e - b] = 0;
    return 0;
}

/* Walk the items of [p, p+len): calls back with each item's type and value. */
typedef int (*item_fn)(void *ctx, uint8_t type, const uint8_t *v, size_t n, agora__error *err);

static int walk_items(const uint8_t *p, size_t len, item_fn fn, void *ctx, agora__error *err)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < 4)
            return agora__error_set(err, AGORA_EINVAL, "truncated item header");
        uint8_t type = p[off];
        size_t n = be16(p + off + 2);
        if (n > len - off - 4)
            return agora__error_set(err, AGORA_EINVAL,
                                    "item 0x%02x is longer (%zu) than what holds it", type, n);
        int rc = fn(ctx, type, p + off + 4, n, err);
        if (rc != 0)
            return rc;
        off += 4 + n;
    }
    return 0;
}

typedef struct pc_ctx {
    agora__pdu_pc *pc;
    int n_abstract;
    unsigned n_ts_seen;
} pc_ctx;

static int pc_item(void *vctx, uint8_t type, const uint8_t *v, size_t n, agora__error *err)
{
    pc_ctx *c = vctx;
    if (type == 0x30) {
        if (c->n_abstract++ > 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "presentation context has two abstract syntaxes");
        return copy_uid(v, n, c->pc->abstract_syntax, "abstract syntax", err);
    }
    if (type == 0x40) {
        c->n_ts_seen++;
        if (c->pc->n_ts >= AGORA__PDU_MAX_TS)
            return 0; /* bounded: later proposals are not considered */
        int rc = copy_uid(v, n, c->pc->ts[c->pc->n_ts], "transfer syntax", err);
        if (rc == 0)
            c->pc->n_ts++;
        return rc;
    }
    return agora__error_set(err, AGORA_EINVAL, "unknown sub-item 0x%02x in presentation context",
                            type);
}

typedef struct rq_ctx {
    agora__pdu_assoc_rq *rq;
    int n_app, n_user;
    uint8_t pc_type; /* 0x20 in an RQ, 0x21 in an AC */
    agora__pdu_assoc_ac *ac;
} rq_ctx;

static int user_item(void *vctx, uint8_t type, const uint8_t *v, size_t n, agora__error *err)
{
    rq_ctx *c = vctx;
    uint32_t *max = c->rq ? &c->rq->max_pdu : &c->ac->max_pdu;
    switch (type) {
    case 0x51:
        if (n != 4)
            return agora__error_set(err, AGORA_EINVAL, "maximum length item is not 4 bytes");
        *max = be32(v);
        return 0;
    case 0x52:
        if (c->rq)
            return copy_uid(v, n, c->rq->impl_class_uid, "implementation class", err);
        return 0;
    case 0x55:
        if (n > AGORA__PDU_AE_MAX)
            return agora__error_set(err, AGORA_EINVAL, "implementation version name too long");
        if (c->rq) {
            memcpy(c->rq->impl_version, v, n);
            c->rq->impl_version[n] = 0;
        }
        return 0;
    default:
        /* Asynchronous operations window, role selection, extended negotiation, user identity:
         * not negotiated, so not read (their defaults apply: one operation at a time). */
        return 0;
    }
}

static int rq_item(void *vctx, uint8_t type, const uint8_t *v, size_t n, agora__error *err)
{
    rq_ctx *c = vctx;
    if (type == 0x10) {
        if (c->n_app++ > 0)
            return agora__error_set(err, AGORA_EINVAL, "two application context items");
        char tmp[AGORA__PDU_UID_MAX + 1];
        int rc = copy_uid(v, n, tmp, "application context", err);
        if (rc == 0 && c->rq)
            memcpy(c->rq->app_context, tmp, sizeof tmp);
        return rc;
    }
    if (type == c->pc_type) {
        if (n < 4)
            return agora__error_set(err, AGORA_EINVAL, "presentation context item too short");
        uint8_t id = v[0];
        if ((id & 1) == 0)
            return agora__error_set(err, AGORA_EINVAL, "presentation context id %u is even", id);
        if (c->rq) {
            agora__pdu_assoc_rq *rq = c->rq;
            for (size_t i = 0; i < rq->n_pc; i++)
                if (rq->pc[i].id == id)
                    return agora__error_set(err, AGORA_EINVAL,
                                            "presentation context id %u proposed twice", id);
            if (rq->n_pc >= AGORA__PDU_MAX_PC)
                return agora__error_set(err, AGORA_EINVAL, "more than %d presentation contexts",
                                        AGORA__PDU_MAX_PC);
            agora__pdu_pc *pc = &rq->pc[rq->n_pc];
            memset(pc, 0, sizeof *pc);
            pc->id = id;
            pc_ctx pctx = {pc, 0, 0};
            int rc = walk_items(v + 4, n - 4, pc_item, &pctx, err);
            if (rc != 0)
                return rc;
            if (pctx.n_abstract != 1 || pctx.n_ts_seen == 0)
                return agora__error_set(err, AGORA_EINVAL,
                                        "presentation context %u lacks its abstract syntax or "
                                        "transfer syntax",
                                        id);
            rq->n_pc++;
            return 0;
        }
        agora__pdu_assoc_ac *ac = c->ac;
        if (ac->n_pc >= AGORA__PDU_MAX_PC)
            return agora__error_set(err, AGORA_EINVAL, "more than %d presentation contexts",
                                    AGORA__PDU_MAX_PC);
        agora__pdu_pc_result *r = &ac->pc[ac->n_pc];
        memset(r, 0, sizeof *r);
        r->id = id;
        r->result = v[2];
        /* One transfer syntax sub-item (0x40); its value is meaningless unless accepted. */
        if (n > 4) {
            if (n < 8 || v[4] != 0x40 || (size_t)be16(v + 6) != n - 8)
                return agora__error_set(err, AGORA_EINVAL, "malformed accepted context %u", id);
            if (r->result == AGORA__PC_ACCEPT) {
                int rc = copy_uid(v + 8, n - 8, r->ts, "transfer syntax", err);
                if (rc != 0)
                    return rc;
            }
        }
        ac->n_pc++;
        return 0;
    }
    if (type == 0x50) {
        if (c->n_user++ > 0)
            return agora__error_set(err, AGORA_EINVAL, "two user information items");
        return walk_items(v, n, user_item, c, err);
    }
    return agora__error_set(err, AGORA_EINVAL, "unknown item 0x%02x in association PDU", type);
}

static int parse_assoc(const uint8_t *body, size_t len, rq_ctx *c, char *called, char *calling,
                       uint16_t *version, agora__error *err)
{
    if (len < 68)
        return agora__error_set(err, AGORA_EINVAL, "association PDU shorter than 68 bytes");
    if (len > AGORA__PDU_ASSOCIATE_MAX)
        return agora__error_set(err, AGORA_EINVAL, "association PDU longer than %u bytes",
                                AGORA__PDU_ASSOCIATE_MAX);
    *version = be16(body);
    int rc = copy_ae(body + 4, called, "called", err);
    if (rc == 0)
        rc = copy_ae(body + 20, calling, "calling", err);
    if (rc == 0)
        rc = walk_items(body + 68, len - 68, rq_item, c, err);
    if (rc == 0 && c->n_app != 1)
        rc = agora__error_set(err, AGORA_EINVAL, "no application context item");
    return rc;
}

int agora__pdu_parse_assoc_rq(const uint8_t *body, size_t len, agora__pdu_assoc_rq *out,
                              agora__error *err)
{
    memset(out, 0, offsetof(agora__pdu_assoc_rq, pc));
    out->max_pdu = 0;
    out->impl_class_uid[0] = 0;
    out->impl_version[0] = 0;
    rq_ctx c = {out, 0, 0, 0x20, NULL};
    int rc =
        parse_assoc(body, len, &c, out->called_ae, out->calling_ae, &out->protocol_version, err);
    if (rc == 0 && out->n_pc == 0)
        rc = agora__error_set(err, AGORA_EINVAL, "no presentation context proposed");
    return rc;
}

int agora__pdu_parse_assoc_ac(const uint8_t *body, size_t len, agora__pdu_assoc_ac *out,
                              agora__error *err)
{
    memset(out, 0, sizeof *out);
    rq_ctx c = {NULL, 0, 0, 0x21, out};
    uint16_t version;
    return parse_assoc(body, len, &c, out->called_ae, out->calling_ae, &version, err);
}

int agora__pdu_next_pdv(const uint8_t *body, size_t len, size_t *off, agora__pdu_pdv *pdv,
                        agora__error *err)
{
    if (*off >= len)
        return 0;
    if (len - *off < 4)
        return agora__error_set(err, AGORA_EINVAL, "truncated PDV item header");
    size_t n = be32(body + *off);
    if (n < 2 || n > len - *off - 4)
        return agora__error_set(err, AGORA_EINVAL, "PDV item length %zu does not fit", n);
    pdv->pc_id = body[*off + 4];
    pdv->control = body[*off + 5];
    pdv->data = body + *off + 6;
    pdv->len = n - 2;
    *off += 4 + n;
    return 1;
}

int agora__pdu_parse_short(uint8_t type, const uint8_t *body, size_t len, uint8_t *a, uint8_t *b,
                           uint8_t *c, agora__error *err)
{
    if (len != 4)
        return agora__error_set(err, AGORA_EINVAL, "PDU 0x%02x body is %zu bytes, not 4", type,
                                len);
    if (a)
        *a = body[1];
    if (b)
        *b = body[2];
    if (c)
        *c = body[3];
    return 0;
}

/* A bounded writer: once a write does not fit, everything after is dropped and len reads 0. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int over;
} wbuf;

static void put(wbuf *w, const void *d, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = 1;
        return;
    }
    memcpy(w->p + w->len, d, n);
    w->len += n;
}

static void put8(wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put16(wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put32(wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

static void put_item(wbuf *w, uint8_t type, const char *s)
{
    size_t n = strlen(s);
    put8(w, type);
    put8(w, 0);
    put16(w, (uint16_t)n);
    put(w, s, n);
}

static void put_ae(wbuf *w, const char *ae)
{
    char b[AGORA__PDU_AE_MAX];
    memset(b, ' ', sizeof b);
    size_t n = strlen(ae);
    memcpy(b, ae, n > sizeof b ? sizeof b : n);
    put(w, b, sizeof b);
}

/* Patch a big-endian length at `at` (2 or 4 bytes) to the bytes written after it. */
static void patch(wbuf *w, size_t at, int width)
{
    if (w->over)
        return;
    size_t n = w->len - at - (size_t)width;
    if (width == 2) {
        w->p[at] = (uint8_t)(n >> 8);
        w->p[at + 1] = (uint8_t)n;
    } else {
        w->p[at] = (uint8_t)(n >> 24);
        w->p[at + 1] = (uint8_t)(n >> 16);
        w->p[at + 2] = (uint8_t)(n >> 8);
        w->p[at + 3] = (uint8_t)n;
    }
}

static void put_user_info(wbuf *w, uint32_t max_pdu, const char *impl_uid, const char *impl_ver)
{
    put8(w, 0x50);
    put8(w, 0);
    size_t at = w->len;
    put16(w, 0);
    put8(w, 0x51);
    put8(w, 0);
    put16(w, 4);
    put32(w, max_pdu);
    if (impl_uid && impl_uid[0])
        put_item(w, 0x52, impl_uid);
    if (impl_ver && impl_ver[0])
        put_item(w, 0x55, impl_ver);
    patch(w, at, 2);
}

static void put_assoc_head(wbuf *w, uint8_t type, const char *called, const char *calling)
{
    static const uint8_t zeros[32];
    put8(w, type);
    put8(w, 0);
    put32(w, 0); /* patched */
    put16(w, 1); /* protocol version */
    put16(w, 0);
    put_ae(w, called);
    put_ae(w, calling);
    put(w, zeros, sizeof zeros);
    put_item(w, 0x10, AGORA__UID_APPLICATION_CONTEXT);
}

size_t agora__pdu_encode_assoc_rq(const agora__pdu_assoc_rq *rq, uint8_t *out, size_t cap)
{
    wbuf w = {out, 0, cap, 0};
    put_assoc_head(&w, AGORA__PDU_ASSOCIATE_RQ, rq->called_ae, rq->calling_ae);
    for (size_t i = 0; i < rq->n_pc; i++) {
        const agora__pdu_pc *pc = &rq->pc[i];
        put8(&w, 0x20);
        put8(&w, 0);
        size_t at = w.len;
        put16(&w, 0);
        put8(&w, pc->id);
        put8(&w, 0);
        put8(&w, 0);
        put8(&w, 0);
        put_item(&w, 0x30, pc->abstract_syntax);
        for (size_t t = 0; t < pc->n_ts; t++)
            put_item(&w, 0x40, pc->ts[t]);
        patch(&w, at, 2);
    }
    put_user_info(&w, rq->max_pdu, rq->impl_class_uid, rq->impl_version);
    patch(&w, 2, 4);
    return w.over ? 0 : w.len;
}

size_t agora__pdu_encode_assoc_ac(const agora__pdu_assoc_ac *ac, uint8_t *out, size_t cap)
{
    wbuf w = {out, 0, cap, 0};
    put_assoc_head(&w, AGORA__PDU_ASSOCIATE_AC, ac->called_ae, ac->calling_ae);
    for (size_t i = 0; i < ac->n_pc; i++) {
        const agora__pdu_pc_result *r = &ac->pc[i];
        put8(&w, 0x21);
        put8(&w, 0);
        size_t at = w.len;
        put16(&w, 0);
        put8(&w, r->id);
        put8(&w, 0);
        put8(&w, r->result);
        put8(&w, 0);
        /* PS3.8 9.3.3.2: the sub-item is present; its value is not significant unless accepted. */
        put_item(&w, 0x40, r->ts[0] ? r->ts : "1.2.840.10008.1.2");
        patch(&w, at, 2);
    }
    put_user_info(&w, ac->max_pdu, ac->impl_class_uid, ac->impl_version);
    patch(&w, 2, 4);
    return w.over ? 0 : w.len;
}

static size_t encode_short(uint8_t type, uint8_t a, uint8_t b, uint8_t c, uint8_t *out, size_t cap)
{
    wbuf w = {out, 0, cap, 0};
    put8(&w, type);
    put8(&w, 0);
    put32(&w, 4);
    put8(&w, 0);
    put8(&w, a);
    put8(&w, b);
    put8(&w, c);
    return w.over ? 0 : w.len;
}

size_t agora__pdu_encode_assoc_rj(uint8_t result, uint8_t source, uint8_t reason, uint8_t *out,
                                  size_t cap)
{
    return encode_short(AGORA__PDU_ASSOCIATE_RJ, result, source, reason, out, cap);
}

size_t agora__pdu_encode_release(uint8_t type, uint8_t *out, size_t cap)
{
    return encode_short(type, 0, 0, 0, out, cap);
}

size_t agora__pdu_encode_abort(uint8_t source, uint8_t reason, uint8_t *out, size_t cap)
{
    return encode_short(AGORA__PDU_ABORT, 0, source, reason, out, cap);
}

size_t agora__pdu_encode_pdata(uint8_t pc_id, uint8_t control, const uint8_t *data, size_t len,
                               uint8_t *out, size_t cap)
{
    if (len > UINT32_MAX - 6)
        return 0;
    wbuf w = {out, 0, cap, 0};
    put8(&w, AGORA__PDU_P_DATA_TF);
    put8(&w, 0);
    put32(&w, (uint32_t)(len + 6));
    put32(&w, (uint32_t)(len + 2));
    put8(&w, pc_id);
    put8(&w, control);
    put(&w, data, len);
    return w.over ? 0 : w.len;
}
