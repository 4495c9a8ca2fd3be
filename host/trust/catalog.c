/* The catalog document: its in-memory form, the canonical bytes the operator signs, and a strict
 * parser. Parsing happens only after the signature over the exact bytes verified
 * (catalog_sign.c); the parser is strict anyway (unknown fields refused, every size bounded) so a
 * newer catalog format fails closed on an older host instead of being half understood. */
#include "trust_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CATALOG_FORMAT "agora-catalog/1"
#define VERSION_MAX    9007199254740991ull /* 2^53-1: exact in every JSON reader */

void agora__catalog_free(agora__catalog *c)
{
    free(c->entries);
    free(c->vendors);
    memset(c, 0, sizeof *c);
}

agora__cat_entry *agora__catalog_find(const agora__catalog *c, const char *id, const char *version)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].id, id) == 0 && strcmp(c->entries[i].version, version) == 0)
            return &c->entries[i];
    return NULL;
}

agora__cat_entry *agora__catalog_add(agora__catalog *c, agora__error *err)
{
    if (c->n >= AGORA__CATALOG_ENTRIES_MAX) {
        agora__error_set(err, AGORA_ELIMIT, "the catalog already holds %d entries, the maximum",
                         AGORA__CATALOG_ENTRIES_MAX);
        return NULL;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        agora__cat_entry *e = realloc(c->entries, cap * sizeof *e);
        if (e == NULL) {
            agora__error_set(err, AGORA_ENOMEM, "out of memory growing the catalog");
            return NULL;
        }
        c->entries = e;
        c->cap = cap;
    }
    agora__cat_entry *e = &c->entries[c->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* ---- vendor pins ---------------------------------------------------------------------------- */

static agora__cat_vendor *vendor_find(const agora__catalog *c, const char *name)
{
    for (size_t i = 0; i < c->n_vendors; i++)
        if (strcmp(c->vendors[i].name, name) == 0)
            return &c->vendors[i];
    return NULL;
}

int agora__catalog_vendor_check(const agora__catalog *c, const char *vendor, const char *key_id,
                                const uint8_t *pk, const char *what, agora__error *err)
{
    const agora__cat_vendor *v = vendor_find(c, vendor);
    if (v == NULL || v->n_keys == 0)
        return 0;
    for (uint32_t i = 0; i < v->n_keys; i++)
        if (pk != NULL ? memcmp(v->keys[i].pk, pk, 32) == 0
                       : key_id[0] != '\0' && strcmp(v->keys[i].id, key_id) == 0)
            return 0;
    if (key_id[0] == '\0')
        return agora__error_set(err, AGORA_EINVAL,
                                "vendor pin check: %s is not signed, but the catalog pins %u "
                                "key(s) for vendor '%s'; refused (ask the vendor for a bundle "
                                "signed with their pinned key)",
                                what, v->n_keys, vendor);
    return agora__error_set(err, AGORA_EINVAL,
                            "vendor pin check: %s is signed by key %s, which the catalog does not "
                            "pin for vendor '%s'; refused (a bundle is accepted only under its "
                            "own vendor's pinned key; if the vendor has a new key, pin it with "
                            "agora certify --vendor-key NEW.pub --pin-vendor-key)",
                            what, key_id, vendor);
}

const agora__cat_vendor *agora__catalog_key_owner(const agora__catalog *c, const char *vendor,
                                                  const uint8_t pk[32])
{
    for (size_t i = 0; i < c->n_vendors; i++) {
        if (strcmp(c->vendors[i].name, vendor) == 0)
            continue;
        for (uint32_t k = 0; k < c->vendors[i].n_keys; k++)
            if (memcmp(c->vendors[i].keys[k].pk, pk, 32) == 0)
                return &c->vendors[i];
    }
    return NULL;
}

int agora__catalog_vendor_pin(agora__catalog *c, const char *vendor, const agora__pubkey *key,
                              int *added, agora__error *err)
{
    *added = 0;
    agora__cat_vendor *v = vendor_find(c, vendor);
    if (v == NULL) {
        if (c->n_vendors >= AGORA__CATALOG_VENDORS_MAX)
            return agora__error_set(err, AGORA_ELIMIT,
                                    "the catalog already pins keys for %d "
                                    "vendors, the maximum",
                                    AGORA__CATALOG_VENDORS_MAX);
        agora__cat_vendor *grown = realloc(c->vendors, (c->n_vendors + 1) * sizeof *grown);
        if (grown == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        c->vendors = grown;
        v = &c->vendors[c->n_vendors++];
        memset(v, 0, sizeof *v);
        agora__strlcpy(v->name, vendor, sizeof v->name);
    }
    for (uint32_t i = 0; i < v->n_keys; i++)
        if (memcmp(v->keys[i].pk, key->pk, 32) == 0)
            return 0;
    if (v->n_keys >= AGORA__VENDOR_KEYS_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "vendor '%s' already has %d pinned keys, the "
                                "maximum",
                                vendor, AGORA__VENDOR_KEYS_MAX);
    v->keys[v->n_keys++] = *key;
    *added = 1;
    return 0;
}

static int vendor_cmp(const void *a, const void *b)
{
    return strcmp(((const agora__cat_vendor *)a)->name, ((const agora__cat_vendor *)b)->name);
}

/* "vendors": [{"name", "keys": [public key hex...]}], sorted by name; NULL when none. */
static json_t *vendors_json(const agora__catalog *c)
{
    agora__cat_vendor *sorted = malloc(c->n_vendors * sizeof *sorted);
    json_t *arr = sorted != NULL ? json_array() : NULL;
    if (arr == NULL) {
        free(sorted);
        return NULL;
    }
    memcpy(sorted, c->vendors, c->n_vendors * sizeof *sorted);
    qsort(sorted, c->n_vendors, sizeof *sorted, vendor_cmp);
    for (size_t i = 0; i < c->n_vendors; i++) {
        json_t *keys = json_array();
        for (uint32_t k = 0; keys != NULL && k < sorted[i].n_keys; k++) {
            char hex[65];
            agora__hex(sorted[i].keys[k].pk, 32, hex);
            json_array_append_new(keys, json_string(hex));
        }
        json_t *v =
            keys != NULL ? json_pack("{s:s, s:o}", "name", sorted[i].name, "keys", keys) : NULL;
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            free(sorted);
            return NULL;
        }
    }
    free(sorted);
    return arr;
}

int agora__catalog_entry_cmp(const void *a, const void *b)
{
    const agora__cat_entry *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    c = agora__semver_cmp(x->version, y->version);
    return c != 0 ? c : strcmp(x->version, y->version);
}

/* ---- serialize ------------------------------------------------------------------------------ */

static json_t *hash_obj(const uint8_t sha[32], uint64_t size)
{
    char hex[65];
    agora__hex(sha, 32, hex);
    return json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)size);
}

static json_t *entry_json(const agora__cat_entry *e)
{
    char certified[AGORA__TIME_TEXT];
    agora__time_format(e->certified_at, certified);
    json_t *granted = json_array();
    for (unsigned i = 0; i < AGORA__OPT_COUNT; i++)
        if (e->granted & (1u << i))
            json_array_append_new(granted, json_string(agora__trust_option_name(i)));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:{s:s, s:I, s:s, s:I}, s:s}",
                  "id", e->id, "version", e->version, "name", e->name, "vendor", e->vendor,
                  "status", e->revoked ? "revoked" : "certified", "level", e->level, "plugin",
                  hash_obj(e->plugin_sha, e->plugin_size), "manifest",
                  hash_obj(e->manifest_sha, e->manifest_size), "granted", granted, "pricing",
                  "model", e->pricing.model, "price", (json_int_t)e->pricing.price_minor,
                  "currency", e->pricing.currency, "vendor_share_bps",
                  (json_int_t)e->pricing.vendor_share_bps, "certified", certified);
    if (o == NULL)
        return NULL;
    if (e->vendor_key_id[0] != '\0')
        json_object_set_new(o, "vendor_key_id", json_string(e->vendor_key_id));
    if (e->has_report && json_object_set_new(o, "certification_report",
                                             hash_obj(e->report_sha, e->report_size)) != 0) {
        json_decref(o);
        return NULL;
    }
    if (e->n_assets > 0) {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr != NULL && i < e->n_assets; i++) {
            json_t *a = hash_obj(e->assets[i].sha, e->assets[i].size);
            if (a == NULL || json_object_set_new(a, "name", json_string(e->assets[i].name)) != 0 ||
                json_array_append_new(arr, a) != 0) {
                json_decref(arr);
                json_decref(o);
                return NULL;
            }
        }
        if (arr == NULL || json_object_set_new(o, "assets", arr) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    if (e->revoked) {
        char when[AGORA__TIME_TEXT];
        agora__time_format(e->revoked_at, when);
        json_object_set_new(o, "revocation",
                            json_pack("{s:s, s:s}", "time", when, "reason", e->reason));
    }
    return o;
}

int agora__catalog_serialize(const agora__catalog *c, char **out, size_t *len, agora__error *err)
{
    *out = NULL;
    *len = 0;
    agora__cat_entry *sorted = NULL;
    if (c->n > 0) {
        sorted = malloc(c->n * sizeof *sorted);
        if (sorted == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        memcpy(sorted, c->entries, c->n * sizeof *sorted);
        qsort(sorted, c->n, sizeof *sorted, agora__catalog_entry_cmp);
    }
    char issued[AGORA__TIME_TEXT], expires[AGORA__TIME_TEXT];
    agora__time_format(c->issued, issued);
    agora__time_format(c->expires, expires);
    json_t *entries = json_array();
    json_t *root = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o}", "format", CATALOG_FORMAT, "version",
                             (json_int_t)c->version, "issued", issued, "expires", expires, "key_id",
                             c->key_id, "entries", entries);
    int rc = 0;
    for (size_t i = 0; root != NULL && i < c->n; i++) {
        json_t *e = entry_json(&sorted[i]);
        if (e == NULL || json_array_append_new(entries, e) != 0) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory serialising the catalog");
            break;
        }
    }
    free(sorted);
    if (root == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory serialising the catalog");
    if (rc == 0 && c->n_vendors > 0) {
        json_t *v = vendors_json(c);
        if (v == NULL || json_object_set_new(root, "vendors", v) != 0)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory serialising the catalog");
    }
    if (rc == 0) {
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        size_t n = text != NULL ? strlen(text) : 0;
        char *buf = text != NULL ? malloc(n + 2) : NULL;
        if (buf == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory serialising the catalog");
        } else {
            memcpy(buf, text, n);
            buf[n] = '\n';
            buf[n + 1] = '\0';
            *out = buf;
            *len = n + 1;
        }
        free(text);
    }
    json_decref(root);
    return rc;
}

/* ---- parse ---------------------------------------------------------------------------------- */

static int bad(agora__error *err, const char *where, const char *what)
{
    return agora__error_set(err, AGORA_EINVAL, "catalog%s: %s; the catalog is not usable", where,
                            what);
}

static int keys_known(json_t *o, const char *where, const char *const *keys, agora__error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i;
        for (i = 0; keys[i] != NULL && strcmp(keys[i], k) != 0; i++)
            ;
        if (keys[i] == NULL) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "field '%.40s' is unknown to this version of agora; upgrade agora", k);
            return bad(err, where, msg);
        }
    }
    return 0;
}

static int str_field(json_t *o, const char *key, const char *where, size_t min, size_t max,
                     char *out, size_t out_size, agora__error *err)
{
    json_t *v = json_object_get(o, key);
    char msg[96];
    snprintf(msg, sizeof msg, "'%s' must be a string of %zu..%zu bytes", key, min, max);
    if (!json_is_string(v))
        return bad(err, where, msg);
    size_t len = json_string_length(v);
    if (len < min || len > max || len + 1 > out_size ||
        !agora__utf8_valid(json_string_value(v), len))
        return bad(err, where, msg);
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}

static int int_field(json_t *o, const char *key, const char *where, uint64_t lo, uint64_t hi,
                     uint64_t *out, agora__error *err)
{
    json_t *v = json_object_get(o, key);
    char msg[96];
    snprintf(msg, sizeof msg, "'%s' must be an integer %llu..%llu", key, (unsigned long long)lo,
             (unsigned long long)hi);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < lo ||
        (uint64_t)json_integer_value(v) > hi)
        return bad(err, where, msg);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int time_field(json_t *o, const char *key, const char *where, int64_t *out,
                      agora__error *err)
{
    char text[AGORA__TIME_TEXT + 1];
    char msg[96];
    snprintf(msg, sizeof msg, "'%s' must be a UTC time YYYY-MM-DDTHH:MM:SSZ", key);
    if (str_field(o, key, where, 20, 20, text, sizeof text, err) != 0 ||
        agora__time_parse(text, out) != 0)
        return bad(err, where, msg);
    return 0;
}

static int hash_field(json_t *o, const char *key, const char *where, uint8_t sha[32],
                      uint64_t *size, uint64_t max, agora__error *err)
{
    static const char *const keys[] = {"sha256", "size", NULL};
    json_t *h = json_object_get(o, key);
    char sub[96], hex[65];
    snprintf(sub, sizeof sub, "%s.%s", where, key);
    if (!json_is_object(h))
        return bad(err, sub, "must be an object with sha256 and size");
    int rc = keys_known(h, sub, keys, err);
    if (rc == 0)
        rc = str_field(h, "sha256", sub, 64, 64, hex, sizeof hex, err);
    if (rc == 0 && (strspn(hex, "0123456789abcdef") != 64 || agora__unhex(hex, sha, 32) != 0))
        rc = bad(err, sub, "'sha256' must be 64 lower-case hex digits");
    if (rc == 0)
        rc = int_field(h, "size", sub, 1, max, size, err);
    return rc;
}

/* "assets": [{"name", "sha256", "size"}...], optional; names valid and unique. */
static int parse_assets(json_t *a, const char *where, agora__cat_entry *e, agora__error *err)
{
    static const char *const keys[] = {"name", "sha256", "size", NULL};
    char sub[96];
    snprintf(sub, sizeof sub, "%s.assets", where);
    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > AGORA__ASSETS_MAX)
        return bad(err, sub, "must be a list of 1..64 {name, sha256, size}");
    uint64_t sum = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i);
        char item[128];
        snprintf(item, sizeof item, "%s[%zu]", sub, i);
        if (!json_is_object(x))
            return bad(err, item, "must be an object");
        /* hash_field reads {sha256, size} under a key: wrap a copy of the item without name. */
        json_t *pin = json_copy(x);
        if (pin != NULL)
            json_object_del(pin, "name");
        json_t *wrap = pin != NULL ? json_pack("{s:o}", "pin", pin) : NULL;
        json_t *name = json_object_get(x, "name");
        int rc = keys_known(x, item, keys, err);
        if (rc == 0 && (!json_is_string(name) ||
                        !agora__asset_name_valid(json_string_value(name))))
            rc = bad(err, item, "'name' is not an asset name");
        if (rc == 0 && wrap == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        if (rc == 0)
            rc = hash_field(wrap, "pin", item, e->assets[i].sha, &e->assets[i].size,
                            AGORA__ASSET_SIZE_MAX, err);
        json_decref(wrap);
        if (rc != 0)
            return rc;
        agora__strlcpy(e->assets[i].name, json_string_value(name), sizeof e->assets[i].name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(e->assets[k].name, e->assets[i].name) == 0)
                return bad(err, item, "'name' repeats an asset");
        if (e->assets[i].size > AGORA__ASSETS_TOTAL_MAX - sum)
            return bad(err, item, "the assets exceed the total size bound");
        sum += e->assets[i].size;
        e->n_assets = (uint32_t)i + 1;
    }
    return 0;
}

static int parse_entry(json_t *o, size_t index, agora__cat_entry *e, agora__error *err)
{
    static const char *const keys[] = {
        "id",        "version",       "name",       "vendor",  "status",
        "level",     "plugin",        "manifest",   "granted", "pricing",
        "certified", "vendor_key_id", "revocation", "assets",  "certification_report",
        NULL};
    static const char *const pkeys[] = {"model", "price", "currency", "vendor_share_bps", NULL};
    char where[64];
    snprintf(where, sizeof where, ".entries[%zu]", index);
    if (!json_is_object(o))
        return bad(err, where, "must be an object");
    int rc = keys_known(o, where, keys, err);
    if (rc == 0)
        rc = str_field(o, "id", where, 3, AGORA__TRUST_ID_MAX, e->id, sizeof e->id, err);
    if (rc == 0 && !agora__reverse_dns_valid(e->id))
        rc = bad(err, where, "'id' is not a reverse-DNS name");
    if (rc == 0)
        rc = str_field(o, "version", where, 5, AGORA__TRUST_VERSION_MAX, e->version,
                       sizeof e->version, err);
    if (rc == 0 && !agora__semver_valid(e->version))
        rc = bad(err, where, "'version' is not a semantic version");
    if (rc == 0)
        rc = str_field(o, "name", where, 1, AGORA__TRUST_NAME_MAX, e->name, sizeof e->name, err);
    if (rc == 0)
        rc = str_field(o, "vendor", where, 1, AGORA__TRUST_NAME_MAX, e->vendor, sizeof e->vendor,
                       err);
    char status[16];
    if (rc == 0)
        rc = str_field(o, "status", where, 1, 15, status, sizeof status, err);
    if (rc == 0 && strcmp(status, "certified") != 0 && strcmp(status, "revoked") != 0)
        rc = bad(err, where, "'status' must be certified or revoked");
    e->revoked = rc == 0 && strcmp(status, "revoked") == 0;
    if (rc == 0)
        rc = str_field(o, "level", where, 1, 15, e->level, sizeof e->level, err);
    if (rc == 0 && strcmp(e->level, "research") != 0 && strcmp(e->level, "clinical") != 0)
        rc = bad(err, where, "'level' must be research or clinical");
    if (rc == 0)
        rc = hash_field(o, "plugin", where, e->plugin_sha, &e->plugin_size, AGORA__TRUST_PLUGIN_MAX,
                        err);
    if (rc == 0)
        rc = hash_field(o, "manifest", where, e->manifest_sha, &e->manifest_size,
                        AGORA__TRUST_MANIFEST_MAX, err);
    if (rc == 0)
        rc = parse_assets(json_object_get(o, "assets"), where, e, err);
    e->has_report = json_object_get(o, "certification_report") != NULL;
    if (rc == 0 && e->has_report)
        rc = hash_field(o, "certification_report", where, e->report_sha, &e->report_size,
                        AGORA__CERT_REPORT_PIN_MAX, err);
    if (rc != 0)
        return rc;
    json_t *g = json_object_get(o, "granted");
    if (!json_is_array(g) || json_array_size(g) > AGORA__OPT_COUNT)
        return bad(err, where, "'granted' must be a list of PS3.15 option names");
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v)
    {
        uint32_t bit;
        if (!json_is_string(v) || agora__trust_option_parse(json_string_value(v), &bit) != 0)
            return bad(err, where, "'granted' holds an unknown option; upgrade agora");
        e->granted |= bit;
    }
    json_t *p = json_object_get(o, "pricing");
    char psub[96];
    snprintf(psub, sizeof psub, "%s.pricing", where);
    if (!json_is_object(p))
        return bad(err, psub, "must be an object");
    uint64_t price, bps;
    rc = keys_known(p, psub, pkeys, err);
    if (rc == 0)
        rc = str_field(p, "model", psub, 1, 15, e->pricing.model, sizeof e->pricing.model, err);
    if (rc == 0 && !agora__pricing_model_valid(e->pricing.model))
        rc = bad(err, psub, "'model' is unknown");
    if (rc == 0)
        rc = int_field(p, "price", psub, 0, 1000000000000ull, &price, err);
    if (rc == 0)
        rc = str_field(p, "currency", psub, 3, 3, e->pricing.currency, sizeof e->pricing.currency,
                       err);
    if (rc == 0 && !agora__currency_valid(e->pricing.currency))
        rc = bad(err, psub, "'currency' must be an ISO 4217 code");
    if (rc == 0)
        rc = int_field(p, "vendor_share_bps", psub, 0, 10000, &bps, err);
    if (rc != 0)
        return rc;
    e->pricing.price_minor = price;
    e->pricing.vendor_share_bps = (uint32_t)bps;
    rc = time_field(o, "certified", where, &e->certified_at, err);
    if (rc == 0 && json_object_get(o, "vendor_key_id") != NULL) {
        rc = str_field(o, "vendor_key_id", where, 16, 16, e->vendor_key_id, sizeof e->vendor_key_id,
                       err);
        if (rc == 0 && strspn(e->vendor_key_id, "0123456789abcdef") != 16)
            rc = bad(err, where, "'vendor_key_id' must be 16 hex digits");
    }
    if (rc != 0)
        return rc;
    json_t *r = json_object_get(o, "revocation");
    if (e->revoked != (r != NULL))
        return bad(err, where, "'revocation' must be present exactly when status is revoked");
    if (r != NULL) {
        static const char *const rkeys[] = {"time", "reason", NULL};
        char rsub[96];
        snprintf(rsub, sizeof rsub, "%s.revocation", where);
        if (!json_is_object(r))
            return bad(err, rsub, "must be an object");
        rc = keys_known(r, rsub, rkeys, err);
        if (rc == 0)
            rc = time_field(r, "time", rsub, &e->revoked_at, err);
        if (rc == 0)
            rc = str_field(r, "reason", rsub, 1, AGORA__TRUST_REASON_MAX, e->reason,
                           sizeof e->reason, err);
    }
    return rc;
}

/* "vendors" (optional): names unique, 1..AGORA__VENDOR_KEYS_MAX keys each, no key twice. */
static int parse_vendors(json_t *a, agora__catalog *c, agora__error *err)
{
    static const char *const keys[] = {"name", "keys", NULL};
    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > AGORA__CATALOG_VENDORS_MAX)
        return bad(err, ".vendors", "must be a list of 1..1000 {name, keys}");
    c->vendors = calloc(json_array_size(a), sizeof *c->vendors);
    if (c->vendors == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory reading the catalog");
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *o = json_array_get(a, i);
        char where[64];
        snprintf(where, sizeof where, ".vendors[%zu]", i);
        agora__cat_vendor *v = &c->vendors[i];
        if (!json_is_object(o))
            return bad(err, where, "must be an object");
        int rc = keys_known(o, where, keys, err);
        if (rc == 0)
            rc =
                str_field(o, "name", where, 1, AGORA__TRUST_NAME_MAX, v->name, sizeof v->name, err);
        if (rc != 0)
            return rc;
        json_t *k = json_object_get(o, "keys");
        if (!json_is_array(k) || json_array_size(k) == 0 ||
            json_array_size(k) > AGORA__VENDOR_KEYS_MAX)
            return bad(err, where, "'keys' must be a list of 1..8 public keys (64 hex)");
        for (size_t j = 0; j < json_array_size(k); j++) {
            json_t *x = json_array_get(k, j);
            if (!json_is_string(x) || json_string_length(x) != 64 ||
                strspn(json_string_value(x), "0123456789abcdef") != 64 ||
                agora__unhex(json_string_value(x), v->keys[j].pk, 32) != 0)
                return bad(err, where, "'keys' must be a list of 1..8 public keys (64 hex)");
            agora__key_id(v->keys[j].pk, v->keys[j].id);
            for (size_t m = 0; m < j; m++)
                if (memcmp(v->keys[m].pk, v->keys[j].pk, 32) == 0)
                    return bad(err, where, "'keys' lists a key twice");
        }
        v->n_keys = (uint32_t)json_array_size(k);
        if (vendor_find(c, v->name) != NULL)
            return bad(err, where, "'name' repeats a vendor");
        c->n_vendors++;
    }
    return 0;
}

int agora__catalog_parse(const uint8_t *buf, size_t len, agora__catalog *c, agora__error *err)
{
    static const char *const keys[] = {"format", "version", "issued",  "expires",
                                       "key_id", "entries", "vendors", NULL};
    memset(c, 0, sizeof *c);
    if (len > AGORA__CATALOG_MAX)
        return bad(err, "", "larger than 16 MiB");
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return agora__error_set(err, AGORA_EINVAL, "catalog is not valid JSON (line %d: %.100s)",
                                jerr.line, jerr.text);
    int rc = 0;
    char format[32];
    if (!json_is_object(root)) {
        rc = bad(err, "", "must be a JSON object");
        goto out;
    }
    rc = keys_known(root, "", keys, err);
    if (rc == 0)
        rc = str_field(root, "format", "", 1, 31, format, sizeof format, err);
    if (rc == 0 && strcmp(format, CATALOG_FORMAT) != 0)
        rc = bad(err, ".format", "is not " CATALOG_FORMAT "; upgrade agora");
    if (rc == 0)
        rc = int_field(root, "version", "", 1, VERSION_MAX, &c->version, err);
    if (rc == 0)
        rc = time_field(root, "issued", "", &c->issued, err);
    if (rc == 0)
        rc = time_field(root, "expires", "", &c->expires, err);
    if (rc == 0)
        rc = str_field(root, "key_id", "", 16, 16, c->key_id, sizeof c->key_id, err);
    if (rc != 0)
        goto out;
    json_t *entries = json_object_get(root, "entries");
    if (!json_is_array(entries) || json_array_size(entries) > AGORA__CATALOG_ENTRIES_MAX) {
        rc = bad(err, ".entries", "must be a list of at most 10000 entries");
        goto out;
    }
    size_t n = json_array_size(entries);
    if (n > 0) {
        c->entries = calloc(n, sizeof *c->entries);
        if (c->entries == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory reading the catalog");
            goto out;
        }
        c->cap = n;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = parse_entry(json_array_get(entries, i), i, &c->entries[i], err);
        if (rc == 0 && agora__catalog_find(c, c->entries[i].id, c->entries[i].version) != NULL)
            rc = bad(err, ".entries", "lists the same id@version twice");
        if (rc == 0)
            c->n++;
    }
    if (rc == 0)
        rc = parse_vendors(json_object_get(root, "vendors"), c, err);
out:
    json_decref(root);
    if (rc != 0)
        agora__catalog_free(c);
    return rc;
}
