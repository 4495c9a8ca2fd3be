/* Signing and verifying the catalog. The signature is Ed25519 over the exact bytes of
 * catalog.json; it is checked before a single byte is parsed, with a key chosen by the key id in
 * the signature line among the keys the caller trusts. */
#include "trust_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int agora__path(char *buf, size_t size, agora__error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT, "path too long (%d bytes); use a shorter one",
                                n);
    return 0;
}

int agora__catalog_verify_parse(const uint8_t *json, size_t json_len, const uint8_t *sig_text,
                                size_t sig_len, const agora__pubkey *keys, size_t n_keys,
                                agora__catalog *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    char key_id[AGORA__KEY_ID_HEX];
    uint8_t sig[64];
    int rc = agora__sig_parse(sig_text, sig_len, key_id, sig, err);
    if (rc != 0)
        return rc;
    const agora__pubkey *key = NULL;
    for (size_t i = 0; i < n_keys; i++)
        if (strcmp(keys[i].id, key_id) == 0)
            key = &keys[i];
    if (key == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "catalog is signed by key %s, which is not trusted here; refused "
                                "(trust the operator's key with agora init --trust KEY.pub)",
                                key_id);
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    if (crypto_sign_verify_detached(sig, json, json_len, key->pk) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "catalog signature does not verify with key %s: catalog.json was "
                                "altered or the signature belongs to another catalog; refused",
                                key_id);
    rc = agora__catalog_parse(json, json_len, out, err);
    if (rc == 0 && strcmp(out->key_id, key_id) != 0) {
        agora__catalog_free(out);
        rc = agora__error_set(err, AGORA_EINVAL,
                              "catalog names key %s but is signed by key %s; refused", out->key_id,
                              key_id);
    }
    return rc;
}

/* Split a catalog.signed file (or a held catalog: the same format): the first line is the
 * signature, the rest the exact catalog bytes. */
static int split_signed(uint8_t *buf, size_t len, const char *path, uint8_t **doc, size_t *doc_len,
                        uint8_t **sig, size_t *sig_len, agora__error *err)
{
    const uint8_t *nl = memchr(buf, '\n', len < AGORA__SIG_TEXT_MAX ? len : AGORA__SIG_TEXT_MAX);
    if (nl == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s has no signature line; refused (publish it again)", path);
    size_t sl = (size_t)(nl - buf) + 1;
    *sig = malloc(sl + 1);
    *doc = malloc(len - sl + 1);
    if (*sig == NULL || *doc == NULL) {
        free(*sig);
        free(*doc);
        *sig = *doc = NULL;
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    memcpy(*sig, buf, sl);
    (*sig)[sl] = '\0';
    memcpy(*doc, buf + sl, len - sl);
    (*doc)[len - sl] = '\0';
    *sig_len = sl;
    *doc_len = len - sl;
    return 0;
}

int agora__catalog_read_dir(const char *dir, uint8_t **doc, size_t *doc_len, uint8_t **sig,
                            size_t *sig_len, int *missing, agora__error *err)
{
    char jpath[4096], spath[4096], one[4096];
    *doc = *sig = NULL;
    *doc_len = *sig_len = 0;
    if (missing != NULL)
        *missing = 0;
    int rc = agora__path(jpath, sizeof jpath, err, "%s/catalog.json", dir);
    if (rc == 0)
        rc = agora__path(spath, sizeof spath, err, "%s/catalog.sig", dir);
    if (rc == 0)
        rc = agora__path(one, sizeof one, err, "%s/" AGORA__CATALOG_SIGNED, dir);
    if (rc != 0)
        return rc;
    /* One file, replaced by rename: whatever is read is one publish's signature and bytes. */
    uint8_t *buf;
    size_t len;
    rc = agora__read_file(one, AGORA__CATALOG_MAX + AGORA__SIG_TEXT_MAX, &buf, &len, err);
    if (rc == 0) {
        rc = split_signed(buf, len, one, doc, doc_len, sig, sig_len, err);
        free(buf);
        return rc;
    }
    if (rc != AGORA__ENOENT)
        return rc;
    agora__error_clear(err);
    /* The older layout: two files, which a reader can catch half-replaced. */
    if (access(jpath, F_OK) != 0 && errno == ENOENT) {
        if (missing != NULL)
            *missing = 1;
        return agora__error_set(err, AGORA_EINVAL,
                                "%s has no catalog (" AGORA__CATALOG_SIGNED
                                " or catalog.json); check the path of the catalog directory",
                                dir);
    }
    rc = agora__read_file(spath, AGORA__SIG_TEXT_MAX, sig, sig_len, err);
    if (rc != 0) {
        if (rc == AGORA__ENOENT)
            agora__error_set(err, AGORA_EINVAL,
                             "%s: catalog.json is not signed (no catalog.sig); refused", dir);
        return rc;
    }
    rc = agora__read_file(jpath, AGORA__CATALOG_MAX, doc, doc_len, err);
    if (rc != 0) {
        free(*sig);
        *sig = NULL;
    }
    return rc;
}

int agora__catalog_load_dir(const char *dir, const agora__pubkey *keys, size_t n_keys,
                            agora__catalog *out, uint8_t **raw, size_t *raw_len, char **sig,
                            size_t *sig_len, int *missing, agora__error *err)
{
    uint8_t *json = NULL, *sigbuf = NULL;
    size_t jlen = 0, slen = 0;
    memset(out, 0, sizeof *out);
    int rc = agora__catalog_read_dir(dir, &json, &jlen, &sigbuf, &slen, missing, err);
    if (rc != 0)
        return rc;
    rc = agora__catalog_verify_parse(json, jlen, sigbuf, slen, keys, n_keys, out, err);
    if (rc == 0 && raw != NULL) {
        *raw = json;
        *raw_len = jlen;
        json = NULL;
    }
    if (rc == 0 && sig != NULL) {
        *sig = (char *)sigbuf;
        *sig_len = slen;
        sigbuf = NULL;
    }
    free(json);
    free(sigbuf);
    if (rc != 0)
        agora__error_prefix(err, "%s", dir);
    return rc;
}

int agora__catalog_write_dir(const char *dir, const agora__catalog *c, const agora__seckey *key,
                             agora__error *err)
{
    char jpath[4096], spath[4096], one[4096];
    int rc = agora__path(jpath, sizeof jpath, err, "%s/catalog.json", dir);
    if (rc == 0)
        rc = agora__path(spath, sizeof spath, err, "%s/catalog.sig", dir);
    if (rc == 0)
        rc = agora__path(one, sizeof one, err, "%s/" AGORA__CATALOG_SIGNED, dir);
    if (rc != 0)
        return rc;
    char *json;
    size_t len;
    rc = agora__catalog_serialize(c, &json, &len, err);
    if (rc != 0)
        return rc;
    uint8_t sig[64];
    char line[AGORA__SIG_TEXT_MAX];
    crypto_sign_detached(sig, NULL, (const uint8_t *)json, len, key->sk);
    agora__sig_format(&key->pub, sig, line, sizeof line);
    size_t ll = strlen(line);
    char *both = malloc(ll + len);
    if (both == NULL) {
        free(json);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    memcpy(both, line, ll);
    memcpy(both + ll, json, len);
    /* catalog.signed is the unit readers take: one rename replaces signature and bytes together.
     * The pair after it is for older hosts, which may catch it half-written (and retry). */
    rc = agora__write_file_atomic(one, both, ll + len, 0644, err);
    free(both);
    if (rc == 0)
        rc = agora__write_file_atomic(jpath, json, len, 0644, err);
    if (rc == 0)
        rc = agora__write_file_atomic(spath, line, ll, 0644, err);
    free(json);
    return rc;
}

int agora__catalog_operator_check(const char *dir, const agora__pubkey *key, const char *which,
                                  agora__error *err)
{
    uint8_t *sigbuf = NULL, *doc = NULL;
    size_t slen = 0, dlen = 0;
    if (agora__catalog_read_dir(dir, &doc, &dlen, &sigbuf, &slen, NULL, NULL) != 0)
        return 0; /* no readable signature: the full load says what is wrong */
    free(doc);
    char key_id[AGORA__KEY_ID_HEX];
    uint8_t sig[64];
    int rc = agora__sig_parse(sigbuf, slen, key_id, sig, NULL);
    free(sigbuf);
    if (rc != 0 || strcmp(key_id, key->id) == 0)
        return 0;
    return agora__error_set(err, AGORA_EINVAL,
                            "%s: the catalog is signed by key %s, not by %s (key %s); use the "
                            "operator key that signed this catalog, or another --catalog "
                            "directory for a new catalog",
                            dir, key_id, which, key->id);
}
