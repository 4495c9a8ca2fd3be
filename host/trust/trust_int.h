/*
 * Private header of the trust module: the clinic home handle's layout, the test clock and the
 * name checks the manifest and catalog parsers share. Not used outside host/trust and its tests
 * (a test in tests/unit/common checks that host/cli never includes it); what other modules use
 * is in trust.h.
 */
#ifndef AGORA_HOST_TRUST_INT_H
#define AGORA_HOST_TRUST_INT_H

#include <stdio.h>

#include "trust.h"

/* ---- time ---------------------------------------------------------------------------------- */
/* Tests of the library may fix the clock agora__trust_now reads (never from the CLI). */
void agora__trust_set_clock_for_tests(int64_t fixed_now /* 0: real clock */);

/* ---- names ---------------------------------------------------------------------------------- */
int agora__semver_valid(const char *s);
int agora__semver_cmp(const char *a, const char *b); /* <0, 0, >0 by semver precedence */
int agora__reverse_dns_valid(const char *s);
const char *agora__output_name(unsigned index);

/* ---- clinic home internals ------------------------------------------------------------------ */
#define AGORA__HOME_TRUST_MAX 16
struct agora__trust_home {
    char dir[4096];
    agora__home_secret secret;
    agora__pubkey trusted[AGORA__HOME_TRUST_MAX];
    size_t n_trusted;
    int64_t grace_s;
    uint32_t policy;
    int have_catalog;
    agora__catalog cat;
    /* The held root (HOME/catalog/root; the implicit root of `trusted` when the file is absent)
     * and the keys that verify the held catalog: its catalog keys. */
    agora__root root;
    agora__pubkey cat_keys[AGORA__ROOT_KEYS_MAX];
    size_t n_cat_keys;
    /* Identity of catalog/current when cat was verified: refresh skips re-verifying an unchanged
     * file (a sync replaces it by rename, so its inode changes). */
    uint64_t held_ino, held_size;
    int64_t held_mtime_ns;
};

#endif
