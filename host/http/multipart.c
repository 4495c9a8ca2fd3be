/* Streaming multipart/related parser (multipart.h): a byte-driven state machine. */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

#define DELIM_MAX (4 + AGORA__MULTIPART_BOUNDARY_MAX) /* CRLF "--" boundary */
#define PAD_MAX   256u                                /* transport padding after a delimiter */
#define LINE_MAX_ 1024u                               /* one part header line */
#define BAD_LINE  "a boundary line does not end with CRLF"

enum state {
    S_PREAMBLE,   /* before the first delimiter (matched as if the body began with CRLF) */
    S_AFTER,      /* a delimiter matched: "--" (close) or padding then CRLF */
    S_AFTER_DASH, /* one '-' after the delimiter */
    S_AFTER_CR,   /* padding, then CR: LF must follow */
    S_HEADERS,    /* header lines of a part, until an empty line */
    S_HEADER_LF,  /* CR seen in a header line */
    S_BODY,       /* part data until the next delimiter */
    S_EPILOGUE,   /* after the close delimiter: ignored */
    S_FAILED,
};

struct agora__multipart {
    agora__multipart_limits lim;
    agora__multipart_cb cb;
    void *arg;
    uint8_t delim[DELIM_MAX];
    size_t delim_len, matched; /* bytes of delim matched so far (body and preamble) */
    enum state st;
    int in_part; /* part_begin called, part_end not yet */
    uint64_t total;
    unsigned parts, pad;
    /* headers of the current part */
    char line[LINE_MAX_];
    size_t line_len, header_bytes;
    agora__multipart_part part;
    agora__multipart_fail fail;
    int code;
    char msg[160];
};

static int is_bchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=? ", c) != NULL;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int agora__multipart_boundary(const char *ct, char out[AGORA__MULTIPART_BOUNDARY_MAX + 1],
                              int *type_ok, agora__error *err)
{
    out[0] = 0;
    *type_ok = 1;
    if (ct == NULL)
        return agora__error_set(err, AGORA_EUNSUPPORTED, "no Content-Type; send multipart/related");
    const char *s = skip_ws(ct), *t = s;
    while (is_tchar((unsigned char)*s) || *s == '/')
        s++;
    if (!ieq(t, (size_t)(s - t), "multipart/related"))
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                "Content-Type is not multipart/related; STOW-RS takes "
                                "multipart/related; type=\"application/dicom\"");
    int have_boundary = 0;
    for (;;) {
        s = skip_ws(s);
        if (*s == 0)
            break;
        if (*s != ';')
            return agora__error_set(err, AGORA__EPROTO, "malformed Content-Type parameters");
        s = skip_ws(s + 1);
        if (*s == 0)
            break; /* a trailing ';' is tolerated */
        const char *name = s;
        while (is_tchar((unsigned char)*s))
            s++;
        size_t name_len = (size_t)(s - name);
        s = skip_ws(s);
        if (name_len == 0 || *s != '=')
            return agora__error_set(err, AGORA__EPROTO, "malformed Content-Type parameters");
        s = skip_ws(s + 1);
        char val[AGORA__MULTIPART_CTYPE_MAX + 1];
        size_t n = 0;
        if (*s == '"') {
            s++;
            while (*s != '"') {
                if (*s == 0)
                    return agora__error_set(err, AGORA__EPROTO,
                                            "unterminated quoted Content-Type parameter");
                if (*s == '\\' && s[1] != 0)
                    s++;
                if (n >= sizeof val - 1)
                    return agora__error_set(err, AGORA__EPROTO,
                                            "a Content-Type parameter is too long");
                val[n++] = *s++;
            }
            s++;
        } else {
            while (is_tchar((unsigned char)*s) || *s == '/' || *s == ':' || *s == '=' ||
                   *s == '?' || *s == '(' || *s == ')' || *s == ',') {
                if (n >= sizeof val - 1)
                    return agora__error_set(err, AGORA__EPROTO,
                                            "a Content-Type parameter is too long");
                val[n++] = *s++;
            }
        }
        val[n] = 0;
        if (ieq(name, name_len, "boundary")) {
            if (have_boundary)
                return agora__error_set(err, AGORA__EPROTO, "two boundary parameters");
            if (n == 0 || n > AGORA__MULTIPART_BOUNDARY_MAX || val[n - 1] == ' ')
                return agora__error_set(err, AGORA__EPROTO,
                                        "the boundary must be 1 to 120 characters");
            for (size_t i = 0; i < n; i++)
                if (!is_bchar((unsigned char)val[i]))
                    return agora__error_set(err, AGORA__EPROTO,
                                            "the boundary has a character RFC 2046 does not "
                                            "allow");
            memcpy(out, val, n + 1);
            have_boundary = 1;
        } else if (ieq(name, name_len, "type")) {
            *type_ok = ieq(val, n, "application/dicom");
        }
    }
    if (!have_boundary)
        return agora__error_set(err, AGORA__EPROTO, "multipart/related without a boundary");
    return 0;
}

int agora__multipart_create(const char *boundary, const agora__multipart_limits *lim,
                            const agora__multipart_cb *cb, void *arg, agora__multipart **out,
                            agora__error *err)
{
    *out = NULL;
    size_t n = boundary ? strlen(boundary) : 0;
    if (n == 0 || n > AGORA__MULTIPART_BOUNDARY_MAX)
        return agora__error_set(err, AGORA_EINVAL, "the boundary must be 1 to 120 characters");
    for (size_t i = 0; i < n; i++)
        if (!is_bchar((unsigned char)boundary[i]))
            return agora__error_set(err, AGORA_EINVAL,
                                    "the boundary has a character RFC 2046 "
                                    "does not allow");
    agora__multipart *m = calloc(1, sizeof *m);
    if (m == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for a multipart parser");
    m->lim = *lim;
    m->cb = *cb;
    m->arg = arg;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->delim_len = 4 + n;
    m->matched = 2; /* the body may begin with the delimiter itself: as if after a CRLF */
    m->st = S_PREAMBLE;
    *out = m;
    return 0;
}

void agora__multipart_destroy(agora__multipart *m)
{
    free(m);
}

agora__multipart_fail agora__multipart_failure(const agora__multipart *m)
{
    return m->fail;
}

unsigned agora__multipart_parts(const agora__multipart *m)
{
    return m->parts;
}

/* Stop for good. An open part is ended (incomplete) first, so that every part_begin has its
 * part_end, unless a callback itself stopped the parser. */
static int stop(agora__multipart *m, agora__multipart_fail why, int code, const char *msg)
{
    m->st = S_FAILED;
    m->fail = why; /* set first: part_end may ask agora__multipart_failure why */
    m->code = code;
    agora__strlcpy(m->msg, msg, sizeof m->msg);
    if (m->in_part && why != AGORA__MULTIPART_CALLBACK) {
        m->in_part = 0;
        if (m->cb.part_end)
            (void)m->cb.part_end(m->arg, 0); /* the parser is stopping anyway */
    }
    return code;
}

static int sticky(const agora__multipart *m, agora__error *err)
{
    return agora__error_set(err, m->code, "%s", m->msg);
}

/* Stop now and return the error (feed's exits). */
static int fail_now(agora__multipart *m, agora__multipart_fail why, int code, const char *msg,
                    agora__error *err)
{
    stop(m, why, code, msg);
    return sticky(m, err);
}

/* A delimiter line ended: the open part (if any) is complete. */
static int end_part(agora__multipart *m)
{
    if (!m->in_part)
        return 0;
    m->in_part = 0;
    int rc = m->cb.part_end ? m->cb.part_end(m->arg, 1) : 0;
    if (rc != 0)
        return stop(m, AGORA__MULTIPART_CALLBACK, rc, "the receiver stopped the body");
    return 0;
}

/* One complete header line (without CRLF) of the current part. */
static int header_line(agora__multipart *m)
{
    if (m->line_len == 0)
        return 0;
    if (++m->part.n_headers > m->lim.max_headers)
        return stop(m, AGORA__MULTIPART_LIMIT, AGORA_ELIMIT, "a part has too many header lines");
    if (m->line[0] == ' ' || m->line[0] == '\t')
        return stop(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                    "a part header is folded (obsolete line folding is not accepted)");
    const char *colon = memchr(m->line, ':', m->line_len);
    if (colon == NULL || colon == m->line)
        return stop(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                    "a part header line has no name or no ':'");
    for (const char *c = m->line; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return stop(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                        "a part header name has a character HTTP does not allow");
    if (ieq(m->line, (size_t)(colon - m->line), "content-type")) {
        const char *v = colon + 1, *end = m->line + m->line_len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (m->part.content_type[0])
            return stop(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                        "a part has two Content-Type headers");
        size_t n = (size_t)(end - v);
        if (n > AGORA__MULTIPART_CTYPE_MAX)
            n = AGORA__MULTIPART_CTYPE_MAX;
        memcpy(m->part.content_type, v, n);
        m->part.content_type[n] = 0;
    }
    return 0;
}

/* Emit part bytes (ignored outside a part: preamble). */
static int data(agora__multipart *m, const uint8_t *p, size_t n)
{
    if (n == 0 || m->st != S_BODY)
        return 0;
    int rc = m->cb.part_data ? m->cb.part_data(m->arg, p, n) : 0;
    if (rc != 0)
        return stop(m, AGORA__MULTIPART_CALLBACK, rc, "the receiver stopped the body");
    return 0;
}

/* Body or preamble bytes: match the delimiter, pass everything else on as data. Because the
 * delimiter begins with CR and a boundary holds no CR, after a mismatch no suffix of the
 * matched bytes can begin a new match: the matched prefix is data and the byte is looked at
 * again from the start. A prefix matched at the end of one call is carried to the next as a
 * count (held): its bytes equal the delimiter's, so they need not be kept. Returns 1 when a
 * delimiter ended at p[*used - 1], 0 when all of p was consumed; a callback's stop leaves the
 * parser failed. */
static int scan(agora__multipart *m, const uint8_t *p, size_t n, size_t *used)
{
    size_t held = m->matched; /* prefix matched in earlier calls (not in p) */
    size_t run = 0;           /* start of the plain data in p not yet passed on */
    size_t mstart = 0;        /* where the current match began in p (when held is 0) */
    size_t i = 0;
    while (i < n) {
        if (p[i] == m->delim[m->matched]) {
            if (m->matched == 0)
                mstart = i;
            m->matched++;
            i++;
            if (m->matched == m->delim_len) {
                size_t end = held ? 0 : mstart;
                m->matched = 0;
                if (end > run && data(m, p + run, end - run) != 0)
                    return 0;
                *used = i;
                return 1;
            }
            continue;
        }
        if (m->matched > 0) {
            if (held > 0) {
                /* The carried prefix is data, then p[0..i) (still in the run). */
                if (data(m, m->delim, held) != 0)
                    return 0;
                held = 0;
            }
            m->matched = 0;
            continue;
        }
        i++;
    }
    size_t end = n;
    if (m->matched > 0)
        end = held ? 0 : mstart;
    if (end > run && data(m, p + run, end - run) != 0)
        return 0;
    *used = n;
    return 0;
}

int agora__multipart_feed(agora__multipart *m, const uint8_t *p, size_t n, agora__error *err)
{
    if (m->st == S_FAILED)
        return sticky(m, err);
    if (n > m->lim.max_total - m->total || m->total > m->lim.max_total) {
        return fail_now(m, AGORA__MULTIPART_LIMIT, AGORA_ELIMIT,
                        "the multipart body is over its size limit", err);
    }
    m->total += n;
    size_t i = 0;
    while (i < n) {
        switch (m->st) {
        case S_PREAMBLE:
        case S_BODY:
        case S_EPILOGUE: {
            if (m->st == S_EPILOGUE)
                return 0;
            size_t used = 0;
            int rc = scan(m, p + i, n - i, &used);
            if (m->st == S_FAILED)
                return sticky(m, err);
            i += used;
            if (rc == 1) {
                m->st = S_AFTER;
                m->pad = 0;
            }
            break;
        }
        case S_AFTER: {
            uint8_t c = p[i++];
            if (c == '-' && m->pad == 0) {
                m->st = S_AFTER_DASH;
            } else if (c == ' ' || c == '\t') {
                if (++m->pad > PAD_MAX) {
                    return fail_now(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                                    "too much padding after a boundary", err);
                }
            } else if (c == '\r') {
                m->st = S_AFTER_CR;
            } else {
                return fail_now(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO, BAD_LINE, err);
            }
            break;
        }
        case S_AFTER_DASH: {
            if (p[i++] != '-')
                return fail_now(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO, BAD_LINE, err);
            if (end_part(m) != 0)
                return sticky(m, err);
            m->st = S_EPILOGUE;
            return 0;
        }
        case S_AFTER_CR: {
            if (p[i++] != '\n')
                return fail_now(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO, BAD_LINE, err);
            if (end_part(m) != 0)
                return sticky(m, err);
            if (m->parts >= m->lim.max_parts)
                return fail_now(m, AGORA__MULTIPART_LIMIT, AGORA_ELIMIT,
                                "the body has too many parts", err);
            memset(&m->part, 0, sizeof m->part);
            m->part.index = m->parts;
            m->line_len = 0;
            m->header_bytes = 0;
            m->st = S_HEADERS;
            break;
        }
        case S_HEADERS:
        case S_HEADER_LF: {
            uint8_t c = p[i++];
            if (++m->header_bytes > m->lim.max_header_bytes) {
                return fail_now(m, AGORA__MULTIPART_LIMIT, AGORA_ELIMIT,
                                "a part's headers are too large", err);
            }
            if (m->st == S_HEADER_LF) {
                if (c != '\n') {
                    return fail_now(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                                    "a part header line does not end with CRLF", err);
                }
                if (m->line_len == 0) {
                    /* The empty line: the part's body begins. */
                    m->parts++;
                    m->in_part = 1;
                    m->st = S_BODY;
                    m->matched = 0;
                    int rc = m->cb.part_begin ? m->cb.part_begin(m->arg, &m->part) : 0;
                    if (rc != 0) {
                        stop(m, AGORA__MULTIPART_CALLBACK, rc, "the receiver stopped the body");
                        return sticky(m, err);
                    }
                    break;
                }
                if (header_line(m) != 0)
                    return sticky(m, err);
                m->line_len = 0;
                m->st = S_HEADERS;
                break;
            }
            if (c == '\r') {
                m->st = S_HEADER_LF;
            } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
                return fail_now(m, AGORA__MULTIPART_MALFORMED, AGORA__EPROTO,
                                "a part header has a control character", err);
            } else {
                if (m->line_len >= sizeof m->line) {
                    return fail_now(m, AGORA__MULTIPART_LIMIT, AGORA_ELIMIT,
                                    "a part header line is too long", err);
                }
                m->line[m->line_len++] = (char)c;
            }
            break;
        }
        case S_FAILED:
            return sticky(m, err);
        }
    }
    return 0;
}

int agora__multipart_finish(agora__multipart *m, agora__error *err)
{
    if (m->st == S_FAILED)
        return sticky(m, err);
    if (m->st == S_EPILOGUE)
        return 0;
    if (m->in_part) {
        m->in_part = 0;
        int rc = m->cb.part_end ? m->cb.part_end(m->arg, 0) : 0;
        if (rc != 0) {
            stop(m, AGORA__MULTIPART_CALLBACK, rc, "the receiver stopped the body");
            return sticky(m, err);
        }
    }
    stop(m, AGORA__MULTIPART_TRUNCATED, AGORA__EPROTO,
         m->parts == 0 && m->st == S_PREAMBLE
             ? "the body has no multipart boundary line"
             : "the multipart body ended before its closing boundary (truncated)");
    return sticky(m, err);
}
