/*
 * The Part 10 file meta group (PS3.10 7.1), the host's ONE reader of it: a 128-byte preamble,
 * "DICM", then group 0002 in Explicit VR Little Endian starting with its group length
 * (0002,0000) UL. Only group 0002 is read; the data set after it is never parsed in the host
 * process (a sender hands it to the peer as bytes from data_offset, STOW-RS receive writes it
 * to the spool as bytes).
 *
 * Users: the C-STORE SCU and the STOW-RS client read the files they send
 * (agora__filemeta_read); STOW-RS receive (host/http/stow.c) feeds each part's first bytes to
 * the incremental reader as they arrive. Both go through the same state machine.
 *
 * Bounds: preamble + DICM + the whole group at most AGORA__FILEMETA_MAX bytes (told by the
 * group length, checked before the group is buffered); every element inside the group; no
 * other group inside it; no undefined length. Kept: Media Storage SOP Class UID (0002,0002),
 * Media Storage SOP Instance UID (0002,0003), Transfer Syntax UID (0002,0010), each VR UI, at
 * most once, a valid UID (pdu.h agora__uid_valid) after at most one NUL or space of padding. A
 * meta group without one of them is refused: it names no presentation context.
 *
 * Errors are AGORA_EINVAL with what was wrong and never a value from the input (a UID is PHI
 * adjacent: never log one).
 */
#ifndef AGORA_DIMSE_FILEMETA_H
#define AGORA_DIMSE_FILEMETA_H

#include <stddef.h>
#include <stdint.h>

#include "pdu.h"

struct agora__error;

#define AGORA__FILEMETA_MAX (16u * 1024u) /* preamble + DICM + group 0002, at most */

typedef struct agora__filemeta {
    char sop_class[AGORA__PDU_UID_MAX + 1];    /* (0002,0002) Media Storage SOP Class UID */
    char sop_instance[AGORA__PDU_UID_MAX + 1]; /* (0002,0003); a real UID: never log it */
    char ts[AGORA__PDU_UID_MAX + 1];           /* (0002,0010) Transfer Syntax UID */
    uint64_t data_offset; /* first byte of the data set = preamble + DICM + the whole group */
    uint64_t file_size;   /* set by agora__filemeta_read only */
} agora__filemeta;

/* The incremental reader. No allocation: it buffers at most AGORA__FILEMETA_MAX bytes, so the
 * caller owns it (a member of a per-request struct, or heap; ~16 KiB). */
typedef struct agora__filemeta_reader {
    uint8_t buf[AGORA__FILEMETA_MAX];
    size_t have, need; /* need: bytes to hold the whole meta (known after the group length) */
    int state;         /* private */
} agora__filemeta_reader;

enum { AGORA__FILEMETA_MORE = 0, AGORA__FILEMETA_DONE = 1 };

void agora__filemeta_init(agora__filemeta_reader *r);
/* Feed the next bytes of the file or part. *used: how many of them belong to the meta group
 * (the rest is data set). AGORA__FILEMETA_MORE, AGORA__FILEMETA_DONE (out filled; further
 * calls answer DONE again and use nothing) or AGORA_EINVAL (sticky). */
int agora__filemeta_feed(agora__filemeta_reader *r, const uint8_t *p, size_t n, size_t *used,
                         agora__filemeta *out, struct agora__error *err);

/* Parse the start of a file held in buf (at least the whole meta group, or the whole file):
 * the same checks, in one call. One leniency for files on disk: a group written without its
 * group length (some older writers) is delimited by stepping over its element headers, within
 * the same bound; the incremental reader (a STOW-RS part) requires the group length. 0 or
 * AGORA_EINVAL. */
int agora__filemeta_parse(const uint8_t *buf, size_t len, agora__filemeta *out,
                          struct agora__error *err);

/* Open path (a regular file), feed its head to the reader (at most AGORA__FILEMETA_MAX bytes
 * are read) and set file_size. 0, AGORA_EINVAL (not a Part 10 file we can send: the message
 * says why) or a system error. */
int agora__filemeta_read(const char *path, agora__filemeta *out, struct agora__error *err);

#endif
