/*
 * The Basic Application Level Confidentiality Profile (PS3.15 E.1) applied to a parsed file,
 * written straight into a Part 10 buffer: every element at every nesting depth goes through the
 * Annex E table (rules.h) and the granted options; the source file is never modified.
 */
#ifndef AGORA_DEID_PROFILE_H
#define AGORA_DEID_PROFILE_H

#include <stdint.h>

#include "deid.h"
#include "dicom.h"
#include "rules.h"
#include "writer.h"

typedef struct agora__deid_profile {
    const uint8_t *secret; /* 32 bytes, borrowed */
    uint32_t options;      /* bit i = option i of rules.h */
    uint32_t flags;        /* AGORA__DEID_ALLOW_BURNED_IN */
    uint32_t write_flags;  /* AGORA__DEID_W_* */
    /* Where pseudonyms come from. NULL: HMAC with `secret` (agora__deid_uid). Set: called for
     * every UID the profile replaces (trimmed, NUL-terminated, <= AGORA__DEID_UID_INPUT_MAX);
     * fills out (a valid UID) or returns a negative AGORA_E* with err set. The sandboxed writer
     * uses it so that the clinic secret never leaves the host (secret may then be NULL). */
    int (*pseudonym)(void *ctx, const char *uid, char out[65], agora__error *err);
    void *pseudonym_ctx;
    /* rtnLongModifDatesOpt: when days_given, `days` is the offset (the host computed it from
     * the Patient ID, agora__deid_patient_id); otherwise it is derived from secret here. */
    int days_given;
    int days;
} agora__deid_profile;

/* The trimmed Patient ID the date offset is keyed on ("" when absent or longer than 255). */
void agora__deid_patient_id(const agora__dicom_file *file, char out[256]);

/* Counts of what was done, summed over calls (the caller zeroes it once). */
typedef struct agora__deid_stats {
    uint64_t kept;          /* elements copied unchanged (sequences counted, items recursed) */
    uint64_t removed;       /* X, and unlisted public elements of unknown VR (UN) */
    uint64_t emptied;       /* Z */
    uint64_t dummied;       /* D */
    uint64_t uids;          /* U: UID values replaced */
    uint64_t dates_shifted; /* C under rtnLongModifDatesOpt */
    uint64_t private_removed;
    uint64_t private_kept;          /* rtnSafePrivOpt */
    uint64_t overlay_curve_removed; /* elements of 60xx overlay and 50xx curve groups */
    uint64_t added; /* PatientIdentityRemoved, DeidentificationMethod(CodeSequence)... */
} agora__deid_stats;

/* De-identify `file` into `out` (a complete Part 10 file); sop_uid_out (65 bytes, may be NULL)
 * receives the written SOP Instance UID (the pseudonym). Refuses burned-in images (policy in
 * deid.h) and files without SOP Class / SOP Instance UIDs with AGORA_EINPUT. Returns 0 or a
 * negative AGORA_E* with err set (no attribute values in the message). */
int agora__deid_apply(const agora__dicom_file *file, const agora__deid_profile *profile,
                      agora__deid_buf *out, agora__deid_stats *stats, char sop_uid_out[65],
                      agora__error *err);

#endif
