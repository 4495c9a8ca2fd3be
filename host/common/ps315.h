/* The PS3.15 Annex E options (E.3): ONE bit assignment for the whole host. The catalog grant,
 * the clinic policy and the manifest (trust.h, AGORA__OPT_*), the de-identification rules and
 * profile (deid/rules.h, deid/profile.h) and the ingest worker's DEID_* requests all use bit
 * AGORA__PS315_BIT(option) of a uint32_t. The order is the column order of Table E.1-1 in
 * host/deid/data/annex_e_2024b.tsv, which gen_annex_e.py turns into agora__deid_rule.opt[]: do
 * not reorder. Names travel in files (manifests, catalogs, config.json); bits never leave the
 * process except as deid profile options on the host<->runner wire, in this same order. */
#ifndef AGORA_HOST_PS315_H
#define AGORA_HOST_PS315_H

#include <stdint.h>

typedef enum agora__ps315_option {
    AGORA__PS315_RTN_UIDS = 0,         /* rtnUIDsOpt */
    AGORA__PS315_RTN_DEV_ID,           /* rtnDevIdOpt */
    AGORA__PS315_RTN_INST_ID,          /* rtnInstIdOpt */
    AGORA__PS315_RTN_PAT_CHARS,        /* rtnPatCharsOpt */
    AGORA__PS315_RTN_LONG_FULL_DATES,  /* rtnLongFullDatesOpt */
    AGORA__PS315_RTN_LONG_MODIF_DATES, /* rtnLongModifDatesOpt */
    AGORA__PS315_CLEAN_DESC,           /* cleanDescOpt */
    AGORA__PS315_CLEAN_STRUCT,         /* cleanStructContOpt */
    AGORA__PS315_CLEAN_GRAPH,          /* cleanGraphOpt */
    AGORA__PS315_RTN_SAFE_PRIV,        /* rtnSafePrivOpt */
    AGORA__PS315_COUNT
} agora__ps315_option;

#define AGORA__PS315_BIT(o) (1u << (o))

/* Where an option can be used (agora__ps315_info.uses). */
#define AGORA__PS315_NAMED 1u /* a manifest, the catalog and config.json may name it */
#define AGORA__PS315_GRANT 2u /* a plugin may be given it: the plugin view has its group */
#define AGORA__PS315_WRITE 4u /* agora deid performs it when kept (--keep) */

typedef struct agora__ps315_info {
    const char *name;    /* "rtnPatCharsOpt" */
    unsigned uses;       /* AGORA__PS315_NAMED | ... */
    const char *refusal; /* why it is not performed / not granted, what to do; NULL if it is */
} agora__ps315_info;

/* The option's row (static), or NULL out of range. */
const agora__ps315_info *agora__ps315(int option);
/* The option named `name`, or -1 when no PS3.15 option has that name. */
int agora__ps315_from_name(const char *name);
/* The bits of every option whose uses include all of `uses`. */
uint32_t agora__ps315_mask(unsigned uses);

#endif
