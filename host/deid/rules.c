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

int agora__deid_option_from_name(const char *name)
{
    return agora__ps315_from_name(name);
}

const char *agora__deid_option_name(int option)
{
    const agora__ps315_info *o = agora__ps315(option);
    return o != NULL ? o->name : NULL;
}

const char *agora__deid_option_refusal(int option)
{
    const agora__ps315_info *o = agora__ps315(option);
    if (o == NULL || (o->uses & AGORA__PS315_WRITE))
        return NULL;
    return o->refusal;
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
    for (int i = 0; i < AGORA__PS315_COUNT; i++) {
        if (!(options & (1u << i)))
            continue;
        if (rule->opt[i] & AGORA__DEID_K)
            return AGORA__DEID_OP_KEEP;
        if ((rule->opt[i] & AGORA__DEID_C) && i == AGORA__PS315_RTN_LONG_MODIF_DATES)
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
