/*
 * Syntax checks for the identifiers and units a result carries: DICOM UIDs (PS3.5 9.1) and
 * UCUM unit expressions (the grammar of the UCUM specification, without looking atoms up in
 * the unit tables: enough to keep free text out of the unit field and to let FHIR consumers
 * parse it).
 */
#include <string.h>

#include "results_private.h"

int agora__results_uid_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    size_t part = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (part == 0)
                return 0;
            part = 0;
            continue;
        }
        if (ch < '0' || ch > '9')
            return 0;
        if (part == 0 && ch == '0' && s[i + 1] != '.' && s[i + 1] != '\0')
            return 0; /* a component has no leading zero */
        part++;
    }
    return 1;
}

typedef struct ucum_parser {
    const char *s;
    size_t i;
    int depth;
} ucum_parser;

static int is_atom_char(char ch)
{
    /* Narrower than the printable ASCII UCUM allows in atoms: letters and the few signs the
     * UCUM tables use outside brackets. */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '%' || ch == '\'' ||
           ch == '_' || ch == '*' || ch == '^';
}

static int digits(ucum_parser *p)
{
    size_t start = p->i;
    while (p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > start;
}

static int annotation(ucum_parser *p)
{
    if (p->s[p->i] != '{')
        return 0;
    p->i++;
    while (p->s[p->i] != '}') {
        char ch = p->s[p->i];
        if (ch < 0x21 || ch > 0x7e || ch == '{')
            return 0;
        p->i++;
    }
    p->i++;
    return 1;
}

/* simple unit: atom symbols, optionally with [..] groups; digits are taken as exponent. */
static int simple_unit(ucum_parser *p)
{
    size_t start = p->i;
    /* "10*" and "10^": the only atoms that start with digits */
    if (strncmp(p->s + p->i, "10*", 3) == 0 || strncmp(p->s + p->i, "10^", 3) == 0)
        p->i += 3;
    for (;;) {
        char ch = p->s[p->i];
        if (ch == '[') {
            p->i++;
            while (p->s[p->i] != ']') {
                char c = p->s[p->i];
                if (c < 0x21 || c > 0x7e || c == '[')
                    return 0;
                p->i++;
            }
            p->i++;
        } else if (is_atom_char(ch)) {
            p->i++;
        } else {
            break;
        }
    }
    return p->i > start;
}

static int term(ucum_parser *p);

static int component(ucum_parser *p)
{
    char ch = p->s[p->i];
    if (ch == '(') {
        if (++p->depth > 8)
            return 0;
        p->i++;
        if (!term(p) || p->s[p->i] != ')')
            return 0;
        p->i++;
        p->depth--;
        return 1;
    }
    if (ch == '{')
        return annotation(p);
    if (ch >= '0' && ch <= '9' && strncmp(p->s + p->i, "10*", 3) != 0 &&
        strncmp(p->s + p->i, "10^", 3) != 0)
        return digits(p); /* a factor such as "1" or "1000" */
    if (!simple_unit(p))
        return 0;
    if (p->s[p->i] == '+' || p->s[p->i] == '-') {
        p->i++;
        if (!digits(p))
            return 0;
    } else {
        digits(p);
    }
    if (p->s[p->i] == '{')
        return annotation(p);
    return 1;
}

static int term(ucum_parser *p)
{
    if (!component(p))
        return 0;
    while (p->s[p->i] == '.' || p->s[p->i] == '/') {
        p->i++;
        if (!component(p))
            return 0;
    }
    return 1;
}

int agora__results_ucum_valid(const char *unit)
{
    if (unit == NULL)
        return 0;
    size_t n = strlen(unit);
    if (n == 0 || n > 64)
        return 0;
    ucum_parser p = {unit, 0, 0};
    if (unit[0] == '/')
        p.i = 1;
    return term(&p) && p.i == n;
}
