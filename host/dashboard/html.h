/*
 * A growable text buffer for the dashboard's pages, with HTML escaping (issue 14). Every string
 * that did not come from a literal in dashboard code goes through agora__html_text (element
 * text and attribute values alike: & < > " ' are replaced), so a hostile plugin id, error
 * message or user name cannot add markup. A library: never prints.
 *
 * Errors are sticky: after an allocation failure (or the AGORA__HTML_MAX cap) every append is a
 * no-op and agora__html_failed says so; the page handler answers 500.
 */
#ifndef AGORA_DASHBOARD_HTML_H
#define AGORA_DASHBOARD_HTML_H

#include <stddef.h>

#define AGORA__HTML_MAX (8u * 1024u * 1024u) /* one page */

typedef struct agora__html {
    char *p;
    size_t len, cap;
    int failed;
} agora__html;

void agora__html_init(agora__html *h);
void agora__html_free(agora__html *h);
int agora__html_failed(const agora__html *h);
/* Append raw markup (trusted literals only). */
void agora__html_raw(agora__html *h, const char *s);
/* Append printf-formatted raw markup: only numbers and literals in the arguments. */
void agora__html_rawf(agora__html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s escaped (NULL appends nothing). */
void agora__html_text(agora__html *h, const char *s);
/* The escaped form of s into out (size bytes, truncated at a whole entity); returns the length
 * it needed (as snprintf). For tests and short values. */
size_t agora__html_escape(const char *s, char *out, size_t size);

#endif
