/* A tiny shared object for trust tests: bundles need a real x86_64 ELF .so. It is never loaded
 * by these tests (the host never dlopens plugin bytes). */
#include <stdint.h>

__attribute__((visibility("default"))) int32_t agora_trust_dummy(void);

int32_t agora_trust_dummy(void)
{
    return 42;
}
