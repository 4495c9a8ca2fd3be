/*
 * Writer for NEW DICOM objects (SEG, SR): a dataset tree built in any order and encoded as a
 * Part 10 file in Explicit VR Little Endian with a file meta group (group length included),
 * elements sorted by tag, sequences and items of defined length, values padded to even length
 * per VR (UI with NUL, text with space). Encoding reuses host/deid/writer.c's element framing.
 *
 * Error model: the first error sticks in the writer (like agora__deid_buf); every later call is
 * a no-op and agora__dcmw_encode() reports it. Calls that return a dataset return NULL after an
 * error, and every function accepts a NULL dataset (does nothing), so a builder checks once.
 *
 * Ownership: the writer owns every dataset and item it hands out (freed by agora__dcmw_free);
 * values are copied on put. Not thread-safe: one writer per thread.
 */
#ifndef AGORA_EXPORT_DCM_WRITER_H
#define AGORA_EXPORT_DCM_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef struct agora__dcmw agora__dcmw;       /* a writer (one output object) */
typedef struct agora__dcmw_ds agora__dcmw_ds; /* a dataset: the top level or one item */

/* VR as two ASCII letters, e.g. AGORA__DCMW_VR('C','S'); equal to AGORA__DICOM_VR. */
#define AGORA__DCMW_VR(a, b)  ((uint16_t)(((uint16_t)(uint8_t)(a) << 8) | (uint8_t)(b)))
#define AGORA__DCMW_TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))

/* New writer whose encoding may grow to max_bytes (0: 1 GiB). NULL when out of memory. */
agora__dcmw *agora__dcmw_new(size_t max_bytes);
void agora__dcmw_free(agora__dcmw *w);
/* The top-level dataset (owned by w). */
agora__dcmw_ds *agora__dcmw_root(agora__dcmw *w);
/* 0 or the sticky AGORA_E*; *what (may be NULL) gets a static description without values. */
int agora__dcmw_status(const agora__dcmw *w, const char **what);

/* Put one element, replacing an earlier one with the same tag in this dataset. */
/* Raw value bytes (binary VRs little-endian: OB OW OF OD OL US UL SS SL FL FD AT). */
void agora__dcmw_put(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const void *value, size_t len);
/* A text or UI value (multi-valued with '\'); NULL or "" gives an empty (Type 2) element.
 * Checked: no NUL; each value within its VR's maximum length (CS/SH 16, LO 64, UI 64 and
 * UID syntax, DA 8, TM 16, DT 26, DS 16, IS 12, PN 64 per component group, ST 1024,
 * LT 10240, UT/UC 1 MiB here) and CS upper case/digits/space/underscore. */
void agora__dcmw_str(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const char *s);
void agora__dcmw_strf(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Numbers: US/UL/FD binary, IS/DS as decimal strings (DS: shortest %g form that fits 16
 * chars and is finite; a non-finite value is an error). n values, multi-valued. */
void agora__dcmw_us(agora__dcmw_ds *ds, uint32_t tag, const uint16_t *v, size_t n);
void agora__dcmw_ul(agora__dcmw_ds *ds, uint32_t tag, const uint32_t *v, size_t n);
void agora__dcmw_fd(agora__dcmw_ds *ds, uint32_t tag, const double *v, size_t n);
void agora__dcmw_is(agora__dcmw_ds *ds, uint32_t tag, int64_t v);
void agora__dcmw_ds_num(agora__dcmw_ds *ds, uint32_t tag, const double *v, size_t n);
/* Single-value shorthands. */
void agora__dcmw_us1(agora__dcmw_ds *ds, uint32_t tag, uint16_t v);

/* Sequences. seq() makes the sequence exist (empty when no item follows; Type 2). item()
 * appends a new, empty item to the sequence tag (created when missing) and returns it. */
void agora__dcmw_seq(agora__dcmw_ds *ds, uint32_t tag);
agora__dcmw_ds *agora__dcmw_item(agora__dcmw_ds *ds, uint32_t tag);
/* A one-item code sequence (Code Sequence Macro): CodeValue (or LongCodeValue when longer
 * than 16), CodingSchemeDesignator, CodeMeaning (cut to 64 bytes at a UTF-8 boundary). */
agora__dcmw_ds *agora__dcmw_code(agora__dcmw_ds *ds, uint32_t tag, const char *scheme,
                                 const char *value, const char *meaning);

/* Encode: preamble, "DICM", file meta (SOP class/instance from the arguments, Explicit VR LE,
 * Agora's implementation UID) and the dataset. *out (malloc'ed, caller frees) holds *len
 * bytes. Deterministic: the same tree gives the same bytes. */
int agora__dcmw_encode(agora__dcmw *w, const char *sop_class, const char *sop_instance,
                       uint8_t **out, size_t *len, agora__error *err);
/* Encode and write atomically to path (mode 0644). */
int agora__dcmw_write_file(agora__dcmw *w, const char *sop_class, const char *sop_instance,
                           const char *path, agora__error *err);

/* Deterministic UID for a new object: root NULL or "" gives "2.25." + the decimal of the
 * first 128 bits of SHA-256("agora.export.uid.v1" NUL invocation_id NUL label); a root
 * (an organisation's UID root, <= 40 chars, valid UID) gives root + "." + the decimal of the
 * first 64 bits (top bit cleared, +1 so never 0). The same (root, invocation, label) always
 * gives the same UID, so a re-export or re-send is de-duplicated by a PACS. Labels name the
 * object, e.g. "seg.series", "seg.instance", "sr.instance", "device:org.x.plugin@1.0". */
int agora__dcmw_uid(const char *root, const char *invocation_id, const char *label, char out[65],
                    agora__error *err);

/* DICOM DA (YYYYMMDD) and TM (HHMMSS.ffffff) of an RFC 3339 UTC timestamp as stored in a
 * result's "created" (e.g. 2026-11-15T12:00:00.123Z), so content dates come from the
 * invocation, not the clock. AGORA_EINVAL when created is malformed. */
int agora__dcmw_datetime(const char *created, char da[9], char tm[17], agora__error *err);

#endif
