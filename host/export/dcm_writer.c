/*
 * The new-object DICOM writer (dcm_writer.h): an in-memory tree, sorted and encoded through
 * host/deid/writer.c's element framing with defined lengths.
 */
#include "dcm_writer.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deid.h"
#include "dicom.h"
#include "writer.h"

#define MAX_DEPTH   16         /* nesting of sequences the writer accepts */
#define MAX_TEXT    (1u << 20) /* UT/UC values here; SR text is capped far lower upstream */
#define DEFAULT_MAX ((size_t)1 << 30)

typedef struct dcmw_el {
    uint32_t tag;
    uint16_t vr;
    uint8_t *value; /* owned; NULL for a sequence or an empty value */
    size_t len;
    int is_seq;
    agora__dcmw_ds **items; /* owned */
    size_t n_items, cap_items;
} dcmw_el;

struct agora__dcmw_ds {
    agora__dcmw *w; /* the owning writer */
    uint32_t depth; /* 0 for the top level */
    dcmw_el *els;   /* owned, any order until encoded */
    size_t n, cap;
};

struct agora__dcmw {
    agora__dcmw_ds root;
    size_t max;
    int rc;
    const char *what; /* static text */
};

static void fail(agora__dcmw *w, int rc, const char *what)
{
    if (w->rc == 0) {
        w->rc = rc;
        w->what = what;
    }
}

static int live(const agora__dcmw_ds *ds)
{
    return ds != NULL && ds->w->rc == 0;
}

agora__dcmw *agora__dcmw_new(size_t max_bytes)
{
    agora__dcmw *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->root.w = w;
    w->max = max_bytes ? max_bytes : DEFAULT_MAX;
    return w;
}

static void ds_clear(agora__dcmw_ds *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        dcmw_el *e = &ds->els[i];
        free(e->value);
        for (size_t j = 0; j < e->n_items; j++) {
            ds_clear(e->items[j]);
            free(e->items[j]);
        }
        free(e->items);
    }
    free(ds->els);
    ds->els = NULL;
    ds->n = ds->cap = 0;
}

void agora__dcmw_free(agora__dcmw *w)
{
    if (w == NULL)
        return;
    ds_clear(&w->root);
    free(w);
}

agora__dcmw_ds *agora__dcmw_root(agora__dcmw *w)
{
    return w ? &w->root : NULL;
}

int agora__dcmw_status(const agora__dcmw *w, const char **what)
{
    if (what)
        *what = w->rc ? w->what : NULL;
    return w->rc;
}

/* The element with this tag (emptied, ready to be refilled) or a new one; NULL on error. */
static dcmw_el *slot(agora__dcmw_ds *ds, uint32_t tag)
{
    if (!live(ds))
        return NULL;
    if ((tag >> 16) == 0x0002 || (tag & 0xFFFFu) == 0 || (tag >> 16) == 0xFFFE) {
        fail(ds->w, AGORA_EINVAL, "a file meta, group length or item tag was put in a dataset");
        return NULL;
    }
    for (size_t i = 0; i < ds->n; i++) {
        dcmw_el *e = &ds->els[i];
        if (e->tag != tag)
            continue;
        free(e->value);
        for (size_t j = 0; j < e->n_items; j++) {
            ds_clear(e->items[j]);
            free(e->items[j]);
        }
        free(e->items);
        memset(e, 0, sizeof *e);
        e->tag = tag;
        return e;
    }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 16;
        dcmw_el *n = realloc(ds->els, cap * sizeof *n);
        if (n == NULL) {
            fail(ds->w, AGORA_ENOMEM, "out of memory");
            return NULL;
        }
        ds->els = n;
        ds->cap = cap;
    }
    dcmw_el *e = &ds->els[ds->n++];
    memset(e, 0, sizeof *e);
    e->tag = tag;
    return e;
}

void agora__dcmw_put(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const void *value, size_t len)
{
    if (!live(ds))
        return;
    if (vr == AGORA__DICOM_VR_SQ) {
        fail(ds->w, AGORA_EINVAL, "a sequence was put as a value");
        return;
    }
    if (!agora__deid_vr_long(vr) && len > 65534) {
        fail(ds->w, AGORA_ELIMIT, "a value is too long for its VR");
        return;
    }
    if (len > ds->w->max) {
        fail(ds->w, AGORA_ELIMIT, "a value is larger than the output limit");
        return;
    }
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (copy == NULL) {
            fail(ds->w, AGORA_ENOMEM, "out of memory");
            return;
        }
        memcpy(copy, value, len);
    }
    dcmw_el *e = slot(ds, tag);
    if (e == NULL) {
        free(copy);
        return;
    }
    e->vr = vr;
    e->value = copy;
    e->len = len;
}

/* Maximum bytes of one value of a text VR (0: not a text VR this writer knows). */
static size_t text_max(uint16_t vr)
{
    switch (vr) {
    case AGORA__DCMW_VR('C', 'S'):
    case AGORA__DCMW_VR('S', 'H'):
    case AGORA__DCMW_VR('D', 'S'):
    case AGORA__DCMW_VR('T', 'M'):
        return 16;
    case AGORA__DCMW_VR('A', 'E'):
        return 16;
    case AGORA__DCMW_VR('L', 'O'):
    case AGORA__DCMW_VR('U', 'I'):
        return 64;
    case AGORA__DCMW_VR('D', 'A'):
        return 8;
    case AGORA__DCMW_VR('D', 'T'):
        return 26;
    case AGORA__DCMW_VR('I', 'S'):
        return 12;
    case AGORA__DCMW_VR('A', 'S'):
        return 4;
    case AGORA__DCMW_VR('P', 'N'):
        return 64 * 3 + 2;
    case AGORA__DCMW_VR('S', 'T'):
        return 1024;
    case AGORA__DCMW_VR('L', 'T'):
        return 10240;
    case AGORA__DCMW_VR('U', 'T'):
    case AGORA__DCMW_VR('U', 'C'):
    case AGORA__DCMW_VR('U', 'R'):
        return MAX_TEXT;
    default:
        return 0;
    }
}

static int single_valued(uint16_t vr)
{
    return vr == AGORA__DCMW_VR('S', 'T') || vr == AGORA__DCMW_VR('L', 'T') ||
           vr == AGORA__DCMW_VR('U', 'T') || vr == AGORA__DCMW_VR('U', 'R');
}

/* One value (between backslashes) of a text VR: its length and characters. */
static int value_ok(uint16_t vr, const char *v, size_t n)
{
    if (n > text_max(vr))
        return 0;
    if (vr == AGORA__DCMW_VR('U', 'I'))
        return n > 0 && agora__deid_uid_valid(v, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (vr == AGORA__DCMW_VR('C', 'S') && !(isupper(c) || isdigit(c) || c == ' ' || c == '_'))
            return 0;
        if ((vr == AGORA__DCMW_VR('D', 'S') || vr == AGORA__DCMW_VR('I', 'S')) &&
            !(isdigit(c) || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E' || c == ' '))
            return 0;
        if ((vr == AGORA__DCMW_VR('D', 'A') || vr == AGORA__DCMW_VR('T', 'M')) &&
            !(isdigit(c) || c == '.'))
            return 0;
    }
    return 1;
}

void agora__dcmw_str(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const char *s)
{
    if (!live(ds))
        return;
    if (text_max(vr) == 0) {
        fail(ds->w, AGORA_EINVAL, "a string was put with a VR that is not text");
        return;
    }
    size_t len = s ? strnlen(s, MAX_TEXT + 1) : 0;
    if (len > MAX_TEXT) {
        fail(ds->w, AGORA_ELIMIT, "a text value is too long");
        return;
    }
    if (len) {
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i < len && (s[i] != '\\' || single_valued(vr)))
                continue;
            if (!value_ok(vr, s + start, i - start)) {
                fail(ds->w, AGORA_EINVAL, "a text value breaks its VR's length or charset");
                return;
            }
            start = i + 1;
        }
    }
    agora__dcmw_put(ds, tag, vr, s, len);
}

void agora__dcmw_strf(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const char *fmt, ...)
{
    if (!live(ds))
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        fail(ds->w, AGORA_ELIMIT, "a formatted value is too long");
        return;
    }
    agora__dcmw_str(ds, tag, vr, buf);
}

static void put_le(agora__dcmw_ds *ds, uint32_t tag, uint16_t vr, const void *v, size_t n,
                   size_t size)
{
    if (!live(ds))
        return;
    if (n > 65534 / size) {
        fail(ds->w, AGORA_ELIMIT, "too many values");
        return;
    }
    uint8_t buf[65536];
    /* Little-endian host order is assumed nowhere: bytes are produced explicitly. */
    for (size_t i = 0; i < n; i++) {
        uint64_t x = 0;
        if (size == 2)
            x = ((const uint16_t *)v)[i];
        else if (size == 4)
            x = ((const uint32_t *)v)[i];
        else
            memcpy(&x, &((const double *)v)[i], 8);
        for (size_t k = 0; k < size; k++)
            buf[i * size + k] = (uint8_t)(x >> (8 * k));
    }
    agora__dcmw_put(ds, tag, vr, buf, n * size);
}

void agora__dcmw_us(agora__dcmw_ds *ds, uint32_t tag, const uint16_t *v, size_t n)
{
    put_le(ds, tag, AGORA__DCMW_VR('U', 'S'), v, n, 2);
}

void agora__dcmw_ul(agora__dcmw_ds *ds, uint32_t tag, const uint32_t *v, size_t n)
{
    put_le(ds, tag, AGORA__DCMW_VR('U', 'L'), v, n, 4);
}

void agora__dcmw_fd(agora__dcmw_ds *ds, uint32_t tag, const double *v, size_t n)
{
    put_le(ds, tag, AGORA__DCMW_VR('F', 'D'), v, n, 8);
}

void agora__dcmw_us1(agora__dcmw_ds *ds, uint32_t tag, uint16_t v)
{
    agora__dcmw_us(ds, tag, &v, 1);
}

void agora__dcmw_is(agora__dcmw_ds *ds, uint32_t tag, int64_t v)
{
    agora__dcmw_strf(ds, tag, AGORA__DCMW_VR('I', 'S'), "%lld", (long long)v);
}

/* Shortest "%.*g" rendering of v that reads back exactly, else the most precise one within
 * 16 characters. */
static int ds_format(double v, char out[17])
{
    if (!isfinite(v))
        return -1;
    if (v == 0)
        v = 0; /* -0 would print as "-0" */
    /* Whole numbers as integers ("8100", not the shorter "8.1e+03"): a reader sees the value. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 17, "%.0f", v);
        return 0;
    }
    int fits = 0;
    for (int prec = 1; prec <= 17; prec++) {
        char tmp[40];
        int n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (n <= 0 || n > 16)
            continue;
        memcpy(out, tmp, (size_t)n + 1);
        fits = 1;
        if (strtod(tmp, NULL) == v)
            return 0;
    }
    return fits ? 0 : -1;
}

void agora__dcmw_ds_num(agora__dcmw_ds *ds, uint32_t tag, const double *v, size_t n)
{
    if (!live(ds))
        return;
    if (n > 1024) {
        fail(ds->w, AGORA_ELIMIT, "too many DS values");
        return;
    }
    char *buf = malloc(n * 17 + 1);
    if (buf == NULL) {
        fail(ds->w, AGORA_ENOMEM, "out of memory");
        return;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char one[17];
        if (ds_format(v[i], one) != 0) {
            free(buf);
            fail(ds->w, AGORA_EINVAL, "a DS value is not finite");
            return;
        }
        if (i)
            buf[len++] = '\\';
        size_t k = strlen(one);
        memcpy(buf + len, one, k);
        len += k;
    }
    buf[len] = '\0';
    agora__dcmw_str(ds, tag, AGORA__DCMW_VR('D', 'S'), buf);
    free(buf);
}

static dcmw_el *seq_el(agora__dcmw_ds *ds, uint32_t tag)
{
    if (!live(ds))
        return NULL;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->els[i].tag == tag && ds->els[i].is_seq)
            return &ds->els[i];
    if (ds->depth + 1 >= MAX_DEPTH) {
        fail(ds->w, AGORA_ELIMIT, "sequences nested too deeply");
        return NULL;
    }
    dcmw_el *e = slot(ds, tag);
    if (e) {
        e->vr = AGORA__DICOM_VR_SQ;
        e->is_seq = 1;
    }
    return e;
}

void agora__dcmw_seq(agora__dcmw_ds *ds, uint32_t tag)
{
    (void)seq_el(ds, tag);
}

agora__dcmw_ds *agora__dcmw_item(agora__dcmw_ds *ds, uint32_t tag)
{
    dcmw_el *e = seq_el(ds, tag);
    if (e == NULL)
        return NULL;
    if (e->n_items == e->cap_items) {
        size_t cap = e->cap_items ? e->cap_items * 2 : 4;
        agora__dcmw_ds **n = realloc(e->items, cap * sizeof *n);
        if (n == NULL) {
            fail(ds->w, AGORA_ENOMEM, "out of memory");
            return NULL;
        }
        e->items = n;
        e->cap_items = cap;
    }
    agora__dcmw_ds *item = calloc(1, sizeof *item);
    if (item == NULL) {
        fail(ds->w, AGORA_ENOMEM, "out of memory");
        return NULL;
    }
    item->w = ds->w;
    item->depth = ds->depth + 1;
    e->items[e->n_items++] = item;
    return item;
}

agora__dcmw_ds *agora__dcmw_code(agora__dcmw_ds *ds, uint32_t tag, const char *scheme,
                                 const char *value, const char *meaning)
{
    agora__dcmw_ds *it = agora__dcmw_item(ds, tag);
    if (it == NULL)
        return NULL;
    if (value == NULL || scheme == NULL || meaning == NULL) {
        fail(ds->w, AGORA_EINVAL, "a code needs scheme, value and meaning");
        return NULL;
    }
    if (strlen(value) > 16)
        agora__dcmw_str(it, AGORA__DCMW_TAG(0x0008, 0x0119), AGORA__DCMW_VR('U', 'C'), value);
    else
        agora__dcmw_str(it, AGORA__DCMW_TAG(0x0008, 0x0100), AGORA__DCMW_VR('S', 'H'), value);
    agora__dcmw_str(it, AGORA__DCMW_TAG(0x0008, 0x0102), AGORA__DCMW_VR('S', 'H'), scheme);
    char m[65];
    size_t n = strnlen(meaning, 64);
    while (n > 0 && n < strlen(meaning) && ((unsigned char)meaning[n] & 0xC0u) == 0x80u)
        n--; /* cut before a continuation byte, never inside a UTF-8 sequence */
    memcpy(m, meaning, n);
    m[n] = '\0';
    agora__dcmw_str(it, AGORA__DCMW_TAG(0x0008, 0x0104), AGORA__DCMW_VR('L', 'O'), m);
    return it;
}

static int el_cmp(const void *a, const void *b)
{
    uint32_t x = ((const dcmw_el *)a)->tag, y = ((const dcmw_el *)b)->tag;
    return (x > y) - (x < y);
}

static void encode_ds(agora__deid_buf *b, agora__dcmw_ds *ds)
{
    /* An empty item has no element array (els NULL): qsort must not see it. */
    if (ds->n > 1)
        qsort(ds->els, ds->n, sizeof *ds->els, el_cmp);
    for (size_t i = 0; i < ds->n && b->rc == 0; i++) {
        dcmw_el *e = &ds->els[i];
        if (!e->is_seq) {
            agora__deid_put_element(b, e->tag, e->vr, e->value, e->len);
            continue;
        }
        size_t sm =
            agora__deid_put_seq_begin(b, e->tag, AGORA__DICOM_VR_SQ, AGORA__DEID_W_DEFINED_LENGTHS);
        for (size_t j = 0; j < e->n_items; j++) {
            size_t im = agora__deid_put_item_begin(b, AGORA__DEID_W_DEFINED_LENGTHS);
            encode_ds(b, e->items[j]);
            agora__deid_put_item_end(b, im, AGORA__DEID_W_DEFINED_LENGTHS);
        }
        agora__deid_put_seq_end(b, sm, AGORA__DEID_W_DEFINED_LENGTHS);
    }
}

int agora__dcmw_encode(agora__dcmw *w, const char *sop_class, const char *sop_instance,
                       uint8_t **out, size_t *len, agora__error *err)
{
    *out = NULL;
    *len = 0;
    if (w->rc != 0)
        return agora__error_set(err, w->rc, "building DICOM: %s", w->what);
    if (!sop_class || !sop_instance || !agora__deid_uid_valid(sop_class, strlen(sop_class)) ||
        !agora__deid_uid_valid(sop_instance, strlen(sop_instance)))
        return agora__error_set(err, AGORA_EINVAL, "building DICOM: invalid SOP UIDs");
    /* The SOP Common module must agree with the file meta group. */
    agora__dcmw_str(&w->root, AGORA__DCMW_TAG(0x0008, 0x0016), AGORA__DCMW_VR('U', 'I'), sop_class);
    agora__dcmw_str(&w->root, AGORA__DCMW_TAG(0x0008, 0x0018), AGORA__DCMW_VR('U', 'I'),
                    sop_instance);
    if (w->rc != 0)
        return agora__error_set(err, w->rc, "building DICOM: %s", w->what);
    agora__deid_buf b;
    agora__deid_buf_init(&b, w->max);
    agora__deid_put_meta(&b, sop_class, sop_instance, AGORA__DICOM_TS_EXPLICIT_LE);
    encode_ds(&b, &w->root);
    if (b.rc != 0) {
        int rc = b.rc;
        agora__deid_buf_free(&b);
        return agora__error_set(err, rc,
                                rc == AGORA_ELIMIT ? "encoding DICOM: larger than the limit"
                                                   : "encoding DICOM failed");
    }
    *out = b.data; /* no references were taken: refs_allowed is off */
    *len = b.len;
    return 0;
}

int agora__dcmw_write_file(agora__dcmw *w, const char *sop_class, const char *sop_instance,
                           const char *path, agora__error *err)
{
    uint8_t *data;
    size_t len;
    int rc = agora__dcmw_encode(w, sop_class, sop_instance, &data, &len, err);
    if (rc != 0)
        return rc;
    rc = agora__write_file_atomic(path, data, len, 0644, err);
    free(data);
    return rc;
}

int agora__dcmw_uid(const char *root, const char *invocation_id, const char *label, char out[65],
                    agora__error *err)
{
    out[0] = '\0';
    if (invocation_id == NULL || label == NULL || invocation_id[0] == '\0')
        return agora__error_set(err, AGORA_EINVAL, "new UID: invocation id and label needed");
    static const char domain[] = "agora.export.uid.v1";
    size_t li = strlen(invocation_id), ll = strlen(label);
    if (li > 256 || ll > 512)
        return agora__error_set(err, AGORA_ELIMIT, "new UID: invocation id or label too long");
    uint8_t msg[sizeof domain + 256 + 1 + 512];
    memcpy(msg, domain, sizeof domain); /* includes the NUL separator */
    memcpy(msg + sizeof domain, invocation_id, li);
    msg[sizeof domain + li] = '\0';
    memcpy(msg + sizeof domain + li + 1, label, ll);
    uint8_t h[32];
    agora__sha256(msg, sizeof domain + li + 1 + ll, h);
    __extension__ typedef unsigned __int128 u128;
    u128 x = 0;
    int n;
    if (root == NULL || root[0] == '\0') {
        for (int i = 0; i < 16; i++)
            x = (x << 8) | h[i];
        char digits[40];
        int k = 0;
        do {
            digits[k++] = (char)('0' + (int)(x % 10u));
            x /= 10u;
        } while (x != 0);
        memcpy(out, "2.25.", 5);
        for (int i = 0; i < k; i++)
            out[5 + i] = digits[k - 1 - i];
        out[5 + k] = '\0';
        return 0;
    }
    size_t lr = strlen(root);
    if (lr > 40 || !agora__deid_uid_valid(root, lr))
        return agora__error_set(err, AGORA_EINVAL,
                                "UID root must be a valid UID of at most 40 characters");
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | h[i];
    v = (v >> 1) + 1u; /* never 0, at most 19 digits: root + "." + 19 <= 60 chars */
    n = snprintf(out, 65, "%s.%llu", root, (unsigned long long)v);
    if (n < 0 || n > 64)
        return agora__error_set(err, AGORA_EINTERNAL, "new UID: too long");
    return 0;
}

int agora__dcmw_datetime(const char *created, char da[9], char tm[17], agora__error *err)
{
    unsigned y, mo, d, h, mi, s, ms = 0;
    char z = 0;
    int n = 0;
    da[0] = tm[0] = '\0';
    if (created == NULL ||
        (sscanf(created, "%4u-%2u-%2uT%2u:%2u:%2u.%3u%c%n", &y, &mo, &d, &h, &mi, &s, &ms, &z,
                &n) != 8 &&
         sscanf(created, "%4u-%2u-%2uT%2u:%2u:%2u%c%n", &y, &mo, &d, &h, &mi, &s, &z, &n) != 7) ||
        z != 'Z' || created[n] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || s > 60 || y < 1900 || y > 9999)
        return agora__error_set(err, AGORA_EINVAL, "result time is not RFC 3339 UTC");
    snprintf(da, 9, "%04u%02u%02u", y, mo, d);
    snprintf(tm, 17, "%02u%02u%02u.%03u", h, mi, s, ms);
    return 0;
}
