/* Routing rules: the loader (every check of schemas/rules.schema.json, and the bounds) and the
 * evaluation of one series (see route_rules.h for the language and its semantics). */
#include "route_rules.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- The attribute allow-list ------------------------------------------------------------- */

typedef enum attr_type {
    T_CS,     /* DICOM code string: A-Z 0-9 _ space, 1..16 */
    T_UID,    /* 0-9 and '.', 1..64 */
    T_AE,     /* printable ASCII but backslash, 1..16, no edge spaces */
    T_ORIGIN, /* "dimse" | "stow" */
    T_REAL,   /* a finite number */
    T_COUNT,  /* an integer 0..UINT32_MAX */
} attr_type;

typedef enum attr_id {
    A_MODALITY,
    A_BODY_PART,
    A_SOP_CLASS,
    A_SLICE_THICKNESS,
    A_FRAMES,
    A_ROWS,
    A_COLUMNS,
    A_CALLING_AE,
    A_CALLED_AE,
    A_ORIGIN,
    A_COUNT_,
} attr_id;

static const struct {
    const char *name;
    attr_type type;
} attrs[A_COUNT_] = {
    [A_MODALITY] = {"Modality", T_CS},        [A_BODY_PART] = {"BodyPartExamined", T_CS},
    [A_SOP_CLASS] = {"SOPClassUID", T_UID},   [A_SLICE_THICKNESS] = {"SliceThickness", T_REAL},
    [A_FRAMES] = {"NumberOfFrames", T_COUNT}, [A_ROWS] = {"Rows", T_COUNT},
    [A_COLUMNS] = {"Columns", T_COUNT},       [A_CALLING_AE] = {"CallingAETitle", T_AE},
    [A_CALLED_AE] = {"CalledAETitle", T_AE},  [A_ORIGIN] = {"Origin", T_ORIGIN},
};

#define ALLOWED_LIST                                                                               \
    "Modality, BodyPartExamined, SOPClassUID, SliceThickness, NumberOfFrames, Rows, Columns, "     \
    "CallingAETitle, CalledAETitle, Origin"

typedef enum op_id { OP_EQ, OP_NE, OP_IN, OP_LT, OP_LE, OP_GT, OP_GE, OP_EXISTS, OP_COUNT_ } op_id;
static const char *const op_names[OP_COUNT_] = {"eq", "ne", "in", "lt", "le", "gt", "ge", "exists"};

/* ---- The loaded form ------------------------------------------------------------------------ */

typedef enum node_kind { N_ALL, N_ANY, N_NOT, N_LEAF } node_kind;
static const char *const group_names[] = {"all", "any", "not"};

typedef struct cond {
    node_kind kind;
    struct cond *kids; /* all/any: n_kids, not: 1 (owned) */
    size_t n_kids;
    attr_id attr; /* leaf */
    op_id op;
    char **s;  /* text operands (owned), n_vals of them */
    double *d; /* number operands (owned) */
    size_t n_vals;
    int want; /* exists */
} cond;

typedef struct plugin_ref {
    char *id;
    char *version; /* "" when the rule names none */
} plugin_ref;

typedef enum body_action { B_RUN, B_DISCARD, B_DEFAULT, B_NONE } body_action;

typedef struct body {
    body_action action;
    int study_scope;
    int priority;
    plugin_ref *run;
    size_t n_run;
    char **send_to;
    size_t n_send_to;
} body;

typedef struct rule {
    char *id;
    cond when;
    body b;
} rule;

struct agora__rules {
    rule *rules;
    size_t n;
    body fallback; /* action B_NONE when the file has none */
};

static void cond_clear(cond *c)
{
    for (size_t i = 0; i < c->n_kids; i++)
        cond_clear(&c->kids[i]);
    free(c->kids);
    for (size_t i = 0; c->s != NULL && i < c->n_vals; i++)
        free(c->s[i]);
    free(c->s);
    free(c->d);
    memset(c, 0, sizeof *c);
}

static void body_clear(body *b)
{
    for (size_t i = 0; i < b->n_run; i++) {
        free(b->run[i].id);
        free(b->run[i].version);
    }
    free(b->run);
    for (size_t i = 0; i < b->n_send_to; i++)
        free(b->send_to[i]);
    free(b->send_to);
    memset(b, 0, sizeof *b);
}

void agora__rules_free(agora__rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rules[i].id);
        cond_clear(&r->rules[i].when);
        body_clear(&r->rules[i].b);
    }
    free(r->rules);
    body_clear(&r->fallback);
    free(r);
}

/* ---- Loading ------------------------------------------------------------------------------- */

/* The parse state: the file's name for messages and the JSON path of the value at hand. */
typedef struct ld {
    const char *name;
    char path[256];
    agora__error *err;
    size_t nodes; /* condition nodes of the current rule */
} ld;

static int fail(ld *l, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ld *l, int code, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return agora__error_set(l->err, code, "%s: %s: %s", l->name, l->path[0] ? l->path : "(top)",
                            what);
}

/* Append ".key" or "[i]" to the path; returns the old length to restore with path_pop. */
static size_t path_key(ld *l, const char *key)
{
    size_t len = strlen(l->path);
    snprintf(l->path + len, sizeof l->path - len, "%s%s", len ? "." : "", key);
    return len;
}

static size_t path_index(ld *l, size_t i)
{
    size_t len = strlen(l->path);
    snprintf(l->path + len, sizeof l->path - len, "[%zu]", i);
    return len;
}

static void path_pop(ld *l, size_t len)
{
    l->path[len] = '\0';
}

static char *dup_or_null(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Names the operator chooses (rule ids, destinations): 1..64 of [A-Za-z0-9._-]. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AGORA__RULES_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Why keyword k cannot be routed on, for the attributes people try first; NULL: no known reason
 * (then it is simply not on the allow-list). The checks are by the shape of the DICOM keyword so
 * that every name, ID, UID, date and description is caught, not only a listed few. */
static const char *refusal(const char *k)
{
    size_t n = strlen(k);
#define ENDS(sfx) (n >= sizeof(sfx) - 1 && strcmp(k + n - (sizeof(sfx) - 1), sfx) == 0)
    if (ENDS("Description") || ENDS("Comments") || ENDS("Comment") ||
        strcmp(k, "ProtocolName") == 0 || ENDS("History") || strcmp(k, "ReasonForStudy") == 0 ||
        ENDS("Text") || ENDS("Label"))
        return "is free text, which staff and devices fill with names, dates and IDs";
    if (ENDS("Name") || ENDS("Names") || strcmp(k, "OperatorsName") == 0)
        return "is a name (of a person, an institution or a device)";
    if (ENDS("UID") || ENDS("UIDs"))
        return "is an identifier (a UID links the series to the patient's record)";
    if (ENDS("ID") || ENDS("IDs") || ENDS("Number") || strcmp(k, "AccessionNumber") == 0)
        return "is an identifier";
    if (ENDS("Date") || ENDS("Time") || ENDS("DateTime") || ENDS("Dates") || ENDS("Times"))
        return "is a date or time";
    if (strncmp(k, "Patient", 7) == 0 || strncmp(k, "Issuer", 6) == 0 || ENDS("Address") ||
        ENDS("Telephone") || ENDS("TelephoneNumbers"))
        return "describes the patient or their record";
#undef ENDS
    return NULL;
}

static int parse_attr(ld *l, json_t *v, attr_id *out)
{
    if (!json_is_string(v))
        return fail(l, AGORA_EINVAL, "must be an attribute keyword (one of " ALLOWED_LIST ")");
    const char *k = json_string_value(v);
    for (int i = 0; i < A_COUNT_; i++)
        if (strcmp(k, attrs[i].name) == 0) {
            *out = (attr_id)i;
            return 0;
        }
    /* The keyword is the operator's text, not patient data, and is echoed bounded. */
    if (strlen(k) > 64 || !agora__utf8_valid(k, strlen(k)))
        return fail(l, AGORA_EINVAL, "not an attribute keyword; use one of " ALLOWED_LIST);
    if (k[0] == '(' || (k[0] >= '0' && k[0] <= '9'))
        return fail(l, AGORA_EINVAL,
                    "\"%s\": attributes are named by keyword, not by tag; use one of " ALLOWED_LIST,
                    k);
    const char *why = refusal(k);
    if (why != NULL)
        return fail(l, AGORA_EINVAL,
                    "%s %s: rules may not route on it, so that routing never depends on (nor "
                    "logs) patient data; use only " ALLOWED_LIST,
                    k, why);
    return fail(
        l, AGORA_EINVAL,
        "%s is not on the routing allow-list of non-identifying attributes (" ALLOWED_LIST ")", k);
}

/* A text operand for attribute a, checked against its type, or a message why not. */
static const char *text_refusal(attr_type t, const char *s)
{
    size_t n = strlen(s);
    switch (t) {
    case T_CS:
        if (n == 0 || n > 16)
            return "must be a DICOM code string of 1..16 characters";
        for (size_t i = 0; i < n; i++)
            if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
                  s[i] == ' '))
                return "must be an upper-case DICOM code string (A-Z, 0-9, _ and space), as "
                       "files carry it: \"CT\", not \"ct\"";
        if (s[0] == ' ' || s[n - 1] == ' ')
            return "must not start or end with a space (DICOM padding is not part of the value)";
        return NULL;
    case T_UID:
        if (n == 0 || n > 64)
            return "must be a UID of 1..64 characters";
        for (size_t i = 0; i < n; i++)
            if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
                return "must be a UID (digits and dots), e.g. \"1.2.840.10008.5.1.4.1.1.2\"";
        return NULL;
    case T_AE:
        if (n == 0 || n > 16)
            return "must be an AE title of 1..16 characters";
        for (size_t i = 0; i < n; i++)
            if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\')
                return "must be an AE title (printable ASCII without backslash)";
        if (s[0] == ' ' || s[n - 1] == ' ')
            return "must not start or end with a space (AE title padding is not significant)";
        return NULL;
    case T_ORIGIN:
        if (strcmp(s, "dimse") != 0 && strcmp(s, "stow") != 0)
            return "must be \"dimse\" (C-STORE) or \"stow\" (STOW-RS)";
        return NULL;
    default:
        return "must be a number";
    }
}

static int is_text(attr_type t)
{
    return t == T_CS || t == T_UID || t == T_AE || t == T_ORIGIN;
}

/* One operand value v (an item of "in", or the value of eq/ne/lt/...) into slot i of c. */
static int parse_operand(ld *l, cond *c, json_t *v, size_t i)
{
    attr_type t = attrs[c->attr].type;
    if (is_text(t)) {
        if (!json_is_string(v))
            return fail(l, AGORA_EINVAL, "%s is text: the value must be a string",
                        attrs[c->attr].name);
        const char *why = text_refusal(t, json_string_value(v));
        if (why != NULL)
            return fail(l, AGORA_EINVAL, "%s value %s", attrs[c->attr].name, why);
        if ((c->s[i] = dup_or_null(json_string_value(v))) == NULL)
            return fail(l, AGORA_ENOMEM, "out of memory");
        return 0;
    }
    if (!json_is_number(v))
        return fail(l, AGORA_EINVAL, "%s is a number: the value must be a JSON number",
                    attrs[c->attr].name);
    double d = json_number_value(v);
    if (!isfinite(d))
        return fail(l, AGORA_EINVAL, "the value must be a finite number");
    /* 512.0 is the integer 512, as JSON Schema counts it. */
    if (t == T_COUNT && (d != floor(d) || d < 0 || d > (double)UINT32_MAX))
        return fail(l, AGORA_EINVAL, "%s is a count: the value must be an integer 0..4294967295",
                    attrs[c->attr].name);
    c->d[i] = d;
    return 0;
}

static int parse_cond(ld *l, json_t *j, cond *c, unsigned depth);

static int parse_leaf(ld *l, json_t *j, cond *c)
{
    c->kind = N_LEAF;
    json_t *a = json_object_get(j, "attr");
    if (a == NULL) {
        if (json_object_get(j, "tag") != NULL)
            return fail(l, AGORA_EINVAL,
                        "name the attribute with \"attr\" (a keyword), not "
                        "\"tag\"");
        return fail(l, AGORA_EINVAL,
                    "a condition is {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}} or "
                    "{\"attr\": KEYWORD, OPERATOR: VALUE}");
    }
    size_t at = path_key(l, "attr");
    int rc = parse_attr(l, a, &c->attr);
    path_pop(l, at);
    if (rc != 0)
        return rc;
    const char *key;
    json_t *v;
    int seen = 0;
    json_object_foreach(j, key, v)
    {
        if (strcmp(key, "attr") == 0)
            continue;
        int op = -1;
        for (int i = 0; i < OP_COUNT_; i++)
            if (strcmp(key, op_names[i]) == 0)
                op = i;
        if (op < 0)
            return fail(l, AGORA_EINVAL,
                        "unknown key \"%.64s\"; a condition has \"attr\" and one operator of eq, "
                        "ne, in, lt, le, gt, ge, exists",
                        key);
        if (seen++)
            return fail(l, AGORA_EINVAL,
                        "one operator per condition; combine several with \"all\"");
        c->op = (op_id)op;
    }
    if (!seen)
        return fail(l, AGORA_EINVAL,
                    "the condition has no operator (eq, ne, in, lt, le, gt, ge, "
                    "exists)");
    size_t at2 = path_key(l, op_names[c->op]);
    v = json_object_get(j, op_names[c->op]);
    attr_type t = attrs[c->attr].type;
    rc = 0;
    if (c->op == OP_EXISTS) {
        if (!json_is_boolean(v))
            rc = fail(l, AGORA_EINVAL, "exists takes true or false");
        c->want = json_is_true(v);
    } else if (c->op >= OP_LT && c->op <= OP_GE && is_text(t)) {
        rc = fail(l, AGORA_EINVAL, "%s is text: lt, le, gt, ge compare numbers only",
                  attrs[c->attr].name);
    } else {
        size_t n = 1;
        if (c->op == OP_IN) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                rc = fail(l, AGORA_EINVAL, "in takes a non-empty list of values");
            else if (json_array_size(v) > AGORA__RULES_LIST_MAX)
                rc = fail(l, AGORA_ELIMIT, "in takes at most %u values", AGORA__RULES_LIST_MAX);
            n = json_array_size(v);
        }
        if (rc == 0) {
            c->n_vals = n;
            if (is_text(t))
                c->s = calloc(n, sizeof *c->s);
            else
                c->d = calloc(n, sizeof *c->d);
            if (c->s == NULL && c->d == NULL)
                rc = fail(l, AGORA_ENOMEM, "out of memory");
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            size_t at3 = c->op == OP_IN ? path_index(l, i) : strlen(l->path);
            rc = parse_operand(l, c, c->op == OP_IN ? json_array_get(v, i) : v, i);
            path_pop(l, at3);
        }
    }
    path_pop(l, at2);
    return rc;
}

static int parse_cond(ld *l, json_t *j, cond *c, unsigned depth)
{
    if (!json_is_object(j))
        return fail(l, AGORA_EINVAL, "a condition must be an object");
    if (depth > AGORA__RULES_DEPTH_MAX)
        return fail(l, AGORA_ELIMIT, "conditions nest at most %u deep", AGORA__RULES_DEPTH_MAX);
    if (++l->nodes > AGORA__RULES_COND_MAX)
        return fail(l, AGORA_ELIMIT, "a rule has at most %u conditions (all/any/not included)",
                    AGORA__RULES_COND_MAX);
    for (int g = 0; g < 3; g++) {
        json_t *v = json_object_get(j, group_names[g]);
        if (v == NULL)
            continue;
        if (json_object_size(j) != 1)
            return fail(l, AGORA_EINVAL, "\"%s\" must be the condition's only key", group_names[g]);
        c->kind = (node_kind)g;
        size_t at = path_key(l, group_names[g]);
        int rc = 0;
        if (g == N_NOT) {
            c->n_kids = 1;
            if ((c->kids = calloc(1, sizeof *c->kids)) == NULL)
                rc = fail(l, AGORA_ENOMEM, "out of memory");
            else
                rc = parse_cond(l, v, &c->kids[0], depth + 1);
        } else if (!json_is_array(v) || json_array_size(v) == 0) {
            rc = fail(l, AGORA_EINVAL, "%s takes a non-empty list of conditions", group_names[g]);
        } else if (json_array_size(v) > AGORA__RULES_LIST_MAX) {
            rc = fail(l, AGORA_ELIMIT, "%s takes at most %u conditions", group_names[g],
                      AGORA__RULES_LIST_MAX);
        } else if ((c->kids = calloc(json_array_size(v), sizeof *c->kids)) == NULL) {
            rc = fail(l, AGORA_ENOMEM, "out of memory");
        } else {
            c->n_kids = json_array_size(v);
            for (size_t i = 0; rc == 0 && i < c->n_kids; i++) {
                size_t at2 = path_index(l, i);
                rc = parse_cond(l, json_array_get(v, i), &c->kids[i], depth + 1);
                path_pop(l, at2);
            }
        }
        path_pop(l, at);
        return rc;
    }
    return parse_leaf(l, j, c);
}

/* "org.example.app" or "org.example.app@1.2.0". */
static int parse_plugin(ld *l, json_t *v, plugin_ref *p)
{
    if (!json_is_string(v))
        return fail(l, AGORA_EINVAL, "must be a plugin id, optionally with @version");
    const char *s = json_string_value(v);
    const char *at = strchr(s, '@');
    size_t idn = at ? (size_t)(at - s) : strlen(s);
    int dots = 0;
    int ok = idn >= 3 && idn <= AGORA__TRUST_ID_MAX && s[0] >= 'a' && s[0] <= 'z';
    for (size_t i = 0; ok && i < idn; i++) {
        char c = s[i];
        dots += c == '.';
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    }
    if (!ok || dots == 0)
        return fail(l, AGORA_EINVAL,
                    "\"%.140s\" is not a plugin id (reverse-DNS, lower case, e.g. "
                    "\"org.example.nodules\" or \"org.example.nodules@1.2.0\")",
                    s);
    const char *ver = at ? at + 1 : "";
    size_t vn = strlen(ver);
    ok = !at || (vn >= 1 && vn <= AGORA__TRUST_VERSION_MAX);
    for (size_t i = 0; ok && i < vn; i++) {
        char c = ver[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == '+';
    }
    if (!ok)
        return fail(l, AGORA_EINVAL, "the version after @ must be a semantic version (1.2.0)");
    p->id = malloc(idn + 1);
    p->version = dup_or_null(ver);
    if (p->id == NULL || p->version == NULL)
        return fail(l, AGORA_ENOMEM, "out of memory");
    memcpy(p->id, s, idn);
    p->id[idn] = '\0';
    return 0;
}

static int parse_send_to(ld *l, json_t *v, body *b)
{
    if (!json_is_array(v))
        return fail(l, AGORA_EINVAL, "must be a list of destination names");
    size_t n = json_array_size(v);
    if (n > AGORA__RULES_LIST_MAX)
        return fail(l, AGORA_ELIMIT, "at most %u destinations", AGORA__RULES_LIST_MAX);
    if (n > 0 && (b->send_to = calloc(n, sizeof *b->send_to)) == NULL)
        return fail(l, AGORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t at = path_index(l, i);
        json_t *d = json_array_get(v, i);
        if (!json_is_string(d) || !name_ok(json_string_value(d)))
            return fail(l, AGORA_EINVAL,
                        "a destination name is 1..%u characters of A-Z a-z 0-9 . _ - (\"default\" "
                        "is the daemon's --send-to)",
                        AGORA__RULES_ID_MAX);
        for (size_t k = 0; k < i; k++)
            if (strcmp(b->send_to[k], json_string_value(d)) == 0)
                return fail(l, AGORA_EINVAL, "destination \"%s\" is named twice",
                            json_string_value(d));
        if ((b->send_to[i] = dup_or_null(json_string_value(d))) == NULL)
            return fail(l, AGORA_ENOMEM, "out of memory");
        b->n_send_to = i + 1;
        path_pop(l, at);
    }
    return 0;
}

static int default_send_to(ld *l, body *b)
{
    if ((b->send_to = calloc(1, sizeof *b->send_to)) == NULL ||
        (b->send_to[0] = dup_or_null(AGORA__RULES_DEST_DEFAULT)) == NULL)
        return fail(l, AGORA_ENOMEM, "out of memory");
    b->n_send_to = 1;
    return 0;
}

/* A rule's (or the fallback's) action and its fields. fallback: "default" is allowed and "when"
 * and "id" are not part of it (checked by the caller's key list). */
static int parse_body(ld *l, json_t *j, body *b, int fallback)
{
    json_t *act = json_object_get(j, "action");
    b->action = B_RUN;
    if (act != NULL) {
        size_t at = path_key(l, "action");
        const char *s = json_is_string(act) ? json_string_value(act) : "";
        if (strcmp(s, "run") == 0)
            b->action = B_RUN;
        else if (strcmp(s, "discard") == 0)
            b->action = B_DISCARD;
        else if (fallback && strcmp(s, "default") == 0)
            b->action = B_DEFAULT;
        else
            return fail(l, AGORA_EINVAL, "must be \"run\" or \"discard\"%s",
                        fallback ? " or \"default\" (every installed app accepting the modality)"
                                 : "");
        path_pop(l, at);
    }
    json_t *run = json_object_get(j, "run"), *scope = json_object_get(j, "scope");
    json_t *prio = json_object_get(j, "priority"), *send = json_object_get(j, "send_to");
    if (b->action == B_DISCARD && (run || scope || prio || send))
        return fail(l, AGORA_EINVAL,
                    "a discard runs and sends nothing: remove run, scope, priority and send_to");
    if (b->action == B_DEFAULT && (run || scope))
        return fail(l, AGORA_EINVAL,
                    "the default fallback runs every installed app accepting "
                    "the modality, each in its manifest's scope: remove run and "
                    "scope");
    if (b->action == B_RUN && run == NULL)
        return fail(l, AGORA_EINVAL,
                    "\"run\" is missing: list the apps to run, or set \"action\": \"discard\"");
    if (run != NULL) {
        size_t at = path_key(l, "run");
        if (!json_is_array(run) || json_array_size(run) == 0)
            return fail(l, AGORA_EINVAL, "must be a non-empty list of plugin ids");
        if (json_array_size(run) > AGORA__RULES_LIST_MAX)
            return fail(l, AGORA_ELIMIT, "at most %u plugins", AGORA__RULES_LIST_MAX);
        if ((b->run = calloc(json_array_size(run), sizeof *b->run)) == NULL)
            return fail(l, AGORA_ENOMEM, "out of memory");
        for (size_t i = 0; i < json_array_size(run); i++) {
            size_t at2 = path_index(l, i);
            b->n_run = i + 1;
            int rc = parse_plugin(l, json_array_get(run, i), &b->run[i]);
            if (rc != 0)
                return rc;
            for (size_t k = 0; k < i; k++)
                if (strcmp(b->run[k].id, b->run[i].id) == 0)
                    return fail(l, AGORA_EINVAL, "plugin %s is listed twice", b->run[i].id);
            path_pop(l, at2);
        }
        path_pop(l, at);
    }
    if (scope != NULL) {
        size_t at = path_key(l, "scope");
        const char *s = json_is_string(scope) ? json_string_value(scope) : "";
        if (strcmp(s, "study") != 0 && strcmp(s, "series") != 0)
            return fail(l, AGORA_EINVAL,
                        "must be \"series\" (run on the matching series) or \"study\" (run on "
                        "the whole study when one of its series matches)");
        b->study_scope = strcmp(s, "study") == 0;
        path_pop(l, at);
    }
    b->priority = AGORA__RULES_NORMAL;
    if (prio != NULL) {
        size_t at = path_key(l, "priority");
        const char *s = json_is_string(prio) ? json_string_value(prio) : "";
        if (strcmp(s, "urgent") == 0)
            b->priority = AGORA__RULES_URGENT;
        else if (strcmp(s, "offpeak") == 0)
            b->priority = AGORA__RULES_OFFPEAK;
        else if (strcmp(s, "normal") != 0)
            return fail(l, AGORA_EINVAL, "must be \"urgent\", \"normal\" or \"offpeak\"");
        path_pop(l, at);
    }
    if (b->action == B_DISCARD)
        return 0;
    if (send == NULL)
        return default_send_to(l, b);
    size_t at = path_key(l, "send_to");
    int rc = parse_send_to(l, send, b);
    if (rc == 0)
        path_pop(l, at);
    return rc;
}

/* Refuse keys outside `allowed` (NULL-terminated). */
static int check_keys(ld *l, json_t *j, const char *const *allowed, const char *what)
{
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return fail(l, AGORA_EINVAL, "unknown key \"%.64s\" in %s", key, what);
    }
    return 0;
}

static int check_description(ld *l, json_t *j)
{
    json_t *d = json_object_get(j, "description");
    if (d == NULL)
        return 0;
    if (!json_is_string(d) || json_string_length(d) > AGORA__RULES_DESC_MAX ||
        !agora__utf8_valid(json_string_value(d), json_string_length(d))) {
        size_t at = path_key(l, "description");
        int rc = fail(l, AGORA_EINVAL, "must be text of at most %u bytes", AGORA__RULES_DESC_MAX);
        path_pop(l, at);
        return rc;
    }
    return 0;
}

static int parse_rule(ld *l, agora__rules *r, json_t *j, rule *ru)
{
    static const char *const keys[] = {"id",       "description", "when",   "scope", "run",
                                       "priority", "send_to",     "action", NULL};
    if (!json_is_object(j))
        return fail(l, AGORA_EINVAL, "a rule must be an object");
    int rc = check_keys(l, j, keys,
                        "a rule (id, description, when, scope, run, priority, "
                        "send_to, action)");
    if (rc != 0 || (rc = check_description(l, j)) != 0)
        return rc;
    json_t *id = json_object_get(j, "id");
    size_t at = path_key(l, "id");
    if (!json_is_string(id) || !name_ok(json_string_value(id)))
        return fail(l, AGORA_EINVAL,
                    "every rule needs an id of 1..%u characters of A-Z a-z 0-9 "
                    ". _ -",
                    AGORA__RULES_ID_MAX);
    const char *ids = json_string_value(id);
    if (strcmp(ids, AGORA__RULES_ID_DEFAULT) == 0 || strcmp(ids, AGORA__RULES_ID_FALLBACK) == 0)
        return fail(l, AGORA_EINVAL, "\"%s\" is reserved (it names the built-in rule)", ids);
    for (size_t k = 0; k < r->n; k++)
        if (strcmp(r->rules[k].id, ids) == 0)
            return fail(l, AGORA_EINVAL, "rule id \"%s\" is used twice", ids);
    path_pop(l, at);
    if ((ru->id = dup_or_null(ids)) == NULL)
        return fail(l, AGORA_ENOMEM, "out of memory");
    json_t *when = json_object_get(j, "when");
    if (when == NULL)
        return fail(l, AGORA_EINVAL,
                    "\"when\" is missing (a rule for every series is the "
                    "\"fallback\", or {\"exists\": true} on Modality)");
    at = path_key(l, "when");
    l->nodes = 0;
    if ((rc = parse_cond(l, when, &ru->when, 1)) != 0)
        return rc;
    path_pop(l, at);
    return parse_body(l, j, &ru->b, 0);
}

static int parse_doc(ld *l, json_t *doc, agora__rules *r)
{
    static const char *const keys[] = {"schema", "description", "rules", "fallback", NULL};
    if (!json_is_object(doc))
        return fail(l, AGORA_EINVAL,
                    "a rules file is a JSON object {\"schema\": \"%s\", "
                    "\"rules\": [...]}",
                    AGORA__RULES_SCHEMA);
    int rc = check_keys(l, doc, keys, "the rules file (schema, description, rules, fallback)");
    if (rc != 0 || (rc = check_description(l, doc)) != 0)
        return rc;
    json_t *schema = json_object_get(doc, "schema");
    if (!json_is_string(schema) || strcmp(json_string_value(schema), AGORA__RULES_SCHEMA) != 0) {
        size_t at = path_key(l, "schema");
        rc = fail(l, AGORA_EINVAL, "must be \"%s\"", AGORA__RULES_SCHEMA);
        path_pop(l, at);
        return rc;
    }
    json_t *rules = json_object_get(doc, "rules");
    size_t at = path_key(l, "rules");
    if (!json_is_array(rules))
        return fail(l, AGORA_EINVAL, "must be a list of rules (it may be empty)");
    if (json_array_size(rules) > AGORA__RULES_MAX)
        return fail(l, AGORA_ELIMIT, "at most %u rules", AGORA__RULES_MAX);
    if (json_array_size(rules) > 0 &&
        (r->rules = calloc(json_array_size(rules), sizeof *r->rules)) == NULL)
        return fail(l, AGORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(rules); i++) {
        size_t at2 = path_index(l, i);
        rule ru = {0};
        rc = parse_rule(l, r, json_array_get(rules, i), &ru);
        r->rules[r->n++] = ru; /* freed with r, complete or not */
        if (rc != 0)
            return rc;
        path_pop(l, at2);
    }
    path_pop(l, at);
    r->fallback.action = B_NONE;
    json_t *fb = json_object_get(doc, "fallback");
    if (fb == NULL || json_is_null(fb))
        return 0;
    at = path_key(l, "fallback");
    static const char *const fkeys[] = {"description", "scope",  "run", "priority",
                                        "send_to",     "action", NULL};
    if (!json_is_object(fb))
        return fail(l, AGORA_EINVAL,
                    "must be an object ({\"action\": \"default\"}, "
                    "{\"action\": \"discard\"} or {\"run\": [...]})");
    if ((rc = check_keys(l, fb, fkeys, "the fallback (it has no id and no when)")) != 0 ||
        (rc = check_description(l, fb)) != 0 || (rc = parse_body(l, fb, &r->fallback, 1)) != 0)
        return rc;
    path_pop(l, at);
    return 0;
}

int agora__rules_parse(const char *text, size_t len, const char *name, agora__rules **out,
                       agora__error *err)
{
    *out = NULL;
    ld l = {.name = name ? name : "rules", .err = err};
    if (len > AGORA__RULES_FILE_MAX)
        return fail(&l, AGORA_ELIMIT, "a rules file is at most %zu bytes", AGORA__RULES_FILE_MAX);
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL)
        return agora__error_set(err, AGORA_EINVAL, "%s: not valid JSON at line %d column %d: %s",
                                l.name, je.line, je.column, je.text);
    agora__rules *r = calloc(1, sizeof *r);
    if (r == NULL) {
        json_decref(doc);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    int rc = parse_doc(&l, doc, r);
    json_decref(doc);
    if (rc != 0) {
        agora__rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int agora__rules_load(const char *path, agora__rules **out, agora__error *err)
{
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__read_file(path, AGORA__RULES_FILE_MAX, &buf, &len, err);
    if (rc != 0) {
        if (rc == AGORA_ELIMIT)
            return agora__error_set(err, rc, "%s: a rules file is at most %zu bytes", path,
                                    AGORA__RULES_FILE_MAX);
        return rc;
    }
    rc = agora__rules_parse((const char *)buf, len, path, out, err);
    free(buf);
    return rc;
}

size_t agora__rules_count(const agora__rules *r)
{
    return r ? r->n : 0;
}

const char *agora__rules_rule_id(const agora__rules *r, size_t i)
{
    return r && i < r->n ? r->rules[i].id : NULL;
}

static const char *action_word(body_action a)
{
    static const char *const w[] = {"run", "discard", "default", "none"};
    return w[a];
}

const char *agora__rules_fallback(const agora__rules *r)
{
    return r ? action_word(r->fallback.action) : "none";
}

static int push_name(const char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0)
            return 0;
    const char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (nv == NULL)
        return AGORA_ENOMEM;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

int agora__rules_destinations(const agora__rules *r, const char ***names, size_t *n,
                              agora__error *err)
{
    *names = NULL;
    *n = 0;
    for (size_t i = 0; r != NULL && i <= r->n; i++) {
        const body *b = i < r->n ? &r->rules[i].b : &r->fallback;
        for (size_t k = 0; k < b->n_send_to; k++)
            if (push_name(names, n, b->send_to[k]) != 0) {
                free(*names);
                *names = NULL;
                *n = 0;
                return agora__error_set(err, AGORA_ENOMEM, "out of memory");
            }
    }
    return 0;
}

/* ---- Evaluation ------------------------------------------------------------------------------ */

const char *agora__route_action_name(agora__route_action a)
{
    return a == AGORA__ROUTE_RUN ? "run" : a == AGORA__ROUTE_DISCARD ? "discard" : "none";
}

void agora__route_plan_describe(const agora__route_plan *p, char *buf, size_t size)
{
    if (size == 0)
        return;
    snprintf(buf, size, "action=%s rule=%s jobs=%zu skipped=%zu",
             agora__route_action_name(p->action), p->rule_id ? p->rule_id : "-", p->n_matches,
             p->n_skipped);
}

const char *agora__rules_priority_name(int priority)
{
    return priority > 0 ? "urgent" : priority < 0 ? "offpeak" : "normal";
}

typedef struct ev {
    const agora__route_attrs *a;
    agora__rules_explain_fn explain;
    void *arg;
    const char *rule_id;
} ev;

static void step(const ev *e, agora__rules_step_kind kind, unsigned depth, const char *attr,
                 const char *op, agora__rules_outcome outcome, const char *plugin,
                 const char *reason)
{
    if (e->explain == NULL)
        return;
    agora__rules_step s = {kind, e->rule_id, depth, attr, op, outcome, plugin, reason};
    e->explain(e->arg, &s);
}

/* The text of a fixed-size field without DICOM padding (leading/trailing spaces), bounded by
 * the field so an unterminated array is never read past. */
static void trimmed(const char *f, size_t cap, const char **p, size_t *n)
{
    size_t len = strnlen(f, cap);
    while (len > 0 && f[len - 1] == ' ')
        len--;
    while (len > 0 && *f == ' ') {
        f++;
        len--;
    }
    *p = f;
    *n = len;
}

/* The text field of attribute id and its size, or NULL for a number (or no origin). */
static const char *text_field(const agora__route_attrs *a, attr_id id, size_t *cap)
{
    *cap = AGORA__ROUTE_CS_MAX;
    switch (id) {
    case A_MODALITY:
        return a->modality;
    case A_BODY_PART:
        return a->body_part;
    case A_SOP_CLASS:
        *cap = sizeof a->sop_class;
        return a->sop_class;
    case A_CALLING_AE:
        return a->calling_ae;
    case A_CALLED_AE:
        return a->called_ae;
    case A_ORIGIN:
        return a->origin; /* static text, shorter than the cap */
    default:
        return NULL;
    }
}

/* Attribute `id` of the series: text (*s, *n) or number (*d); 0 when absent. */
static int attr_value(const agora__route_attrs *a, attr_id id, const char **s, size_t *n, double *d)
{
    if (is_text(attrs[id].type)) {
        size_t cap;
        const char *f = text_field(a, id, &cap);
        if (f == NULL)
            return 0;
        trimmed(f, cap, s, n);
        return *n > 0;
    }
    switch (id) {
    case A_SLICE_THICKNESS:
        *d = a->slice_thickness;
        return isfinite(*d);
    case A_FRAMES:
        *d = a->n_frames;
        return a->n_frames > 0;
    case A_ROWS:
        *d = a->rows;
        return a->rows > 0;
    case A_COLUMNS:
        *d = a->columns;
        return a->columns > 0;
    default:
        return 0;
    }
}

static int text_eq(const char *s, size_t n, const char *v)
{
    return strlen(v) == n && memcmp(s, v, n) == 0;
}

static int leaf_pass(const cond *c, const char *s, size_t n, double d)
{
    int text = is_text(attrs[c->attr].type);
    switch (c->op) {
    case OP_EQ:
        return text ? text_eq(s, n, c->s[0]) : d == c->d[0];
    case OP_NE:
        return text ? !text_eq(s, n, c->s[0]) : d != c->d[0];
    case OP_IN:
        for (size_t i = 0; i < c->n_vals; i++)
            if (text ? text_eq(s, n, c->s[i]) : d == c->d[i])
                return 1;
        return 0;
    case OP_LT:
        return d < c->d[0];
    case OP_LE:
        return d <= c->d[0];
    case OP_GT:
        return d > c->d[0];
    case OP_GE:
        return d >= c->d[0];
    default:
        return 0;
    }
}

/* Every child is evaluated (no short cut) so that an explanation is complete; a rule has at most
 * AGORA__RULES_COND_MAX nodes. */
static int eval_cond(const ev *e, const cond *c, unsigned depth)
{
    if (c->kind == N_LEAF) {
        const char *s = NULL;
        size_t n = 0;
        double d = 0;
        int present = attr_value(e->a, c->attr, &s, &n, &d);
        int pass;
        agora__rules_outcome o;
        if (c->op == OP_EXISTS) {
            pass = present == c->want;
            o = pass ? AGORA__RULES_PASS : AGORA__RULES_FAIL;
        } else if (!present) {
            pass = 0;
            o = AGORA__RULES_ABSENT;
        } else {
            pass = leaf_pass(c, s, n, d);
            o = pass ? AGORA__RULES_PASS : AGORA__RULES_FAIL;
        }
        step(e, AGORA__RULES_STEP_COND, depth, attrs[c->attr].name, op_names[c->op], o, NULL, NULL);
        return pass;
    }
    int all = 1, any = 0;
    for (size_t i = 0; i < c->n_kids; i++) {
        int p = eval_cond(e, &c->kids[i], depth + 1);
        all &= p;
        any |= p;
    }
    int pass = c->kind == N_ALL ? all : c->kind == N_ANY ? any : !all;
    step(e, AGORA__RULES_STEP_GROUP, depth, NULL, group_names[c->kind],
         pass ? AGORA__RULES_PASS : AGORA__RULES_FAIL, NULL, NULL);
    return pass;
}

static int modality_accepted(const agora__manifest *m, const agora__route_attrs *a)
{
    if (m->any_modality)
        return 1;
    const char *s;
    size_t n;
    double d;
    if (!attr_value(a, A_MODALITY, &s, &n, &d))
        return 0;
    for (uint32_t i = 0; i < m->n_modalities && i < AGORA__TRUST_LIST_MAX; i++)
        if (text_eq(s, n, m->modalities[i]))
            return 1;
    return 0;
}

/* A plan under construction: entries with their own growable destination lists. */
typedef struct entry {
    agora__rule_match m;
    const char **send; /* owned while building */
    size_t n_send;
} entry;

typedef struct builder {
    entry *v;
    size_t n, cap;
    size_t skipped;
} builder;

static int add_job(builder *b, const char *rule_id, int study, const char *id, const char *version,
                   int priority, char *const *send, size_t n_send)
{
    entry *e = NULL;
    for (size_t i = 0; i < b->n && e == NULL; i++)
        if (strcmp(b->v[i].m.plugin_id, id) == 0 && strcmp(b->v[i].m.plugin_version, version) == 0)
            e = &b->v[i];
    if (e == NULL) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 8;
            entry *nv = realloc(b->v, cap * sizeof *nv);
            if (nv == NULL)
                return AGORA_ENOMEM;
            b->v = nv;
            b->cap = cap;
        }
        e = &b->v[b->n++];
        memset(e, 0, sizeof *e);
        e->m.rule_id = rule_id;
        e->m.plugin_id = id;
        e->m.plugin_version = version;
        e->m.priority = priority;
        e->m.scope = "series";
    }
    if (study)
        e->m.scope = "study";
    if (priority > e->m.priority)
        e->m.priority = priority;
    for (size_t i = 0; i < n_send; i++)
        if (push_name(&e->send, &e->n_send, send[i]) != 0)
            return AGORA_ENOMEM;
    return 0;
}

static const agora__trust_plugin *find_app(const agora__trust_plugin *apps, size_t n,
                                           const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(apps[i].id, id) == 0)
            return &apps[i];
    return NULL;
}

static int apply_body(const ev *e, builder *b, const body *bd, const char *rule_id,
                      const agora__trust_plugin *apps, size_t n_apps, int have_apps)
{
    for (size_t i = 0; i < bd->n_run; i++) {
        const plugin_ref *p = &bd->run[i];
        const char *version = p->version;
        if (have_apps) {
            const agora__trust_plugin *app = find_app(apps, n_apps, p->id);
            const char *why = NULL;
            if (app == NULL)
                why = "not installed";
            else if (p->version[0] && strcmp(p->version, app->version) != 0)
                why = "installed at another version";
            else if (app->status != AGORA__TRUST_OK)
                why = agora__trust_status_name(app->status);
            else if (!app->manifest_ok)
                why = "its installed manifest could not be read";
            else if (!modality_accepted(&app->manifest, e->a))
                why = "its manifest does not accept the series' modality";
            if (why != NULL) {
                step(e, AGORA__RULES_STEP_SKIP, 0, NULL, NULL, AGORA__RULES_FAIL, p->id, why);
                b->skipped++;
                continue;
            }
            version = app->version;
        }
        if (add_job(b, rule_id, bd->study_scope, p->id, version, bd->priority, bd->send_to,
                    bd->n_send_to) != 0)
            return AGORA_ENOMEM;
    }
    return 0;
}

static char *const default_dest[] = {(char *)AGORA__RULES_DEST_DEFAULT};

/* The default rule: every eligible app whose manifest accepts the modality. bd (may be NULL)
 * gives priority and destinations (the default fallback's). */
static int apply_default(ev *e, builder *b, const body *bd, const agora__trust_plugin *apps,
                         size_t n_apps)
{
    e->rule_id = AGORA__RULES_ID_DEFAULT;
    for (size_t i = 0; i < n_apps; i++) {
        const agora__trust_plugin *app = &apps[i];
        int ok = app->status == AGORA__TRUST_OK && app->manifest_ok &&
                 modality_accepted(&app->manifest, e->a);
        step(e, AGORA__RULES_STEP_DEFAULT, 0, "Modality", NULL,
             ok ? AGORA__RULES_PASS : AGORA__RULES_FAIL, app->id, NULL);
        if (!ok)
            continue;
        if (add_job(b, AGORA__RULES_ID_DEFAULT, app->manifest.study_scope, app->id, app->version,
                    bd ? bd->priority : AGORA__RULES_NORMAL, bd ? bd->send_to : default_dest,
                    bd ? bd->n_send_to : 1) != 0)
            return AGORA_ENOMEM;
    }
    return 0;
}

void agora__route_plan_free(agora__route_plan *p)
{
    if (p == NULL)
        return;
    free(p->matches);
    free(p->send_storage_);
    memset(p, 0, sizeof *p);
}

/* Move the builder's entries into the plan: one array of matches, one of destinations. */
static int finish(builder *b, agora__route_plan *out)
{
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++)
        total += b->v[i].n_send;
    if (b->n > 0 && (out->matches = calloc(b->n, sizeof *out->matches)) == NULL)
        return AGORA_ENOMEM;
    if (total > 0 && (out->send_storage_ = calloc(total, sizeof *out->send_storage_)) == NULL)
        return AGORA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        out->matches[i] = b->v[i].m;
        out->matches[i].send_to = out->send_storage_ ? out->send_storage_ + k : NULL;
        out->matches[i].n_send_to = b->v[i].n_send;
        for (size_t j = 0; j < b->v[i].n_send; j++)
            out->send_storage_[k++] = b->v[i].send[j];
    }
    out->n_matches = b->n;
    out->n_skipped = b->skipped;
    return 0;
}

int agora__rules_eval(const agora__rules *r, const agora__trust_plugin *apps, size_t n_apps,
                      const agora__route_attrs *a, agora__route_plan *out,
                      agora__rules_explain_fn explain, void *arg, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (a == NULL || (apps == NULL && n_apps > 0))
        return agora__error_set(err, AGORA_EINVAL, "agora__rules_eval: no attributes given");
    ev e = {a, explain, arg, NULL};
    builder b = {0};
    int rc = 0;
    int have_apps = apps != NULL;
    const char *first = NULL, *discard = NULL;
    for (size_t i = 0; r != NULL && i < r->n; i++) {
        const rule *ru = &r->rules[i];
        e.rule_id = ru->id;
        int m = eval_cond(&e, &ru->when, 1);
        step(&e, AGORA__RULES_STEP_RULE, 0, NULL, NULL, m ? AGORA__RULES_PASS : AGORA__RULES_FAIL,
             NULL, NULL);
        if (!m)
            continue;
        if (first == NULL)
            first = ru->id;
        if (ru->b.action == B_DISCARD && discard == NULL)
            discard = ru->id;
    }
    if (discard != NULL) {
        out->action = AGORA__ROUTE_DISCARD;
        out->rule_id = discard;
        return 0;
    }
    if (r == NULL) {
        out->action = AGORA__ROUTE_RUN;
        out->rule_id = AGORA__RULES_ID_DEFAULT;
        rc = apply_default(&e, &b, NULL, apps, n_apps);
    } else if (first != NULL) {
        out->action = AGORA__ROUTE_RUN;
        out->rule_id = first;
        /* Second pass over the matching rules only, in file order, to merge their jobs (the
         * conditions are re-evaluated without explanations: cheap, and no per-rule state). */
        ev quiet = {a, NULL, NULL, NULL};
        for (size_t i = 0; rc == 0 && i < r->n; i++) {
            const rule *ru = &r->rules[i];
            if (!eval_cond(&quiet, &ru->when, 1))
                continue;
            e.rule_id = ru->id;
            rc = apply_body(&e, &b, &ru->b, ru->id, apps, n_apps, have_apps);
        }
    } else {
        const body *fb = &r->fallback;
        e.rule_id = AGORA__RULES_ID_FALLBACK;
        if (fb->action != B_NONE)
            step(&e, AGORA__RULES_STEP_FALLBACK, 0, NULL, action_word(fb->action),
                 AGORA__RULES_PASS, NULL, NULL);
        if (fb->action == B_DISCARD) {
            out->action = AGORA__ROUTE_DISCARD;
            out->rule_id = AGORA__RULES_ID_FALLBACK;
        } else if (fb->action == B_RUN) {
            out->action = AGORA__ROUTE_RUN;
            out->rule_id = AGORA__RULES_ID_FALLBACK;
            rc = apply_body(&e, &b, fb, AGORA__RULES_ID_FALLBACK, apps, n_apps, have_apps);
        } else if (fb->action == B_DEFAULT) {
            out->action = AGORA__ROUTE_RUN;
            out->rule_id = AGORA__RULES_ID_DEFAULT;
            rc = apply_default(&e, &b, fb, apps, n_apps);
        }
    }
    if (rc == 0)
        rc = finish(&b, out);
    for (size_t i = 0; i < b.n; i++)
        free(b.v[i].send);
    free(b.v);
    if (rc != 0) {
        agora__route_plan_free(out);
        return agora__error_set(err, rc, "routing a series: out of memory");
    }
    return 0;
}
