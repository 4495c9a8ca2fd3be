/* The host's checks of DEID_UIDS, DEID_WRITE and DUMP replies (host/ingest/deid.c) on
 * hand-built replies, as a compromised worker could send them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest_internal.h"

static const char *const issued[] = {"2.25.11", "2.25.22"};

typedef struct fx {
    Agora__Ipc__IngestReply r;
    Agora__Ipc__DeidReply d;
    ProtobufCBinaryData uids[3];
    uint64_t stats[10];
} fx;

static void base(fx *x)
{
    memset(x, 0, sizeof *x);
    agora__ipc__ingest_reply__init(&x->r);
    agora__ipc__deid_reply__init(&x->d);
    x->r.request_id = 1;
    x->r.status = AGORA__IPC__INGEST_STATUS__INGEST_OK;
    x->r.deid = &x->d;
}

static void write_reply(fx *x, const char *sop, uint64_t used)
{
    base(x);
    x->d.sop_instance_uid = (char *)sop;
    x->r.output_used = used;
    x->d.stats = x->stats;
    x->d.n_stats = 10;
    x->stats[4] = 7;
}

static int check_write(fx *x, agora__ingest_deid_written *w)
{
    agora__ingest_deid_check c = {0, NULL, w, issued, 2, 1u << 20};
    agora__error e = {0};
    return agora__ingest_check_deid(&x->r, AGORA__INGEST_REPLY_OK, &c, &e);
}

static void write_ok_and_name_checked(void **state)
{
    (void)state;
    fx x;
    agora__ingest_deid_written w;
    write_reply(&x, "2.25.22", 4096);
    assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_OK);
    assert_string_equal(w.sop, "2.25.22");
    assert_int_equal(w.used, 4096);
    assert_int_equal(w.stats[4], 7);
    /* A name the host did not issue, not digits and dots, empty, or a path. */
    const char *bad[] = {"2.25.33", "2.25.1a", "", "../x", "2.25.11/..", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_reply(&x, bad[i], 4096);
        assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_HOSTILE);
    }
}

static void write_sizes_and_counters(void **state)
{
    (void)state;
    fx x;
    agora__ingest_deid_written w;
    write_reply(&x, "2.25.11", 131); /* shorter than preamble + DICM */
    assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_HOSTILE);
    write_reply(&x, "2.25.11", (1u << 20) + 1); /* past the window */
    assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_HOSTILE);
    write_reply(&x, "2.25.11", 132);
    x.d.n_stats = 9;
    assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_HOSTILE);
    write_reply(&x, "2.25.11", 132);
    x.stats[0] = UINT64_MAX; /* capped, not trusted */
    assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_OK);
    assert_true(w.stats[0] <= (1ull << 40));
    write_reply(&x, "2.25.11", 132);
    x.r.deid = NULL;
    assert_int_equal(check_write(&x, &w), AGORA__INGEST_REPLY_HOSTILE);
}

static int check_uids(fx *x, agora__ingest_deid_uids *u)
{
    agora__ingest_deid_check c = {0, u, NULL, NULL, 0, 0};
    agora__error e = {0};
    return agora__ingest_check_deid(&x->r, AGORA__INGEST_REPLY_OK, &c, &e);
}

static void uids_checked(void **state)
{
    (void)state;
    fx x;
    agora__ingest_deid_uids u;
    base(&x);
    x.uids[0] = (ProtobufCBinaryData){5, (uint8_t *)"1.2.3"};
    x.uids[1] = (ProtobufCBinaryData){3, (uint8_t *)"4.5"};
    x.d.uids = x.uids;
    x.d.n_uids = 2;
    x.d.patient_id = (ProtobufCBinaryData){3, (uint8_t *)"P01"};
    assert_int_equal(check_uids(&x, &u), AGORA__INGEST_REPLY_OK);
    assert_int_equal(u.n, 2);
    assert_string_equal(u.uids[1], "4.5");
    assert_string_equal(u.patient_id, "P01");
    agora__ingest_deid_uids_free(&u);

    const ProtobufCBinaryData bad[] = {
        {0, (uint8_t *)""}, {3, (uint8_t *)"1\\2"}, {3, (uint8_t *)"1\0002"}};
    for (size_t i = 0; i < 3; i++) {
        x.uids[1] = bad[i];
        assert_int_equal(check_uids(&x, &u), AGORA__INGEST_REPLY_HOSTILE);
        agora__ingest_deid_uids_free(&u);
    }
    uint8_t *big = calloc(1, AGORA__INGEST_DEID_UID_MAX + 1);
    memset(big, '1', AGORA__INGEST_DEID_UID_MAX + 1);
    x.uids[1] = (ProtobufCBinaryData){AGORA__INGEST_DEID_UID_MAX + 1, big};
    assert_int_equal(check_uids(&x, &u), AGORA__INGEST_REPLY_HOSTILE);
    agora__ingest_deid_uids_free(&u);
    free(big);
    x.uids[1] = (ProtobufCBinaryData){3, (uint8_t *)"4.5"};
    x.d.n_uids = AGORA__INGEST_DEID_MAX_UIDS + 1; /* count checked before anything is read */
    assert_int_equal(check_uids(&x, &u), AGORA__INGEST_REPLY_HOSTILE);
    x.d.n_uids = 2;
    x.d.patient_id.len = 256;
    assert_int_equal(check_uids(&x, &u), AGORA__INGEST_REPLY_HOSTILE);
}

static void file_errors_keep_flags(void **state)
{
    (void)state;
    fx x;
    base(&x);
    x.d.not_dicom = 1;
    agora__ingest_deid_check c = {0, NULL, NULL, NULL, 0, 0};
    agora__error e = {0};
    assert_int_equal(agora__ingest_check_deid(&x.r, AGORA__INGEST_REPLY_FILE, &c, &e),
                     AGORA__INGEST_REPLY_FILE);
    assert_int_equal(c.why, AGORA__INGEST_DEID_NOT_DICOM);
    x.d.not_dicom = 0;
    x.d.refused = 1;
    c.why = 0;
    assert_int_equal(agora__ingest_check_deid(&x.r, AGORA__INGEST_REPLY_FILE, &c, &e),
                     AGORA__INGEST_REPLY_FILE);
    assert_int_equal(c.why, AGORA__INGEST_DEID_REFUSED);
}

static void dump_sizes(void **state)
{
    (void)state;
    fx x;
    base(&x);
    agora__error e = {0};
    agora__ingest_dump_check c = {1000, 0};
    x.r.output_used = 1000;
    assert_int_equal(agora__ingest_check_dump(&x.r, AGORA__INGEST_REPLY_OK, &c, &e),
                     AGORA__INGEST_REPLY_OK);
    assert_int_equal(c.used, 1000);
    x.r.output_used = 1001;
    assert_int_equal(agora__ingest_check_dump(&x.r, AGORA__INGEST_REPLY_OK, &c, &e),
                     AGORA__INGEST_REPLY_HOSTILE);
    x.r.output_used = 0;
    assert_int_equal(agora__ingest_check_dump(&x.r, AGORA__INGEST_REPLY_OK, &c, &e),
                     AGORA__INGEST_REPLY_HOSTILE);
}

static void frames_decoded_with_a_budget(void **state)
{
    (void)state;
    agora__error e = {0};
    /* 1 MiB of empty repeated IngestElement entries (field 23 of IngestMetadata, itself field
     * 5 of IngestReply, field 11 of Frame) unpacks into far more than its size: refused by the
     * budget only when it would pass 64 MiB; this one fits and must decode. */
    size_t n = 1u << 18;
    uint8_t *b = malloc(3 * n + 64);
    size_t o = 0;
    b[o++] = 0x5A; /* Frame.ingest_reply (11, LEN) */
    size_t hdr = o;
    o += 4;        /* varint lengths patched below (fixed 4 bytes each with continuation bits) */
    b[o++] = 0x2A; /* IngestReply.metadata (5, LEN) */
    size_t hdr2 = o;
    o += 4;
    for (size_t i = 0; i < n; i++) {
        b[o++] = 0xBA; /* IngestMetadata.elements (23, LEN): tag bytes 0xBA 0x01 */
        b[o++] = 0x01;
        b[o++] = 0x00;
    }
    size_t len2 = o - hdr2 - 4, len1 = o - hdr - 4;
    for (int k = 0; k < 4; k++) {
        b[hdr2 + k] = (uint8_t)((len2 >> (7 * k)) & 0x7F) | (k < 3 ? 0x80 : 0);
        b[hdr + k] = (uint8_t)((len1 >> (7 * k)) & 0x7F) | (k < 3 ? 0x80 : 0);
    }
    Agora__Ipc__Frame *f = agora__frame_decode(b, o, AGORA__FRAME_RUNNER_TO_HOST_MAX, &e);
    assert_non_null(f);
    assert_int_equal(f->ingest_reply->metadata->n_elements, n);
    agora__frame_decoded_free(f);
    /* Ten times as many (8 MiB, the frame cap) would take ~150 MiB unpacked: past the budget. */
    free(b);
    n = (AGORA__FRAME_RUNNER_TO_HOST_MAX - 64) / 3;
    b = malloc(3 * n + 64);
    o = 0;
    b[o++] = 0x5A;
    hdr = o;
    o += 4;
    b[o++] = 0x2A;
    hdr2 = o;
    o += 4;
    for (size_t i = 0; i < n; i++) {
        b[o++] = 0xBA;
        b[o++] = 0x01;
        b[o++] = 0x00;
    }
    len2 = o - hdr2 - 4;
    len1 = o - hdr - 4;
    for (int k = 0; k < 4; k++) {
        b[hdr2 + k] = (uint8_t)((len2 >> (7 * k)) & 0x7F) | (k < 3 ? 0x80 : 0);
        b[hdr + k] = (uint8_t)((len1 >> (7 * k)) & 0x7F) | (k < 3 ? 0x80 : 0);
    }
    assert_true(o <= AGORA__FRAME_RUNNER_TO_HOST_MAX);
    f = agora__frame_decode(b, o, AGORA__FRAME_RUNNER_TO_HOST_MAX, &e);
    assert_null(f);
    assert_non_null(strstr(e.msg, "budget"));
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_ok_and_name_checked),
        cmocka_unit_test(write_sizes_and_counters),
        cmocka_unit_test(uids_checked),
        cmocka_unit_test(file_errors_keep_flags),
        cmocka_unit_test(dump_sizes),
        cmocka_unit_test(frames_decoded_with_a_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
