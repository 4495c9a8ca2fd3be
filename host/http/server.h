/*
 * The HTTP listener of `agora serve` (issue 12; issue 14's dashboard adds its pages here): a
 * small wrapper around libmicrohttpd with a route table and the limits every route shares.
 * A library: it never prints; it logs through agora__log (component "http") with methods,
 * route names, status codes, sizes and counts only, never a path beyond its route, a query
 * string, a header value or a body byte (they can carry UIDs or names).
 *
 * Threads. agora__http_start binds the socket and starts ONE thread owned by the server, which
 * runs libmicrohttpd's event loop (MHD_run_wait) and nothing else; it is not the libuv loop.
 * Every handler callback, the health callback included, runs on that thread, one at a time,
 * so a handler may keep thread-affine state (STOW-RS keeps its own spool handle, i.e. its own
 * SQLite connection). Callbacks the daemon provides must therefore be thread-safe with respect
 * to the daemon's other threads. A handler that blocks (an fsync) delays the other connections
 * for that long; nothing blocks on a peer.
 *
 * Limits (struct below; defaults are AGORA__HTTP_DEFAULT_*):
 *   - max_connections open at once (more are refused at accept by libmicrohttpd);
 *   - conn_memory_bytes per connection (libmicrohttpd's pool: request line and headers);
 *     headers that do not fit get 431/413 from libmicrohttpd;
 *   - header_timeout_ms: a request's line and headers must be complete within this time of the
 *     connection opening (or of the previous response on a kept-alive connection), or the
 *     connection is cut: a slow-loris peer trickling header bytes cannot hold a slot;
 *   - idle_timeout_ms: a connection on which nothing arrives for this long is closed;
 *   - body_min_rate over body_window_ms: while a request body is being read, each window must
 *     bring at least rate x window bytes or the connection is cut (a peer trickling its body
 *     cannot hold a slot either); time spent in our handlers (an fsync) does not count;
 *   - max_body_bytes per request (a route may ask for less): a Content-Length above it is
 *     answered 413 before any of the body is read; a chunked body that grows past it has the
 *     connection cut (HTTP/1.1 cannot answer before the body ends without reading it).
 *
 * Routes. A route is a method and a path: exact ("/healthz"), or with AGORA__HTTP_PREFIX a
 * path prefix matched on a segment boundary ("/dicomweb/studies" matches "/dicomweb/studies"
 * and "/dicomweb/studies/1.2.3", not "/dicomweb/studiesX"). The longest matching path wins; a
 * path that matches with another method is answered 405 with Allow; nothing matches: 404.
 * Routes are added between create and start, then the table is fixed (no locking needed).
 * GET /healthz is built in (see agora__http_health_fn).
 *
 * How the daemon wires it (host/daemon, cmd_serve.c --listen-http ADDR:PORT):
 *     agora__http_config hc = AGORA__HTTP_CONFIG_INIT;   (then host, port, limits from flags)
 *     hc.health = daemon_health; hc.health_arg = d;
 *     agora__http_create(&hc, &http, &err);
 *     agora__stow_register(http, &stow_cfg, &stow, &err);   (stow.h; before start)
 *     agora__http_start(http, &err);                          (binds; an error says why)
 *     ... run the libuv loop ...
 *     agora__http_stop(http);     (SIGTERM: stop accepting, close connections, join the thread)
 *     agora__stow_close(stow);    (after stop: no handler runs any more)
 *     agora__http_destroy(http);
 */
#ifndef AGORA_HTTP_SERVER_H
#define AGORA_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct agora__error;

typedef struct agora__http_server agora__http_server;
/* One request in flight. Owned by the server; valid from begin to done (handler below). */
typedef struct agora__http_request agora__http_request;

/* The health document: called on the HTTP thread for every GET /healthz. root holds what the
 * server knows ({"status":"ok","http":{"address":..,"port":..,"connections":..,
 * "requests":..}} plus what registered modules add, e.g. "stow"); the daemon adds or replaces
 * members ("status" "ok"|"degraded"|"stopping", "listeners", "spool" {"bytes","watermark"},
 * "queue" {state: count}). Values must carry no PHI. The answer is 200 when "status" is "ok",
 * else 503. A non-zero return answers 500. */
typedef int (*agora__http_health_fn)(void *arg, json_t *root);

typedef struct agora__http_config {
    const char *host; /* IPv4 or IPv6 literal to bind; default "127.0.0.1" */
    int port;         /* 1..65535; 0 picks a free port (tests; read it with agora__http_port) */
    unsigned max_connections;
    size_t conn_memory_bytes;
    unsigned header_timeout_ms, idle_timeout_ms;
    unsigned body_min_rate;  /* bytes per second; 0: no minimum */
    unsigned body_window_ms; /* the window the rate is measured over */
    uint64_t max_body_bytes;
    agora__http_health_fn health; /* NULL: the server's own fields only */
    void *health_arg;
} agora__http_config;

#define AGORA__HTTP_DEFAULT_MAX_CONNECTIONS 64u
#define AGORA__HTTP_DEFAULT_CONN_MEMORY     (64u * 1024u)
#define AGORA__HTTP_DEFAULT_HEADER_MS       10000u
#define AGORA__HTTP_DEFAULT_IDLE_MS         60000u
#define AGORA__HTTP_DEFAULT_BODY_RATE       1024u
#define AGORA__HTTP_DEFAULT_BODY_WINDOW_MS  30000u
#define AGORA__HTTP_DEFAULT_MAX_BODY        (4ull * 1024 * 1024 * 1024)
#define AGORA__HTTP_CONFIG_INIT                                                                    \
    {                                                                                              \
        .host = "127.0.0.1", .max_connections = AGORA__HTTP_DEFAULT_MAX_CONNECTIONS,               \
        .conn_memory_bytes = AGORA__HTTP_DEFAULT_CONN_MEMORY,                                      \
        .header_timeout_ms = AGORA__HTTP_DEFAULT_HEADER_MS,                                        \
        .idle_timeout_ms = AGORA__HTTP_DEFAULT_IDLE_MS,                                            \
        .body_min_rate = AGORA__HTTP_DEFAULT_BODY_RATE,                                            \
        .body_window_ms = AGORA__HTTP_DEFAULT_BODY_WINDOW_MS,                                      \
        .max_body_bytes = AGORA__HTTP_DEFAULT_MAX_BODY                                             \
    }

/* A route's callbacks. All run on the HTTP thread. ctx is the handler's per-request state.
 *   begin: the request line and headers are in (read them with the accessors below). Return
 *          0 to go on; or set a response with agora__http_respond (then the body is not read
 *          and the connection is closed after the answer, e.g. 415, 503) and return 0; a
 *          negative return answers 500. NULL: no per-request state.
 *   body:  the next bytes of the body, in order, any chunking. Non-zero: the body is not
 *          wanted any more; the rest is read and dropped (within the body limit) and end is
 *          still called. NULL: a body is refused with 413.
 *   end:   the whole body was read: set the response (agora__http_respond). No response set:
 *          500. NULL: 204.
 *   done:  always called once when begin returned 0 (after end, or when the connection died
 *          mid-body: completed 0). Free ctx here. */
typedef struct agora__http_handler {
    int (*begin)(void *arg, agora__http_request *rq, void **ctx);
    int (*body)(void *ctx, agora__http_request *rq, const uint8_t *p, size_t n);
    int (*end)(void *ctx, agora__http_request *rq);
    void (*done)(void *ctx, int completed);
} agora__http_handler;

#define AGORA__HTTP_PREFIX 1u /* path is a prefix matched on a '/' boundary */

typedef struct agora__http_route {
    const char *method; /* "GET", "POST", ... (copied) */
    const char *path;   /* starts with '/', no query (copied) */
    unsigned flags;     /* AGORA__HTTP_PREFIX */
    const char *name;   /* for logs, e.g. "stow" (copied) */
    uint64_t max_body;  /* 0: the server's max_body_bytes; else min(this, server's) */
    const agora__http_handler *handler; /* borrowed: must outlive the server */
    void *arg;                          /* borrowed: passed to begin */
} agora__http_route;

/* Check cfg (address, port, limits) and make a server; nothing is bound yet. */
int agora__http_create(const agora__http_config *cfg, agora__http_server **out,
                       struct agora__error *err);
/* Add a route (before start). AGORA_EINVAL for a bad route or a duplicate method+path. */
int agora__http_route_add(agora__http_server *s, const agora__http_route *r,
                          struct agora__error *err);
/* Bind and start the HTTP thread. The error names the address and the reason (in use, ...). */
int agora__http_start(agora__http_server *s, struct agora__error *err);
/* The bound port (after start), else 0. */
int agora__http_port(const agora__http_server *s);
/* Stop accepting, close every connection (handlers get done(ctx, 0)), join the thread.
 * Idempotent; safe without start. */
void agora__http_stop(agora__http_server *s);
void agora__http_destroy(agora__http_server *s);

/* ---- Request accessors (valid during the callbacks of that request) ---- */
const char *agora__http_method(const agora__http_request *rq);
/* The path (no query). Do not log it: it can hold UIDs. */
const char *agora__http_path(const agora__http_request *rq);
/* The path after the route's prefix: "" or "/...". */
const char *agora__http_path_rest(const agora__http_request *rq);
/* A request header (case-insensitive name), or NULL. */
const char *agora__http_header(const agora__http_request *rq, const char *name);
/* A query-string argument (decoded), or NULL; a cookie of the Cookie header, or NULL. For the
 * dashboard (issue 14): do not log either. */
const char *agora__http_query(const agora__http_request *rq, const char *name);
const char *agora__http_cookie(const agora__http_request *rq, const char *name);
/* The declared Content-Length, or -1 when absent (chunked or no body). */
int64_t agora__http_content_length(const agora__http_request *rq);

/* Set the response (copied). content_type NULL: none. Later calls replace earlier ones. */
int agora__http_respond(agora__http_request *rq, unsigned status, const char *content_type,
                        const void *body, size_t len);
/* The same with a JSON document (serialised compact; the reference is not taken). */
int agora__http_respond_json(agora__http_request *rq, unsigned status, const char *content_type,
                             const json_t *doc);
/* An extra response header (e.g. Retry-After), after agora__http_respond. At most 4. */
int agora__http_respond_header(agora__http_request *rq, const char *name, const char *value);

/* For modules that add to the health document (stow): called on the HTTP thread with the
 * document before the daemon's callback. At most 8. */
int agora__http_add_health(agora__http_server *s, agora__http_health_fn fn, void *arg,
                           struct agora__error *err);

#endif
