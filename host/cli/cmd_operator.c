/* The operator's commands: certify a bundle into the signed catalog, revoke a build, show the
 * catalog. Every writing command re-verifies the current catalog with the operator's own key,
 * bumps the version, sets issued/expires and re-signs the whole document. */
#include "audit.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "cli_util.h"
#include "certify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_EXPIRES "30"

/* What the operator commands' one option table fills. */
typedef struct operator_opts {
    const char *catalog, *key, *pass, *expires;
    const char *model, *price, *currency, *bps, *level, *vendor_key; /* certify */
    agora__cli_list grants;                                          /* certify, one option each */
    int check;                      /* certify --check: run the app over the reference set */
    const char *reference, *report; /* certify --check: the operator's folder, the report file */
    const char *reason;             /* revoke */
    const char *trust;              /* catalog show */
    int pin;                        /* certify */
    int json;
    size_t n_pos; /* positionals, in argv[1..] */
} operator_opts;

/* The commands of this file, as bits of the rows of their one option table. */
enum { CERTIFY = 1u, REVOKE = 2u, CATALOG = 4u };

/* Parse argv against the table (desc->which picks the rows). 1 to go on with o->n_pos
 * positionals in argv[1..], else 0 with *status the exit status (0 after --help, 2 after a
 * usage error). */
static int parse(const agora__cli_cmd *desc, int argc, char **argv, operator_opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    o->level = "research";
    o->expires = DEFAULT_EXPIRES;
    const agora__cli_opt table[] = {
        {"--catalog", 0, AGORA__CLI_VALUE, &o->catalog, "DIR", "the catalog directory", 0, NULL, 0,
         CERTIFY | REVOKE},
        {"--trust", 0, AGORA__CLI_VALUE, &o->trust, "OPERATOR.pub",
         "show: verify the signature with this key first", 0, NULL, 0, CATALOG},
        {"--key", 0, AGORA__CLI_VALUE, &o->key, "OPERATOR.key", "the operator's signing key", 0,
         NULL, 0, CERTIFY | REVOKE},
        {"--key", 0, AGORA__CLI_VALUE, &o->key, "OPERATOR.key",
         "refresh: the operator's signing key", 0, NULL, 0, CATALOG},
        {"--model", 0, AGORA__CLI_VALUE, &o->model, "MODEL",
         "per-study|per-series|per-instance|subscription|free", 0, NULL, 0, CERTIFY},
        {"--price", 0, AGORA__CLI_VALUE, &o->price, "MINOR_UNITS", "price in cents (0..10^12)", 0,
         NULL, 0, CERTIFY},
        {"--currency", 0, AGORA__CLI_VALUE, &o->currency, "CODE", "ISO 4217 currency (EUR)", 0,
         NULL, 0, CERTIFY},
        {"--vendor-share-bps", 0, AGORA__CLI_VALUE, &o->bps, "0..10000",
         "vendor share in basis points (7000 = 70%)", 0, NULL, 0, CERTIFY},
        {"--level", 0, AGORA__CLI_VALUE, &o->level, "LEVEL", "research (default) or clinical", 0,
         NULL, 0, CERTIFY},
        {"--grant", 0, AGORA__CLI_LIST, &o->grants, "OPTION",
         "grant a PS3.15 option the manifest asks for", 0, agora__cli_option_word, 0, CERTIFY},
        {"--reason", 0, AGORA__CLI_VALUE, &o->reason, "TEXT", "why the build is revoked", 0, NULL,
         0, REVOKE},
        {"--expires", 0, AGORA__CLI_VALUE, &o->expires, "DAYS|DATE",
         "catalog expiry (default 30 days)", 0, NULL, 0, CERTIFY | REVOKE},
        {"--expires", 0, AGORA__CLI_VALUE, &o->expires, "DAYS|DATE",
         "refresh: the new expiry (default 30 days)", 0, NULL, 0, CATALOG},
        {"--check", 0, AGORA__CLI_FLAG, &o->check, NULL,
         "run the app in the sandbox over the reference set first; sign only when it passes", 0,
         NULL, 0, CERTIFY},
        {"--reference", 0, AGORA__CLI_VALUE, &o->reference, "DIR",
         "--check: the operator's own DICOM folder, added to the synthetic studies", 0, NULL, 0,
         CERTIFY},
        {"--report", 0, AGORA__CLI_VALUE, &o->report, "FILE",
         "--check: write the certification report here (and FILE.sig with --key)", 0, NULL, 0,
         CERTIFY},
        {"--vendor-key", 0, AGORA__CLI_VALUE, &o->vendor_key, "VENDOR.pub",
         "require the bundle to be signed by this vendor key (pinned for its vendor)", 0, NULL, 0,
         CERTIFY},
        {"--pin-vendor-key", 0, AGORA__CLI_FLAG, &o->pin, NULL,
         "add --vendor-key to the vendor's pinned keys (a vendor's new key)", 0, NULL, 0, CERTIFY},
        {"--passphrase-file", 0, AGORA__CLI_VALUE, &o->pass, "FILE",
         "passphrase of an encrypted --key", 0, NULL, 0, 0},
        AGORA__CLI_OPT_JSON_ONLY(&o->json, "print the result as JSON", CERTIFY | REVOKE),
        AGORA__CLI_OPT_JSON_ONLY(&o->json, "print JSON", CATALOG),
    };
    return agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, &o->n_pos, status);
}

/* What each command takes and does, for its generated --help. */
#define CERTIFY_ARGS                                                                               \
    "BUNDLE.agora --catalog DIR --key OPERATOR.key\n"                                              \
    "         [--check [--reference DIR] [--report FILE]]\n"                                       \
    "         --model per-study|per-series|per-instance|subscription|free\n"                       \
    "         --price MINOR_UNITS --currency EUR --vendor-share-bps 0..10000\n"                    \
    "         [--level research|clinical] [--grant OPTION]... [--expires DAYS|DATE]\n"             \
    "         [--vendor-key VENDOR.pub [--pin-vendor-key]] [--passphrase-file FILE] [--json]\n"    \
    "       agora certify --check BUNDLE.agora [--reference DIR] [--report FILE]\n"                \
    "         [--key OPERATOR.key [--passphrase-file FILE]] [--json]"
#define CERTIFY_ABOUT                                                                              \
    "Verify the bundle, pin the sha256 of its binary and manifest in DIR/catalog.json,\n"          \
    "store its contents in DIR/blobs/, bump the catalog version and re-sign it.\n"                 \
    "--grant gives PS3.15 options the manifest asks for (never more); repeat it for\n"             \
    "each option (--grant A --grant B; the older '--grant A B' still works, with a\n"              \
    "deprecation warning, until the next release). --expires sets the catalog expiry\n"            \
    "(default 30 days). With the free model, --price, --currency and --vendor-share-bps\n"         \
    "may be omitted.\n"                                                                            \
    "Vendor keys are pinned per vendor in the catalog: the first --vendor-key given for\n"         \
    "a vendor (the manifest's \"vendor\") is pinned for it; from then on a bundle of that\n"       \
    "vendor must be signed by a pinned key (--pin-vendor-key adds a new one), and a key\n"         \
    "pinned for one vendor is refused for another.\n"                                              \
    "--check first runs the app in the sandbox over synthetic studies of each modality\n"          \
    "it accepts (plus --reference DIR) and checks outcome, time, memory, schema, outputs,\n"       \
    "determinism, refusal and policy; a failing app is refused (exit 1) and nothing is\n"          \
    "signed. The report (--report FILE, signed into FILE.sig with --key) is pinned in the\n"       \
    "entry. Without --catalog, 'agora certify --check BUNDLE' only checks and reports."

#define REVOKE_ARGS                                                                                \
    "ID@VERSION --catalog DIR --key OPERATOR.key --reason TEXT\n"                                  \
    "         [--expires DAYS|DATE] [--passphrase-file FILE] [--json]"
#define REVOKE_ABOUT                                                                               \
    "Publish a new catalog version that keeps the entry with status \"revoked\",\n"                \
    "the reason and the time. Clinics stop running the build when they sync."

#define CATALOG_ARGS                                                                               \
    "show DIR [--trust OPERATOR.pub] [--json]\n"                                                   \
    "       agora catalog refresh DIR --key OPERATOR.key [--expires DAYS|DATE]\n"                  \
    "                             [--passphrase-file FILE] [--json]\n"                             \
    "       agora catalog publish DIR DEST [--json]"
#define CATALOG_ABOUT                                                                              \
    "show: print the catalog in DIR. With --trust the signature is verified first\n"               \
    "(and a bad one refused); without it the signature is checked for form only.\n"                \
    "refresh: publish the same entries as a new version with a new expiry\n"                       \
    "(default 30 days), so clinics keep running while nothing changes.\n"                          \
    "publish: copy DIR to DEST, where clinics sync from: the pinned blobs, new root\n"             \
    "versions, then the catalog (catalog.signed, replaced by one rename, so a clinic\n"            \
    "syncing meanwhile sees the old catalog or the new one, never a mix). DIR/clinics/\n"          \
    "is not copied."

static const agora__cli_cmd certify_cmd = {"certify", CERTIFY_ARGS, CERTIFY_ABOUT, NULL, 0, 0,
                                           1,         CERTIFY};
static const agora__cli_cmd revoke_cmd = {"revoke", REVOKE_ARGS, REVOKE_ABOUT, NULL, 0,
                                          0,        1,           REVOKE};
static const agora__cli_cmd catalog_cmd = {"catalog", CATALOG_ARGS, CATALOG_ABOUT, NULL, 0, 0,
                                           3,         CATALOG};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || strspn(s, "0123456789") != n || (s[0] == '0' && n > 1))
        return -1;
    uint64_t v = strtoull(s, NULL, 10);
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Load DIR's catalog verified with the operator's own key, or start an empty one. */
static int open_operator_catalog(const char *dir, const agora__seckey *key, int must_exist,
                                 agora__catalog *c, agora__error *err)
{
    int missing = 0;
    /* With roots in DIR, only a catalog key of the newest root may sign: clinics would refuse
     * anything else, so say so before anything is read or written. */
    int rc = agora__root_publish_check(dir, &key->pub, agora__trust_now(), err);
    if (rc == 0)
        rc = agora__catalog_operator_check(dir, &key->pub, "your --key", err);
    if (rc != 0)
        return rc;
    rc = agora__catalog_load_dir(dir, &key->pub, 1, c, NULL, NULL, NULL, NULL, &missing, err);
    if (rc != 0 && missing && !must_exist) {
        memset(c, 0, sizeof *c);
        return 0;
    }
    if (rc != 0 && missing)
        agora__error_set(err, AGORA_EINVAL, "%s holds no catalog; certify a bundle first", dir);
    return rc;
}

/* The end of every catalog update: wipe the key, free the catalog, and 0, or 1 after printing
 * err when rc says the update failed. */
static int update_end(const char *cmd, int rc, agora__seckey *key, agora__catalog *cat,
                      const agora__error *err)
{
    agora__seckey_wipe(key);
    agora__catalog_free(cat);
    return rc == 0 ? 0 : agora__fail(cmd, err);
}

/* The start of every catalog update (certify, revoke, catalog refresh): now, the new expiry
 * from --expires (a usage error: 2) and the operator's key (1 after printing why). 0 to go on;
 * *key is then the caller's to wipe. */
static int update_start(const char *cmd, const char *expires_s, const char *key_path,
                        const char *pass, int64_t *now, int64_t *expires, agora__seckey *key)
{
    agora__error err = {0};
    *now = agora__trust_now();
    if (agora__expires_parse(expires_s, *now, expires, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return 2;
    }
    if (agora__load_seckey(key_path, pass, key, &err) != 0)
        return agora__fail(cmd, &err);
    return 0;
}

static int publish(const char *dir, agora__catalog *c, const agora__seckey *key, int64_t now,
                   int64_t expires, agora__error *err)
{
    c->version++;
    c->issued = now;
    c->expires = expires;
    agora__strlcpy(c->key_id, key->pub.id, sizeof c->key_id);
    return agora__catalog_write_dir(dir, c, key, err);
}

static int write_blob(const char *dir, const uint8_t sha[32], const uint8_t *data, size_t len,
                      agora__error *err)
{
    char hex[65], path[4096];
    agora__hex(sha, 32, hex);
    int rc = agora__path(path, sizeof path, err, "%s/blobs/%s", dir, hex);
    if (rc == 0)
        rc = agora__write_file_atomic(path, data, len, 0644, err);
    return rc;
}

/* Stream asset i of the bundle into DIR/blobs/<sha256>, checking it against the bundle's table;
 * nothing is left behind when it does not match. */
static int write_asset_blob(const char *dir, const agora__bundle_file *bf, uint32_t i,
                            agora__error *err)
{
    char hex[65], path[4096];
    agora__hex(bf->b.assets[i].sha256, 32, hex);
    agora__atomic_file f;
    int rc = agora__path(path, sizeof path, err, "%s/blobs/%s", dir, hex);
    if (rc == 0)
        rc = agora__atomic_open(path, 0644, &f, err);
    if (rc != 0)
        return rc;
    rc = agora__bundle_asset_copy(bf, i, f.fd, err);
    if (rc != 0) {
        agora__atomic_abort(&f);
        return rc;
    }
    return agora__atomic_commit(&f, err);
}

/* The entry pins exactly these assets (same names, sizes and hashes, in order). */
static int same_assets(const agora__cat_entry *e, const agora__bundle *b)
{
    if (e->n_assets != b->n_assets)
        return 0;
    for (uint32_t i = 0; i < e->n_assets; i++)
        if (strcmp(e->assets[i].name, b->assets[i].name) != 0 ||
            e->assets[i].size != b->assets[i].size ||
            memcmp(e->assets[i].sha, b->assets[i].sha256, 32) != 0)
            return 0;
    return 1;
}

/* Append an operator action to CATALOG_DIR/audit.log (trust/audit.h), after the catalog was
 * published: a failure says so. */
static int audit_note(const char *catalog, const char *action, const agora__seckey *key,
                      const char *id, const char *version, uint64_t catalog_version,
                      agora__error *err)
{
    char what[256];
    snprintf(what, sizeof what, "%.128s@%.64s catalog v%llu", id, version,
             (unsigned long long)catalog_version);
    int rc = agora__audit_operator(catalog, action, key->pub.id, what, err);
    if (rc != 0)
        agora__error_prefix(err,
                            "catalog version %llu was published, but the audit log was not "
                            "appended",
                            (unsigned long long)catalog_version);
    return rc;
}

/* The vendor pin check of certify: a vendor with pins accepts only bundles signed by one of them
 * (unsigned ones too are refused), unless --pin-vendor-key adds the verified --vendor-key, which
 * must not be pinned for another vendor; the first --vendor-key of a vendor is pinned. *pinned
 * = 1 when a pin was added. */
static int vendor_pins(agora__catalog *cat, const agora__bundle *b, const agora__pubkey *vk,
                       int pin, int *pinned, agora__error *err)
{
    char what[AGORA__TRUST_ID_MAX + AGORA__TRUST_VERSION_MAX + 2];
    snprintf(what, sizeof what, "%s@%s", b->parsed.id, b->parsed.version);
    const char *vendor = b->parsed.vendor;
    *pinned = 0;
    /* Adding a key to a vendor that has pins: it must not be another vendor's pinned key. (A
     * first pin may name a key another vendor name also uses: one company, several names.) */
    if (pin && vk != NULL) {
        const agora__cat_vendor *owner = agora__catalog_key_owner(cat, vendor, b->vendor.pk);
        if (owner != NULL)
            return agora__error_set(err, AGORA_EINVAL,
                                    "vendor pin check: %s names vendor '%s' but is signed by key "
                                    "%s, which is pinned for vendor '%s'; refused (a vendor's key "
                                    "signs only that vendor's bundles)",
                                    what, vendor, b->vendor.id, owner->name);
    }
    if (!(pin && vk != NULL)) {
        int rc = agora__catalog_vendor_check(cat, vendor, b->is_signed ? b->vendor.id : "",
                                             b->is_signed ? b->vendor.pk : NULL, what, err);
        if (rc != 0)
            return rc;
    }
    if (vk == NULL)
        return 0;
    /* The bundle is signed by vk (checked above): pin it when the vendor has none, or when
     * asked to add it. */
    int has_pins = agora__catalog_vendor_check(cat, vendor, "", NULL, what, NULL) != 0;
    if (has_pins && !pin)
        return 0;
    return agora__catalog_vendor_pin(cat, vendor, vk, pinned, err);
}

/* What `agora certify --json` prints about the entry it wrote. */
static json_t *certify_json(const agora__cat_entry *e, int updated, uint64_t version,
                            const char *expires, const char *psha, const char *msha)
{
    json_t *o =
        json_pack("{s:s,s:s,s:b,s:I,s:s,s:s,s:s,s:s}", "id", e->id, "version", e->version,
                  "updated", updated, "catalog_version", (json_int_t)version, "expires", expires,
                  "plugin_sha256", psha, "manifest_sha256", msha, "level", e->level);
    if (o != NULL && e->has_report) {
        char rsha[65];
        agora__hex(e->report_sha, 32, rsha);
        json_object_set_new(o, "certification_report_sha256", json_string(rsha));
    }
    return o;
}

/* Print one line per check of report, for the text output. */
static void print_checks(FILE *f, const json_t *report)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "checks"), i, c)
    {
        fprintf(f, "  %s  %-12s %s\n", json_is_true(json_object_get(c, "passed")) ? "pass" : "FAIL",
                json_string_value(json_object_get(c, "name")),
                json_string_value(json_object_get(c, "detail")));
    }
}

/* `agora certify --check`: run the bundle over the reference set, write the report (signed with
 * key when not NULL) to --report, print the checks. 0 when every check passed, with *bytes the
 * canonical report (malloc'ed, the caller's); else the exit status after printing why. */
static int certify_check(const operator_opts *o, const char *bundle, const agora__seckey *key,
                         char **bytes, size_t *len)
{
    agora__certcheck_opts co = {
        .bundle_path = bundle, .reference_dir = o->reference, .host_version = AGORA_VERSION};
    json_t *report = NULL;
    int passed = 0;
    agora__error err = {0};
    *bytes = NULL;
    int rc = agora__certcheck_run(&co, &report, &passed, &err);
    if (rc == 0)
        rc = agora__cert_report_serialize(report, bytes, len, &err);
    if (rc == 0 && o->report != NULL)
        rc = agora__cert_report_write(o->report, *bytes, *len, key, &err);
    if (rc != 0) {
        json_decref(report);
        free(*bytes);
        *bytes = NULL;
        return agora__fail("certify", &err);
    }
    const json_t *app = json_object_get(report, "app");
    const char *id = json_string_value(json_object_get(app, "id"));
    const char *version = json_string_value(json_object_get(app, "version"));
    uint8_t sha[32];
    char hex[65];
    agora__sha256(*bytes, *len, sha);
    agora__hex(sha, 32, hex);
    if (o->json && o->catalog == NULL) {
        rc = agora__json_emit_new(stdout, json_incref(report), AGORA__JSON_DOC) == 0 ? 0 : 1;
    } else if (!o->json) {
        FILE *f = o->catalog == NULL ? stdout : stderr;
        fprintf(f, "check %s@%s: %s\n", id, version, passed ? "passed" : "FAILED");
        print_checks(f, report);
        if (o->report != NULL)
            fprintf(f, "  report %s%s (sha256 %s)\n", o->report, key != NULL ? " + .sig" : "", hex);
    }
    if (!passed) {
        char failed[256];
        agora__cert_report_failed(report, failed, sizeof failed);
        fprintf(stderr, "agora certify: not certified: %s@%s failed the check%s %s%s\n", id,
                version, strchr(failed, ',') ? "s" : "", failed,
                o->report != NULL ? "; the report says why"
                                  : " (--report FILE keeps the evidence)");
        free(*bytes);
        *bytes = NULL;
        rc = 1;
    }
    json_decref(report);
    return rc;
}

int agora__cmd_certify(int argc, char **argv)
{
    operator_opts o;
    int rc;
    if (!parse(&certify_cmd, argc, argv, &o, &rc))
        return rc;
    char **pos = argv + 1;
    uint32_t granted = 0;
    uint64_t price = 0, bps = 0;
    int is_free = o.model != NULL && strcmp(o.model, "free") == 0;
    if (rc == 0 && !o.check && (o.reference != NULL || o.report != NULL))
        rc = agora__cli_usage_error("certify", "--reference and --report go with --check");
    if (rc == 0 && o.check && o.catalog == NULL) {
        /* Check only: the report is signed when --key is given, nothing else is written. */
        agora__cli_list_free(&o.grants);
        if (o.n_pos != 1)
            return agora__cli_usage_error("certify", "--check needs BUNDLE");
        agora__seckey key;
        agora__error err = {0};
        if (o.key != NULL && agora__load_seckey(o.key, o.pass, &key, &err) != 0)
            return agora__fail("certify", &err);
        char *bytes = NULL;
        size_t len = 0;
        rc = certify_check(&o, pos[0], o.key != NULL ? &key : NULL, &bytes, &len);
        if (o.key != NULL)
            agora__seckey_wipe(&key);
        free(bytes);
        return rc;
    }
    if (rc == 0 && (o.n_pos != 1 || o.catalog == NULL || o.key == NULL || o.model == NULL ||
                    (!is_free && (o.price == NULL || o.currency == NULL || o.bps == NULL)))) {
        rc = agora__cli_usage_error("certify", "BUNDLE, --catalog, --key, --model, --price, "
                                               "--currency and --vendor-share-bps are required");
    }
    if (rc == 0 && o.pin && o.vendor_key == NULL)
        rc = agora__cli_usage_error("certify", "--pin-vendor-key needs --vendor-key VENDOR.pub");
    if (rc == 0 && !agora__pricing_model_valid(o.model)) {
        fprintf(stderr, "agora certify: --model must be per-study, per-series, per-instance, "
                        "subscription or free\n");
        rc = 2;
    }
    if (rc == 0 && o.price != NULL && parse_u64(o.price, 1000000000000ull, &price) != 0) {
        fprintf(stderr, "agora certify: --price must be an integer number of minor units "
                        "(cents), 0..10^12\n");
        rc = 2;
    }
    if (rc == 0 && is_free && price != 0) {
        fprintf(stderr, "agora certify: --price must be 0 with --model free\n");
        rc = 2;
    }
    if (rc == 0 && o.currency != NULL && !agora__currency_valid(o.currency)) {
        fprintf(stderr, "agora certify: --currency must be an ISO 4217 code like EUR\n");
        rc = 2;
    }
    if (rc == 0 && o.bps != NULL && parse_u64(o.bps, 10000, &bps) != 0) {
        fprintf(stderr, "agora certify: --vendor-share-bps must be an integer 0..10000 (basis "
                        "points: 7000 = 70%%)\n");
        rc = 2;
    }
    if (rc == 0 && strcmp(o.level, "research") != 0 && strcmp(o.level, "clinical") != 0) {
        fprintf(stderr, "agora certify: --level must be research or clinical\n");
        rc = 2;
    }
    if (rc == 0)
        rc = agora__cli_option_bits("certify", "a grantable PS3.15 option", o.grants.v, o.grants.n,
                                    &granted);
    agora__cli_list_free(&o.grants);
    if (rc != 0)
        return rc;

    agora__error err = {0};
    int64_t now, expires;
    agora__seckey key;
    if ((rc = update_start("certify", o.expires, o.key, o.pass, &now, &expires, &key)) != 0)
        return rc;
    /* --check: the app runs and passes before anything is signed; its report is pinned. */
    char *report = NULL;
    size_t report_len = 0;
    if (o.check && (rc = certify_check(&o, pos[0], &key, &report, &report_len)) != 0) {
        agora__seckey_wipe(&key);
        return rc;
    }
    uint8_t report_sha[32];
    if (report != NULL)
        agora__sha256(report, report_len, report_sha);
    agora__catalog cat = {0};
    /* The bundle's front is read and verified; its assets are streamed into the blob store. */
    static agora__bundle_file bf = {.fd = -1};
    rc = agora__bundle_open(pos[0], &bf, &err);
    /* Refuse what the worker could never load, before anything is signed (the manifest's ABI
     * was checked by bundle_parse). */
    if (rc == 0 && (rc = agora__elf_plugin_check(bf.b.plugin, bf.b.plugin_len, &err)) != 0)
        agora__error_prefix(&err, "not certified: %s@%s", bf.b.parsed.id, bf.b.parsed.version);
    agora__pubkey vk;
    if (rc == 0 && o.vendor_key != NULL) {
        rc = agora__pubkey_read(o.vendor_key, &vk, &err);
        if (rc == 0 && (!bf.b.is_signed || strcmp(vk.id, bf.b.vendor.id) != 0))
            rc = agora__error_set(&err, AGORA_EINVAL,
                                  "the bundle is %s, not by vendor key %s; refused",
                                  bf.b.is_signed ? "signed by another key" : "not signed", vk.id);
    }
    if (rc == 0 && (granted & ~bf.b.parsed.permissions) != 0) {
        char extra[256], asked[256];
        agora__trust_options_format(granted & ~bf.b.parsed.permissions, extra, sizeof extra);
        agora__trust_options_format(bf.b.parsed.permissions, asked, sizeof asked);
        rc = agora__error_set(&err, AGORA_EINVAL,
                              "--grant %s: the manifest does not ask for it (it asks for %s); a "
                              "build is never granted more than its manifest requests",
                              extra, asked);
    }
    char blobs[4096];
    if (rc == 0)
        rc = agora__path(blobs, sizeof blobs, &err, "%s/blobs", o.catalog);
    if (rc == 0)
        rc = agora__mkdirs(blobs, 0755, &err);
    if (rc == 0)
        rc = open_operator_catalog(o.catalog, &key, 0, &cat, &err);
    int pinned = 0;
    if (rc == 0)
        rc = vendor_pins(&cat, &bf.b, o.vendor_key != NULL ? &vk : NULL, o.pin, &pinned, &err);
    agora__cat_entry *e = NULL;
    int updated = 0;
    if (rc == 0) {
        e = agora__catalog_find(&cat, bf.b.parsed.id, bf.b.parsed.version);
        if (e != NULL && e->revoked)
            rc = agora__error_set(&err, AGORA_EINVAL,
                                  "%s@%s is revoked; a revoked build stays revoked (certify a "
                                  "new version)",
                                  e->id, e->version);
        else if (e != NULL &&
                 (memcmp(e->plugin_sha, bf.b.plugin_sha, 32) != 0 ||
                  memcmp(e->manifest_sha, bf.b.manifest_sha, 32) != 0 || !same_assets(e, &bf.b)))
            rc = agora__error_set(&err, AGORA_EINVAL,
                                  "%s@%s is already certified with different bytes; a version "
                                  "names one build forever (bump the version)",
                                  e->id, e->version);
        else if (e != NULL)
            updated = 1;
        else
            e = agora__catalog_add(&cat, &err);
        if (rc == 0 && e == NULL)
            rc = err.code;
    }
    if (rc == 0)
        rc = write_blob(o.catalog, bf.b.manifest_sha, bf.b.manifest, bf.b.manifest_len, &err);
    if (rc == 0)
        rc = write_blob(o.catalog, bf.b.plugin_sha, bf.b.plugin, bf.b.plugin_len, &err);
    for (uint32_t i = 0; rc == 0 && i < bf.b.n_assets; i++)
        rc = write_asset_blob(o.catalog, &bf, i, &err);
    if (rc == 0 && report != NULL)
        rc = write_blob(o.catalog, report_sha, (const uint8_t *)report, report_len, &err);
    if (rc != 0 && bf.b.n_assets > 0)
        agora__error_prefix(&err, "not certified: %s@%s", bf.b.parsed.id, bf.b.parsed.version);
    if (rc == 0) {
        agora__strlcpy(e->id, bf.b.parsed.id, sizeof e->id);
        agora__strlcpy(e->version, bf.b.parsed.version, sizeof e->version);
        agora__strlcpy(e->name, bf.b.parsed.name, sizeof e->name);
        agora__strlcpy(e->vendor, bf.b.parsed.vendor, sizeof e->vendor);
        agora__strlcpy(e->level, o.level, sizeof e->level);
        memcpy(e->plugin_sha, bf.b.plugin_sha, 32);
        memcpy(e->manifest_sha, bf.b.manifest_sha, 32);
        e->plugin_size = bf.b.plugin_len;
        e->manifest_size = bf.b.manifest_len;
        agora__strlcpy(e->vendor_key_id, bf.b.is_signed ? bf.b.vendor.id : "",
                       sizeof e->vendor_key_id);
        e->granted = granted;
        agora__strlcpy(e->pricing.model, o.model, sizeof e->pricing.model);
        e->pricing.price_minor = price;
        agora__strlcpy(e->pricing.currency, o.currency != NULL ? o.currency : "XXX",
                       sizeof e->pricing.currency);
        e->pricing.vendor_share_bps = (uint32_t)bps;
        e->certified_at = now;
        /* Re-certifying the same bytes without --check keeps the report pinned before. */
        if (report != NULL) {
            e->has_report = 1;
            memcpy(e->report_sha, report_sha, 32);
            e->report_size = report_len;
        }
        e->n_assets = bf.b.n_assets;
        for (uint32_t i = 0; i < bf.b.n_assets; i++) {
            agora__strlcpy(e->assets[i].name, bf.b.assets[i].name, sizeof e->assets[i].name);
            memcpy(e->assets[i].sha, bf.b.assets[i].sha256, 32);
            e->assets[i].size = bf.b.assets[i].size;
        }
        rc = publish(o.catalog, &cat, &key, now, expires, &err);
        if (rc == 0)
            rc = audit_note(o.catalog, "certify", &key, e->id, e->version, cat.version, &err);
    }
    if (rc == 0) {
        char psha[65], msha[65], when[AGORA__TIME_TEXT], g[256], asked[256];
        agora__hex(e->plugin_sha, 32, psha);
        agora__hex(e->manifest_sha, 32, msha);
        agora__time_format(cat.expires, when);
        agora__trust_options_format(e->granted, g, sizeof g);
        agora__trust_options_format(bf.b.parsed.permissions, asked, sizeof asked);
        if (o.json) {
            json_t *j = certify_json(e, updated, cat.version, when, psha, msha);
            if (j != NULL)
                json_object_set_new(j, "vendor_key_pinned", json_boolean(pinned));
            if (agora__json_emit_new(stdout, j, AGORA__JSON_LINE) != 0)
                rc = AGORA__EIO;
        } else {
            printf("%s %s@%s (%s) in %s\n", updated ? "updated" : "certified", e->id, e->version,
                   e->level, o.catalog);
            printf("  catalog version %llu, expires %s, signed by key %s\n",
                   (unsigned long long)cat.version, when, key.pub.id);
            printf("  plugin   sha256 %s\n  manifest sha256 %s\n", psha, msha);
            for (uint32_t i = 0; i < e->n_assets; i++) {
                char ash[65];
                agora__hex(e->assets[i].sha, 32, ash);
                printf("  asset    sha256 %s %s (%llu bytes)\n", ash, e->assets[i].name,
                       (unsigned long long)e->assets[i].size);
            }
            printf("  granted: %s (manifest asks for: %s)\n", g, asked);
            printf("  pricing: %s, %llu minor units of %s, vendor share %u bps\n", e->pricing.model,
                   (unsigned long long)e->pricing.price_minor, e->pricing.currency,
                   e->pricing.vendor_share_bps);
            if (bf.b.is_signed)
                printf("  vendor signature: key %s (verified%s%s%s)\n", bf.b.vendor.id,
                       pinned ? "; now pinned for vendor '" : "", pinned ? e->vendor : "",
                       pinned ? "'" : "");
            if (e->has_report) {
                char rsha[65];
                agora__hex(e->report_sha, 32, rsha);
                printf("  certification report sha256 %s\n", rsha);
            }
        }
    }
    free(report);
    agora__bundle_close(&bf);
    return update_end("certify", rc, &key, &cat, &err);
}

int agora__cmd_revoke(int argc, char **argv)
{
    operator_opts o;
    int rc;
    if (!parse(&revoke_cmd, argc, argv, &o, &rc))
        return rc;
    char **pos = argv + 1;
    char id[AGORA__TRUST_ID_MAX + 1];
    const char *at = o.n_pos == 1 ? strchr(pos[0], '@') : NULL;
    if (at == NULL || o.catalog == NULL || o.key == NULL || o.reason == NULL) {
        return agora__cli_usage_error("revoke",
                                      "ID@VERSION, --catalog, --key and --reason are required");
    }
    size_t id_len = (size_t)(at - pos[0]);
    if (id_len == 0 || id_len > AGORA__TRUST_ID_MAX) {
        fprintf(stderr, "agora revoke: '%.140s' is not ID@VERSION\n", pos[0]);
        return 2;
    }
    memcpy(id, pos[0], id_len);
    id[id_len] = '\0';
    const char *version = at + 1;
    size_t rlen = strlen(o.reason);
    if (rlen == 0 || rlen > AGORA__TRUST_REASON_MAX || !agora__utf8_valid(o.reason, rlen)) {
        fprintf(stderr,
                "agora revoke: --reason must be 1..%d bytes of UTF-8 text (no patient "
                "data)\n",
                AGORA__TRUST_REASON_MAX);
        return 2;
    }
    agora__error err = {0};
    int64_t now, expires;
    agora__seckey key;
    if ((rc = update_start("revoke", o.expires, o.key, o.pass, &now, &expires, &key)) != 0)
        return rc;
    agora__catalog cat = {0};
    rc = open_operator_catalog(o.catalog, &key, 1, &cat, &err);
    agora__cat_entry *e = NULL;
    if (rc == 0) {
        e = agora__catalog_find(&cat, id, version);
        if (e == NULL)
            rc = agora__error_set(&err, AGORA_EINVAL,
                                  "%s@%s is not in the catalog; see agora catalog show %s", id,
                                  version, o.catalog);
        else if (e->revoked)
            rc = agora__error_set(&err, AGORA_EINVAL, "%s@%s is already revoked", id, version);
    }
    if (rc == 0) {
        e->revoked = 1;
        e->revoked_at = now;
        agora__strlcpy(e->reason, o.reason, sizeof e->reason);
        rc = publish(o.catalog, &cat, &key, now, expires, &err);
        if (rc == 0)
            rc = audit_note(o.catalog, "revoke", &key, id, version, cat.version, &err);
    }
    if (rc == 0) {
        char when[AGORA__TIME_TEXT];
        agora__time_format(cat.expires, when);
        if (o.json)
            rc = agora__json_emit_new(stdout,
                                      json_pack("{s:s,s:s,s:I,s:s}", "id", id, "version", version,
                                                "catalog_version", (json_int_t)cat.version,
                                                "expires", when),
                                      AGORA__JSON_LINE) == 0
                     ? 0
                     : AGORA__EIO;
        else
            printf("revoked %s@%s in %s: catalog version %llu, expires %s\n", id, version,
                   o.catalog, (unsigned long long)cat.version, when);
    }
    return update_end("revoke", rc, &key, &cat, &err);
}

static void print_entry_line(const agora__cat_entry *e)
{
    char g[256];
    agora__trust_options_format(e->granted, g, sizeof g);
    printf("  %s@%s  %s  %s  %s %llu %s  vendor %u bps  grants %s\n", e->id, e->version,
           e->revoked ? "REVOKED" : "certified", e->level, e->pricing.model,
           (unsigned long long)e->pricing.price_minor, e->pricing.currency,
           e->pricing.vendor_share_bps, g);
    if (e->has_report) {
        char when[AGORA__TIME_TEXT], rsha[65];
        agora__time_format(e->certified_at, when);
        agora__hex(e->report_sha, 32, rsha);
        printf("      checked and certified %s (%s): report sha256 %s\n", when, e->level, rsha);
    }
    if (e->revoked) {
        char when[AGORA__TIME_TEXT];
        agora__time_format(e->revoked_at, when);
        printf("      revoked %s: %s\n", when, e->reason);
    }
}

/* agora catalog refresh: re-sign the unchanged entries with a higher version and a new expiry,
 * so clinics keep running while nothing changes. */
static int catalog_refresh(const char *dir, const char *key_path, const char *pass,
                           const char *expires_s, int json)
{
    agora__error err = {0};
    int64_t now, expires;
    agora__seckey key;
    int rc = update_start("catalog", expires_s, key_path, pass, &now, &expires, &key);
    if (rc != 0)
        return rc;
    agora__catalog cat = {0};
    rc = open_operator_catalog(dir, &key, 1, &cat, &err);
    if (rc == 0)
        rc = publish(dir, &cat, &key, now, expires, &err);
    if (rc == 0) {
        char when[AGORA__TIME_TEXT];
        agora__time_format(cat.expires, when);
        if (json)
            rc = agora__json_emit_new(stdout,
                                      json_pack("{s:I,s:s}", "catalog_version",
                                                (json_int_t)cat.version, "expires", when),
                                      AGORA__JSON_LINE) == 0
                     ? 0
                     : AGORA__EIO;
        else
            printf("refreshed %s: catalog version %llu, expires %s\n", dir,
                   (unsigned long long)cat.version, when);
    }
    return update_end("catalog", rc, &key, &cat, &err);
}

/* agora catalog publish: copy the catalog directory to where clinics read it, in an order that
 * never shows a reader a catalog without its blobs and roots (host/trust/publish.c). */
static int catalog_publish(const char *src, const char *dest, int json)
{
    agora__error err = {0};
    agora__publish_stats st;
    if (agora__catalog_publish(src, dest, &st, &err) != 0)
        return agora__fail("catalog", &err);
    if (json)
        return agora__json_emit_new(stdout,
                                    json_pack("{s:s,s:I,s:I,s:I}", "published", dest,
                                              "catalog_version", (json_int_t)st.version, "blobs",
                                              (json_int_t)st.blobs, "roots", (json_int_t)st.roots),
                                    AGORA__JSON_LINE);
    printf("published catalog version %llu to %s (%u new blob%s, %u new root version%s)\n",
           (unsigned long long)st.version, dest, st.blobs, st.blobs == 1 ? "" : "s", st.roots,
           st.roots == 1 ? "" : "s");
    return 0;
}

int agora__cmd_catalog(int argc, char **argv)
{
    operator_opts o;
    int rc;
    if (!parse(&catalog_cmd, argc, argv, &o, &rc))
        return rc;
    const char *trust = o.trust, *key_path = o.key, *pass = o.pass, *expires_s = o.expires;
    int json = o.json;
    char **pos = argv + 1;
    if (o.n_pos == 2 && strcmp(pos[0], "refresh") == 0) {
        if (key_path == NULL) {
            return agora__cli_usage_error("catalog", "refresh needs --key OPERATOR.key");
        }
        return catalog_refresh(pos[1], key_path, pass, expires_s, json);
    }
    if (o.n_pos == 3 && strcmp(pos[0], "publish") == 0)
        return catalog_publish(pos[1], pos[2], json);
    if (o.n_pos != 2 || strcmp(pos[0], "show") != 0) {
        return agora__cli_usage_error("catalog",
                                      "usage: agora catalog show|refresh|publish DIR ...");
    }
    const char *dir = pos[1];
    agora__error err = {0};
    agora__catalog cat;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int verified = trust != NULL;
    if (trust != NULL) {
        agora__pubkey pk;
        rc = agora__pubkey_read(trust, &pk, &err);
        if (rc == 0)
            rc = agora__catalog_operator_check(dir, &pk, "the --trust key", &err);
        if (rc == 0)
            rc = agora__catalog_load_dir(dir, &pk, 1, &cat, &raw, &raw_len, NULL, NULL, NULL, &err);
    } else {
        /* No key to check against: read the signature's key id and parse for display only. */
        char key_id[AGORA__KEY_ID_HEX];
        uint8_t *sig = NULL, sigbin[64];
        size_t sig_len;
        rc = agora__catalog_read_dir(dir, &raw, &raw_len, &sig, &sig_len, NULL, &err);
        if (rc == 0)
            rc = agora__sig_parse(sig, sig_len, key_id, sigbin, &err);
        free(sig);
        if (rc == 0)
            rc = agora__catalog_parse(raw, raw_len, &cat, &err);
        if (rc == 0)
            fprintf(stderr, "agora catalog: signature NOT verified (pass --trust "
                            "OPERATOR.pub to verify it)\n");
    }
    if (rc != 0) {
        free(raw);
        return agora__fail("catalog", &err);
    }
    int status = 0;
    if (json) {
        /* The catalog document itself (parsed above, so it is JSON), next to whether its
         * signature was verified. */
        json_error_t je;
        status = agora__json_emit_new(stdout,
                                      json_pack("{s:b,s:o}", "verified", verified, "catalog",
                                                json_loadb((const char *)raw, raw_len, 0, &je)),
                                      AGORA__JSON_DOC);
    } else {
        char issued[AGORA__TIME_TEXT], expires[AGORA__TIME_TEXT];
        agora__time_format(cat.issued, issued);
        agora__time_format(cat.expires, expires);
        printf("catalog %s\n", dir);
        printf("  version %llu, issued %s, expires %s%s\n", (unsigned long long)cat.version, issued,
               expires, cat.expires <= agora__trust_now() ? " (EXPIRED)" : "");
        printf("  signed by key %s (%s)\n", cat.key_id, verified ? "verified" : "not verified");
        printf("  %zu entr%s\n", cat.n, cat.n == 1 ? "y" : "ies");
        qsort(cat.entries, cat.n, sizeof *cat.entries, agora__catalog_entry_cmp);
        for (size_t i = 0; i < cat.n; i++)
            print_entry_line(&cat.entries[i]);
        for (size_t i = 0; i < cat.n_vendors; i++) {
            printf("  vendor %s: pinned key%s", cat.vendors[i].name,
                   cat.vendors[i].n_keys == 1 ? "" : "s");
            for (uint32_t k = 0; k < cat.vendors[i].n_keys; k++)
                printf(" %s", cat.vendors[i].keys[k].id);
            printf("\n");
        }
    }
    free(raw);
    agora__catalog_free(&cat);
    return status;
}
