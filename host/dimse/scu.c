/* Blocking DICOM SCU (scu.h): a non-blocking socket driven by poll() against deadlines, so no
 * wait is longer than its timeout whatever the peer does. One buffer for incoming PDUs, sized
 * for the larger of our max PDU and an A-ASSOCIATE-AC; outgoing P-DATA-TF PDUs are built in a
 * buffer sized for the peer's max PDU (capped). */
#include "scu.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "assoc.h"
#include "command.h"
#include "common.h"
#include "filemeta.h"
#include "pdu.h"
#include "writer.h"

#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_MAX_PDU    (64u * 1024u)
/* Our outgoing PDUs are at most this large even when the peer accepts more (or "unlimited"). */
#define SEND_PDU_CAP (256u * 1024u)
/* A peer whose max PDU leaves less than this for a PDV's data is not usable. */
#define MIN_PEER_PDU 64u

const char *agora__scu_fail_name(agora__scu_fail f)
{
    switch (f) {
    case AGORA__SCU_OK:
        return "ok";
    case AGORA__SCU_RESOLVE:
        return "host-not-found";
    case AGORA__SCU_REFUSED:
        return "connection-refused";
    case AGORA__SCU_UNREACHABLE:
        return "network-unreachable";
    case AGORA__SCU_CONNECT_TIMEOUT:
        return "connection-timeout";
    case AGORA__SCU_TIMEOUT:
        return "timeout";
    case AGORA__SCU_RESET:
        return "connection-reset";
    case AGORA__SCU_REJECTED:
        return "association-rejected";
    case AGORA__SCU_ABORTED:
        return "association-aborted";
    case AGORA__SCU_PROTOCOL:
        return "protocol-error";
    case AGORA__SCU_NO_CONTEXT:
        return "no-presentation-context";
    case AGORA__SCU_BAD_FILE:
        return "bad-file";
    case AGORA__SCU_NOT_SENT:
        return "not-sent";
    }
    return "unknown";
}

typedef struct conn {
    int fd;
    const agora__scu_config *cfg;
    unsigned connect_ms, assoc_ms, dimse_ms;
    uint32_t our_max;  /* P-DATA-TF body we accept */
    uint32_t peer_max; /* P-DATA-TF body the peer accepts (0: no limit) */
    uint8_t *in;       /* incoming PDU body */
    size_t in_cap;
    uint8_t in_type;
    size_t in_len;
    uint8_t *out; /* outgoing PDU */
    size_t out_cap;
    agora__scu_result *res;
} conn;

static uint64_t now_ms(void)
{
    return agora__now_ns() / 1000000u;
}

/* Record the association's failure once (the first cause is the one worth reporting). */
static agora__scu_fail fail(conn *c, agora__scu_fail f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static agora__scu_fail fail(conn *c, agora__scu_fail f, const char *fmt, ...)
{
    if (c->res->fail == AGORA__SCU_OK) {
        c->res->fail = f;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->res->msg, sizeof c->res->msg, fmt, ap);
        va_end(ap);
    }
    return f;
}

/* Wait for ev on the socket until deadline. 0 ready, 1 timed out, -1 error. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t t = now_ms();
        if (t >= deadline)
            return 1;
        uint64_t left = deadline - t;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r > 0)
            return 0;
    }
}

static agora__scu_fail do_connect(conn *c)
{
    const agora__scu_config *cfg = c->cfg;
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(cfg->host, port, &hints, &ai);
    if (g != 0) {
        agora__scu_fail f = (g == EAI_NONAME
#ifdef EAI_NODATA
                             || g == EAI_NODATA
#endif
                             )
                                ? AGORA__SCU_RESOLVE
                                : AGORA__SCU_UNREACHABLE;
        return fail(c, f, "cannot resolve host %s (%s); check the destination's host name",
                    cfg->host, gai_strerror(g));
    }
    uint64_t deadline = now_ms() + c->connect_ms;
    int last_errno = 0, timed_out = 0;
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w == 1) {
                timed_out = 1;
                close(fd);
                break;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                soerr = errno;
            r = soerr ? -1 : 0;
            errno = soerr;
        }
        if (r == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            freeaddrinfo(ai);
            return AGORA__SCU_OK;
        }
        last_errno = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    if (timed_out)
        return fail(c, AGORA__SCU_CONNECT_TIMEOUT,
                    "no TCP connection to %s:%d within %u ms; check that the peer is up and "
                    "reachable (firewall, address)",
                    cfg->host, cfg->port, c->connect_ms);
    if (last_errno == ECONNREFUSED)
        return fail(c, AGORA__SCU_REFUSED,
                    "connection to %s:%d refused: nothing listens there; check that the peer "
                    "is running and the port is right",
                    cfg->host, cfg->port);
    return fail(c, AGORA__SCU_UNREACHABLE,
                "cannot connect to %s:%d (%s); check the network and the destination's address",
                cfg->host, cfg->port, strerror(last_errno));
}

static agora__scu_fail send_all(conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* The timeout bounds a stall: a peer that stops reading for dimse_ms. */
            int r = wait_fd(c->fd, POLLOUT, now_ms() + c->dimse_ms);
            if (r == 1)
                return fail(c, AGORA__SCU_TIMEOUT,
                            "the peer stopped reading for %u ms while we sent; check the peer "
                            "(disk full, overloaded)",
                            c->dimse_ms);
            if (r == 0)
                continue;
        }
        return fail(c, AGORA__SCU_RESET,
                    "the peer closed the connection while we sent (%s); check the peer's log",
                    strerror(errno));
    }
    return AGORA__SCU_OK;
}

/* Read exactly n bytes by deadline. */
static agora__scu_fail recv_exact(conn *c, uint8_t *p, size_t n, uint64_t deadline,
                                  const char *waiting_for)
{
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return fail(c, AGORA__SCU_RESET,
                        "the peer closed the connection while we waited for %s; check the "
                        "peer's log",
                        waiting_for);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, POLLIN, deadline);
            if (w == 1)
                return fail(c, AGORA__SCU_TIMEOUT,
                            "no complete %s from the peer in time; check that the peer is a "
                            "DICOM SCP and not overloaded",
                            waiting_for);
            if (w == 0)
                continue;
        }
        return fail(c, AGORA__SCU_RESET, "the connection failed while we waited for %s (%s)",
                    waiting_for, strerror(errno));
    }
    return AGORA__SCU_OK;
}

/* Read one PDU (header and body) by deadline. Bounds the body before reading it: P-DATA-TF by
 * our max PDU, A-ASSOCIATE-AC by AGORA__PDU_ASSOCIATE_MAX, the short PDUs by 4 bytes. An
 * A-ABORT is turned into the ABORTED failure here. */
static agora__scu_fail recv_pdu(conn *c, uint64_t deadline, const char *waiting_for)
{
    uint8_t h[AGORA__PDU_HEADER_LEN];
    agora__scu_fail f = recv_exact(c, h, sizeof h, deadline, waiting_for);
    if (f != AGORA__SCU_OK)
        return f;
    uint32_t len;
    agora__pdu_header(h, &c->in_type, &len);
    size_t bound;
    switch (c->in_type) {
    case AGORA__PDU_P_DATA_TF:
        bound = c->our_max;
        break;
    case AGORA__PDU_ASSOCIATE_AC:
        bound = AGORA__PDU_ASSOCIATE_MAX;
        break;
    case AGORA__PDU_ASSOCIATE_RJ:
    case AGORA__PDU_RELEASE_RQ:
    case AGORA__PDU_RELEASE_RP:
    case AGORA__PDU_ABORT:
        bound = 4;
        break;
    default:
        return fail(c, AGORA__SCU_PROTOCOL,
                    "the peer sent an unknown PDU type 0x%02x while we waited for %s; is the "
                    "destination a DICOM port?",
                    c->in_type, waiting_for);
    }
    if (len > bound)
        return fail(c, AGORA__SCU_PROTOCOL,
                    "the peer sent a PDU of type 0x%02x and %u bytes (at most %zu allowed) "
                    "while we waited for %s",
                    c->in_type, len, bound, waiting_for);
    f = recv_exact(c, c->in, len, deadline, waiting_for);
    if (f != AGORA__SCU_OK)
        return f;
    c->in_len = len;
    if (c->in_type == AGORA__PDU_ABORT) {
        agora__error e;
        if (agora__pdu_parse_short(c->in_type, c->in, len, NULL, &c->res->abort_source,
                                   &c->res->abort_reason, &e) != 0)
            return fail(c, AGORA__SCU_PROTOCOL, "malformed A-ABORT from the peer");
        return fail(c, AGORA__SCU_ABORTED,
                    "the peer aborted the association (source %u, reason %u) while we waited "
                    "for %s; check the peer's log",
                    c->res->abort_source, c->res->abort_reason, waiting_for);
    }
    return AGORA__SCU_OK;
}

static void send_abort(conn *c)
{
    uint8_t b[10];
    size_t n =
        agora__pdu_encode_abort(AGORA__ABORT_SRC_USER, AGORA__ABORT_NOT_SPECIFIED, b, sizeof b);
    /* Best effort, without waiting: the association is being given up. */
    (void)send(c->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static const char *rj_text(uint8_t source, uint8_t reason)
{
    if (source == AGORA__RJ_SRC_USER) {
        switch (reason) {
        case AGORA__RJ_USER_APP_CONTEXT:
            return "application context not supported";
        case AGORA__RJ_USER_CALLING_AE:
            return "calling AE title not recognized (add our AE title to the peer's allowed "
                   "modalities, or set the calling AE it expects)";
        case AGORA__RJ_USER_CALLED_AE:
            return "called AE title not recognized (set the destination's AE title to the "
                   "peer's own)";
        default:
            return "no reason given by the peer";
        }
    }
    if (source == AGORA__RJ_SRC_ACSE)
        return reason == AGORA__RJ_ACSE_VERSION ? "protocol version not supported"
                                                : "no reason given by the peer's ACSE";
    if (source == AGORA__RJ_SRC_PRESENTATION)
        return reason == AGORA__RJ_PRES_CONGESTION    ? "temporary congestion"
               : reason == AGORA__RJ_PRES_LOCAL_LIMIT ? "local limit exceeded"
                                                      : "presentation layer rejection";
    return "unknown source";
}

static int ae_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AGORA__PDU_AE_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7E || s[i] == '\\')
            return 0;
    return 1;
}

static int check_config(const agora__scu_config *cfg, agora__error *err)
{
    if (cfg == NULL || cfg->host == NULL || cfg->host[0] == 0)
        return agora__error_set(err, AGORA_EINVAL, "the destination has no host");
    if (cfg->port < 1 || cfg->port > 65535)
        return agora__error_set(err, AGORA_EINVAL, "the destination's port %d is not 1..65535",
                                cfg->port);
    if (!ae_valid(cfg->called_ae))
        return agora__error_set(err, AGORA_EINVAL,
                                "the destination's AE title must be 1 to 16 printable "
                                "characters without backslash or edge spaces");
    if (!ae_valid(cfg->calling_ae))
        return agora__error_set(err, AGORA_EINVAL,
                                "the calling AE title must be 1 to 16 printable characters "
                                "without backslash or edge spaces");
    if (cfg->max_pdu &&
        (cfg->max_pdu < AGORA__PDU_MIN_MAX_LEN || cfg->max_pdu > AGORA__PDU_MAX_MAX_LEN))
        return agora__error_set(err, AGORA_EINVAL, "max PDU %u is outside %u..%u", cfg->max_pdu,
                                AGORA__PDU_MIN_MAX_LEN, AGORA__PDU_MAX_MAX_LEN);
    return 0;
}

static int conn_init(conn *c, const agora__scu_config *cfg, agora__scu_result *res,
                     agora__error *err)
{
    memset(c, 0, sizeof *c);
    memset(res, 0, sizeof *res);
    c->fd = -1;
    c->cfg = cfg;
    c->res = res;
    c->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->assoc_ms = cfg->assoc_timeout_ms ? cfg->assoc_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->dimse_ms = cfg->dimse_timeout_ms ? cfg->dimse_timeout_ms : DEFAULT_TIMEOUT_MS;
    c->our_max = cfg->max_pdu ? cfg->max_pdu : DEFAULT_MAX_PDU;
    c->in_cap = c->our_max > AGORA__PDU_ASSOCIATE_MAX ? c->our_max : AGORA__PDU_ASSOCIATE_MAX;
    c->in = malloc(c->in_cap);
    if (c->in == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for the SCU buffers");
    return 0;
}

static void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
}

/* A proposed context: the (class, syntax) pair of one or more files. */
typedef struct proposal {
    const char *sop_class, *ts;
    uint8_t id;
    int accepted;
} proposal;

/* Connect, send the A-ASSOCIATE-RQ with the proposals, read the answer. On AC, marks which
 * proposals were accepted and sets peer_max. */
static agora__scu_fail associate(conn *c, proposal *props, size_t n_props)
{
    agora__scu_fail f = do_connect(c);
    if (f != AGORA__SCU_OK)
        return f;
    agora__pdu_assoc_rq *rq = calloc(1, sizeof *rq);
    uint8_t *buf = malloc(AGORA__PDU_ASSOCIATE_MAX + AGORA__PDU_HEADER_LEN);
    if (rq == NULL || buf == NULL) {
        free(rq);
        free(buf);
        return fail(c, AGORA__SCU_UNREACHABLE, "out of memory");
    }
    rq->protocol_version = 1;
    snprintf(rq->called_ae, sizeof rq->called_ae, "%s", c->cfg->called_ae);
    snprintf(rq->calling_ae, sizeof rq->calling_ae, "%s", c->cfg->calling_ae);
    snprintf(rq->app_context, sizeof rq->app_context, "%s", AGORA__UID_APPLICATION_CONTEXT);
    for (size_t i = 0; i < n_props; i++) {
        agora__pdu_pc *pc = &rq->pc[i];
        pc->id = props[i].id;
        snprintf(pc->abstract_syntax, sizeof pc->abstract_syntax, "%s", props[i].sop_class);
        pc->n_ts = 1;
        snprintf(pc->ts[0], sizeof pc->ts[0], "%s", props[i].ts);
    }
    rq->n_pc = n_props;
    rq->max_pdu = c->our_max;
    snprintf(rq->impl_class_uid, sizeof rq->impl_class_uid, "%s", AGORA__DEID_IMPL_CLASS_UID);
    snprintf(rq->impl_version, sizeof rq->impl_version, "%s", AGORA__DEID_IMPL_VERSION);
    size_t n =
        agora__pdu_encode_assoc_rq(rq, buf, AGORA__PDU_ASSOCIATE_MAX + AGORA__PDU_HEADER_LEN);
    free(rq);
    if (n == 0) {
        free(buf);
        return fail(c, AGORA__SCU_PROTOCOL, "the association request does not fit in %u bytes",
                    AGORA__PDU_ASSOCIATE_MAX);
    }
    f = send_all(c, buf, n);
    free(buf);
    if (f != AGORA__SCU_OK)
        return f;
    f = recv_pdu(c, now_ms() + c->assoc_ms, "the association answer");
    if (f != AGORA__SCU_OK)
        return f;
    agora__error e;
    if (c->in_type == AGORA__PDU_ASSOCIATE_RJ) {
        if (agora__pdu_parse_short(c->in_type, c->in, c->in_len, &c->res->rj_result,
                                   &c->res->rj_source, &c->res->rj_reason, &e) != 0)
            return fail(c, AGORA__SCU_PROTOCOL, "malformed A-ASSOCIATE-RJ from the peer");
        return fail(c, AGORA__SCU_REJECTED,
                    "the peer (AE %s at %s:%d) rejected the association "
                    "%s: %s",
                    c->cfg->called_ae, c->cfg->host, c->cfg->port,
                    c->res->rj_result == AGORA__RJ_TRANSIENT ? "for now (transient)"
                                                             : "permanently",
                    rj_text(c->res->rj_source, c->res->rj_reason));
    }
    if (c->in_type != AGORA__PDU_ASSOCIATE_AC)
        return fail(c, AGORA__SCU_PROTOCOL,
                    "the peer answered the association request with PDU type 0x%02x", c->in_type);
    agora__pdu_assoc_ac *ac = malloc(sizeof *ac);
    if (ac == NULL)
        return fail(c, AGORA__SCU_UNREACHABLE, "out of memory");
    if (agora__pdu_parse_assoc_ac(c->in, c->in_len, ac, &e) != 0) {
        free(ac);
        return fail(c, AGORA__SCU_PROTOCOL, "malformed A-ASSOCIATE-AC from the peer: %s", e.msg);
    }
    for (size_t i = 0; i < ac->n_pc; i++)
        for (size_t k = 0; k < n_props; k++)
            if (props[k].id == ac->pc[i].id && ac->pc[i].result == AGORA__PC_ACCEPT &&
                strcmp(ac->pc[i].ts, props[k].ts) == 0)
                props[k].accepted = 1;
    c->peer_max = ac->max_pdu;
    c->res->peer_max_pdu = ac->max_pdu;
    free(ac);
    if (c->peer_max != 0 && c->peer_max < MIN_PEER_PDU)
        return fail(c, AGORA__SCU_PROTOCOL, "the peer's max PDU length %u is too small to use",
                    c->peer_max);
    /* Outgoing PDUs: header + the peer's limit, capped. */
    size_t body = (c->peer_max == 0 || c->peer_max > SEND_PDU_CAP) ? SEND_PDU_CAP : c->peer_max;
    c->out_cap = body + AGORA__PDU_HEADER_LEN;
    c->out = malloc(c->out_cap);
    if (c->out == NULL)
        return fail(c, AGORA__SCU_UNREACHABLE, "out of memory");
    return AGORA__SCU_OK;
}

/* Largest PDV value per P-DATA-TF (its body holds a 4-byte length, id and control). */
static size_t pdv_max(const conn *c)
{
    return c->out_cap - AGORA__PDU_HEADER_LEN - 6;
}

static agora__scu_fail send_pdv(conn *c, uint8_t pc_id, uint8_t control, const uint8_t *p, size_t n)
{
    size_t len = agora__pdu_encode_pdata(pc_id, control, p, n, c->out, c->out_cap);
    if (len == 0)
        return fail(c, AGORA__SCU_PROTOCOL, "a PDV does not fit the peer's max PDU");
    return send_all(c, c->out, len);
}

/* A command set, fragmented to the peer's max PDU. */
static agora__scu_fail send_command(conn *c, uint8_t pc_id, const uint8_t *cmd, size_t n)
{
    size_t max = pdv_max(c);
    do {
        size_t k = n > max ? max : n;
        uint8_t ctl = AGORA__PDV_COMMAND | (k == n ? AGORA__PDV_LAST : 0);
        agora__scu_fail f = send_pdv(c, pc_id, ctl, cmd, k);
        if (f != AGORA__SCU_OK)
            return f;
        cmd += k;
        n -= k;
    } while (n > 0);
    return AGORA__SCU_OK;
}

/* Wait for one response command set on pc_id (no data set may follow it). */
static agora__scu_fail recv_response(conn *c, uint8_t pc_id, agora__dimse_cmd *rsp)
{
    uint8_t *cmd = malloc(AGORA__DIMSE_CMD_MAX);
    if (cmd == NULL)
        return fail(c, AGORA__SCU_UNREACHABLE, "out of memory");
    size_t have = 0;
    uint64_t deadline = now_ms() + c->dimse_ms;
    agora__scu_fail f = AGORA__SCU_OK;
    int done = 0;
    while (!done && f == AGORA__SCU_OK) {
        f = recv_pdu(c, deadline, "the DIMSE response");
        if (f != AGORA__SCU_OK)
            break;
        if (c->in_type != AGORA__PDU_P_DATA_TF) {
            f = fail(c, AGORA__SCU_PROTOCOL,
                     "the peer sent PDU type 0x%02x instead of a DIMSE response", c->in_type);
            break;
        }
        size_t off = 0;
        agora__pdu_pdv pdv;
        agora__error e;
        int r;
        while ((r = agora__pdu_next_pdv(c->in, c->in_len, &off, &pdv, &e)) == 1) {
            if (done || pdv.pc_id != pc_id || !(pdv.control & AGORA__PDV_COMMAND)) {
                f = fail(c, AGORA__SCU_PROTOCOL,
                         "the peer's response carried an unexpected PDV (context %u, control "
                         "0x%02x)",
                         pdv.pc_id, pdv.control);
                break;
            }
            if (pdv.len > AGORA__DIMSE_CMD_MAX - have) {
                f = fail(c, AGORA__SCU_PROTOCOL,
                         "the peer's response command set exceeds %u "
                         "bytes",
                         AGORA__DIMSE_CMD_MAX);
                break;
            }
            memcpy(cmd + have, pdv.data, pdv.len);
            have += pdv.len;
            if (pdv.control & AGORA__PDV_LAST)
                done = 1;
        }
        if (r < 0 && f == AGORA__SCU_OK)
            f = fail(c, AGORA__SCU_PROTOCOL, "malformed P-DATA-TF from the peer: %s", e.msg);
    }
    if (f == AGORA__SCU_OK) {
        agora__error e;
        if (agora__dimse_cmd_parse(cmd, have, rsp, &e) != 0)
            f = fail(c, AGORA__SCU_PROTOCOL, "malformed response command set: %s", e.msg);
        else if (!(rsp->has & AGORA__CMD_HAS_STATUS) || !(rsp->has & AGORA__CMD_HAS_MESSAGE_RSP))
            f = fail(c, AGORA__SCU_PROTOCOL, "the response command set has no status");
        else if (rsp->data_set != AGORA__DIMSE_NO_DATA_SET)
            f = fail(c, AGORA__SCU_PROTOCOL, "the response announces a data set");
    }
    free(cmd);
    return f;
}

/* A-RELEASE-RQ, then wait (bounded) for A-RELEASE-RP. A peer that does not answer only costs
 * the wait: every file already has its status. */
static void release(conn *c)
{
    uint8_t b[10];
    size_t n = agora__pdu_encode_release(AGORA__PDU_RELEASE_RQ, b, sizeof b);
    if (send_all(c, b, n) != AGORA__SCU_OK)
        return;
    agora__scu_result keep = *c->res;
    uint64_t deadline = now_ms() + c->assoc_ms;
    for (int i = 0; i < 4; i++) {
        if (recv_pdu(c, deadline, "the release answer") != AGORA__SCU_OK)
            break;
        if (c->in_type == AGORA__PDU_RELEASE_RP)
            break;
    }
    /* A late abort or timeout here does not change what was delivered. */
    *c->res = keep;
}

static agora__scu_fail store_one(conn *c, const char *path, const agora__filemeta *m, uint8_t pc_id,
                                 uint16_t msg_id, agora__scu_file_result *fr)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || lseek(fd, (off_t)m->data_offset, SEEK_SET) < 0) {
        fr->fail = AGORA__SCU_BAD_FILE;
        snprintf(fr->msg, sizeof fr->msg, "cannot reopen the file to send it: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return AGORA__SCU_OK;
    }
    agora__dimse_cmd rq;
    memset(&rq, 0, sizeof rq);
    rq.has = AGORA__CMD_HAS_SOP_CLASS | AGORA__CMD_HAS_MESSAGE_ID | AGORA__CMD_HAS_SOP_INSTANCE;
    rq.field = AGORA__DIMSE_C_STORE_RQ;
    rq.message_id = msg_id;
    rq.priority = 0;
    rq.data_set = 0x0000;
    memcpy(rq.sop_class, m->sop_class, sizeof rq.sop_class);
    memcpy(rq.sop_instance, m->sop_instance, sizeof rq.sop_instance);
    uint8_t cmd[512];
    size_t cn = agora__dimse_cmd_encode(&rq, cmd, sizeof cmd);
    c->res->n_attempted++;
    agora__scu_fail f = send_command(c, pc_id, cmd, cn);
    uint64_t left = m->file_size - m->data_offset;
    size_t max = pdv_max(c);
    /* The data set goes out as PDVs read straight into the PDU buffer after its 12-byte head. */
    while (f == AGORA__SCU_OK && left > 0) {
        size_t k = left > max ? max : (size_t)left;
        uint8_t *data = c->out + AGORA__PDU_HEADER_LEN + 6;
        size_t got = 0;
        while (got < k) {
            ssize_t r = read(fd, data + got, k - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < k) {
            /* The file shrank or failed under us: the data set cannot be completed, so the
             * association cannot go on (PS3.8 has no way to cancel one message). */
            fr->fail = AGORA__SCU_BAD_FILE;
            snprintf(fr->msg, sizeof fr->msg, "the file changed or failed while it was sent");
            send_abort(c);
            close(fd);
            return fail(c, AGORA__SCU_ABORTED,
                        "a file changed while it was sent; the association was aborted");
        }
        left -= k;
        uint8_t *o = c->out;
        uint32_t pdu_len = (uint32_t)(k + 6), item_len = (uint32_t)(k + 2);
        o[0] = AGORA__PDU_P_DATA_TF;
        o[1] = 0;
        o[2] = (uint8_t)(pdu_len >> 24);
        o[3] = (uint8_t)(pdu_len >> 16);
        o[4] = (uint8_t)(pdu_len >> 8);
        o[5] = (uint8_t)pdu_len;
        o[6] = (uint8_t)(item_len >> 24);
        o[7] = (uint8_t)(item_len >> 16);
        o[8] = (uint8_t)(item_len >> 8);
        o[9] = (uint8_t)item_len;
        o[10] = pc_id;
        o[11] = left == 0 ? AGORA__PDV_LAST : 0;
        f = send_all(c, o, k + AGORA__PDU_HEADER_LEN + 6);
    }
    close(fd);
    if (f != AGORA__SCU_OK)
        return f;
    agora__dimse_cmd rsp;
    f = recv_response(c, pc_id, &rsp);
    if (f != AGORA__SCU_OK)
        return f;
    if (rsp.field != AGORA__DIMSE_C_STORE_RSP || rsp.message_rsp != msg_id)
        return fail(c, AGORA__SCU_PROTOCOL,
                    "the peer answered C-STORE with command 0x%04x for message %u (sent %u)",
                    rsp.field, rsp.message_rsp, msg_id);
    fr->fail = AGORA__SCU_OK;
    fr->status = rsp.status;
    if (rsp.status != AGORA__DIMSE_SUCCESS)
        snprintf(fr->msg, sizeof fr->msg, "the peer answered C-STORE with status 0x%04x",
                 rsp.status);
    return AGORA__SCU_OK;
}

int agora__scu_store(const agora__scu_config *cfg, const char *const *paths, size_t n,
                     agora__scu_file_result *files, agora__scu_result *res, agora__error *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    int rc = check_config(cfg, err);
    if (rc != 0)
        return rc;
    if (n == 0 || n > AGORA__SCU_MAX_FILES || paths == NULL || files == NULL || res == NULL)
        return agora__error_set(err, AGORA_EINVAL, "between 1 and %u files can be sent at once",
                                AGORA__SCU_MAX_FILES);
    agora__filemeta *meta = calloc(n, sizeof *meta);
    proposal *props = calloc(AGORA__PDU_MAX_PC, sizeof *props);
    uint8_t *pc_of = calloc(n, 1);
    conn c;
    if (meta == NULL || props == NULL || pc_of == NULL || conn_init(&c, cfg, res, err) != 0) {
        free(meta);
        free(props);
        free(pc_of);
        if (meta && props && pc_of)
            conn_close(&c);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu files", n);
    }
    size_t n_props = 0, n_sendable = 0;
    for (size_t i = 0; i < n; i++) {
        agora__scu_file_result *fr = &files[i];
        memset(fr, 0, sizeof *fr);
        fr->fail = AGORA__SCU_NOT_SENT;
        agora__error e;
        if (agora__filemeta_read(paths[i], &meta[i], &e) != 0) {
            fr->fail = AGORA__SCU_BAD_FILE;
            snprintf(fr->msg, sizeof fr->msg, "%s", e.msg);
            continue;
        }
        if (meta[i].data_offset >= meta[i].file_size) {
            fr->fail = AGORA__SCU_BAD_FILE;
            snprintf(fr->msg, sizeof fr->msg, "the file has a meta group but no data set");
            continue;
        }
        size_t k = 0;
        while (k < n_props && !(strcmp(props[k].sop_class, meta[i].sop_class) == 0 &&
                                strcmp(props[k].ts, meta[i].ts) == 0))
            k++;
        if (k == n_props) {
            if (n_props == AGORA__PDU_MAX_PC) {
                fr->fail = AGORA__SCU_NO_CONTEXT;
                snprintf(fr->msg, sizeof fr->msg,
                         "more than %d distinct SOP class and transfer syntax pairs in one "
                         "batch; send this file in another batch",
                         AGORA__PDU_MAX_PC);
                continue;
            }
            props[k].sop_class = meta[i].sop_class;
            props[k].ts = meta[i].ts;
            props[k].id = (uint8_t)(2 * k + 1);
            n_props++;
        }
        pc_of[i] = (uint8_t)(k + 1);
        n_sendable++;
    }
    if (n_sendable > 0 && associate(&c, props, n_props) == AGORA__SCU_OK) {
        uint16_t msg_id = 0;
        for (size_t i = 0; i < n && res->fail == AGORA__SCU_OK; i++) {
            if (pc_of[i] == 0)
                continue;
            const proposal *p = &props[pc_of[i] - 1];
            if (!p->accepted) {
                files[i].fail = AGORA__SCU_NO_CONTEXT;
                snprintf(files[i].msg, sizeof files[i].msg,
                         "the peer accepts no presentation context for this file's SOP class "
                         "in its transfer syntax; configure the peer to accept it");
                continue;
            }
            msg_id = (uint16_t)(msg_id == 0xFFFF ? 1 : msg_id + 1);
            agora__scu_fail f = store_one(&c, paths[i], &meta[i], p->id, msg_id, &files[i]);
            if (f != AGORA__SCU_OK && files[i].fail == AGORA__SCU_NOT_SENT) {
                /* Sent (or partly) but never answered: the association's failure is its. */
                files[i].fail = f;
                snprintf(files[i].msg, sizeof files[i].msg, "no answer: %s", res->msg);
            }
        }
        if (res->fail == AGORA__SCU_OK)
            release(&c);
        else if (res->fail != AGORA__SCU_ABORTED && res->fail != AGORA__SCU_RESET)
            send_abort(&c);
    }
    /* Files the association failure kept from a status keep NOT_SENT; give them the cause. */
    for (size_t i = 0; i < n; i++)
        if (files[i].fail == AGORA__SCU_NOT_SENT && files[i].msg[0] == 0)
            snprintf(files[i].msg, sizeof files[i].msg, "not sent: %s", res->msg);
    conn_close(&c);
    free(meta);
    free(props);
    free(pc_of);
    return 0;
}

int agora__scu_echo(const agora__scu_config *cfg, uint16_t *status, agora__scu_result *res,
                    agora__error *err)
{
    if (res)
        memset(res, 0, sizeof *res);
    int rc = check_config(cfg, err);
    if (rc != 0)
        return rc;
    if (res == NULL || status == NULL)
        return agora__error_set(err, AGORA_EINVAL, "no result to fill");
    conn c;
    if (conn_init(&c, cfg, res, err) != 0)
        return AGORA_ENOMEM;
    proposal p = {AGORA__UID_VERIFICATION, "1.2.840.10008.1.2", 1, 0};
    if (associate(&c, &p, 1) == AGORA__SCU_OK) {
        if (!p.accepted) {
            fail(&c, AGORA__SCU_NO_CONTEXT, "the peer does not accept C-ECHO (Verification)");
            send_abort(&c);
        } else {
            agora__dimse_cmd rq;
            memset(&rq, 0, sizeof rq);
            rq.has = AGORA__CMD_HAS_SOP_CLASS | AGORA__CMD_HAS_MESSAGE_ID;
            rq.field = AGORA__DIMSE_C_ECHO_RQ;
            rq.message_id = 1;
            rq.data_set = AGORA__DIMSE_NO_DATA_SET;
            snprintf(rq.sop_class, sizeof rq.sop_class, "%s", AGORA__UID_VERIFICATION);
            uint8_t cmd[256];
            size_t cn = agora__dimse_cmd_encode(&rq, cmd, sizeof cmd);
            agora__dimse_cmd rsp;
            if (send_command(&c, 1, cmd, cn) == AGORA__SCU_OK &&
                recv_response(&c, 1, &rsp) == AGORA__SCU_OK) {
                if (rsp.field != AGORA__DIMSE_C_ECHO_RSP || rsp.message_rsp != 1)
                    fail(&c, AGORA__SCU_PROTOCOL, "the peer answered C-ECHO with command 0x%04x",
                         rsp.field);
                else
                    *status = rsp.status;
            }
            if (res->fail == AGORA__SCU_OK)
                release(&c);
            else if (res->fail != AGORA__SCU_ABORTED && res->fail != AGORA__SCU_RESET)
                send_abort(&c);
        }
    }
    conn_close(&c);
    return 0;
}
