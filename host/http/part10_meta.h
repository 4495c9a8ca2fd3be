/*
 * The Part 10 file meta group (PS3.10 §7.1) of a STOW-RS part, read incrementally and bounded:
 * a 128-byte preamble, "DICM", then group 0002 in Explicit VR Little Endian starting with its
 * group length (0002,0000) UL. Only group 0002 is read: the data set after it is never looked
 * at. What is kept: Media Storage SOP Class UID (0002,0002), Media Storage SOP Instance UID
 * (0002,0003), Transfer Syntax UID (0002,0010), each checked as a UID (1..64 characters,
 * digits and dots, no empty component, one trailing NUL or space of padding).
 *
 * The caller feeds a part's first bytes until the reader says DONE; meta_len is then the
 * offset of the data set in the part (the bytes fed beyond it belong to the data set). No
 * allocation: the reader buffers at most AGORA__P10META_MAX bytes.
 */
#ifndef AGORA_HTTP_PART10_META_H
#define AGORA_HTTP_PART10_META_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

#define AGORA__P10META_MAX     (16u * 1024u) /* preamble + DICM + group 0002, at most */
#define AGORA__P10META_UID_MAX 64

typedef struct agora__p10meta {
    char sop_class[AGORA__P10META_UID_MAX + 1];
    char sop_instance[AGORA__P10META_UID_MAX + 1];
    char transfer_syntax[AGORA__P10META_UID_MAX + 1];
    size_t meta_len; /* preamble + DICM + the whole group 0002 */
} agora__p10meta;

typedef struct agora__p10meta_reader {
    uint8_t buf[AGORA__P10META_MAX];
    size_t have, need; /* need: bytes to hold the whole meta (known after the group length) */
    int state;         /* private */
} agora__p10meta_reader;

enum { AGORA__P10META_MORE = 0, AGORA__P10META_DONE = 1 };

void agora__p10meta_init(agora__p10meta_reader *r);
/* Feed bytes. *used: how many of them belong to the meta group (the rest is data set).
 * AGORA__P10META_MORE, AGORA__P10META_DONE (out filled), or AGORA__EPROTO (not a Part 10 file,
 * a malformed or oversize meta group; err says which, with no value from the input). */
int agora__p10meta_feed(agora__p10meta_reader *r, const uint8_t *p, size_t n, size_t *used,
                        agora__p10meta *out, struct agora__error *err);
/* Parse a whole meta group held in memory (the same checks; for tests and the fuzzer). */
int agora__p10meta_parse(const uint8_t *p, size_t n, agora__p10meta *out, struct agora__error *err);

#endif
