/* A tiny shared object for trust tests: bundles need a real x86_64 ELF .so that exports
 * agora_plugin_entry (certify checks the dynamic symbol table). It is never loaded by these
 * tests (the host never dlopens plugin bytes). */
#include <stddef.h>
#include <stdint.h>

__attribute__((visibility("default"))) const void *agora_plugin_entry(uint32_t host_abi_version);

const void *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return NULL;
}
