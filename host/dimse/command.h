/*
 * DIMSE command sets (PS3.7 section 9 and E): group 0000, always Implicit VR Little Endian.
 * The parser reads only the elements a C-ECHO or C-STORE SCP needs and skips the rest; it is
 * bounded to AGORA__DIMSE_CMD_MAX bytes and AGORA__DIMSE_CMD_MAX_ELEMENTS elements, every
 * element must belong to group 0000 and fit the set, fixed-size elements must have their size,
 * and UIDs are checked (pdu.h, agora__uid_valid). A command set is not a data set: nothing
 * here reads patient data.
 */
#ifndef AGORA_DIMSE_COMMAND_H
#define AGORA_DIMSE_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "pdu.h"

struct agora__error;

#define AGORA__DIMSE_CMD_MAX          (16u * 1024u)
#define AGORA__DIMSE_CMD_MAX_ELEMENTS 64u

enum {
    AGORA__DIMSE_C_STORE_RQ = 0x0001,
    AGORA__DIMSE_C_STORE_RSP = 0x8001,
    AGORA__DIMSE_C_ECHO_RQ = 0x0030,
    AGORA__DIMSE_C_ECHO_RSP = 0x8030,
};
#define AGORA__DIMSE_NO_DATA_SET 0x0101u

/* Statuses we answer with (PS3.4 Annex B.2.3, PS3.7 C). */
enum {
    AGORA__DIMSE_SUCCESS = 0x0000,
    AGORA__DIMSE_SOP_CLASS_UNSUPPORTED = 0x0122,
    AGORA__DIMSE_OUT_OF_RESOURCES = 0xA700,
    AGORA__DIMSE_CANNOT_UNDERSTAND = 0xC000,
};

/* Which fields a parsed set had. */
#define AGORA__CMD_HAS_FIELD        0x01u
#define AGORA__CMD_HAS_MESSAGE_ID   0x02u
#define AGORA__CMD_HAS_DATA_SET     0x04u
#define AGORA__CMD_HAS_SOP_CLASS    0x08u
#define AGORA__CMD_HAS_SOP_INSTANCE 0x10u
#define AGORA__CMD_HAS_STATUS       0x20u
#define AGORA__CMD_HAS_MESSAGE_RSP  0x40u

typedef struct agora__dimse_cmd {
    unsigned has;         /* AGORA__CMD_HAS_* */
    uint16_t field;       /* (0000,0100) */
    uint16_t message_id;  /* (0000,0110) */
    uint16_t message_rsp; /* (0000,0120) */
    uint16_t priority;    /* (0000,0700) */
    uint16_t data_set;    /* (0000,0800): AGORA__DIMSE_NO_DATA_SET or any other value */
    uint16_t status;      /* (0000,0900) */
    char sop_class[AGORA__PDU_UID_MAX + 1];    /* (0000,0002) Affected SOP Class UID */
    char sop_instance[AGORA__PDU_UID_MAX + 1]; /* (0000,1000) Affected SOP Instance UID */
} agora__dimse_cmd;

/* Parse a complete command set. 0 or AGORA_EINVAL (err says which element). */
int agora__dimse_cmd_parse(const uint8_t *buf, size_t len, agora__dimse_cmd *out,
                           struct agora__error *err);

/* Encode a command set: a request (message_id set) or a response (message_rsp and status set;
 * pass has with the fields to write). Returns the length, 0 when it does not fit in cap. */
size_t agora__dimse_cmd_encode(const agora__dimse_cmd *cmd, uint8_t *out, size_t cap);

#endif
