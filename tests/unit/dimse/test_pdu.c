/* Unit tests for host/dimse/pdu.c and command.c: round trips and the bounds of the parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "command.h"
#include "common.h"
#include "pdu.h"

static agora__pdu_assoc_rq *make_rq(size_t n_pc)
{
    agora__pdu_assoc_rq *rq = calloc(1, sizeof *rq);
    assert_non_null(rq);
    strcpy(rq->called_ae, "AGORA");
    strcpy(rq->calling_ae, "MODALITY");
    rq->max_pdu = 16384;
    strcpy(rq->impl_class_uid, "1.2.3.4");
    strcpy(rq->impl_version, "TEST_1");
    rq->n_pc = n_pc;
    for (size_t i = 0; i < n_pc; i++) {
        rq->pc[i].id = (uint8_t)(2 * i + 1);
        strcpy(rq->pc[i].abstract_syntax, "1.2.840.10008.5.1.4.1.1.2");
        rq->pc[i].n_ts = 2;
        strcpy(rq->pc[i].ts[0], "1.2.840.10008.1.2.1");
        strcpy(rq->pc[i].ts[1], "1.2.840.10008.1.2");
    }
    return rq;
}

static size_t encode(const agora__pdu_assoc_rq *rq, uint8_t *buf, size_t cap)
{
    size_t n = agora__pdu_encode_assoc_rq(rq, buf, cap);
    assert_true(n > AGORA__PDU_HEADER_LEN);
    uint8_t type;
    uint32_t len;
    agora__pdu_header(buf, &type, &len);
    assert_int_equal(type, AGORA__PDU_ASSOCIATE_RQ);
    assert_int_equal(len, n - AGORA__PDU_HEADER_LEN);
    return n;
}

static int parse(const uint8_t *buf, size_t n, agora__pdu_assoc_rq *out)
{
    agora__error err = {0};
    return agora__pdu_parse_assoc_rq(buf + 6, n - 6, out, &err);
}

static void rq_round_trip(void **state)
{
    (void)state;
    agora__pdu_assoc_rq *rq = make_rq(3), *back = calloc(1, sizeof *back);
    uint8_t buf[8192];
    size_t n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), 0);
    assert_string_equal(back->called_ae, "AGORA");
    assert_string_equal(back->calling_ae, "MODALITY");
    assert_string_equal(back->app_context, AGORA__UID_APPLICATION_CONTEXT);
    assert_int_equal(back->n_pc, 3);
    assert_int_equal(back->pc[2].id, 5);
    assert_int_equal(back->pc[2].n_ts, 2);
    assert_string_equal(back->pc[1].ts[1], "1.2.840.10008.1.2");
    assert_int_equal(back->max_pdu, 16384);
    assert_string_equal(back->impl_class_uid, "1.2.3.4");
    assert_string_equal(back->impl_version, "TEST_1");
    /* Too small a buffer: 0, never a partial PDU. */
    assert_int_equal(agora__pdu_encode_assoc_rq(rq, buf, 100), 0);
    free(rq);
    free(back);
}

/* Patch the first byte equal to `from` after offset `at` to `to`. */
static void rq_rejects(void **state)
{
    (void)state;
    agora__pdu_assoc_rq *rq = make_rq(2), *back = calloc(1, sizeof *back);
    uint8_t buf[8192], bad[8192];
    size_t n = encode(rq, buf, sizeof buf);
    /* Shorter than the fixed part. */
    assert_int_equal(parse(buf, 60, back), AGORA_EINVAL);
    /* Every truncation is read within its bounds (ASan watches); those that cut an item
     * fail (a cut exactly between items is a valid, shorter PDU). */
    int refused = 0;
    for (size_t k = 6 + 68; k < n; k++) {
        memcpy(bad, buf, k);
        refused += parse(bad, k, back) != 0;
    }
    assert_true(refused >= (int)(n - 6 - 68) - 3);
    /* Application context item claiming more bytes than the PDU. */
    memcpy(bad, buf, n);
    bad[6 + 68 + 2] = 0xFF;
    assert_int_equal(parse(bad, n, back), AGORA_EINVAL);
    /* Calling AE with a control byte. */
    memcpy(bad, buf, n);
    bad[6 + 20] = 0x07;
    assert_int_equal(parse(bad, n, back), AGORA_EINVAL);
    /* Empty called AE. */
    memcpy(bad, buf, n);
    memset(bad + 6 + 4, ' ', 16);
    assert_int_equal(parse(bad, n, back), AGORA_EINVAL);
    /* Even and duplicate context ids; bad UIDs. */
    rq->pc[1].id = 4;
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), AGORA_EINVAL);
    rq->pc[1].id = 1;
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), AGORA_EINVAL);
    rq->pc[1].id = 3;
    strcpy(rq->pc[1].abstract_syntax, "1.2..3");
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), AGORA_EINVAL);
    strcpy(rq->pc[1].abstract_syntax, "1.2.A");
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), AGORA_EINVAL);
    strcpy(rq->pc[1].abstract_syntax, "1.2.3");
    /* A context without a transfer syntax. */
    rq->pc[1].n_ts = 0;
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), AGORA_EINVAL);
    /* No context at all. */
    rq->n_pc = 0;
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), AGORA_EINVAL);
    free(rq);
    free(back);
}

static void rq_bounds(void **state)
{
    (void)state;
    /* 128 contexts fit; a 129th (odd ids run out at 255, so a repeated one) is refused. */
    agora__pdu_assoc_rq *rq = make_rq(128), *back = calloc(1, sizeof *back);
    static uint8_t buf[AGORA__PDU_ASSOCIATE_MAX];
    size_t n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), 0);
    assert_int_equal(back->n_pc, 128);
    /* More transfer syntaxes than kept: the first AGORA__PDU_MAX_TS are kept. */
    rq->n_pc = 1;
    rq->pc[0].n_ts = AGORA__PDU_MAX_TS;
    for (int i = 0; i < AGORA__PDU_MAX_TS; i++)
        snprintf(rq->pc[0].ts[i], sizeof rq->pc[0].ts[i], "1.2.%d", i + 1);
    n = encode(rq, buf, sizeof buf);
    assert_int_equal(parse(buf, n, back), 0);
    assert_int_equal(back->pc[0].n_ts, AGORA__PDU_MAX_TS);
    /* Over AGORA__PDU_ASSOCIATE_MAX: refused before the items are read. */
    assert_int_equal(parse(buf, AGORA__PDU_ASSOCIATE_MAX + 7, back), AGORA_EINVAL);
    /* A 65-character UID. */
    char uid[70];
    memset(uid, '1', 65);
    uid[65] = 0;
    assert_false(agora__uid_valid(uid, 65));
    assert_true(agora__uid_valid(uid, 64));
    assert_false(agora__uid_valid(".1", 2));
    assert_false(agora__uid_valid("1.", 2));
    assert_false(agora__uid_valid("", 0));
    free(rq);
    free(back);
}

static void ac_and_short_pdus(void **state)
{
    (void)state;
    agora__pdu_assoc_ac *ac = calloc(1, sizeof *ac), *back = calloc(1, sizeof *back);
    strcpy(ac->called_ae, "AGORA");
    strcpy(ac->calling_ae, "M");
    ac->max_pdu = 65536;
    ac->n_pc = 2;
    ac->pc[0].id = 1;
    ac->pc[0].result = AGORA__PC_ACCEPT;
    strcpy(ac->pc[0].ts, "1.2.840.10008.1.2.1");
    ac->pc[1].id = 3;
    ac->pc[1].result = AGORA__PC_ABSTRACT_UNSUPPORTED;
    uint8_t buf[4096];
    size_t n = agora__pdu_encode_assoc_ac(ac, buf, sizeof buf);
    assert_true(n > 0);
    agora__error err = {0};
    assert_int_equal(agora__pdu_parse_assoc_ac(buf + 6, n - 6, back, &err), 0);
    assert_int_equal(back->n_pc, 2);
    assert_int_equal(back->max_pdu, 65536);
    assert_string_equal(back->pc[0].ts, "1.2.840.10008.1.2.1");
    assert_int_equal(back->pc[1].result, AGORA__PC_ABSTRACT_UNSUPPORTED);

    uint8_t rj[10];
    assert_int_equal(agora__pdu_encode_assoc_rj(2, 3, 2, rj, sizeof rj), 10);
    const uint8_t want_rj[10] = {3, 0, 0, 0, 0, 4, 0, 2, 3, 2};
    assert_memory_equal(rj, want_rj, 10);
    assert_int_equal(agora__pdu_encode_abort(2, 6, rj, sizeof rj), 10);
    const uint8_t want_ab[10] = {7, 0, 0, 0, 0, 4, 0, 0, 2, 6};
    assert_memory_equal(rj, want_ab, 10);
    uint8_t a, b, c;
    assert_int_equal(agora__pdu_parse_short(7, rj + 6, 4, &a, &b, &c, &err), 0);
    assert_int_equal(b, 2);
    assert_int_equal(c, 6);
    assert_int_equal(agora__pdu_parse_short(5, rj + 6, 5, NULL, NULL, NULL, &err), AGORA_EINVAL);
    assert_int_equal(agora__pdu_encode_release(AGORA__PDU_RELEASE_RP, rj, 9), 0);
    free(ac);
    free(back);
}

static void pdv_items(void **state)
{
    (void)state;
    uint8_t a[64], b[64], body[128];
    size_t na = agora__pdu_encode_pdata(1, 3, (const uint8_t *)"abc", 3, a, sizeof a);
    size_t nb = agora__pdu_encode_pdata(3, 0, (const uint8_t *)"de", 2, b, sizeof b);
    memcpy(body, a + 6, na - 6);
    memcpy(body + na - 6, b + 6, nb - 6);
    size_t len = na - 6 + nb - 6, off = 0;
    agora__pdu_pdv v;
    agora__error err = {0};
    assert_int_equal(agora__pdu_next_pdv(body, len, &off, &v, &err), 1);
    assert_int_equal(v.pc_id, 1);
    assert_int_equal(v.control, 3);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "abc", 3);
    assert_int_equal(agora__pdu_next_pdv(body, len, &off, &v, &err), 1);
    assert_int_equal(v.pc_id, 3);
    assert_int_equal(v.len, 2);
    assert_int_equal(agora__pdu_next_pdv(body, len, &off, &v, &err), 0);
    /* An item longer than the body, one shorter than its 2-byte header, a truncated one. */
    off = 0;
    body[3] = 200;
    assert_int_equal(agora__pdu_next_pdv(body, len, &off, &v, &err), AGORA_EINVAL);
    body[3] = 1;
    off = 0;
    assert_int_equal(agora__pdu_next_pdv(body, len, &off, &v, &err), AGORA_EINVAL);
    off = 0;
    assert_int_equal(agora__pdu_next_pdv(body, 3, &off, &v, &err), AGORA_EINVAL);
}

static void command_sets(void **state)
{
    (void)state;
    agora__dimse_cmd c, back;
    memset(&c, 0, sizeof c);
    c.field = AGORA__DIMSE_C_STORE_RQ;
    c.message_id = 7;
    c.data_set = 0x0000;
    c.has = AGORA__CMD_HAS_MESSAGE_ID | AGORA__CMD_HAS_SOP_CLASS | AGORA__CMD_HAS_SOP_INSTANCE;
    strcpy(c.sop_class, "1.2.840.10008.5.1.4.1.1.2");
    strcpy(c.sop_instance, "1.2.3.45"); /* odd length: padded with a NUL */
    uint8_t buf[512];
    size_t n = agora__dimse_cmd_encode(&c, buf, sizeof buf);
    assert_true(n > 12);
    agora__error err = {0};
    assert_int_equal(agora__dimse_cmd_parse(buf, n, &back, &err), 0);
    assert_int_equal(back.field, AGORA__DIMSE_C_STORE_RQ);
    assert_int_equal(back.message_id, 7);
    assert_string_equal(back.sop_instance, "1.2.3.45");
    assert_string_equal(back.sop_class, "1.2.840.10008.5.1.4.1.1.2");
    assert_true(back.has & AGORA__CMD_HAS_DATA_SET);
    /* Truncated anywhere: refused. */
    for (size_t k = 1; k < n; k++)
        if (k % 2 == 1 || k < 20)
            assert_int_not_equal(agora__dimse_cmd_parse(buf, k, &back, &err), 0);
    /* An element of another group. */
    uint8_t bad[512];
    memcpy(bad, buf, n);
    bad[0] = 8;
    assert_int_equal(agora__dimse_cmd_parse(bad, n, &back, &err), AGORA_EINVAL);
    /* A US element of 4 bytes. */
    const uint8_t us4[] = {0, 0, 0, 1, 4, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(agora__dimse_cmd_parse(us4, sizeof us4, &back, &err), AGORA_EINVAL);
    /* Only a command field: no data set type. */
    const uint8_t only[] = {0, 0, 0, 1, 2, 0, 0, 0, 0x30, 0};
    assert_int_equal(agora__dimse_cmd_parse(only, sizeof only, &back, &err), AGORA_EINVAL);
    /* 65 empty unknown elements: over the element bound. */
    uint8_t many[65 * 8];
    for (int i = 0; i < 65; i++) {
        const uint8_t e[8] = {0, 0, (uint8_t)(0x10 + i), 0x50, 0, 0, 0, 0};
        memcpy(many + 8 * i, e, 8);
    }
    assert_int_equal(agora__dimse_cmd_parse(many, sizeof many, &back, &err), AGORA_EINVAL);
    /* Over the byte bound. */
    assert_int_equal(agora__dimse_cmd_parse(many, AGORA__DIMSE_CMD_MAX + 1, &back, &err),
                     AGORA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rq_round_trip), cmocka_unit_test(rq_rejects),
        cmocka_unit_test(rq_bounds),     cmocka_unit_test(ac_and_short_pdus),
        cmocka_unit_test(pdv_items),     cmocka_unit_test(command_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
