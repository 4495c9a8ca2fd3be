/*
 * Our DICOM SCU (issue 12 item 7): a blocking C-STORE (and C-ECHO) requester on the PDU codec
 * (pdu.h) and the command codec (command.h). Call it from a thread that may block: every wait
 * is bounded by a timeout (connect, association answer, each DIMSE response, release), and
 * every PDU the peer sends is bounded by the max PDU we advertised (P-DATA-TF) or by
 * AGORA__PDU_ASSOCIATE_MAX (A-ASSOCIATE-AC); anything else is a protocol failure that aborts
 * the association.
 *
 * Presentation contexts come from the files (filemeta.h): one context per distinct
 * (SOP class, transfer syntax) of the batch, proposing the file's own transfer syntax only, so
 * a file is sent exactly as it is stored (no conversion in the host). A file whose context the
 * peer does not accept fails with AGORA__SCU_NO_CONTEXT; the other files are still sent. The
 * data set is streamed from the file in P-DATA-TF PDUs no larger than the peer's max PDU.
 *
 * One association per call (a batch of files). Per-file results say what happened to each file;
 * the association result says why files were not attempted. Messages carry host:port, AE
 * titles, status codes and what to do; never a UID or a data set value.
 */
#ifndef AGORA_DIMSE_SCU_H
#define AGORA_DIMSE_SCU_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

/* Why an association (or a file) did not get a DIMSE status. */
typedef enum agora__scu_fail {
    AGORA__SCU_OK = 0,          /* association established; per-file status is meaningful */
    AGORA__SCU_RESOLVE,         /* the host name did not resolve */
    AGORA__SCU_REFUSED,         /* TCP connection refused (nothing listening) */
    AGORA__SCU_UNREACHABLE,     /* network/host unreachable, other connect errors */
    AGORA__SCU_CONNECT_TIMEOUT, /* no TCP connection within connect_timeout_ms */
    AGORA__SCU_TIMEOUT,         /* no association answer / DIMSE response in time */
    AGORA__SCU_RESET,           /* the peer closed or reset the connection */
    AGORA__SCU_REJECTED,        /* A-ASSOCIATE-RJ (rj_* fields say which) */
    AGORA__SCU_ABORTED,         /* A-ABORT from the peer */
    AGORA__SCU_PROTOCOL,        /* the peer sent a malformed, oversize or unexpected PDU */
    AGORA__SCU_NO_CONTEXT,      /* (file) no accepted presentation context for its class+syntax */
    AGORA__SCU_BAD_FILE,        /* (file) unreadable or not a Part 10 file with a meta group */
    AGORA__SCU_NOT_SENT,        /* (file) not attempted: the association failed before it */
} agora__scu_fail;

/* A short stable name of a failure ("connection-refused", ...), for logs and classes. */
const char *agora__scu_fail_name(agora__scu_fail f);

typedef struct agora__scu_config {
    const char *host;       /* name or address; resolved with getaddrinfo */
    int port;               /* 1..65535 */
    const char *called_ae;  /* the peer's AE title (1..16 printable characters) */
    const char *calling_ae; /* ours */
    unsigned connect_timeout_ms, assoc_timeout_ms, dimse_timeout_ms; /* 0: 30 s each */
    uint32_t max_pdu; /* the largest P-DATA-TF we accept; 0: 64 KiB */
} agora__scu_config;

typedef struct agora__scu_file_result {
    agora__scu_fail fail; /* AGORA__SCU_OK: status holds the peer's DIMSE status */
    uint16_t status;      /* C-STORE-RSP (0000,0900) */
    char msg[160];        /* what went wrong (no UID); "" when status 0x0000 */
} agora__scu_file_result;

typedef struct agora__scu_result {
    agora__scu_fail fail;                    /* association level */
    uint8_t rj_result, rj_source, rj_reason; /* A-ASSOCIATE-RJ (PS3.8 9.3.4), when REJECTED */
    uint8_t abort_source, abort_reason;      /* A-ABORT, when ABORTED */
    uint32_t peer_max_pdu;                   /* from the A-ASSOCIATE-AC; 0: unlimited */
    size_t n_attempted;                      /* files for which a C-STORE-RQ was sent */
    char msg[256];                           /* what went wrong and what to do (no UID) */
} agora__scu_result;

/* Send n Part 10 files over one association. files[i] gets each file's result (n entries,
 * caller-owned); res the association's. Returns 0 when the batch was attempted (failures are in
 * res and files), AGORA_EINVAL for a bad config or n == 0 or more files than
 * AGORA__SCU_MAX_FILES, AGORA_ENOMEM. A file's transfer after the peer stops answering is
 * abandoned: the rest are AGORA__SCU_NOT_SENT with the association's failure in res. */
#define AGORA__SCU_MAX_FILES 100000u
int agora__scu_store(const agora__scu_config *cfg, const char *const *paths, size_t n,
                     agora__scu_file_result *files, agora__scu_result *res,
                     struct agora__error *err);

/* C-ECHO over one association. 0 with res filled (res->fail AGORA__SCU_OK and *status the
 * C-ECHO-RSP status when it worked), AGORA_EINVAL for a bad config. */
int agora__scu_echo(const agora__scu_config *cfg, uint16_t *status, agora__scu_result *res,
                    struct agora__error *err);

#endif
