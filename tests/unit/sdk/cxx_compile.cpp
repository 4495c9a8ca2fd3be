// The public header must compile as C++ (with -Wall -Wextra -Werror -pedantic) and its structs
// must be usable from C++ code: this file is the test; it also checks the layout matches C.
#include <agora/agora.h>

#include <cstddef>
#include <cstdio>

static_assert(sizeof(agora_host) == 120, "agora_host layout differs between C and C++");
static_assert(offsetof(agora_image, series_uid) == 104, "agora_image layout differs in C++");

extern "C" AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t v)
{
    static const agora_plugin p = {sizeof(agora_plugin), AGORA_ABI_VERSION, "org.test.cxx", "1.0.0",
                                   nullptr, nullptr, nullptr, nullptr};
    return AGORA_ABI_MAJOR(v) == AGORA_ABI_VERSION_MAJOR ? &p : nullptr;
}

int main()
{
    const agora_plugin *p = agora_plugin_entry(AGORA_ABI_VERSION);
    if (p == nullptr || p->struct_size != sizeof(agora_plugin)) {
        std::printf("not ok: C++ plugin descriptor\n");
        return 1;
    }
    std::printf("ok: header compiles and works as C++\n");
    return 0;
}
