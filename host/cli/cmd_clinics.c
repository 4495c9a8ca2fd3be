/* `agora clinic add|list`: the operator registers the clinics whose ledger exports it accepts
 * (their HOME/clinic.pub), next to its catalog. */
#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CLINIC_ABOUT "The operator's registry of clinics, kept in DIR/clinics/ next to the catalog."

/* What the clinic subcommands' one option table fills. */
typedef struct clinic_opts {
    const char *catalog;
    int json;
} clinic_opts;

/* Both subcommands take every row (only 0); desc names the one being parsed. 1 to go on, else 0
 * with *status the exit status. */
static int parse(const agora__cli_cmd *desc, int argc, char **argv, clinic_opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt table[] = {
        {"--catalog", 0, AGORA__CLI_VALUE, &o->catalog, "DIR", "the operator's catalog directory",
         AGORA__CLI_REQUIRED, NULL, 0, 0},
        AGORA__CLI_OPT_JSON(&o->json, "print JSON"),
    };
    return agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, NULL, status);
}

/* The subcommands' descriptions, for their generated --help. */
#define LIST_ABOUT "Each registered clinic, its key id and the periods whose exports were accepted."
#define ADD_ABOUT                                                                                  \
    "Register the clinic's public key (HOME/clinic.pub, printed by agora init);\n"                 \
    "agora statement --from accepts ledger exports signed by registered clinics only."

static const agora__cli_cmd list_cmd = {
    "clinic list", "--catalog DIR [--json]", LIST_ABOUT, NULL, 0, 0, 0, 0};
static const agora__cli_cmd add_cmd = {
    "clinic add", "NAME CLINIC.pub --catalog DIR [--json]", ADD_ABOUT, NULL, 0, 2, 2, 0};

/* The periods of CATALOG/clinics/NAME.accepted.json (written by agora statement), as a new
 * JSON array; empty when there is none or it cannot be read (list is informational). */
static json_t *accepted_periods(const char *dir, const char *name)
{
    json_t *out = json_array();
    char path[4096];
    if (out == NULL ||
        agora__trust_clinic_state_path(dir, name, "accepted.json", path, sizeof path, NULL) != 0)
        return out;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(doc, "periods"), k, v)
    {
        json_array_append_new(out, json_string(k));
    }
    json_decref(doc);
    return out;
}

static int cmd_list(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&list_cmd, argc, argv, &o, &rc))
        return rc;
    agora__error err = {0};
    agora__trust_clinic *list;
    size_t n;
    if (agora__trust_clinic_list(o.catalog, &list, &n, &err) != 0)
        return agora__fail("clinic list", &err);
    if (o.json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o}", "name", list[i].name,
                                                 "key_id", list[i].key_id, "public_key",
                                                 list[i].pk_hex, "accepted_periods",
                                                 accepted_periods(o.catalog, list[i].name)));
        if (agora__json_emit_new(stdout,
                                 json_pack("{s:s,s:o}", "catalog", o.catalog, "clinics", arr),
                                 AGORA__JSON_DOC) != 0) {
            free(list);
            return 1;
        }
    } else {
        printf("%zu clinic%s registered in %s/clinics\n", n, n == 1 ? "" : "s", o.catalog);
        for (size_t i = 0; i < n; i++) {
            json_t *p = accepted_periods(o.catalog, list[i].name);
            printf("  %-24s key %s  accepted:", list[i].name, list[i].key_id);
            size_t j;
            json_t *v;
            json_array_foreach(p, j, v)
            {
                printf(" %s", json_string_value(v));
            }
            printf("%s\n", json_array_size(p) == 0 ? " -" : "");
            json_decref(p);
        }
    }
    free(list);
    return 0;
}

static int cmd_add(int argc, char **argv)
{
    clinic_opts o;
    int rc;
    if (!parse(&add_cmd, argc, argv, &o, &rc))
        return rc;
    char **pos = argv + 1;
    if (!agora__trust_clinic_name_valid(pos[0])) {
        fprintf(stderr,
                "agora clinic add: clinic name '%.70s' must be 1..%d letters, digits, '.', '_' "
                "or '-' (not starting with '.' or '-')\n",
                pos[0], AGORA__CLINIC_NAME_MAX);
        return 2;
    }
    agora__error err = {0};
    agora__trust_clinic c;
    int already;
    if (agora__trust_clinic_register(o.catalog, pos[0], pos[1], &c, &already, &err) != 0)
        return agora__fail("clinic add", &err);
    if (o.json) {
        return agora__json_emit_new(
            stdout,
            json_pack("{s:s,s:s,s:b}", "name", c.name, "key_id", c.key_id, "already", already),
            AGORA__JSON_LINE);
    } else {
        printf("%s clinic %s (key %s) in %s/clinics\n",
               already ? "already registered:" : "registered", c.name, c.key_id, o.catalog);
        if (!already)
            printf("next: agora statement --period YYYY-MM --from EXPORT.json --catalog %s\n",
                   o.catalog);
    }
    return 0;
}

int agora__cmd_clinic(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"add", cmd_add, "register a clinic's public key"},
        {"list", cmd_list, "the registered clinics and their accepted periods"},
    };
    return agora__cli_dispatch("clinic", CLINIC_ABOUT, subs, AGORA__CLI_N(subs), argc, argv);
}
