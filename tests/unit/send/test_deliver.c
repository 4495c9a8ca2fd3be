/* Unit tests for host/daemon/deliver.c: the DIMSE and HTTP status classes, the backoff, and the
 * outcome of deliveries that fail before any peer answers (a closed loopback port, a bad
 * destination). */
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

#include "common.h"
#include "deliver.h"
#include "loopback.h"

static void expect_dimse(uint16_t st, agora__deliver_class want, const char *cls)
{
    const char *got = NULL;
    agora__deliver_class c = agora__deliver_classify_dimse(st, &got);
    if (c != want || strcmp(got, cls) != 0)
        fail_msg("status 0x%04x: class %d %s, expected %d %s", st, c, got, want, cls);
}

static void dimse_classes(void **state)
{
    (void)state;
    expect_dimse(0x0000, AGORA__DELIVER_OK, "delivered");
    expect_dimse(0xB000, AGORA__DELIVER_OK, "delivered");
    expect_dimse(0xB006, AGORA__DELIVER_OK, "delivered");
    expect_dimse(0xB007, AGORA__DELIVER_OK, "delivered");
    expect_dimse(0x0001, AGORA__DELIVER_OK, "delivered");
    expect_dimse(0xA700, AGORA__DELIVER_TRANSIENT, "out-of-resources");
    expect_dimse(0xA7FF, AGORA__DELIVER_TRANSIENT, "out-of-resources");
    expect_dimse(0xA900, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0xA9FF, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0xC000, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0xCFFF, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0x0122, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0x0110, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0x0124, AGORA__DELIVER_PERMANENT, "configuration-error");
    expect_dimse(0x0211, AGORA__DELIVER_PERMANENT, "protocol-error");
    expect_dimse(0xFF00, AGORA__DELIVER_PERMANENT, "protocol-error");
    /* The boundary next to the transient range is not transient. */
    expect_dimse(0xA800, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_dimse(0xA6FF, AGORA__DELIVER_PERMANENT, "refused-by-peer");
}

static void expect_http(long st, agora__deliver_class want, const char *cls)
{
    const char *got = NULL;
    agora__deliver_class c = agora__deliver_classify_http(st, &got);
    if (c != want || strcmp(got, cls) != 0)
        fail_msg("HTTP %ld: class %d %s, expected %d %s", st, c, got, want, cls);
}

static void http_classes(void **state)
{
    (void)state;
    expect_http(200, AGORA__DELIVER_OK, "delivered");
    expect_http(202, AGORA__DELIVER_OK, "delivered"); /* parts are judged one by one */
    expect_http(204, AGORA__DELIVER_OK, "delivered");
    expect_http(409, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_http(415, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_http(400, AGORA__DELIVER_PERMANENT, "refused-by-peer");
    expect_http(404, AGORA__DELIVER_PERMANENT, "configuration-error");
    expect_http(401, AGORA__DELIVER_PERMANENT, "configuration-error");
    expect_http(302, AGORA__DELIVER_PERMANENT, "configuration-error");
    expect_http(418, AGORA__DELIVER_PERMANENT, "http-error");
    expect_http(500, AGORA__DELIVER_TRANSIENT, "server-error");
    expect_http(503, AGORA__DELIVER_TRANSIENT, "server-error");
    expect_http(408, AGORA__DELIVER_TRANSIENT, "out-of-resources");
    expect_http(429, AGORA__DELIVER_TRANSIENT, "out-of-resources");
}

static void backoff(void **state)
{
    (void)state;
    /* Without jitter (r = 0): 30 s doubling to the 15 min cap. */
    const uint64_t want[] = {30000, 30000, 60000, 120000, 240000, 480000, 900000, 900000};
    for (unsigned a = 0; a < sizeof want / sizeof want[0]; a++)
        assert_int_equal(agora__deliver_backoff_jitter_ms(a, 0), want[a]);
    assert_int_equal(agora__deliver_backoff_jitter_ms(1000000, 0), 900000);
    assert_int_equal(agora__deliver_backoff_jitter_ms(UINT32_MAX, 0), 900000);
    /* Full jitter takes 20 % off, never more. */
    assert_int_equal(agora__deliver_backoff_jitter_ms(1, UINT32_MAX), 24000);
    assert_int_equal(agora__deliver_backoff_jitter_ms(7, UINT32_MAX), 720000);
    /* Drawn jitter stays in [80 %, 100 %] and is not constant. */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t d = agora__deliver_backoff_ms(3);
        assert_true(d >= 96000 && d <= 120000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(hi - lo > 10000);
    /* Monotone in the attempt, without jitter. */
    for (unsigned a = 1; a < 40; a++)
        assert_true(agora__deliver_backoff_jitter_ms(a + 1, 0) >=
                    agora__deliver_backoff_jitter_ms(a, 0));
}

/* A loopback port with nothing listening (bound, then closed). */
static int closed_port(void)
{
    int port;
    close(loopback_listener(&port));
    return port;
}

static const char *write_ct(const char *dir)
{
    /* A minimal Part 10 file: preamble, meta group (class, instance, syntax), a tiny data set. */
    static char path[256];
    snprintf(path, sizeof path, "%s/ct.dcm", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t pre[128] = {0};
    fwrite(pre, 1, sizeof pre, f);
    fwrite("DICM", 1, 4, f);
    const char *uids[3][2] = {{"\x02\x00\x02\x00", "1.2.840.10008.5.1.4.1.1.2"},
                              {"\x02\x00\x03\x00", "1.2.3.4.5"},
                              {"\x02\x00\x10\x00", "1.2.840.10008.1.2.1"}};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(uids[i][1]), pad = n & 1;
        uint8_t len[2] = {(uint8_t)(n + pad), 0};
        fwrite(uids[i][0], 1, 4, f);
        fwrite("UI", 1, 2, f);
        fwrite(len, 1, 2, f);
        fwrite(uids[i][1], 1, n, f);
        if (pad)
            fputc(0, f);
    }
    const uint8_t ds[] = {0x08, 0x00, 0x60, 0x00, 'C', 'S', 2, 0, 'C', 'T'};
    fwrite(ds, 1, sizeof ds, f);
    fclose(f);
    return path;
}

static void refused_is_transient(void **state)
{
    (void)state;
    char dir[] = "/tmp/agora-test-deliver.XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *path = write_ct(dir);
    agora__dest d = {0};
    d.name = "test";
    d.kind = AGORA__DEST_DIMSE;
    d.ae_title = "PACS";
    d.host = "127.0.0.1";
    d.port = closed_port();
    d.timeout_ms = 5000;
    agora__deliver_outcome out, each[1];
    agora__error err = {0};
    assert_int_equal(agora__deliver_files_each(&d, &path, 1, each, &out, &err), 0);
    assert_int_equal(out.cls, AGORA__DELIVER_TRANSIENT);
    assert_string_equal(out.error_class, "connection-refused");
    assert_string_equal(each[0].error_class, "connection-refused");
    assert_non_null(strstr(out.msg, "nothing listens there"));
    assert_null(strstr(out.msg, "1.2.3.4.5")); /* never the instance UID */
    /* A bad destination is permanent, and said so. */
    d.ae_title = "A\\B";
    assert_int_equal(agora__deliver_files(&d, &path, 1, &out, &err), AGORA_EINVAL);
    assert_int_equal(out.cls, AGORA__DELIVER_PERMANENT);
    assert_string_equal(out.error_class, "configuration-error");
    d.ae_title = "PACS";
    d.port = 0;
    assert_int_equal(agora__deliver_files(&d, &path, 1, &out, &err), AGORA_EINVAL);
    assert_int_equal(out.cls, AGORA__DELIVER_PERMANENT);
    /* STOW with a URL that is not http(s): permanent configuration-error. */
    agora__dest s = {0};
    s.name = "web";
    s.kind = AGORA__DEST_STOW;
    s.url = "ftp://127.0.0.1/x";
    assert_int_equal(agora__deliver_files(&s, &path, 1, &out, &err), AGORA_EINVAL);
    assert_string_equal(out.error_class, "configuration-error");
    /* STOW to a closed port: transient connection-refused. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/dicomweb", closed_port());
    s.url = url;
    s.timeout_ms = 5000;
    assert_int_equal(agora__deliver_files(&s, &path, 1, &out, &err), 0);
    assert_int_equal(out.cls, AGORA__DELIVER_TRANSIENT);
    assert_string_equal(out.error_class, "connection-refused");
    unlink(path);
    rmdir(dir);
}

/* A one-request HTTP server on a loopback port: reads the request (headers and body), keeps it,
 * answers `status`. */
typedef struct http1 {
    int listen_fd, port, status;
    char req[8192];
    size_t req_len;
    pthread_t th;
} http1;

static void *http1_main(void *arg)
{
    http1 *h = arg;
    int c = accept(h->listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    for (;;) {
        ssize_t r = recv(c, h->req + h->req_len, sizeof h->req - 1 - h->req_len, 0);
        if (r <= 0)
            break;
        h->req_len += (size_t)r;
        h->req[h->req_len] = 0;
        char *end = strstr(h->req, "\r\n\r\n");
        char *cl = strstr(h->req, "Content-Length: ");
        if (end && cl && h->req_len >= (size_t)(end + 4 - h->req) + (size_t)atoi(cl + 16))
            break;
    }
    char resp[128];
    int n =
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", h->status);
    (void)send(c, resp, (size_t)n, MSG_NOSIGNAL);
    close(c);
    return NULL;
}

static void http1_start(http1 *h, int status)
{
    memset(h, 0, sizeof *h);
    h->status = status;
    h->listen_fd = loopback_listener(&h->port);
    assert_int_equal(pthread_create(&h->th, NULL, http1_main, h), 0);
}

static void fhir_post(void **state)
{
    (void)state;
    const char *doc = "{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\"}";
    const struct {
        int status;
        agora__deliver_class cls;
        const char *name;
    } cases[] = {
        {201, AGORA__DELIVER_OK, "delivered"},
        {503, AGORA__DELIVER_TRANSIENT, "server-error"},
        {422, AGORA__DELIVER_PERMANENT, "refused-by-peer"},
        {404, AGORA__DELIVER_PERMANENT, "configuration-error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http1 h;
        http1_start(&h, cases[i].status);
        char url[96];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/fhir/DiagnosticReport", h.port);
        agora__deliver_outcome out;
        agora__error err = {0};
        assert_int_equal(agora__deliver_fhir(url, doc, strlen(doc), 5000, &out, &err), 0);
        pthread_join(h.th, NULL);
        close(h.listen_fd);
        assert_int_equal(out.cls, cases[i].cls);
        assert_string_equal(out.error_class, cases[i].name);
        assert_int_equal(out.last_status, cases[i].status);
        assert_non_null(strstr(h.req, "POST /fhir/DiagnosticReport HTTP/1.1"));
        assert_non_null(strstr(h.req, "Content-Type: application/fhir+json"));
        assert_non_null(strstr(h.req, doc));
    }
    /* Not an http(s) URL: refused before any connection. */
    agora__deliver_outcome out;
    assert_int_equal(agora__deliver_fhir("file:///etc/passwd", doc, strlen(doc), 1000, &out, NULL),
                     AGORA_EINVAL);
    assert_int_equal(out.cls, AGORA__DELIVER_PERMANENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dimse_classes), cmocka_unit_test(http_classes),
        cmocka_unit_test(backoff),       cmocka_unit_test(refused_is_transient),
        cmocka_unit_test(fhir_post),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
