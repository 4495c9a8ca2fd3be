/* agora keygen and agora pack: the developer's and operator's first steps. */
#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int agora__cmd_keygen(int argc, char **argv)
{
    const char *out = NULL, *pass_file = NULL;
    int json = 0;
    const agora__cli_opt opts[] = {
        {"--out", 0, AGORA__CLI_VALUE, &out, "PREFIX", "write PREFIX.key and PREFIX.pub",
         AGORA__CLI_REQUIRED, NULL},
        {"--passphrase-file", 0, AGORA__CLI_VALUE, &pass_file, "FILE",
         "encrypt the secret key with the first line of FILE", 0, NULL},
        {"--json", 0, AGORA__CLI_FLAG, &json, NULL, "print the result as JSON", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        "keygen",
        "--out PREFIX [--passphrase-file FILE] [--json]",
        "Make an Ed25519 key pair: PREFIX.key (secret, mode 0600; encrypted with the\n"
        "first line of FILE when --passphrase-file is given) and PREFIX.pub (public).\n"
        "Existing files are never overwritten.",
        opts,
        AGORA__CLI_N(opts),
        0,
        0};
    size_t n_pos;
    int rc;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &rc))
        return rc;
    agora__error err = {0};
    char pass[1025];
    size_t pass_len = 0;
    if (pass_file != NULL &&
        agora__passphrase_read(pass_file, pass, sizeof pass, &pass_len, &err) != 0)
        return agora__fail("keygen", &err);
    agora__pubkey pub;
    rc = agora__keygen_files(out, pass_file != NULL ? pass : NULL, pass_len, &pub, &err);
    sodium_memzero(pass, sizeof pass);
    if (rc != 0)
        return agora__fail("keygen", &err);
    if (json) {
        char sec_path[4096], pub_path[4096];
        snprintf(sec_path, sizeof sec_path, "%s.key", out);
        snprintf(pub_path, sizeof pub_path, "%s.pub", out);
        return agora__json_emit_new(stdout,
                                    json_pack("{s:s,s:s,s:s,s:b}", "key_id", pub.id, "secret",
                                              sec_path, "public", pub_path, "encrypted",
                                              pass_file != NULL),
                                    AGORA__JSON_LINE);
    } else {
        printf("key id:     %s\n", pub.id);
        printf("secret key: %s.key (%s; keep it private)\n", out,
               pass_file != NULL ? "encrypted" : "not encrypted");
        printf("public key: %s.pub (share it)\n", out);
    }
    return 0;
}

int agora__cmd_pack(int argc, char **argv)
{
    const char *manifest_path = NULL, *plugin_path = NULL, *sign = NULL, *pass_file = NULL,
               *out = NULL;
    int json = 0;
    agora__cli_list asset_args = {0};
    const agora__cli_opt opts[] = {
        {"--manifest", 0, AGORA__CLI_VALUE, &manifest_path, "MANIFEST.json", "the plugin manifest",
         AGORA__CLI_REQUIRED, NULL},
        {"--asset", 0, AGORA__CLI_LIST, &asset_args, "NAME=FILE",
         "an asset the manifest declares (repeat for each)", 0, NULL},
        {"--plugin", 0, AGORA__CLI_VALUE, &plugin_path, "PLUGIN.so", "the plugin binary",
         AGORA__CLI_REQUIRED, NULL},
        {"--out", 'o', AGORA__CLI_VALUE, &out, "NAME.agora", "the bundle to write",
         AGORA__CLI_REQUIRED, NULL},
        {"--sign", 0, AGORA__CLI_VALUE, &sign, "VENDOR.key", "sign with the vendor key", 0, NULL},
        {"--passphrase-file", 0, AGORA__CLI_VALUE, &pass_file, "FILE",
         "passphrase of an encrypted --sign key", 0, NULL},
        {"--json", 0, AGORA__CLI_FLAG, &json, NULL, "print the result as JSON", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        "pack",
        "--manifest MANIFEST.json --plugin PLUGIN.so -o NAME.agora\n"
        "                  [--asset NAME=FILE]... [--sign VENDOR.key [--passphrase-file FILE]]\n"
        "                  [--json]",
        "Check the manifest (schemas/manifest.schema.json) and that the plugin is an\n"
        "x86_64 ELF shared object, then write one bundle file (docs/bundle-format.md),\n"
        "signed with the vendor key when --sign is given. Each asset the manifest declares\n"
        "(\"assets\") is given once with --asset NAME=FILE and streamed into the bundle\n"
        "(format version 2) with its size and sha256; an undeclared one is refused.",
        opts,
        AGORA__CLI_N(opts),
        0,
        0};
    size_t n_pos;
    int rc;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &rc))
        return rc;
    agora__error err = {0};
    uint8_t *manifest = NULL, *plugin = NULL, *bundle = NULL;
    size_t mlen, plen, blen;
    agora__seckey key;
    int have_key = 0;
    static char asset_names[AGORA__ASSETS_MAX][AGORA__ASSET_NAME_MAX + 1];
    const char *asset_files[AGORA__ASSETS_MAX];
    agora__manifest m;
    rc = agora__read_file(manifest_path, AGORA__TRUST_MANIFEST_MAX, &manifest, &mlen, &err);
    if (rc == 0)
        rc = agora__read_file(plugin_path, AGORA__TRUST_PLUGIN_MAX, &plugin, &plen, &err);
    /* Declared assets only, each given once: checked before anything is read or written. */
    if (rc == 0 && asset_args.n > 0 && (rc = agora__manifest_parse(manifest, mlen, &m, &err)) == 0)
        rc = agora__cli_assets(&m, asset_args.v, asset_args.n, asset_names, asset_files, &err);
    if (rc == 0 && sign != NULL) {
        rc = agora__load_seckey(sign, pass_file, &key, &err);
        have_key = rc == 0;
    }
    uint64_t total = 0;
    if (rc == 0 && asset_args.n > 0)
        rc = agora__bundle_write_assets(out, manifest, mlen, plugin, plen,
                                        (const char(*)[AGORA__ASSET_NAME_MAX + 1])asset_names,
                                        asset_files, asset_args.n, have_key ? &key : NULL, &total,
                                        &err);
    else if (rc == 0)
        rc = agora__bundle_build(manifest, mlen, plugin, plen, have_key ? &key : NULL, &bundle,
                                 &blen, &err);
    if (have_key)
        agora__seckey_wipe(&key);
    /* What we write must read back (the asset bytes were hashed while being written). */
    agora__bundle_file bf = {.fd = -1};
    agora__bundle *bp = &bf.b;
    if (rc == 0 && asset_args.n > 0) {
        rc = agora__bundle_open(out, &bf, &err);
        blen = (size_t)total;
    } else if (rc == 0) {
        rc = agora__bundle_parse(bundle, blen, bp, &err);
        if (rc == 0)
            rc = agora__write_file_atomic(out, bundle, blen, 0644, &err);
    }
    agora__cli_list_free(&asset_args);
    const agora__bundle b = *bp;
    if (rc == 0) {
        /* Warn now rather than at the operator's desk: certify refuses what cannot load. */
        agora__error werr = {0};
        if (agora__elf_plugin_check(plugin, plen, &werr) != 0)
            fprintf(stderr, "agora pack: warning: %s; agora certify will refuse this bundle\n",
                    werr.msg);
    }
    if (rc == 0) {
        char msha[65], psha[65];
        agora__hex(b.manifest_sha, 32, msha);
        agora__hex(b.plugin_sha, 32, psha);
        if (json) {
            json_t *assets = json_array();
            for (uint32_t i = 0; assets != NULL && i < b.n_assets; i++) {
                char ash[65];
                agora__hex(b.assets[i].sha256, 32, ash);
                json_array_append_new(assets,
                                      json_pack("{s:s,s:I,s:s}", "name", b.assets[i].name, "size",
                                                (json_int_t)b.assets[i].size, "sha256", ash));
            }
            if (agora__json_emit_new(
                    stdout,
                    json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:o,s:s?}", "bundle", out, "id",
                              b.parsed.id, "version", b.parsed.version, "size", (json_int_t)blen,
                              "manifest_sha256", msha, "plugin_sha256", psha, "format_version",
                              (json_int_t)b.format_version, "assets", assets, "vendor_key_id",
                              b.is_signed ? b.vendor.id : NULL),
                    AGORA__JSON_LINE) != 0)
                rc = AGORA__EIO;
        } else {
            printf("packed %s@%s into %s (%zu bytes)\n", b.parsed.id, b.parsed.version, out, blen);
            printf("  manifest sha256 %s\n  plugin   sha256 %s\n", msha, psha);
            for (uint32_t i = 0; i < b.n_assets; i++) {
                char ash[65];
                agora__hex(b.assets[i].sha256, 32, ash);
                printf("  asset    sha256 %s %s (%llu bytes)\n", ash, b.assets[i].name,
                       (unsigned long long)b.assets[i].size);
            }
            if (b.is_signed)
                printf("  signed by vendor key %s\n", b.vendor.id);
            else
                printf("  not signed (pass --sign VENDOR.key to sign)\n");
        }
    }
    agora__bundle_close(&bf);
    free(manifest);
    free(plugin);
    free(bundle);
    return rc == 0 ? 0 : agora__fail("pack", &err);
}
