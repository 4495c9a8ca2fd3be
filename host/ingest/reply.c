/*
 * Checking what an ingest worker replied. The worker parses hostile files, so it may itself be
 * compromised: every string is length- and charset-checked, every count and size bounded, every
 * double finite, and the caller only ever sees copies in fixed-size fields.
 */
#include "ingest_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom.h"

/* A UID-like field: empty or up to max-1 of [0-9.]. */
static int copy_uid(const char *s, char *out, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;
    if (n >= max)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return -1;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
    return 0;
}

/* A code-string-like field: empty or up to max-1 of [A-Z0-9_ ]. */
static int copy_cs(const char *s, char *out, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;
    if (n >= max)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == ' '))
            return -1;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
    return 0;
}

static int finite_all(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Optional fixed-size double vector: absent (0 values) or exactly want finite values. */
static int copy_vec(const double *v, size_t n, size_t want, double *out, int *has)
{
    *has = 0;
    if (n == 0)
        return 0;
    if (n != want || !finite_all(v, n))
        return -1;
    memcpy(out, v, want * sizeof *v);
    *has = 1;
    return 0;
}

/* Size of one value of a VR the worker may carry: 0 text, 2/4/8 binary, -1 not allowed. */
static int vr_unit(uint32_t vr)
{
    static const char text[][3] = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT",
                                   "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        if (vr == AGORA__DICOM_VR(text[i][0], text[i][1]))
            return 0;
    if (vr == AGORA__DICOM_VR('U', 'S') || vr == AGORA__DICOM_VR('S', 'S') ||
        vr == AGORA__DICOM_VR('A', 'T'))
        return 2;
    if (vr == AGORA__DICOM_VR('U', 'L') || vr == AGORA__DICOM_VR('S', 'L') ||
        vr == AGORA__DICOM_VR('F', 'L'))
        return 4;
    if (vr == AGORA__DICOM_VR('F', 'D') || vr == AGORA__DICOM_VR('U', 'V') ||
        vr == AGORA__DICOM_VR('S', 'V'))
        return 8;
    return -1;
}

static int check_elements(const Agora__Ipc__IngestMetadata *m, agora__ingest_meta *out,
                          agora__error *err)
{
    if (m->n_elements > AGORA__INGEST_MAX_ELEMENTS)
        return agora__error_set(err, AGORA_EINTERNAL, "%zu elements (at most %u)", m->n_elements,
                                AGORA__INGEST_MAX_ELEMENTS);
    size_t total = 0;
    for (size_t i = 0; i < m->n_elements; i++) {
        const Agora__Ipc__IngestElement *e = m->elements[i];
        if (e == NULL)
            return agora__error_set(err, AGORA_EINTERNAL, "element %zu is missing", i);
        if (i > 0 && e->tag <= m->elements[i - 1]->tag)
            return agora__error_set(err, AGORA_EINTERNAL,
                                    "element %zu is not in ascending tag order", i);
        if (AGORA__DICOM_GROUP(e->tag) < 0x0008)
            return agora__error_set(err, AGORA_EINTERNAL, "element %zu has a group below 0008", i);
        int unit = vr_unit(e->vr);
        if (unit < 0)
            return agora__error_set(err, AGORA_EINTERNAL, "element %zu has a VR not carried", i);
        if (e->value.len > AGORA__INGEST_MAX_VALUE || (e->value.len && e->value.data == NULL) ||
            (unit > 0 && e->value.len % (size_t)unit))
            return agora__error_set(err, AGORA_EINTERNAL, "element %zu has an invalid length", i);
        total += e->value.len;
    }
    if (m->n_elements == 0)
        return 0;
    out->elements = calloc(m->n_elements, sizeof *out->elements);
    out->storage_ = malloc(total ? total : 1);
    if (out->elements == NULL || out->storage_ == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu elements", m->n_elements);
    size_t off = 0;
    for (size_t i = 0; i < m->n_elements; i++) {
        const Agora__Ipc__IngestElement *e = m->elements[i];
        agora__ingest_element *x = &out->elements[i];
        x->tag = e->tag;
        x->vr = (uint16_t)e->vr;
        x->length = (uint16_t)e->value.len;
        if (e->value.len) {
            memcpy(out->storage_ + off, e->value.data, e->value.len);
            x->value = out->storage_ + off;
            off += e->value.len;
        }
    }
    out->n_elements = (uint32_t)m->n_elements;
    return 0;
}

/* A rescale pair: finite, non-zero slope. */
static int rescale_ok(double slope, double intercept)
{
    return isfinite(slope) && isfinite(intercept) && slope != 0.0;
}

static int check_rescale(const Agora__Ipc__IngestMetadata *m, agora__ingest_meta *out,
                         agora__error *err)
{
    out->rescale[0] = 1.0;
    out->rescale[1] = 0.0;
    if (m->has_rescale) {
        if (!rescale_ok(m->rescale_slope, m->rescale_intercept))
            return agora__error_set(err, AGORA_EINTERNAL,
                                    "the rescale is not finite or has a zero slope");
        out->has_rescale = 1;
        out->rescale[0] = m->rescale_slope;
        out->rescale[1] = m->rescale_intercept;
    }
    size_t n = m->rescale_type ? strnlen(m->rescale_type, sizeof out->rescale_type) : 0;
    if (n >= sizeof out->rescale_type)
        return agora__error_set(err, AGORA_EINTERNAL, "the rescale type is longer than 16 bytes");
    for (size_t i = 0; i < n; i++)
        if (m->rescale_type[i] < 0x20 || m->rescale_type[i] > 0x7e)
            return agora__error_set(err, AGORA_EINTERNAL, "the rescale type is not printable");
    memcpy(out->rescale_type, m->rescale_type ? m->rescale_type : "", n);
    out->rescale_type[n] = '\0';
    return 0;
}

/* The per-frame functional group values: each array absent or exactly per frame; volumes dense
 * enough to be an index (< frames); every double finite (windows may be NaN pairs). */
static int check_frame_groups(const Agora__Ipc__IngestMetadata *m, agora__ingest_meta *out,
                              agora__error *err)
{
    out->n_volumes = 1;
    size_t n = m->frames;
    int any = m->n_frame_rescale || m->n_frame_volume || m->n_frame_stack || m->n_frame_in_stack ||
              m->n_frame_temporal || m->n_frame_orientations || m->n_frame_spacing ||
              m->n_frame_window;
    if (!any)
        return 0;
    if (m->frames > AGORA__INGEST_MAX_POSITIONS || m->n_frame_rescale != n * 2 ||
        m->n_frame_volume != n || m->n_frame_stack != n || m->n_frame_in_stack != n ||
        m->n_frame_temporal != n || (m->n_frame_orientations && m->n_frame_orientations != n * 6) ||
        (m->n_frame_spacing && m->n_frame_spacing != n * 2) ||
        (m->n_frame_window && m->n_frame_window != n * 2))
        return agora__error_set(err, AGORA_EINTERNAL,
                                "per-frame functional group values do not match the frame count");
    if ((m->n_frame_orientations && !finite_all(m->frame_orientations, n * 6)) ||
        (m->n_frame_spacing && !finite_all(m->frame_spacing, n * 2)))
        return agora__error_set(err, AGORA_EINTERNAL,
                                "a per-frame orientation or spacing is not finite");
    out->frame_meta = calloc(n, sizeof *out->frame_meta);
    if (out->frame_meta == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu frames", n);
    uint32_t max_volume = 0;
    for (size_t f = 0; f < n; f++) {
        agora__dicom_frame_meta *fm = &out->frame_meta[f];
        double s = m->frame_rescale[f * 2], b = m->frame_rescale[f * 2 + 1];
        if (!rescale_ok(s, b))
            return agora__error_set(err, AGORA_EINTERNAL,
                                    "the rescale of frame %zu is not finite or has a zero slope",
                                    f);
        fm->rescale[0] = s;
        fm->rescale[1] = b;
        fm->has_rescale = 1;
        fm->window[0] = fm->window[1] = (double)NAN;
        if (m->n_frame_window) {
            double c = m->frame_window[f * 2], w = m->frame_window[f * 2 + 1];
            if (isfinite(c) && isfinite(w)) {
                fm->window[0] = c;
                fm->window[1] = w;
                fm->has_window = 1;
            } else if (!isnan(c) || !isnan(w)) {
                return agora__error_set(err, AGORA_EINTERNAL,
                                        "the window of frame %zu is neither finite nor absent", f);
            }
        }
        if (m->n_frame_orientations) {
            memcpy(fm->orientation, &m->frame_orientations[f * 6], sizeof fm->orientation);
            fm->has_orientation = 1;
        } else if (out->has_orientation) {
            memcpy(fm->orientation, out->orientation, sizeof fm->orientation);
            fm->has_orientation = 1;
        }
        if (m->n_frame_spacing) {
            memcpy(fm->spacing, &m->frame_spacing[f * 2], sizeof fm->spacing);
            fm->has_spacing = 1;
        } else if (out->has_spacing) {
            memcpy(fm->spacing, out->pixel_spacing, sizeof fm->spacing);
            fm->has_spacing = 1;
        }
        if (out->frame_positions) {
            memcpy(fm->position, &out->frame_positions[f * 3], sizeof fm->position);
            fm->has_position = 1;
        }
        if (m->frame_volume[f] >= n || m->frame_stack[f] > n)
            return agora__error_set(err, AGORA_EINTERNAL,
                                    "frame %zu names a volume or stack beyond the frame count", f);
        fm->volume = m->frame_volume[f];
        fm->stack = m->frame_stack[f];
        fm->in_stack = m->frame_in_stack[f];
        fm->temporal = m->frame_temporal[f];
        if (fm->volume > max_volume)
            max_volume = fm->volume;
    }
    out->n_volumes = max_volume + 1;
    out->dimension_organization = m->dimension_organization;
    return 0;
}

int agora__ingest_check_meta(const Agora__Ipc__IngestMetadata *m, int with_elements,
                             agora__ingest_meta *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    out->instance_number = INT64_MIN;
    int rc = AGORA_EINTERNAL;
    if (copy_uid(m->transfer_syntax, out->transfer_syntax, sizeof out->transfer_syntax) ||
        copy_uid(m->study_uid, out->study_uid, sizeof out->study_uid) ||
        copy_uid(m->series_uid, out->series_uid, sizeof out->series_uid) ||
        copy_uid(m->sop_instance_uid, out->sop_uid, sizeof out->sop_uid) ||
        copy_uid(m->sop_class_uid, out->sop_class_uid, sizeof out->sop_class_uid)) {
        agora__error_set(err, rc, "a UID is not 0-64 characters of digits and dots");
        goto fail;
    }
    if (copy_cs(m->modality, out->modality, sizeof out->modality) ||
        copy_cs(m->photometric, out->photometric, sizeof out->photometric) ||
        copy_cs(m->body_part, out->body_part, sizeof out->body_part)) {
        agora__error_set(err, rc,
                         "modality, photometric or body part is not 0-16 code-string characters");
        goto fail;
    }
    if (m->has_slice_thickness &&
        (!isfinite(m->slice_thickness) || m->slice_thickness < 0 || m->slice_thickness > 10000)) {
        agora__error_set(err, rc, "the slice thickness is not a number of 0..10000 mm");
        goto fail;
    }
    out->has_slice_thickness = m->has_slice_thickness;
    out->slice_thickness = m->has_slice_thickness ? m->slice_thickness : 0;
    if (m->frames < 1 || m->frames > 1000000 || m->rows > 65535 || m->columns > 65535 ||
        m->samples_per_pixel > 4 || m->bits_allocated > 64 || m->bits_stored > 64 ||
        m->high_bit > 63 || m->pixel_representation > 1 || m->planar_configuration > 1) {
        agora__error_set(err, rc, "image dimensions or bit depths are out of range");
        goto fail;
    }
    out->instance_number = m->has_instance_number ? m->instance_number : INT64_MIN;
    out->frames = m->frames;
    out->rows = m->rows;
    out->columns = m->columns;
    out->samples_per_pixel = m->samples_per_pixel;
    out->bits_allocated = m->bits_allocated;
    out->bits_stored = m->bits_stored;
    out->high_bit = m->high_bit;
    out->pixel_representation = m->pixel_representation;
    out->planar_configuration = m->planar_configuration;
    out->warnings = m->warnings;
    out->elements_omitted = m->elements_omitted;
    if (copy_vec(m->position, m->n_position, 3, out->position, &out->has_position) ||
        copy_vec(m->orientation, m->n_orientation, 6, out->orientation, &out->has_orientation) ||
        copy_vec(m->pixel_spacing, m->n_pixel_spacing, 2, out->pixel_spacing, &out->has_spacing)) {
        agora__error_set(err, rc,
                         "position, orientation or spacing has a wrong count or a "
                         "non-finite value");
        goto fail;
    }
    if (m->n_frame_positions) {
        if (m->frames < 2 || m->frames > AGORA__INGEST_MAX_POSITIONS ||
            m->n_frame_positions != (size_t)m->frames * 3 ||
            !finite_all(m->frame_positions, m->n_frame_positions) || !out->has_position) {
            agora__error_set(err, rc, "per-frame positions do not match the frame count");
            goto fail;
        }
        out->frame_positions = malloc(m->n_frame_positions * sizeof(double));
        if (out->frame_positions == NULL) {
            agora__error_set(err, AGORA_ENOMEM, "out of memory for frame positions");
            goto fail;
        }
        memcpy(out->frame_positions, m->frame_positions, m->n_frame_positions * sizeof(double));
    }
    if (check_rescale(m, out, err) != 0 || check_frame_groups(m, out, err) != 0)
        goto fail;
    if (!with_elements && m->n_elements) {
        agora__error_set(err, rc, "elements in a reply that must not carry any");
        goto fail;
    }
    if (with_elements && check_elements(m, out, err) != 0)
        goto fail;
    return 0;
fail:
    agora__ingest_meta_free(out);
    return -1;
}

void agora__ingest_meta_free(agora__ingest_meta *m)
{
    if (m == NULL)
        return;
    free(m->frame_positions);
    free(m->frame_meta);
    m->frame_meta = NULL;
    free(m->elements);
    free(m->storage_);
    m->frame_positions = NULL;
    m->elements = NULL;
    m->storage_ = NULL;
    m->n_elements = 0;
}

/* The worker's one-line reason, made printable (it is still the worker's word). */
static void copy_reason(const char *s, char *out, size_t max)
{
    size_t n = s ? strnlen(s, 300) : 0;
    if (n >= max)
        n = max - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[n] = '\0';
    if (n == 0)
        agora__strlcpy(out, "no reason given", max);
}

static int check_format(const Agora__Ipc__IngestPixelFormat *f, uint32_t n_frames, uint64_t out_len,
                        agora__dicom_pixel_format *fmt, agora__error *err)
{
    if (f == NULL)
        return agora__error_set(err, AGORA_EINTERNAL, "a decode reply without a pixel format");
    memset(fmt, 0, sizeof *fmt);
    if (f->pixel_type < AGORA_PIXEL_U8 || f->pixel_type > AGORA_PIXEL_F64 ||
        (f->samples_per_pixel != 1 && f->samples_per_pixel != 3) ||
        (f->bytes_per_sample != 0 && f->bytes_per_sample != 1 && f->bytes_per_sample != 2 &&
         f->bytes_per_sample != 4 && f->bytes_per_sample != 8) ||
        f->photometric < 0 || f->photometric > AGORA_PHOTOMETRIC_RGB)
        return agora__error_set(err, AGORA_EINTERNAL, "the pixel format is out of range");
    if (copy_cs(f->photometric_name, fmt->photometric_name, sizeof fmt->photometric_name))
        return agora__error_set(err, AGORA_EINTERNAL, "the photometric name is invalid");
    if (f->frame_bytes == 0 || n_frames == 0 || f->frame_bytes > out_len / n_frames)
        return agora__error_set(err, AGORA_EINTERNAL,
                                "%u frames of %llu bytes do not fit the %llu-byte window", n_frames,
                                (unsigned long long)f->frame_bytes, (unsigned long long)out_len);
    fmt->pixel_type = f->pixel_type;
    fmt->samples_per_pixel = f->samples_per_pixel;
    fmt->bytes_per_sample = f->bytes_per_sample;
    fmt->photometric = f->photometric;
    fmt->frame_bytes = f->frame_bytes;
    return 0;
}

int agora__ingest_check_reply(const Agora__Ipc__IngestReply *r, uint64_t request_id, int op,
                              uint32_t n_frames, uint64_t out_len, agora__ingest_meta *meta,
                              agora__dicom_pixel_format *fmt, int *code, agora__error *err)
{
    *code = 0;
    if (r->request_id != request_id) {
        agora__error_set(err, AGORA_EINTERNAL, "a reply to request %llu, expected %llu",
                         (unsigned long long)r->request_id, (unsigned long long)request_id);
        return AGORA__INGEST_REPLY_HOSTILE;
    }
    char reason[320];
    switch (r->status) {
    case AGORA__IPC__INGEST_STATUS__INGEST_OK:
        break;
    case AGORA__IPC__INGEST_STATUS__INGEST_FILE_ERROR:
        copy_reason(r->error, reason, sizeof reason);
        /* Only the parser's codes pass; anything else is reported as bad input. The worker
         * running out of memory is this file needing more than the worker's limit: a per-file
         * ELIMIT, never the host's own ENOMEM (which would abort a whole scan). */
        if (r->code == AGORA_ELIMIT || r->code == AGORA_EUNSUPPORTED)
            *code = r->code;
        else if (r->code == AGORA_ENOMEM)
            *code = AGORA_ELIMIT;
        else
            *code = AGORA_EINPUT;
        agora__error_set(err, *code, "%s", reason);
        return AGORA__INGEST_REPLY_FILE;
    case AGORA__IPC__INGEST_STATUS__INGEST_REQUEST_ERROR:
        copy_reason(r->error, reason, sizeof reason);
        *code = AGORA_EINTERNAL;
        agora__error_set(err, *code, "the ingest worker refused the request: %s", reason);
        return AGORA__INGEST_REPLY_FILE;
    default:
        agora__error_set(err, AGORA_EINTERNAL, "a reply with unknown status %d", (int)r->status);
        return AGORA__INGEST_REPLY_HOSTILE;
    }
    if (op != AGORA__IPC__INGEST_OP__INGEST_METADATA && op != AGORA__IPC__INGEST_OP__INGEST_DECODE)
        return AGORA__INGEST_REPLY_OK; /* DEID_*, DUMP: checked by their caller (deid.c) */
    if (op == AGORA__IPC__INGEST_OP__INGEST_METADATA) {
        if (r->metadata == NULL) {
            agora__error_set(err, AGORA_EINTERNAL, "a metadata reply without metadata");
            return AGORA__INGEST_REPLY_HOSTILE;
        }
        if (agora__ingest_check_meta(r->metadata, 1, meta, err) != 0) {
            if (err && err->code == AGORA_ENOMEM) {
                *code = AGORA_ENOMEM; /* the host's own memory: not the worker's fault */
                return AGORA__INGEST_REPLY_FILE;
            }
            return AGORA__INGEST_REPLY_HOSTILE;
        }
        return AGORA__INGEST_REPLY_OK;
    }
    if (r->frames_decoded != n_frames) {
        agora__error_set(err, AGORA_EINTERNAL, "%u frames decoded, %u requested", r->frames_decoded,
                         n_frames);
        return AGORA__INGEST_REPLY_HOSTILE;
    }
    if (check_format(r->format, n_frames, out_len, fmt, err) != 0)
        return AGORA__INGEST_REPLY_HOSTILE;
    if (meta != NULL) {
        if (r->metadata == NULL) {
            agora__error_set(err, AGORA_EINTERNAL, "a decode reply without metadata");
            return AGORA__INGEST_REPLY_HOSTILE;
        }
        if (agora__ingest_check_meta(r->metadata, 0, meta, err) != 0)
            return AGORA__INGEST_REPLY_HOSTILE;
    }
    return AGORA__INGEST_REPLY_OK;
}
