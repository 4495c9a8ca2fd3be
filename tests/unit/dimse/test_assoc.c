/* Unit tests for host/dimse/assoc.c: the SCP association state machine, driven by bytes as a
 * socket would deliver them, with a fake spool behind its callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "assoc.h"
#include "command.h"
#include "common.h"
#include "pdu.h"

#define CT       "1.2.840.10008.5.1.4.1.1.2"
#define EXPLICIT "1.2.840.10008.1.2.1"
#define IMPLICIT "1.2.840.10008.1.2"

typedef struct fake {
    uint8_t out[1 << 16]; /* what the machine sent */
    size_t out_len;
    int admit; /* returned by admit */
    int begun, ended_ok, ended_dropped;
    uint16_t end_status;
    char sop_instance[65], ts[65], calling[17];
    uint8_t data[4096];
    size_t data_len;
    int handle;
} fake;

static int f_send(void *ctx, const uint8_t *p, size_t n)
{
    fake *f = ctx;
    assert_true(n <= sizeof f->out - f->out_len);
    memcpy(f->out + f->out_len, p, n);
    f->out_len += n;
    return 0;
}

static int f_admit(void *ctx)
{
    return ((fake *)ctx)->admit;
}

static uint16_t f_begin(void *ctx, const agora__store_info *info, void **h)
{
    fake *f = ctx;
    f->begun++;
    strcpy(f->sop_instance, info->sop_instance);
    strcpy(f->ts, info->transfer_syntax);
    strcpy(f->calling, info->calling_ae);
    *h = &f->handle;
    return 0;
}

static int f_data(void *ctx, void *h, const uint8_t *p, size_t n)
{
    fake *f = ctx;
    assert_ptr_equal(h, &f->handle);
    memcpy(f->data + f->data_len, p, n);
    f->data_len += n;
    return 0;
}

static uint16_t f_end(void *ctx, void *h, int complete)
{
    fake *f = ctx;
    assert_ptr_equal(h, &f->handle);
    if (complete)
        f->ended_ok++;
    else
        f->ended_dropped++;
    return f->end_status;
}

static const char *const allow[] = {"MODALITY", "PACS"};

static agora__assoc *new_assoc(fake *f, uint32_t max_pdu)
{
    memset(f, 0, sizeof *f);
    agora__assoc_config cfg = {"AGORA", allow, 2, max_pdu};
    agora__assoc_ops ops = {f, f_send, f_admit, f_begin, f_data, f_end};
    agora__assoc *a = agora__assoc_new(&cfg, &ops);
    assert_non_null(a);
    return a;
}

/* Feed bytes one at a time: TCP may split anywhere. */
static agora__assoc_state feed_bytewise(agora__assoc *a, const uint8_t *p, size_t n)
{
    agora__assoc_state st = agora__assoc_state_of(a);
    for (size_t i = 0; i < n; i++)
        st = agora__assoc_feed(a, p + i, 1);
    return st;
}

static size_t rq_bytes(uint8_t *buf, size_t cap, const char *called, const char *calling,
                       uint32_t max_pdu)
{
    agora__pdu_assoc_rq *rq = calloc(1, sizeof *rq);
    strcpy(rq->called_ae, called);
    strcpy(rq->calling_ae, calling);
    rq->max_pdu = max_pdu;
    rq->n_pc = 4;
    rq->pc[0].id = 1; /* Verification */
    strcpy(rq->pc[0].abstract_syntax, AGORA__UID_VERIFICATION);
    rq->pc[0].n_ts = 1;
    strcpy(rq->pc[0].ts[0], IMPLICIT);
    rq->pc[1].id = 3; /* CT: an unknown syntax first, then explicit */
    strcpy(rq->pc[1].abstract_syntax, CT);
    rq->pc[1].n_ts = 2;
    strcpy(rq->pc[1].ts[0], "1.2.3.4.5");
    strcpy(rq->pc[1].ts[1], EXPLICIT);
    rq->pc[2].id = 5; /* not a storage class we take */
    strcpy(rq->pc[2].abstract_syntax, "1.2.840.10008.5.1.4.1.2.1.1");
    rq->pc[2].n_ts = 1;
    strcpy(rq->pc[2].ts[0], IMPLICIT);
    rq->pc[3].id = 7; /* CT in a syntax nobody decodes */
    strcpy(rq->pc[3].abstract_syntax, CT);
    rq->pc[3].n_ts = 1;
    strcpy(rq->pc[3].ts[0], "1.2.840.10008.1.2.4.100");
    size_t n = agora__pdu_encode_assoc_rq(rq, buf, cap);
    free(rq);
    assert_true(n > 0);
    return n;
}

/* The PDUs the machine sent, one after another. */
static const uint8_t *next_pdu(fake *f, size_t *off, uint8_t *type, uint32_t *len)
{
    assert_true(f->out_len - *off >= 6);
    agora__pdu_header(f->out + *off, type, len);
    const uint8_t *body = f->out + *off + 6;
    *off += 6 + *len;
    assert_true(*off <= f->out_len);
    return body;
}

static agora__assoc *established(fake *f, uint32_t peer_max)
{
    agora__assoc *a = new_assoc(f, 16384);
    uint8_t rq[4096];
    size_t n = rq_bytes(rq, sizeof rq, "AGORA", "MODALITY", peer_max);
    assert_int_equal(feed_bytewise(a, rq, n), AGORA__ASSOC_ESTABLISHED);
    return a;
}

static void negotiation(void **state)
{
    (void)state;
    fake f;
    agora__assoc *a = established(&f, 0);
    size_t off = 0;
    uint8_t type;
    uint32_t len;
    const uint8_t *body = next_pdu(&f, &off, &type, &len);
    assert_int_equal(type, AGORA__PDU_ASSOCIATE_AC);
    agora__pdu_assoc_ac *ac = calloc(1, sizeof *ac);
    agora__error err = {0};
    assert_int_equal(agora__pdu_parse_assoc_ac(body, len, ac, &err), 0);
    assert_int_equal(ac->max_pdu, 16384);
    assert_int_equal(ac->n_pc, 4);
    assert_int_equal(ac->pc[0].result, AGORA__PC_ACCEPT);
    assert_string_equal(ac->pc[0].ts, IMPLICIT);
    assert_int_equal(ac->pc[1].result, AGORA__PC_ACCEPT);
    assert_string_equal(ac->pc[1].ts, EXPLICIT);
    assert_int_equal(ac->pc[2].result, AGORA__PC_ABSTRACT_UNSUPPORTED);
    assert_int_equal(ac->pc[3].result, AGORA__PC_TS_UNSUPPORTED);
    assert_string_equal(agora__assoc_calling_ae(a), "MODALITY");
    free(ac);
    agora__assoc_free(a);
}

static void rejections(void **state)
{
    (void)state;
    struct {
        const char *called, *calling;
        int admit;
        uint8_t result, source, reason;
    } cases[] = {
        {"OTHER", "MODALITY", 0, 1, 1, 7},
        {"AGORA", "INTRUDER", 0, 1, 1, 3},
        {"AGORA", "PACS", AGORA__RJ_PRES_LOCAL_LIMIT, 2, 3, 2},
        {"AGORA", "PACS", AGORA__RJ_PRES_CONGESTION, 2, 3, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake f;
        agora__assoc *a = new_assoc(&f, 16384);
        f.admit = cases[i].admit;
        uint8_t rq[4096];
        size_t n = rq_bytes(rq, sizeof rq, cases[i].called, cases[i].calling, 0);
        assert_int_equal(agora__assoc_feed(a, rq, n), AGORA__ASSOC_CLOSED);
        const uint8_t want[10] = {
            3, 0, 0, 0, 0, 4, 0, cases[i].result, cases[i].source, cases[i].reason};
        assert_int_equal(f.out_len, 10);
        assert_memory_equal(f.out, want, 10);
        assert_true(agora__assoc_end_reason(a)[0] != 0);
        /* Later input is ignored. */
        assert_int_equal(agora__assoc_feed(a, rq, n), AGORA__ASSOC_CLOSED);
        assert_int_equal(f.out_len, 10);
        agora__assoc_free(a);
    }
}

static size_t command_pdu(uint8_t *out, size_t cap, uint8_t pc, uint16_t field,
                          const char *sop_class, const char *inst)
{
    agora__dimse_cmd c;
    memset(&c, 0, sizeof c);
    c.field = field;
    c.message_id = 9;
    c.data_set = inst ? 0 : AGORA__DIMSE_NO_DATA_SET;
    c.has = AGORA__CMD_HAS_MESSAGE_ID | AGORA__CMD_HAS_SOP_CLASS;
    strcpy(c.sop_class, sop_class);
    if (inst) {
        c.has |= AGORA__CMD_HAS_SOP_INSTANCE;
        strcpy(c.sop_instance, inst);
    }
    uint8_t set[512];
    size_t n = agora__dimse_cmd_encode(&c, set, sizeof set);
    return agora__pdu_encode_pdata(pc, AGORA__PDV_COMMAND | AGORA__PDV_LAST, set, n, out, cap);
}

/* Reassemble the response command set (possibly in several PDUs) and parse it. */
static void read_response(fake *f, size_t *off, agora__dimse_cmd *rsp, int *n_pdus)
{
    uint8_t set[1024];
    size_t have = 0;
    *n_pdus = 0;
    for (;;) {
        uint8_t type;
        uint32_t len;
        const uint8_t *body = next_pdu(f, off, &type, &len);
        assert_int_equal(type, AGORA__PDU_P_DATA_TF);
        (*n_pdus)++;
        size_t o = 0;
        agora__pdu_pdv v;
        agora__error err = {0};
        int last = 0;
        while (agora__pdu_next_pdv(body, len, &o, &v, &err) == 1) {
            assert_true(v.control & AGORA__PDV_COMMAND);
            memcpy(set + have, v.data, v.len);
            have += v.len;
            last = (v.control & AGORA__PDV_LAST) != 0;
        }
        if (last)
            break;
    }
    agora__error err = {0};
    assert_int_equal(agora__dimse_cmd_parse(set, have, rsp, &err), 0);
}

static void echo_and_release(void **state)
{
    (void)state;
    fake f;
    agora__assoc *a = established(&f, 0);
    size_t off = f.out_len;
    uint8_t pdu[1024];
    size_t n =
        command_pdu(pdu, sizeof pdu, 1, AGORA__DIMSE_C_ECHO_RQ, AGORA__UID_VERIFICATION, NULL);
    assert_int_equal(agora__assoc_feed(a, pdu, n), AGORA__ASSOC_ESTABLISHED);
    agora__dimse_cmd rsp;
    int pdus;
    read_response(&f, &off, &rsp, &pdus);
    assert_int_equal(rsp.field, AGORA__DIMSE_C_ECHO_RSP);
    assert_int_equal(rsp.message_rsp, 9);
    assert_int_equal(rsp.status, 0);
    n = agora__pdu_encode_release(AGORA__PDU_RELEASE_RQ, pdu, sizeof pdu);
    assert_int_equal(agora__assoc_feed(a, pdu, n), AGORA__ASSOC_CLOSED);
    uint8_t type;
    uint32_t len;
    next_pdu(&f, &off, &type, &len);
    assert_int_equal(type, AGORA__PDU_RELEASE_RP);
    assert_string_equal(agora__assoc_end_reason(a), "");
    agora__assoc_free(a);
}

static void store(void **state)
{
    (void)state;
    fake f;
    /* A peer that takes PDUs of 64 bytes: the response is fragmented to fit. */
    agora__assoc *a = established(&f, 64);
    f.end_status = 0xB000;
    size_t off = f.out_len;
    uint8_t in[4096];
    size_t n = command_pdu(in, sizeof in, 3, AGORA__DIMSE_C_STORE_RQ, CT, "1.2.3.4.5.6");
    /* Three data fragments in one PDU, then the last one in a second PDU. */
    n += agora__pdu_encode_pdata(3, 0, (const uint8_t *)"abc", 3, in + n, sizeof in - n);
    n += agora__pdu_encode_pdata(3, 0, (const uint8_t *)"defg", 4, in + n, sizeof in - n);
    n +=
        agora__pdu_encode_pdata(3, AGORA__PDV_LAST, (const uint8_t *)"h", 1, in + n, sizeof in - n);
    assert_int_equal(feed_bytewise(a, in, n), AGORA__ASSOC_ESTABLISHED);
    assert_int_equal(f.begun, 1);
    assert_int_equal(f.ended_ok, 1);
    assert_string_equal(f.sop_instance, "1.2.3.4.5.6");
    assert_string_equal(f.ts, EXPLICIT);
    assert_string_equal(f.calling, "MODALITY");
    assert_int_equal(f.data_len, 8);
    assert_memory_equal(f.data, "abcdefgh", 8);
    agora__dimse_cmd rsp;
    int pdus;
    read_response(&f, &off, &rsp, &pdus);
    assert_true(pdus > 1);
    assert_int_equal(rsp.field, AGORA__DIMSE_C_STORE_RSP);
    assert_int_equal(rsp.status, 0xB000); /* what the spool answered */
    assert_string_equal(rsp.sop_instance, "1.2.3.4.5.6");
    /* A store interrupted by the peer's A-ABORT is dropped, not committed. */
    n = command_pdu(in, sizeof in, 3, AGORA__DIMSE_C_STORE_RQ, CT, "1.2.3.4.5.7");
    n += agora__pdu_encode_pdata(3, 0, (const uint8_t *)"abc", 3, in + n, sizeof in - n);
    n += agora__pdu_encode_abort(0, 0, in + n, sizeof in - n);
    assert_int_equal(agora__assoc_feed(a, in, n), AGORA__ASSOC_CLOSED);
    assert_int_equal(f.ended_ok, 1);
    assert_int_equal(f.ended_dropped, 1);
    agora__assoc_free(a);
}

static void store_refused_class(void **state)
{
    (void)state;
    fake f;
    agora__assoc *a = established(&f, 0);
    size_t off = f.out_len;
    uint8_t in[1024];
    /* A C-STORE naming MR on the CT context: refused 0x0122, data set discarded. */
    size_t n = command_pdu(in, sizeof in, 3, AGORA__DIMSE_C_STORE_RQ, "1.2.840.10008.5.1.4.1.1.4",
                           "1.2.3");
    n += agora__pdu_encode_pdata(3, AGORA__PDV_LAST, (const uint8_t *)"xy", 2, in + n,
                                 sizeof in - n);
    assert_int_equal(agora__assoc_feed(a, in, n), AGORA__ASSOC_ESTABLISHED);
    assert_int_equal(f.begun, 0);
    agora__dimse_cmd rsp;
    int pdus;
    read_response(&f, &off, &rsp, &pdus);
    assert_int_equal(rsp.status, AGORA__DIMSE_SOP_CLASS_UNSUPPORTED);
    agora__assoc_free(a);
}

static void expect_abort(agora__assoc *a, fake *f, const uint8_t *p, size_t n)
{
    size_t before = f->out_len;
    assert_int_equal(agora__assoc_feed(a, p, n), AGORA__ASSOC_CLOSED);
    assert_int_equal(f->out_len - before, 10);
    assert_int_equal(f->out[before], AGORA__PDU_ABORT);
    assert_true(agora__assoc_end_reason(a)[0] != 0);
    agora__assoc_free(a);
}

static void aborts(void **state)
{
    (void)state;
    fake f;
    uint8_t p[256];
    /* Oversize P-DATA: refused on its header, before any body byte. */
    const uint8_t big[6] = {4, 0, 0, 0, 0x40, 1}; /* 16385 > 16384 */
    expect_abort(established(&f, 0), &f, big, sizeof big);
    /* Unknown PDU type, before and after association. */
    const uint8_t unk[10] = {0x11, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    expect_abort(new_assoc(&f, 16384), &f, unk, sizeof unk);
    expect_abort(established(&f, 0), &f, unk, sizeof unk);
    /* P-DATA before A-ASSOCIATE-RQ. */
    size_t n = command_pdu(p, sizeof p, 1, AGORA__DIMSE_C_ECHO_RQ, AGORA__UID_VERIFICATION, NULL);
    expect_abort(new_assoc(&f, 16384), &f, p, n);
    /* Data before the command; a PDV on a refused context (5) and an unknown one (9). */
    n = agora__pdu_encode_pdata(3, AGORA__PDV_LAST, (const uint8_t *)"x", 1, p, sizeof p);
    expect_abort(established(&f, 0), &f, p, n);
    n = command_pdu(p, sizeof p, 5, AGORA__DIMSE_C_ECHO_RQ, AGORA__UID_VERIFICATION, NULL);
    expect_abort(established(&f, 0), &f, p, n);
    n = command_pdu(p, sizeof p, 9, AGORA__DIMSE_C_ECHO_RQ, AGORA__UID_VERIFICATION, NULL);
    expect_abort(established(&f, 0), &f, p, n);
    /* An empty P-DATA-TF, and an unsupported command (C-FIND-RQ 0x0020). */
    const uint8_t empty[6] = {4, 0, 0, 0, 0, 0};
    expect_abort(established(&f, 0), &f, empty, sizeof empty);
    n = command_pdu(p, sizeof p, 1, 0x0020, AGORA__UID_VERIFICATION, NULL);
    expect_abort(established(&f, 0), &f, p, n);
    /* A second A-ASSOCIATE-RQ. */
    uint8_t rq[4096];
    n = rq_bytes(rq, sizeof rq, "AGORA", "MODALITY", 0);
    expect_abort(established(&f, 0), &f, rq, n);
    /* Our own abort (a timer) sends A-ABORT once. */
    agora__assoc *a = established(&f, 0);
    size_t before = f.out_len;
    agora__assoc_abort(a, "idle timeout");
    agora__assoc_abort(a, "again");
    assert_int_equal(f.out_len - before, 10);
    assert_string_equal(agora__assoc_end_reason(a), "idle timeout");
    agora__assoc_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(negotiation),         cmocka_unit_test(rejections),
        cmocka_unit_test(echo_and_release),    cmocka_unit_test(store),
        cmocka_unit_test(store_refused_class), cmocka_unit_test(aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
