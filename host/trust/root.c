/* Root documents: which keys may sign catalogs, and which keys (how many of them) may change
 * that. The lesson of TUF's root role, kept small: a root names root keys with a threshold and
 * catalog keys with their expiry; root N+1 counts only when a threshold of root N's keys and a
 * threshold of its own keys signed its exact bytes, so a stolen catalog key cannot name itself
 * again and a stolen root key below the threshold cannot change anything.
 *
 * A signed root file is signature lines ("agora-signature v1 ed25519 KEYID HEX", one per key)
 * followed by the canonical JSON; signatures are checked over the exact document bytes before
 * a byte of it is parsed. */
#include "trust_int.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ROOT_FORMAT "agora-root/1"
#define VERSION_MAX 9007199254740991ull /* 2^53-1 */

void agora__root_implicit(const agora__pubkey *keys, size_t n, agora__root *out)
{
    memset(out, 0, sizeof *out);
    if (n > AGORA__ROOT_KEYS_MAX)
        n = AGORA__ROOT_KEYS_MAX;
    out->threshold = 1;
    for (size_t i = 0; i < n; i++) {
        out->root_keys[i] = keys[i];
        out->catalog_keys[i] = keys[i];
    }
    out->n_root = out->n_catalog = n;
}

/* ---- serialize ------------------------------------------------------------------------------ */

static json_t *key_json(const agora__pubkey *k, int64_t expires)
{
    char hex[65];
    agora__hex(k->pk, 32, hex);
    json_t *o = json_pack("{s:s, s:s}", "id", k->id, "public", hex);
    if (o != NULL && expires != 0) {
        char when[AGORA__TIME_TEXT];
        agora__time_format(expires, when);
        if (json_object_set_new(o, "expires", json_string(when)) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int agora__root_serialize(const agora__root *r, char **out, size_t *len, agora__error *err)
{
    *out = NULL;
    *len = 0;
    char issued[AGORA__TIME_TEXT], expires[AGORA__TIME_TEXT];
    agora__time_format(r->issued, issued);
    agora__time_format(r->expires, expires);
    json_t *rk = json_array(), *ck = json_array();
    json_t *root =
        json_pack("{s:s, s:I, s:s, s:s, s:I, s:o, s:o}", "format", ROOT_FORMAT, "version",
                  (json_int_t)r->version, "issued", issued, "expires", expires, "threshold",
                  (json_int_t)r->threshold, "root_keys", rk, "catalog_keys", ck);
    if (root == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory serialising the root");
    int bad = 0;
    for (size_t i = 0; i < r->n_root; i++)
        bad |= json_array_append_new(rk, key_json(&r->root_keys[i], 0)) != 0;
    for (size_t i = 0; i < r->n_catalog; i++)
        bad |= json_array_append_new(ck, key_json(&r->catalog_keys[i], r->catalog_expires[i])) != 0;
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    size_t n = text != NULL ? strlen(text) : 0;
    char *buf = text != NULL ? malloc(n + 2) : NULL;
    if (buf == NULL) {
        free(text);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory serialising the root");
    }
    memcpy(buf, text, n);
    buf[n] = '\n';
    buf[n + 1] = '\0';
    free(text);
    *out = buf;
    *len = n + 1;
    return 0;
}

/* ---- parse ---------------------------------------------------------------------------------- */

static int bad(agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA_EINVAL, "root document: %s; refused", what);
}

static int only_keys(json_t *o, const char *const *keys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
            ;
        if (keys[i] == NULL)
            return -1;
    }
    return 0;
}

static int time_of(json_t *v, int64_t *out)
{
    return json_is_string(v) && json_string_length(v) == 20 &&
                   agora__time_parse(json_string_value(v), out) == 0
               ? 0
               : -1;
}

/* A list of {id, public[, expires]} (expires required when with_expiry), ids matching. */
static int parse_keys(json_t *a, int with_expiry, agora__pubkey *keys, int64_t *expires, size_t *n,
                      const char *what, agora__error *err)
{
    static const char *const k_root[] = {"id", "public", NULL};
    static const char *const k_cat[] = {"id", "public", "expires", NULL};
    char msg[160];
    snprintf(msg, sizeof msg, "'%s' must be a list of 1..%d keys {id, public%s}", what,
             AGORA__ROOT_KEYS_MAX, with_expiry ? ", expires" : "");
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > AGORA__ROOT_KEYS_MAX)
        return bad(err, msg);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *o = json_array_get(a, i);
        json_t *id = json_object_get(o, "id"), *pub = json_object_get(o, "public");
        if (!json_is_object(o) || only_keys(o, with_expiry ? k_cat : k_root) != 0 ||
            !json_is_string(id) || !json_is_string(pub) || json_string_length(pub) != 64 ||
            agora__unhex(json_string_value(pub), keys[i].pk, 32) != 0)
            return bad(err, msg);
        agora__key_id(keys[i].pk, keys[i].id);
        if (strcmp(keys[i].id, json_string_value(id)) != 0)
            return bad(err, "a key's id does not match its public key");
        for (size_t j = 0; j < i; j++)
            if (memcmp(keys[j].pk, keys[i].pk, 32) == 0)
                return bad(err, "a key is listed twice");
        if (with_expiry && time_of(json_object_get(o, "expires"), &expires[i]) != 0)
            return bad(err, "a catalog key's 'expires' must be a UTC time YYYY-MM-DDTHH:MM:SSZ");
    }
    *n = json_array_size(a);
    return 0;
}

int agora__root_parse(const uint8_t *buf, size_t len, agora__root *r, agora__error *err)
{
    static const char *const keys[] = {"format",    "version",   "issued",       "expires",
                                       "threshold", "root_keys", "catalog_keys", NULL};
    memset(r, 0, sizeof *r);
    if (len > AGORA__ROOT_MAX)
        return bad(err, "larger than 64 KiB");
    json_error_t jerr;
    json_t *o = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        return agora__error_set(err, AGORA_EINVAL, "root document is not valid JSON (line %d)",
                                jerr.line);
    int rc = 0;
    json_t *fmt = json_object_get(o, "format"), *ver = json_object_get(o, "version"),
           *thr = json_object_get(o, "threshold");
    if (!json_is_object(o) || only_keys(o, keys) != 0)
        rc = bad(err, "unknown field (a newer format?); upgrade agora");
    else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), ROOT_FORMAT) != 0)
        rc = bad(err, "'format' is not " ROOT_FORMAT "; upgrade agora");
    else if (!json_is_integer(ver) || json_integer_value(ver) < 1 ||
             (uint64_t)json_integer_value(ver) > VERSION_MAX)
        rc = bad(err, "'version' must be an integer >= 1");
    else if (time_of(json_object_get(o, "issued"), &r->issued) != 0 ||
             time_of(json_object_get(o, "expires"), &r->expires) != 0)
        rc = bad(err, "'issued' and 'expires' must be UTC times YYYY-MM-DDTHH:MM:SSZ");
    if (rc == 0)
        rc = parse_keys(json_object_get(o, "root_keys"), 0, r->root_keys, NULL, &r->n_root,
                        "root_keys", err);
    if (rc == 0)
        rc = parse_keys(json_object_get(o, "catalog_keys"), 1, r->catalog_keys, r->catalog_expires,
                        &r->n_catalog, "catalog_keys", err);
    if (rc == 0 && (!json_is_integer(thr) || json_integer_value(thr) < 1 ||
                    (uint64_t)json_integer_value(thr) > r->n_root))
        rc = bad(err, "'threshold' must be an integer 1..(number of root keys)");
    if (rc == 0) {
        r->version = (uint64_t)json_integer_value(ver);
        r->threshold = (uint32_t)json_integer_value(thr);
    }
    json_decref(o);
    if (rc != 0)
        memset(r, 0, sizeof *r);
    return rc;
}

/* ---- signed files --------------------------------------------------------------------------- */

typedef struct signed_view {
    const uint8_t *doc;
    size_t doc_len;
    size_t n;
    char key_id[AGORA__ROOT_SIGS_MAX][AGORA__KEY_ID_HEX];
    uint8_t sig[AGORA__ROOT_SIGS_MAX][64];
} signed_view;

/* Split signature lines from the document (which starts at the first line that is not one). */
static int split(const uint8_t *buf, size_t len, signed_view *v, agora__error *err)
{
    static const char magic[] = "agora-signature ";
    memset(v, 0, sizeof *v);
    if (len > AGORA__ROOT_MAX + AGORA__ROOT_SIGS_MAX * AGORA__SIG_TEXT_MAX)
        return bad(err, "the signed file is too large");
    size_t off = 0;
    while (off < len && len - off > sizeof magic - 1 &&
           memcmp(buf + off, magic, sizeof magic - 1) == 0) {
        if (v->n == AGORA__ROOT_SIGS_MAX)
            return bad(err, "more than 32 signatures");
        const uint8_t *nl = memchr(buf + off, '\n', len - off);
        if (nl == NULL)
            return bad(err, "a signature line has no end");
        size_t line = (size_t)(nl - (buf + off)) + 1;
        if (agora__sig_parse(buf + off, line, v->key_id[v->n], v->sig[v->n], err) != 0)
            return err != NULL ? err->code : AGORA_EINVAL;
        v->n++;
        off += line;
    }
    if (v->n == 0)
        return bad(err, "not signed (no signature line)");
    v->doc = buf + off;
    v->doc_len = len - off;
    return 0;
}

static int count_signers(const signed_view *v, const agora__pubkey *keys, size_t n_keys)
{
    int count = 0;
    for (size_t k = 0; k < n_keys; k++) {
        for (size_t s = 0; s < v->n; s++) {
            if (strcmp(v->key_id[s], keys[k].id) == 0 &&
                crypto_sign_verify_detached(v->sig[s], v->doc, v->doc_len, keys[k].pk) == 0) {
                count++;
                break;
            }
        }
    }
    return count;
}

int agora__root_signers(const uint8_t *file, size_t len, const agora__pubkey *keys, size_t n_keys,
                        agora__error *err)
{
    signed_view v;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    if (split(file, len, &v, err) != 0)
        return -1;
    return count_signers(&v, keys, n_keys);
}

int agora__root_sign(const agora__root *r, const agora__seckey *signers, size_t n, uint8_t **out,
                     size_t *out_len, agora__error *err)
{
    *out = NULL;
    *out_len = 0;
    if (n == 0 || n > AGORA__ROOT_SIGS_MAX)
        return agora__error_set(err, AGORA_EINVAL, "a root is signed by 1..%d keys",
                                AGORA__ROOT_SIGS_MAX);
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    char *doc;
    size_t doc_len;
    int rc = agora__root_serialize(r, &doc, &doc_len, err);
    if (rc != 0)
        return rc;
    uint8_t *buf = malloc(n * AGORA__SIG_TEXT_MAX + doc_len);
    if (buf == NULL) {
        free(doc);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t sig[64];
        char line[AGORA__SIG_TEXT_MAX];
        crypto_sign_detached(sig, NULL, (const uint8_t *)doc, doc_len, signers[i].sk);
        agora__sig_format(&signers[i].pub, sig, line, sizeof line);
        memcpy(buf + off, line, strlen(line));
        off += strlen(line);
    }
    memcpy(buf + off, doc, doc_len);
    free(doc);
    *out = buf;
    *out_len = off + doc_len;
    return 0;
}

/* Verify file's signatures (a threshold of prev's root keys when prev is not NULL, and of its
 * own), then parse it. */
static int verify(const agora__root *prev, const uint8_t *file, size_t len, agora__root *out,
                  agora__error *err)
{
    signed_view v;
    memset(out, 0, sizeof *out);
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    int rc = split(file, len, &v, err);
    if (rc != 0)
        return rc;
    if (prev != NULL) {
        int got = count_signers(&v, prev->root_keys, prev->n_root);
        if (got < (int)prev->threshold)
            return agora__error_set(err, AGORA_EINVAL,
                                    "root threshold check: the new root is signed by %d of the "
                                    "%u root keys root version %llu requires; refused (a root "
                                    "is changed only by a threshold of the current root keys)",
                                    got, prev->threshold, (unsigned long long)prev->version);
    }
    agora__root r;
    rc = agora__root_parse(v.doc, v.doc_len, &r, err);
    if (rc != 0)
        return rc;
    int own = count_signers(&v, r.root_keys, r.n_root);
    if (own < (int)r.threshold)
        return agora__error_set(err, AGORA_EINVAL,
                                "root threshold check: root version %llu is signed by %d of "
                                "the %u of its own root keys it requires; refused",
                                (unsigned long long)r.version, own, r.threshold);
    *out = r;
    return 0;
}

int agora__root_verify_next(const agora__root *cur, const uint8_t *file, size_t len,
                            agora__root *next, agora__error *err)
{
    int rc = verify(cur, file, len, next, err);
    if (rc == 0 && next->version != cur->version + 1) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "root version check: expected root version %llu after %llu, found "
                              "version %llu; refused (a rollback or a misnamed file)",
                              (unsigned long long)cur->version + 1,
                              (unsigned long long)cur->version, (unsigned long long)next->version);
        memset(next, 0, sizeof *next);
    }
    return rc;
}

int agora__root_verify_self(const uint8_t *file, size_t len, agora__root *out, agora__error *err)
{
    return verify(NULL, file, len, out, err);
}

static int root_path(const char *dir, uint64_t version, char *out, size_t size, agora__error *err)
{
    return agora__path(out, size, err, "%s/" AGORA__ROOT_DIR "/%llu.root", dir,
                       (unsigned long long)version);
}

/* Read DIR/root/<version>.root; 1 when it does not exist. */
static int read_root_file(const char *dir, uint64_t version, uint8_t **buf, size_t *len,
                          agora__error *err)
{
    char path[4096];
    int rc = root_path(dir, version, path, sizeof path, err);
    if (rc != 0)
        return rc;
    rc = agora__read_file(path, AGORA__ROOT_MAX + AGORA__ROOT_SIGS_MAX * AGORA__SIG_TEXT_MAX, buf,
                          len, err);
    if (rc == AGORA__ENOENT) {
        agora__error_clear(err);
        return 1;
    }
    return rc;
}

int agora__root_walk(const char *dir, const agora__root *cur, int64_t now, agora__root *out,
                     uint8_t **file, size_t *file_len, unsigned *walked, agora__error *err)
{
    *out = *cur;
    *file = NULL;
    *file_len = 0;
    *walked = 0;
    for (;;) {
        uint8_t *buf;
        size_t len;
        int rc = read_root_file(dir, out->version + 1, &buf, &len, err);
        if (rc == 1)
            break;
        if (rc != 0)
            goto fail;
        if (*walked == AGORA__ROOT_CHAIN_MAX) {
            free(buf);
            rc = agora__error_set(err, AGORA_ELIMIT,
                                  "root chain check: more than %d new root versions in one sync; "
                                  "refused (a hostile directory?)",
                                  AGORA__ROOT_CHAIN_MAX);
            goto fail;
        }
        agora__root next;
        rc = agora__root_verify_next(out, buf, len, &next, err);
        if (rc != 0) {
            free(buf);
            agora__error_prefix(err, "%s/" AGORA__ROOT_DIR "/%llu.root", dir,
                                (unsigned long long)out->version + 1);
            goto fail;
        }
        free(*file);
        *file = buf;
        *file_len = len;
        *out = next;
        (*walked)++;
        continue;
    fail:
        free(*file);
        *file = NULL;
        *file_len = 0;
        return rc;
    }
    if (out->version > 0 && out->expires <= now) {
        char when[AGORA__TIME_TEXT];
        agora__time_format(out->expires, when);
        free(*file);
        *file = NULL;
        return agora__error_set(err, AGORA_EINVAL,
                                "root expiry check: root version %llu expired at %s; refused (ask "
                                "the operator to sign a new root: agora root sign)",
                                (unsigned long long)out->version, when);
    }
    return 0;
}

size_t agora__root_catalog_keys(const agora__root *r, int64_t now,
                                agora__pubkey out[AGORA__ROOT_KEYS_MAX])
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_catalog; i++)
        if (now == 0 || r->catalog_expires[i] == 0 || r->catalog_expires[i] > now)
            out[n++] = r->catalog_keys[i];
    return n;
}

int agora__root_latest(const char *dir, agora__root *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = read_root_file(dir, 1, &buf, &len, err);
    if (rc != 0)
        return rc;
    rc = agora__root_verify_self(buf, len, out, err);
    free(buf);
    if (rc == 0 && out->version != 1)
        rc = agora__error_set(err, AGORA_EINVAL, "%s/root/1.root holds version %llu", dir,
                              (unsigned long long)out->version);
    if (rc != 0)
        return agora__error_prefix(err, "%s/" AGORA__ROOT_DIR "/1.root", dir);
    /* The operator's own chain: walked without an expiry check (an expired root is what the
     * operator is about to replace). */
    for (unsigned i = 0; i < 1000000; i++) {
        rc = read_root_file(dir, out->version + 1, &buf, &len, err);
        if (rc == 1)
            return 0;
        if (rc != 0)
            return rc;
        agora__root next;
        rc = agora__root_verify_next(out, buf, len, &next, err);
        free(buf);
        if (rc != 0)
            return agora__error_prefix(err, "%s/" AGORA__ROOT_DIR "/%llu.root", dir,
                                       (unsigned long long)out->version + 1);
        *out = next;
    }
    return agora__error_set(err, AGORA_ELIMIT, "%s/root holds too many versions", dir);
}

int agora__root_write(const char *dir, uint64_t version, const uint8_t *file, size_t len,
                      agora__error *err)
{
    char sub[4096], path[4096];
    int rc = agora__path(sub, sizeof sub, err, "%s/" AGORA__ROOT_DIR, dir);
    if (rc == 0)
        rc = agora__mkdirs(sub, 0755, err);
    if (rc == 0)
        rc = root_path(dir, version, path, sizeof path, err);
    if (rc == 0)
        rc = agora__write_file_new(path, file, len, 0644, err);
    if (rc == AGORA__EEXIST)
        agora__error_set(err, rc, "%s exists: a root version is never replaced", path);
    return rc;
}

int agora__root_publish_check(const char *dir, const agora__pubkey *key, int64_t now,
                              agora__error *err)
{
    agora__root r;
    int rc = agora__root_latest(dir, &r, err);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return rc;
    agora__pubkey keys[AGORA__ROOT_KEYS_MAX];
    size_t n = agora__root_catalog_keys(&r, now, keys);
    for (size_t i = 0; i < n; i++)
        if (memcmp(keys[i].pk, key->pk, 32) == 0)
            return 0;
    return agora__error_set(err, AGORA_EINVAL,
                            "catalog key check: key %s is not a current catalog key of root "
                            "version %llu in %s (clinics would refuse the catalog); sign with "
                            "the catalog key the root names (agora keys rotate makes one)",
                            key->id, (unsigned long long)r.version, dir);
}
