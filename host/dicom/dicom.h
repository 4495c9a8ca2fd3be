/*
 * DICOM Part 10 reader and dataset model (internal to the host; also linked, unsanitized, into
 * the sandboxed runner).
 *
 * The parser is pure: it reads a caller-provided memory buffer, does no file I/O, touches no
 * mutable global state and bounds every size, count and depth by agora__dicom_limits. Untrusted
 * input fails with a one-line agora__error (no attribute values in messages), never a crash, and
 * never an allocation larger than the input (or the configured inflate cap) justifies.
 *
 * Ownership:
 *   - agora__dicom_read() returns an agora__dicom_file that owns every element, item and
 *     fragment array (one arena, freed by agora__dicom_file_free()).
 *   - Element values point INTO THE CALLER'S BUFFER (which must outlive the file), or into the
 *     inflated copy the file owns (Deflated syntax), or into the file's arena for values set by
 *     agora__dicom_set(). Either way they live exactly as long as the file.
 *   - Value bytes are in the byte order of the stream they came from: big-endian when
 *     AGORA__DICOM_EL_BIG_ENDIAN is set on the element (Explicit VR Big Endian), else
 *     little-endian. The typed getters handle both.
 *
 * Stability: other modules (deid: de-identification and the Part 10 writer) build on this
 * header. Fields and functions are only ever added, never changed.
 */
#ifndef AGORA_HOST_DICOM_H
#define AGORA_HOST_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* ---- Tags and VRs -----------------------------------------------------------------------------
 */

#define AGORA__DICOM_TAG(g, e) ((uint32_t)(((uint32_t)(g) << 16) | (uint32_t)(e)))
#define AGORA__DICOM_GROUP(t)  ((uint16_t)((t) >> 16))
#define AGORA__DICOM_ELEM(t)   ((uint16_t)((t)&0xFFFFu))

/* A VR packed as two ASCII characters, e.g. AGORA__DICOM_VR('O','B') == 0x4F42. */
#define AGORA__DICOM_VR(a, b) ((uint16_t)(((unsigned)(a) << 8) | (unsigned)(b)))
#define AGORA__DICOM_VR_UN    AGORA__DICOM_VR('U', 'N')
#define AGORA__DICOM_VR_SQ    AGORA__DICOM_VR('S', 'Q')

/* Frequently used tags. */
#define AGORA__DICOM_T_TRANSFER_SYNTAX    AGORA__DICOM_TAG(0x0002, 0x0010)
#define AGORA__DICOM_T_PIXEL_DATA         AGORA__DICOM_TAG(0x7FE0, 0x0010)
#define AGORA__DICOM_T_EXT_OFFSET_TABLE   AGORA__DICOM_TAG(0x7FE0, 0x0001)
#define AGORA__DICOM_T_EXT_OFFSET_LENGTHS AGORA__DICOM_TAG(0x7FE0, 0x0002)
#define AGORA__DICOM_T_ITEM               AGORA__DICOM_TAG(0xFFFE, 0xE000)
#define AGORA__DICOM_T_ITEM_END           AGORA__DICOM_TAG(0xFFFE, 0xE00D)
#define AGORA__DICOM_T_SEQ_END            AGORA__DICOM_TAG(0xFFFE, 0xE0DD)

#define AGORA__DICOM_UNDEFINED_LENGTH 0xFFFFFFFFu

/* Writes the two characters of vr and a NUL into out[3]; returns out. */
char *agora__dicom_vr_str(uint16_t vr, char out[3]);

/* ---- Transfer syntaxes ----------------------------------------------------------------------- */

/* How the dataset after the meta group is encoded. */
typedef enum agora__dicom_encoding {
    AGORA__DICOM_IMPLICIT_LE = 1,
    AGORA__DICOM_EXPLICIT_LE = 2,
    AGORA__DICOM_EXPLICIT_BE = 3,
    AGORA__DICOM_DEFLATED_LE = 4 /* Explicit VR LE after raw deflate */
} agora__dicom_encoding;

#define AGORA__DICOM_TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define AGORA__DICOM_TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define AGORA__DICOM_TS_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define AGORA__DICOM_TS_EXPLICIT_BE "1.2.840.10008.1.2.2"

/* Encoding of a transfer syntax UID: the four native ones map to themselves; every other
 * (encapsulated/compressed) syntax is Explicit VR LE. Returns 0 for a NULL/empty UID. */
agora__dicom_encoding agora__dicom_ts_encoding(const char *uid);
/* Non-zero for the native (uncompressed) syntaxes whose Pixel Data is not encapsulated. */
int agora__dicom_ts_is_native(const char *uid);
/* A short human name ("JPEG Baseline (Process 1)") or NULL when unknown. */
const char *agora__dicom_ts_name(const char *uid);

/* ---- Limits ---------------------------------------------------------------------------------- */

typedef struct agora__dicom_limits {
    uint32_t max_depth;          /* sequence nesting depth (default 16) */
    uint64_t max_elements;       /* elements + items in the whole tree (default 4,000,000) */
    uint64_t max_fragments;      /* encapsulated fragments in Pixel Data (default 1,000,000) */
    uint64_t max_inflated_bytes; /* Deflated syntax: inflated size cap (default 1 GiB) */
    uint32_t max_inflate_ratio;  /* and at most this times the deflated size (default 64) */
    uint32_t flags;              /* AGORA__DICOM_READ_* */
} agora__dicom_limits;

/* Stop at (7FE0,0010) Pixel Data of the top-level dataset: it and everything after it are not
 * parsed (the element is not present). Used by the study scanner to read only metadata. */
#define AGORA__DICOM_READ_STOP_AT_PIXELS 0x1u
/* Input without a preamble + "DICM" is accepted only when it starts like a dataset (see
 * agora__dicom_sniff); anything else is refused as "not a DICOM file". */

void agora__dicom_limits_default(agora__dicom_limits *limits);

/* ---- Dataset model --------------------------------------------------------------------------- */

typedef struct agora__dicom_element agora__dicom_element;

/* A dataset or a sequence item: elements in ascending tag order (the reader sorts stably when a
 * file is out of order and flags it; lookups return the first of duplicate tags). */
typedef struct agora__dicom_dataset {
    agora__dicom_element *elements;
    uint32_t n_elements;
    uint32_t length; /* item length as declared (AGORA__DICOM_UNDEFINED_LENGTH if undefined); 0
                        for top-level datasets */
    uint64_t offset; /* offset of the item tag (or first element) in the decoded stream */
} agora__dicom_dataset;

/* One fragment of encapsulated Pixel Data. */
typedef struct agora__dicom_fragment {
    const uint8_t *data;
    uint32_t length;
    uint64_t offset; /* offset of the fragment's item tag in the decoded stream */
} agora__dicom_fragment;

/* Element flags. */
#define AGORA__DICOM_EL_BIG_ENDIAN   0x01u /* value bytes are big-endian */
#define AGORA__DICOM_EL_UNDEF_LENGTH 0x02u /* the file declared an undefined length */
#define AGORA__DICOM_EL_ENCAPSULATED 0x04u /* Pixel Data in fragments (see fragments/bot) */
#define AGORA__DICOM_EL_VR_IMPLICIT  0x08u /* VR came from the dictionary (Implicit VR) */
#define AGORA__DICOM_EL_OWNED        0x10u /* value lives in the file's arena (set by caller) */
#define AGORA__DICOM_EL_UN_AS_SQ     0x20u /* VR UN, undefined length: parsed as implicit LE SQ */

struct agora__dicom_element {
    uint32_t tag;
    uint16_t vr;     /* AGORA__DICOM_VR(..); implicit VR: from the dictionary, UN if unknown */
    uint16_t flags;  /* AGORA__DICOM_EL_* */
    uint32_t length; /* value length as declared (AGORA__DICOM_UNDEFINED_LENGTH if undefined) */
    uint64_t offset; /* offset of the element's tag in the decoded stream */
    const uint8_t *value; /* value bytes; NULL for SQ, encapsulated data and empty values */
    uint64_t value_len;   /* bytes at value */
    /* SQ (and UN of undefined length, parsed as SQ): the items. */
    agora__dicom_dataset *items;
    uint32_t n_items;
    /* Encapsulated Pixel Data: the Basic Offset Table (first item; may be empty) and the
     * fragments after it, in file order. */
    uint32_t n_fragments;
    agora__dicom_fragment *fragments;
    const uint8_t *bot;
    uint32_t bot_len;
};

/* File-level warnings (bitset in agora__dicom_file.warnings); the file was still read. */
#define AGORA__DICOM_W_NO_PREAMBLE       0x01u /* no 128-byte preamble + "DICM" */
#define AGORA__DICOM_W_NO_META           0x02u /* no group 0002; syntax was guessed */
#define AGORA__DICOM_W_OUT_OF_ORDER      0x04u /* tags not ascending; sorted */
#define AGORA__DICOM_W_DUPLICATE_TAG     0x08u /* a tag occurs twice in one dataset */
#define AGORA__DICOM_W_ODD_LENGTH        0x10u /* an element declared an odd length */
#define AGORA__DICOM_W_TRAILING_BYTES    0x20u /* bytes after the last element were ignored */
#define AGORA__DICOM_W_META_SYNTAX_GUESS 0x40u /* meta said one syntax, data was another */

typedef struct agora__dicom_arena agora__dicom_arena; /* private */

typedef struct agora__dicom_file {
    agora__dicom_dataset meta;      /* group 0002 elements (empty when the file had none) */
    agora__dicom_dataset dataset;   /* everything after the meta group */
    char transfer_syntax[65];       /* (0002,0010) trimmed, or the guessed native syntax UID */
    agora__dicom_encoding encoding; /* how `dataset` was encoded in the file */
    uint32_t warnings;              /* AGORA__DICOM_W_* */
    uint64_t dataset_offset;        /* offset of the dataset (after meta) in the input buffer */
    agora__dicom_arena *arena;      /* owns all arrays, the inflated stream and set values */
} agora__dicom_file;

/*
 * Parse a Part 10 file (with or without preamble/meta) from buf[0..len). buf must stay valid
 * and unchanged until agora__dicom_file_free(). limits may be NULL (defaults). Returns 0 and
 * *out, or a negative AGORA_E* with err set: AGORA_EINPUT (malformed/truncated input, says
 * where), AGORA_ELIMIT (a limit was reached, says which), AGORA_EUNSUPPORTED, AGORA_ENOMEM.
 */
int agora__dicom_read(const uint8_t *buf, size_t len, const agora__dicom_limits *limits,
                      agora__dicom_file **out, agora__error *err);
void agora__dicom_file_free(agora__dicom_file *file);

/* Quick check without parsing: non-zero when buf looks like DICOM (preamble+DICM, or a dataset
 * starting with group 0002/0008 in a plausible encoding). Used to skip non-DICOM files. */
int agora__dicom_sniff(const uint8_t *buf, size_t len);

/* ---- Lookups and typed getters --------------------------------------------------------------- */

/* The element with this tag in ds (not descending into sequences), or NULL. Binary search. */
const agora__dicom_element *agora__dicom_find(const agora__dicom_dataset *ds, uint32_t tag);
/* Index of the first element with tag >= `tag` (n_elements when none). */
uint32_t agora__dicom_lower_bound(const agora__dicom_dataset *ds, uint32_t tag);

/* Number of values (VM) of an element: backslash-separated for text VRs, value_len / size for
 * binary numeric VRs (US, SS, UL, SL, FL, FD, AT, UV, SV, OW...), 1 for other non-empty values,
 * the number of items for sequences, 0 when empty. */
size_t agora__dicom_vm(const agora__dicom_element *e);

/*
 * Value `index` of a text element, trailing spaces and NULs trimmed (leading spaces too, except
 * for UT/ST/LT whose leading spaces are significant). Not split for UT/ST/LT/UR (VM 1). Writes a
 * NUL-terminated string to out. Returns 0, AGORA_EINPUT when there is no such value or the VR is
 * not text, AGORA_ELIMIT when out is too small (out holds the truncated, terminated prefix).
 */
int agora__dicom_el_string(const agora__dicom_element *e, size_t index, char *out, size_t out_size);
/* Whole value with trailing padding trimmed (no splitting), any VR with text-like bytes. */
int agora__dicom_el_string_all(const agora__dicom_element *e, char *out, size_t out_size);
/* Integer value `index` from IS, US, SS, UL, SL, UV, SV (and AT as tag). 0 or AGORA_EINPUT. */
int agora__dicom_el_int(const agora__dicom_element *e, size_t index, int64_t *out);
/* Floating value `index` from DS, FD, FL, OF, OD, or any VR el_int accepts. 0 or AGORA_EINPUT
 * (also for non-finite or unparsable text). */
int agora__dicom_el_double(const agora__dicom_element *e, size_t index, double *out);

/* The same by tag in ds; AGORA_EINPUT when the element is absent. */
int agora__dicom_get_string(const agora__dicom_dataset *ds, uint32_t tag, size_t index, char *out,
                            size_t out_size);
int agora__dicom_get_int(const agora__dicom_dataset *ds, uint32_t tag, size_t index, int64_t *out);
int agora__dicom_get_double(const agora__dicom_dataset *ds, uint32_t tag, size_t index,
                            double *out);

/* ---- Iteration and modification (for rewriting, e.g. de-identification) --------------------- */

/* Iterate in tag order: for (i = 0; i < ds->n_elements; i++) ds->elements[i] ... Nested items
 * are ds->elements[i].items[0..n_items). Walks depth-first, calling fn(element, depth, ctx) for
 * every element (items of an SQ after the SQ itself). fn returns 0 to continue, non-zero to stop
 * (that value is returned). */
typedef int (*agora__dicom_visit_fn)(const agora__dicom_element *e, uint32_t depth, void *ctx);
int agora__dicom_walk(const agora__dicom_dataset *ds, agora__dicom_visit_fn fn, void *ctx);


/* Insert or replace the element `tag` of ds (which must belong to file) with a copy of
 * value[0..len) stored little-endian (the caller provides LE bytes for binary VRs); clears
 * items/fragments, sets AGORA__DICOM_EL_OWNED, length = len (text values should be padded to
 * even length by the caller or the writer). Keeps tag order. Returns 0 or AGORA_ENOMEM /
 * AGORA_EINVAL. */
int agora__dicom_set(agora__dicom_file *file, agora__dicom_dataset *ds, uint32_t tag, uint16_t vr,
                     const void *value, size_t len, agora__error *err);
/* Remove every element `tag` from ds. Returns how many were removed. */
uint32_t agora__dicom_remove(agora__dicom_dataset *ds, uint32_t tag);

/* ---- Data dictionary (PS3.6; generated at build time, see data/README.md) -------------------- */

typedef struct agora__dicom_dict_entry {
    uint32_t tag;    /* with repeating-group wildcard digits as 0 (see mask) */
    uint32_t mask;   /* bits that must match (0xFFFFFFFF for exact tags) */
    uint16_t vr;     /* first VR listed ("US or SS" -> US; "OB or OW" -> OB); 0 if none */
    uint16_t vr2;    /* second VR listed or 0 */
    uint8_t retired; /* 1 when retired */
    const char *vm;  /* "1", "1-n", "2-2n" ... */
    const char *keyword;
} agora__dicom_dict_entry;

/* Lookup by tag (exact, then repeating groups such as 60xx). Private tags (odd groups) and
 * group-length tags (gggg,0000) are not in the table: group lengths return a synthetic UL
 * entry "GroupLength"; otherwise NULL. */
const agora__dicom_dict_entry *agora__dicom_dict_lookup(uint32_t tag);
/* Lookup by keyword (exact, case-sensitive); NULL when unknown. */
const agora__dicom_dict_entry *agora__dicom_dict_by_keyword(const char *keyword);
/* Number of entries in the generated table (for tests). */
size_t agora__dicom_dict_size(void);

#endif
