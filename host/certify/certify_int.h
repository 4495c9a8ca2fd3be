/*
 * Private header of host/certify: the reference set the check runs over (refset.c) and the
 * record of one job that the checks judge (certcheck.c). Not used outside host/certify.
 */
#ifndef AGORA_CERTIFY_INT_H
#define AGORA_CERTIFY_INT_H

#include "certify.h"

#define AGORA__CERT_ITEMS_MAX 16

/* What an item of the reference set is for. */
typedef enum agora__cert_role {
    AGORA__CERT_ACCEPTED,   /* the manifest accepts it: must end ok */
    AGORA__CERT_BORDERLINE, /* accepted, at the edge (min_frames): ok or an error status */
    AGORA__CERT_REFUSED,    /* the manifest refuses it: never dispatched by the host; probed
                               directly, the plugin must not crash */
    AGORA__CERT_OPERATOR,   /* the operator's folder: every matching series must end ok */
} agora__cert_role;

typedef struct agora__cert_item {
    char name[48];  /* "CT-3", "MR-1-borderline", "PT-wrong-modality", "operator" */
    char dir[4096]; /* its folder (synthetic: made under the work directory) */
    agora__cert_role role;
    int synthetic;
    int ct; /* synthetic: 1 CT, 0 MR */
    unsigned frames, rows, cols;
    uint64_t seed;
    char why[96]; /* refused: why the manifest refuses it */
} agora__cert_item;

typedef struct agora__cert_refset {
    char root[4096]; /* the work directory made for the synthetic studies ("" when none) */
    agora__cert_item items[AGORA__CERT_ITEMS_MAX];
    size_t n;
} agora__cert_refset;

/* Write the synthetic studies m calls for under a new directory in work_dir (NULL: $TMPDIR or
 * /tmp) and add the operator's folder (may be NULL). */
int agora__cert_refset_make(const agora__manifest *m, const char *work_dir,
                            const char *operator_dir, agora__cert_refset *rs, agora__error *err);
/* Remove what refset_make wrote (the operator's folder is never touched). */
void agora__cert_refset_remove(agora__cert_refset *rs);
/* The reference set as the report describes it: a new reference. */
json_t *agora__cert_refset_json(const agora__cert_refset *rs);

#endif
