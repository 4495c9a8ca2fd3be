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

static const agora__dicom_dataset *first_item(const agora__dicom_dataset *ds, uint32_t tag)
{
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    return e && e->n_items ? &e->items[0] : NULL;
}

/* Geometry as host/dicom/study.c reads it: top level first, then the enhanced multi-frame
 * functional groups (shared for orientation and spacing, per-frame for positions). */
static int read_geometry(const agora__dicom_dataset *ds, ingest_meta_store *st, uint32_t frames)
{
    Agora__Ipc__IngestMetadata *m = &st->meta;
    int has_pos = get_doubles(ds, T(0x0020, 0x0032), st->position, 3);
    int has_ori = get_doubles(ds, T(0x0020, 0x0037), st->orientation, 6);
    int has_sp = get_doubles(ds, T(0x0028, 0x0030), st->spacing, 2);
    const agora__dicom_dataset *shared = first_item(ds, T(0x5200, 0x9229));
    const agora__dicom_element *perf = agora__dicom_find(ds, T(0x5200, 0x9230));
    if (shared) {
        const agora__dicom_dataset *po = first_item(shared, T(0x0020, 0x9116));
        if (!has_ori && po)
            has_ori = get_doubles(po, T(0x0020, 0x0037), st->orientation, 6);
        const agora__dicom_dataset *pm = first_item(shared, T(0x0028, 0x9110));
        if (!has_sp && pm)
            has_sp = get_doubles(pm, T(0x0028, 0x0030), st->spacing, 2);
    }
    if (perf && perf->n_items == frames && frames > 1 && frames <= AGORA__INGEST_MAX_POSITIONS) {
        st->frame_positions = calloc((size_t)frames * 3, sizeof(double));
        if (st->frame_positions == NULL)
            return -1;
        int all = 1;
        for (uint32_t f = 0; f < frames && all; f++) {
            const agora__dicom_dataset *pp = first_item(&perf->items[f], T(0x0020, 0x9113));
            all = pp && get_doubles(pp, T(0x0020, 0x0032), &st->frame_positions[f * 3], 3);
            if (!has_ori) {
                const agora__dicom_dataset *po = first_item(&perf->items[f], T(0x0020, 0x9116));
                if (po)
                    has_ori = get_doubles(po, T(0x0020, 0x0037), st->orientation, 6);
            }
        }
        if (all) {
            memcpy(st->position, st->frame_positions, sizeof st->position);
            has_pos = 1;
            m->frame_positions = st->frame_positions;
            m->n_frame_positions = (size_t)frames * 3;
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
    if (read_geometry(ds, st, frames) != 0)
        return -1;
    if (with_elements && collect_elements(ds, st) != 0)
        return -1;
    return 0;
}

void agora__runner_ingest_meta_free(ingest_meta_store *st)
{
    for (size_t i = 0; i < st->n_swapped; i++)
        free(st->swapped[i]);
    free(st->frame_positions);
    memset(st, 0, sizeof *st);
}
