/* Names and value checks shared by manifests, the catalog and the CLI: PS3.15 options, outputs,
 * pricing models, currencies, reverse-DNS ids and semantic versions. */
#include "trust_int.h"

#include <string.h>

static const char *const output_names[AGORA__OUT_COUNT] = {
    "findings", "measurements", "regions", "masks", "summary",
};

static const char *const pricing_models[] = {
    "per-study", "per-series", "per-instance", "subscription", "free",
};

static const char *const status_names[] = {
    "ok", "revoked", "expired-catalog", "not-in-catalog", "tampered",
};

const char *agora__trust_option_name(unsigned index)
{
    const agora__ps315_info *o = index < AGORA__OPT_COUNT ? agora__ps315((int)index) : NULL;
    return o != NULL && (o->uses & AGORA__PS315_NAMED) ? o->name : NULL;
}

int agora__trust_option_parse(const char *name, uint32_t *bit)
{
    int o = agora__ps315_from_name(name);
    if (o < 0 || agora__trust_option_name((unsigned)o) == NULL)
        return AGORA_EINVAL;
    *bit = AGORA__PS315_BIT(o);
    return 0;
}

const char *agora__trust_option_refusal(uint32_t bits)
{
    for (int i = 0; i < AGORA__OPT_COUNT; i++) {
        const agora__ps315_info *o = agora__ps315(i);
        if ((bits & AGORA__PS315_BIT(i)) && !(o->uses & AGORA__PS315_GRANT))
            return o->refusal != NULL ? o->refusal : "it is never given to a plugin";
    }
    return NULL;
}

void agora__trust_options_format(uint32_t options, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    for (unsigned i = 0; i < AGORA__OPT_COUNT; i++) {
        const char *name = agora__trust_option_name(i);
        if (!(options & (1u << i)) || name == NULL)
            continue;
        if (used > 0)
            used += agora__strlcpy(buf + used, ",", size - used);
        if (used < size)
            used += agora__strlcpy(buf + used, name, size - used);
        if (used >= size)
            return;
    }
    if (used == 0)
        agora__strlcpy(buf, "none", size);
}

const char *agora__output_name(unsigned index)
{
    return index < AGORA__OUT_COUNT ? output_names[index] : NULL;
}

const char *agora__trust_status_name(int status)
{
    if (status < 0 || (size_t)status >= sizeof status_names / sizeof status_names[0])
        return "unknown";
    return status_names[status];
}

int agora__pricing_model_valid(const char *s)
{
    for (size_t i = 0; i < sizeof pricing_models / sizeof pricing_models[0]; i++)
        if (strcmp(s, pricing_models[i]) == 0)
            return 1;
    return 0;
}

int agora__currency_valid(const char *s)
{
    if (strlen(s) != 3)
        return 0;
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return 0;
    return 1;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Lower-case labels of [a-z0-9-] not starting or ending with '-', at least two labels, the first
 * starting with a letter. Ids name directories in the clinic home, so this also rules out '/',
 * "..", and empty labels. */
int agora__reverse_dns_valid(const char *s)
{
    size_t len = strlen(s);
    if (len < 3 || len > AGORA__TRUST_ID_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    size_t labels = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (s[i] == '.' || s[i] == '\0') {
            if (i == start || s[start] == '-' || s[i - 1] == '-' || i - start > 63)
                return 0;
            labels++;
            start = i + 1;
        } else if (!is_lower_alnum(s[i]) && s[i] != '-') {
            return 0;
        }
    }
    return labels >= 2;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A numeric identifier without leading zeros. Advances *p. */
static int numeric_id(const char **p)
{
    const char *s = *p;
    if (!is_digit(*s))
        return 0;
    if (*s == '0' && is_digit(s[1]))
        return 0;
    size_t n = 0;
    while (is_digit(*s)) {
        s++;
        if (++n > 9) /* keeps comparisons in uint32 range */
            return 0;
    }
    *p = s;
    return 1;
}

static int ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Dot-separated non-empty identifiers; numeric ones (prerelease only) without leading zeros. */
static int dot_idents(const char **p, int numeric_rule)
{
    const char *s = *p;
    for (;;) {
        const char *start = s;
        int all_digits = 1;
        while (ident_char(*s)) {
            if (!is_digit(*s))
                all_digits = 0;
            s++;
        }
        if (s == start)
            return 0;
        if (numeric_rule && all_digits && *start == '0' && s - start > 1)
            return 0;
        if (*s != '.')
            break;
        s++;
    }
    *p = s;
    return 1;
}

int agora__semver_valid(const char *s)
{
    if (strlen(s) > AGORA__TRUST_VERSION_MAX)
        return 0;
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        if (!numeric_id(&p))
            return 0;
        if (i < 2 && *p++ != '.')
            return 0;
    }
    if (*p == '-') {
        p++;
        if (!dot_idents(&p, 1))
            return 0;
    }
    if (*p == '+') {
        p++;
        if (!dot_idents(&p, 0))
            return 0;
    }
    return *p == '\0';
}

static unsigned long read_num(const char **p)
{
    unsigned long v = 0;
    while (is_digit(**p)) {
        v = v * 10 + (unsigned long)(**p - '0');
        (*p)++;
    }
    return v;
}

/* Compare one prerelease identifier [a, a_end) with [b, b_end) per semver 2.0 rule 11. */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    int an_num = 1, bn_num = 1;
    for (size_t i = 0; i < an; i++)
        if (!is_digit(a[i]))
            an_num = 0;
    for (size_t i = 0; i < bn; i++)
        if (!is_digit(b[i]))
            bn_num = 0;
    if (an_num && bn_num) {
        if (an != bn)
            return an < bn ? -1 : 1;
        return memcmp(a, b, an) < 0 ? -1 : (memcmp(a, b, an) > 0 ? 1 : 0);
    }
    if (an_num != bn_num)
        return an_num ? -1 : 1;
    size_t n = an < bn ? an : bn;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return an == bn ? 0 : (an < bn ? -1 : 1);
}

int agora__semver_cmp(const char *a, const char *b)
{
    const char *pa = a, *pb = b;
    for (int i = 0; i < 3; i++) {
        unsigned long x = read_num(&pa), y = read_num(&pb);
        if (x != y)
            return x < y ? -1 : 1;
        if (*pa == '.')
            pa++;
        if (*pb == '.')
            pb++;
    }
    int a_pre = *pa == '-', b_pre = *pb == '-';
    if (!a_pre || !b_pre)
        return a_pre == b_pre ? 0 : (a_pre ? -1 : 1);
    pa++;
    pb++;
    for (;;) {
        size_t an = strcspn(pa, ".+"), bn = strcspn(pb, ".+");
        int c = cmp_ident(pa, an, pb, bn);
        if (c != 0)
            return c;
        pa += an;
        pb += bn;
        int a_more = *pa == '.', b_more = *pb == '.';
        if (!a_more || !b_more)
            return a_more == b_more ? 0 : (a_more ? 1 : -1);
        pa++;
        pb++;
    }
}
