/* `agora clinic add|list`: the operator registers the clinics whose ledger exports it accepts
 * (their HOME/clinic.pub), next to its catalog. */
#include "commands.h"
#include "trust_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define OPT(n, k, v)                                                                               \
    {                                                                                              \
        n, k, v, NULL, NULL                                                                        \
    }

static void usage(FILE *f)
{
    fprintf(f, "usage: agora clinic add NAME CLINIC.pub --catalog DIR [--json]\n"
               "       agora clinic list --catalog DIR [--json]\n\n"
               "The operator's registry of clinics, kept in DIR/clinics/ next to the catalog.\n"
               "add registers the clinic's public key (HOME/clinic.pub, printed by agora init);\n"
               "agora statement --from accepts ledger exports signed by registered clinics only.\n"
               "list shows each clinic, its key id and the periods whose exports were accepted.\n");
}

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
    const char *dir = NULL, *json = NULL;
    const agora__opt opts[] = {OPT("--catalog", AGORA__ARG_VALUE, &dir),
                               OPT("--json", AGORA__ARG_FLAG, &json)};
    const char *pos[1];
    size_t n_pos;
    int help;
    int rc = agora__args("clinic list", argc, argv, opts, 2, pos, 0, &n_pos, &help);
    if (rc != 0)
        return rc;
    if (help) {
        usage(stdout);
        return 0;
    }
    if (dir == NULL) {
        fprintf(stderr, "agora clinic list: --catalog DIR is required; see agora clinic --help\n");
        return 2;
    }
    agora__error err = {0};
    agora__trust_clinic *list;
    size_t n;
    if (agora__trust_clinic_list(dir, &list, &n, &err) != 0)
        return agora__fail("clinic list", &err);
    if (json != NULL) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o}", "name", list[i].name,
                                                 "key_id", list[i].key_id, "public_key",
                                                 list[i].pk_hex, "accepted_periods",
                                                 accepted_periods(dir, list[i].name)));
        json_t *doc = json_pack("{s:s,s:o}", "catalog", dir, "clinics", arr);
        char *s = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(doc);
        if (s == NULL) {
            free(list);
            fprintf(stderr, "agora clinic list: out of memory\n");
            return 1;
        }
        puts(s);
        free(s);
    } else {
        printf("%zu clinic%s registered in %s/clinics\n", n, n == 1 ? "" : "s", dir);
        for (size_t i = 0; i < n; i++) {
            json_t *p = accepted_periods(dir, list[i].name);
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
    const char *dir = NULL, *json = NULL;
    const agora__opt opts[] = {OPT("--catalog", AGORA__ARG_VALUE, &dir),
                               OPT("--json", AGORA__ARG_FLAG, &json)};
    const char *pos[2];
    size_t n_pos;
    int help;
    int rc = agora__args("clinic add", argc, argv, opts, 2, pos, 2, &n_pos, &help);
    if (rc != 0)
        return rc;
    if (help) {
        usage(stdout);
        return 0;
    }
    if (n_pos != 2 || dir == NULL) {
        fprintf(stderr, "agora clinic add: NAME, CLINIC.pub and --catalog DIR are required; see "
                        "agora clinic --help\n");
        return 2;
    }
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
    if (agora__trust_clinic_register(dir, pos[0], pos[1], &c, &already, &err) != 0)
        return agora__fail("clinic add", &err);
    if (json != NULL) {
        printf("{\"name\":\"%s\",\"key_id\":\"%s\",\"already\":%s}\n", c.name, c.key_id,
               already ? "true" : "false");
    } else {
        printf("%s clinic %s (key %s) in %s/clinics\n",
               already ? "already registered:" : "registered", c.name, c.key_id, dir);
        if (!already)
            printf("next: agora statement --period YYYY-MM --from EXPORT.json --catalog %s\n", dir);
    }
    return 0;
}

int agora__cmd_clinic(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;
    if (sub == NULL) {
        usage(stderr);
        return 2;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(sub, "add") == 0)
        return cmd_add(argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return cmd_list(argc - 1, argv + 1);
    fprintf(stderr, "agora clinic: unknown subcommand '%.40s'; use add or list\n", sub);
    return 2;
}
