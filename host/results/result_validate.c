/*
 * The host-side validator of result documents (worker and stored forms). It enforces what
 * schemas/result.schema.json says — types, required and unknown fields, bounds, UTF-8, finite
 * numbers, UCUM syntax, counts — plus the cross-references a schema cannot express (region
 * ids unique and referenced ids existing, frames of a stored result all resolved). Messages
 * start with the JSON pointer of the field; they quote no values (values may be PHI).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "results_private.h"

typedef struct vctx {
    char path[256];
    size_t len;
    agora__error *err;
    size_t total_points;
    agora__results_frames *frames; /* frame indices referenced */
} vctx;

static size_t push(vctx *c, const char *key)
{
    size_t old = c->len;
    int n = snprintf(c->path + c->len, sizeof c->path - c->len, "/%s", key);
    if (n > 0 && (size_t)n < sizeof c->path - c->len)
        c->len += (size_t)n;
    return old;
}

static size_t push_index(vctx *c, size_t i)
{
    char b[24];
    snprintf(b, sizeof b, "%zu", i);
    return push(c, b);
}

static void pop(vctx *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

__attribute__((format(printf, 3, 4))) static int fail(vctx *c, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return agora__error_set(c->err, code, "%s: %s", c->len ? c->path : "/", msg);
}

/* Only known fields: fail closed on anything the schema does not define. */
static int only_fields(vctx *c, const json_t *o, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, k) == 0;
        if (!ok) {
            int printable = strlen(k) <= 40;
            for (const char *p = k; *p && printable; p++)
                printable = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                            (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
            return fail(c, AGORA_EINVAL, "unknown field '%s'; remove it (the schema is closed)",
                        printable ? k : "(unprintable)");
        }
    }
    return 0;
}

enum { TEXT, TOKEN, CODE };

static int check_string(vctx *c, const json_t *v, size_t min, size_t max, int kind)
{
    if (!json_is_string(v))
        return fail(c, AGORA_EINVAL, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < min || n > max)
        return fail(c, AGORA_ELIMIT, "must be %zu..%zu bytes long", min, max);
    if (!agora__utf8_valid(s, n))
        return fail(c, AGORA_EINVAL, "must be UTF-8 without NUL or control characters");
    for (size_t i = 0; i < n && kind != TEXT; i++) {
        unsigned char ch = (unsigned char)s[i];
        int ok = kind == TOKEN ? ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
                                  ch == '+')
                               : (ch > 0x20 && ch < 0x7f);
        if (!ok)
            return fail(c, AGORA_EINVAL,
                        kind == TOKEN ? "must use only [A-Za-z0-9._+-]"
                                      : "must be printable ASCII without spaces");
    }
    return 0;
}

static int field_string(vctx *c, const json_t *o, const char *key, int required, size_t min,
                        size_t max, int kind)
{
    const json_t *v = json_object_get(o, key);
    size_t old = push(c, key);
    int rc = 0;
    if (v == NULL)
        rc = required ? fail(c, AGORA_EINVAL, "is required") : 0;
    else
        rc = check_string(c, v, min, max, kind);
    pop(c, old);
    return rc;
}

/* Integer in [min,max]; null allowed when nullable. *out gets the value (-1 for null/absent). */
static int field_int(vctx *c, const json_t *o, const char *key, int required, int nullable,
                     json_int_t min, json_int_t max, json_int_t *out)
{
    const json_t *v = json_object_get(o, key);
    size_t old = push(c, key);
    int rc = 0;
    if (out)
        *out = -1;
    if (v == NULL) {
        rc = required ? fail(c, AGORA_EINVAL, "is required") : 0;
    } else if (json_is_null(v)) {
        rc = nullable ? 0 : fail(c, AGORA_EINVAL, "must not be null");
    } else if (!json_is_integer(v)) {
        rc = fail(c, AGORA_EINVAL, "must be an integer");
    } else if (json_integer_value(v) < min || json_integer_value(v) > max) {
        rc = fail(c, AGORA_ELIMIT, "must be in [%lld, %lld]", (long long)min, (long long)max);
    } else if (out) {
        *out = json_integer_value(v);
    }
    pop(c, old);
    return rc;
}

static int check_number(vctx *c, const json_t *v, double min, double max)
{
    if (!json_is_number(v))
        return fail(c, AGORA_EINVAL, "must be a number");
    double d = json_number_value(v);
    if (!isfinite(d))
        return fail(c, AGORA_EINVAL, "must be a finite number");
    if (d < min || d > max)
        return fail(c, AGORA_ELIMIT, "must be in [%g, %g]", min, max);
    return 0;
}

static void note_frame(vctx *c, json_int_t f)
{
    if (f >= 0 && f <= AGORA__RESULTS_MAX_FRAME && c->frames)
        c->frames->bits[f / 8] |= (uint8_t)(1u << (f % 8));
}

static int check_code(vctx *c, const json_t *o, const char *key, int required)
{
    const json_t *v = json_object_get(o, key);
    size_t old = push(c, key);
    int rc = 0;
    if (v == NULL) {
        rc = required ? fail(c, AGORA_EINVAL, "is required") : 0;
    } else if (!json_is_object(v)) {
        rc = fail(c, AGORA_EINVAL, "must be an object {scheme, code, meaning}");
    } else {
        static const char *const f[] = {"scheme", "code", "meaning", NULL};
        rc = only_fields(c, v, f);
        if (rc == 0)
            rc = field_string(c, v, "scheme", 1, 1, AGORA__RESULT_SCHEME_MAX, TOKEN);
        if (rc == 0)
            rc = field_string(c, v, "code", 1, 1, AGORA__RESULT_CODE_MAX, CODE);
        if (rc == 0)
            rc = field_string(c, v, "meaning", 1, 1, AGORA__RESULT_MEANING_MAX, TEXT);
    }
    pop(c, old);
    return rc;
}

static int array_field(vctx *c, const json_t *doc, const char *key, int required, size_t max,
                       const json_t **out)
{
    const json_t *v = json_object_get(doc, key);
    *out = v;
    size_t old = push(c, key);
    int rc = 0;
    if (v == NULL)
        rc = required ? fail(c, AGORA_EINVAL, "is required") : 0;
    else if (!json_is_array(v))
        rc = fail(c, AGORA_EINVAL, "must be an array");
    else if (json_array_size(v) > max)
        rc = fail(c, AGORA_ELIMIT, "has %zu entries, more than the %zu allowed", json_array_size(v),
                  max);
    pop(c, old);
    return rc;
}

/* region reference: null/absent or an id present in the regions array. */
static int check_region_ref(vctx *c, const json_t *o, const json_t *regions)
{
    json_int_t id;
    int rc = field_int(c, o, "region", 0, 1, 1, INT32_MAX, &id);
    if (rc != 0 || id < 0)
        return rc;
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)regions, i, r)
    {
        if (json_integer_value(json_object_get(r, "id")) == id)
            return 0;
    }
    size_t old = push(c, "region");
    rc = fail(c, AGORA_EINVAL, "names no region of this result");
    pop(c, old);
    return rc;
}

static int check_frame(vctx *c, const json_t *o, int required, int nullable)
{
    json_int_t f;
    int rc = field_int(c, o, "frame", required, nullable, 0, AGORA__RESULTS_MAX_FRAME, &f);
    if (rc == 0)
        note_frame(c, f);
    return rc;
}

static int check_point(vctx *c, const json_t *p)
{
    if (!json_is_array(p) || json_array_size(p) != 2)
        return fail(c, AGORA_EINVAL, "must be a point [x, y]");
    for (size_t k = 0; k < 2; k++) {
        size_t old = push_index(c, k);
        int rc = check_number(c, json_array_get(p, k), -AGORA__RESULT_COORD_MAX,
                              AGORA__RESULT_COORD_MAX);
        pop(c, old);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_mask(vctx *c, const json_t *m, json_int_t frame)
{
    if (!json_is_object(m))
        return fail(c, AGORA_EINVAL, "must be an object");
    static const char *const f[] = {"first_frame", "frames", "rows", "columns",
                                    "bits",        "sha256", NULL};
    json_int_t first, frames, bits;
    int rc = only_fields(c, m, f);
    if (rc == 0)
        rc = field_int(c, m, "first_frame", 1, 0, 0, AGORA__RESULTS_MAX_FRAME, &first);
    if (rc == 0)
        rc = field_int(c, m, "frames", 1, 0, 1, AGORA__RESULT_MASK_FRAMES_MAX, &frames);
    if (rc == 0)
        rc = field_int(c, m, "rows", 1, 0, 1, AGORA__RESULT_MASK_ROWS_MAX, NULL);
    if (rc == 0)
        rc = field_int(c, m, "columns", 1, 0, 1, AGORA__RESULT_MASK_COLUMNS_MAX, NULL);
    if (rc == 0)
        rc = field_int(c, m, "bits", 1, 0, 1, AGORA__RESULT_MASK_BITS_MAX, &bits);
    if (rc == 0 && !AGORA__RESULT_MASK_BITS_OK(bits)) {
        size_t old = push(c, "bits");
        rc = fail(c, AGORA_EINVAL, "must be %s", AGORA__RESULT_MASK_BITS_TEXT);
        pop(c, old);
    }
    if (rc == 0 && first + frames - 1 > AGORA__RESULTS_MAX_FRAME) {
        size_t old = push(c, "frames");
        rc = fail(c, AGORA_ELIMIT, "runs past frame %d", AGORA__RESULTS_MAX_FRAME);
        pop(c, old);
    }
    if (rc == 0 && frame >= 0 && (frame < first || frame >= first + frames)) {
        rc = fail(c, AGORA_EINVAL, "region frame lies outside the mask's frames");
    }
    if (rc == 0)
        rc = field_string(c, m, "sha256", 1, 64, 64, TOKEN);
    if (rc == 0) {
        const char *h = json_string_value(json_object_get(m, "sha256"));
        for (; *h && rc == 0; h++)
            if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f'))) {
                size_t old = push(c, "sha256");
                rc = fail(c, AGORA_EINVAL, "must be 64 lower-case hex digits");
                pop(c, old);
            }
    }
    if (rc == 0 && agora__results_mask_bytes(m) > AGORA__RESULTS_MAX_MASK_BYTES)
        rc = fail(c, AGORA_ELIMIT, "mask is larger than %zu bytes",
                  (size_t)AGORA__RESULTS_MAX_MASK_BYTES);
    for (json_int_t fr = first; rc == 0 && fr < first + frames; fr++)
        note_frame(c, fr);
    return rc;
}

static int check_region(vctx *c, const json_t *r)
{
    if (!json_is_object(r))
        return fail(c, AGORA_EINVAL, "must be an object");
    static const char *const f[] = {"id", "kind", "frame", "points", "label", "mask", NULL};
    int rc = only_fields(c, r, f);
    json_int_t frame;
    if (rc == 0)
        rc = field_int(c, r, "id", 1, 0, 1, INT32_MAX, NULL);
    if (rc == 0)
        rc = field_int(c, r, "frame", 1, 0, 0, AGORA__RESULTS_MAX_FRAME, &frame);
    if (rc == 0)
        note_frame(c, frame);
    if (rc == 0)
        rc = field_string(c, r, "kind", 1, 1, 16, TOKEN);
    if (rc == 0)
        rc = field_string(c, r, "label", 0, 0, AGORA__RESULT_LABEL_MAX, TEXT);
    if (rc != 0)
        return rc;
    const char *kind = json_string_value(json_object_get(r, "kind"));
    size_t min, max;
    int is_mask = 0;
    if (strcmp(kind, "point") == 0)
        min = max = 1;
    else if (strcmp(kind, "box") == 0)
        min = max = 2;
    else if (strcmp(kind, "polygon") == 0)
        min = 3, max = AGORA__RESULTS_MAX_POINTS;
    else if (strcmp(kind, "mask") == 0)
        min = max = 0, is_mask = 1;
    else {
        size_t old = push(c, "kind");
        rc = fail(c, AGORA_EINVAL, "must be point, box, polygon or mask");
        pop(c, old);
        return rc;
    }
    const json_t *pts = json_object_get(r, "points");
    size_t old = push(c, "points");
    if (pts == NULL && !is_mask)
        rc = fail(c, AGORA_EINVAL, "is required");
    else if (pts != NULL && !json_is_array(pts))
        rc = fail(c, AGORA_EINVAL, "must be an array of [x, y]");
    else if (pts != NULL && (json_array_size(pts) < min || json_array_size(pts) > max))
        rc = fail(c, AGORA_ELIMIT, "a %s needs %zu..%zu points", kind, min, max);
    else if (pts != NULL) {
        c->total_points += json_array_size(pts);
        if (c->total_points > AGORA__RESULTS_MAX_TOTAL_POINTS)
            rc = fail(c, AGORA_ELIMIT, "the result has more than %d points in all",
                      AGORA__RESULTS_MAX_TOTAL_POINTS);
        size_t i;
        json_t *p;
        json_array_foreach((json_t *)pts, i, p)
        {
            if (rc != 0)
                break;
            size_t o2 = push_index(c, i);
            rc = check_point(c, p);
            pop(c, o2);
        }
    }
    pop(c, old);
    if (rc != 0)
        return rc;
    const json_t *m = json_object_get(r, "mask");
    old = push(c, "mask");
    if (is_mask && m == NULL)
        rc = fail(c, AGORA_EINVAL, "is required for a mask region");
    else if (!is_mask && m != NULL)
        rc = fail(c, AGORA_EINVAL, "is allowed only for a mask region");
    else if (m != NULL)
        rc = check_mask(c, m, frame);
    pop(c, old);
    return rc;
}

static int check_finding(vctx *c, const json_t *f, const json_t *regions)
{
    if (!json_is_object(f))
        return fail(c, AGORA_EINVAL, "must be an object");
    static const char *const keys[] = {"code", "confidence", "frame", "region", NULL};
    int rc = only_fields(c, f, keys);
    if (rc == 0)
        rc = check_code(c, f, "code", 1);
    if (rc == 0) {
        const json_t *v = json_object_get(f, "confidence");
        size_t old = push(c, "confidence");
        rc = v == NULL ? fail(c, AGORA_EINVAL, "is required") : check_number(c, v, 0.0, 1.0);
        pop(c, old);
    }
    if (rc == 0)
        rc = check_frame(c, f, 0, 1);
    if (rc == 0)
        rc = check_region_ref(c, f, regions);
    return rc;
}

static int check_measurement(vctx *c, const json_t *m, const json_t *regions)
{
    if (!json_is_object(m))
        return fail(c, AGORA_EINVAL, "must be an object");
    static const char *const keys[] = {"name", "value", "unit", "frame", "region", "code", NULL};
    int rc = only_fields(c, m, keys);
    if (rc == 0)
        rc = field_string(c, m, "name", 1, 1, AGORA__RESULT_NAME_MAX, TEXT);
    if (rc == 0) {
        const json_t *v = json_object_get(m, "value");
        size_t old = push(c, "value");
        rc = v == NULL ? fail(c, AGORA_EINVAL, "is required")
                       : check_number(c, v, -AGORA__RESULT_VALUE_MAX, AGORA__RESULT_VALUE_MAX);
        pop(c, old);
    }
    if (rc == 0)
        rc = field_string(c, m, "unit", 1, 1, AGORA__RESULT_UNIT_MAX, CODE);
    if (rc == 0 && !agora__results_ucum_valid(json_string_value(json_object_get(m, "unit")))) {
        size_t old = push(c, "unit");
        rc = fail(c, AGORA_EINVAL, "is not a UCUM unit expression (e.g. mm, mL, mm2, 1, %%)");
        pop(c, old);
    }
    if (rc == 0)
        rc = check_frame(c, m, 0, 1);
    if (rc == 0)
        rc = check_region_ref(c, m, regions);
    if (rc == 0)
        rc = check_code(c, m, "code", 0);
    return rc;
}

static const char *const statuses[] = {
    "ok",        "setup-error",   "policy-violation", "signal",
    "timeout",   "out-of-memory", "protocol-error",   "plugin-error",
    "cancelled", "quarantined",   "input-error",      NULL};

int agora__results_status_known(const char *s)
{
    for (const char *const *p = statuses; *p; p++)
        if (strcmp(*p, s) == 0)
            return 1;
    return 0;
}

static int check_created(vctx *c, const json_t *doc)
{
    int rc = field_string(c, doc, "created", 1, 20, 24, CODE);
    if (rc != 0)
        return rc;
    /* YYYY-MM-DDTHH:MM:SSZ or with .sss: RFC 3339 in UTC. */
    const char *s = json_string_value(json_object_get(doc, "created"));
    const char *pat = strlen(s) == 20 ? "dddd-dd-ddTdd:dd:ddZ" : "dddd-dd-ddTdd:dd:dd.dddZ";
    int ok = strlen(s) == strlen(pat);
    for (size_t i = 0; ok && pat[i]; i++)
        ok = pat[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == pat[i];
    if (!ok) {
        size_t old = push(c, "created");
        rc = fail(c, AGORA_EINVAL, "must be an RFC 3339 UTC time like 2026-11-22T10:00:00Z");
        pop(c, old);
    }
    return rc;
}

static int check_uid_field(vctx *c, const json_t *o, const char *key)
{
    int rc = field_string(c, o, key, 1, 1, 64, CODE);
    if (rc == 0 && !agora__results_uid_valid(json_string_value(json_object_get(o, key)))) {
        size_t old = push(c, key);
        rc = fail(c, AGORA_EINVAL, "is not a DICOM UID");
        pop(c, old);
    }
    return rc;
}

static int check_frames(vctx *c, const json_t *doc, const agora__results_frames *refd)
{
    const json_t *fr;
    int rc = array_field(c, doc, "frames", 1, AGORA__RESULTS_MAX_FRAME + 1, &fr);
    if (rc != 0)
        return rc;
    agora__results_frames have;
    memset(&have, 0, sizeof have);
    size_t old = push(c, "frames");
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)fr, i, e)
    {
        size_t o2 = push_index(c, i);
        static const char *const keys[] = {"frame", "sop_instance_uid", "frame_number",
                                           "series_uid", NULL};
        json_int_t f = -1;
        if (!json_is_object(e))
            rc = fail(c, AGORA_EINVAL, "must be an object");
        if (rc == 0)
            rc = only_fields(c, e, keys);
        if (rc == 0)
            rc = field_int(c, e, "frame", 1, 0, 0, AGORA__RESULTS_MAX_FRAME, &f);
        if (rc == 0)
            rc = check_uid_field(c, e, "sop_instance_uid");
        if (rc == 0)
            rc = field_int(c, e, "frame_number", 1, 0, 1, INT32_MAX, NULL);
        /* study scope: the real series of a frame outside the result's series_uid */
        if (rc == 0 && json_object_get(e, "series_uid") != NULL)
            rc = check_uid_field(c, e, "series_uid");
        if (rc == 0 && (have.bits[f / 8] & (1u << (f % 8))))
            rc = fail(c, AGORA_EINVAL, "frame listed twice");
        if (rc == 0)
            have.bits[f / 8] |= (uint8_t)(1u << (f % 8));
        pop(c, o2);
        if (rc != 0)
            break;
    }
    for (size_t f = 0; rc == 0 && f <= AGORA__RESULTS_MAX_FRAME; f++)
        if ((refd->bits[f / 8] & (1u << (f % 8))) && !(have.bits[f / 8] & (1u << (f % 8))))
            rc = fail(c, AGORA_EINVAL, "frame %zu is referenced but has no SOP instance", f);
    pop(c, old);
    return rc;
}

/* "triage": {"urgent": true, "reason": text} (org.agora.triage/1), only on an ok result. A
 * non-urgent result has no triage member, so there is one way to say "not urgent". */
static int check_triage(vctx *c, const json_t *doc, int ok)
{
    const json_t *t = json_object_get(doc, "triage");
    if (t == NULL)
        return 0;
    static const char *const keys[] = {"urgent", "reason", NULL};
    size_t old = push(c, "triage");
    int rc = 0;
    if (!ok)
        rc = fail(c, AGORA_EINVAL, "is allowed only when status is \"ok\"");
    else if (!json_is_object(t))
        rc = fail(c, AGORA_EINVAL, "must be an object {urgent, reason}");
    if (rc == 0)
        rc = only_fields(c, t, keys);
    if (rc == 0 && !json_is_true(json_object_get(t, "urgent"))) {
        size_t o2 = push(c, "urgent");
        rc = fail(c, AGORA_EINVAL, "must be true (leave triage out when not urgent)");
        pop(c, o2);
    }
    if (rc == 0) {
        const json_t *r = json_object_get(t, "reason");
        const char *s = json_string_value(r);
        size_t o2 = push(c, "reason");
        if (s == NULL || !agora__triage_reason_valid(s, json_string_length(r), 256))
            rc = fail(c, AGORA_EINVAL,
                      "must be 1..256 bytes of UTF-8 without control characters");
        pop(c, o2);
    }
    pop(c, old);
    return rc;
}

int agora__results_validate_frames(const json_t *doc, agora__result_form form,
                                   agora__results_frames *frames, agora__error *err)
{
    vctx c = {.err = err, .frames = frames};
    c.path[0] = '\0';
    if (!json_is_object(doc))
        return fail(&c, AGORA_EINVAL, "a result must be a JSON object");
    static const char *const worker_keys[] = {
        "schema",       "plugin",  "job_id",  "status",  "error", "findings",
        "measurements", "regions", "summary", "metrics", "triage", NULL};
    static const char *const stored_keys[] = {
        "schema",       "plugin",  "job_id",  "status",  "error",         "findings",
        "measurements", "regions", "summary", "metrics", "invocation_id", "study_uid",
        "series_uid",   "frames",  "created", "triage", NULL};
    int rc = only_fields(&c, doc, form == AGORA__RESULT_STORED ? stored_keys : worker_keys);
    if (rc != 0)
        return rc;
    const json_t *schema = json_object_get(doc, "schema");
    if (!json_is_string(schema) || strcmp(json_string_value(schema), "agora.result/1") != 0) {
        size_t old = push(&c, "schema");
        rc = fail(&c, AGORA_EINVAL, "must be \"agora.result/1\"");
        pop(&c, old);
        return rc;
    }
    const json_t *plugin = json_object_get(doc, "plugin");
    size_t old = push(&c, "plugin");
    if (!json_is_object(plugin)) {
        rc = fail(&c, AGORA_EINVAL, "must be an object {id, version}");
    } else {
        static const char *const pk[] = {"id", "version", NULL};
        rc = only_fields(&c, plugin, pk);
        if (rc == 0)
            rc = field_string(&c, plugin, "id", 1, 1, AGORA__RESULT_PLUGIN_ID_MAX, TOKEN);
        if (rc == 0)
            rc = field_string(&c, plugin, "version", 1, 1, AGORA__RESULT_PLUGIN_VERSION_MAX, TOKEN);
    }
    pop(&c, old);
    if (rc == 0)
        rc = field_int(&c, doc, "job_id", 1, 0, 0, (json_int_t)1 << 53, NULL);
    if (rc == 0)
        rc = field_string(&c, doc, "status", 1, 1, 32, TOKEN);
    if (rc != 0)
        return rc;
    const char *status = json_string_value(json_object_get(doc, "status"));
    int ok = strcmp(status, "ok") == 0;
    if (!agora__results_status_known(status)) {
        old = push(&c, "status");
        rc = fail(&c, AGORA_EINVAL, "is not \"ok\" or a known failure classification");
        pop(&c, old);
        return rc;
    }
    if (ok && json_object_get(doc, "error") != NULL) {
        old = push(&c, "error");
        rc = fail(&c, AGORA_EINVAL, "is allowed only when status is not \"ok\"");
        pop(&c, old);
        return rc;
    }
    if ((rc = field_string(&c, doc, "error", !ok, 1, AGORA__RESULT_ERROR_MAX, TEXT)) != 0)
        return rc;
    const json_t *findings, *measurements, *regions;
    if ((rc = array_field(&c, doc, "regions", ok, AGORA__RESULTS_MAX_REGIONS, &regions)) != 0 ||
        (rc = array_field(&c, doc, "findings", ok, AGORA__RESULTS_MAX_FINDINGS, &findings)) != 0 ||
        (rc = array_field(&c, doc, "measurements", ok, AGORA__RESULTS_MAX_MEASUREMENTS,
                          &measurements)) != 0)
        return rc;
    if (!ok &&
        (json_array_size(regions) || json_array_size(findings) || json_array_size(measurements)))
        return fail(&c, AGORA_EINVAL,
                    "a failed result carries no findings, measurements or "
                    "regions");
    size_t i;
    json_t *e;
    old = push(&c, "regions");
    json_array_foreach((json_t *)regions, i, e)
    {
        size_t o2 = push_index(&c, i);
        rc = check_region(&c, e);
        /* ids are unique: a finding's region reference must be unambiguous */
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (json_integer_value(json_object_get(json_array_get(regions, j), "id")) ==
                json_integer_value(json_object_get(e, "id"))) {
                size_t o3 = push(&c, "id");
                rc = fail(&c, AGORA_EINVAL, "repeats the id of region %zu", j);
                pop(&c, o3);
            }
        pop(&c, o2);
        if (rc != 0)
            return rc;
    }
    pop(&c, old);
    old = push(&c, "findings");
    json_array_foreach((json_t *)findings, i, e)
    {
        size_t o2 = push_index(&c, i);
        rc = check_finding(&c, e, regions);
        pop(&c, o2);
        if (rc != 0)
            return rc;
    }
    pop(&c, old);
    old = push(&c, "measurements");
    json_array_foreach((json_t *)measurements, i, e)
    {
        size_t o2 = push_index(&c, i);
        rc = check_measurement(&c, e, regions);
        pop(&c, o2);
        if (rc != 0)
            return rc;
    }
    pop(&c, old);
    if ((rc = field_string(&c, doc, "summary", 0, 0, AGORA__RESULT_SUMMARY_MAX, TEXT)) != 0)
        return rc;
    if ((rc = check_triage(&c, doc, ok)) != 0)
        return rc;
    const json_t *metrics = json_object_get(doc, "metrics");
    if (metrics != NULL) {
        old = push(&c, "metrics");
        static const char *const mk[] = {"wall_ms", "cpu_us", "peak_rss_kb", NULL};
        if (!json_is_object(metrics))
            rc = fail(&c, AGORA_EINVAL, "must be an object");
        if (rc == 0)
            rc = only_fields(&c, metrics, mk);
        for (const char *const *k = mk; rc == 0 && *k; k++)
            rc = field_int(&c, metrics, *k, 0, 0, 0, (json_int_t)1 << 53, NULL);
        pop(&c, old);
        if (rc != 0)
            return rc;
    }
    if (form != AGORA__RESULT_STORED)
        return 0;
    rc = field_string(&c, doc, "invocation_id", 1, 32, 32, TOKEN);
    if (rc == 0) {
        const char *id = json_string_value(json_object_get(doc, "invocation_id"));
        for (; *id && rc == 0; id++)
            if (!((*id >= '0' && *id <= '9') || (*id >= 'a' && *id <= 'f'))) {
                old = push(&c, "invocation_id");
                rc = fail(&c, AGORA_EINVAL, "must be 32 lower-case hex digits");
                pop(&c, old);
            }
    }
    if (rc == 0)
        rc = check_uid_field(&c, doc, "study_uid");
    if (rc == 0)
        rc = check_uid_field(&c, doc, "series_uid");
    if (rc == 0)
        rc = check_created(&c, doc);
    if (rc == 0)
        rc = check_frames(&c, doc, frames);
    return rc;
}

int agora__results_validate(const json_t *doc, agora__result_form form, agora__error *err)
{
    agora__results_frames frames;
    memset(&frames, 0, sizeof frames);
    return agora__results_validate_frames(doc, form, &frames, err);
}
