/* The SCP association state machine (assoc.h). */
#include "assoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "common.h"

#include "writer.h" /* the project's one implementation class UID and version name */

#define IMPL_CLASS_UID AGORA__DEID_IMPL_CLASS_UID
#define IMPL_VERSION   AGORA__DEID_IMPL_VERSION

typedef struct accepted {
    uint8_t kind; /* AGORA__ABSTRACT_*; 0: id not accepted */
    char abstract_syntax[AGORA__PDU_UID_MAX + 1];
    char ts[AGORA__PDU_UID_MAX + 1];
} accepted;

struct agora__assoc {
    agora__assoc_config cfg;
    agora__assoc_ops ops;
    agora__assoc_state state;
    int echo_only; /* the RQ being admitted proposes Verification only */
    uint64_t pdus;
    char calling[AGORA__PDU_AE_MAX + 1];
    char called[AGORA__PDU_AE_MAX + 1];
    char end_reason[160];
    uint32_t peer_max; /* 0: no limit */
    accepted pc[256];  /* by context id */
    /* The PDU being assembled: header first, then the body. */
    uint8_t hdr[AGORA__PDU_HEADER_LEN];
    size_t hdr_have;
    uint8_t *body;
    size_t body_cap, body_have, body_len;
    uint8_t body_type;
    /* The DIMSE message in progress. */
    uint8_t msg_pc; /* 0: none */
    uint8_t cmd[AGORA__DIMSE_CMD_MAX];
    size_t cmd_len;
    int cmd_done;
    agora__dimse_cmd cur;
    int in_store;     /* a data set is expected */
    void *store;      /* the caller's handle, NULL when discarding */
    uint16_t refused; /* non-zero: refused with this status, the data set is discarded */
};

agora__assoc *agora__assoc_new(const agora__assoc_config *cfg, const agora__assoc_ops *ops)
{
    agora__assoc *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->cfg = *cfg;
    a->ops = *ops;
    a->state = AGORA__ASSOC_AWAIT_RQ;
    return a;
}

static void drop_store(agora__assoc *a)
{
    if (a->in_store && a->store != NULL)
        (void)a->ops.store_end(a->ops.ctx, a->store, 0);
    a->in_store = 0;
    a->store = NULL;
}

void agora__assoc_free(agora__assoc *a)
{
    if (a == NULL)
        return;
    drop_store(a);
    free(a->body);
    free(a);
}

agora__assoc_state agora__assoc_state_of(const agora__assoc *a)
{
    return a->state;
}

uint64_t agora__assoc_pdus(const agora__assoc *a)
{
    return a->pdus;
}

int agora__assoc_echo_only(const agora__assoc *a)
{
    return a->echo_only;
}

const char *agora__assoc_calling_ae(const agora__assoc *a)
{
    return a->calling;
}

const char *agora__assoc_end_reason(const agora__assoc *a)
{
    return a->end_reason;
}

static void send_bytes(agora__assoc *a, const uint8_t *p, size_t n)
{
    if (n == 0 || a->ops.send(a->ops.ctx, p, n) != 0) {
        if (a->end_reason[0] == 0)
            agora__strlcpy(a->end_reason, "the connection failed while sending",
                           sizeof a->end_reason);
        a->state = AGORA__ASSOC_CLOSED;
    }
}

static void abort_with(agora__assoc *a, uint8_t source, uint8_t reason, const char *why)
{
    if (a->state == AGORA__ASSOC_CLOSED)
        return;
    agora__strlcpy(a->end_reason, why, sizeof a->end_reason);
    uint8_t pdu[10];
    size_t n = agora__pdu_encode_abort(source, reason, pdu, sizeof pdu);
    drop_store(a);
    send_bytes(a, pdu, n);
    a->state = AGORA__ASSOC_CLOSED;
}

void agora__assoc_abort(agora__assoc *a, const char *why)
{
    abort_with(a, AGORA__ABORT_SRC_USER, 0, why);
}

static void reject(agora__assoc *a, uint8_t result, uint8_t source, uint8_t reason, const char *why)
{
    agora__strlcpy(a->end_reason, why, sizeof a->end_reason);
    uint8_t pdu[10];
    send_bytes(a, pdu, agora__pdu_encode_assoc_rj(result, source, reason, pdu, sizeof pdu));
    a->state = AGORA__ASSOC_CLOSED;
}

static int ae_allowed(const agora__assoc *a, const char *ae)
{
    if (a->cfg.n_allow_ae == 0)
        return 1;
    for (size_t i = 0; i < a->cfg.n_allow_ae; i++)
        if (strcmp(a->cfg.allow_ae[i], ae) == 0)
            return 1;
    return 0;
}

static void on_assoc_rq(agora__assoc *a, const uint8_t *body, size_t len)
{
    agora__pdu_assoc_rq *rq = malloc(sizeof *rq);
    agora__pdu_assoc_ac *ac = malloc(sizeof *ac);
    uint8_t *out = malloc(AGORA__PDU_ASSOCIATE_MAX);
    if (rq == NULL || ac == NULL || out == NULL) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, 0, "out of memory negotiating");
        goto done;
    }
    agora__error err = {0};
    if (agora__pdu_parse_assoc_rq(body, len, rq, &err) != 0) {
        char why[160];
        snprintf(why, sizeof why, "malformed A-ASSOCIATE-RQ: %.100s", err.msg);
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM, why);
        goto done;
    }
    agora__strlcpy(a->calling, rq->calling_ae, sizeof a->calling);
    agora__strlcpy(a->called, rq->called_ae, sizeof a->called);
    if ((rq->protocol_version & 1u) == 0) {
        reject(a, AGORA__RJ_PERMANENT, AGORA__RJ_SRC_ACSE, AGORA__RJ_ACSE_VERSION,
               "rejected: protocol version 1 not offered");
        goto done;
    }
    if (strcmp(rq->app_context, AGORA__UID_APPLICATION_CONTEXT) != 0) {
        reject(a, AGORA__RJ_PERMANENT, AGORA__RJ_SRC_USER, AGORA__RJ_USER_APP_CONTEXT,
               "rejected: application context not supported");
        goto done;
    }
    if (strcmp(rq->called_ae, a->cfg.ae_title) != 0) {
        reject(a, AGORA__RJ_PERMANENT, AGORA__RJ_SRC_USER, AGORA__RJ_USER_CALLED_AE,
               "rejected: called AE title is not ours");
        goto done;
    }
    if (!ae_allowed(a, rq->calling_ae)) {
        reject(a, AGORA__RJ_PERMANENT, AGORA__RJ_SRC_USER, AGORA__RJ_USER_CALLING_AE,
               "rejected: calling AE title not in the allow-list");
        goto done;
    }
    a->echo_only = rq->n_pc > 0;
    for (size_t i = 0; i < rq->n_pc; i++)
        a->echo_only &= agora__dimse_abstract_kind(rq->pc[i].abstract_syntax) ==
                        AGORA__ABSTRACT_VERIFICATION;
    int limit = a->ops.admit(a->ops.ctx);
    if (limit != 0) {
        reject(a, AGORA__RJ_TRANSIENT, AGORA__RJ_SRC_PRESENTATION, (uint8_t)limit,
               limit == AGORA__RJ_PRES_LOCAL_LIMIT
                   ? "rejected (transient): local limit exceeded (too many associations)"
                   : "rejected (transient): temporary congestion (spool above its watermark)");
        goto done;
    }
    memset(ac, 0, sizeof *ac);
    agora__strlcpy(ac->called_ae, rq->called_ae, sizeof ac->called_ae);
    agora__strlcpy(ac->calling_ae, rq->calling_ae, sizeof ac->calling_ae);
    ac->max_pdu = a->cfg.max_pdu;
    ac->impl_class_uid = IMPL_CLASS_UID;
    ac->impl_version = IMPL_VERSION;
    ac->n_pc = rq->n_pc;
    for (size_t i = 0; i < rq->n_pc; i++) {
        const agora__pdu_pc *pc = &rq->pc[i];
        agora__pdu_pc_result *r = &ac->pc[i];
        r->id = pc->id;
        int kind = agora__dimse_abstract_kind(pc->abstract_syntax);
        if (kind == AGORA__ABSTRACT_UNSUPPORTED) {
            r->result = AGORA__PC_ABSTRACT_UNSUPPORTED;
            continue;
        }
        /* The peer's order is its preference; the first syntax we accept wins, so a file is
         * normally received in the syntax it was stored in, bytes unchanged. */
        r->result = AGORA__PC_TS_UNSUPPORTED;
        for (size_t t = 0; t < pc->n_ts; t++) {
            if (agora__dimse_ts_accepted(kind, pc->ts[t])) {
                r->result = AGORA__PC_ACCEPT;
                agora__strlcpy(r->ts, pc->ts[t], sizeof r->ts);
                accepted *acc = &a->pc[pc->id];
                acc->kind = (uint8_t)kind;
                agora__strlcpy(acc->abstract_syntax, pc->abstract_syntax,
                               sizeof acc->abstract_syntax);
                agora__strlcpy(acc->ts, pc->ts[t], sizeof acc->ts);
                break;
            }
        }
    }
    a->peer_max = rq->max_pdu;
    size_t n = agora__pdu_encode_assoc_ac(ac, out, AGORA__PDU_ASSOCIATE_MAX);
    if (n == 0) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, 0, "A-ASSOCIATE-AC does not fit");
        goto done;
    }
    a->state = AGORA__ASSOC_ESTABLISHED;
    send_bytes(a, out, n);
done:
    free(rq);
    free(ac);
    free(out);
}

/* Send a command set as P-DATA-TF, fragmented to the peer's maximum PDU length. */
static void send_command(agora__assoc *a, uint8_t pc_id, const agora__dimse_cmd *cmd)
{
    uint8_t set[512], pdu[512 + 12];
    size_t n = agora__dimse_cmd_encode(cmd, set, sizeof set);
    if (n == 0) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, 0, "response command does not fit");
        return;
    }
    /* peer_max bounds the P-DATA-TF body: 4 (PDV length) + 2 (id, control) + data. */
    size_t frag = n;
    if (a->peer_max != 0 && a->peer_max < n + 6)
        frag = a->peer_max > 7 ? a->peer_max - 6 : 1;
    for (size_t off = 0; off < n && a->state != AGORA__ASSOC_CLOSED; off += frag) {
        size_t k = n - off < frag ? n - off : frag;
        uint8_t control = AGORA__PDV_COMMAND | (off + k == n ? AGORA__PDV_LAST : 0);
        send_bytes(a, pdu, agora__pdu_encode_pdata(pc_id, control, set + off, k, pdu, sizeof pdu));
    }
}

static void respond(agora__assoc *a, uint16_t field, uint16_t status)
{
    agora__dimse_cmd r;
    memset(&r, 0, sizeof r);
    r.field = field;
    r.message_rsp = a->cur.message_id;
    r.data_set = AGORA__DIMSE_NO_DATA_SET;
    r.status = status;
    r.has = AGORA__CMD_HAS_MESSAGE_RSP | AGORA__CMD_HAS_STATUS | AGORA__CMD_HAS_SOP_CLASS;
    agora__strlcpy(r.sop_class, a->cur.sop_class, sizeof r.sop_class);
    if (field == AGORA__DIMSE_C_ECHO_RSP && !(a->cur.has & AGORA__CMD_HAS_SOP_CLASS))
        agora__strlcpy(r.sop_class, AGORA__UID_VERIFICATION, sizeof r.sop_class);
    if (a->cur.has & AGORA__CMD_HAS_SOP_INSTANCE) {
        r.has |= AGORA__CMD_HAS_SOP_INSTANCE;
        agora__strlcpy(r.sop_instance, a->cur.sop_instance, sizeof r.sop_instance);
    }
    send_command(a, a->msg_pc, &r);
}

static void end_message(agora__assoc *a)
{
    a->msg_pc = 0;
    a->cmd_len = 0;
    a->cmd_done = 0;
    a->in_store = 0;
    a->store = NULL;
    a->refused = 0;
}

static void on_command(agora__assoc *a)
{
    agora__error err = {0};
    agora__dimse_cmd *c = &a->cur;
    if (agora__dimse_cmd_parse(a->cmd, a->cmd_len, c, &err) != 0) {
        char why[160];
        snprintf(why, sizeof why, "malformed command set: %.110s", err.msg);
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM, why);
        return;
    }
    a->cmd_done = 1;
    const accepted *acc = &a->pc[a->msg_pc];
    if (c->field == AGORA__DIMSE_C_ECHO_RQ && (c->has & AGORA__CMD_HAS_MESSAGE_ID) &&
        c->data_set == AGORA__DIMSE_NO_DATA_SET) {
        respond(a, AGORA__DIMSE_C_ECHO_RSP, AGORA__DIMSE_SUCCESS);
        end_message(a);
        return;
    }
    unsigned need =
        AGORA__CMD_HAS_MESSAGE_ID | AGORA__CMD_HAS_SOP_CLASS | AGORA__CMD_HAS_SOP_INSTANCE;
    if (c->field == AGORA__DIMSE_C_STORE_RQ && (c->has & need) == need &&
        c->data_set != AGORA__DIMSE_NO_DATA_SET) {
        a->in_store = 1;
        if (acc->kind != AGORA__ABSTRACT_STORAGE ||
            strcmp(acc->abstract_syntax, c->sop_class) != 0) {
            /* The command names another class than its context was negotiated for. */
            a->refused = AGORA__DIMSE_SOP_CLASS_UNSUPPORTED;
            return;
        }
        agora__store_info info = {a->calling, a->called, c->sop_class, c->sop_instance, acc->ts};
        void *h = NULL;
        uint16_t st = a->ops.store_begin(a->ops.ctx, &info, &h);
        if (st != AGORA__DIMSE_SUCCESS)
            a->refused = st;
        a->store = st == AGORA__DIMSE_SUCCESS ? h : NULL;
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "unsupported or incomplete DIMSE command 0x%04x", c->field);
    abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNRECOGNIZED_PARAM, why);
}

static void on_pdv(agora__assoc *a, const agora__pdu_pdv *v)
{
    if (a->pc[v->pc_id].kind == 0) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM,
                   "PDV on a presentation context that was not accepted");
        return;
    }
    if (a->msg_pc != 0 && a->msg_pc != v->pc_id) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNEXPECTED_PARAM,
                   "PDV of another presentation context inside a message");
        return;
    }
    a->msg_pc = v->pc_id;
    int last = (v->control & AGORA__PDV_LAST) != 0;
    if (v->control & AGORA__PDV_COMMAND) {
        if (a->cmd_done) {
            abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNEXPECTED_PARAM,
                       "command fragment after a complete command set");
            return;
        }
        if (v->len > sizeof a->cmd - a->cmd_len) {
            abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM,
                       "command set larger than its bound");
            return;
        }
        memcpy(a->cmd + a->cmd_len, v->data, v->len);
        a->cmd_len += v->len;
        if (last)
            on_command(a);
        return;
    }
    if (!a->cmd_done || !a->in_store) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNEXPECTED_PARAM,
                   "data set fragment without a C-STORE command");
        return;
    }
    if (a->store != NULL && v->len > 0 &&
        a->ops.store_data(a->ops.ctx, a->store, v->data, v->len) != 0) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, 0, "the spool refused the data set");
        return;
    }
    if (!last)
        return;
    uint16_t status = a->refused;
    if (status == 0 && a->store != NULL) {
        void *h = a->store;
        a->store = NULL;
        a->in_store = 0;
        status = a->ops.store_end(a->ops.ctx, h, 1);
    }
    respond(a, AGORA__DIMSE_C_STORE_RSP, status);
    end_message(a);
}

static void on_pdata(agora__assoc *a, const uint8_t *body, size_t len)
{
    size_t off = 0;
    agora__pdu_pdv v;
    agora__error err = {0};
    int rc;
    int n = 0;
    while (a->state == AGORA__ASSOC_ESTABLISHED &&
           (rc = agora__pdu_next_pdv(body, len, &off, &v, &err)) == 1) {
        n++;
        on_pdv(a, &v);
    }
    if (a->state != AGORA__ASSOC_ESTABLISHED)
        return;
    if (rc < 0 || n == 0)
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM,
                   rc < 0 ? "malformed P-DATA-TF" : "P-DATA-TF without a PDV");
}

static void on_pdu(agora__assoc *a, uint8_t type, const uint8_t *body, size_t len)
{
    a->pdus++;
    agora__error err = {0};
    if (a->state == AGORA__ASSOC_AWAIT_RQ) {
        if (type == AGORA__PDU_ASSOCIATE_RQ)
            on_assoc_rq(a, body, len);
        else if (type == AGORA__PDU_ABORT)
            a->state = AGORA__ASSOC_CLOSED;
        else
            abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNEXPECTED_PDU,
                       "a PDU other than A-ASSOCIATE-RQ before the association");
        return;
    }
    switch (type) {
    case AGORA__PDU_P_DATA_TF:
        on_pdata(a, body, len);
        return;
    case AGORA__PDU_RELEASE_RQ: {
        if (agora__pdu_parse_short(type, body, len, NULL, NULL, NULL, &err) != 0) {
            abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM,
                       "malformed A-RELEASE-RQ");
            return;
        }
        drop_store(a);
        uint8_t pdu[10];
        send_bytes(a, pdu, agora__pdu_encode_release(AGORA__PDU_RELEASE_RP, pdu, sizeof pdu));
        a->state = AGORA__ASSOC_CLOSED;
        return;
    }
    case AGORA__PDU_ABORT:
        agora__strlcpy(a->end_reason, "aborted by the peer", sizeof a->end_reason);
        drop_store(a);
        a->state = AGORA__ASSOC_CLOSED;
        return;
    default:
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNEXPECTED_PDU,
                   "unexpected PDU inside an association");
        return;
    }
}

/* The largest body a PDU of this type may have in this state; 0: refuse the type. */
static size_t body_limit(const agora__assoc *a, uint8_t type)
{
    switch (type) {
    case AGORA__PDU_ASSOCIATE_RQ:
        return AGORA__PDU_ASSOCIATE_MAX;
    case AGORA__PDU_P_DATA_TF:
        return a->cfg.max_pdu;
    case AGORA__PDU_ASSOCIATE_AC:
    case AGORA__PDU_ASSOCIATE_RJ:
    case AGORA__PDU_RELEASE_RQ:
    case AGORA__PDU_RELEASE_RP:
    case AGORA__PDU_ABORT:
        return 4; /* AC/RJ/RP are refused in on_pdu as unexpected; read them first */
    default:
        return 0;
    }
}

/* Header complete: check the type and length before any body byte is buffered. */
static int start_body(agora__assoc *a)
{
    uint32_t len;
    agora__pdu_header(a->hdr, &a->body_type, &len);
    size_t lim = body_limit(a, a->body_type);
    if (lim == 0) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNRECOGNIZED_PDU,
                   "unrecognized PDU type");
        return -1;
    }
    if (a->body_type == AGORA__PDU_ASSOCIATE_AC || a->body_type == AGORA__PDU_ASSOCIATE_RJ ||
        a->body_type == AGORA__PDU_RELEASE_RP) {
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_UNEXPECTED_PDU,
                   "a PDU an acceptor never receives");
        return -1;
    }
    if (len > lim) {
        char why[128];
        snprintf(why, sizeof why, "PDU of type 0x%02x is %u bytes, over its limit of %zu",
                 a->body_type, len, lim);
        abort_with(a, AGORA__ABORT_SRC_PROVIDER, AGORA__ABORT_INVALID_PARAM, why);
        return -1;
    }
    a->body_len = len;
    a->body_have = 0;
    return 0;
}

/* Move input into dst[*have..want) as far as it goes. */
static void take(uint8_t *dst, size_t *have, size_t want, const uint8_t **p, size_t *n)
{
    size_t k = want - *have < *n ? want - *have : *n;
    memcpy(dst + *have, *p, k);
    *have += k;
    *p += k;
    *n -= k;
}

agora__assoc_state agora__assoc_feed(agora__assoc *a, const uint8_t *p, size_t n)
{
    while (n > 0 && a->state != AGORA__ASSOC_CLOSED) {
        if (a->hdr_have < AGORA__PDU_HEADER_LEN) {
            take(a->hdr, &a->hdr_have, AGORA__PDU_HEADER_LEN, &p, &n);
            if (a->hdr_have < AGORA__PDU_HEADER_LEN || start_body(a) != 0)
                continue;
        }
        const uint8_t *body;
        if (a->body_have == 0 && n >= a->body_len) {
            /* The whole body is in this read: use it in place. */
            body = p;
            p += a->body_len;
            n -= a->body_len;
        } else {
            if (a->body_cap < a->body_len) {
                uint8_t *nb = realloc(a->body, a->body_len);
                if (nb == NULL) {
                    abort_with(a, AGORA__ABORT_SRC_PROVIDER, 0, "out of memory for a PDU");
                    break;
                }
                a->body = nb;
                a->body_cap = a->body_len;
            }
            take(a->body, &a->body_have, a->body_len, &p, &n);
            if (a->body_have < a->body_len)
                break;
            body = a->body;
        }
        a->hdr_have = 0;
        a->body_have = 0;
        on_pdu(a, a->body_type, body, a->body_len);
    }
    return a->state;
}
