/*
 * De-identification by construction (DESIGN §4): pseudonymous UIDs, the attribute view a plugin
 * is given, the map from pseudonyms back to real UIDs, the Part 10 encoder used to write
 * de-identified DICOM, and `agora deid`. Internal to the host; no value handled here may reach a
 * log or an error message (only tags, keywords, counts and paths do).
 */
#ifndef AGORA_DEID_H
#define AGORA_DEID_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* ---- Pseudonymous UIDs --------------------------------------------------------------------- */

/* Longest input UID accepted for hashing (real UIDs are <= 64; junk beyond this is refused). */
#define AGORA__DEID_UID_INPUT_MAX 1024

/* out = "2.25." + decimal of the first 128 bits of HMAC-SHA256(secret, "agora.deid.uid.v1\0" ||
 * uid) (trailing NUL/space padding and leading spaces of `uid` ignored). Deterministic for one
 * secret, different across secrets; at most 44 characters, valid UID syntax. The caller owns
 * `out` (65 bytes). Returns 0, AGORA_EINVAL (NULL or empty uid) or AGORA_ELIMIT. */
int agora__deid_uid(const uint8_t secret[32], const char *uid, char out[65], agora__error *err);

/* Non-zero when uid[0..len) is a syntactically valid UID (PS3.5 9.1): 1..64 chars, digits and
 * dots, no empty component, no leading zero in a multi-digit component. */
int agora__deid_uid_valid(const char *uid, size_t len);

/* ---- Options (PS3.15 E.3) ------------------------------------------------------------------ */

/* Bit i of an options mask = option i of rules.h (rtnUIDsOpt = bit 0 ... rtnSafePrivOpt = 9).
 * Parses PS3.15 names; an unknown name is an error naming it (AGORA_EINVAL), and an option the
 * writer does not perform (cleanDescOpt, cleanStructContOpt, cleanGraphOpt: see
 * agora__deid_option_refusal in rules.h) is refused with AGORA_EUNSUPPORTED and the reason. */
int agora__deid_options_parse(const char *const *names, size_t count, uint32_t *mask,
                              agora__error *err);

/* ---- Modified dates (rtnLongModifDatesOpt) --------------------------------------------------- */

/* Days to add to every date of one patient: a keyed hash of the Patient ID, between -4015 and
 * -365 (dates move one to eleven years back; intervals between a patient's dates survive). */
int agora__deid_date_offset(const uint8_t secret[32], const char *patient_id, size_t len);
/* Shift a DA ("YYYYMMDD") or the date part of a DT value (anything after the 8 digits is kept)
 * by `days`. Backslash-separated multiple values are each shifted. out gets a NUL-terminated
 * string. Returns 0, or -1 when a value is not a valid date or out is too small. */
int agora__deid_shift_dates(const char *in, size_t len, int days, char *out, size_t out_size);

/* ---- The map from pseudonyms back to real UIDs ---------------------------------------------- */

typedef enum agora__deid_uid_kind {
    AGORA__DEID_UID_STUDY = 1,
    AGORA__DEID_UID_SERIES = 2,
    AGORA__DEID_UID_INSTANCE = 3,
} agora__deid_uid_kind;

/* Bounded in-memory map pseudonym -> (kind, real UID). Owned by the caller, freed with
 * agora__deid_uidmap_free. Holds at most AGORA__DEID_UIDMAP_MAX entries. */
#define AGORA__DEID_UIDMAP_MAX (1u << 22)
typedef struct agora__deid_uidmap agora__deid_uidmap;

agora__deid_uidmap *agora__deid_uidmap_new(void);
void agora__deid_uidmap_free(agora__deid_uidmap *map);
/* Record pseudo -> real. Adding the same pair again is a no-op; the same pseudonym with another
 * real UID or kind is AGORA_EINVAL (a hash collision or a bug: never map to the wrong study). */
int agora__deid_uidmap_add(agora__deid_uidmap *map, agora__deid_uid_kind kind, const char *pseudo,
                           const char *real, agora__error *err);
/* The real UID behind `pseudo` (pointer owned by the map, valid until it is freed), or NULL
 * when unknown. *kind (may be NULL) receives its kind. */
const char *agora__deid_uidmap_real(const agora__deid_uidmap *map, const char *pseudo,
                                    agora__deid_uid_kind *kind);
size_t agora__deid_uidmap_count(const agora__deid_uidmap *map);

/* ---- The plugin view ------------------------------------------------------------------------- */

/* How the view reads the source dataset (top level only; the view never descends into
 * sequences). Returns 1 and sets vr/bytes/len (bytes stay valid while the dataset lives) when
 * the element is present, 0 when absent, <0 on error. Values are as encoded in Little Endian. */
typedef int (*agora__deid_get_fn)(void *ctx, uint32_t tag, char vr[3], const uint8_t **bytes,
                                  size_t *len);

/* Policy flags of the view. */
#define AGORA__DEID_ALLOW_BURNED_IN 1u /* accept BurnedInAnnotation=YES / absent on US, SC... */

/* Caps: a view never holds more than this many attributes or longer values. */
#define AGORA__DEID_VIEW_MAX_ATTRS 128
#define AGORA__DEID_VIEW_MAX_VALUE 256

typedef struct agora__deid_attr {
    const char *keyword; /* static (from the generated allowlist) */
    char *value;         /* owned by the view; printable UTF-8, <= AGORA__DEID_VIEW_MAX_VALUE */
} agora__deid_attr;

typedef struct agora__deid_granted {
    size_t count;
    agora__deid_attr attrs[AGORA__DEID_VIEW_MAX_ATTRS];
    char study_uid[65]; /* pseudonyms ("" when the dataset had none) */
    char series_uid[65];
    char instance_uid[65];
} agora__deid_granted;

/* Fill `out` with the attributes a plugin may see: the default allowlist
 * (schemas/deid-allowlist.json, compiled in) plus the groups of every option in `granted` (PS3.15
 * names; the caller has already intersected the manifest's request with the clinic policy; an
 * option without a view group is refused). Values are the dataset's text with padding trimmed
 * (PN/LO/SH/ST/LT/UT/UC decoded to UTF-8 under its Specific Character Set, charset.h);
 * numbers of binary VRs are printed as decimal text. An attribute whose value is not printable
 * UTF-8 (or did not decode in full) or is too long is left out (never truncated). Refuses (AGORA_EINPUT, reason in err) an
 * image with BurnedInAnnotation=YES, or without it for modalities that commonly burn in text
 * (US, SC, OT, XC, ES, GM, SM, DOC), unless flags has AGORA__DEID_ALLOW_BURNED_IN.
 * When `map` is not NULL the study/series/instance pseudonyms are recorded in it. Free with
 * agora__deid_granted_free. */
int agora__deid_view(agora__deid_get_fn get, void *ctx, const uint8_t secret[32],
                     const char *const *granted, size_t granted_count, uint32_t flags,
                     agora__deid_uidmap *map, agora__deid_granted *out, agora__error *err);
void agora__deid_granted_free(agora__deid_granted *view);

/* The view of a parsed DICOM dataset (top level): agora__deid_view with a getter over `ds`
 * (big-endian binary values are swapped; values of implicit-VR files carry their dictionary
 * VR). `ds` is borrowed for the duration of the call. */
struct agora__dicom_dataset;
int agora__deid_view_dataset(const struct agora__dicom_dataset *ds, const uint8_t secret[32],
                             const char *const *granted, size_t granted_count, uint32_t flags,
                             agora__deid_uidmap *map, agora__deid_granted *out, agora__error *err);

/* The burned-in policy shared by the view and the writer: AGORA_EINPUT with the reason when
 * burned_in (trimmed BurnedInAnnotation, "" when absent) is "YES", or is not "NO" on a
 * burn-prone modality (US SC OT XC ES GM SM DOC); 0 otherwise or with
 * AGORA__DEID_ALLOW_BURNED_IN. */
int agora__deid_burned_in_check(const char *burned_in, const char *modality, uint32_t flags,
                                agora__error *err);

/* Number of keywords of the default view and of one option group (for docs and tests); -1 for
 * an option without a view group. */
int agora__deid_view_group_size(const char *option);

#endif
