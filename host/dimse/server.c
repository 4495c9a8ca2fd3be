/* The DICOM listener (serve.h): libuv glue between sockets, assoc.c and spool.c. */
#include "serve.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "assoc.h"
#include "command.h"
#include "common.h"
#include "spool.h"

#define COMPONENT     "serve"
#define EXTRA_PENDING 8u /* connections beyond max_associations allowed to negotiate */
#define READ_CHUNK    (256u * 1024u)

typedef struct conn conn;

typedef struct server {
    uv_loop_t *loop; /* the caller's */
    uv_tcp_t listener;
    uv_timer_t grace;
    void (*on_stopped)(void *arg);
    void *stopped_arg;
    int open_own; /* the listener and grace handles not yet closed */
    const agora__serve_config *cfg;
    agora__spool *spool;
    unsigned n_conns, n_assoc;
    int stopping, finished;
    uint64_t next_id;
    conn *conns;
    int rc;
} server;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    server *srv;
    agora__assoc *assoc;
    uint64_t id;
    int admitted, closing, open_handles;
    uint64_t seen_pdus;
    uint64_t stored, duplicates, refused, bytes;
    conn *prev, *next;
    uint8_t *rbuf;
};

typedef struct store {
    conn *c;
    agora__spool_txn *txn;
} store;

static void finish(server *s);

int agora__serve_check(const agora__serve_config *cfg, agora__error *err)
{
    size_t n = cfg->ae_title ? strlen(cfg->ae_title) : 0;
    if (n == 0 || n > AGORA__PDU_AE_MAX)
        return agora__error_set(err, AGORA_EINVAL, "--ae-title must be 1 to 16 characters");
    for (size_t i = 0; i < n; i++)
        if (cfg->ae_title[i] <= 0x20 || cfg->ae_title[i] > 0x7E || cfg->ae_title[i] == '\\')
            return agora__error_set(err, AGORA_EINVAL,
                                    "--ae-title must be printable ASCII without spaces or "
                                    "backslashes");
    for (size_t i = 0; i < cfg->n_allow_ae; i++) {
        size_t k = strlen(cfg->allow_ae[i]);
        if (k == 0 || k > AGORA__PDU_AE_MAX)
            return agora__error_set(err, AGORA_EINVAL,
                                    "--allow-ae titles are 1 to 16 "
                                    "characters");
    }
    if (cfg->port < 1 || cfg->port > 65535)
        return agora__error_set(err, AGORA_EINVAL, "the port must be 1..65535");
    if (cfg->max_associations < 1 || cfg->max_associations > 1024)
        return agora__error_set(err, AGORA_EINVAL, "--max-associations must be 1..1024");
    if (cfg->max_pdu < AGORA__PDU_MIN_MAX_LEN || cfg->max_pdu > AGORA__PDU_MAX_MAX_LEN)
        return agora__error_set(err, AGORA_EINVAL, "--max-pdu must be %u..%u bytes",
                                AGORA__PDU_MIN_MAX_LEN, AGORA__PDU_MAX_MAX_LEN);
    if (cfg->artim_ms < 100 || cfg->idle_ms < 100)
        return agora__error_set(err, AGORA_EINVAL, "timeouts must be at least 0.1 s");
    struct sockaddr_storage sa;
    if (uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&sa) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "listen address '%s' is not an IPv4 or IPv6 literal "
                                "(e.g. 127.0.0.1:11113 or [::1]:11113)",
                                cfg->host);
    return 0;
}

/* ---- connection lifetime ---- */

static void on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    server *s = c->srv;
    agora__assoc_free(c->assoc); /* drops an unfinished store (its temp file) */
    if (c->admitted)
        s->n_assoc--;
    s->n_conns--;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->rbuf);
    free(c);
    if (s->stopping && s->n_conns == 0)
        finish(s);
}

static void close_now(conn *c)
{
    if (c->open_handles == 0 || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->closing = 1;
    /* The summary is logged once, here: AE titles, counts and sizes only. */
    const char *why = c->assoc ? agora__assoc_end_reason(c->assoc) : "out of memory";
    const char *ae = c->assoc ? agora__assoc_calling_ae(c->assoc) : "";
    agora__log(why[0] && !c->admitted ? AGORA_LOG_WARN : AGORA_LOG_INFO, COMPONENT,
               "connection %llu closed calling_ae=%s stored=%llu duplicates=%llu refused=%llu "
               "bytes=%llu%s%s",
               (unsigned long long)c->id, ae[0] ? ae : "-", (unsigned long long)c->stored,
               (unsigned long long)c->duplicates, (unsigned long long)c->refused,
               (unsigned long long)c->bytes, why[0] ? " reason=" : "", why);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn *c = req->data;
    free(req);
    close_now(c);
}

/* Close once what was queued for the peer (RJ, RP, A-ABORT) has been written. */
static void close_after_writes(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req != NULL) {
        req->data = c;
        if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
            return;
        free(req);
    }
    c->closing = 0;
    close_now(c);
}

/* ---- assoc callbacks ---- */

typedef struct wreq {
    uv_write_t req;
    uv_buf_t buf;
    uint8_t data[];
} wreq;

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write ends in the read callback (EOF or error) */
    free(req);
}

static int cb_send(void *ctx, const uint8_t *p, size_t n)
{
    conn *c = ctx;
    if (c->closing)
        return -1;
    wreq *w = malloc(sizeof *w + n);
    if (w == NULL)
        return -1;
    memcpy(w->data, p, n);
    w->buf = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_written) != 0) {
        free(w);
        return -1;
    }
    return 0;
}

/* The spool's usage as recorded in spool.db by every writer (the STOW-RS thread's receipts
 * count too), cached by the spool for a short TTL, so this is cheap per association and per
 * C-STORE. A usage that cannot be read counts as over: fail closed (a transient refusal). */
static int over_watermark(const server *s)
{
    if (s->cfg->spool_watermark == 0)
        return 0;
    uint64_t used = 0;
    agora__error err = {0};
    if (agora__spool_usage(s->spool, &used, NULL, &err) != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "spool usage unreadable (refusing): %s", err.msg);
        return 1;
    }
    return used >= s->cfg->spool_watermark;
}

static int cb_admit(void *ctx)
{
    conn *c = ctx;
    server *s = c->srv;
    if (s->stopping || (over_watermark(s) && !agora__assoc_echo_only(c->assoc)))
        return AGORA__RJ_PRES_CONGESTION;
    if (s->n_assoc >= s->cfg->max_associations)
        return AGORA__RJ_PRES_LOCAL_LIMIT;
    s->n_assoc++;
    c->admitted = 1;
    return 0;
}

static uint16_t cb_store_begin(void *ctx, const agora__store_info *info, void **handle)
{
    conn *c = ctx;
    server *s = c->srv;
    agora__error err = {0};
    *handle = NULL;
    if (over_watermark(s)) {
        c->refused++;
        return AGORA__DIMSE_OUT_OF_RESOURCES;
    }
    int has = agora__spool_has(s->spool, info->sop_instance, &err);
    if (has == 1) {
        c->duplicates++;
        return AGORA__DIMSE_SUCCESS; /* stored already: answered success, kept once */
    }
    store *st = calloc(1, sizeof *st);
    agora__spool_instance inst = {info->sop_class, info->sop_instance, info->transfer_syntax,
                                  info->calling_ae, info->called_ae};
    if (has < 0 || st == NULL || agora__spool_begin(s->spool, &inst, &st->txn, &err) != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "connection %llu: cannot spool an instance: %s",
                   (unsigned long long)c->id, err.msg[0] ? err.msg : "out of memory");
        free(st);
        c->refused++;
        return AGORA__DIMSE_OUT_OF_RESOURCES;
    }
    st->c = c;
    *handle = st;
    return AGORA__DIMSE_SUCCESS;
}

static int cb_store_data(void *ctx, void *handle, const uint8_t *p, size_t n)
{
    (void)ctx;
    store *st = handle;
    agora__error err = {0};
    if (agora__spool_write(st->txn, p, n, &err) != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "connection %llu: %s", (unsigned long long)st->c->id,
                   err.msg);
        return -1;
    }
    return 0;
}

static uint16_t cb_store_end(void *ctx, void *handle, int complete)
{
    conn *c = ctx;
    store *st = handle;
    if (!complete) {
        agora__spool_abandon(st->txn);
        free(st);
        return 0;
    }
    agora__error err = {0};
    int dup = 0;
    /* Spool first, acknowledge second: the caller answers with what this returns. */
    int rc = agora__spool_commit(st->txn, &dup, &err);
    free(st);
    if (rc != 0) {
        agora__log(AGORA_LOG_ERROR, COMPONENT, "connection %llu: instance not stored: %s",
                   (unsigned long long)c->id, err.msg);
        c->refused++;
        return AGORA__DIMSE_OUT_OF_RESOURCES;
    }
    if (dup)
        c->duplicates++;
    else
        c->stored++;
    return AGORA__DIMSE_SUCCESS;
}

/* ---- I/O ---- */

static void on_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    int before = agora__assoc_state_of(c->assoc) == AGORA__ASSOC_AWAIT_RQ;
    agora__assoc_abort(c->assoc, before ? "ARTIM timeout: no A-ASSOCIATE-RQ in time"
                                        : "idle timeout: no complete PDU in time");
    close_after_writes(c);
}

static void arm_timer(conn *c)
{
    const agora__serve_config *cfg = c->srv->cfg;
    unsigned ms =
        agora__assoc_state_of(c->assoc) == AGORA__ASSOC_AWAIT_RQ ? cfg->artim_ms : cfg->idle_ms;
    uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf, READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = stream->data;
    if (nread < 0) {
        if (agora__assoc_state_of(c->assoc) != AGORA__ASSOC_CLOSED)
            agora__assoc_abort(c->assoc, nread == UV_EOF ? "the peer closed the connection"
                                                         : "connection error");
        close_now(c);
        return;
    }
    if (nread == 0)
        return;
    c->bytes += (uint64_t)nread;
    agora__assoc_state st = agora__assoc_feed(c->assoc, (const uint8_t *)buf->base, (size_t)nread);
    if (st == AGORA__ASSOC_CLOSED) {
        close_after_writes(c);
        return;
    }
    uint64_t p = agora__assoc_pdus(c->assoc);
    if (p != c->seen_pdus) {
        /* A complete PDU restarts the clock; bytes trickling in do not. */
        c->seen_pdus = p;
        arm_timer(c);
    }
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void free_handle_conn(uv_handle_t *h)
{
    conn *c = h->data;
    free(c->rbuf);
    free(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    server *s = l->data;
    if (status < 0) {
        agora__log(AGORA_LOG_WARN, COMPONENT, "accept failed: %s", uv_strerror(status));
        return;
    }
    if (s->n_conns >= s->cfg->max_associations + EXTRA_PENDING) {
        /* Over the bound of connections (associated or not): closed before any byte is read. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (t == NULL || uv_tcp_init(s->loop, t) != 0) {
            free(t);
            return;
        }
        if (uv_accept(l, (uv_stream_t *)t) == 0)
            agora__log(AGORA_LOG_WARN, COMPONENT, "connection refused: %u connections open",
                       s->n_conns);
        uv_close((uv_handle_t *)t, free_handle);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    uint8_t *rbuf = c ? malloc(READ_CHUNK) : NULL;
    if (c == NULL || rbuf == NULL || uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(rbuf);
        free(c);
        agora__log(AGORA_LOG_ERROR, COMPONENT, "out of memory accepting a connection");
        return;
    }
    c->rbuf = rbuf;
    c->srv = s;
    c->id = ++s->next_id;
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_handle_conn);
        return;
    }
    agora__assoc_config acfg = {s->cfg->ae_title, s->cfg->allow_ae, s->cfg->n_allow_ae,
                                s->cfg->max_pdu};
    agora__assoc_ops ops = {c, cb_send, cb_admit, cb_store_begin, cb_store_data, cb_store_end};
    c->assoc = agora__assoc_new(&acfg, &ops);
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    s->n_conns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (c->assoc == NULL) {
        close_now(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* one small C-STORE-RSP per instance: no Nagle delay */
    arm_timer(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        close_now(c);
}

/* ---- shutdown ---- */

static void on_own_closed(uv_handle_t *h)
{
    server *s = h->data;
    if (--s->open_own == 0 && s->on_stopped != NULL)
        s->on_stopped(s->stopped_arg);
}

static void finish(server *s)
{
    if (s->finished)
        return;
    s->finished = 1;
    agora__log(AGORA_LOG_INFO, COMPONENT, "stopped spool_instances=%llu",
               (unsigned long long)agora__spool_count(s->spool));
    uv_close((uv_handle_t *)&s->grace, on_own_closed);
}

static void on_grace(uv_timer_t *t)
{
    server *s = t->data;
    agora__log(AGORA_LOG_WARN, COMPONENT, "shutdown grace over: aborting %u association(s)",
               s->n_conns);
    for (conn *c = s->conns; c; c = c->next) {
        if (c->assoc == NULL || c->closing)
            continue;
        agora__assoc_abort(c->assoc, "shutting down");
        close_after_writes(c);
    }
}

void agora__serve_stop(agora__serve_listener *l, void (*on_stopped)(void *arg), void *arg)
{
    server *s = (server *)l;
    if (s->stopping)
        return;
    s->stopping = 1;
    s->on_stopped = on_stopped;
    s->stopped_arg = arg;
    agora__log(AGORA_LOG_INFO, COMPONENT,
               "stopping: no new associations; waiting up to %u ms for %u open",
               s->cfg->shutdown_grace_ms, s->n_assoc);
    uv_close((uv_handle_t *)&s->listener, on_own_closed);
    /* Connections still negotiating are closed now; associations may finish their work. */
    for (conn *c = s->conns; c; c = c->next)
        if (c->assoc != NULL && !c->closing &&
            agora__assoc_state_of(c->assoc) == AGORA__ASSOC_AWAIT_RQ)
            close_now(c);
    if (s->n_conns == 0)
        finish(s);
    else
        uv_timer_start(&s->grace, on_grace, s->cfg->shutdown_grace_ms, 0);
}

uint64_t agora__serve_spool_bytes(const agora__serve_listener *l)
{
    return agora__spool_bytes(((const server *)l)->spool);
}

int agora__serve_check_spool(const agora__serve_config *cfg, agora__error *err)
{
    agora__spool *sp = NULL;
    int rc = agora__serve_check(cfg, err);
    if (rc == 0)
        rc = agora__spool_open(cfg->home, cfg->max_instance_bytes, &sp, err);
    agora__spool_close(sp);
    return rc;
}

static void on_bind_failed_closed(uv_handle_t *h)
{
    server *s = h->data;
    agora__spool_close(s->spool);
    free(s);
}

int agora__serve_listen(uv_loop_t *loop, const agora__serve_config *cfg,
                        agora__serve_listener **out, agora__error *err)
{
    *out = NULL;
    int rc = agora__serve_check(cfg, err);
    if (rc != 0)
        return rc;
    server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->loop = loop;
    rc = agora__spool_open(cfg->home, cfg->max_instance_bytes, &s->spool, err);
    if (rc != 0) {
        free(s);
        return rc;
    }
    if (agora__spool_orphans(s->spool) > 0)
        agora__log(AGORA_LOG_WARN, COMPONENT,
                   "%llu spool file(s) without a record (an interrupted receipt; never "
                   "acknowledged; kept)",
                   (unsigned long long)agora__spool_orphans(s->spool));
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&sa) != 0)
        (void)uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&sa);
    int uvrc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (uvrc != 0) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "cannot listen on %s port %d: %s; pick a free port or address "
                              "with --listen-dicom",
                              cfg->host, cfg->port, uv_strerror(uvrc));
        /* Freed once the loop has closed the handle (the caller runs it as it stops). */
        uv_close((uv_handle_t *)&s->listener, on_bind_failed_closed);
        return rc;
    }
    uv_timer_init(loop, &s->grace);
    s->grace.data = s;
    s->open_own = 2;
    agora__log(AGORA_LOG_INFO, COMPONENT,
               "listening on %s port %d ae_title=%s max_associations=%u max_pdu=%u "
               "spool_instances=%llu spool_bytes=%llu watermark=%llu",
               cfg->host, cfg->port, cfg->ae_title, cfg->max_associations, cfg->max_pdu,
               (unsigned long long)agora__spool_count(s->spool),
               (unsigned long long)agora__spool_bytes(s->spool),
               (unsigned long long)cfg->spool_watermark);
    *out = (agora__serve_listener *)s;
    return 0;
}

void agora__serve_free(agora__serve_listener *l)
{
    server *s = (server *)l;
    if (s == NULL)
        return;
    agora__spool_close(s->spool);
    free(s);
}
