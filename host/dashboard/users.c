/* Dashboard users: the store HOME/users.json (users.h). */
#include "users.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#define USERS_FORMAT   "agora.users/1"
#define USERS_MAX_FILE (1024u * 1024u)

static const char *const role_names[] = {"viewer", "operator", "admin"};

const char *agora__user_role_name(agora__user_role r)
{
    return (unsigned)r < 3u ? role_names[r] : NULL;
}

int agora__user_role_parse(const char *s, agora__user_role *out)
{
    for (unsigned i = 0; s != NULL && i < 3u; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (agora__user_role)i;
            return 0;
        }
    return AGORA_EINVAL;
}

int agora__user_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > AGORA__USER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int users_path(const char *home, char *out, size_t size, agora__error *err)
{
    return agora__home_path(home, AGORA__HOME_USERS, out, size, err);
}

/* Load the store; a missing file is an empty store. *doc owned by the caller. */
static int load(const char *home, json_t **doc, agora__error *err)
{
    char path[4096];
    int rc = users_path(home, path, sizeof path, err);
    if (rc != 0)
        return rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = agora__read_file(path, USERS_MAX_FILE, &buf, &len, NULL);
    if (rc == AGORA__ENOENT) {
        *doc = json_pack("{s:s,s:[]}", "format", USERS_FORMAT, "users");
        return *doc ? 0 : agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    if (rc != 0)
        return agora__error_set(err, rc, "cannot read %s: check that it exists and is readable",
                                path);
    json_error_t je;
    *doc = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    json_t *users = *doc ? json_object_get(*doc, "users") : NULL;
    const char *fmt = *doc ? json_string_value(json_object_get(*doc, "format")) : NULL;
    if (!json_is_array(users) || fmt == NULL || strcmp(fmt, USERS_FORMAT) != 0 ||
        json_array_size(users) > AGORA__USER_MAX) {
        json_decref(*doc);
        *doc = NULL;
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is not a users file (%s); restore it from a backup or remove "
                                "it and add the users again",
                                path, USERS_FORMAT);
    }
    return 0;
}

static int save(const char *home, const json_t *doc, agora__error *err)
{
    char path[4096];
    int rc = users_path(home, path, sizeof path, err);
    if (rc != 0)
        return rc;
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (text == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    rc = agora__write_file_atomic(path, text, strlen(text), 0600, err);
    free(text);
    return rc;
}

static json_t *find(json_t *doc, const char *name, size_t *index)
{
    json_t *users = json_object_get(doc, "users"), *u;
    size_t i;
    json_array_foreach(users, i, u)
    {
        const char *n = json_string_value(json_object_get(u, "name"));
        if (n != NULL && strcmp(n, name) == 0) {
            if (index)
                *index = i;
            return u;
        }
    }
    return NULL;
}

static int fill(const json_t *u, agora__user *out)
{
    const char *name = json_string_value(json_object_get(u, "name"));
    const char *token = json_string_value(json_object_get(u, "token"));
    if (!agora__user_name_valid(name) ||
        agora__user_role_parse(json_string_value(json_object_get(u, "role")), &out->role) != 0)
        return AGORA_EINVAL;
    agora__strlcpy(out->name, name, sizeof out->name);
    out->has_token = token != NULL && token[0] != '\0';
    json_int_t c = json_integer_value(json_object_get(u, "created_ms"));
    out->created_ms = c > 0 ? (uint64_t)c : 0;
    return 0;
}

static int check_name(const char *name, agora__error *err)
{
    if (!agora__user_name_valid(name))
        return agora__error_set(err, AGORA_EINVAL,
                                "bad user name: use 1..%u of a-z 0-9 . _ - (starting with a "
                                "letter or digit)",
                                AGORA__USER_NAME_MAX);
    return 0;
}

int agora__user_add(const char *home, const char *name, agora__user_role role, const char *pw,
                    size_t pw_len, agora__error *err)
{
    int rc = check_name(name, err);
    if (rc != 0)
        return rc;
    if (agora__user_role_name(role) == NULL)
        return agora__error_set(err, AGORA_EINVAL, "bad role: use viewer, operator or admin");
    if (pw_len < AGORA__USER_PW_MIN || pw_len > AGORA__USER_PW_MAX)
        return agora__error_set(err, AGORA_EINVAL, "the password must be %u..%u bytes long",
                                AGORA__USER_PW_MIN, AGORA__USER_PW_MAX);
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    json_t *doc = NULL;
    rc = load(home, &doc, err);
    if (rc != 0)
        return rc;
    if (find(doc, name, NULL) != NULL) {
        json_decref(doc);
        return agora__error_set(err, AGORA__EEXIST,
                                "user %s exists: remove it first (agora user remove %s)", name,
                                name);
    }
    if (json_array_size(json_object_get(doc, "users")) >= AGORA__USER_MAX) {
        json_decref(doc);
        return agora__error_set(err, AGORA_ELIMIT, "at most %u users; remove one first",
                                AGORA__USER_MAX);
    }
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, pw, pw_len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        json_decref(doc);
        return agora__error_set(err, AGORA_ENOMEM,
                                "hashing the password failed (argon2id needs 64 MiB of memory)");
    }
    json_array_append_new(json_object_get(doc, "users"),
                          json_pack("{s:s,s:s,s:s,s:s,s:I}", "name", name, "role",
                                    agora__user_role_name(role), "password", hash, "token", "",
                                    "created_ms", (json_int_t)wall_ms()));
    sodium_memzero(hash, sizeof hash);
    rc = save(home, doc, err);
    json_decref(doc);
    return rc;
}

int agora__user_remove(const char *home, const char *name, agora__error *err)
{
    int rc = check_name(name, err);
    json_t *doc = NULL;
    if (rc == 0)
        rc = load(home, &doc, err);
    if (rc != 0)
        return rc;
    size_t i = 0;
    if (find(doc, name, &i) == NULL)
        rc = agora__error_set(err, AGORA__ENOENT, "no user %s (see agora user list)", name);
    else {
        json_array_remove(json_object_get(doc, "users"), i);
        rc = save(home, doc, err);
    }
    json_decref(doc);
    return rc;
}

int agora__user_list(const char *home, agora__user **out, size_t *n, agora__error *err)
{
    *out = NULL;
    *n = 0;
    json_t *doc = NULL;
    int rc = load(home, &doc, err);
    if (rc != 0)
        return rc;
    json_t *users = json_object_get(doc, "users"), *u;
    size_t i, m = json_array_size(users);
    agora__user *v = m ? calloc(m, sizeof *v) : NULL;
    if (m && v == NULL) {
        json_decref(doc);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    json_array_foreach(users, i, u) if (fill(u, &v[*n]) == 0)(*n)++;
    json_decref(doc);
    *out = v;
    return 0;
}

static void token_digest(const char *token, char hex[65])
{
    uint8_t d[32];
    agora__sha256(token, strlen(token), d);
    agora__hex(d, sizeof d, hex);
}

int agora__user_token_new(const char *home, const char *name, char token[AGORA__USER_TOKEN_HEX + 1],
                          agora__error *err)
{
    int rc = check_name(name, err);
    json_t *doc = NULL;
    if (rc == 0 && sodium_init() < 0)
        rc = agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    if (rc == 0)
        rc = load(home, &doc, err);
    if (rc != 0)
        return rc;
    json_t *u = find(doc, name, NULL);
    if (u == NULL) {
        json_decref(doc);
        return agora__error_set(err, AGORA__ENOENT, "no user %s (see agora user list)", name);
    }
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    agora__hex(raw, sizeof raw, token);
    sodium_memzero(raw, sizeof raw);
    char digest[65];
    token_digest(token, digest);
    json_object_set_new(u, "token", json_string(digest));
    rc = save(home, doc, err);
    json_decref(doc);
    if (rc != 0)
        sodium_memzero(token, AGORA__USER_TOKEN_HEX + 1);
    return rc;
}

int agora__user_check_password(const char *home, const char *name, const char *pw, size_t pw_len,
                               agora__user *out, agora__error *err)
{
    /* A hash of a fixed password, so an unknown name costs what a known one does. */
    static char dummy[crypto_pwhash_STRBYTES];
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    if (dummy[0] == '\0' &&
        crypto_pwhash_str(dummy, "agora-dummy-password", 20, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    json_t *doc = NULL;
    int rc = load(home, &doc, err);
    if (rc != 0)
        return rc;
    json_t *u = agora__user_name_valid(name) ? find(doc, name, NULL) : NULL;
    const char *hash = u ? json_string_value(json_object_get(u, "password")) : NULL;
    int ok = pw_len <= AGORA__USER_PW_MAX &&
             crypto_pwhash_str_verify(hash ? hash : dummy, pw, pw_len) == 0 && hash != NULL &&
             fill(u, out) == 0;
    json_decref(doc);
    return ok ? 0 : agora__error_set(err, AGORA_EINVAL, "wrong user name or password");
}

int agora__user_check_token(const char *home, const char *token, agora__user *out,
                            agora__error *err)
{
    if (token == NULL || strlen(token) != AGORA__USER_TOKEN_HEX)
        return agora__error_set(err, AGORA_EINVAL, "bad API token");
    char digest[65];
    token_digest(token, digest);
    json_t *doc = NULL;
    int rc = load(home, &doc, err);
    if (rc != 0)
        return rc;
    json_t *users = json_object_get(doc, "users"), *u;
    size_t i;
    int found = 0;
    json_array_foreach(users, i, u)
    {
        const char *t = json_string_value(json_object_get(u, "token"));
        if (t != NULL && strlen(t) == 64 && sodium_memcmp(t, digest, 64) == 0 && !found)
            found = fill(u, out) == 0;
    }
    json_decref(doc);
    return found ? 0 : agora__error_set(err, AGORA_EINVAL, "bad API token");
}

int agora__user_read_password_file(const char *path, char *buf, size_t size, size_t *len,
                                   agora__error *err)
{
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open the password file %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)) {
        close(fd);
        return agora__error_set(err, AGORA_EINVAL,
                                "the password file %s is readable by others: chmod 600 it", path);
    }
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    size_t line = strcspn(buf, "\r\n");
    int nul = line < n && buf[line] == '\0'; /* a NUL before the line end */
    sodium_memzero(buf + line, size - line);
    *len = line;
    if (nul || line < AGORA__USER_PW_MIN || line > AGORA__USER_PW_MAX) {
        sodium_memzero(buf, size);
        return agora__error_set(err, AGORA_EINVAL,
                                "the password (first line of %s) must be %u..%u bytes", path,
                                AGORA__USER_PW_MIN, AGORA__USER_PW_MAX);
    }
    return 0;
}
