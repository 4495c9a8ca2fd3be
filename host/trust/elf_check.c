/* A header-only check that a plugin binary is a 64-bit little-endian x86_64 ELF shared object.
 * The host never dlopens or executes plugin bytes; this only catches wrong uploads (an
 * executable, another architecture, a text file) before certification. */
#include "trust_int.h"

#include <elf.h>
#include <string.h>

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

int agora__elf_check(const uint8_t *p, size_t len, agora__error *err)
{
    if (len < sizeof(Elf64_Ehdr) || memcmp(p, ELFMAG, SELFMAG) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin is not an ELF file; give the .so your build produced");
    if (p[EI_CLASS] != ELFCLASS64 || p[EI_DATA] != ELFDATA2LSB || p[EI_VERSION] != EV_CURRENT)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin is not a 64-bit little-endian ELF; build for x86_64");
    uint16_t type = le16(p + offsetof(Elf64_Ehdr, e_type));
    uint16_t machine = le16(p + offsetof(Elf64_Ehdr, e_machine));
    if (machine != EM_X86_64)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin is built for ELF machine %u, not x86_64 (62); rebuild "
                                "for x86_64",
                                machine);
    if (type != ET_DYN)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin is an ELF of type %u, not a shared object; build it as "
                                "a shared library (meson shared_module, gcc -shared)",
                                type);
    uint64_t phoff = le64(p + offsetof(Elf64_Ehdr, e_phoff));
    uint16_t phentsize = le16(p + offsetof(Elf64_Ehdr, e_phentsize));
    uint16_t phnum = le16(p + offsetof(Elf64_Ehdr, e_phnum));
    if (le16(p + offsetof(Elf64_Ehdr, e_ehsize)) != sizeof(Elf64_Ehdr) ||
        phentsize != sizeof(Elf64_Phdr) || phnum == 0 || phoff > len ||
        (uint64_t)phnum * phentsize > len - phoff)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin has a malformed ELF header (program headers outside "
                                "the file); the file is damaged");
    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = p + phoff + (uint64_t)i * phentsize;
        if (le32(ph + offsetof(Elf64_Phdr, p_type)) == PT_INTERP)
            return agora__error_set(err, AGORA_EINVAL,
                                    "plugin is an executable (it has a program interpreter), "
                                    "not a shared object; build it with -shared");
    }
    return 0;
}
