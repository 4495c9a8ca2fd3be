/* Checks of a plugin binary read from its bytes: a 64-bit little-endian x86_64 ELF shared
 * object (catches wrong uploads: an executable, another architecture, a text file), and, for
 * certification, that its dynamic symbol table exports agora_plugin_entry. The host never
 * dlopens or executes plugin bytes; every offset read from the file is bounds-checked. */
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

/* Section header i, bounds-checked against the file (NULL when outside). */
static const uint8_t *section(const uint8_t *p, size_t len, uint64_t shoff, uint16_t i)
{
    uint64_t at = shoff + (uint64_t)i * sizeof(Elf64_Shdr);
    return at + sizeof(Elf64_Shdr) <= len ? p + at : NULL;
}

int agora__elf_plugin_check(const uint8_t *p, size_t len, agora__error *err)
{
    int rc = agora__elf_check(p, len, err);
    if (rc != 0)
        return rc;
    uint64_t shoff = le64(p + offsetof(Elf64_Ehdr, e_shoff));
    uint16_t shentsize = le16(p + offsetof(Elf64_Ehdr, e_shentsize));
    uint16_t shnum = le16(p + offsetof(Elf64_Ehdr, e_shnum));
    if (shnum == 0 || shentsize != sizeof(Elf64_Shdr) || shoff > len ||
        (uint64_t)shnum * sizeof(Elf64_Shdr) > len - shoff)
        return agora__error_set(err, AGORA_EINVAL,
                                "plugin has no readable section headers, so its exported "
                                "symbols cannot be checked; do not strip them (plain strip is "
                                "fine, sstrip is not)");
    int have_dynsym = 0;
    for (uint16_t i = 0; i < shnum; i++) {
        const uint8_t *sh = section(p, len, shoff, i);
        if (sh == NULL || le32(sh + offsetof(Elf64_Shdr, sh_type)) != SHT_DYNSYM)
            continue;
        have_dynsym = 1;
        uint64_t off = le64(sh + offsetof(Elf64_Shdr, sh_offset));
        uint64_t size = le64(sh + offsetof(Elf64_Shdr, sh_size));
        uint64_t entsize = le64(sh + offsetof(Elf64_Shdr, sh_entsize));
        uint32_t link = le32(sh + offsetof(Elf64_Shdr, sh_link));
        const uint8_t *str = link < shnum ? section(p, len, shoff, (uint16_t)link) : NULL;
        if (entsize != sizeof(Elf64_Sym) || off > len || size > len - off || str == NULL ||
            le32(str + offsetof(Elf64_Shdr, sh_type)) != SHT_STRTAB)
            return agora__error_set(err, AGORA_EINVAL,
                                    "plugin's dynamic symbol table is malformed; the file is "
                                    "damaged");
        uint64_t soff = le64(str + offsetof(Elf64_Shdr, sh_offset));
        uint64_t ssize = le64(str + offsetof(Elf64_Shdr, sh_size));
        if (soff > len || ssize > len - soff)
            return agora__error_set(err, AGORA_EINVAL,
                                    "plugin's dynamic string table lies outside the file; the "
                                    "file is damaged");
        static const char want[] = AGORA_PLUGIN_ENTRY_SYMBOL;
        for (uint64_t k = 0; k < size / sizeof(Elf64_Sym); k++) {
            const uint8_t *sym = p + off + k * sizeof(Elf64_Sym);
            uint32_t name = le32(sym + offsetof(Elf64_Sym, st_name));
            if (name >= ssize || ssize - name < sizeof want ||
                memcmp(p + soff + name, want, sizeof want) != 0)
                continue;
            uint8_t info = sym[offsetof(Elf64_Sym, st_info)];
            uint8_t other = sym[offsetof(Elf64_Sym, st_other)];
            uint16_t shndx = le16(sym + offsetof(Elf64_Sym, st_shndx));
            if (shndx == SHN_UNDEF)
                continue; /* a reference to the symbol, not a definition */
            if (ELF64_ST_TYPE(info) != STT_FUNC ||
                (ELF64_ST_BIND(info) != STB_GLOBAL && ELF64_ST_BIND(info) != STB_WEAK) ||
                ELF64_ST_VISIBILITY(other) != STV_DEFAULT)
                return agora__error_set(err, AGORA_EINVAL,
                                        "plugin defines " AGORA_PLUGIN_ENTRY_SYMBOL
                                        " but not as an exported function; declare it with "
                                        "AGORA_PLUGIN_EXPORT from agora/agora.h");
            return 0;
        }
    }
    return agora__error_set(err, AGORA_EINVAL,
                            "plugin does not export " AGORA_PLUGIN_ENTRY_SYMBOL
                            "%s, so the worker could never load it; define "
                            "AGORA_PLUGIN_EXPORT const agora_plugin *" AGORA_PLUGIN_ENTRY_SYMBOL
                            "(uint32_t) from agora/agora.h (agora dev new makes a plugin that "
                            "does) and build against the SDK",
                            have_dynsym ? "" : " (it has no dynamic symbol table)");
}
