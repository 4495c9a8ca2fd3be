/* Lookup and resolution over the generated Annex E table (see rules.h for the rules). */
#include "rules.h"

#include <string.h>

const agora__deid_rule *agora__deid_rule_find(uint32_t tag)
{
    size_t lo = 0, hi = agora__deid_rules_exact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t = agora__deid_rules[mid].tag;
        if (t == tag)
            return &agora__deid_rules[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = agora__deid_rules_exact; i < agora__deid_rules_count; i++) {
        const agora__deid_rule *r = &agora__deid_rules[i];
        if (r->odd_group) {
            if ((tag >> 16) & 1u)
                return r;
        } else if ((tag & r->mask) == r->tag) {
            return r;
        }
    }
    return NULL;
}

static const char *const option_names[AGORA__DEID_OPT_COUNT] = {
    "rtnUIDsOpt",          "rtnDevIdOpt",          "rtnInstIdOpt", "rtnPatCharsOpt",
    "rtnLongFullDatesOpt", "rtnLongModifDatesOpt", "cleanDescOpt", "cleanStructContOpt",
    "cleanGraphOpt",       "rtnSafePrivOpt",
};

int agora__deid_option_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < AGORA__DEID_OPT_COUNT; i++)
        if (strcmp(name, option_names[i]) == 0)
            return i;
    return -1;
}

const char *agora__deid_option_name(int option)
{
    if (option < 0 || option >= AGORA__DEID_OPT_COUNT)
        return NULL;
    return option_names[option];
}

const char *agora__deid_option_refusal(int option)
{
    switch (option) {
    case AGORA__DEID_OPT_CLEAN_DESC:
        return "cleanDescOpt is not performed: it keeps descriptions and comments with only their "
               "identifying words removed, and Agora cannot tell those words apart in free text; "
               "leave the option out (the Basic Profile then removes or replaces these attributes) "
               "or clean the descriptions in a reviewed process first";
    case AGORA__DEID_OPT_CLEAN_STRUCT:
        return "cleanStructContOpt is not performed: it keeps structured report content with "
               "identifying names, codes and texts removed from each content item, which Agora "
               "cannot judge; leave the option out (the Basic Profile then removes or replaces the "
               "content) or de-identify structured reports with a dedicated, reviewed tool";
    case AGORA__DEID_OPT_CLEAN_GRAPH:
        return "cleanGraphOpt is not performed: it keeps overlays, curves and graphic annotations "
               "with identifying text removed, and Agora cannot read text drawn in overlay planes; "
               "leave the option out (overlay and curve groups are then removed) or clean the "
               "graphics in a reviewed process first";
    default:
        return NULL;
    }
}

static agora__deid_op resolve_basic(uint8_t a)
{
    if (a & AGORA__DEID_U)
        return AGORA__DEID_OP_UID;
    if (a & AGORA__DEID_USEQ)
        return AGORA__DEID_OP_KEEP;
    if (a & AGORA__DEID_D)
        return AGORA__DEID_OP_DUMMY;
    if (a & AGORA__DEID_Z)
        return AGORA__DEID_OP_EMPTY;
    if (a & AGORA__DEID_X)
        return AGORA__DEID_OP_REMOVE;
    if (a & AGORA__DEID_K)
        return AGORA__DEID_OP_KEEP;
    /* A row with no known action (cannot happen with the generated table): fail closed. */
    return AGORA__DEID_OP_REMOVE;
}

agora__deid_op agora__deid_resolve(const agora__deid_rule *rule, uint32_t options)
{
    if (rule == NULL)
        return AGORA__DEID_OP_KEEP;
    int clean_dates = 0;
    for (int i = 0; i < AGORA__DEID_OPT_COUNT; i++) {
        if (!(options & (1u << i)))
            continue;
        if (rule->opt[i] & AGORA__DEID_K)
            return AGORA__DEID_OP_KEEP;
        if ((rule->opt[i] & AGORA__DEID_C) && i == AGORA__DEID_OPT_LONG_MODIF_DATES)
            clean_dates = 1;
    }
    if (clean_dates && (strcmp(rule->vr, "DA") == 0 || strcmp(rule->vr, "DT") == 0))
        return AGORA__DEID_OP_SHIFT_DATE;
    if (clean_dates && strcmp(rule->vr, "TM") == 0)
        return AGORA__DEID_OP_KEEP; /* modified dates keep the time of day (PS3.15 E.3.6) */
    return resolve_basic(rule->basic);
}

int agora__deid_safe_private_find(uint16_t group, uint8_t element, const char *creator,
                                  size_t creator_len)
{
    for (size_t i = 0; i < agora__deid_safe_privates_count; i++) {
        const agora__deid_safe_private *s = &agora__deid_safe_privates[i];
        if (s->group == group && s->element == element && strlen(s->creator) == creator_len &&
            memcmp(s->creator, creator, creator_len) == 0)
            return 1;
    }
    return 0;
}

int agora__deid_safe_creator(uint16_t group, const char *creator, size_t creator_len)
{
    for (size_t i = 0; i < agora__deid_safe_privates_count; i++) {
        const agora__deid_safe_private *s = &agora__deid_safe_privates[i];
        if (s->group == group && strlen(s->creator) == creator_len &&
            memcmp(s->creator, creator, creator_len) == 0)
            return 1;
    }
    return 0;
}
