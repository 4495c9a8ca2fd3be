/*
 * The plugin's dependency closure: every file the dynamic loader will open for it inside the
 * sandbox, resolved on the host from the verified bytes (DT_NEEDED, DT_RPATH / DT_RUNPATH, then
 * /etc/ld.so.cache, then the default directories), recursively, with every symlink on the way
 * (merged-/usr's /lib, /etc/alternatives chains) listed so that the sandbox root can be built
 * from exactly these entries (Setup.root_files, docs/binary-environment.md).
 */
#ifndef AGORA_WORKER_CLOSURE_H
#define AGORA_WORKER_CLOSURE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define AGORA__CLOSURE_OBJECTS_MAX 1024 /* shared objects in one closure */
#define AGORA__CLOSURE_DEPTH_MAX   64   /* DT_NEEDED chain length */

typedef struct agora__closure {
    char **entries;   /* absolute canonical host paths, discovery order; owned */
    uint8_t *is_link; /* per entry: 1 a symlink, 0 a regular file */
    size_t n;
    size_t n_objects; /* shared objects found (the regular files) */
} agora__closure;

/* Resolve the closure of the shared object plugin[0..len) (already verified). Regular files must
 * lie under /usr/lib/ or /usr/lib64/ (the Debian packages' libraries); search directories
 * elsewhere, and $ORIGIN of the plugin (its directory holds only the plugin inside the
 * sandbox), are not looked in. glibc's libgcc_s.so.1 is added when present (glibc loads it
 * itself for pthread_exit/pthread_cancel). AGORA_OK, or an error saying which library is
 * missing and what to do. Free with agora__closure_free. */
int agora__closure_resolve(const uint8_t *plugin, size_t len, agora__closure *out,
                           agora__error *err);
void agora__closure_free(agora__closure *c);

#endif
