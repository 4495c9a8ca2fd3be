/*
 * The dynamic section of an ELF shared object, read with bounds checks: what the dynamic loader
 * will look for (DT_NEEDED) and where (DT_RUNPATH / DT_RPATH). The input is untrusted (a
 * vendor's plugin, or any file a hostile RUNPATH points the host at): every offset, size and
 * count is checked against the buffer, nothing is followed outside it.
 */
#ifndef AGORA_WORKER_ELFDYN_H
#define AGORA_WORKER_ELFDYN_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define AGORA__ELF_NEEDED_MAX 256  /* DT_NEEDED entries per object */
#define AGORA__ELF_NAME_MAX   256  /* bytes of one DT_NEEDED name, NUL included */
#define AGORA__ELF_PATHS_MAX  1024 /* bytes of DT_RUNPATH / DT_RPATH, NUL included */
#define AGORA__ELF_PHNUM_MAX  512  /* program headers */
#define AGORA__ELF_DYN_MAX    4096 /* dynamic entries */

typedef struct agora__elf_dyn {
    size_t n_needed;
    char needed[AGORA__ELF_NEEDED_MAX][AGORA__ELF_NAME_MAX];
    char runpath[AGORA__ELF_PATHS_MAX]; /* "" when absent */
    char rpath[AGORA__ELF_PATHS_MAX];   /* "" when absent */
    int has_runpath, has_rpath;
} agora__elf_dyn;

/* Parse an x86-64 little-endian ELF64 shared object (ET_DYN) held in bytes[0..len). The
 * strings are copied into out (the caller owns both). An object without PT_DYNAMIC has no
 * dependencies. AGORA_OK, AGORA_EINVAL (not an x86-64 ELF64 shared object: the loader skips
 * such a file and keeps searching) or AGORA_ELIMIT/AGORA_EINVAL for a malformed one, with err
 * saying what. */
int agora__elf_dyn_parse(const uint8_t *bytes, size_t len, agora__elf_dyn *out, agora__error *err);

#endif
