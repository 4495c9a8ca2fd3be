/*
 * A streaming multipart/related body parser (RFC 2046 §5.1, RFC 2387) for STOW-RS: a pure
 * state machine, no I/O and no allocation after create. Bytes go in at any chunking (one at a
 * time works); events come out through callbacks: a part's headers (parsed, bounded), its body
 * bytes (pointers into the input or into the parser, valid during the call only), its end.
 *
 * Bounds (agora__multipart_limits): the number of parts, the header lines of one part and
 * their total size, the total input. A boundary is 1..120 characters of RFC 2046 bchars (the
 * RFC says at most 70; peers send more).
 * Malformed input (no delimiter line ending, a header line without ':', obs-fold, a control
 * byte in a header, ...) and a limit stop the parser for good: every later call returns the
 * same error; a part open at that moment gets part_end(complete 0) first.
 * agora__multipart_finish says whether the body was complete (its close delimiter seen); a
 * part cut short gets part_end(complete 0) first. So every part_begin has one part_end, except
 * when a callback's non-zero return stopped the parser.
 */
#ifndef AGORA_HTTP_MULTIPART_H
#define AGORA_HTTP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

/* RFC 2046 allows 70 characters; Orthanc's DICOMweb plugin (1.7) sends 73 (two UUIDs). */
#define AGORA__MULTIPART_BOUNDARY_MAX 120
#define AGORA__MULTIPART_CTYPE_MAX    127 /* a part's Content-Type kept (longer: truncated) */

typedef struct agora__multipart_limits {
    unsigned max_parts;
    size_t max_header_bytes; /* all header lines of one part, CRLFs included */
    unsigned max_headers;    /* header lines of one part */
    uint64_t max_total;      /* input bytes (preamble and epilogue included) */
} agora__multipart_limits;

/* What a part's headers said. Header values are not kept beyond these (no PHI kept). */
typedef struct agora__multipart_part {
    unsigned index;                                    /* 0-based */
    char content_type[AGORA__MULTIPART_CTYPE_MAX + 1]; /* the value, trimmed; "" if absent */
    unsigned n_headers;
} agora__multipart_part;

/* Callbacks; a non-zero return stops the parser with that code (returned by feed). */
typedef struct agora__multipart_cb {
    int (*part_begin)(void *arg, const agora__multipart_part *part);
    int (*part_data)(void *arg, const uint8_t *p, size_t n);
    int (*part_end)(void *arg, int complete);
} agora__multipart_cb;

/* Why the parser stopped (agora__multipart_failure), besides a callback's code. */
typedef enum agora__multipart_fail {
    AGORA__MULTIPART_OK = 0,
    AGORA__MULTIPART_MALFORMED, /* syntax (returned code AGORA__EPROTO) */
    AGORA__MULTIPART_TRUNCATED, /* finish before the close delimiter (AGORA__EPROTO) */
    AGORA__MULTIPART_LIMIT,     /* a bound (AGORA_ELIMIT) */
    AGORA__MULTIPART_CALLBACK,  /* a callback returned non-zero */
} agora__multipart_fail;

typedef struct agora__multipart agora__multipart;

/* Extract the boundary from a Content-Type value: media type multipart/related (any case), a
 * "type" parameter if present must be application/dicom (*type_ok = 0 otherwise), boundary
 * quoted or not, 1..120 bchars. AGORA_EUNSUPPORTED: not multipart/related (415);
 * AGORA__EPROTO: no or a bad boundary, a malformed parameter list (400). */
int agora__multipart_boundary(const char *content_type, char out[AGORA__MULTIPART_BOUNDARY_MAX + 1],
                              int *type_ok, struct agora__error *err);

/* A parser for one body. boundary is copied. */
int agora__multipart_create(const char *boundary, const agora__multipart_limits *lim,
                            const agora__multipart_cb *cb, void *arg, agora__multipart **out,
                            struct agora__error *err);
/* Feed the next n bytes. 0, or the error that stopped the parser (sticky). */
int agora__multipart_feed(agora__multipart *m, const uint8_t *p, size_t n,
                          struct agora__error *err);
/* The body ended: 0 when the close delimiter was seen, else AGORA__EPROTO (truncated; an open
 * part gets part_end(arg, 0) first) or the sticky error. */
int agora__multipart_finish(agora__multipart *m, struct agora__error *err);
agora__multipart_fail agora__multipart_failure(const agora__multipart *m);
unsigned agora__multipart_parts(const agora__multipart *m); /* parts begun */
void agora__multipart_destroy(agora__multipart *m);

#endif
