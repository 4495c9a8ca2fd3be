/* The HTTP listener (server.h): libmicrohttpd driven by one thread of ours, a route table,
 * header deadlines, body limits, GET /healthz. */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"

#define COMPONENT  "http"
#define MAX_ROUTES 64u
#define MAX_HEALTH 8u
#define MAX_EXTRA  4u
#define TICK_MS    100 /* how often deadlines are checked (and stop is noticed) */

typedef struct route {
    char method[16];
    char path[256];
    size_t path_len;
    unsigned flags;
    char name[32];
    uint64_t max_body;
    const agora__http_handler *h;
    void *arg;
} route;

/* One TCP connection (libmicrohttpd's socket context), on the server's list. */
typedef struct conn {
    int fd;
    uint64_t deadline_ns; /* request line + headers due by then; 0: none (in a request) */
    int cut;
    /* while a body is read: the current rate window */
    int in_body;
    uint64_t window_start_ns, window_busy_ns, window_bytes;
    struct conn *prev, *next;
} conn;

struct agora__http_request {
    agora__http_server *srv;
    struct MHD_Connection *mc;
    const route *rt;
    const char *method, *path;
    int64_t content_length;
    uint64_t body_bytes, max_body;
    void *ctx;
    int begun, dropping, ended;
    /* the response */
    unsigned status;
    char *ctype;
    uint8_t *body;
    size_t body_len;
    char *extra_name[MAX_EXTRA], *extra_value[MAX_EXTRA];
    unsigned n_extra;
    int responded;
};

struct agora__http_server {
    agora__http_config cfg;
    char host[64];
    route routes[MAX_ROUTES];
    unsigned n_routes;
    struct {
        agora__http_health_fn fn;
        void *arg;
    } health[MAX_HEALTH];
    unsigned n_health;
    struct MHD_Daemon *d;
    pthread_t thread;
    int thread_started;
    atomic_int stopping;
    int port;
    conn *conns;
    unsigned n_conns;
    uint64_t requests;
};

static const agora__http_handler health_handler;

/* libmicrohttpd's messages go to the debug log as their format only: an argument could carry
 * a peer's bytes. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)ap;
    agora__log(AGORA_LOG_DEBUG, COMPONENT, "libmicrohttpd: %s", fmt);
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *sa, int *v6)
{
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = 1;
        return 0;
    }
    return -1;
}

int agora__http_create(const agora__http_config *cfg, agora__http_server **out, agora__error *err)
{
    *out = NULL;
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    struct sockaddr_storage sa;
    int v6 = 0;
    if (strlen(host) >= 64 || parse_addr(host, 1, &sa, &v6) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "the HTTP listen address must be an IPv4 or IPv6 literal "
                                "(e.g. 127.0.0.1)");
    if (cfg->port < 0 || cfg->port > 65535)
        return agora__error_set(err, AGORA_EINVAL, "the HTTP port must be 1..65535");
    if (cfg->max_connections < 1 || cfg->max_connections > 4096)
        return agora__error_set(err, AGORA_EINVAL, "the HTTP connection limit must be 1..4096");
    if (cfg->conn_memory_bytes < 4096 || cfg->conn_memory_bytes > 16u * 1024 * 1024)
        return agora__error_set(err, AGORA_EINVAL,
                                "the HTTP per-connection memory must be 4 KiB..16 MiB");
    if (cfg->header_timeout_ms < 100 || cfg->idle_timeout_ms < 1000)
        return agora__error_set(err, AGORA_EINVAL,
                                "the HTTP header timeout must be at least 0.1 s and the idle "
                                "timeout at least 1 s");
    if (cfg->body_min_rate > 0 && cfg->body_window_ms < 100)
        return agora__error_set(err, AGORA_EINVAL,
                                "the HTTP body rate window must be at least 0.1 s");
    if (cfg->max_body_bytes == 0)
        return agora__error_set(err, AGORA_EINVAL, "the HTTP body limit must be at least 1 byte");
    agora__http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory creating the HTTP listener");
    s->cfg = *cfg;
    agora__strlcpy(s->host, host, sizeof s->host);
    s->cfg.host = s->host;
    atomic_init(&s->stopping, 0);
    agora__http_route hr = {.method = "GET",
                            .path = "/healthz",
                            .name = "healthz",
                            .max_body = 1,
                            .handler = &health_handler,
                            .arg = s};
    int rc = agora__http_route_add(s, &hr, err);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int agora__http_route_add(agora__http_server *s, const agora__http_route *r, agora__error *err)
{
    if (s->d != NULL)
        return agora__error_set(err, AGORA_ESTATE, "HTTP routes must be added before start");
    if (s->n_routes >= MAX_ROUTES)
        return agora__error_set(err, AGORA_ELIMIT, "too many HTTP routes (at most %u)", MAX_ROUTES);
    if (r->method == NULL || r->method[0] == 0 || strlen(r->method) >= 16 || r->path == NULL ||
        r->path[0] != '/' || strlen(r->path) >= 256 || strchr(r->path, '?') != NULL ||
        r->handler == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "an HTTP route needs a method, a path beginning with '/' (no "
                                "query, under 256 bytes) and a handler");
    size_t n = strlen(r->path);
    if ((r->flags & AGORA__HTTP_PREFIX) && n > 1 && r->path[n - 1] == '/')
        n--; /* "/x/" as a prefix is "/x" */
    for (unsigned i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].method, r->method) == 0 && s->routes[i].path_len == n &&
            memcmp(s->routes[i].path, r->path, n) == 0)
            return agora__error_set(err, AGORA_EINVAL, "the HTTP route %s %.*s is already taken",
                                    r->method, (int)n, r->path);
    route *d = &s->routes[s->n_routes++];
    memset(d, 0, sizeof *d);
    agora__strlcpy(d->method, r->method, sizeof d->method);
    memcpy(d->path, r->path, n);
    d->path[n] = 0;
    d->path_len = n;
    d->flags = r->flags;
    agora__strlcpy(d->name, r->name ? r->name : "route", sizeof d->name);
    d->max_body = r->max_body;
    d->h = r->handler;
    d->arg = r->arg;
    return 0;
}

int agora__http_add_health(agora__http_server *s, agora__http_health_fn fn, void *arg,
                           agora__error *err)
{
    if (s->d != NULL)
        return agora__error_set(err, AGORA_ESTATE, "health members must be added before start");
    if (s->n_health >= MAX_HEALTH)
        return agora__error_set(err, AGORA_ELIMIT, "too many health members");
    s->health[s->n_health].fn = fn;
    s->health[s->n_health].arg = arg;
    s->n_health++;
    return 0;
}

/* ---- matching ---- */

static int path_matches(const route *r, const char *path)
{
    size_t n = strlen(path);
    if (n == r->path_len && memcmp(path, r->path, n) == 0)
        return 1;
    if (!(r->flags & AGORA__HTTP_PREFIX) || n <= r->path_len ||
        memcmp(path, r->path, r->path_len) != 0)
        return 0;
    return r->path_len == 1 || path[r->path_len] == '/';
}

/* The route for method+path; NULL with *allow filled when only other methods match. */
static const route *match(const agora__http_server *s, const char *method, const char *path,
                          char *allow, size_t allow_cap)
{
    const route *best = NULL;
    size_t best_len = 0, other_len = 0;
    allow[0] = 0;
    for (unsigned i = 0; i < s->n_routes; i++) {
        const route *r = &s->routes[i];
        if (!path_matches(r, path))
            continue;
        if (strcmp(r->method, method) == 0) {
            if (best == NULL || r->path_len > best_len) {
                best = r;
                best_len = r->path_len;
            }
        } else if (r->path_len >= other_len) {
            if (r->path_len > other_len)
                allow[0] = 0;
            other_len = r->path_len;
            size_t k = strlen(allow);
            snprintf(allow + k, allow_cap - k, "%s%s", k ? ", " : "", r->method);
        }
    }
    return best; /* a longer path of another method does not hide a match of this one */
}

/* ---- requests ---- */

const char *agora__http_method(const agora__http_request *rq)
{
    return rq->method;
}

const char *agora__http_path(const agora__http_request *rq)
{
    return rq->path;
}

const char *agora__http_path_rest(const agora__http_request *rq)
{
    return rq->rt ? rq->path + rq->rt->path_len : "";
}

const char *agora__http_header(const agora__http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->mc, MHD_HEADER_KIND, name);
}

const char *agora__http_query(const agora__http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->mc, MHD_GET_ARGUMENT_KIND, name);
}

const char *agora__http_cookie(const agora__http_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->mc, MHD_COOKIE_KIND, name);
}

int64_t agora__http_content_length(const agora__http_request *rq)
{
    return rq->content_length;
}

static void clear_response(agora__http_request *rq)
{
    free(rq->ctype);
    free(rq->body);
    rq->ctype = NULL;
    rq->body = NULL;
    rq->body_len = 0;
    for (unsigned i = 0; i < rq->n_extra; i++) {
        free(rq->extra_name[i]);
        free(rq->extra_value[i]);
    }
    rq->n_extra = 0;
    rq->responded = 0;
}

int agora__http_respond(agora__http_request *rq, unsigned status, const char *content_type,
                        const void *body, size_t len)
{
    clear_response(rq);
    rq->status = status;
    if (content_type != NULL && (rq->ctype = strdup(content_type)) == NULL)
        return AGORA_ENOMEM;
    if (len > 0) {
        rq->body = malloc(len);
        if (rq->body == NULL)
            return AGORA_ENOMEM;
        memcpy(rq->body, body, len);
        rq->body_len = len;
    }
    rq->responded = 1;
    return 0;
}

int agora__http_respond_json(agora__http_request *rq, unsigned status, const char *content_type,
                             const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        return AGORA_ENOMEM;
    int rc = agora__http_respond(rq, status, content_type ? content_type : "application/json", text,
                                 strlen(text));
    free(text);
    return rc;
}

int agora__http_respond_header(agora__http_request *rq, const char *name, const char *value)
{
    if (!rq->responded || rq->n_extra >= MAX_EXTRA)
        return AGORA_ESTATE;
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return AGORA_ENOMEM;
    }
    rq->extra_name[rq->n_extra] = n;
    rq->extra_value[rq->n_extra] = v;
    rq->n_extra++;
    return 0;
}

static void respond_text(agora__http_request *rq, unsigned status, const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    if (j == NULL || agora__http_respond_json(rq, status, NULL, j) != 0)
        agora__http_respond(rq, status, NULL, NULL, 0);
    json_decref(j);
}

/* Queue the response set on rq (500 when none). */
static enum MHD_Result send_response(agora__http_request *rq)
{
    if (!rq->responded)
        respond_text(rq, 500, "internal error: the handler gave no answer");
    struct MHD_Response *r = MHD_create_response_from_buffer(
        rq->body_len, rq->body ? rq->body : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (rq->ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rq->ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    for (unsigned i = 0; i < rq->n_extra; i++)
        MHD_add_response_header(r, rq->extra_name[i], rq->extra_value[i]);
    enum MHD_Result ok = MHD_queue_response(rq->mc, rq->status, r);
    MHD_destroy_response(r);
    agora__log(AGORA_LOG_INFO, COMPONENT, "%s %s %u body=%llu", rq->method,
               rq->rt ? rq->rt->name : "(no route)", rq->status,
               (unsigned long long)rq->body_bytes);
    return ok;
}

static conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    agora__http_server *s = cls;
    agora__http_request *rq = *con_cls;
    if (rq == NULL) {
        /* First call: the request line and headers are complete. */
        conn *c = conn_of(mc);
        if (c != NULL)
            c->deadline_ns = 0;
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        s->requests++;
        rq->srv = s;
        rq->mc = mc;
        rq->method = method;
        rq->path = url;
        rq->content_length = -1;
        const char *cl =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            char *end = NULL;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end != cl)
                rq->content_length = (int64_t)(v > INT64_MAX ? INT64_MAX : v);
        }
        const char *te =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        int has_body = rq->content_length > 0 || te != NULL;
        char allow[128];
        rq->rt = match(s, method, url, allow, sizeof allow);
        if (rq->rt == NULL) {
            if (allow[0]) {
                respond_text(rq, 405, "method not allowed on this path");
                agora__http_respond_header(rq, "Allow", allow);
            } else {
                respond_text(rq, 404, "no such resource");
            }
            return send_response(rq);
        }
        rq->max_body = s->cfg.max_body_bytes;
        if (rq->rt->max_body && rq->rt->max_body < rq->max_body)
            rq->max_body = rq->rt->max_body;
        if (has_body && rq->rt->h->body == NULL) {
            respond_text(rq, 413, "this resource takes no request body");
            return send_response(rq);
        }
        if (rq->content_length > 0 && (uint64_t)rq->content_length > rq->max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than the limit of %llu bytes",
                     (unsigned long long)rq->max_body);
            respond_text(rq, 413, msg);
            return send_response(rq);
        }
        int rc = rq->rt->h->begin ? rq->rt->h->begin(rq->rt->arg, rq, &rq->ctx) : 0;
        if (rc < 0) {
            respond_text(rq, 500, "internal error starting the request");
            return send_response(rq);
        }
        rq->begun = 1;
        if (rq->responded)
            return send_response(rq); /* refused before the body (415, 503, ...) */
        if (has_body && c != NULL) {
            c->in_body = 1;
            c->window_start_ns = agora__now_ns();
            c->window_busy_ns = c->window_bytes = 0;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (n > rq->max_body - rq->body_bytes) {
            agora__log(AGORA_LOG_WARN, COMPONENT,
                       "%s %s: body over the limit of %llu bytes: connection cut", rq->method,
                       rq->rt->name, (unsigned long long)rq->max_body);
            return MHD_NO;
        }
        rq->body_bytes += n;
        conn *c = conn_of(mc);
        uint64_t t0 = agora__now_ns();
        if (!rq->dropping &&
            rq->rt->h->body((void *)rq->ctx, rq, (const uint8_t *)upload_data, n) != 0)
            rq->dropping = 1;
        if (c != NULL) {
            c->window_bytes += n;
            c->window_busy_ns += agora__now_ns() - t0; /* our time, not the peer's */
        }
        return MHD_YES;
    }
    conn *c = conn_of(mc);
    if (c != NULL)
        c->in_body = 0;
    if (rq->responded)
        return MHD_YES; /* already queued */
    rq->ended = 1;
    if (rq->rt->h->end != NULL) {
        if (rq->rt->h->end(rq->ctx, rq) < 0 && !rq->responded)
            respond_text(rq, 500, "internal error finishing the request");
    } else {
        agora__http_respond(rq, 204, NULL, NULL, 0);
    }
    return send_response(rq);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    agora__http_server *s = cls;
    agora__http_request *rq = *con_cls;
    *con_cls = NULL;
    conn *c = conn_of(mc);
    if (c != NULL) { /* a kept-alive connection: the next request's headers are due again */
        c->deadline_ns = agora__now_ns() + (uint64_t)s->cfg.header_timeout_ms * 1000000u;
        c->in_body = 0;
    }
    if (rq == NULL)
        return;
    if (rq->begun && rq->rt->h->done != NULL)
        rq->rt->h->done(rq->ctx, rq->ended && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->rt != NULL && !rq->ended)
        agora__log(AGORA_LOG_INFO, COMPONENT, "%s %s: connection ended mid-request (code %d)",
                   rq->method, rq->rt->name, (int)toe);
    clear_response(rq);
    free(rq);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    agora__http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            *socket_context = NULL;
            return;
        }
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->deadline_ns = agora__now_ns() + (uint64_t)s->cfg.header_timeout_ms * 1000000u;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        *socket_context = c;
        return;
    }
    conn *c = *socket_context;
    *socket_context = NULL;
    if (c == NULL)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    free(c);
}

/* Cut a connection whose body came slower than the minimum rate over a whole window. */
static void check_body_rate(agora__http_server *s, conn *c, uint64_t now)
{
    uint64_t window = (uint64_t)s->cfg.body_window_ms * 1000000u;
    uint64_t spent = now - c->window_start_ns;
    spent = spent > c->window_busy_ns ? spent - c->window_busy_ns : 0;
    if (spent < window)
        return;
    uint64_t need = (uint64_t)s->cfg.body_min_rate * s->cfg.body_window_ms / 1000u;
    if (c->window_bytes >= need) {
        c->window_start_ns = now;
        c->window_busy_ns = c->window_bytes = 0;
        return;
    }
    c->cut = 1; /* logged first: the peer may look at the log as soon as it sees the close */
    agora__log(AGORA_LOG_WARN, COMPONENT,
               "request body slower than %u bytes/s over %u ms: connection cut",
               s->cfg.body_min_rate, s->cfg.body_window_ms);
    shutdown(c->fd, SHUT_RDWR);
}

/* Cut connections whose request headers are overdue or whose body trickles. Runs on the HTTP
 * thread, between
 * libmicrohttpd's rounds, so the fd is still open (libmicrohttpd closes it after its
 * CLOSED notification, which unlinks the conn). */
static void check_deadlines(agora__http_server *s)
{
    uint64_t now = agora__now_ns();
    for (conn *c = s->conns; c != NULL; c = c->next) {
        if (c->cut || c->fd < 0)
            continue;
        if (c->in_body && s->cfg.body_min_rate > 0) {
            check_body_rate(s, c, now);
            continue;
        }
        if (c->deadline_ns == 0 || now < c->deadline_ns)
            continue;
        c->cut = 1;
        agora__log(AGORA_LOG_WARN, COMPONENT,
                   "request headers not complete within %u ms: connection cut",
                   s->cfg.header_timeout_ms);
        shutdown(c->fd, SHUT_RDWR);
    }
}

static void *http_thread(void *arg)
{
    agora__http_server *s = arg;
    while (!atomic_load(&s->stopping)) {
        if (MHD_run_wait(s->d, TICK_MS) != MHD_YES) {
            agora__log(AGORA_LOG_ERROR, COMPONENT, "the HTTP event loop failed; listener stops");
            break;
        }
        check_deadlines(s);
    }
    return NULL;
}

int agora__http_start(agora__http_server *s, agora__error *err)
{
    if (s->d != NULL)
        return agora__error_set(err, AGORA_ESTATE, "the HTTP listener is running already");
    struct sockaddr_storage sa;
    int v6 = 0;
    if (parse_addr(s->host, s->cfg.port, &sa, &v6) != 0) /* checked at create */
        return agora__error_set(err, AGORA_EINVAL, "the HTTP listen address is not valid");
    unsigned idle_s = (s->cfg.idle_timeout_ms + 999u) / 1000u;
    unsigned flags = MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0u);
    s->d = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg.conn_memory_bytes, MHD_OPTION_CONNECTION_TIMEOUT,
        idle_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (s->d == NULL)
        return agora__error_set(err, AGORA__EIO,
                                "cannot listen for HTTP on %s port %d (in use, or not an address "
                                "of this host?)",
                                s->host, s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? (int)di->port : s->cfg.port;
    if (pthread_create(&s->thread, NULL, http_thread, s) != 0) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
        return agora__error_set(err, AGORA_ENOMEM, "cannot start the HTTP thread");
    }
    s->thread_started = 1;
    agora__log(AGORA_LOG_INFO, COMPONENT, "listening for HTTP on %s port %d", s->host, s->port);
    return 0;
}

int agora__http_port(const agora__http_server *s)
{
    return s->d ? s->port : 0;
}

void agora__http_stop(agora__http_server *s)
{
    if (s == NULL || s->d == NULL)
        return;
    atomic_store(&s->stopping, 1);
    if (s->thread_started) {
        pthread_join(s->thread, NULL);
        s->thread_started = 0;
    }
    /* Closes the listening socket and every connection (done(ctx, 0) for open requests). */
    MHD_stop_daemon(s->d);
    s->d = NULL;
    agora__log(AGORA_LOG_INFO, COMPONENT, "HTTP listener stopped");
}

void agora__http_destroy(agora__http_server *s)
{
    if (s == NULL)
        return;
    agora__http_stop(s);
    free(s);
}

/* ---- GET /healthz ---- */

static int health_end(void *ctx, agora__http_request *rq)
{
    (void)ctx;
    agora__http_server *s = rq->srv;
    json_t *root = json_pack("{s:s, s:{s:s, s:i, s:I, s:I}}", "status", "ok", "http", "address",
                             s->host, "port", s->port, "connections", (json_int_t)s->n_conns,
                             "requests", (json_int_t)s->requests);
    if (root == NULL)
        return AGORA_ENOMEM;
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < s->n_health; i++)
        rc = s->health[i].fn(s->health[i].arg, root);
    if (rc == 0 && s->cfg.health != NULL)
        rc = s->cfg.health(s->cfg.health_arg, root);
    if (rc != 0) {
        json_decref(root);
        respond_text(rq, 500, "the health report failed");
        return 0;
    }
    const char *st = json_string_value(json_object_get(root, "status"));
    rc = agora__http_respond_json(rq, st && strcmp(st, "ok") == 0 ? 200 : 503, NULL, root);
    json_decref(root);
    return rc;
}

static const agora__http_handler health_handler = {NULL, NULL, health_end, NULL};
