/* libFuzzer target: bundle parsing (which also runs the ELF header check and the manifest
 * validator) and certify's dynamic-symbol check on arbitrary bytes. Must never crash, leak or
 * read out of bounds. */
#include <stddef.h>
#include <stdint.h>

#include "trust_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agora__bundle b;
    agora__error err;
    (void)agora__bundle_parse(data, size, &b, &err);
    agora__manifest m;
    (void)agora__manifest_parse(data, size, &m, &err);
    (void)agora__elf_check(data, size, &err);
    (void)agora__elf_plugin_check(data, size, &err);
    return 0;
}
