/* One scanned series -> one de-identified, sealed job (see prepare.h). */
#include "prepare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom.h"

/* Largest header read to build the view: the first file of the series is read whole, so cap
 * it like the scanner does. */
#define PREPARE_MAX_FILE ((size_t)2 << 30)

/* The view reads the dataset through this adapter. Binary values of Explicit VR Big Endian
 * files are swapped into a small scratch buffer so the view always sees little-endian bytes. */
typedef struct view_ctx {
    const agora__dicom_dataset *ds;
    uint8_t scratch[512];
} view_ctx;

static size_t vr_unit(uint16_t vr)
{
    switch (vr) {
    case AGORA__DICOM_VR('U', 'S'):
    case AGORA__DICOM_VR('S', 'S'):
    case AGORA__DICOM_VR('O', 'W'):
        return 2;
    case AGORA__DICOM_VR('U', 'L'):
    case AGORA__DICOM_VR('S', 'L'):
    case AGORA__DICOM_VR('F', 'L'):
    case AGORA__DICOM_VR('O', 'F'):
    case AGORA__DICOM_VR('O', 'L'):
    case AGORA__DICOM_VR('A', 'T'):
        return 4;
    case AGORA__DICOM_VR('F', 'D'):
    case AGORA__DICOM_VR('O', 'D'):
    case AGORA__DICOM_VR('U', 'V'):
    case AGORA__DICOM_VR('S', 'V'):
    case AGORA__DICOM_VR('O', 'V'):
        return 8;
    default:
        return 1;
    }
}

static int view_get(void *vctx, uint32_t tag, char vr[3], const uint8_t **bytes, size_t *len)
{
    view_ctx *ctx = vctx;
    const agora__dicom_element *e = agora__dicom_find(ctx->ds, tag);
    if (e == NULL || e->vr == AGORA__DICOM_VR_SQ || e->value == NULL)
        return 0;
    agora__dicom_vr_str(e->vr, vr);
    size_t unit = vr_unit(e->vr);
    if ((e->flags & AGORA__DICOM_EL_BIG_ENDIAN) && unit > 1) {
        if (e->value_len > sizeof ctx->scratch || e->value_len % unit != 0)
            return 0; /* too long for a view value anyway */
        for (size_t i = 0; i < e->value_len; i += unit)
            for (size_t k = 0; k < unit; k++)
                ctx->scratch[i + k] = e->value[i + unit - 1 - k];
        *bytes = ctx->scratch;
    } else {
        *bytes = e->value;
    }
    *len = (size_t)e->value_len;
    return 1;
}

void agora__series_label(const agora__dicom_series *s, char *buf, size_t size)
{
    uint32_t rows = s->n_instances ? s->instances[0].rows : 0;
    uint32_t cols = s->n_instances ? s->instances[0].columns : 0;
    snprintf(buf, size, "%s, %u frame%s %ux%u", s->modality[0] ? s->modality : "??", s->n_frames,
             s->n_frames == 1 ? "" : "s", cols, rows);
}

agora__dicom_scan *agora__scan_inputs(const char *const *paths, size_t n, int quiet,
                                      agora__error *err)
{
    agora__dicom_scan *scan = NULL;
    if (agora__dicom_scan_paths(paths, n, NULL, &scan, err) != 0)
        return NULL;
    if (!quiet) {
        for (size_t i = 0; i < scan->n_notes; i++)
            fprintf(stderr, "skipped %s: %s\n", scan->notes[i].path, scan->notes[i].reason);
        for (size_t i = 0; i < scan->n_series; i++)
            for (uint32_t w = 0; w < scan->series[i].n_warnings; w++)
                fprintf(stderr, "series %zu: %s\n", i + 1, scan->series[i].warnings[w].message);
    }
    return scan;
}

void agora__prepared_free(agora__prepared *p)
{
    agora__pixbuf_free(&p->pixels);
    free(p->frames);
    free(p->attrs);
    free(p->frame_pseudo);
    free(p->real_sops);
    free(p->frame_numbers);
    agora__deid_granted_free(&p->view);
    memset(p, 0, sizeof *p);
    p->pixels.fd = -1;
}

/* Read header values the view does not carry as typed fields. */
static void header_numbers(const agora__dicom_dataset *ds, agora__prepared *p, double *slope,
                           double *intercept, double *thickness)
{
    if (agora__dicom_get_double(ds, AGORA__DICOM_TAG(0x0028, 0x1053), 0, slope) != 0 ||
        *slope == 0.0)
        *slope = 1.0;
    if (agora__dicom_get_double(ds, AGORA__DICOM_TAG(0x0028, 0x1052), 0, intercept) != 0)
        *intercept = 0.0;
    if (agora__dicom_get_double(ds, AGORA__DICOM_TAG(0x0018, 0x0050), 0, thickness) != 0)
        *thickness = (double)NAN;
    if (agora__dicom_get_string(ds, AGORA__DICOM_TAG(0x0028, 0x1054), 0, p->rescale_type,
                                sizeof p->rescale_type) != 0)
        p->rescale_type[0] = '\0';
    /* Hounsfield units are implied for CT when the type is absent (PS3.3 C.8.2.1). */
    if (p->rescale_type[0] == '\0' && strcmp(p->modality, "CT") == 0)
        agora__strlcpy(p->rescale_type, "HU", sizeof p->rescale_type);
    for (char *c = p->rescale_type; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?'; /* keep the view printable ASCII */
}

int agora__prepare_series(const agora__dicom_series *s, const uint8_t uid_key[32],
                          const char *const *granted, size_t n_granted, uint32_t deid_flags,
                          agora__prepared *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    out->pixels.fd = -1;
    out->series = s;
    if (!s->decodable || s->n_frames == 0 || s->n_instances == 0) {
        const char *why = s->n_warnings ? s->warnings[0].message : "no frames";
        return agora__error_set(err, AGORA_EINPUT, "series cannot be decoded as one volume: %s",
                                why);
    }
    agora__strlcpy(out->modality, s->modality, sizeof out->modality);

    agora__dicom_pixel_format fmt;
    int rc = agora__dicom_series_format(s, AGORA__DICOM_DECODE_NORMALIZED, &fmt, err);
    if (rc != 0)
        return rc;
    if (fmt.frame_bytes == 0 || fmt.frame_bytes > AGORA__PIXBUF_MAX / s->n_frames)
        return agora__error_set(err, AGORA_ELIMIT,
                                "series needs more than %llu bytes of pixels; split it",
                                (unsigned long long)AGORA__PIXBUF_MAX);
    uint64_t total = fmt.frame_bytes * s->n_frames;

    /* The view and header numbers come from the first instance (in series order). */
    const agora__dicom_instance *first = &s->instances[s->frames[0].instance];
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = agora__read_file(first->path, PREPARE_MAX_FILE, &buf, &len, err);
    if (rc != 0)
        return rc;
    agora__dicom_limits lim;
    agora__dicom_limits_default(&lim);
    lim.flags |= AGORA__DICOM_READ_STOP_AT_PIXELS;
    agora__dicom_file *f = NULL;
    rc = agora__dicom_read(buf, len, &lim, &f, err);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    view_ctx vctx = {.ds = &f->dataset};
    rc = agora__deid_view(view_get, &vctx, uid_key, granted, n_granted, deid_flags, NULL,
                          &out->view, err);
    double slope = 1.0, intercept = 0.0, thickness = (double)NAN;
    if (rc == 0)
        header_numbers(&f->dataset, out, &slope, &intercept, &thickness);
    agora__dicom_file_free(f);
    free(buf);
    if (rc != 0)
        return rc;

    uint32_t n = s->n_frames;
    out->n_frames = n;
    out->frames = calloc(n, sizeof *out->frames);
    out->frame_pseudo = calloc(n, sizeof *out->frame_pseudo);
    out->real_sops = calloc(n, sizeof *out->real_sops);
    out->frame_numbers = calloc(n, sizeof *out->frame_numbers);
    out->attrs = calloc(out->view.count ? out->view.count : 1, sizeof *out->attrs);
    if (!out->frames || !out->frame_pseudo || !out->real_sops || !out->frame_numbers ||
        !out->attrs) {
        agora__prepared_free(out);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory preparing a series");
    }
    for (size_t i = 0; i < out->view.count; i++) {
        out->attrs[i].keyword = out->view.attrs[i].keyword;
        out->attrs[i].value = out->view.attrs[i].value;
    }
    for (uint32_t i = 0; i < n; i++) {
        const agora__dicom_series_frame *sf = &s->frames[i];
        const agora__dicom_instance *inst = &s->instances[sf->instance];
        agora__frame_input *fi = &out->frames[i];
        for (int k = 0; k < 3; k++)
            fi->position[k] = sf->has_position ? sf->position[k] : (double)NAN;
        for (int k = 0; k < 6; k++)
            fi->orientation[k] = inst->has_orientation ? inst->orientation[k] : (double)NAN;
        rc = agora__deid_uid(uid_key, inst->sop_uid, out->frame_pseudo[i], err);
        if (rc != 0) {
            agora__prepared_free(out);
            return agora__error_prefix(err, "frame %u", i);
        }
        fi->sop_instance_uid = out->frame_pseudo[i];
        fi->offset = (uint64_t)i * fmt.frame_bytes;
        out->real_sops[i] = inst->sop_uid;
        out->frame_numbers[i] = sf->frame + 1;
    }

    rc = agora__pixbuf_create(total, &out->pixels, err);
    if (rc == 0)
        rc = agora__dicom_series_decode(s, AGORA__DICOM_DECODE_NORMALIZED, out->pixels.data,
                                        (size_t)total, NULL, err);
    if (rc == 0)
        rc = agora__pixbuf_seal(&out->pixels, err);
    if (rc != 0) {
        agora__prepared_free(out);
        return rc;
    }

    agora__job_input *in = &out->input;
    in->rows = first->rows;
    in->columns = first->columns;
    in->frames = n;
    in->samples_per_pixel = fmt.samples_per_pixel;
    in->pixel_type = fmt.pixel_type;
    in->bits_stored = first->bits_stored;
    in->photometric = fmt.photometric;
    in->pixel_spacing[0] = first->has_spacing ? first->pixel_spacing[0] : (double)NAN;
    in->pixel_spacing[1] = first->has_spacing ? first->pixel_spacing[1] : (double)NAN;
    in->slice_thickness = thickness;
    in->spacing_between_slices = s->median_spacing > 0 ? s->median_spacing : (double)NAN;
    in->rescale_slope = slope;
    in->rescale_intercept = intercept;
    in->rescale_type = out->rescale_type;
    in->modality = out->modality;
    in->study_uid = out->view.study_uid;
    in->series_uid = out->view.series_uid;
    in->frame_info = out->frames;
    in->attrs = out->attrs;
    in->n_attrs = (uint32_t)out->view.count;
    in->pixels = &out->pixels;
    /* Room for one 16-bit label mask over the whole series, the most a plugin can attach. */
    in->output_bytes = (uint64_t)first->rows * first->columns * n * 2;
    return 0;
}
