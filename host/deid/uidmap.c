/* The map from pseudonymous UIDs back to real ones: open addressing on the pseudonym, grown by
 * doubling, capped at AGORA__DEID_UIDMAP_MAX entries. Strings are copied and owned by the map. */
#include "deid.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *pseudo; /* NULL: empty slot */
    char *real;
    agora__deid_uid_kind kind;
} entry;

struct agora__deid_uidmap {
    entry *slots;
    size_t cap; /* power of two */
    size_t count;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: pseudonyms are already uniformly spread */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

agora__deid_uidmap *agora__deid_uidmap_new(void)
{
    agora__deid_uidmap *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void agora__deid_uidmap_free(agora__deid_uidmap *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->cap; i++) {
        free(map->slots[i].pseudo);
        free(map->slots[i].real);
    }
    free(map->slots);
    free(map);
}

static entry *find_slot(entry *slots, size_t cap, const char *pseudo)
{
    size_t i = (size_t)hash_str(pseudo) & (cap - 1);
    while (slots[i].pseudo != NULL && strcmp(slots[i].pseudo, pseudo) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(agora__deid_uidmap *m)
{
    size_t ncap = m->cap * 2;
    entry *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].pseudo != NULL)
            *find_slot(ns, ncap, m->slots[i].pseudo) = m->slots[i];
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int agora__deid_uidmap_add(agora__deid_uidmap *map, agora__deid_uid_kind kind, const char *pseudo,
                           const char *real, agora__error *err)
{
    if (map == NULL || pseudo == NULL || real == NULL || pseudo[0] == '\0' ||
        kind < AGORA__DEID_UID_STUDY || kind > AGORA__DEID_UID_INSTANCE)
        return agora__error_set(err, AGORA_EINVAL, "uid map: invalid entry");
    entry *e = find_slot(map->slots, map->cap, pseudo);
    if (e->pseudo != NULL) {
        if (e->kind == kind && strcmp(e->real, real) == 0)
            return 0;
        return agora__error_set(err, AGORA_EINVAL,
                                "uid map: one pseudonym for two different UIDs; refusing to "
                                "map results to an ambiguous study");
    }
    if (map->count >= AGORA__DEID_UIDMAP_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "uid map: more than %u UIDs; split the work",
                                AGORA__DEID_UIDMAP_MAX);
    if ((map->count + 1) * 2 > map->cap) {
        if (grow(map) != 0)
            return agora__error_set(err, AGORA_ENOMEM, "uid map: out of memory");
        e = find_slot(map->slots, map->cap, pseudo);
    }
    char *p = strdup(pseudo), *r = strdup(real);
    if (p == NULL || r == NULL) {
        free(p);
        free(r);
        return agora__error_set(err, AGORA_ENOMEM, "uid map: out of memory");
    }
    e->pseudo = p;
    e->real = r;
    e->kind = kind;
    map->count++;
    return 0;
}

const char *agora__deid_uidmap_real(const agora__deid_uidmap *map, const char *pseudo,
                                    agora__deid_uid_kind *kind)
{
    if (map == NULL || pseudo == NULL)
        return NULL;
    const entry *e = find_slot(map->slots, map->cap, pseudo);
    if (e->pseudo == NULL)
        return NULL;
    if (kind != NULL)
        *kind = e->kind;
    return e->real;
}

size_t agora__deid_uidmap_count(const agora__deid_uidmap *map)
{
    return map == NULL ? 0 : map->count;
}
