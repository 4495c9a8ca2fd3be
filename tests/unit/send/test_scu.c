/* Unit tests for host/dimse/scu.c (the file meta reader's own tests are dimse-filemeta):
 * the SCU against our own SCP state machine (assoc.c) running in a thread on a loopback port
 * the test opened, so the association request, the fragmentation to the peer's max PDU, the
 * per-file statuses and the contexts a peer does not accept are checked end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "assoc.h"
#include "common.h"
#include "filemeta.h"
#include "loopback.h"
#include "scu.h"

#define CT       "1.2.840.10008.5.1.4.1.1.2"
/* A class the SCP (host/dimse/syntaxes.c) does not accept: Encapsulated PDF. */
#define PDF      "1.2.840.10008.5.1.4.1.1.104.1"
#define EXPLICIT "1.2.840.10008.1.2.1"

/* A Part 10 image in memory: preamble, meta (class, instance, syntax), data set of n bytes. */
static size_t make_file(uint8_t *out, size_t cap, const char *cls, const char *inst, const char *ts,
                        size_t n_data, uint8_t fill)
{
    size_t at = 0;
    memset(out, 0, 128);
    at = 128;
    memcpy(out + at, "DICM", 4);
    at += 4;
    /* (0002,0000) UL group length, filled in below. */
    static const uint8_t gl[8] = {2, 0, 0, 0, 'U', 'L', 4, 0};
    memcpy(out + at, gl, 8);
    size_t gl_at = at + 8;
    at += 12;
    const char *v[3] = {cls, inst, ts};
    const uint16_t el[3] = {0x0002, 0x0003, 0x0010};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(v[i]), pad = n & 1;
        out[at++] = 2;
        out[at++] = 0;
        out[at++] = (uint8_t)el[i];
        out[at++] = 0;
        out[at++] = 'U';
        out[at++] = 'I';
        out[at++] = (uint8_t)(n + pad);
        out[at++] = 0;
        memcpy(out + at, v[i], n);
        at += n;
        if (pad)
            out[at++] = 0;
    }
    uint32_t g = (uint32_t)(at - gl_at - 4);
    for (int i = 0; i < 4; i++)
        out[gl_at + (size_t)i] = (uint8_t)(g >> (8 * i));
    assert_true(at + n_data <= cap);
    /* (0008,0000)-group start so the meta walk ends; then filler. */
    out[at++] = 0x08;
    out[at++] = 0x00;
    for (size_t i = 2; i < n_data; i++)
        out[at++] = (uint8_t)(fill + i);
    return at;
}

static void meta_ok(void **state)
{
    (void)state;
    uint8_t b[1024];
    size_t n = make_file(b, sizeof b, CT, "1.2.3", EXPLICIT, 100, 1);
    agora__filemeta m;
    agora__error err = {0};
    assert_int_equal(agora__filemeta_parse(b, n, &m, &err), 0);
    assert_string_equal(m.sop_class, CT);
    assert_string_equal(m.sop_instance, "1.2.3");
    assert_string_equal(m.ts, EXPLICIT);
    assert_int_equal(m.data_offset, n - 100);
}

/* ---- an SCP in a thread: assoc.c behind a loopback socket ---- */

typedef struct scp {
    int listen_fd, port;
    int fd;
    uint16_t status; /* answered for every C-STORE */
    uint32_t max_pdu;
    int n_stored, n_fragments;
    uint8_t data[4][70000];
    size_t data_len[4];
    int stall_after_ac; /* read and never answer a C-STORE */
    pthread_t th;
} scp;

static int s_send(void *ctx, const uint8_t *p, size_t n)
{
    scp *s = ctx;
    while (n > 0) {
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int s_admit(void *ctx)
{
    (void)ctx;
    return 0;
}

static uint16_t s_begin(void *ctx, const agora__store_info *info, void **h)
{
    scp *s = ctx;
    (void)info;
    *h = &s->data_len[s->n_stored];
    return 0;
}

static int s_data(void *ctx, void *h, const uint8_t *p, size_t n)
{
    scp *s = ctx;
    (void)h;
    s->n_fragments++;
    size_t *len = &s->data_len[s->n_stored];
    if (n > sizeof s->data[0] - *len)
        return -1;
    memcpy(s->data[s->n_stored] + *len, p, n);
    *len += n;
    return 0;
}

static uint16_t s_end(void *ctx, void *h, int complete)
{
    scp *s = ctx;
    (void)h;
    if (complete)
        s->n_stored++;
    return s->status;
}

static void *scp_main(void *arg)
{
    scp *s = arg;
    s->fd = accept(s->listen_fd, NULL, NULL);
    if (s->fd < 0)
        return NULL;
    agora__assoc_config cfg = {"PACS", NULL, 0, s->max_pdu};
    agora__assoc_ops ops = {s, s_send, s_admit, s_begin, s_data, s_end};
    agora__assoc *a = agora__assoc_new(&cfg, &ops);
    uint8_t buf[8192];
    for (;;) {
        ssize_t r = recv(s->fd, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        if (s->stall_after_ac && agora__assoc_state_of(a) == AGORA__ASSOC_ESTABLISHED)
            continue; /* swallow everything, answer nothing */
        if (agora__assoc_feed(a, buf, (size_t)r) == AGORA__ASSOC_CLOSED)
            break;
    }
    agora__assoc_free(a);
    close(s->fd);
    return NULL;
}

static void scp_start(scp *s)
{
    s->listen_fd = loopback_listener(&s->port);
    assert_int_equal(pthread_create(&s->th, NULL, scp_main, s), 0);
}

static void scp_join(scp *s)
{
    pthread_join(s->th, NULL);
    close(s->listen_fd);
}

static char dir[] = "/tmp/agora-test-scu.XXXXXX";

static const char *write_tmp(const char *name, const uint8_t *b, size_t n)
{
    static char paths[8][300];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 300, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    return p;
}

static agora__scu_config config(int port)
{
    agora__scu_config c = {0};
    c.host = "127.0.0.1";
    c.port = port;
    c.called_ae = "PACS";
    c.calling_ae = "AGORA";
    c.connect_timeout_ms = c.assoc_timeout_ms = c.dimse_timeout_ms = 5000;
    return c;
}

static void store_batch(void **state)
{
    (void)state;
    static uint8_t f1[70000], f2[70000], f3[1000];
    size_t n1 = make_file(f1, sizeof f1, CT, "1.2.3.1", EXPLICIT, 65000, 3);
    size_t n2 = make_file(f2, sizeof f2, CT, "1.2.3.2", EXPLICIT, 20000, 7);
    size_t n3 = make_file(f3, sizeof f3, PDF, "1.2.3.3", EXPLICIT, 500, 9); /* SCP refuses PDF */
    const char *paths[4] = {write_tmp("a.dcm", f1, n1), write_tmp("b.dcm", f2, n2),
                            write_tmp("c.dcm", f3, n3), write_tmp("d.dcm", f3, 150)};
    scp s = {0};
    s.status = 0x0000;
    s.max_pdu = 4096; /* the SCU must fragment to it */
    scp_start(&s);
    agora__scu_config cfg = config(s.port);
    agora__scu_file_result fr[4];
    agora__scu_result res;
    agora__error err = {0};
    assert_int_equal(agora__scu_store(&cfg, paths, 4, fr, &res, &err), 0);
    scp_join(&s);
    assert_int_equal(res.fail, AGORA__SCU_OK);
    assert_int_equal(res.peer_max_pdu, 4096);
    assert_int_equal(fr[0].fail, AGORA__SCU_OK);
    assert_int_equal(fr[0].status, 0);
    assert_int_equal(fr[1].fail, AGORA__SCU_OK);
    assert_int_equal(fr[2].fail, AGORA__SCU_NO_CONTEXT);
    assert_int_equal(fr[3].fail, AGORA__SCU_BAD_FILE); /* truncated meta group */
    assert_int_equal(s.n_stored, 2);
    /* The data sets arrived byte for byte, in PDVs that fit 4096-byte PDUs. */
    assert_int_equal(s.data_len[0], 65000);
    assert_memory_equal(s.data[0], f1 + n1 - 65000, 65000);
    assert_int_equal(s.data_len[1], 20000);
    assert_memory_equal(s.data[1], f2 + n2 - 20000, 20000);
    assert_true(s.n_fragments >= (65000 + 20000) / 4090);
}

/* Two small CT files a, b (one SOP instance; the SCP does not mind). */
static void two_cts(const char *a, const char *b, const char *paths[2])
{
    static uint8_t f[2000];
    size_t n = make_file(f, sizeof f, CT, "1.2.3.9", EXPLICIT, 1000, 1);
    paths[0] = write_tmp(a, f, n);
    paths[1] = write_tmp(b, f, n);
}

static void store_status_passed(void **state)
{
    (void)state;
    const char *paths[2];
    two_cts("e.dcm", "f.dcm", paths);
    scp s = {0};
    s.status = 0xA700;
    s.max_pdu = 16384;
    scp_start(&s);
    agora__scu_config cfg = config(s.port);
    agora__scu_file_result fr[2];
    agora__scu_result res;
    assert_int_equal(agora__scu_store(&cfg, paths, 2, fr, &res, NULL), 0);
    scp_join(&s);
    assert_int_equal(res.fail, AGORA__SCU_OK);
    assert_int_equal(fr[0].status, 0xA700);
    assert_int_equal(fr[1].status, 0xA700);
    assert_non_null(strstr(fr[0].msg, "0xa700"));
}

static void rejected_and_stalled(void **state)
{
    (void)state;
    const char *paths[2];
    two_cts("g.dcm", "h.dcm", paths);
    /* Wrong called AE: A-ASSOCIATE-RJ permanent, user, called AE not recognized. */
    scp s = {0};
    s.max_pdu = 16384;
    scp_start(&s);
    agora__scu_config cfg = config(s.port);
    cfg.called_ae = "OTHER";
    agora__scu_file_result fr[2];
    agora__scu_result res;
    assert_int_equal(agora__scu_store(&cfg, paths, 2, fr, &res, NULL), 0);
    scp_join(&s);
    assert_int_equal(res.fail, AGORA__SCU_REJECTED);
    assert_int_equal(res.rj_result, 1);
    assert_int_equal(res.rj_source, 1);
    assert_int_equal(res.rj_reason, 7);
    assert_int_equal(fr[0].fail, AGORA__SCU_NOT_SENT);
    assert_non_null(strstr(res.msg, "called AE title not recognized"));
    /* A peer that accepts, then never answers the C-STORE: a timeout within the limit. */
    scp t = {0};
    t.max_pdu = 16384;
    t.stall_after_ac = 1;
    scp_start(&t);
    cfg = config(t.port);
    cfg.dimse_timeout_ms = 600;
    uint64_t t0 = agora__now_ns();
    assert_int_equal(agora__scu_store(&cfg, paths, 2, fr, &res, NULL), 0);
    uint64_t ms = (agora__now_ns() - t0) / 1000000u;
    scp_join(&t);
    assert_int_equal(res.fail, AGORA__SCU_TIMEOUT);
    assert_int_equal(fr[0].fail, AGORA__SCU_TIMEOUT); /* sent, never answered */
    assert_int_equal(fr[1].fail, AGORA__SCU_NOT_SENT);
    assert_true(ms >= 550 && ms < 5000);
    /* C-ECHO against the state machine. */
    scp e = {0};
    e.max_pdu = 16384;
    scp_start(&e);
    cfg = config(e.port);
    uint16_t st = 0xFFFF;
    assert_int_equal(agora__scu_echo(&cfg, &st, &res, NULL), 0);
    scp_join(&e);
    assert_int_equal(res.fail, AGORA__SCU_OK);
    assert_int_equal(st, 0);
    /* Bad configurations are refused before any connection. */
    cfg.called_ae = "";
    assert_int_equal(agora__scu_echo(&cfg, &st, &res, NULL), AGORA_EINVAL);
    cfg = config(e.port);
    cfg.calling_ae = "SEVENTEEN_CHARS_X";
    assert_int_equal(agora__scu_store(&cfg, paths, 1, fr, &res, NULL), AGORA_EINVAL);
}

int main(void)
{
    assert_non_null(mkdtemp(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(meta_ok),
        cmocka_unit_test(store_batch),
        cmocka_unit_test(store_status_passed),
        cmocka_unit_test(rejected_and_stalled),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
