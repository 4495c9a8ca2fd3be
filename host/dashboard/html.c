/* Page text buffer with HTML escaping (html.h). */
#include "html.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agora__html_init(agora__html *h)
{
    memset(h, 0, sizeof *h);
}

void agora__html_free(agora__html *h)
{
    free(h->p);
    memset(h, 0, sizeof *h);
}

int agora__html_failed(const agora__html *h)
{
    return h->failed;
}

static int reserve(agora__html *h, size_t more)
{
    if (h->failed)
        return -1;
    if (more > AGORA__HTML_MAX - h->len) {
        h->failed = 1;
        return -1;
    }
    if (h->len + more + 1 <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 4096;
    while (cap < h->len + more + 1)
        cap *= 2;
    char *p = realloc(h->p, cap);
    if (p == NULL) {
        h->failed = 1;
        return -1;
    }
    h->p = p;
    h->cap = cap;
    return 0;
}

static void append(agora__html *h, const char *s, size_t n)
{
    if (reserve(h, n) != 0)
        return;
    memcpy(h->p + h->len, s, n);
    h->len += n;
    h->p[h->len] = '\0';
}

void agora__html_raw(agora__html *h, const char *s)
{
    append(h, s, strlen(s));
}

void agora__html_rawf(agora__html *h, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        h->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        append(h, small, (size_t)n);
        return;
    }
    if (reserve(h, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(h->p + h->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    h->len += (size_t)n;
}

static const char *entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

void agora__html_text(agora__html *h, const char *s)
{
    if (s == NULL)
        return;
    const char *run = s;
    for (; *s; s++) {
        const char *e = entity(*s);
        if (e == NULL)
            continue;
        append(h, run, (size_t)(s - run));
        append(h, e, strlen(e));
        run = s + 1;
    }
    append(h, run, (size_t)(s - run));
}

size_t agora__html_escape(const char *s, char *out, size_t size)
{
    size_t need = 0, used = 0;
    int full = size == 0;
    for (; s && *s; s++) {
        const char *e = entity(*s);
        size_t n = e ? strlen(e) : 1;
        if (!full && used + n < size) {
            memcpy(out + used, e ? e : s, n);
            used += n;
        } else
            full = 1; /* nothing after a cut, so the prefix is whole */
        need += n;
    }
    if (size > 0)
        out[used < size ? used : size - 1] = '\0';
    return need;
}
