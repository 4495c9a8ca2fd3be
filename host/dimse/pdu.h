/*
 * DICOM upper layer PDUs (PS3.8 section 9.3): the byte codec, nothing else. Parsing is the only
 * network parsing the host process does, so every field is bounded here: the PDU length by the
 * caller (agora__pdu_header), item lengths by the PDU, UIDs to 64 characters of digits and dots,
 * AE titles to 16 printable characters, presentation contexts to 128, transfer syntaxes kept per
 * context to AGORA__PDU_MAX_TS. Data sets inside P-DATA-TF are never looked at: a PDV is a
 * (context id, control byte, bytes) triple handed on as it is.
 *
 * Encoders write into a caller's buffer and return the length written, or 0 when it does not
 * fit. Parsers take the PDU body (after the 6-byte header) and fill a caller-owned struct; they
 * keep no pointer into the input.
 */
#ifndef AGORA_DIMSE_PDU_H
#define AGORA_DIMSE_PDU_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

enum {
    AGORA__PDU_ASSOCIATE_RQ = 0x01,
    AGORA__PDU_ASSOCIATE_AC = 0x02,
    AGORA__PDU_ASSOCIATE_RJ = 0x03,
    AGORA__PDU_P_DATA_TF = 0x04,
    AGORA__PDU_RELEASE_RQ = 0x05,
    AGORA__PDU_RELEASE_RP = 0x06,
    AGORA__PDU_ABORT = 0x07,
};

#define AGORA__PDU_HEADER_LEN 6
#define AGORA__PDU_UID_MAX    64
#define AGORA__PDU_AE_MAX     16
#define AGORA__PDU_MAX_PC     128 /* odd ids 1..255 */
#define AGORA__PDU_MAX_TS     16  /* kept per context; further proposals are skipped */
/* An A-ASSOCIATE-RQ body longer than this is refused (128 contexts of 16 syntaxes fit). */
#define AGORA__PDU_ASSOCIATE_MAX (64u * 1024u)
/* Bounds of the max-PDU length we advertise (and of --max-pdu). */
#define AGORA__PDU_MIN_MAX_LEN 4096u
#define AGORA__PDU_MAX_MAX_LEN (16u * 1024u * 1024u)

#define AGORA__UID_APPLICATION_CONTEXT "1.2.840.10008.3.1.1.1"

/* A-ASSOCIATE-AC presentation context results (PS3.8 9.3.3.2). */
enum {
    AGORA__PC_ACCEPT = 0,
    AGORA__PC_USER_REJECT = 1,
    AGORA__PC_NO_REASON = 2,
    AGORA__PC_ABSTRACT_UNSUPPORTED = 3,
    AGORA__PC_TS_UNSUPPORTED = 4,
};

/* A-ASSOCIATE-RJ result / source / reason (PS3.8 9.3.4). */
enum { AGORA__RJ_PERMANENT = 1, AGORA__RJ_TRANSIENT = 2 };
enum { AGORA__RJ_SRC_USER = 1, AGORA__RJ_SRC_ACSE = 2, AGORA__RJ_SRC_PRESENTATION = 3 };
enum {
    AGORA__RJ_USER_NO_REASON = 1,
    AGORA__RJ_USER_APP_CONTEXT = 2,
    AGORA__RJ_USER_CALLING_AE = 3,
    AGORA__RJ_USER_CALLED_AE = 7,
    AGORA__RJ_ACSE_VERSION = 2,
    AGORA__RJ_PRES_CONGESTION = 1,
    AGORA__RJ_PRES_LOCAL_LIMIT = 2,
};

/* A-ABORT source and reason (PS3.8 9.3.8). */
enum { AGORA__ABORT_SRC_USER = 0, AGORA__ABORT_SRC_PROVIDER = 2 };
enum {
    AGORA__ABORT_NOT_SPECIFIED = 0,
    AGORA__ABORT_UNRECOGNIZED_PDU = 1,
    AGORA__ABORT_UNEXPECTED_PDU = 2,
    AGORA__ABORT_UNRECOGNIZED_PARAM = 4,
    AGORA__ABORT_UNEXPECTED_PARAM = 5,
    AGORA__ABORT_INVALID_PARAM = 6,
};

typedef struct agora__pdu_pc {
    uint8_t id;
    char abstract_syntax[AGORA__PDU_UID_MAX + 1];
    uint8_t n_ts;
    char ts[AGORA__PDU_MAX_TS][AGORA__PDU_UID_MAX + 1];
} agora__pdu_pc;

/* An A-ASSOCIATE-RQ (about 140 KiB: allocate it, do not put it on a small stack). */
typedef struct agora__pdu_assoc_rq {
    uint16_t protocol_version;
    char called_ae[AGORA__PDU_AE_MAX + 1];  /* spaces trimmed */
    char calling_ae[AGORA__PDU_AE_MAX + 1]; /* spaces trimmed */
    char app_context[AGORA__PDU_UID_MAX + 1];
    size_t n_pc;
    agora__pdu_pc pc[AGORA__PDU_MAX_PC];
    uint32_t max_pdu; /* the peer's maximum P-DATA-TF length; 0: no limit */
    char impl_class_uid[AGORA__PDU_UID_MAX + 1];
    char impl_version[AGORA__PDU_AE_MAX + 1];
} agora__pdu_assoc_rq;

typedef struct agora__pdu_pc_result {
    uint8_t id;
    uint8_t result;                  /* AGORA__PC_* */
    char ts[AGORA__PDU_UID_MAX + 1]; /* the accepted syntax (any proposed one otherwise) */
} agora__pdu_pc_result;

typedef struct agora__pdu_assoc_ac {
    char called_ae[AGORA__PDU_AE_MAX + 1];
    char calling_ae[AGORA__PDU_AE_MAX + 1];
    size_t n_pc;
    agora__pdu_pc_result pc[AGORA__PDU_MAX_PC];
    uint32_t max_pdu; /* the largest P-DATA-TF we accept */
    const char *impl_class_uid;
    const char *impl_version;
} agora__pdu_assoc_ac;

/* One presentation data value item of a P-DATA-TF. data points into the parsed PDU body. */
typedef struct agora__pdu_pdv {
    uint8_t pc_id;
    uint8_t control; /* bit 0: command (1) or data set (0); bit 1: last fragment */
    const uint8_t *data;
    size_t len;
} agora__pdu_pdv;
#define AGORA__PDV_COMMAND 0x01u
#define AGORA__PDV_LAST    0x02u

/* The 6-byte PDU header: type and body length (big endian). */
void agora__pdu_header(const uint8_t h[AGORA__PDU_HEADER_LEN], uint8_t *type, uint32_t *len);

/* Parse an A-ASSOCIATE-RQ body. 0, or AGORA_EINVAL with the field that was wrong in err. */
int agora__pdu_parse_assoc_rq(const uint8_t *body, size_t len, agora__pdu_assoc_rq *out,
                              struct agora__error *err);

/* Parse a peer's A-ASSOCIATE-AC body (the fields an SCU needs): accepted contexts in out->pc,
 * the peer's max PDU. 0 or AGORA_EINVAL. */
int agora__pdu_parse_assoc_ac(const uint8_t *body, size_t len, agora__pdu_assoc_ac *out,
                              struct agora__error *err);

/* The next PDV of a P-DATA-TF body at *off. 1 with *pdv filled, 0 at the end, AGORA_EINVAL
 * when an item is malformed (length below 2 or past the body). */
int agora__pdu_next_pdv(const uint8_t *body, size_t len, size_t *off, agora__pdu_pdv *pdv,
                        struct agora__error *err);

/* Check the 4-byte body of A-RELEASE-RQ/RP; A-ABORT's and A-ASSOCIATE-RJ's give source and
 * reason. 0 or AGORA_EINVAL. */
int agora__pdu_parse_short(uint8_t type, const uint8_t *body, size_t len, uint8_t *a, uint8_t *b,
                           uint8_t *c, struct agora__error *err);

size_t agora__pdu_encode_assoc_rq(const agora__pdu_assoc_rq *rq, uint8_t *out, size_t cap);
size_t agora__pdu_encode_assoc_ac(const agora__pdu_assoc_ac *ac, uint8_t *out, size_t cap);
size_t agora__pdu_encode_assoc_rj(uint8_t result, uint8_t source, uint8_t reason, uint8_t *out,
                                  size_t cap);
size_t agora__pdu_encode_release(uint8_t type /* RQ or RP */, uint8_t *out, size_t cap);
size_t agora__pdu_encode_abort(uint8_t source, uint8_t reason, uint8_t *out, size_t cap);
/* A P-DATA-TF holding one PDV. */
size_t agora__pdu_encode_pdata(uint8_t pc_id, uint8_t control, const uint8_t *data, size_t len,
                               uint8_t *out, size_t cap);

/* Non-zero when s is a syntactically valid UID (1..64 characters of digits and dots, no empty
 * component, no leading zero in a component). */
int agora__uid_valid(const char *s, size_t len);

#endif
