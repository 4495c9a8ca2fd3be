/*
 * PS3.15 Annex E (Table E.1-1) as data: the generated table (gen_annex_e.py from the TSV files in
 * data/), the lookup by tag (exact tags, then the patterns 50xx,xxxx / 60xx,3000 / 60xx,4000 / odd
 * groups), the profile options and how an action code resolves to what the writer does.
 * Internal to the deid module.
 */
#ifndef AGORA_DEID_RULES_H
#define AGORA_DEID_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "ps315.h"

/* Action codes of Table E.1-1 as bits; a combination such as X/Z/D sets several. */
enum {
    AGORA__DEID_X = 1,     /* remove */
    AGORA__DEID_Z = 2,     /* zero length (or dummy) */
    AGORA__DEID_D = 4,     /* dummy value */
    AGORA__DEID_K = 8,     /* keep */
    AGORA__DEID_C = 16,    /* clean */
    AGORA__DEID_U = 32,    /* replace UID consistently */
    AGORA__DEID_USEQ = 64, /* U*: a sequence whose UIDs are replaced (X/Z/U*) */
};

/* The options of PS3.15 E.3: one bit assignment for the host, in the order of the table's
 * columns (common/ps315.h; opt[] below is indexed by agora__ps315_option). */
_Static_assert(AGORA__PS315_COUNT == 10, "gen_annex_e.py writes OPTION_COUNT = 10 columns");

typedef struct agora__deid_rule {
    uint32_t tag;      /* (group << 16) | element of the row, pattern digits zero */
    uint32_t mask;     /* bits of a tag that must equal `tag` (0xFFFFFFFF: exact row) */
    uint8_t odd_group; /* 1 for the "private attributes" row: any odd group */
    uint8_t basic;     /* Basic Profile action bits */
    uint8_t opt[AGORA__PS315_COUNT]; /* action bits under each option, 0 when unchanged */
    const char *vr;                  /* PS3.6 VR ("" for patterns and command elements) */
    const char *keyword;             /* PS3.6 keyword ("" when none) */
    const char *name;                /* name in Table E.1-1 */
} agora__deid_rule;

typedef struct agora__deid_safe_private {
    uint16_t group;
    uint8_t element; /* low byte of the element; the high byte is the creator's block */
    const char *creator;
    const char *vr;
} agora__deid_safe_private;

/* Generated tables (static storage, never freed). Exact rows first, sorted by tag. */
extern const agora__deid_rule agora__deid_rules[];
extern const size_t agora__deid_rules_exact;
extern const size_t agora__deid_rules_count;
extern const agora__deid_safe_private agora__deid_safe_privates[];
extern const size_t agora__deid_safe_privates_count;

/* The row that governs `tag`: the exact row, else the first matching pattern, else NULL (a
 * public attribute the profile does not list: it is kept). Returned pointer is static. */
const agora__deid_rule *agora__deid_rule_find(uint32_t tag);

/* The options the writer knows, from the one table (common/ps315.h). */
/* Option by its PS3.15 name ("rtnPatCharsOpt"); -1 when unknown. */
int agora__deid_option_from_name(const char *name);
/* PS3.15 name of an option, or NULL out of range. */
const char *agora__deid_option_name(int option);
/* Why an option is refused, or NULL when the writer performs it (AGORA__PS315_WRITE).
 * cleanDescOpt, cleanStructContOpt and cleanGraphOpt ask to keep descriptions, structured
 * content and graphics with only their identifying parts removed; telling those parts apart in
 * free text, SR trees and overlay bitmaps is judgement the writer cannot make, and silently
 * applying the Basic Profile instead would claim an option that was not performed. The message
 * (static) says what to do. */
const char *agora__deid_option_refusal(int option);

/* What the writer does with one element, after options. */
typedef enum agora__deid_op {
    AGORA__DEID_OP_KEEP = 0,  /* copy unchanged (sequences: recurse into items) */
    AGORA__DEID_OP_REMOVE,    /* drop the element */
    AGORA__DEID_OP_EMPTY,     /* keep the tag with a zero-length value (empty sequence) */
    AGORA__DEID_OP_DUMMY,     /* replace by a dummy value of the VR (sequence: empty) */
    AGORA__DEID_OP_UID,       /* replace each UID by its keyed hash */
    AGORA__DEID_OP_SHIFT_DATE /* dates moved by the per-patient offset (rtnLongModifDatesOpt) */
} agora__deid_op;

/* Resolve the action of a row under the granted options (bit i = option i). How combinations
 * resolve (a writer does not know the IOD's type of every attribute, so it takes the choice that
 * is legal for every type and carries no identity):
 *   - an option that grants K wins (keep); among granted options K beats C;
 *   - C is only honoured where the host can clean mechanically (date shifting under
 *     rtnLongModifDatesOpt, safe private attributes under rtnSafePrivOpt); any other C falls
 *     back to the Basic Profile action, which always removes or replaces the content;
 *   - U -> UID; X/Z/U* -> keep the sequence and recurse (its nested UIDs are U rows);
 *   - any combination containing D (X/D, Z/D, X/Z/D) -> DUMMY (legal for type 1, 2 and 3);
 *   - X/Z -> EMPTY (legal for type 2 and 3); X -> REMOVE; Z -> EMPTY; D -> DUMMY; K -> KEEP.
 * `rule` NULL means a public attribute not listed: KEEP. */
agora__deid_op agora__deid_resolve(const agora__deid_rule *rule, uint32_t options);

/* Non-zero when (group, element low byte, creator) is in the safe private table. */
int agora__deid_safe_private_find(uint16_t group, uint8_t element, const char *creator,
                                  size_t creator_len);
/* Non-zero when `creator` owns at least one safe private attribute in `group`. */
int agora__deid_safe_creator(uint16_t group, const char *creator, size_t creator_len);

#endif
