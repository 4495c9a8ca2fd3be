/* Test driver for the HTTP listener and STOW-RS (host/http): the listener with a spool in a
 * given home, as the daemon will wire it (server.h), until SIGTERM or SIGINT.
 *   stow_driver HOME [watermark=BYTES] [header_ms=MS] [idle_ms=MS] [max_parts=N]
 *               [max_body=BYTES] [max_instance=BYTES] [max_connections=N] [port=N]
 *               [body_rate=BYTES_PER_S] [body_window_ms=MS]
 * Prints "port N" on stdout once listening (by default port 0: the kernel picks one), and
 * "stopped" after a clean stop. Exit 0 after a clean stop, 1 on an error (stderr says what). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "server.h"
#include "stow.h"

static int health(void *arg, json_t *root)
{
    (void)arg;
    json_t *l = json_pack("[{s:s, s:b}]", "kind", "http", "up", 1);
    return l != NULL && json_object_set_new(root, "listeners", l) == 0 ? 0 : -1;
}

/* A route registered the way issue 14's pages will be: GET /test/echo[/...] answers what it
 * was asked (the rest of the path, query argument x, cookie c, header X-Test). */
static int echo_end(void *ctx, agora__http_request *rq)
{
    (void)ctx;
    const char *x = agora__http_query(rq, "x"), *c = agora__http_cookie(rq, "c"),
               *h = agora__http_header(rq, "X-Test");
    json_t *j = json_pack("{s:s, s:s?, s:s?, s:s?}", "rest", agora__http_path_rest(rq), "x", x, "c",
                          c, "h", h);
    int rc = j ? agora__http_respond_json(rq, 200, NULL, j) : -1;
    json_decref(j);
    return rc;
}

static const agora__http_handler echo = {NULL, NULL, echo_end, NULL};

static int num(const char *arg, const char *key, unsigned long long *out)
{
    size_t n = strlen(key);
    if (strncmp(arg, key, n) != 0 || arg[n] != '=')
        return 0;
    *out = strtoull(arg + n + 1, NULL, 10);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stow_driver HOME [key=value...]\n");
        return 2;
    }
    agora__http_config hc = AGORA__HTTP_CONFIG_INIT;
    agora__stow_config sc = {argv[1],
                             AGORA__STOW_DEFAULT_MAX_INSTANCE,
                             0,
                             7,
                             AGORA__STOW_DEFAULT_MAX_PARTS,
                             AGORA__STOW_DEFAULT_PART_HEADER,
                             AGORA__STOW_DEFAULT_PART_HEADERS,
                             AGORA__STOW_DEFAULT_MAX_REQUEST};
    hc.health = health;
    for (int i = 2; i < argc; i++) {
        unsigned long long v;
        if (num(argv[i], "watermark", &v))
            sc.spool_watermark = v;
        else if (num(argv[i], "header_ms", &v))
            hc.header_timeout_ms = (unsigned)v;
        else if (num(argv[i], "idle_ms", &v))
            hc.idle_timeout_ms = (unsigned)v;
        else if (num(argv[i], "max_parts", &v))
            sc.max_parts = (unsigned)v;
        else if (num(argv[i], "max_body", &v))
            sc.max_request_bytes = v;
        else if (num(argv[i], "max_instance", &v))
            sc.max_instance_bytes = v;
        else if (num(argv[i], "max_connections", &v))
            hc.max_connections = (unsigned)v;
        else if (num(argv[i], "body_rate", &v))
            hc.body_min_rate = (unsigned)v;
        else if (num(argv[i], "body_window_ms", &v))
            hc.body_window_ms = (unsigned)v;
        else if (num(argv[i], "port", &v))
            hc.port = (int)v;
        else {
            fprintf(stderr, "stow_driver: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the HTTP thread inherits the mask */
    agora__error err = {0};
    agora__http_server *s = NULL;
    agora__stow *st = NULL;
    agora__http_route er = {"GET", "/test/echo", AGORA__HTTP_PREFIX, "echo", 0, &echo, NULL};
    if (agora__http_create(&hc, &s, &err) != 0 || agora__stow_register(s, &sc, &st, &err) != 0 ||
        agora__http_route_add(s, &er, &err) != 0 || agora__http_start(s, &err) != 0) {
        fprintf(stderr, "stow_driver: %s\n", err.msg);
        agora__stow_close(st);
        agora__http_destroy(s);
        return 1;
    }
    printf("port %d\n", agora__http_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    agora__http_stop(s);
    agora__stow_close(st);
    agora__http_destroy(s);
    printf("stopped\n");
    return 0;
}
