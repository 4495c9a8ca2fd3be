/* Chunked bump allocator: a parse makes many small arrays that all die together with the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define CHUNK_SIZE ((size_t)64 * 1024)

typedef struct block {
    struct block *next;
    size_t used, cap;
    void *adopted; /* non-NULL: a foreign malloc'ed block, no payload */
    max_align_t align_pad;
} block;

struct agora__dicom_arena {
    block *head;
};

agora__dicom_arena *agora__dicom_arena_new(void)
{
    return calloc(1, sizeof(agora__dicom_arena));
}

static size_t header_size(void)
{
    return (sizeof(block) + 15u) & ~(size_t)15u;
}

void *agora__dicom_arena_alloc(agora__dicom_arena *a, size_t size)
{
    if (!a || size > SIZE_MAX / 2)
        return NULL;
    size_t need = (size + 15u) & ~(size_t)15u;
    if (need == 0)
        need = 16;
    block *b = a->head;
    if (!b || b->adopted || b->cap - b->used < need) {
        size_t cap = need > CHUNK_SIZE / 4 ? need : CHUNK_SIZE;
        block *nb = malloc(header_size() + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        nb->adopted = NULL;
        if (cap == need && b && !b->adopted) {
            /* A large request gets its own block behind the current one, so the current
             * block's free space stays usable. */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = a->head;
            a->head = nb;
        }
        b = nb;
    }
    uint8_t *p = (uint8_t *)b + header_size() + b->used;
    b->used += need;
    memset(p, 0, size);
    return p;
}

void *agora__dicom_arena_dup(agora__dicom_arena *a, const void *src, size_t n, size_t sz)
{
    if (n == 0 || sz == 0 || n > SIZE_MAX / sz)
        return NULL;
    void *p = agora__dicom_arena_alloc(a, n * sz);
    if (p)
        memcpy(p, src, n * sz);
    return p;
}

int agora__dicom_arena_adopt(agora__dicom_arena *a, void *p)
{
    block *b = malloc(sizeof(block));
    if (!b)
        return -1;
    b->used = b->cap = 0;
    b->adopted = p;
    b->next = a->head;
    a->head = b;
    return 0;
}

void agora__dicom_arena_free(agora__dicom_arena *a)
{
    if (!a)
        return;
    block *b = a->head;
    while (b) {
        block *n = b->next;
        free(b->adopted);
        free(b);
        b = n;
    }
    free(a);
}
