/*
 * The DICOM listener of `agora serve`: one libuv loop, a TCP listener on a configured address,
 * an association state machine per connection (assoc.h), receipts into the spool (spool.h).
 * It never prints; it logs through agora__log (component "serve"), never UIDs or attribute
 * values: AE titles, counts, sizes and reasons only.
 *
 * Limits: max_associations established at once (the next A-ASSOCIATE-RQ is rejected transient,
 * "local limit exceeded"); connections not yet associated are bounded too (max_associations +
 * 8; more are closed at accept). Spool watermark: while the spool holds watermark bytes or
 * more, new associations are rejected transient ("temporary congestion") and C-STOREs on open
 * ones are answered 0xA700 (out of resources). ARTIM: an A-ASSOCIATE-RQ must be complete within
 * artim_ms of the connection; idle: an association without a complete PDU for idle_ms is
 * aborted. Stop (the daemon's SIGTERM): stop listening, let open associations finish for
 * shutdown_grace_ms, then abort what is left.
 *
 * The listener is one handle on the caller's libuv loop (the daemon's, host/daemon/daemon.h),
 * used from that loop's thread only; it opens its own spool handle.
 */
#ifndef AGORA_DIMSE_SERVE_H
#define AGORA_DIMSE_SERVE_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

typedef struct agora__serve_config {
    const char *home;     /* clinic home (resolved) */
    const char *host;     /* listen address, IPv4 or IPv6 literal */
    int port;             /* 1..65535 */
    const char *ae_title; /* 1..16 printable characters */
    const char *const *allow_ae;
    size_t n_allow_ae; /* 0: any calling AE */
    unsigned max_associations;
    uint32_t max_pdu;
    uint64_t spool_watermark; /* bytes; 0: no watermark */
    uint64_t max_instance_bytes;
    unsigned artim_ms, idle_ms, shutdown_grace_ms;
} agora__serve_config;

/* Defaults (docs/clinic-guide.md). */
#define AGORA__SERVE_DEFAULT_PORT         11113
#define AGORA__SERVE_DEFAULT_MAX_ASSOC    16u
#define AGORA__SERVE_DEFAULT_MAX_PDU      (256u * 1024u)
#define AGORA__SERVE_DEFAULT_MAX_INSTANCE (4ull * 1024 * 1024 * 1024)
#define AGORA__SERVE_DEFAULT_ARTIM_MS     30000u
#define AGORA__SERVE_DEFAULT_IDLE_MS      60000u
#define AGORA__SERVE_DEFAULT_GRACE_MS     10000u

/* Check cfg (AE titles, limits, address). 0 or AGORA_EINVAL with what to change. */
int agora__serve_check(const agora__serve_config *cfg, struct agora__error *err);

/* Check cfg and open (create) the spool, as serve would, then close it. */
int agora__serve_check_spool(const agora__serve_config *cfg, struct agora__error *err);

typedef struct agora__serve_listener agora__serve_listener;
struct uv_loop_s;

/* Open the spool and listen on loop. cfg is borrowed until agora__serve_free. On an error
 * (address in use, ...) nothing is left but a closing handle: run the loop to release it. */
int agora__serve_listen(struct uv_loop_s *loop, const agora__serve_config *cfg,
                        agora__serve_listener **out, struct agora__error *err);
/* Stop accepting; open associations get shutdown_grace_ms, then are aborted; on_stopped(arg)
 * runs on the loop once every handle of the listener is closed (then agora__serve_free it). */
void agora__serve_stop(agora__serve_listener *l, void (*on_stopped)(void *arg), void *arg);
void agora__serve_free(agora__serve_listener *l);
/* What the spool holds (the daemon's health document). */
uint64_t agora__serve_spool_bytes(const agora__serve_listener *l);

#endif
