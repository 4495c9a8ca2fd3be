/* The clinic's commands: init a home trusting an operator key, sync a catalog, install, list and
 * remove plugins. */
#include "audit.h"
#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"

#include <stdlib.h>
#include <string.h>

/* What the clinic commands' one option table fills. */
typedef struct clinic_opts {
    const char *home;
    const char *grace;     /* init */
    agora__cli_list trust; /* init, one OPERATOR.pub each */
    agora__cli_list allow; /* init, PS3.15 options */
    const char *from;      /* install */
    int json;
} clinic_opts;

/* The commands of this file, as bits of the rows of their one option table. */
enum { INIT = 1u, SYNC = 2u, INSTALL = 4u, LIST = 8u, REMOVE = 16u };

/* Parse argv against the table (desc->which picks the rows), and when one is not NULL require
 * the one positional it names (in argv[1]). 1 to go on, else 0 with *status the exit status (0
 * after --help, 2 after a usage error). */
static int parse(const agora__cli_cmd *desc, int argc, char **argv, clinic_opts *o, const char *one,
                 int *status)
{
    memset(o, 0, sizeof *o);
    o->grace = "0";
    const agora__cli_opt table[] = {
        {"--home", 0, AGORA__CLI_VALUE, &o->home, "DIR",
         "the home to create (default: $AGORA_HOME, then ~/.local/share/agora)", 0, NULL, 0, INIT},
        AGORA__CLI_OPT_HOME_ONLY(&o->home, SYNC | INSTALL | LIST | REMOVE),
        {"--trust", 0, AGORA__CLI_LIST, &o->trust, "OPERATOR.pub", "trust this operator key",
         AGORA__CLI_REQUIRED, NULL, 0, INIT},
        {"--allow", 0, AGORA__CLI_LIST, &o->allow, "OPTION",
         "a PS3.15 option plugins may be given (default none)", 0, agora__cli_option_word, 0, INIT},
        {"--grace", 0, AGORA__CLI_VALUE, &o->grace, "SECONDS",
         "catalog expiry grace (default 0: fail closed)", 0, NULL, 0, INIT},
        {"--from", 0, AGORA__CLI_VALUE, &o->from, "CATALOG_DIR",
         "the catalog directory (default: the last sync's)", 0, NULL, 0, INSTALL},
        AGORA__CLI_OPT_JSON(&o->json, "print JSON"),
    };
    size_t n_pos;
    if (!agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, &n_pos, status))
        return 0;
    if (one != NULL && n_pos != 1) {
        agora__cli_lists_free(table, AGORA__CLI_N(table));
        *status = agora__cli_usage_error(desc->name, "%s is required", one);
        return 0;
    }
    return 1;
}

/* The home --home names (else the default); NULL after printing why it cannot be opened. */
static agora__trust_home *open_home(const char *cmd, const clinic_opts *o)
{
    agora__error err = {0};
    agora__trust_home *h;
    if (agora__trust_home_open(o->home, &h, &err) != 0) {
        agora__fail(cmd, &err);
        return NULL;
    }
    return h;
}

/* What each command takes and does, for its generated --help. */
#define INIT_ARGS                                                                                  \
    "[--home DIR] --trust OPERATOR.pub [--trust KEY2.pub]\n"                                       \
    "                  [--allow OPTION]... [--grace SECONDS] [--json]"
#define INIT_ABOUT                                                                                 \
    "Create a clinic home (DIR, else $AGORA_HOME, else $XDG_DATA_HOME/agora, else\n"               \
    "~/.local/share/agora): 0700 directories, a 32-byte clinic secret, the clinic's\n"             \
    "signing key for ledger exports (clinic.key, 0600; clinic.pub for the operator),\n"            \
    "the trusted operator key(s) and config.json with the PS3.15 options plugins may\n"            \
    "be given (--allow, repeated for each option; default none) and the catalog expiry\n"          \
    "grace (default 0: fail closed)."
#define SYNC_ABOUT                                                                                 \
    "First follow the chain of roots in CATALOG_DIR/root/ from the held one (each new\n"           \
    "root signed by a threshold of the previous root's keys and of its own; no\n"                  \
    "rollback; the last one not expired). Then accept the catalog (catalog.signed, or\n"           \
    "catalog.json with catalog.sig) if it is signed by a catalog key of that root (by a\n"         \
    "trusted key when there is no root), its version is higher than the held one and\n"            \
    "it has not expired; then print what changed (new, updated, revoked, dropped)."
#define INSTALL_ABOUT                                                                              \
    "Copy a certified build from the catalog's blob store (the directory of the last\n"            \
    "sync unless --from) into the home, checking sha256 against the held catalog.\n"               \
    "Without @VERSION the highest certified, non-revoked version is installed."
#define LIST_ABOUT                                                                                 \
    "Installed plugins with their status: ok, revoked, expired-catalog,\n"                         \
    "not-in-catalog or tampered (installed bytes differ from the catalog's pins)."

/* sync, install and remove check their one positional themselves, to name it. */
static const agora__cli_cmd init_cmd = {"init", INIT_ARGS, INIT_ABOUT, NULL, 0, 0, 0, INIT};
static const agora__cli_cmd sync_cmd = {
    "sync", "CATALOG_DIR [--home DIR] [--json]", SYNC_ABOUT, NULL, 0, 0, 1, SYNC};
static const agora__cli_cmd install_cmd = {
    "install",
    "ID[@VERSION] [--home DIR] [--from CATALOG_DIR] [--json]",
    INSTALL_ABOUT,
    NULL,
    0,
    0,
    1,
    INSTALL};
static const agora__cli_cmd list_cmd = {"list", "[--home DIR] [--json]", LIST_ABOUT, NULL, 0, 0, 0,
                                        LIST};
static const agora__cli_cmd remove_cmd = {
    "remove", "ID [--home DIR] [--json]", "Remove an installed plugin.", NULL, 0, 0, 1, REMOVE};

int agora__cmd_init(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&init_cmd, argc, argv, &o, NULL, &rc))
        return rc;
    uint32_t policy = 0;
    rc = agora__cli_option_bits("init", "a PS3.15 option a plugin can have", o.allow.v, o.allow.n,
                                &policy);
    char *end = NULL;
    long long grace = strtoll(o.grace, &end, 10);
    if (rc == 0 && (o.grace[0] == '\0' || *end != '\0' || grace < 0 || grace > 90LL * 86400))
        rc = agora__cli_usage_error("init", "--grace must be seconds 0..7776000 (90 days)");
    if (rc != 0) {
        agora__cli_list_free(&o.trust);
        agora__cli_list_free(&o.allow);
        return rc;
    }
    unsigned secret_done = 0;
    agora__init_opts init = {o.home, o.trust.v, o.trust.n, policy, grace, &secret_done};
    char dir[4096];
    agora__error err = {0};
    rc = agora__home_init(&init, dir, sizeof dir, &err);
    agora__cli_list_free(&o.trust);
    agora__cli_list_free(&o.allow);
    if (rc != 0)
        return agora__fail("init", &err);
    if (secret_done & AGORA__SECRET_MIGRATED)
        fprintf(stderr,
                "agora: migrated deid.secret into %s/secret; agora deid keeps its "
                "pseudonyms (back up secret: it is now the only clinic secret)\n",
                dir);
    agora__trust_home *h;
    if (agora__trust_home_open(dir, &h, &err) != 0)
        return agora__fail("init", &err);
    size_t n_keys;
    const agora__pubkey *keys = agora__trust_home_trusted(h, &n_keys);
    char allowed[256], clinic_key[17];
    agora__trust_options_format(policy, allowed, sizeof allowed);
    if (agora__trust_clinic_key_ensure(dir, NULL, clinic_key, &err) != 0) {
        agora__trust_home_close(h);
        return agora__fail("init", &err);
    }
    if (o.json) {
        json_t *trusted = json_array();
        for (size_t i = 0; trusted != NULL && i < n_keys; i++)
            json_array_append_new(trusted, json_string(keys[i].id));
        char pub[4200];
        if (agora__home_path(dir, AGORA__HOME_CLINIC_PUB, pub, sizeof pub, NULL) != 0)
            pub[0] = '\0';
        rc = agora__json_emit_new(stdout,
                                  json_pack("{s:s,s:o,s:s,s:I,s:s,s:s}", "home", dir, "trusted",
                                            trusted, "allowed_options", allowed, "expiry_grace_s",
                                            (json_int_t)grace, "clinic_pub", pub, "clinic_key_id",
                                            clinic_key),
                                  AGORA__JSON_LINE);
    } else {
        printf("clinic home %s created\n", dir);
        for (size_t i = 0; i < n_keys; i++)
            printf("  trusted operator key: %s\n", keys[i].id);
        printf("  PS3.15 options plugins may be given: %s\n", allowed);
        printf("  catalog expiry grace: %lld s%s\n", grace, grace == 0 ? " (fail closed)" : "");
        printf("  clinic signing key: %s/clinic.pub (key id %s; give it to your operator)\n", dir,
               clinic_key);
        printf("next: agora sync CATALOG_DIR%s%s\n", o.home != NULL ? " --home " : "",
               o.home != NULL ? o.home : "");
    }
    agora__trust_home_close(h);
    return rc;
}

/* Did pricing, grants or level change between two entries of the same build? */
static int entry_changed(const agora__cat_entry *a, const agora__cat_entry *b)
{
    return a->granted != b->granted || strcmp(a->level, b->level) != 0 ||
           memcmp(&a->pricing, &b->pricing, sizeof a->pricing) != 0;
}

/* What changed between old and the held catalog: appended to changes when not NULL (--json),
 * else printed one line each. */
static void print_changes(const agora__catalog *cur, const agora__catalog *old, json_t *changes)
{
    int any = 0;
    for (size_t i = 0; i < cur->n; i++) {
        const agora__cat_entry *e = &cur->entries[i];
        const agora__cat_entry *o = agora__catalog_find(old, e->id, e->version);
        const char *what = NULL;
        if (o == NULL)
            what = e->revoked ? "revoked" : "new";
        else if (e->revoked && !o->revoked)
            what = "revoked";
        else if (entry_changed(o, e))
            what = "updated";
        if (what == NULL)
            continue;
        if (changes != NULL) {
            json_t *c =
                json_pack("{s:s,s:s,s:s}", "change", what, "id", e->id, "version", e->version);
            if (c != NULL && e->revoked)
                json_object_set_new(c, "reason", json_string(e->reason));
            json_array_append_new(changes, c);
        } else if (e->revoked) {
            printf("  %-8s %s@%s: %s\n", what, e->id, e->version, e->reason);
        } else {
            printf("  %-8s %s@%s (%s, %s %llu %s)\n", what, e->id, e->version, e->level,
                   e->pricing.model, (unsigned long long)e->pricing.price_minor,
                   e->pricing.currency);
        }
        any = 1;
    }
    for (size_t i = 0; i < old->n; i++) {
        const agora__cat_entry *o = &old->entries[i];
        if (agora__catalog_find(cur, o->id, o->version) != NULL)
            continue;
        if (changes != NULL)
            json_array_append_new(changes, json_pack("{s:s,s:s,s:s}", "change", "dropped", "id",
                                                     o->id, "version", o->version));
        else
            printf("  dropped  %s@%s (no longer in the catalog: it will not run)\n", o->id,
                   o->version);
        any = 1;
    }
    if (changes == NULL && !any)
        printf("  no entry changed\n");
}

/* Append a clinic-side trust action to HOME/audit.log (trust/audit.h). 0, or 1 with the message
 * printed: the action itself took place. */
static int audit_note(const char *cmd, const agora__trust_home *h, const char *object)
{
    agora__error err = {0};
    if (agora__audit_home(agora__trust_home_dir(h), cmd, "clinic", object, &err) == 0)
        return 0;
    fprintf(stderr, "agora %s: done, but the audit log could not be appended: %s\n", cmd, err.msg);
    return 1;
}

int agora__cmd_sync(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&sync_cmd, argc, argv, &o, "CATALOG_DIR", &rc))
        return rc;
    char **pos = argv + 1;
    agora__error err = {0};
    agora__trust_home *h = open_home("sync", &o);
    if (h == NULL)
        return 1;
    const agora__catalog *before = agora__trust_home_catalog(h);
    uint64_t held = before != NULL ? before->version : 0;
    uint64_t root_before = agora__trust_home_root(h)->version;
    agora__catalog old;
    rc = agora__home_sync(h, pos[0], &old, &err);
    if (rc < 0) {
        agora__trust_home_close(h);
        return agora__fail("sync", &err);
    }
    /* A sync that succeeded leaves a held catalog. */
    const agora__catalog *cur = agora__trust_home_catalog(h);
    char expires[AGORA__TIME_TEXT];
    agora__time_format(cur->expires, expires);
    int status = 0;
    const agora__root *root = agora__trust_home_root(h);
    if (rc != 1 || root->version != root_before) {
        char what[160];
        snprintf(what, sizeof what, "catalog v%llu -> v%llu key %s root v%llu -> v%llu",
                 (unsigned long long)held, (unsigned long long)cur->version, cur->key_id,
                 (unsigned long long)root_before, (unsigned long long)root->version);
        status = audit_note("sync", h, what);
    }
    if (!o.json && root->version != root_before) {
        printf("root version %llu -> %llu (catalog key%s", (unsigned long long)root_before,
               (unsigned long long)root->version, root->n_catalog == 1 ? "" : "s");
        for (size_t i = 0; i < root->n_catalog; i++)
            printf(" %s", root->catalog_keys[i].id);
        printf(")\n");
    }
    if (o.json) {
        json_t *changes = json_array();
        if (changes != NULL)
            print_changes(cur, rc == 1 ? cur : &old, changes);
        status |= agora__json_emit_new(
            stdout,
            json_pack("{s:b,s:I,s:I,s:s,s:o,s:I,s:I}", "changed", rc != 1, "held_version",
                      (json_int_t)held, "version", (json_int_t)cur->version, "expires", expires,
                      "changes", changes, "held_root_version", (json_int_t)root_before,
                      "root_version", (json_int_t)root->version),
            AGORA__JSON_LINE);
    } else if (rc == 1) {
        printf("catalog version %llu is already held; nothing to do\n",
               (unsigned long long)cur->version);
    } else {
        printf("catalog version %llu -> %llu (expires %s, signed by key %s)\n",
               (unsigned long long)held, (unsigned long long)cur->version, expires, cur->key_id);
        print_changes(cur, &old, NULL);
        agora__trust_plugin *list;
        size_t n;
        if (agora__trust_list(h, &list, &n, NULL) == 0) {
            for (size_t i = 0; i < n; i++)
                if (list[i].status != AGORA__TRUST_OK)
                    printf("  installed %s@%s is now %s: it will not run\n", list[i].id,
                           list[i].version, agora__trust_status_name(list[i].status));
            free(list);
        }
    }
    agora__catalog_free(&old);
    agora__trust_home_close(h);
    return status;
}

int agora__cmd_install(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&install_cmd, argc, argv, &o, "ID[@VERSION]", &rc))
        return rc;
    char **pos = argv + 1;
    char id[AGORA__TRUST_ID_MAX + 1];
    const char *at = strchr(pos[0], '@');
    size_t id_len = at != NULL ? (size_t)(at - pos[0]) : strlen(pos[0]);
    if (id_len == 0 || id_len > AGORA__TRUST_ID_MAX) {
        fprintf(stderr, "agora install: '%.140s' is not ID[@VERSION]\n", pos[0]);
        return 2;
    }
    memcpy(id, pos[0], id_len);
    id[id_len] = '\0';
    agora__error err = {0};
    agora__trust_home *h = open_home("install", &o);
    if (h == NULL)
        return 1;
    char version[AGORA__TRUST_VERSION_MAX + 1];
    rc = agora__home_install(h, id, at != NULL ? at + 1 : NULL, o.from, version, sizeof version,
                             &err);
    agora__trust_plugin info;
    if (rc == 0)
        rc = agora__trust_get(h, id, &info, &err);
    if (rc == 0) {
        char g[256];
        agora__trust_options_format(info.granted, g, sizeof g);
        int out = 0;
        if (o.json)
            out = agora__json_emit_new(stdout,
                                       json_pack("{s:s,s:s,s:s,s:s}", "id", id, "version", version,
                                                 "status", agora__trust_status_name(info.status),
                                                 "granted", g),
                                       AGORA__JSON_LINE);
        else
            printf("installed %s@%s (%s; may see: %s; %s %llu %s)\n", id, version, info.level, g,
                   info.pricing.model, (unsigned long long)info.pricing.price_minor,
                   info.pricing.currency);
        char what[AGORA__TRUST_ID_MAX + AGORA__TRUST_VERSION_MAX + 2];
        snprintf(what, sizeof what, "%s@%s", id, version);
        out |= audit_note("install", h, what);
        agora__trust_home_close(h);
        return out;
    }
    agora__trust_home_close(h);
    return agora__fail("install", &err);
}

/* `agora list --json`: {catalog_version, plugins: [{id, version, status, granted, level,
 * certified, certification_report_sha256, pricing, reason}]}. A new reference, or NULL out of
 * memory. */
static json_t *list_json(const agora__trust_home *h, const agora__trust_plugin *list, size_t n)
{
    json_t *plugins = json_array();
    for (size_t i = 0; plugins != NULL && i < n; i++) {
        const agora__trust_plugin *p = &list[i];
        json_t *granted = json_array();
        for (unsigned b = 0; granted != NULL && b < AGORA__OPT_COUNT; b++)
            if (p->granted & (1u << b))
                json_array_append_new(granted, json_string(agora__trust_option_name(b)));
        json_t *e = json_pack("{s:s,s:s,s:s,s:o}", "id", p->id, "version", p->version, "status",
                              agora__trust_status_name(p->status), "granted", granted);
        if (e != NULL && p->in_catalog) {
            char when[AGORA__TIME_TEXT];
            agora__time_format(p->certified_at, when);
            json_object_set_new(e, "level", json_string(p->level));
            json_object_set_new(e, "certified", json_string(when));
            if (p->report_sha256[0] != '\0')
                json_object_set_new(e, "certification_report_sha256",
                                    json_string(p->report_sha256));
            json_object_set_new(e, "pricing",
                                json_pack("{s:s,s:I,s:s,s:I}", "model", p->pricing.model, "price",
                                          (json_int_t)p->pricing.price_minor, "currency",
                                          p->pricing.currency, "vendor_share_bps",
                                          (json_int_t)p->pricing.vendor_share_bps));
        }
        if (e != NULL && p->status == AGORA__TRUST_REVOKED)
            json_object_set_new(e, "reason", json_string(p->revoked_reason));
        json_array_append_new(plugins, e);
    }
    const agora__catalog *cat = agora__trust_home_catalog(h);
    return json_pack("{s:I,s:o}", "catalog_version", (json_int_t)(cat != NULL ? cat->version : 0),
                     "plugins", plugins);
}

int agora__cmd_list(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&list_cmd, argc, argv, &o, NULL, &rc))
        return rc;
    agora__error err = {0};
    agora__trust_home *h = open_home("list", &o);
    if (h == NULL)
        return 1;
    agora__trust_plugin *list;
    size_t n;
    rc = agora__trust_list(h, &list, &n, &err);
    if (rc != 0) {
        agora__trust_home_close(h);
        return agora__fail("list", &err);
    }
    int status = 0;
    if (o.json) {
        status = agora__json_emit_new(stdout, list_json(h, list, n), AGORA__JSON_LINE);
    } else if (n == 0) {
        printf("no plugins installed (agora install ID)\n");
    } else {
        printf("%-36s %-12s %-16s %s\n", "ID", "VERSION", "STATUS", "DETAILS");
        for (size_t i = 0; i < n; i++) {
            const agora__trust_plugin *p = &list[i];
            char g[256];
            agora__trust_options_format(p->granted, g, sizeof g);
            printf("%-36s %-12s %-16s ", p->id, p->version, agora__trust_status_name(p->status));
            if (p->status == AGORA__TRUST_REVOKED)
                printf("%s\n", p->revoked_reason);
            else if (p->in_catalog) {
                /* A build certified with --check says when; older entries print as before. */
                char when[AGORA__TIME_TEXT] = "";
                if (p->report_sha256[0] != '\0')
                    agora__time_format(p->certified_at, when);
                printf("%s%s%.10s, %s %llu %s, may see: %s\n", p->level, when[0] ? " checked " : "",
                       when, p->pricing.model, (unsigned long long)p->pricing.price_minor,
                       p->pricing.currency, g);
            } else
                printf("-\n");
        }
    }
    free(list);
    agora__trust_home_close(h);
    return status;
}

int agora__cmd_remove(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&remove_cmd, argc, argv, &o, "ID", &rc))
        return rc;
    char **pos = argv + 1;
    agora__error err = {0};
    agora__trust_home *h = open_home("remove", &o);
    if (h == NULL)
        return 1;
    rc = agora__home_remove(h, pos[0], &err);
    int noted = rc == 0 ? audit_note("remove", h, pos[0]) : 0;
    agora__trust_home_close(h);
    if (rc != 0)
        return agora__fail("remove", &err);
    if (noted != 0)
        return 1;
    if (o.json)
        return agora__json_emit_new(stdout, json_pack("{s:s}", "removed", pos[0]),
                                    AGORA__JSON_LINE);
    printf("removed %s\n", pos[0]);
    return 0;
}
