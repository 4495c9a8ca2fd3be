/*
 * The Part 10 file meta group (PS3.10 7.1) of a file we are about to send: the preamble, "DICM"
 * and group 0002 only, read by a small bounded parser. The data set that follows is never
 * parsed in the host process; a sender hands it to the peer as bytes, starting at
 * data_offset.
 *
 * Bounds: the group is at most AGORA__FILEMETA_MAX bytes and AGORA__FILEMETA_MAX_ELEMENTS
 * elements, always Explicit VR Little Endian, every element inside the group, the UIDs
 * syntactically valid (pdu.h agora__uid_valid). A file without (0002,0002), (0002,0003) or
 * (0002,0010) is refused: it names no presentation context.
 */
#ifndef AGORA_DIMSE_FILEMETA_H
#define AGORA_DIMSE_FILEMETA_H

#include <stddef.h>
#include <stdint.h>

#include "pdu.h"

struct agora__error;

#define AGORA__FILEMETA_MAX          (8u * 1024u)
#define AGORA__FILEMETA_MAX_ELEMENTS 32u

typedef struct agora__filemeta {
    char sop_class[AGORA__PDU_UID_MAX + 1];    /* (0002,0002) Media Storage SOP Class UID */
    char sop_instance[AGORA__PDU_UID_MAX + 1]; /* (0002,0003); a real UID: never log it */
    char ts[AGORA__PDU_UID_MAX + 1];           /* (0002,0010) Transfer Syntax UID */
    uint64_t data_offset;                      /* first byte of the data set */
    uint64_t file_size;
} agora__filemeta;

/* Parse the start of a file held in buf (at least the preamble and the whole group, or the
 * whole file). 0, or AGORA_EINVAL with what was wrong (never a UID value) in err. */
int agora__filemeta_parse(const uint8_t *buf, size_t len, agora__filemeta *out,
                          struct agora__error *err);

/* Open path and parse its meta group (reads at most 132 + AGORA__FILEMETA_MAX bytes); sets
 * file_size. 0, AGORA_EINVAL (not a Part 10 file we can send) or a system error. */
int agora__filemeta_read(const char *path, agora__filemeta *out, struct agora__error *err);

#endif
