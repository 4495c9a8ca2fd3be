/* The hash-chained audit log (audit.h). */
#include "audit.h"
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

int agora__audit_path(const char *dir, char *out, size_t size, agora__error *err)
{
    return agora__path(out, size, err, "%s/" AGORA__AUDIT_FILE, dir);
}

int agora__audit_home(const char *home, const char *action, const char *actor, const char *object,
                      agora__error *err)
{
    char path[4096];
    int rc = agora__home_path(home, AGORA__HOME_AUDIT, path, sizeof path, err);
    return rc != 0 ? rc : agora__audit_append(path, action, actor, object, NULL, err);
}

int agora__audit_operator(const char *catalog_dir, const char *action, const char *actor,
                          const char *object, agora__error *err)
{
    char path[4096];
    int rc = agora__audit_path(catalog_dir, path, sizeof path, err);
    return rc != 0 ? rc : agora__audit_append(path, action, actor, object, NULL, err);
}

static int field_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AGORA__AUDIT_FIELD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* hex BLAKE2b-256 of the entry less its "hash" member, canonical. */
static int entry_hash(const json_t *entry, char hex[65])
{
    json_t *copy = json_deep_copy(entry);
    if (copy == NULL)
        return -1;
    json_object_del(copy, "hash");
    char *bytes = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(copy);
    if (bytes == NULL)
        return -1;
    uint8_t h[32];
    crypto_generichash(h, sizeof h, (const uint8_t *)bytes, strlen(bytes), NULL, 0);
    free(bytes);
    agora__hex(h, 32, hex);
    return 0;
}

/* Check one line against the chain so far (prev hash, expected seq). On success prev gets this
 * line's hash. Returns NULL or a static description of what is wrong. */
static const char *check_line(const char *line, size_t len, uint64_t seq, char prev[65])
{
    json_error_t je;
    json_t *e = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    const char *why = NULL;
    char hex[65];
    if (e == NULL || !json_is_object(e))
        why = "not a JSON object";
    else if (json_object_size(e) != 7 || !json_is_integer(json_object_get(e, "seq")) ||
             !field_valid(json_string_value(json_object_get(e, "action"))) ||
             !field_valid(json_string_value(json_object_get(e, "actor"))) ||
             !field_valid(json_string_value(json_object_get(e, "object"))) ||
             !json_is_string(json_object_get(e, "time")) ||
             !json_is_string(json_object_get(e, "prev")) ||
             !json_is_string(json_object_get(e, "hash")))
        why = "not an audit entry (fields missing, extra or malformed)";
    else if ((uint64_t)json_integer_value(json_object_get(e, "seq")) != seq)
        why = "out of sequence (a line was removed, inserted or reordered)";
    else if (strcmp(json_string_value(json_object_get(e, "prev")), prev) != 0)
        why = "does not chain to the line before (a line was removed, inserted or changed)";
    else if (entry_hash(e, hex) != 0)
        why = "out of memory";
    else if (strcmp(hex, json_string_value(json_object_get(e, "hash"))) != 0)
        why = "its hash does not match its content (the line was edited)";
    if (why == NULL)
        memcpy(prev, hex, 65);
    json_decref(e);
    return why;
}

/* Walk an open log from its start. */
static int walk(FILE *f, const char *path, uint64_t *entries, char last[65], uint64_t *bad,
                agora__error *err)
{
    char prev[65] = ZERO_HASH;
    char *line = malloc(AGORA__AUDIT_LINE_MAX + 2);
    if (line == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    uint64_t n = 0;
    int rc = 0;
    while (fgets(line, AGORA__AUDIT_LINE_MAX + 2, f) != NULL) {
        size_t len = strlen(line);
        n++;
        const char *why = NULL;
        if (len == 0 || line[len - 1] != '\n')
            why = len > AGORA__AUDIT_LINE_MAX ? "longer than an audit line can be"
                                              : "incomplete (no newline: a torn write)";
        else
            why = check_line(line, len - 1, n, prev);
        if (why != NULL) {
            *bad = n;
            rc = agora__error_set(err, AGORA_EINVAL, "%s: line %llu %s", path,
                                  (unsigned long long)n, why);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot read %s", path);
    free(line);
    *entries = rc == 0 ? n : n - 1;
    memcpy(last, prev, 65);
    return rc;
}

int agora__audit_verify(const char *path, uint64_t *entries, uint64_t *bad_line, agora__error *err)
{
    *entries = 0;
    *bad_line = 0;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", path,
                                strerror(errno));
    }
    char last[65];
    int rc = walk(f, path, entries, last, bad_line, err);
    fclose(f);
    return rc;
}

int agora__audit_append(const char *path, const char *action, const char *actor, const char *object,
                        uint64_t *seq_out, agora__error *err)
{
    if (!field_valid(action) || !field_valid(actor) || !field_valid(object))
        return agora__error_set(err, AGORA_EINVAL,
                                "audit fields are 1..%d printable ASCII characters",
                                AGORA__AUDIT_FIELD_MAX);
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open the audit log %s: %s", path,
                                strerror(errno));
    /* The lock covers reading the chain's end and writing after it: one writer at a time. */
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return agora__error_set(err, AGORA__ERR(e), "cannot lock %s: %s", path, strerror(e));
        }
    }
    /* The whole chain is walked before each append so a damaged log is never extended: an
     * append to a broken chain would look like a clean continuation. Logs stay small (one line
     * per trust action). */
    int dup_fd = dup(fd);
    FILE *f = dup_fd >= 0 ? fdopen(dup_fd, "r") : NULL;
    uint64_t n = 0, bad = 0;
    char prev[65];
    int rc;
    if (f == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        rc = agora__error_set(err, AGORA_ENOMEM, "cannot read %s", path);
    } else {
        rewind(f);
        rc = walk(f, path, &n, prev, &bad, err);
        fclose(f);
        if (rc != 0)
            agora__error_prefix(err, "refusing to append to a damaged audit log (agora audit "
                                     "verify shows where; keep the file as evidence and start a "
                                     "new one)");
    }
    char *line = NULL;
    if (rc == 0) {
        char when[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *e =
            json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "action", action, "actor", actor, "object",
                      object, "seq", (json_int_t)(n + 1), "time", when, "prev", prev);
        char hex[65];
        if (e == NULL || entry_hash(e, hex) != 0)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        else
            json_object_set_new(e, "hash", json_string(hex));
        if (rc == 0)
            line = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        json_decref(e);
        if (rc == 0 && line == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        size_t len = strlen(line);
        line[len] = '\n'; /* json_dumps leaves the NUL: replace it, write len + 1 */
        ssize_t w = write(fd, line, len + 1);
        if (w != (ssize_t)(len + 1) || fsync(fd) != 0)
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot write the audit log %s: %s", path,
                                  strerror(errno));
        else if (seq_out != NULL)
            *seq_out = n + 1;
    }
    free(line);
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}
