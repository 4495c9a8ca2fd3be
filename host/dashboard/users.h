/*
 * Dashboard users (issue 14): who may log in to the pages of `agora serve` and with which role.
 * A library: it never prints.
 *
 * Store: HOME/users.json (home.h, AGORA__HOME_USERS), mode 0600, written atomically:
 *   {"format":"agora.users/1","users":[{"name":..,"role":"viewer|operator|admin",
 *     "password":"$argon2id$...","token":"<hex SHA-256 of the API token>"|"","created_ms":..}]}
 * Passwords are stored only as libsodium crypto_pwhash_str strings (argon2id, the INTERACTIVE
 * limits: 2 passes, 64 MiB); the API token only as its SHA-256 (it is 256 random bits, so a
 * fast hash is enough), shown once by `agora user token NAME`.
 *
 * Roles (what each may do is decided in dashboard.c, documented in docs/clinic-guide.md):
 *   viewer   - reads every page; studies appear by hash only;
 *   operator - also the queue actions (retry, cancel, force-complete);
 *   admin    - also install/remove of apps and the accession number of studies.
 *
 * Names: 1..32 of [a-z0-9._-], starting with a letter or digit. Passwords: 8..1024 bytes.
 */
#ifndef AGORA_DASHBOARD_USERS_H
#define AGORA_DASHBOARD_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define AGORA__USER_NAME_MAX  32u
#define AGORA__USER_MAX       256u /* users of one home */
#define AGORA__USER_PW_MIN    8u
#define AGORA__USER_PW_MAX    1024u
#define AGORA__USER_TOKEN_HEX 64u /* an API token: 32 random bytes as hex */

typedef enum agora__user_role {
    AGORA__ROLE_VIEWER = 0,
    AGORA__ROLE_OPERATOR = 1,
    AGORA__ROLE_ADMIN = 2,
} agora__user_role;

const char *agora__user_role_name(agora__user_role r);
int agora__user_role_parse(const char *s, agora__user_role *out); /* 0 or AGORA_EINVAL */
int agora__user_name_valid(const char *name);                     /* 1 valid */

typedef struct agora__user {
    char name[AGORA__USER_NAME_MAX + 1];
    agora__user_role role;
    int has_token;
    uint64_t created_ms;
} agora__user;

/* Add a user with a password (hashed here). AGORA__EEXIST when the name is taken. */
int agora__user_add(const char *home, const char *name, agora__user_role role, const char *pw,
                    size_t pw_len, agora__error *err);
/* Remove a user (its token too). AGORA__ENOENT when unknown. */
int agora__user_remove(const char *home, const char *name, agora__error *err);
/* Every user, in the order added; *out malloc'ed (free it), *n its count (0: NULL). */
int agora__user_list(const char *home, agora__user **out, size_t *n, agora__error *err);
/* Make a new API token for name (the old one stops working); token gets the 64 hex digits. */
int agora__user_token_new(const char *home, const char *name, char token[AGORA__USER_TOKEN_HEX + 1],
                          agora__error *err);

/* Check a password: 0 and *out filled when name exists and pw matches; AGORA_EINVAL otherwise
 * (one answer for an unknown user and a wrong password; an unknown user still costs one hash so
 * the time does not tell the names). */
int agora__user_check_password(const char *home, const char *name, const char *pw, size_t pw_len,
                               agora__user *out, agora__error *err);
/* Check an API token (constant-time compare of its hash): 0 and *out, else AGORA_EINVAL. */
int agora__user_check_token(const char *home, const char *token, agora__user *out,
                            agora__error *err);

/* Read a password file for `agora user add --password-file`: the first line, without its line
 * end, AGORA__USER_PW_MIN..MAX bytes, no NUL. The file must not be readable by others
 * (group/other bits clear) unless it is a pipe ("-" or /dev/stdin). buf holds PW_MAX + 1. */
int agora__user_read_password_file(const char *path, char *buf, size_t size, size_t *len,
                                   agora__error *err);

#endif
