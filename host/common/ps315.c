/* The one table of PS3.15 options (ps315.h). */
#include "ps315.h"

#include <stddef.h>
#include <string.h>

#define NAMED AGORA__PS315_NAMED
#define GRANT AGORA__PS315_GRANT
#define WRITE AGORA__PS315_WRITE

static const char clean_desc_why[] =
    "cleanDescOpt is not performed: it keeps descriptions and comments with only their "
    "identifying words removed, and Agora cannot tell those words apart in free text; leave the "
    "option out (the Basic Profile then removes or replaces these attributes) or clean the "
    "descriptions in a reviewed process first";

static const agora__ps315_info table[AGORA__PS315_COUNT] = {
    /* A plugin never sees real UIDs: the host keeps the map back (deid.h). */
    [AGORA__PS315_RTN_UIDS] = {"rtnUIDsOpt", WRITE, NULL},
    [AGORA__PS315_RTN_DEV_ID] = {"rtnDevIdOpt", NAMED | GRANT | WRITE, NULL},
    [AGORA__PS315_RTN_INST_ID] = {"rtnInstIdOpt", NAMED | GRANT | WRITE, NULL},
    [AGORA__PS315_RTN_PAT_CHARS] = {"rtnPatCharsOpt", NAMED | GRANT | WRITE, NULL},
    [AGORA__PS315_RTN_LONG_FULL_DATES] = {"rtnLongFullDatesOpt", NAMED | GRANT | WRITE, NULL},
    [AGORA__PS315_RTN_LONG_MODIF_DATES] = {"rtnLongModifDatesOpt", NAMED | GRANT | WRITE, NULL},
    /* Named (older manifests and catalogs carry it) but neither granted nor performed. */
    [AGORA__PS315_CLEAN_DESC] = {"cleanDescOpt", NAMED, clean_desc_why},
    [AGORA__PS315_CLEAN_STRUCT] =
        {"cleanStructContOpt", 0,
         "cleanStructContOpt is not performed: it keeps structured report content with "
         "identifying names, codes and texts removed from each content item, which Agora cannot "
         "judge; leave the option out (the Basic Profile then removes or replaces the content) "
         "or de-identify structured reports with a dedicated, reviewed tool"},
    [AGORA__PS315_CLEAN_GRAPH] =
        {"cleanGraphOpt", 0,
         "cleanGraphOpt is not performed: it keeps overlays, curves and graphic annotations with "
         "identifying text removed, and Agora cannot read text drawn in overlay planes; leave "
         "the option out (overlay and curve groups are then removed) or clean the graphics in a "
         "reviewed process first"},
    /* Private data is never shown to plugins (no view group). */
    [AGORA__PS315_RTN_SAFE_PRIV] = {"rtnSafePrivOpt", WRITE, NULL},
};

const agora__ps315_info *agora__ps315(int option)
{
    return option >= 0 && option < AGORA__PS315_COUNT ? &table[option] : NULL;
}

int agora__ps315_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < AGORA__PS315_COUNT; i++)
        if (strcmp(name, table[i].name) == 0)
            return i;
    return -1;
}

uint32_t agora__ps315_mask(unsigned uses)
{
    uint32_t m = 0;
    for (int i = 0; i < AGORA__PS315_COUNT; i++)
        if ((table[i].uses & uses) == uses)
            m |= AGORA__PS315_BIT(i);
    return m;
}
