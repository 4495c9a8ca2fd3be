/* The Ready handshake: what the host accepts from a runner before it counts as started. Exposed
 * (not static in the pool) so the fuzz target tests these checks, not a copy of them. */
#include "runner_proc.h"

#include <string.h>

#include "agora/agora.h"

static int same_str(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

int agora__ready_check(const Agora__Ipc__Ready *r, uint32_t protocol_version, const char *plugin_id,
                       const char *plugin_version, agora__error *err)
{
    if (r->protocol_version != protocol_version)
        return agora__error_set(err, AGORA_EINVAL,
                                "Ready carries another protocol version than the host's %u",
                                protocol_version);
    if (plugin_id == NULL)
        return 0; /* MODE_INGEST: no plugin to check */
    if (AGORA_ABI_MAJOR(r->plugin_abi_version) != AGORA_ABI_VERSION_MAJOR ||
        AGORA_ABI_MINOR(r->plugin_abi_version) > AGORA_ABI_VERSION_MINOR)
        return agora__error_set(err, AGORA_EINVAL,
                                "Ready reports a plugin ABI this host does not accept");
    if (!same_str(r->plugin_id, plugin_id) || !same_str(r->plugin_version, plugin_version))
        return agora__error_set(err, AGORA_EINVAL,
                                "Ready names another plugin id or version than the manifest");
    return 0;
}
