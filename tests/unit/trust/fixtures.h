/* Shared fixtures for the trust unit tests: a minimal x86_64 ELF shared-object header (enough
 * for the header check; never loaded), a valid manifest, temp directories. */
#ifndef AGORA_TESTS_TRUST_FIXTURES_H
#define AGORA_TESTS_TRUST_FIXTURES_H

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trust_int.h"

#define FIX_ELF_SIZE 256

static inline void fix_elf(uint8_t out[FIX_ELF_SIZE])
{
    memset(out, 0, FIX_ELF_SIZE);
    Elf64_Ehdr eh;
    memset(&eh, 0, sizeof eh);
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph;
    memset(&ph, 0, sizeof ph);
    ph.p_type = PT_LOAD;
    memcpy(out, &eh, sizeof eh);
    memcpy(out + sizeof eh, &ph, sizeof ph);
    for (size_t i = sizeof eh + sizeof ph; i < FIX_ELF_SIZE; i++)
        out[i] = (uint8_t)i; /* distinct bytes so every flip changes the hash */
}

#define FIX_MANIFEST_FMT                                                                           \
    "{\"id\": \"%s\", \"name\": \"Nodule finder\", \"vendor\": \"Example Imaging\",\n"             \
    " \"version\": \"%s\", \"abi\": \"1.0\", \"description\": \"Finds nodules.\",\n"               \
    " \"inputs\": {\"modalities\": [\"CT\"], \"body_parts\": [\"CHEST\"], \"min_frames\": 10},\n"  \
    " \"permissions\": [\"rtnPatCharsOpt\", \"rtnDevIdOpt\"],\n"                                   \
    " \"resources\": {\"memory_mb\": 512, \"time_s\": 60, \"threads\": 2},\n"                      \
    " \"outputs\": [\"findings\", \"measurements\"],\n"                                            \
    " \"pricing\": {\"model\": \"per-study\", \"price\": 150, \"currency\": \"EUR\"}}\n"

static inline size_t fix_manifest(char *buf, size_t size, const char *id, const char *version)
{
    int n = snprintf(buf, size, FIX_MANIFEST_FMT, id, version);
    return n < 0 ? 0 : (size_t)n;
}

/* A fresh directory under $TMPDIR (or /tmp); the caller removes it with fix_rmrf. */
static inline void fix_tmpdir(char *out, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, size, "%s/agora-trust-unit-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

static inline void fix_rmrf(const char *dir)
{
    char cmd[4200];
    if (strncmp(dir, "/tmp/", 5) != 0 && getenv("TMPDIR") == NULL)
        return; /* never remove anything outside the temp area */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif
