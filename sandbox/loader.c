/*
 * Loading the plugin, already confined (loader filter active): dlopen of the verified copy, the
 * entry symbol, the descriptor checks of DESIGN §3, then init. Constructors run inside dlopen,
 * so they too run under every restriction.
 */
#include "runner.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define LOAD_FAIL(code, ...) agora__runner_fail(AGORA__IPC__STAGE__STAGE_LOAD, (code), __VA_ARGS__)

void agora__runner_load(const agora__runner_setup *s, const agora_host *host,
                        agora__runner_plugin *out)
{
    memset(out, 0, sizeof *out);
    void *h = dlopen(s->plugin_path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        LOAD_FAIL(AGORA_EINVAL,
                  "dlopen of the plugin failed: %s; check that it is a shared "
                  "object for x86_64 linked only against system libraries",
                  e ? e : "unknown error");
    }
    agora_plugin_entry_fn entry;
    void *sym = dlsym(h, AGORA_PLUGIN_ENTRY_SYMBOL);
    if (sym == NULL)
        LOAD_FAIL(AGORA_EINVAL,
                  "the plugin does not export %s; define it with "
                  "AGORA_PLUGIN_EXPORT",
                  AGORA_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, per POSIX */
    const agora_plugin *d = entry(AGORA_ABI_VERSION);
    if (d == NULL)
        LOAD_FAIL(AGORA_EVERSION, "the plugin refused host ABI %u.%u", AGORA_ABI_VERSION_MAJOR,
                  AGORA_ABI_VERSION_MINOR);
    if (d->struct_size < offsetof(agora_plugin, get_extension) + sizeof d->get_extension)
        LOAD_FAIL(AGORA_EVERSION, "the plugin descriptor is too small (%u bytes) for ABI 1.0",
                  d->struct_size);
    if (AGORA_ABI_MAJOR(d->abi_version) != AGORA_ABI_VERSION_MAJOR ||
        AGORA_ABI_MINOR(d->abi_version) > AGORA_ABI_VERSION_MINOR)
        LOAD_FAIL(AGORA_EVERSION,
                  "the plugin was built for ABI %u.%u but this runner implements %u.%u; rebuild "
                  "it against a matching SDK",
                  AGORA_ABI_MAJOR(d->abi_version), AGORA_ABI_MINOR(d->abi_version),
                  AGORA_ABI_VERSION_MAJOR, AGORA_ABI_VERSION_MINOR);
    if (d->id == NULL || d->version == NULL || strnlen(d->id, 256) >= 256 ||
        strnlen(d->version, 64) >= 64)
        LOAD_FAIL(AGORA_EINVAL, "the plugin descriptor lacks a valid id or version");
    if (strcmp(d->id, s->plugin_id) != 0 || strcmp(d->version, s->plugin_version) != 0)
        LOAD_FAIL(AGORA_EINVAL,
                  "the plugin says it is %.100s %.40s but its manifest says %.100s %.40s; they "
                  "must match",
                  d->id, d->version, s->plugin_id, s->plugin_version);
    if (d->process == NULL)
        LOAD_FAIL(AGORA_EINVAL, "the plugin descriptor has no process function");
    out->handle = h;
    out->desc = d;
    if (d->init != NULL) {
        int32_t rc = d->init(host, &out->state);
        if (rc != AGORA_OK)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_INIT, rc,
                               "the plugin's init returned %d; see its log lines", rc);
    }
}
