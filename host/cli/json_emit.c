/* The one JSON emitter of the `agora` tool (policy in json_emit.h). */
#include "json_emit.h"

#include <stdlib.h>
#include <string.h>

static size_t dump_flags(unsigned flags)
{
    size_t f = JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15);
    return f | ((flags & AGORA__JSON_LINE) ? JSON_COMPACT : JSON_INDENT(2));
}

char *agora__json_text(const json_t *doc, unsigned flags, size_t *len)
{
    if (doc == NULL)
        return NULL;
    char *text = json_dumps(doc, dump_flags(flags));
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *grown = realloc(text, n + 2);
    if (grown == NULL) {
        free(text);
        return NULL;
    }
    grown[n] = '\n';
    grown[n + 1] = '\0';
    *len = n + 1;
    return grown;
}

int agora__json_emit(FILE *f, const json_t *doc, unsigned flags)
{
    size_t len = 0;
    char *text = agora__json_text(doc, flags, &len);
    if (text == NULL) {
        /* Every string is checked by jansson: a text that is not UTF-8 fails the build. */
        fprintf(stderr, "agora: cannot build the JSON output (out of memory, or a text that is "
                        "not UTF-8)\n");
        return 1;
    }
    int ok = fwrite(text, 1, len, f) == len && fflush(f) == 0;
    free(text);
    if (!ok)
        fprintf(stderr, "agora: writing the JSON output failed\n");
    return ok ? 0 : 1;
}

int agora__json_emit_new(FILE *f, json_t *doc, unsigned flags)
{
    int rc = agora__json_emit(f, doc, flags);
    json_decref(doc);
    return rc;
}
