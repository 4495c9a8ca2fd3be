/* TEMPORARY until i10-assets is merged: the org.agora.assets/1 declarations. */
#ifndef AGORA_EXT_ASSETS
#define AGORA_EXT_ASSETS "org.agora.assets/1"
typedef struct agora_assets {
    uint32_t struct_size;
    int32_t (*get)(const agora_host *host, const char *name, const void **data, uint64_t *size);
} agora_assets;
#endif
