/* Manifest validation: the rules of schemas/manifest.schema.json, checked by hand with jansson so
 * that every refusal names the field ("manifest.resources.memory_mb: must be ..."). The manifest is
 * read without executing plugin code; it is untrusted input from the vendor. */
#include "trust_int.h"

#include <jansson.h>
#include <string.h>

#define MIN_FRAMES_DEFAULT 1u
#define MAX_FRAMES_LIMIT   100000u

static int fail(agora__error *err, const char *field, const char *what)
{
    return agora__error_set(err, AGORA_EINVAL, "manifest.%s: %s", field, what);
}

/* Allowed keys only (additionalProperties: false). */
static int only_keys(json_t *obj, const char *where, const char *const *keys, agora__error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        int known = 0;
        for (size_t i = 0; keys[i] != NULL; i++)
            if (strcmp(k, keys[i]) == 0)
                known = 1;
        if (!known) {
            char field[160];
            snprintf(field, sizeof field, "%s%s%.64s", where, where[0] ? "." : "", k);
            return fail(err, field, "unknown field; remove it (see schemas/manifest.schema.json)");
        }
    }
    return 0;
}

/* A string of 1..max bytes (min_len may be 0), valid UTF-8 without control characters. */
static int get_string(json_t *obj, const char *key, const char *field, int required, size_t min_len,
                      size_t max_len, char *out, size_t out_size, agora__error *err)
{
    json_t *v = json_object_get(obj, key);
    char what[96];
    out[0] = '\0';
    if (v == NULL) {
        if (!required)
            return 0;
        return fail(err, field, "is required");
    }
    snprintf(what, sizeof what, "must be a string of %zu..%zu bytes (UTF-8, no control chars)",
             min_len, max_len);
    if (!json_is_string(v))
        return fail(err, field, what);
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len < min_len || len > max_len || !agora__utf8_valid(s, len) || len + 1 > out_size)
        return fail(err, field, what);
    memcpy(out, s, len + 1);
    return 0;
}

static int get_uint(json_t *obj, const char *key, const char *field, int required, uint64_t lo,
                    uint64_t hi, uint64_t dflt, uint64_t *out, agora__error *err)
{
    json_t *v = json_object_get(obj, key);
    char what[96];
    if (v == NULL) {
        if (!required) {
            *out = dflt;
            return 0;
        }
        return fail(err, field, "is required");
    }
    snprintf(what, sizeof what, "must be an integer %llu..%llu", (unsigned long long)lo,
             (unsigned long long)hi);
    if (!json_is_integer(v))
        return fail(err, field, what);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
        return fail(err, field, what);
    *out = (uint64_t)x;
    return 0;
}

static int is_cs_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ' ';
}

/* A list of DICOM code strings (upper case, digits, '_', ' '; 1..16 chars), unique. */
static int get_cs_list(json_t *arr, const char *field, int allow_star, char out[][17], uint32_t *n,
                       int *star, agora__error *err)
{
    char what[160];
    snprintf(what, sizeof what,
             "must be a list of 1..%d unique DICOM code strings (A-Z 0-9 _ space, 1..16 chars)%s",
             AGORA__TRUST_LIST_MAX, allow_star ? " or [\"*\"]" : "");
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > AGORA__TRUST_LIST_MAX)
        return fail(err, field, what);
    *n = 0;
    if (star != NULL)
        *star = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return fail(err, field, what);
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (allow_star && strcmp(s, "*") == 0 && len == 1) {
            if (json_array_size(arr) != 1)
                return fail(err, field, "\"*\" must be the only item when present");
            *star = 1;
            return 0;
        }
        if (len < 1 || len > 16 || strlen(s) != len)
            return fail(err, field, what);
        for (size_t j = 0; j < len; j++)
            if (!is_cs_char(s[j]))
                return fail(err, field, what);
        for (uint32_t j = 0; j < *n; j++)
            if (strcmp(out[j], s) == 0)
                return fail(err, field, "has a duplicate item");
        memcpy(out[*n], s, len + 1);
        (*n)++;
    }
    return 0;
}

static int parse_inputs(json_t *in, agora__manifest *m, agora__error *err)
{
    static const char *const keys[] = {"modalities", "body_parts", "min_frames",
                                       "max_frames", "scope",      NULL};
    if (!json_is_object(in))
        return fail(err, "inputs",
                    "must be an object with modalities (and optionally "
                    "body_parts, min_frames, max_frames)");
    int rc = only_keys(in, "inputs", keys, err);
    if (rc != 0)
        return rc;
    json_t *mods = json_object_get(in, "modalities");
    if (mods == NULL)
        return fail(err, "inputs.modalities", "is required (use [\"*\"] for any modality)");
    rc = get_cs_list(mods, "inputs.modalities", 1, m->modalities, &m->n_modalities,
                     &m->any_modality, err);
    if (rc != 0)
        return rc;
    json_t *bp = json_object_get(in, "body_parts");
    if (bp != NULL) {
        rc = get_cs_list(bp, "inputs.body_parts", 0, m->body_parts, &m->n_body_parts, NULL, err);
        if (rc != 0)
            return rc;
    }
    uint64_t lo, hi;
    rc = get_uint(in, "min_frames", "inputs.min_frames", 0, 1, MAX_FRAMES_LIMIT, MIN_FRAMES_DEFAULT,
                  &lo, err);
    if (rc == 0)
        rc = get_uint(in, "max_frames", "inputs.max_frames", 0, 1, MAX_FRAMES_LIMIT,
                      MAX_FRAMES_LIMIT, &hi, err);
    if (rc != 0)
        return rc;
    if (hi < lo)
        return fail(err, "inputs.max_frames", "must be >= inputs.min_frames");
    m->min_frames = (uint32_t)lo;
    m->max_frames = (uint32_t)hi;
    json_t *scope = json_object_get(in, "scope");
    if (scope != NULL) {
        const char *sc = json_string_value(scope);
        if (sc == NULL || (strcmp(sc, "series") != 0 && strcmp(sc, "study") != 0))
            return fail(err, "inputs.scope", "must be \"series\" or \"study\"");
        m->study_scope = strcmp(sc, "study") == 0;
        /* abi is parsed before inputs */
        if (m->study_scope && m->abi_major == 1 && m->abi_minor < 1)
            return fail(err, "inputs.scope",
                        "\"study\" needs \"abi\": \"1.1\" or newer (extension "
                        "org.agora.study/1)");
    }
    return 0;
}

static int parse_permissions(json_t *p, agora__manifest *m, agora__error *err)
{
    const char *what = "must be a list of unique PS3.15 option names: rtnPatCharsOpt, "
                       "rtnDevIdOpt, rtnInstIdOpt, rtnLongFullDatesOpt, rtnLongModifDatesOpt, "
                       "cleanDescOpt";
    if (p == NULL)
        return 0;
    if (!json_is_array(p) || json_array_size(p) > AGORA__OPT_COUNT)
        return fail(err, "permissions", what);
    size_t i;
    json_t *v;
    json_array_foreach(p, i, v)
    {
        uint32_t bit;
        if (!json_is_string(v) || agora__trust_option_parse(json_string_value(v), &bit) != 0)
            return fail(err, "permissions", what);
        if (m->permissions & bit)
            return fail(err, "permissions", "has a duplicate item");
        m->permissions |= bit;
    }
    return 0;
}

static int parse_resources(json_t *r, agora__manifest *m, agora__error *err)
{
    static const char *const keys[] = {"memory_mb", "time_s", "threads", NULL};
    if (!json_is_object(r))
        return fail(err, "resources", "must be an object with memory_mb, time_s, threads");
    int rc = only_keys(r, "resources", keys, err);
    uint64_t mem = 0, t = 0, th = 0;
    if (rc == 0)
        rc = get_uint(r, "memory_mb", "resources.memory_mb", 1, 16, 65536, 0, &mem, err);
    if (rc == 0)
        rc = get_uint(r, "time_s", "resources.time_s", 1, 1, 86400, 0, &t, err);
    if (rc == 0)
        rc = get_uint(r, "threads", "resources.threads", 1, 1, 64, 0, &th, err);
    m->memory_mb = (uint32_t)mem;
    m->time_s = (uint32_t)t;
    m->threads = (uint32_t)th;
    return rc;
}

static int parse_outputs(json_t *o, agora__manifest *m, agora__error *err)
{
    const char *what =
        "must be a non-empty list of unique items: findings, measurements, regions, masks, summary";
    if (!json_is_array(o) || json_array_size(o) == 0 || json_array_size(o) > AGORA__OUT_COUNT)
        return fail(err, "outputs", what);
    size_t i;
    json_t *v;
    json_array_foreach(o, i, v)
    {
        uint32_t bit = 0;
        for (unsigned j = 0; j < AGORA__OUT_COUNT && json_is_string(v); j++)
            if (strcmp(json_string_value(v), agora__output_name(j)) == 0)
                bit = 1u << j;
        if (bit == 0)
            return fail(err, "outputs", what);
        if (m->outputs & bit)
            return fail(err, "outputs", "has a duplicate item");
        m->outputs |= bit;
    }
    return 0;
}

static int parse_pricing(json_t *p, agora__manifest *m, agora__error *err)
{
    static const char *const keys[] = {"model", "price", "currency", NULL};
    if (p == NULL)
        return 0;
    if (!json_is_object(p))
        return fail(err, "pricing", "must be an object with model, price, currency");
    int rc = only_keys(p, "pricing", keys, err);
    if (rc == 0)
        rc = get_string(p, "model", "pricing.model", 1, 1, 15, m->pricing_model,
                        sizeof m->pricing_model, err);
    if (rc != 0)
        return rc;
    if (!agora__pricing_model_valid(m->pricing_model))
        return fail(err, "pricing.model",
                    "must be one of per-study, per-series, per-instance, subscription, free");
    uint64_t price;
    rc = get_uint(p, "price", "pricing.price", 1, 0, 1000000000000ull, 0, &price, err);
    if (rc == 0)
        rc = get_string(p, "currency", "pricing.currency", 1, 3, 3, m->pricing_currency,
                        sizeof m->pricing_currency, err);
    if (rc != 0)
        return rc;
    if (!agora__currency_valid(m->pricing_currency))
        return fail(err, "pricing.currency", "must be an ISO 4217 code like EUR");
    if (strcmp(m->pricing_model, "free") == 0 && price != 0)
        return fail(err, "pricing.price", "must be 0 for the free model");
    m->pricing_price_minor = price;
    m->has_pricing = 1;
    return 0;
}

/* "assets": [{"name": "model.onnx"}, ...]: the files the bundle carries (issue 10). Optional. */
static int parse_assets(json_t *a, agora__manifest *m, agora__error *err)
{
    if (a == NULL)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "must be an array of at most %u objects {\"name\": NAME}",
             AGORA__ASSETS_MAX);
    if (!json_is_array(a) || json_array_size(a) > AGORA__ASSETS_MAX)
        return fail(err, "assets", what);
    static const char *const keys[] = {"name", NULL};
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *o = json_array_get(a, i);
        char where[32];
        snprintf(where, sizeof where, "assets[%zu]", i);
        if (!json_is_object(o))
            return fail(err, where, "must be an object {\"name\": NAME}");
        int rc = only_keys(o, where, keys, err);
        char field[48];
        snprintf(field, sizeof field, "%s.name", where);
        if (rc == 0)
            rc = get_string(o, "name", field, 1, 1, AGORA__ASSET_NAME_MAX, m->assets[i],
                            sizeof m->assets[i], err);
        if (rc != 0)
            return rc;
        if (!agora__asset_name_valid(m->assets[i]))
            return fail(err, field,
                        "must be 1..128 bytes of [A-Za-z0-9._-], not starting with '.' (a file "
                        "name like model.onnx)");
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->assets[k], m->assets[i]) == 0)
                return fail(err, field, "names an asset twice; each name must be unique");
        m->n_assets = (uint32_t)i + 1;
    }
    return 0;
}

int agora__manifest_asset_index(const agora__manifest *m, const char *name)
{
    for (uint32_t i = 0; i < m->n_assets; i++)
        if (strcmp(m->assets[i], name) == 0)
            return (int)i;
    return -1;
}

int agora__manifest_parse(const uint8_t *buf, size_t len, agora__manifest *m, agora__error *err)
{
    static const char *const keys[] = {"id",        "name",        "vendor",  "version",
                                       "abi",       "description", "inputs",  "permissions",
                                       "resources", "outputs",     "pricing", "assets",
                                       NULL};
    memset(m, 0, sizeof *m);
    if (len > AGORA__TRUST_MANIFEST_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "manifest is %zu bytes, more than the %zu allowed; shorten it", len,
                                AGORA__TRUST_MANIFEST_MAX);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "manifest is not valid JSON (line %d column %d: %.120s); fix it",
                                jerr.line, jerr.column, jerr.text);
    int rc;
    if (!json_is_object(root)) {
        rc = agora__error_set(err, AGORA_EINVAL, "manifest: must be a JSON object");
        goto out;
    }
    rc = only_keys(root, "", keys, err);
    if (rc == 0)
        rc = get_string(root, "id", "id", 1, 3, AGORA__TRUST_ID_MAX, m->id, sizeof m->id, err);
    if (rc == 0 && !agora__reverse_dns_valid(m->id))
        rc = fail(err, "id", "must be a lower-case reverse-DNS name like com.example.nodules");
    if (rc == 0)
        rc = get_string(root, "name", "name", 1, 1, AGORA__TRUST_NAME_MAX, m->name, sizeof m->name,
                        err);
    if (rc == 0)
        rc = get_string(root, "vendor", "vendor", 1, 1, AGORA__TRUST_NAME_MAX, m->vendor,
                        sizeof m->vendor, err);
    if (rc == 0)
        rc = get_string(root, "version", "version", 1, 5, AGORA__TRUST_VERSION_MAX, m->version,
                        sizeof m->version, err);
    if (rc == 0 && !agora__semver_valid(m->version))
        rc = fail(err, "version", "must be a semantic version like 1.2.0");
    char abi[16];
    if (rc == 0)
        rc = get_string(root, "abi", "abi", 1, 3, 11, abi, sizeof abi, err);
    if (rc == 0) {
        unsigned maj = 0, min = 0;
        size_t dot = strspn(abi, "0123456789");
        size_t tail = abi[dot] == '.' ? strspn(abi + dot + 1, "0123456789") : 0;
        if (dot < 1 || dot > 5 || tail < 1 || tail > 5 || abi[dot + 1 + tail] != '\0')
            rc = fail(err, "abi", "must be \"MAJOR.MINOR\" like \"1.0\"");
        else if (sscanf(abi, "%u.%u", &maj, &min) != 2)
            rc = fail(err, "abi", "must be \"MAJOR.MINOR\" like \"1.0\"");
        m->abi_major = maj;
        m->abi_minor = min;
    }
    if (rc == 0)
        rc = get_string(root, "description", "description", 0, 0, AGORA__TRUST_DESC_MAX,
                        m->description, sizeof m->description, err);
    if (rc == 0) {
        json_t *in = json_object_get(root, "inputs");
        rc = in == NULL ? fail(err, "inputs", "is required") : parse_inputs(in, m, err);
    }
    if (rc == 0)
        rc = parse_permissions(json_object_get(root, "permissions"), m, err);
    if (rc == 0) {
        json_t *r = json_object_get(root, "resources");
        rc = r == NULL ? fail(err, "resources", "is required") : parse_resources(r, m, err);
    }
    if (rc == 0) {
        json_t *o = json_object_get(root, "outputs");
        rc = o == NULL ? fail(err, "outputs", "is required") : parse_outputs(o, m, err);
    }
    if (rc == 0)
        rc = parse_pricing(json_object_get(root, "pricing"), m, err);
    if (rc == 0)
        rc = parse_assets(json_object_get(root, "assets"), m, err);
out:
    json_decref(root);
    if (rc != 0)
        memset(m, 0, sizeof *m);
    return rc;
}
