/*
 * The plugin view's allowlist, compiled from schemas/deid-allowlist.json by gen_allowlist.py
 * (which also checks every entry against the Annex E table). Static data; internal.
 */
#ifndef AGORA_DEID_ALLOWLIST_H
#define AGORA_DEID_ALLOWLIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct agora__deid_allow {
    uint32_t tag;
    const char *keyword;
    const char *vr;
} agora__deid_allow;

typedef struct agora__deid_allow_group {
    const char *option; /* PS3.15 option name */
    const agora__deid_allow *items;
    size_t count;
} agora__deid_allow_group;

extern const agora__deid_allow agora__deid_allow_default[];
extern const size_t agora__deid_allow_default_count;
extern const agora__deid_allow_group agora__deid_allow_groups[];
extern const size_t agora__deid_allow_groups_count;

#endif
