/* agora keygen and agora pack: the developer's and operator's first steps. */
#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* What the one option table of keygen and pack fills. */
typedef struct keys_opts {
    const char *out, *pass_file;
    const char *manifest, *plugin, *sign; /* pack */
    agora__cli_list assets;               /* pack --asset, one NAME=FILE each */
    int json;
} keys_opts;

/* The commands of this file, as bits of the rows of their one option table. */
enum { KEYGEN = 1u, PACK = 2u };

/* Parse argv against the table (desc->which picks the rows). 1 to go on, else 0 with *status
 * the exit status (0 after --help, 2 after a usage error). */
static int parse(const agora__cli_cmd *desc, int argc, char **argv, keys_opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt table[] = {
        {"--out", 0, AGORA__CLI_VALUE, &o->out, "PREFIX", "write PREFIX.key and PREFIX.pub",
         AGORA__CLI_REQUIRED, NULL, 0, KEYGEN},
        {"--passphrase-file", 0, AGORA__CLI_VALUE, &o->pass_file, "FILE",
         "encrypt the secret key with the first line of FILE", 0, NULL, 0, KEYGEN},
        {"--manifest", 0, AGORA__CLI_VALUE, &o->manifest, "MANIFEST.json", "the plugin manifest",
         AGORA__CLI_REQUIRED, NULL, 0, PACK},
        {"--asset", 0, AGORA__CLI_LIST, &o->assets, "NAME=FILE",
         "an asset the manifest declares (repeat for each)", 0, NULL, 0, PACK},
        {"--plugin", 0, AGORA__CLI_VALUE, &o->plugin, "PLUGIN.so", "the plugin binary",
         AGORA__CLI_REQUIRED, NULL, 0, PACK},
        {"--out", 'o', AGORA__CLI_VALUE, &o->out, "NAME.agora", "the bundle to write",
         AGORA__CLI_REQUIRED, NULL, 0, PACK},
        {"--sign", 0, AGORA__CLI_VALUE, &o->sign, "VENDOR.key", "sign with the vendor key", 0, NULL,
         0, PACK},
        {"--passphrase-file", 0, AGORA__CLI_VALUE, &o->pass_file, "FILE",
         "passphrase of an encrypted --sign key", 0, NULL, 0, PACK},
        AGORA__CLI_OPT_JSON(&o->json, "print the result as JSON"),
    };
    return agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, NULL, status);
}

/* What each command takes and does, for its generated --help. */
#define KEYGEN_ARGS "--out PREFIX [--passphrase-file FILE] [--json]"
#define KEYGEN_ABOUT                                                                               \
    "Make an Ed25519 key pair: PREFIX.key (secret, mode 0600; encrypted with the\n"                \
    "first line of FILE when --passphrase-file is given) and PREFIX.pub (public).\n"               \
    "Existing files are never overwritten."

#define PACK_ARGS                                                                                  \
    "--manifest MANIFEST.json --plugin PLUGIN.so -o NAME.agora\n"                                  \
    "                  [--asset NAME=FILE]... [--sign VENDOR.key [--passphrase-file FILE]]\n"      \
    "                  [--json]"
#define PACK_ABOUT                                                                                 \
    "Check the manifest (schemas/manifest.schema.json) and that the plugin is an\n"                \
    "x86_64 ELF shared object, then write one bundle file (docs/bundle-format.md),\n"              \
    "signed with the vendor key when --sign is given. Each asset the manifest declares\n"          \
    "(\"assets\") is given once with --asset NAME=FILE and streamed into the bundle\n"             \
    "(format version 2) with its size and sha256; an undeclared one is refused."

static const agora__cli_cmd keygen_cmd = {"keygen", KEYGEN_ARGS, KEYGEN_ABOUT, NULL, 0,
                                          0,        0,           KEYGEN};
static const agora__cli_cmd pack_cmd = {"pack", PACK_ARGS, PACK_ABOUT, NULL, 0, 0, 0, PACK};

int agora__cmd_keygen(int argc, char **argv)
{
    keys_opts o;
    int rc;
    if (!parse(&keygen_cmd, argc, argv, &o, &rc))
        return rc;
    agora__error err = {0};
    char pass[1025];
    size_t pass_len = 0;
    if (o.pass_file != NULL &&
        agora__passphrase_read(o.pass_file, pass, sizeof pass, &pass_len, &err) != 0)
        return agora__fail("keygen", &err);
    agora__pubkey pub;
    rc = agora__keygen_files(o.out, o.pass_file != NULL ? pass : NULL, pass_len, &pub, &err);
    sodium_memzero(pass, sizeof pass);
    if (rc != 0)
        return agora__fail("keygen", &err);
    if (o.json) {
        char sec_path[4096], pub_path[4096];
        snprintf(sec_path, sizeof sec_path, "%s.key", o.out);
        snprintf(pub_path, sizeof pub_path, "%s.pub", o.out);
        return agora__json_emit_new(stdout,
                                    json_pack("{s:s,s:s,s:s,s:b}", "key_id", pub.id, "secret",
                                              sec_path, "public", pub_path, "encrypted",
                                              o.pass_file != NULL),
                                    AGORA__JSON_LINE);
    } else {
        printf("key id:     %s\n", pub.id);
        printf("secret key: %s.key (%s; keep it private)\n", o.out,
               o.pass_file != NULL ? "encrypted" : "not encrypted");
        printf("public key: %s.pub (share it)\n", o.out);
    }
    return 0;
}

int agora__cmd_pack(int argc, char **argv)
{
    keys_opts o;
    int rc;
    if (!parse(&pack_cmd, argc, argv, &o, &rc))
        return rc;
    agora__error err = {0};
    uint8_t *manifest = NULL, *plugin = NULL, *bundle = NULL;
    size_t mlen, plen, blen;
    agora__seckey key;
    int have_key = 0;
    static char asset_names[AGORA__ASSETS_MAX][AGORA__ASSET_NAME_MAX + 1];
    const char *asset_files[AGORA__ASSETS_MAX];
    agora__manifest m;
    rc = agora__read_file(o.manifest, AGORA__TRUST_MANIFEST_MAX, &manifest, &mlen, &err);
    if (rc == 0)
        rc = agora__read_file(o.plugin, AGORA__TRUST_PLUGIN_MAX, &plugin, &plen, &err);
    /* Declared assets only, each given once: checked before anything is read or written. */
    if (rc == 0 && o.assets.n > 0 && (rc = agora__manifest_parse(manifest, mlen, &m, &err)) == 0)
        rc = agora__cli_assets(&m, o.assets.v, o.assets.n, asset_names, asset_files, &err);
    if (rc == 0 && o.sign != NULL) {
        rc = agora__load_seckey(o.sign, o.pass_file, &key, &err);
        have_key = rc == 0;
    }
    uint64_t total = 0;
    if (rc == 0 && o.assets.n > 0)
        rc = agora__bundle_write_assets(o.out, manifest, mlen, plugin, plen,
                                        (const char(*)[AGORA__ASSET_NAME_MAX + 1]) asset_names,
                                        asset_files, o.assets.n, have_key ? &key : NULL, &total,
                                        &err);
    else if (rc == 0)
        rc = agora__bundle_build(manifest, mlen, plugin, plen, have_key ? &key : NULL, &bundle,
                                 &blen, &err);
    if (have_key)
        agora__seckey_wipe(&key);
    /* What we write must read back (the asset bytes were hashed while being written). */
    agora__bundle_file bf = {.fd = -1};
    agora__bundle *bp = &bf.b;
    if (rc == 0 && o.assets.n > 0) {
        rc = agora__bundle_open(o.out, &bf, &err);
        blen = (size_t)total;
    } else if (rc == 0) {
        rc = agora__bundle_parse(bundle, blen, bp, &err);
        if (rc == 0)
            rc = agora__write_file_atomic(o.out, bundle, blen, 0644, &err);
    }
    agora__cli_list_free(&o.assets);
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
        if (o.json) {
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
                    json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:o,s:s?}", "bundle", o.out, "id",
                              b.parsed.id, "version", b.parsed.version, "size", (json_int_t)blen,
                              "manifest_sha256", msha, "plugin_sha256", psha, "format_version",
                              (json_int_t)b.format_version, "assets", assets, "vendor_key_id",
                              b.is_signed ? b.vendor.id : NULL),
                    AGORA__JSON_LINE) != 0)
                rc = AGORA__EIO;
        } else {
            printf("packed %s@%s into %s (%zu bytes)\n", b.parsed.id, b.parsed.version, o.out,
                   blen);
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
