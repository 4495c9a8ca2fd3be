/* Enhanced multi-frame functional groups resolved per frame, and the volume split (fgroups.h). */
#include "fgroups.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T(g, e) AGORA__DICOM_TAG(g, e)

#define TAG_SHARED_FG       T(0x5200, 0x9229)
#define TAG_PERFRAME_FG     T(0x5200, 0x9230)
#define TAG_PLANE_POSITION  T(0x0020, 0x9113)
#define TAG_PLANE_ORIENT    T(0x0020, 0x9116)
#define TAG_PIXEL_MEASURES  T(0x0028, 0x9110)
#define TAG_PIXEL_VALUE_TX  T(0x0028, 0x9145)
#define TAG_FRAME_CONTENT   T(0x0020, 0x9111)
#define TAG_FRAME_VOI_LUT   T(0x0028, 0x9132)
#define TAG_DIM_INDEX_SEQ   T(0x0020, 0x9222)
#define TAG_DIM_INDEX_PTR   T(0x0020, 0x9165)
#define TAG_IPP             T(0x0020, 0x0032)
#define TAG_IOP             T(0x0020, 0x0037)
#define TAG_PIXEL_SPACING   T(0x0028, 0x0030)
#define TAG_RESCALE_ICPT    T(0x0028, 0x1052)
#define TAG_RESCALE_SLOPE   T(0x0028, 0x1053)
#define TAG_RESCALE_TYPE    T(0x0028, 0x1054)
#define TAG_WINDOW_CENTER   T(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH    T(0x0028, 0x1051)
#define TAG_STACK_ID        T(0x0020, 0x9056)
#define TAG_IN_STACK_POS    T(0x0020, 0x9057)
#define TAG_TEMPORAL_INDEX  T(0x0020, 0x9128)
#define TAG_DIM_INDEX_VALUE T(0x0020, 0x9157)

static int get_doubles(const agora__dicom_dataset *ds, uint32_t tag, double *out, size_t n)
{
    if (ds == NULL)
        return 0;
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    if (e == NULL)
        return 0;
    double v[6];
    for (size_t i = 0; i < n; i++)
        if (agora__dicom_el_double(e, i, &v[i]) != 0 || !isfinite(v[i]))
            return 0;
    memcpy(out, v, n * sizeof *v);
    return 1;
}

static const agora__dicom_dataset *first_item(const agora__dicom_dataset *ds, uint32_t tag)
{
    if (ds == NULL)
        return NULL;
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    return e && e->n_items ? &e->items[0] : NULL;
}

/* Rescale of one level: both values finite and a non-zero slope (a zero slope is invalid and
 * treated as absent, as the classic path does). An intercept alone keeps slope 1. */
static int get_rescale(const agora__dicom_dataset *ds, double out[2])
{
    double s = 1.0, b = 0.0;
    int hs = get_doubles(ds, TAG_RESCALE_SLOPE, &s, 1);
    int hb = get_doubles(ds, TAG_RESCALE_ICPT, &b, 1);
    if (!hs && !hb)
        return 0;
    if (!hs || s == 0.0)
        s = 1.0;
    out[0] = s;
    out[1] = hb ? b : 0.0;
    return 1;
}

static int get_window(const agora__dicom_dataset *ds, double out[2])
{
    double c, w;
    if (!get_doubles(ds, TAG_WINDOW_CENTER, &c, 1) || !get_doubles(ds, TAG_WINDOW_WIDTH, &w, 1))
        return 0;
    out[0] = c;
    out[1] = w;
    return 1;
}

static uint32_t get_u32(const agora__dicom_dataset *ds, uint32_t tag)
{
    int64_t v;
    if (ds == NULL || agora__dicom_get_int(ds, tag, 0, &v) != 0 || v < 0 || v > UINT32_MAX)
        return 0;
    return (uint32_t)v;
}

/* A value of the first of: per-frame macro item, shared macro item, top level. */
typedef struct levels {
    const agora__dicom_dataset *perframe, *shared, *top;
} levels;

static levels macro(const agora__dicom_dataset *pf, const agora__dicom_dataset *sh,
                    const agora__dicom_dataset *top, uint32_t seq)
{
    levels l = {first_item(pf, seq), first_item(sh, seq), top};
    return l;
}

static int lv_doubles(levels l, uint32_t tag, double *out, size_t n)
{
    return get_doubles(l.perframe, tag, out, n) || get_doubles(l.shared, tag, out, n) ||
           get_doubles(l.top, tag, out, n);
}

/* ---- stack ranks and volumes ----------------------------------------------------------------- */

typedef struct stack_key {
    const char *id;
    long long num;
    uint32_t frame;
} stack_key;

static int cmp_stack_numeric(const void *x, const void *y)
{
    const stack_key *a = x, *b = y;
    if (a->num != b->num)
        return a->num < b->num ? -1 : 1;
    return a->frame < b->frame ? -1 : (a->frame > b->frame);
}

static int cmp_stack_text(const void *x, const void *y)
{
    const stack_key *a = x, *b = y;
    int c = strcmp(a->id, b->id);
    if (c)
        return c;
    return a->frame < b->frame ? -1 : (a->frame > b->frame);
}

/* StackID ranks: numeric order when every StackID is an integer, else byte order. */
static int rank_stacks(agora__dicom_frame_meta *fm, uint32_t n, const char (*ids)[17])
{
    stack_key *k = calloc(n, sizeof *k);
    if (k == NULL)
        return -1;
    uint32_t m = 0;
    int numeric = 1;
    for (uint32_t f = 0; f < n; f++) {
        if (ids[f][0] == '\0')
            continue;
        char *end;
        k[m].id = ids[f];
        k[m].num = strtoll(ids[f], &end, 10);
        if (*end != '\0')
            numeric = 0;
        k[m].frame = f;
        m++;
    }
    if (m > 1)
        qsort(k, m, sizeof *k, numeric ? cmp_stack_numeric : cmp_stack_text);
    uint32_t rank = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (i == 0 || (numeric ? k[i].num != k[i - 1].num : strcmp(k[i].id, k[i - 1].id) != 0))
            rank++;
        fm[k[i].frame].stack = rank;
    }
    free(k);
    return 0;
}

typedef struct vol_key {
    const uint32_t *key;
    uint32_t len;
    uint32_t frame;
} vol_key;

static int cmp_vol(const void *x, const void *y)
{
    const vol_key *a = x, *b = y;
    for (uint32_t i = 0; i < a->len; i++)
        if (a->key[i] != b->key[i])
            return a->key[i] < b->key[i] ? -1 : 1;
    return a->frame < b->frame ? -1 : (a->frame > b->frame);
}

/* Which entries of Dimension Index Values are non-spatial dimensions (they split volumes).
 * In-Stack Position Number and Image Position (Patient) order frames in space; everything else
 * (Stack ID, Temporal Position Index, b-value, echo...) tells volumes apart. Returns the number
 * of dimensions (0 without a usable Dimension Index Sequence). */
static uint32_t dimensions(const agora__dicom_dataset *ds, uint8_t split[AGORA__DICOM_FG_MAX_DIMS])
{
    const agora__dicom_element *e = agora__dicom_find(ds, TAG_DIM_INDEX_SEQ);
    if (e == NULL || e->n_items == 0 || e->n_items > AGORA__DICOM_FG_MAX_DIMS)
        return 0;
    for (uint32_t i = 0; i < e->n_items; i++) {
        int64_t ptr;
        if (agora__dicom_get_int(&e->items[i], TAG_DIM_INDEX_PTR, 0, &ptr) != 0)
            return 0;
        split[i] = !(ptr == TAG_IN_STACK_POS || ptr == TAG_IPP);
    }
    return e->n_items;
}

static int assign_volumes(const agora__dicom_dataset *ds, const agora__dicom_element *perf,
                          agora__dicom_fg *out)
{
    uint8_t split[AGORA__DICOM_FG_MAX_DIMS] = {0};
    uint32_t ndim = dimensions(ds, split);
    uint32_t n = out->n_frames;
    uint32_t len = 2 + ndim;
    uint32_t *keys = calloc((size_t)n * len, sizeof *keys);
    vol_key *vk = calloc(n, sizeof *vk);
    if (keys == NULL || vk == NULL) {
        free(keys);
        free(vk);
        return -1;
    }
    int dims_ok = ndim > 0;
    for (uint32_t f = 0; f < n; f++) {
        uint32_t *k = keys + (size_t)f * len;
        k[0] = out->frames[f].stack;
        k[1] = out->frames[f].temporal;
        const agora__dicom_dataset *fc = first_item(&perf->items[f], TAG_FRAME_CONTENT);
        const agora__dicom_element *dv = fc ? agora__dicom_find(fc, TAG_DIM_INDEX_VALUE) : NULL;
        if (ndim > 0 && (dv == NULL || agora__dicom_vm(dv) != ndim))
            dims_ok = 0;
        for (uint32_t d = 0; d < ndim && dims_ok; d++) {
            int64_t v;
            if (agora__dicom_el_int(dv, d, &v) != 0 || v < 0 || v > UINT32_MAX)
                dims_ok = 0;
            else if (split[d])
                k[2 + d] = (uint32_t)v;
        }
        vk[f].key = k;
        vk[f].len = len;
        vk[f].frame = f;
    }
    if (!dims_ok) /* a dimension index that does not match the frames: stack and time only */
        for (uint32_t f = 0; f < n; f++)
            memset(keys + (size_t)f * len + 2, 0, ndim * sizeof *keys);
    out->dimension_organization = dims_ok;
    if (n > 1)
        qsort(vk, n, sizeof *vk, cmp_vol);
    uint32_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && memcmp(vk[i].key, vk[i - 1].key, len * sizeof *keys) != 0)
            v++;
        out->frames[vk[i].frame].volume = v;
    }
    out->n_volumes = n ? v + 1 : 1;
    free(keys);
    free(vk);
    return 0;
}

/* ---- reading --------------------------------------------------------------------------------- */

static void printable_copy(const agora__dicom_dataset *ds, uint32_t tag, char *out, size_t size)
{
    if (ds == NULL || agora__dicom_get_string(ds, tag, 0, out, size) != 0) {
        out[0] = '\0';
        return;
    }
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
}

int agora__dicom_fg_read(const agora__dicom_dataset *ds, uint32_t frames, agora__dicom_fg *out)
{
    memset(out, 0, sizeof *out);
    out->n_volumes = 1;
    const agora__dicom_dataset *shared = first_item(ds, TAG_SHARED_FG);
    const agora__dicom_element *perf = agora__dicom_find(ds, TAG_PERFRAME_FG);
    const agora__dicom_dataset *shared_pvt = first_item(shared, TAG_PIXEL_VALUE_TX);
    const agora__dicom_dataset *pf0_pvt =
        perf && perf->n_items ? first_item(&perf->items[0], TAG_PIXEL_VALUE_TX) : NULL;

    /* Instance level: the classic attribute, else the shared group, else frame 0's group. */
    out->has_rescale = get_rescale(ds, out->rescale) || get_rescale(shared_pvt, out->rescale) ||
                       get_rescale(pf0_pvt, out->rescale);
    printable_copy(ds, TAG_RESCALE_TYPE, out->rescale_type, sizeof out->rescale_type);
    if (out->rescale_type[0] == '\0')
        printable_copy(shared_pvt, TAG_RESCALE_TYPE, out->rescale_type, sizeof out->rescale_type);
    if (out->rescale_type[0] == '\0')
        printable_copy(pf0_pvt, TAG_RESCALE_TYPE, out->rescale_type, sizeof out->rescale_type);
    if (!out->has_rescale) {
        out->rescale[0] = 1.0;
        out->rescale[1] = 0.0;
    }

    out->has_orientation =
        get_doubles(first_item(shared, TAG_PLANE_ORIENT), TAG_IOP, out->orientation, 6);
    out->has_spacing =
        get_doubles(first_item(shared, TAG_PIXEL_MEASURES), TAG_PIXEL_SPACING, out->spacing, 2);

    if (perf == NULL || frames == 0 || frames > AGORA__DICOM_FG_MAX_FRAMES ||
        perf->n_items != frames)
        return 0; /* no usable per-frame groups: a classic object, or a count mismatch */
    out->frames = calloc(frames, sizeof *out->frames);
    char(*ids)[17] = calloc(frames, sizeof *ids);
    if (out->frames == NULL || ids == NULL) {
        free(ids);
        agora__dicom_fg_free(out);
        return -1;
    }
    out->n_frames = frames;
    for (uint32_t f = 0; f < frames; f++) {
        const agora__dicom_dataset *pf = &perf->items[f];
        agora__dicom_frame_meta *m = &out->frames[f];
        /* Position is per frame by definition; the top level only backs frame 0 of old
         * writers that also put it there. */
        m->has_position =
            get_doubles(first_item(pf, TAG_PLANE_POSITION), TAG_IPP, m->position, 3) ||
            get_doubles(first_item(shared, TAG_PLANE_POSITION), TAG_IPP, m->position, 3);
        m->has_orientation =
            lv_doubles(macro(pf, shared, ds, TAG_PLANE_ORIENT), TAG_IOP, m->orientation, 6);
        m->has_spacing =
            lv_doubles(macro(pf, shared, ds, TAG_PIXEL_MEASURES), TAG_PIXEL_SPACING, m->spacing, 2);
        levels pvt = macro(pf, shared, ds, TAG_PIXEL_VALUE_TX);
        m->has_rescale = get_rescale(pvt.perframe, m->rescale) ||
                         get_rescale(pvt.shared, m->rescale) || get_rescale(ds, m->rescale);
        if (!m->has_rescale) {
            m->rescale[0] = 1.0;
            m->rescale[1] = 0.0;
        }
        levels voi = macro(pf, shared, ds, TAG_FRAME_VOI_LUT);
        m->has_window = get_window(voi.perframe, m->window) || get_window(voi.shared, m->window) ||
                        get_window(ds, m->window);
        if (!m->has_window)
            m->window[0] = m->window[1] = (double)NAN;
        const agora__dicom_dataset *fc = first_item(pf, TAG_FRAME_CONTENT);
        if (fc == NULL)
            fc = first_item(shared, TAG_FRAME_CONTENT);
        m->in_stack = get_u32(fc, TAG_IN_STACK_POS);
        m->temporal = get_u32(fc, TAG_TEMPORAL_INDEX);
        if (fc == NULL || agora__dicom_get_string(fc, TAG_STACK_ID, 0, ids[f], sizeof ids[f]) != 0)
            ids[f][0] = '\0';
    }
    if (!out->has_orientation && out->frames[0].has_orientation) {
        memcpy(out->orientation, out->frames[0].orientation, sizeof out->orientation);
        out->has_orientation = 1;
    }
    if (!out->has_spacing && out->frames[0].has_spacing) {
        memcpy(out->spacing, out->frames[0].spacing, sizeof out->spacing);
        out->has_spacing = 1;
    }
    int rc = rank_stacks(out->frames, frames, (const char(*)[17])ids);
    free(ids);
    if (rc == 0)
        rc = assign_volumes(ds, perf, out);
    if (rc != 0) {
        agora__dicom_fg_free(out);
        return -1;
    }
    return 0;
}

void agora__dicom_fg_free(agora__dicom_fg *fg)
{
    if (fg == NULL)
        return;
    free(fg->frames);
    fg->frames = NULL;
    fg->n_frames = 0;
    fg->n_volumes = 1;
}
