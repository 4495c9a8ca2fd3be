/*
 * ELF64 dynamic-section reader (elfdyn.h). Works from the program headers, as the loader does:
 * PT_DYNAMIC gives the entries, DT_STRTAB is a virtual address that a PT_LOAD segment maps back
 * to a file offset. Every read goes through in_file(), which refuses a range that overflows or
 * leaves the buffer.
 */
#include "elfdyn.h"

#include <elf.h>
#include <string.h>

/* [off, off + n) inside [0, len), without overflow. */
static int in_file(uint64_t off, uint64_t n, size_t len)
{
    return off <= len && n <= len - off;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v); /* little-endian host, checked by the caller (x86-64 only) */
    return v;
}

/* Map a virtual address (with n bytes behind it) to a file offset through the PT_LOADs. */
static int vaddr_to_off(const uint8_t *b, size_t len, const Elf64_Ehdr *eh, uint64_t va, uint64_t n,
                        uint64_t *off)
{
    for (uint16_t i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, b + eh->e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD || va < ph.p_vaddr)
            continue;
        uint64_t rel = va - ph.p_vaddr;
        if (rel >= ph.p_filesz || n > ph.p_filesz - rel)
            continue;
        if (ph.p_offset > UINT64_MAX - rel || !in_file(ph.p_offset + rel, n, len))
            return -1;
        *off = ph.p_offset + rel;
        return 0;
    }
    return -1;
}

/* Copy the NUL-terminated string at strtab[idx] (strtab has strsz bytes) into dst. */
static int copy_str(const uint8_t *strtab, uint64_t strsz, uint64_t idx, char *dst, size_t cap)
{
    if (idx >= strsz)
        return -1;
    uint64_t avail = strsz - idx;
    size_t lim = avail < cap ? (size_t)avail : cap;
    const void *nul = memchr(strtab + idx, '\0', lim);
    if (nul == NULL)
        return -1;
    size_t n = (size_t)((const uint8_t *)nul - (strtab + idx));
    memcpy(dst, strtab + idx, n + 1);
    return 0;
}

int agora__elf_dyn_parse(const uint8_t *b, size_t len, agora__elf_dyn *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    Elf64_Ehdr eh;
    if (len < sizeof eh || memcmp(b, ELFMAG, SELFMAG) != 0)
        return agora__error_set(err, AGORA_EINVAL, "not an ELF file");
    memcpy(&eh, b, sizeof eh);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64 || eh.e_type != ET_DYN)
        return agora__error_set(err, AGORA_EINVAL,
                                "not an x86-64 ELF64 little-endian shared object");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
        eh.e_phnum > AGORA__ELF_PHNUM_MAX ||
        !in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len))
        return agora__error_set(err, AGORA_EINVAL, "the program headers lie outside the file");
    Elf64_Phdr dyn = {0};
    int n_dyn = 0;
    for (uint16_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, b + eh.e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        if (ph.p_type == PT_DYNAMIC) {
            dyn = ph;
            n_dyn++;
        }
    }
    if (n_dyn == 0)
        return AGORA_OK; /* nothing to load */
    if (n_dyn > 1)
        return agora__error_set(err, AGORA_EINVAL, "more than one PT_DYNAMIC segment");
    if (!in_file(dyn.p_offset, dyn.p_filesz, len))
        return agora__error_set(err, AGORA_EINVAL, "PT_DYNAMIC lies outside the file");
    uint64_t n_ent = dyn.p_filesz / sizeof(Elf64_Dyn);
    if (n_ent > AGORA__ELF_DYN_MAX)
        n_ent = AGORA__ELF_DYN_MAX; /* the loader stops at DT_NULL; a longer table is refused */
    uint64_t strtab_va = 0, strsz = 0, runpath = 0, rpath = 0;
    int have_strtab = 0, have_strsz = 0, terminated = 0;
    uint64_t needed[AGORA__ELF_NEEDED_MAX];
    size_t n_needed = 0;
    for (uint64_t i = 0; i < n_ent; i++) {
        const uint8_t *e = b + dyn.p_offset + i * sizeof(Elf64_Dyn);
        int64_t tag = (int64_t)rd64(e);
        uint64_t val = rd64(e + 8);
        if (tag == DT_NULL) {
            terminated = 1;
            break;
        }
        switch (tag) {
        case DT_NEEDED:
            if (n_needed == AGORA__ELF_NEEDED_MAX)
                return agora__error_set(err, AGORA_ELIMIT, "more than %d DT_NEEDED entries",
                                        AGORA__ELF_NEEDED_MAX);
            needed[n_needed++] = val;
            break;
        case DT_STRTAB:
            strtab_va = val;
            have_strtab = 1;
            break;
        case DT_STRSZ:
            strsz = val;
            have_strsz = 1;
            break;
        case DT_RUNPATH:
            runpath = val;
            out->has_runpath = 1;
            break;
        case DT_RPATH:
            rpath = val;
            out->has_rpath = 1;
            break;
        default:
            break;
        }
    }
    if (!terminated)
        return agora__error_set(err, AGORA_EINVAL,
                                "the dynamic section has no DT_NULL within %d entries",
                                AGORA__ELF_DYN_MAX);
    if (n_needed == 0 && !out->has_runpath && !out->has_rpath)
        return AGORA_OK;
    uint64_t stroff = 0;
    if (!have_strtab || !have_strsz || strsz == 0 ||
        vaddr_to_off(b, len, &eh, strtab_va, strsz, &stroff) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "DT_STRTAB/DT_STRSZ are missing or lie outside the file");
    const uint8_t *strtab = b + stroff;
    for (size_t i = 0; i < n_needed; i++)
        if (copy_str(strtab, strsz, needed[i], out->needed[i], AGORA__ELF_NAME_MAX) != 0 ||
            out->needed[i][0] == '\0')
            return agora__error_set(err, AGORA_EINVAL,
                                    "DT_NEEDED entry %zu is empty, unterminated or longer than "
                                    "%d bytes",
                                    i, AGORA__ELF_NAME_MAX - 1);
    out->n_needed = n_needed;
    if (out->has_runpath &&
        copy_str(strtab, strsz, runpath, out->runpath, AGORA__ELF_PATHS_MAX) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "DT_RUNPATH is unterminated or longer than %d bytes",
                                AGORA__ELF_PATHS_MAX - 1);
    if (out->has_rpath && copy_str(strtab, strsz, rpath, out->rpath, AGORA__ELF_PATHS_MAX) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "DT_RPATH is unterminated or longer than %d bytes",
                                AGORA__ELF_PATHS_MAX - 1);
    return AGORA_OK;
}
