/*
 * CLI: `agora user add NAME --role viewer|operator|admin --password-file FILE`, `agora user list
 * [--json]`, `agora user remove NAME`, `agora user token NAME` — the users of the dashboard that
 * `agora serve --listen-http` serves (host/dashboard/users.h; the store is HOME/users.json).
 * The password is read from a file (or "-" for stdin), never from the command line, where `ps`
 * and shell history would show it. The API token is printed once; only its hash is kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "users.h"

typedef struct opts {
    const char *home, *role, *password_file;
    int json;
} opts;

enum { ADD = 1u, LIST = 2u, REMOVE = 4u, TOKEN = 8u };

static const agora__cli_cmd add_cmd = {
    "user add",
    "NAME --role viewer|operator|admin --password-file FILE [--home DIR]",
    "Add a dashboard user. Roles: viewer (reads every page; studies by hash), operator\n"
    "(also retry, cancel and force-complete in the queue), admin (also install and\n"
    "remove apps, and sees accession numbers). The password is the first line of FILE\n"
    "(8..1024 bytes; FILE must not be readable by others; '-' reads stdin); it is\n"
    "stored as an argon2id hash.",
    NULL,
    0,
    1,
    1,
    ADD};
static const agora__cli_cmd list_cmd = {
    "user list",
    "[--json] [--home DIR]",
    "The dashboard users: name, role, whether an API token is set, when added.",
    NULL,
    0,
    0,
    0,
    LIST};
static const agora__cli_cmd remove_cmd = {
    "user remove",
    "NAME [--home DIR]",
    "Remove a dashboard user and its API token (sessions end when `agora serve` next\n"
    "checks them: at once for the API, at the next page for a browser).",
    NULL,
    0,
    1,
    1,
    REMOVE};
static const agora__cli_cmd token_cmd = {
    "user token",
    "NAME [--home DIR]",
    "Make a new API token for NAME and print it once (64 hex digits). Scripts send it as\n"
    "`Authorization: Bearer TOKEN` to the dashboard's /api/ pages. The previous token\n"
    "stops working.",
    NULL,
    0,
    1,
    1,
    TOKEN};

static int parse(const agora__cli_cmd *desc, int argc, char **argv, opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt table[] = {
        {"--role", 0, AGORA__CLI_VALUE, &o->role, "ROLE", "viewer, operator or admin",
         AGORA__CLI_REQUIRED, NULL, 0, ADD},
        {"--password-file", 0, AGORA__CLI_VALUE, &o->password_file, "FILE",
         "the password's file (first line), or - for stdin", AGORA__CLI_REQUIRED, NULL, 0, ADD},
        AGORA__CLI_OPT_JSON_ONLY(&o->json, "print JSON", LIST),
        AGORA__CLI_OPT_HOME(&o->home),
    };
    return agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, NULL, status);
}

/* Parse and resolve the home: 1 to go on, else 0 with *status. */
static int start(const agora__cli_cmd *desc, int argc, char **argv, opts *o, char *home,
                 size_t size, int *status)
{
    if (!parse(desc, argc, argv, o, status))
        return 0;
    if (agora__cli_home(desc->name, o->home, home, size) != 0) {
        *status = 1;
        return 0;
    }
    return 1;
}

static int fail(const char *cmd, const agora__error *err)
{
    fprintf(stderr, "agora %s: %s\n", cmd, err->msg);
    return 1;
}

static int user_add(int argc, char **argv)
{
    opts o;
    char home[4096];
    int status = 0;
    if (!start(&add_cmd, argc, argv, &o, home, sizeof home, &status))
        return status;
    agora__user_role role;
    if (agora__user_role_parse(o.role, &role) != 0)
        return agora__cli_usage_error("user add", "--role must be viewer, operator or admin");
    char pw[AGORA__USER_PW_MAX + 2];
    size_t len = 0;
    agora__error err = {0};
    int rc = agora__user_read_password_file(o.password_file, pw, sizeof pw, &len, &err);
    if (rc == 0)
        rc = agora__user_add(home, argv[1], role, pw, len, &err);
    sodium_memzero(pw, sizeof pw);
    if (rc != 0)
        return fail("user add", &err);
    printf("added user %s (%s)\n", argv[1], agora__user_role_name(role));
    return 0;
}

static int user_list(int argc, char **argv)
{
    opts o;
    char home[4096];
    int status = 0;
    if (!start(&list_cmd, argc, argv, &o, home, sizeof home, &status))
        return status;
    agora__user *u = NULL;
    size_t n = 0;
    agora__error err = {0};
    if (agora__user_list(home, &u, &n, &err) != 0)
        return fail("user list", &err);
    json_t *arr = o.json ? json_array() : NULL;
    if (!o.json)
        printf("%-32s %-8s %-5s %s\n", "NAME", "ROLE", "TOKEN", "ADDED");
    for (size_t i = 0; i < n; i++) {
        char when[24] = "-";
        time_t t = (time_t)(u[i].created_ms / 1000u);
        struct tm tm;
        if (u[i].created_ms && gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (o.json)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:b,s:s}", "name", u[i].name, "role",
                                                 agora__user_role_name(u[i].role), "token",
                                                 u[i].has_token, "added", when));
        else
            printf("%-32s %-8s %-5s %s\n", u[i].name, agora__user_role_name(u[i].role),
                   u[i].has_token ? "yes" : "no", when);
    }
    free(u);
    if (o.json) {
        return agora__json_emit_new(stdout, json_pack("{s:o}", "users", arr), 0);
    }
    return 0;
}

static int user_remove(int argc, char **argv)
{
    opts o;
    char home[4096];
    int status = 0;
    if (!start(&remove_cmd, argc, argv, &o, home, sizeof home, &status))
        return status;
    agora__error err = {0};
    if (agora__user_remove(home, argv[1], &err) != 0)
        return fail("user remove", &err);
    printf("removed user %s\n", argv[1]);
    return 0;
}

static int user_token(int argc, char **argv)
{
    opts o;
    char home[4096];
    int status = 0;
    if (!start(&token_cmd, argc, argv, &o, home, sizeof home, &status))
        return status;
    char token[AGORA__USER_TOKEN_HEX + 1];
    agora__error err = {0};
    if (agora__user_token_new(home, argv[1], token, &err) != 0)
        return fail("user token", &err);
    printf("%s\n", token);
    sodium_memzero(token, sizeof token);
    return 0;
}

int agora__cmd_user(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"add", user_add, "add a user: NAME --role R --password-file FILE"},
        {"list", user_list, "list the users"},
        {"remove", user_remove, "remove a user: NAME"},
        {"token", user_token, "a new API token for NAME, printed once"},
    };
    return agora__cli_dispatch("user", "Users of the dashboard (agora serve --listen-http).", subs,
                               AGORA__CLI_N(subs), argc, argv);
}
