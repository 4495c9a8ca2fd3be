/*
 * MODE_INGEST: turning a parsed DICOM file into an IngestMetadata message. Everything the host
 * needs to group, order and de-identify an instance travels as plain values so that the host
 * never parses DICOM itself. Bounded: at most AGORA__INGEST_MAX_ELEMENTS elements of at most
 * AGORA__INGEST_MAX_VALUE bytes, per-frame positions for at most AGORA__INGEST_MAX_POSITIONS
 * frames.
 *
 * Ownership: every pointer in the message points into the ingest_meta_store (strings, arrays,
 * swapped values) or into the parsed file (little-endian values), so the store and the file must
 * outlive the send.
 */
#include "ingest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T(g, e) AGORA__DICOM_TAG(g, e)

/* Element size of the binary numeric VRs carried as values, 0 for text VRs, -1 otherwise. */
static int value_unit(uint16_t vr)
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
        return 0;
    case AGORA__DICOM_VR('U', 'S'):
    case AGORA__DICOM_VR('S', 'S'):
    case AGORA__DICOM_VR('A', 'T'): /* pairs of US: swapped per 16-bit half */
        return 2;
    case AGORA__DICOM_VR('U', 'L'):
    case AGORA__DICOM_VR('S', 'L'):
    case AGORA__DICOM_VR('F', 'L'):
        return 4;
    case AGORA__DICOM_VR('F', 'D'):
    case AGORA__DICOM_VR('U', 'V'):
    case AGORA__DICOM_VR('S', 'V'):
        return 8;
    default:
        return -1;
    }
}

static void get_str(const agora__dicom_dataset *ds, uint32_t tag, char *out, size_t size)
{
    if (agora__dicom_get_string(ds, tag, 0, out, size) != 0)
        out[0] = '\0';
}

static int get_u32(const agora__dicom_dataset *ds, uint32_t tag, uint32_t dflt, uint32_t *out)
{
    int64_t v;
    if (agora__dicom_get_int(ds, tag, 0, &v) != 0 || v < 0 || v > UINT32_MAX) {
        *out = dflt;
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

static int get_doubles(const agora__dicom_dataset *ds, uint32_t tag, double *out, size_t n)
{
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    if (e == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (agora__dicom_el_double(e, i, &out[i]) != 0 || !isfinite(out[i]))
            return 0;
    return 1;
}

/* [A-Z0-9_ ]*: what the host accepts as a code string (host/ingest/reply.c copy_cs). */
static int is_code_string(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == ' '))
            return 0;
    return 1;
}

/* The per-frame arrays of the message from the resolved functional groups (fgroups.h). */
static int per_frame_arrays(ingest_meta_store *st, uint32_t frames)
{
    Agora__Ipc__IngestMetadata *m = &st->meta;
    const agora__dicom_frame_meta *fm = st->fg.frames;
    size_t n = frames;
    /* Orientation and spacing travel per frame only when every frame has one and they are not
     * all equal (the instance values say the rest); windows only when some frame has one. */
    int all_ori = 1, all_sp = 1, var_ori = 0, var_sp = 0, any_win = 0;
    for (size_t f = 0; f < n; f++) {
        all_ori &= fm[f].has_orientation;
        all_sp &= fm[f].has_spacing;
        any_win |= fm[f].has_window;
        var_ori |= memcmp(fm[f].orientation, fm[0].orientation, sizeof fm[0].orientation) != 0;
        var_sp |= memcmp(fm[f].spacing, fm[0].spacing, sizeof fm[0].spacing) != 0;
    }
    all_ori &= var_ori;
    all_sp &= var_sp;
    /* The reply must fit the runner -> host frame cap (8 MiB) with room for the elements. */
    uint64_t bytes = (uint64_t)n * (24 + 16 + 4 * 5 + (all_ori ? 48 : 0) + (all_sp ? 16 : 0) +
                                    (any_win ? 16 : 0));
    if (bytes > AGORA__INGEST_MAX_PER_FRAME_BYTES)
        return -2;
    st->frame_rescale = calloc(n * 2, sizeof(double));
    if (any_win)
        st->frame_window = calloc(n * 2, sizeof(double));
    st->frame_volume = calloc(n, sizeof(uint32_t));
    st->frame_stack = calloc(n, sizeof(uint32_t));
    st->frame_in_stack = calloc(n, sizeof(uint32_t));
    st->frame_temporal = calloc(n, sizeof(uint32_t));
    if (all_ori)
        st->frame_orientations = calloc(n * 6, sizeof(double));
    if (all_sp)
        st->frame_spacing = calloc(n * 2, sizeof(double));
    if (!st->frame_rescale || (any_win && !st->frame_window) || !st->frame_volume ||
        !st->frame_stack || !st->frame_in_stack || !st->frame_temporal ||
        (all_ori && !st->frame_orientations) || (all_sp && !st->frame_spacing))
        return -1;
    for (size_t f = 0; f < n; f++) {
        memcpy(&st->frame_rescale[f * 2], fm[f].rescale, 2 * sizeof(double));
        if (any_win)
            memcpy(&st->frame_window[f * 2], fm[f].window, 2 * sizeof(double));
        if (all_ori)
            memcpy(&st->frame_orientations[f * 6], fm[f].orientation, 6 * sizeof(double));
        if (all_sp)
            memcpy(&st->frame_spacing[f * 2], fm[f].spacing, 2 * sizeof(double));
        st->frame_volume[f] = fm[f].volume;
        st->frame_stack[f] = fm[f].stack;
        st->frame_in_stack[f] = fm[f].in_stack;
        st->frame_temporal[f] = fm[f].temporal;
    }
    m->frame_rescale = st->frame_rescale;
    m->n_frame_rescale = n * 2;
    if (any_win) {
        m->frame_window = st->frame_window;
        m->n_frame_window = n * 2;
    }
    m->frame_volume = st->frame_volume;
    m->n_frame_volume = n;
    m->frame_stack = st->frame_stack;
    m->n_frame_stack = n;
    m->frame_in_stack = st->frame_in_stack;
    m->n_frame_in_stack = n;
    m->frame_temporal = st->frame_temporal;
    m->n_frame_temporal = n;
    if (all_ori) {
        m->frame_orientations = st->frame_orientations;
        m->n_frame_orientations = n * 6;
    }
    if (all_sp) {
        m->frame_spacing = st->frame_spacing;
        m->n_frame_spacing = n * 2;
    }
    m->dimension_organization = st->fg.dimension_organization;
    return 0;
}

/* Geometry as host/dicom/study.c reads it: top level first, then the enhanced multi-frame
 * functional groups (shared for orientation and spacing, per-frame for positions); rescale and
 * the per-frame values from fgroups.c. */
static int read_geometry(const agora__dicom_dataset *ds, ingest_meta_store *st, uint32_t frames,
                         int per_frame)
{
    Agora__Ipc__IngestMetadata *m = &st->meta;
    int has_pos = get_doubles(ds, T(0x0020, 0x0032), st->position, 3);
    int has_ori = get_doubles(ds, T(0x0020, 0x0037), st->orientation, 6);
    int has_sp = get_doubles(ds, T(0x0028, 0x0030), st->spacing, 2);
    if (agora__dicom_fg_read(ds, frames, &st->fg) != 0)
        return -1;
    m->has_rescale = st->fg.has_rescale;
    m->rescale_slope = st->fg.rescale[0];
    m->rescale_intercept = st->fg.rescale[1];
    agora__strlcpy(st->rescale_type, st->fg.rescale_type, sizeof st->rescale_type);
    m->rescale_type = st->rescale_type;
    if (!has_ori && st->fg.has_orientation) {
        memcpy(st->orientation, st->fg.orientation, sizeof st->orientation);
        has_ori = 1;
    }
    if (!has_sp && st->fg.has_spacing) {
        memcpy(st->spacing, st->fg.spacing, sizeof st->spacing);
        has_sp = 1;
    }
    const agora__dicom_frame_meta *fm = st->fg.frames;
    if (fm != NULL) {
        int all = frames > 1 && frames <= AGORA__INGEST_MAX_POSITIONS;
        for (uint32_t f = 0; f < frames && all; f++)
            all = fm[f].has_position;
        if (all) {
            st->frame_positions = calloc((size_t)frames * 3, sizeof(double));
            if (st->frame_positions == NULL)
                return -1;
            for (uint32_t f = 0; f < frames; f++)
                memcpy(&st->frame_positions[f * 3], fm[f].position, 3 * sizeof(double));
            memcpy(st->position, st->frame_positions, sizeof st->position);
            has_pos = 1;
            m->frame_positions = st->frame_positions;
            m->n_frame_positions = (size_t)frames * 3;
        } else if (!has_pos && fm[0].has_position) {
            memcpy(st->position, fm[0].position, sizeof st->position);
            has_pos = 1;
        }
        if (per_frame) {
            int rc = per_frame_arrays(st, frames);
            if (rc != 0)
                return rc;
        }
    }
    if (has_pos) {
        m->position = st->position;
        m->n_position = 3;
    }
    if (has_ori) {
        m->orientation = st->orientation;
        m->n_orientation = 6;
    }
    if (has_sp) {
        m->pixel_spacing = st->spacing;
        m->n_pixel_spacing = 2;
    }
    return 0;
}

/* The top-level text/numeric elements of at most AGORA__INGEST_MAX_VALUE bytes, first of each
 * tag only (so the host can demand strictly ascending tags). */
static int collect_elements(const agora__dicom_dataset *ds, ingest_meta_store *st)
{
    Agora__Ipc__IngestMetadata *m = &st->meta;
    uint32_t last_tag = 0;
    int have_last = 0;
    for (uint32_t i = 0; i < ds->n_elements; i++) {
        const agora__dicom_element *e = &ds->elements[i];
        if (have_last && e->tag == last_tag)
            continue; /* a duplicate: lookups use the first one too */
        have_last = 1;
        last_tag = e->tag;
        int unit = value_unit(e->vr);
        if (unit < 0 || e->value_len > AGORA__INGEST_MAX_VALUE ||
            (e->value == NULL && e->value_len) || (unit > 0 && e->value_len % (uint64_t)unit) ||
            (e->flags & (AGORA__DICOM_EL_ENCAPSULATED | AGORA__DICOM_EL_UN_AS_SQ)) ||
            st->n_elements == AGORA__INGEST_MAX_ELEMENTS) {
            m->elements_omitted++;
            continue;
        }
        Agora__Ipc__IngestElement *x = &st->elements[st->n_elements];
        agora__ipc__ingest_element__init(x);
        x->tag = e->tag;
        x->vr = e->vr;
        x->value.len = (size_t)e->value_len;
        x->value.data = (uint8_t *)(uintptr_t)e->value;
        if (unit > 1 && (e->flags & AGORA__DICOM_EL_BIG_ENDIAN) && e->value_len) {
            /* Carried little-endian: swap into the store's own copy. */
            uint8_t *c = malloc((size_t)e->value_len);
            if (c == NULL)
                return -1;
            for (uint64_t k = 0; k < e->value_len; k += (uint64_t)unit)
                for (int b = 0; b < unit; b++)
                    c[k + (uint64_t)b] = e->value[k + (uint64_t)(unit - 1 - b)];
            st->swapped[st->n_swapped++] = c;
            x->value.data = c;
        }
        st->element_ptrs[st->n_elements] = x;
        st->n_elements++;
    }
    m->elements = st->element_ptrs;
    m->n_elements = st->n_elements;
    return 0;
}

int agora__runner_ingest_meta(const agora__dicom_file *f, int with_elements, ingest_meta_store *st)
{
    Agora__Ipc__IngestMetadata *m = &st->meta;
    agora__ipc__ingest_metadata__init(m);
    const agora__dicom_dataset *ds = &f->dataset;
    agora__strlcpy(st->ts, f->transfer_syntax, sizeof st->ts);
    get_str(ds, T(0x0020, 0x000D), st->study, sizeof st->study);
    get_str(ds, T(0x0020, 0x000E), st->series, sizeof st->series);
    get_str(ds, T(0x0008, 0x0018), st->sop, sizeof st->sop);
    get_str(ds, T(0x0008, 0x0016), st->sop_class, sizeof st->sop_class);
    get_str(ds, T(0x0008, 0x0060), st->modality, sizeof st->modality);
    get_str(ds, T(0x0028, 0x0004), st->photometric, sizeof st->photometric);
    m->transfer_syntax = st->ts;
    m->study_uid = st->study;
    m->series_uid = st->series;
    m->sop_instance_uid = st->sop;
    m->sop_class_uid = st->sop_class;
    m->modality = st->modality;
    m->photometric = st->photometric;
    /* Routing attributes (issue 12): sent only when the host's check will accept them, so a
     * nonconforming value reads as absent instead of failing the file. */
    get_str(ds, T(0x0018, 0x0015), st->body_part, sizeof st->body_part);
    if (!is_code_string(st->body_part))
        st->body_part[0] = '\0';
    m->body_part = st->body_part;
    double thick;
    if (get_doubles(ds, T(0x0018, 0x0050), &thick, 1) && thick >= 0 && thick <= 10000) {
        m->has_slice_thickness = 1;
        m->slice_thickness = thick;
    }
    int64_t v;
    if (agora__dicom_get_int(ds, T(0x0020, 0x0013), 0, &v) == 0) {
        m->has_instance_number = 1;
        m->instance_number = v;
    }
    /* Same clamps as the in-process scanner (study.c), so both views agree. */
    uint32_t frames = 1;
    if (agora__dicom_get_int(ds, T(0x0028, 0x0008), 0, &v) == 0 && v > 1 && v <= 1000000)
        frames = (uint32_t)v;
    m->frames = frames;
    get_u32(ds, T(0x0028, 0x0010), 0, &m->rows);
    get_u32(ds, T(0x0028, 0x0011), 0, &m->columns);
    if (m->rows > 65535)
        m->rows = 65535;
    if (m->columns > 65535)
        m->columns = 65535;
    get_u32(ds, T(0x0028, 0x0002), 1, &m->samples_per_pixel);
    get_u32(ds, T(0x0028, 0x0100), 0, &m->bits_allocated);
    get_u32(ds, T(0x0028, 0x0101), 0, &m->bits_stored);
    get_u32(ds, T(0x0028, 0x0102), 0, &m->high_bit);
    get_u32(ds, T(0x0028, 0x0103), 0, &m->pixel_representation);
    get_u32(ds, T(0x0028, 0x0006), 0, &m->planar_configuration);
    m->warnings = f->warnings;
    int rc = read_geometry(ds, st, frames, with_elements);
    if (rc != 0)
        return rc;
    if (with_elements && collect_elements(ds, st) != 0)
        return -1;
    return 0;
}

void agora__runner_ingest_meta_free(ingest_meta_store *st)
{
    for (size_t i = 0; i < st->n_swapped; i++)
        free(st->swapped[i]);
    free(st->frame_positions);
    agora__dicom_fg_free(&st->fg);
    free(st->frame_orientations);
    free(st->frame_spacing);
    free(st->frame_rescale);
    free(st->frame_window);
    free(st->frame_volume);
    free(st->frame_stack);
    free(st->frame_in_stack);
    free(st->frame_temporal);
    memset(st, 0, sizeof *st);
}
