/* Statements across clinics, the trust side: each clinic's Ed25519 signing key (HOME/clinic.key,
 * HOME/clinic.pub), the operator's registry of clinic keys next to its catalog
 * (CATALOG/clinics/NAME.pub) and the signed catalog read as a price list. The ledger export and
 * the cross-clinic statement themselves live in host/meter. */
#include "trust_int.h"

#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PUB_SUFFIX ".pub"

static int home_key_paths(const char *home, char *prefix, char *key_path, char *pub_path,
                          agora__error *err)
{
    /* The key writer takes PREFIX and adds .key / .pub: the prefix is clinic.key's path less
     * its suffix, so the home module stays the one owner of both names. */
    int rc = agora__home_path(home, AGORA__HOME_CLINIC_KEY, key_path, 4096, err);
    size_t n = rc == 0 ? strlen(key_path) : 0;
    if (rc == 0 && (n < 4 || strcmp(key_path + n - 4, ".key") != 0))
        rc = agora__error_set(err, AGORA_EINTERNAL, "clinic key path has no .key suffix");
    if (rc == 0) {
        memcpy(prefix, key_path, n - 4);
        prefix[n - 4] = '\0';
    }
    if (rc == 0)
        rc = agora__home_path(home, AGORA__HOME_CLINIC_PUB, pub_path, 4096, err);
    return rc;
}

int agora__trust_clinic_key_ensure(const char *home, int *created, char *key_id, agora__error *err)
{
    char prefix[4096], key_path[4096], pub_path[4096];
    if (created != NULL)
        *created = 0;
    int rc = home_key_paths(home, prefix, key_path, pub_path, err);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(key_path, &st) == 0) {
        agora__seckey k;
        rc = agora__seckey_read(key_path, NULL, 0, &k, err);
        if (rc != 0)
            return rc;
        agora__pubkey pub = k.pub;
        agora__seckey_wipe(&k);
        if (key_id != NULL)
            memcpy(key_id, pub.id, AGORA__KEY_ID_HEX);
        if (access(pub_path, F_OK) != 0) {
            /* The public half is derived from the secret, so a lost clinic.pub is rewritten. */
            char line[256];
            agora__pubkey_format(&pub, line, sizeof line);
            rc = agora__write_file_atomic(pub_path, line, strlen(line), 0644, err);
        }
        return rc;
    }
    if (errno != ENOENT)
        return agora__error_set(err, AGORA__ERR(errno), "%s: %s", key_path, strerror(errno));
    agora__pubkey pub;
    rc = agora__keygen_files(prefix, NULL, 0, &pub, err);
    if (rc != 0)
        return rc;
    if (created != NULL)
        *created = 1;
    if (key_id != NULL)
        memcpy(key_id, pub.id, AGORA__KEY_ID_HEX);
    return 0;
}

int agora__trust_clinic_sign(const char *home, const uint8_t *msg, size_t len, char *sig_line,
                             size_t sig_size, char *key_id, char *pk_hex, int *created,
                             agora__error *err)
{
    char prefix[4096], key_path[4096], pub_path[4096];
    int rc = agora__trust_clinic_key_ensure(home, created, NULL, err);
    if (rc == 0)
        rc = home_key_paths(home, prefix, key_path, pub_path, err);
    if (rc != 0)
        return rc;
    agora__seckey k;
    rc = agora__seckey_read(key_path, NULL, 0, &k, err);
    if (rc != 0)
        return rc;
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, msg, len, k.sk);
    agora__sig_format(&k.pub, sig, sig_line, sig_size);
    if (key_id != NULL)
        memcpy(key_id, k.pub.id, AGORA__KEY_ID_HEX);
    if (pk_hex != NULL)
        agora__hex(k.pub.pk, 32, pk_hex);
    agora__seckey_wipe(&k);
    return 0;
}

int agora__trust_clinic_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > AGORA__CLINIC_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int agora__trust_clinic_state_path(const char *catalog_dir, const char *name, const char *suffix,
                                   char *out, size_t size, agora__error *err)
{
    if (!agora__trust_clinic_name_valid(name))
        return agora__error_set(err, AGORA_EINVAL, "'%.70s' is not a clinic name", name);
    return agora__path(out, size, err, "%s/clinics/%s.%s", catalog_dir, name, suffix);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const agora__trust_clinic *)a)->name, ((const agora__trust_clinic *)b)->name);
}

int agora__trust_clinic_list(const char *catalog_dir, agora__trust_clinic **out, size_t *n,
                             agora__error *err)
{
    *out = NULL;
    *n = 0;
    char dir[4096];
    int rc = agora__path(dir, sizeof dir, err, "%s/clinics", catalog_dir);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0; /* no clinic registered yet */
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", dir, strerror(errno));
    }
    agora__trust_clinic *list = NULL;
    size_t cap = 0, count = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= strlen(PUB_SUFFIX) ||
            strcmp(e->d_name + len - strlen(PUB_SUFFIX), PUB_SUFFIX) != 0)
            continue;
        char name[AGORA__CLINIC_NAME_MAX + 8];
        if (len - strlen(PUB_SUFFIX) > AGORA__CLINIC_NAME_MAX)
            continue;
        memcpy(name, e->d_name, len - strlen(PUB_SUFFIX));
        name[len - strlen(PUB_SUFFIX)] = '\0';
        if (!agora__trust_clinic_name_valid(name))
            continue;
        if (count == AGORA__CLINICS_MAX) {
            rc = agora__error_set(err, AGORA_ELIMIT, "%s holds more than %d clinics", dir,
                                  AGORA__CLINICS_MAX);
            break;
        }
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            agora__trust_clinic *g = realloc(list, nc * sizeof *g);
            if (g == NULL) {
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
                break;
            }
            list = g;
            cap = nc;
        }
        char path[4096];
        agora__pubkey pub;
        rc = agora__path(path, sizeof path, err, "%s/%s", dir, e->d_name);
        if (rc == 0)
            rc = agora__pubkey_read(path, &pub, err);
        if (rc != 0)
            break;
        agora__strlcpy(list[count].name, name, sizeof list[count].name);
        memcpy(list[count].key_id, pub.id, AGORA__KEY_ID_HEX);
        agora__hex(pub.pk, 32, list[count].pk_hex);
        count++;
    }
    closedir(d);
    if (rc != 0) {
        free(list);
        return rc;
    }
    if (count > 1)
        qsort(list, count, sizeof *list, by_name);
    *out = list;
    *n = count;
    return 0;
}

int agora__trust_clinic_register(const char *catalog_dir, const char *name, const char *pub_path,
                                 agora__trust_clinic *out, int *already, agora__error *err)
{
    *already = 0;
    if (!agora__trust_clinic_name_valid(name))
        return agora__error_set(err, AGORA_EINVAL,
                                "clinic name '%.70s' must be 1..%d letters, digits, '.', '_' or "
                                "'-' (not starting with '.' or '-')",
                                name, AGORA__CLINIC_NAME_MAX);
    struct stat st;
    if (stat(catalog_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is not a directory; give the operator's catalog directory "
                                "(the one agora certify writes)",
                                catalog_dir);
    agora__pubkey pub;
    int rc = agora__pubkey_read(pub_path, &pub, err);
    if (rc != 0) {
        agora__error_prefix(err, "the clinic's key (HOME/clinic.pub, printed by agora init)");
        return rc;
    }
    agora__trust_clinic *list;
    size_t n;
    rc = agora__trust_clinic_list(catalog_dir, &list, &n, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int same_name = strcmp(list[i].name, name) == 0;
        int same_key = strcmp(list[i].key_id, pub.id) == 0;
        if (same_name && same_key)
            *already = 1;
        else if (same_name)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "clinic %s is already registered with key %s; a clinic name "
                                  "names one key (choose another name)",
                                  name, list[i].key_id);
        else if (same_key)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "key %s is already registered as clinic %s; one key names one "
                                  "clinic",
                                  pub.id, list[i].name);
    }
    free(list);
    if (rc != 0)
        return rc;
    agora__strlcpy(out->name, name, sizeof out->name);
    memcpy(out->key_id, pub.id, AGORA__KEY_ID_HEX);
    agora__hex(pub.pk, 32, out->pk_hex);
    if (*already)
        return 0;
    char dir[4096], path[4096], line[256];
    rc = agora__path(dir, sizeof dir, err, "%s/clinics", catalog_dir);
    if (rc == 0)
        rc = agora__mkdirs(dir, 0755, err);
    if (rc == 0)
        rc = agora__trust_clinic_state_path(catalog_dir, name, "pub", path, sizeof path, err);
    if (rc == 0) {
        agora__pubkey_format(&pub, line, sizeof line);
        rc = agora__write_file_atomic(path, line, strlen(line), 0644, err);
    }
    return rc;
}

int agora__trust_clinic_verify(const char *catalog_dir, const uint8_t *sig_line, size_t sig_len,
                               const uint8_t *msg, size_t len, agora__trust_clinic *out,
                               agora__error *err)
{
    char key_id[AGORA__KEY_ID_HEX];
    uint8_t sig[64];
    int rc = agora__sig_parse(sig_line, sig_len, key_id, sig, err);
    if (rc != 0)
        return rc;
    agora__trust_clinic *list;
    size_t n;
    rc = agora__trust_clinic_list(catalog_dir, &list, &n, err);
    if (rc != 0)
        return rc;
    size_t i;
    for (i = 0; i < n && strcmp(list[i].key_id, key_id) != 0; i++)
        ;
    if (i == n) {
        free(list);
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                "unregistered clinic: the export is signed by key %s, which no "
                                "clinic registered in %s/clinics has; register the clinic's "
                                "clinic.pub with agora clinic add NAME CLINIC.pub --catalog %s",
                                key_id, catalog_dir, catalog_dir);
    }
    *out = list[i];
    free(list);
    uint8_t pk[32];
    if (agora__unhex(out->pk_hex, pk, 32) != 0 || sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "cannot decode the registered key");
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "bad signature: the export does not verify with clinic %s's key "
                                "%s; it was altered after signing (ask the clinic to export again)",
                                out->name, key_id);
    return 0;
}

/* ---- the catalog as a price list ---------------------------------------------------------- */

struct agora__trust_price_book {
    agora__catalog cat;
};

int agora__trust_price_book_open(const char *catalog_dir, const char *trust_pub,
                                 agora__trust_price_book **out, int *verified, agora__error *err)
{
    *out = NULL;
    *verified = 0;
    agora__trust_price_book *pb = calloc(1, sizeof *pb);
    if (pb == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    int rc;
    if (trust_pub != NULL) {
        agora__pubkey key;
        rc = agora__pubkey_read(trust_pub, &key, err);
        if (rc == 0)
            rc = agora__catalog_operator_check(catalog_dir, &key, "the --trust key", err);
        if (rc == 0)
            rc = agora__catalog_load_dir(catalog_dir, &key, 1, &pb->cat, NULL, NULL, NULL, NULL,
                                         NULL, err);
        *verified = rc == 0;
    } else {
        /* The operator's own directory, read like `agora catalog show` without --trust: the
         * caller warns that the signature was not checked. */
        char path[4096];
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        rc = agora__path(path, sizeof path, err, "%s/catalog.json", catalog_dir);
        if (rc == 0)
            rc = agora__read_file(path, AGORA__CATALOG_MAX, &raw, &raw_len, err);
        if (rc == 0)
            rc = agora__catalog_parse(raw, raw_len, &pb->cat, err);
        free(raw);
        if (rc != 0)
            agora__error_prefix(err, "the catalog in %s", catalog_dir);
    }
    if (rc != 0) {
        agora__catalog_free(&pb->cat);
        free(pb);
        return rc;
    }
    *out = pb;
    return 0;
}

int agora__trust_price_book_find(const agora__trust_price_book *pb, const char *id,
                                 const char *version, agora__trust_pricing *pricing,
                                 char vendor[AGORA__TRUST_NAME_MAX + 1], uint64_t *catalog_version)
{
    const agora__cat_entry *e = agora__catalog_find(&pb->cat, id, version);
    if (e == NULL)
        return AGORA_EINVAL;
    *pricing = e->pricing;
    agora__strlcpy(vendor, e->vendor, AGORA__TRUST_NAME_MAX + 1);
    *catalog_version = pb->cat.version;
    return 0;
}

void agora__trust_price_book_close(agora__trust_price_book *pb)
{
    if (pb == NULL)
        return;
    agora__catalog_free(&pb->cat);
    free(pb);
}
