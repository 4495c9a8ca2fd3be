/* The arena that owns everything an agora__dicom_file points to (private to the module). */
#ifndef AGORA_HOST_DICOM_ARENA_H
#define AGORA_HOST_DICOM_ARENA_H

#include <stddef.h>

#include "dicom.h"

agora__dicom_arena *agora__dicom_arena_new(void);
/* Zeroed, 16-byte aligned memory living until agora__dicom_arena_free; NULL on overflow/OOM. */
void *agora__dicom_arena_alloc(agora__dicom_arena *a, size_t size);
/* Copy n elements of size sz into the arena (NULL when n == 0 or on failure; check n). */
void *agora__dicom_arena_dup(agora__dicom_arena *a, const void *src, size_t n, size_t sz);
/* Take ownership of a malloc'ed block: it is freed with the arena. Returns 0 or -1 (then the
 * caller still owns p). */
int agora__dicom_arena_adopt(agora__dicom_arena *a, void *p);
void agora__dicom_arena_free(agora__dicom_arena *a);

#endif
