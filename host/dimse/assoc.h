/*
 * One DICOM association seen from the SCP side (PS3.8 9.2 state machine, the states an
 * acceptor passes through): bytes in, bytes out, store events. No I/O, no clock: the caller
 * (server.c, or a test) feeds what the socket read, sends what `send` is given, and runs the
 * ARTIM/idle timers itself, asking agora__assoc_abort when one fires.
 *
 * States: AWAIT_RQ (transport open, ARTIM running; only A-ASSOCIATE-RQ is valid) →
 * ESTABLISHED (P-DATA-TF, A-RELEASE-RQ, A-ABORT) → CLOSED (an A-ASSOCIATE-RJ, A-RELEASE-RP or
 * A-ABORT was sent or received: the caller closes the connection once the sent bytes are out;
 * later input is ignored). Any PDU that is malformed, unexpected in the state, of unknown type,
 * or longer than its bound (P-DATA-TF: the max-PDU length we advertised; A-ASSOCIATE-RQ:
 * AGORA__PDU_ASSOCIATE_MAX; the others: 4 bytes) is answered with A-ABORT.
 *
 * DIMSE: one message at a time (no asynchronous operations window is negotiated). C-ECHO-RQ is
 * answered at once. C-STORE-RQ: the command set (at most AGORA__DIMSE_CMD_MAX bytes) is parsed,
 * then the data set fragments are handed to store_data unparsed and in order, and the
 * C-STORE-RSP is sent with the status store_end returns, so a caller that makes the instance
 * durable in store_end answers success only for what is durable.
 */
#ifndef AGORA_DIMSE_ASSOC_H
#define AGORA_DIMSE_ASSOC_H

#include <stddef.h>
#include <stdint.h>

#include "pdu.h"

#define AGORA__UID_VERIFICATION "1.2.840.10008.1.1"

enum {
    AGORA__ABSTRACT_UNSUPPORTED = 0,
    AGORA__ABSTRACT_VERIFICATION = 1,
    AGORA__ABSTRACT_STORAGE = 2,
};
/* syntaxes.c: what is accepted. */
int agora__dimse_abstract_kind(const char *uid);
int agora__dimse_ts_accepted(int kind, const char *uid);

typedef enum agora__assoc_state {
    AGORA__ASSOC_AWAIT_RQ,
    AGORA__ASSOC_ESTABLISHED,
    AGORA__ASSOC_CLOSED,
} agora__assoc_state;

/* What a C-STORE carries before its data set: all from the command set and the negotiated
 * context (valid during store_begin only). */
typedef struct agora__store_info {
    const char *calling_ae, *called_ae;
    const char *sop_class, *sop_instance; /* Affected SOP Class / Instance UID */
    const char *transfer_syntax;          /* of the presentation context */
} agora__store_info;

typedef struct agora__assoc_ops {
    void *ctx;
    /* Queue len bytes for the peer (copy them). Non-zero: the connection is gone. */
    int (*send)(void *ctx, const uint8_t *buf, size_t len);
    /* A well-formed A-ASSOCIATE-RQ from an allowed AE: 0 admits it (the caller counts it as an
     * association until the connection closes), or AGORA__RJ_PRES_CONGESTION /
     * AGORA__RJ_PRES_LOCAL_LIMIT to reject it as transient. */
    int (*admit)(void *ctx);
    /* A C-STORE data set follows. Return AGORA__DIMSE_SUCCESS and set *handle (NULL: discard
     * the bytes and answer success, a duplicate), or another DIMSE status to refuse it (the
     * bytes are discarded and that status is answered). */
    uint16_t (*store_begin)(void *ctx, const agora__store_info *info, void **handle);
    /* The next fragment of the data set. Non-zero aborts the association. */
    int (*store_data)(void *ctx, void *handle, const uint8_t *p, size_t n);
    /* complete=1: the data set ended; make it durable and return the status to answer.
     * complete=0: the association ended first; drop it (return value ignored). */
    uint16_t (*store_end)(void *ctx, void *handle, int complete);
} agora__assoc_ops;

typedef struct agora__assoc_config {
    const char *ae_title;        /* our AE title: the called AE must equal it */
    const char *const *allow_ae; /* calling AE titles allowed; n_allow_ae 0: any */
    size_t n_allow_ae;
    uint32_t max_pdu; /* the P-DATA-TF length we accept (advertised) */
} agora__assoc_config;

typedef struct agora__assoc agora__assoc;

/* cfg's strings must outlive the association. NULL when out of memory. */
agora__assoc *agora__assoc_new(const agora__assoc_config *cfg, const agora__assoc_ops *ops);
/* Frees it; an unfinished store is dropped (store_end with complete=0). */
void agora__assoc_free(agora__assoc *a);

/* Feed bytes read from the peer. Returns the state afterwards. */
agora__assoc_state agora__assoc_feed(agora__assoc *a, const uint8_t *p, size_t n);
/* Abort from our side (a timer fired, shutdown): sends A-ABORT unless closed already. */
void agora__assoc_abort(agora__assoc *a, const char *why);

agora__assoc_state agora__assoc_state_of(const agora__assoc *a);
/* Complete PDUs processed so far (the caller's idle timer restarts when this grows, so a peer
 * trickling bytes of one PDU does not keep the association alive). */
uint64_t agora__assoc_pdus(const agora__assoc *a);
/* The calling AE title once an RQ was parsed, else "". */
const char *agora__assoc_calling_ae(const agora__assoc *a);
/* During admit: the A-ASSOCIATE-RQ proposes Verification only (a C-ECHO can store nothing, so
 * the spool watermark need not refuse it: a monitor still sees the daemon answer). */
int agora__assoc_echo_only(const agora__assoc *a);
/* Why the association ended ("" while open or after a normal release); no PHI. */
const char *agora__assoc_end_reason(const agora__assoc *a);

#endif
