/* Lookups, typed getters, traversal and in-place edits of a parsed dataset. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "dicom.h"

uint32_t agora__dicom_lower_bound(const agora__dicom_dataset *ds, uint32_t tag)
{
    uint32_t lo = 0, hi = ds ? ds->n_elements : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ds->elements[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const agora__dicom_element *agora__dicom_find(const agora__dicom_dataset *ds, uint32_t tag)
{
    uint32_t i = agora__dicom_lower_bound(ds, tag);
    if (ds && i < ds->n_elements && ds->elements[i].tag == tag)
        return &ds->elements[i];
    return NULL;
}

static int is_text_vr(uint16_t vr)
{
    switch (vr) {
    case AGORA__DICOM_VR('A', 'E'):
    case AGORA__DICOM_VR('A', 'S'):
    case AGORA__DICOM_VR('C', 'S'):
    case AGORA__DICOM_VR('D', 'A'):
    case AGORA__DICOM_VR('D', 'S'):
    case AGORA__DICOM_VR('D', 'T'):
    case AGORA__DICOM_VR('I', 'S'):
    case AGORA__DICOM_VR('L', 'O'):
    case AGORA__DICOM_VR('L', 'T'):
    case AGORA__DICOM_VR('P', 'N'):
    case AGORA__DICOM_VR('S', 'H'):
    case AGORA__DICOM_VR('S', 'T'):
    case AGORA__DICOM_VR('T', 'M'):
    case AGORA__DICOM_VR('U', 'C'):
    case AGORA__DICOM_VR('U', 'I'):
    case AGORA__DICOM_VR('U', 'R'):
    case AGORA__DICOM_VR('U', 'T'):
        return 1;
    default:
        return 0;
    }
}

/* Single-valued text VRs: a backslash is part of the value. */
static int is_unsplit_vr(uint16_t vr)
{
    return vr == AGORA__DICOM_VR('L', 'T') || vr == AGORA__DICOM_VR('S', 'T') ||
           vr == AGORA__DICOM_VR('U', 'T') || vr == AGORA__DICOM_VR('U', 'R');
}

/* Bytes per value of binary VRs; 0 for others. */
static size_t binary_size(uint16_t vr)
{
    switch (vr) {
    case AGORA__DICOM_VR('U', 'S'):
    case AGORA__DICOM_VR('S', 'S'):
    case AGORA__DICOM_VR('O', 'W'):
        return 2;
    case AGORA__DICOM_VR('U', 'L'):
    case AGORA__DICOM_VR('S', 'L'):
    case AGORA__DICOM_VR('F', 'L'):
    case AGORA__DICOM_VR('A', 'T'):
    case AGORA__DICOM_VR('O', 'F'):
    case AGORA__DICOM_VR('O', 'L'):
        return 4;
    case AGORA__DICOM_VR('F', 'D'):
    case AGORA__DICOM_VR('S', 'V'):
    case AGORA__DICOM_VR('U', 'V'):
    case AGORA__DICOM_VR('O', 'D'):
    case AGORA__DICOM_VR('O', 'V'):
        return 8;
    default:
        return 0;
    }
}

size_t agora__dicom_vm(const agora__dicom_element *e)
{
    if (!e || !e->value || e->value_len == 0)
        return e && e->n_items ? e->n_items : 0;
    if (is_text_vr(e->vr)) {
        if (is_unsplit_vr(e->vr))
            return 1;
        size_t n = 1;
        for (uint64_t i = 0; i < e->value_len; i++)
            n += e->value[i] == '\\';
        return n;
    }
    size_t sz = binary_size(e->vr);
    if (sz)
        return (size_t)(e->value_len / sz);
    return 1;
}

/* [*b, *e) of value `index` of a text element, trimmed. */
static int text_value(const agora__dicom_element *e, size_t index, const uint8_t **pb,
                      const uint8_t **pe)
{
    if (!e || !is_text_vr(e->vr))
        return AGORA_EINPUT;
    const uint8_t *b = e->value, *end = e->value + (e->value ? e->value_len : 0);
    if (!b) {
        if (index != 0)
            return AGORA_EINPUT;
        *pb = *pe = (const uint8_t *)"";
        return 0;
    }
    if (!is_unsplit_vr(e->vr)) {
        for (size_t i = 0; i < index; i++) {
            const uint8_t *s = memchr(b, '\\', (size_t)(end - b));
            if (!s)
                return AGORA_EINPUT;
            b = s + 1;
        }
        const uint8_t *s = memchr(b, '\\', (size_t)(end - b));
        if (s)
            end = s;
    } else if (index != 0) {
        return AGORA_EINPUT;
    }
    int keep_leading = e->vr == AGORA__DICOM_VR('L', 'T') || e->vr == AGORA__DICOM_VR('S', 'T') ||
                       e->vr == AGORA__DICOM_VR('U', 'T');
    while (!keep_leading && b < end && *b == ' ')
        b++;
    while (end > b && (end[-1] == ' ' || end[-1] == 0))
        end--;
    *pb = b;
    *pe = end;
    return 0;
}

static int copy_out(const uint8_t *b, const uint8_t *e, char *out, size_t out_size)
{
    if (!out || out_size == 0)
        return AGORA_ELIMIT;
    size_t n = (size_t)(e - b);
    int rc = 0;
    if (n >= out_size) {
        n = out_size - 1;
        rc = AGORA_ELIMIT;
    }
    if (n)
        memcpy(out, b, n);
    out[n] = 0;
    return rc;
}

int agora__dicom_el_string(const agora__dicom_element *e, size_t index, char *out, size_t out_size)
{
    const uint8_t *b, *en;
    int rc = text_value(e, index, &b, &en);
    if (rc) {
        if (out && out_size)
            out[0] = 0;
        return rc;
    }
    return copy_out(b, en, out, out_size);
}

int agora__dicom_el_string_all(const agora__dicom_element *e, char *out, size_t out_size)
{
    if (!e) {
        if (out && out_size)
            out[0] = 0;
        return AGORA_EINPUT;
    }
    const uint8_t *b = e->value ? e->value : (const uint8_t *)"";
    const uint8_t *en = b + (e->value ? e->value_len : 0);
    while (en > b && (en[-1] == ' ' || en[-1] == 0))
        en--;
    return copy_out(b, en, out, out_size);
}

static uint64_t load(const agora__dicom_element *e, size_t off, size_t sz)
{
    uint64_t v = 0;
    const uint8_t *p = e->value + off;
    if (e->flags & AGORA__DICOM_EL_BIG_ENDIAN)
        for (size_t i = 0; i < sz; i++)
            v = v << 8 | p[i];
    else
        for (size_t i = sz; i-- > 0;)
            v = v << 8 | p[i];
    return v;
}

/* Copy a trimmed text value into a small buffer for strtoll/strtod. */
static int text_number(const agora__dicom_element *e, size_t index, char buf[72])
{
    const uint8_t *b, *en;
    if (text_value(e, index, &b, &en) || en == b || en - b > 70)
        return AGORA_EINPUT;
    memcpy(buf, b, (size_t)(en - b));
    buf[en - b] = 0;
    return 0;
}

int agora__dicom_el_int(const agora__dicom_element *e, size_t index, int64_t *out)
{
    if (!e || !out)
        return AGORA_EINPUT;
    char buf[72];
    switch (e->vr) {
    case AGORA__DICOM_VR('I', 'S'): {
        if (text_number(e, index, buf))
            return AGORA_EINPUT;
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (errno || *end)
            return AGORA_EINPUT;
        *out = v;
        return 0;
    }
    case AGORA__DICOM_VR('U', 'S'):
    case AGORA__DICOM_VR('S', 'S'):
    case AGORA__DICOM_VR('U', 'L'):
    case AGORA__DICOM_VR('S', 'L'):
    case AGORA__DICOM_VR('U', 'V'):
    case AGORA__DICOM_VR('S', 'V'):
    case AGORA__DICOM_VR('A', 'T'): {
        size_t sz = binary_size(e->vr);
        if (!e->value || index >= e->value_len / sz)
            return AGORA_EINPUT;
        if (e->vr == AGORA__DICOM_VR('A', 'T')) {
            uint64_t g = load(e, index * 4, 2), el = load(e, index * 4 + 2, 2);
            *out = (int64_t)(g << 16 | el);
            return 0;
        }
        uint64_t v = load(e, index * sz, sz);
        if (e->vr == AGORA__DICOM_VR('S', 'S'))
            *out = (int16_t)v;
        else if (e->vr == AGORA__DICOM_VR('S', 'L'))
            *out = (int32_t)v;
        else if (e->vr == AGORA__DICOM_VR('U', 'V') && v > INT64_MAX)
            return AGORA_EINPUT;
        else
            *out = (int64_t)v;
        return 0;
    }
    default:
        return AGORA_EINPUT;
    }
}

int agora__dicom_el_double(const agora__dicom_element *e, size_t index, double *out)
{
    if (!e || !out)
        return AGORA_EINPUT;
    char buf[72];
    switch (e->vr) {
    case AGORA__DICOM_VR('D', 'S'): {
        if (text_number(e, index, buf))
            return AGORA_EINPUT;
        char *end;
        double v = strtod(buf, &end);
        if (*end || !isfinite(v))
            return AGORA_EINPUT;
        *out = v;
        return 0;
    }
    case AGORA__DICOM_VR('F', 'L'):
    case AGORA__DICOM_VR('O', 'F'): {
        if (!e->value || index >= e->value_len / 4)
            return AGORA_EINPUT;
        uint32_t b = (uint32_t)load(e, index * 4, 4);
        float f;
        memcpy(&f, &b, 4);
        if (!isfinite(f))
            return AGORA_EINPUT;
        *out = (double)f;
        return 0;
    }
    case AGORA__DICOM_VR('F', 'D'):
    case AGORA__DICOM_VR('O', 'D'): {
        if (!e->value || index >= e->value_len / 8)
            return AGORA_EINPUT;
        uint64_t b = load(e, index * 8, 8);
        double d;
        memcpy(&d, &b, 8);
        if (!isfinite(d))
            return AGORA_EINPUT;
        *out = d;
        return 0;
    }
    default: {
        int64_t v;
        int rc = agora__dicom_el_int(e, index, &v);
        if (rc)
            return rc;
        *out = (double)v;
        return 0;
    }
    }
}

int agora__dicom_get_string(const agora__dicom_dataset *ds, uint32_t tag, size_t index, char *out,
                            size_t out_size)
{
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    if (!e) {
        if (out && out_size)
            out[0] = 0;
        return AGORA_EINPUT;
    }
    return agora__dicom_el_string(e, index, out, out_size);
}

int agora__dicom_get_int(const agora__dicom_dataset *ds, uint32_t tag, size_t index, int64_t *out)
{
    return agora__dicom_el_int(agora__dicom_find(ds, tag), index, out);
}

int agora__dicom_get_double(const agora__dicom_dataset *ds, uint32_t tag, size_t index, double *out)
{
    return agora__dicom_el_double(agora__dicom_find(ds, tag), index, out);
}

static int walk(const agora__dicom_dataset *ds, uint32_t depth, agora__dicom_visit_fn fn, void *ctx)
{
    for (uint32_t i = 0; i < ds->n_elements; i++) {
        const agora__dicom_element *e = &ds->elements[i];
        int rc = fn(e, depth, ctx);
        if (rc)
            return rc;
        for (uint32_t k = 0; k < e->n_items; k++)
            if ((rc = walk(&e->items[k], depth + 1, fn, ctx)))
                return rc;
    }
    return 0;
}

int agora__dicom_walk(const agora__dicom_dataset *ds, agora__dicom_visit_fn fn, void *ctx)
{
    if (!ds || !fn)
        return 0;
    return walk(ds, 0, fn, ctx);
}

int agora__dicom_set(agora__dicom_file *file, agora__dicom_dataset *ds, uint32_t tag, uint16_t vr,
                     const void *value, size_t len, agora__error *err)
{
    if (!file || !ds || (len && !value) || len >= AGORA__DICOM_UNDEFINED_LENGTH)
        return agora__error_set(err, AGORA_EINVAL, "agora__dicom_set: invalid argument");
    uint8_t *copy = NULL;
    if (len) {
        copy = agora__dicom_arena_alloc(file->arena, len);
        if (!copy)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory setting an element");
        memcpy(copy, value, len);
    }
    uint32_t i = agora__dicom_lower_bound(ds, tag);
    agora__dicom_element *e;
    if (i < ds->n_elements && ds->elements[i].tag == tag) {
        e = &ds->elements[i];
    } else {
        if (ds->n_elements == UINT32_MAX)
            return agora__error_set(err, AGORA_ELIMIT, "too many elements");
        agora__dicom_element *nv =
            agora__dicom_arena_alloc(file->arena, ((size_t)ds->n_elements + 1) * sizeof *nv);
        if (!nv)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory setting an element");
        if (i)
            memcpy(nv, ds->elements, (size_t)i * sizeof *nv);
        if (ds->n_elements > i)
            memcpy(nv + i + 1, ds->elements + i, (size_t)(ds->n_elements - i) * sizeof *nv);
        ds->elements = nv;
        ds->n_elements++;
        e = &nv[i];
    }
    memset(e, 0, sizeof *e);
    e->tag = tag;
    e->vr = vr;
    e->flags = AGORA__DICOM_EL_OWNED;
    e->length = (uint32_t)len;
    e->value = copy;
    e->value_len = len;
    return 0;
}

uint32_t agora__dicom_remove(agora__dicom_dataset *ds, uint32_t tag)
{
    if (!ds)
        return 0;
    uint32_t w = 0, removed = 0;
    for (uint32_t r = 0; r < ds->n_elements; r++) {
        if (ds->elements[r].tag == tag) {
            removed++;
            continue;
        }
        if (w != r)
            ds->elements[w] = ds->elements[r];
        w++;
    }
    ds->n_elements = w;
    return removed;
}
