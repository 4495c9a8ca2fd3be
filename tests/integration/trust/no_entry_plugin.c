/* A shared object that does not export agora_plugin_entry, like the operator guide's practice
 * .so: it passes the ELF header check, and certify must refuse it (the worker could never load
 * it). Its only export is another function, and the entry name appears as a hidden symbol. */
#include <stdint.h>

__attribute__((visibility("default"))) int32_t agora_practice(void);
__attribute__((visibility("hidden"))) int32_t agora_plugin_entry(void);

int32_t agora_plugin_entry(void)
{
    return 7;
}

int32_t agora_practice(void)
{
    return agora_plugin_entry() + 35;
}
