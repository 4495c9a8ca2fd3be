/*
 * libFuzzer: the ELF dynamic-section reader (host/worker/elfdyn.c) that the host runs on a
 * vendor's plugin bytes and on every file a RUNPATH points it at, before anything is sandboxed.
 * The input is the whole file. Nothing may crash or read outside the buffer (ASan sees the
 * buffer's exact end: libFuzzer's data is a heap copy of exactly size bytes), and what the
 * reader returns must hold: bounded counts, every string NUL-terminated within its field.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elfdyn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static agora__elf_dyn d;
    agora__error err = {0};
    int rc = agora__elf_dyn_parse(data, size, &d, &err);
    if (rc != AGORA_OK) {
        if (err.msg[0] == '\0' || memchr(err.msg, '\0', sizeof err.msg) == NULL)
            abort(); /* a refusal always says why */
        return 0;
    }
    if (d.n_needed > AGORA__ELF_NEEDED_MAX)
        abort();
    for (size_t i = 0; i < d.n_needed; i++)
        if (memchr(d.needed[i], '\0', AGORA__ELF_NAME_MAX) == NULL || d.needed[i][0] == '\0')
            abort();
    if (memchr(d.runpath, '\0', sizeof d.runpath) == NULL ||
        memchr(d.rpath, '\0', sizeof d.rpath) == NULL)
        abort();
    return 0;
}
