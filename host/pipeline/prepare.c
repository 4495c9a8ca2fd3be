/* One scanned series -> one de-identified, sealed job (see prepare.h). Every byte of the
 * DICOM files is parsed and decoded by the sandboxed ingest worker, never in this process. */
#include "prepare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dicom.h"

/* The view reads the attributes the sandboxed parser reported (top-level, values <= 1 KiB,
 * binary numbers already little-endian): the host never parses the file itself. */
static const agora__ingest_element *meta_find(const agora__ingest_meta *m, uint32_t tag)
{
    uint32_t lo = 0, hi = m->n_elements;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->elements[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n_elements && m->elements[lo].tag == tag ? &m->elements[lo] : NULL;
}

/* What the view reads: the reported top-level elements, and for enhanced multi-frame objects
 * (which keep them in functional groups, not at the top level) the first frame's rescale and
 * window and the instance's pixel spacing as DS text, so RescaleIntercept & co. read the same
 * either way. Classic objects carry these at the top level, which always wins. */
typedef struct view_src {
    const agora__ingest_meta *meta;
    const agora__dicom_series_frame *f0; /* the series' first frame */
    const agora__dicom_instance *in0;    /* its instance */
    char text[5][40];
} view_src;

static int synth_ds(view_src *v, int slot, const double *vals, size_t n, char vr[3],
                    const uint8_t **bytes, size_t *len)
{
    char *t = v->text[slot];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(vals[i]))
            return 0;
        /* DS holds at most 16 characters: %.10g of a finite double fits. */
        int w = snprintf(t + off, sizeof v->text[slot] - off, "%s%.10g", i ? "\\" : "", vals[i]);
        if (w < 0 || (size_t)w >= sizeof v->text[slot] - off)
            return 0;
        off += (size_t)w;
    }
    if (off % 2)
        t[off++] = ' '; /* even length, as stored */
    memcpy(vr, "DS", 3);
    *bytes = (const uint8_t *)t;
    *len = off;
    return 1;
}

static int view_get(void *ctx, uint32_t tag, char vr[3], const uint8_t **bytes, size_t *len)
{
    view_src *v = ctx;
    const agora__ingest_element *e = meta_find(v->meta, tag);
    if (e != NULL && e->length != 0) {
        agora__dicom_vr_str(e->vr, vr);
        *bytes = e->value;
        *len = e->length;
        return 1;
    }
    const agora__dicom_series_frame *f = v->f0;
    if (!f->functional_groups)
        return 0; /* a classic object: the view shows what the file holds, nothing more */
    switch (tag) {
    case AGORA__DICOM_TAG(0x0028, 0x1053):
        return f->has_rescale && synth_ds(v, 0, &f->rescale[0], 1, vr, bytes, len);
    case AGORA__DICOM_TAG(0x0028, 0x1052):
        return f->has_rescale && synth_ds(v, 1, &f->rescale[1], 1, vr, bytes, len);
    case AGORA__DICOM_TAG(0x0028, 0x1050):
        return synth_ds(v, 2, &f->window[0], 1, vr, bytes, len); /* NaN when absent */
    case AGORA__DICOM_TAG(0x0028, 0x1051):
        return synth_ds(v, 3, &f->window[1], 1, vr, bytes, len);
    case AGORA__DICOM_TAG(0x0028, 0x0030):
        return v->in0->has_spacing && synth_ds(v, 4, v->in0->pixel_spacing, 2, vr, bytes, len);
    default:
        return 0;
    }
}

/* A text value (DS, CS...) of a reported element, trimmed; 0 or -1 when absent/too long. */
static int meta_text(const agora__ingest_meta *m, uint32_t tag, char *out, size_t size)
{
    const agora__ingest_element *e = meta_find(m, tag);
    if (e == NULL || e->length == 0 || e->length >= size)
        return -1;
    size_t n = e->length;
    memcpy(out, e->value, n);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
    char *bs = strchr(out, '\\'); /* first value of a multi-valued element */
    if (bs != NULL)
        *bs = '\0';
    return n > 0 ? 0 : -1;
}

static int meta_double(const agora__ingest_meta *m, uint32_t tag, double *out)
{
    char buf[64], *end;
    if (meta_text(m, tag, buf, sizeof buf) != 0)
        return -1;
    double v = strtod(buf, &end);
    while (*end == ' ')
        end++;
    if (end == buf || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

void agora__series_label(const agora__dicom_series *s, char *buf, size_t size)
{
    uint32_t rows = s->n_instances ? s->instances[0].rows : 0;
    uint32_t cols = s->n_instances ? s->instances[0].columns : 0;
    int n = snprintf(buf, size, "%s, %u frame%s %ux%u", s->modality[0] ? s->modality : "??",
                     s->n_frames, s->n_frames == 1 ? "" : "s", cols, rows);
    if (s->n_volumes > 1 && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", volume %u/%u (stack %u, time %u)", s->volume + 1,
                 s->n_volumes, s->stack, s->temporal);
}

void agora__prepared_free(agora__prepared *p)
{
    for (uint32_t k = 0; k < p->n_parts; k++)
        agora__prepared_free(&p->parts[k]);
    free(p->parts);
    free(p->more_inputs);
    free((void *)p->frame_series);
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

/* Header values the view does not carry as typed fields. */
/* The image-level rescale is the first frame's (series order): its functional group or
 * header value as the worker resolved it (host/dicom/fgroups.h). */
static void header_numbers(const agora__ingest_meta *m, const agora__dicom_series *s,
                           agora__prepared *p, double *slope, double *intercept, double *thickness)
{
    *slope = s->frames[0].rescale[0];
    *intercept = s->frames[0].rescale[1];
    if (!isfinite(*slope) || *slope == 0.0 || !isfinite(*intercept)) {
        *slope = 1.0;
        *intercept = 0.0;
    }
    if (meta_double(m, AGORA__DICOM_TAG(0x0018, 0x0050), thickness) != 0)
        *thickness = (double)NAN;
    agora__strlcpy(p->rescale_type, m->rescale_type, sizeof p->rescale_type);
    /* Hounsfield units are implied for CT when the type is absent (PS3.3 C.8.2.1). */
    if (p->rescale_type[0] == '\0' && strcmp(p->modality, "CT") == 0)
        agora__strlcpy(p->rescale_type, "HU", sizeof p->rescale_type);
    for (char *c = p->rescale_type; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?'; /* keep the view printable ASCII */
}

/* The normalized layout of the series, learnt by decoding its first frame in the sandbox into a
 * sparse scratch memfd (only the written pages cost memory). */
static int sandboxed_format(agora__ingest *ing, const agora__dicom_series *s,
                            agora__dicom_pixel_format *fmt, agora__error *err)
{
    const agora__dicom_series_frame *f0 = &s->frames[0];
    const agora__dicom_instance *in = &s->instances[f0->instance];
    uint64_t cap = (uint64_t)in->rows * in->columns * 3u * 8u; /* widest normalized pixel */
    if (cap == 0 || cap > AGORA__PIXBUF_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "frame of %ux%u is too large", in->columns,
                                in->rows);
    int fd = memfd_create("agora-format-probe", MFD_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "memfd_create: %s", strerror(errno));
    int rc = 0;
    if (ftruncate(fd, (off_t)cap) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "ftruncate: %s", strerror(errno));
    if (rc == 0)
        rc = agora__ingest_decode(ing, in->path, f0->frame, 1, AGORA__DICOM_DECODE_NORMALIZED, fd,
                                  0, cap, fmt, err);
    close(fd);
    return rc;
}

/* Prepare series s; with decode 0 its pixels are not decoded (out->pixels stays empty) and
 * *bytes says how many they take, for a study job that decodes every series into one buffer. */
static int prepare_one(agora__ingest *ing, const agora__dicom_series *s, const uint8_t uid_key[32],
                       const char *const *granted, size_t n_granted, uint32_t deid_flags,
                       int decode, uint64_t *bytes, agora__prepared *out, agora__error *err)
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
    int rc = sandboxed_format(ing, s, &fmt, err);
    if (rc != 0)
        return rc;
    if (fmt.frame_bytes == 0 || fmt.frame_bytes > AGORA__PIXBUF_MAX / s->n_frames)
        return agora__error_set(err, AGORA_ELIMIT,
                                "series needs more than %llu bytes of pixels; split it",
                                (unsigned long long)AGORA__PIXBUF_MAX);
    uint64_t total = fmt.frame_bytes * s->n_frames;

    /* The view and header numbers come from the first instance (in series order), as the
     * sandboxed parser reported them. */
    const agora__dicom_instance *first = &s->instances[s->frames[0].instance];
    agora__ingest_meta meta;
    rc = agora__ingest_metadata(ing, first->path, &meta, err);
    if (rc != 0)
        return rc;
    view_src vs = {.meta = &meta, .f0 = &s->frames[0], .in0 = first};
    rc = agora__deid_view(view_get, &vs, uid_key, granted, n_granted, deid_flags, NULL, &out->view,
                          err);
    double slope = 1.0, intercept = 0.0, thickness = (double)NAN;
    if (rc == 0)
        header_numbers(&meta, s, out, &slope, &intercept, &thickness);
    agora__ingest_meta_free(&meta);
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
            fi->orientation[k] = sf->has_orientation ? sf->orientation[k] : (double)NAN;
        fi->rescale_slope = sf->rescale[0];
        fi->rescale_intercept = sf->rescale[1];
        if (!isfinite(fi->rescale_slope) || fi->rescale_slope == 0.0 ||
            !isfinite(fi->rescale_intercept)) {
            fi->rescale_slope = 1.0;
            fi->rescale_intercept = 0.0;
        }
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

    *bytes = total;
    if (decode)
        rc = agora__pixbuf_create(total, &out->pixels, err);
    if (rc == 0 && decode)
        rc = agora__ingest_series_decode(ing, s, AGORA__DICOM_DECODE_NORMALIZED, out->pixels.fd,
                                         0, total, NULL, err);
    if (rc == 0 && decode)
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

int agora__prepare_series(agora__ingest *ing, const agora__dicom_series *s,
                          const uint8_t uid_key[32], const char *const *granted, size_t n_granted,
                          uint32_t deid_flags, agora__prepared *out, agora__error *err)
{
    uint64_t bytes;
    return prepare_one(ing, s, uid_key, granted, n_granted, deid_flags, 1, &bytes, out, err);
}

int agora__prepare_study(agora__ingest *ing, const agora__dicom_series *const *series, uint32_t n,
                         const uint8_t uid_key[32], const char *const *granted, size_t n_granted,
                         uint32_t deid_flags, agora__prepared *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    out->pixels.fd = -1;
    if (n == 0 || n > AGORA_STUDY_MAX_SERIES)
        return agora__error_set(err, AGORA_ELIMIT,
                                "a study-scope job takes 1..%d series; this study has %u",
                                AGORA_STUDY_MAX_SERIES, n);
    if (n == 1)
        return agora__prepare_series(ing, series[0], uid_key, granted, n_granted, deid_flags, out,
                                     err);
    /* Every series' view and frame table first, without pixels; then one buffer for all. */
    uint64_t sizes[AGORA_STUDY_MAX_SERIES];
    int rc = prepare_one(ing, series[0], uid_key, granted, n_granted, deid_flags, 0, &sizes[0],
                         out, err);
    if (rc != 0)
        return rc;
    out->parts = calloc(n - 1, sizeof *out->parts);
    out->more_inputs = calloc(n - 1, sizeof *out->more_inputs);
    if (out->parts == NULL || out->more_inputs == NULL) {
        agora__prepared_free(out);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory preparing a study");
    }
    uint64_t total = sizes[0], out_bytes = out->input.output_bytes;
    uint32_t frames = out->n_frames;
    for (uint32_t k = 1; k < n && rc == 0; k++) {
        agora__prepared *pk = &out->parts[k - 1];
        rc = prepare_one(ing, series[k], uid_key, granted, n_granted, deid_flags, 0, &sizes[k], pk,
                         err);
        if (rc != 0) {
            rc = agora__error_prefix(err, "series %u of the study", k + 1);
            break;
        }
        out->n_parts = k;
        if (sizes[k] > AGORA__PIXBUF_MAX - total)
            rc = agora__error_set(err, AGORA_ELIMIT,
                                  "the study needs more than %llu bytes of pixels",
                                  (unsigned long long)AGORA__PIXBUF_MAX);
        else if (frames + pk->n_frames > 65536u)
            rc = agora__error_set(err, AGORA_ELIMIT, "the study has more than 65536 frames");
        total += sizes[k];
        out_bytes += pk->input.output_bytes;
        frames += pk->n_frames;
    }
    const char **sops = NULL, **ser = NULL;
    uint32_t *numbers = NULL;
    if (rc == 0) {
        sops = calloc(frames, sizeof *sops);
        ser = calloc(frames, sizeof *ser);
        numbers = calloc(frames, sizeof *numbers);
        if (sops == NULL || ser == NULL || numbers == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory preparing a study");
    }
    /* Each series decoded in the sandbox straight to its place in the one buffer. */
    if (rc == 0)
        rc = agora__pixbuf_create(total, &out->pixels, err);
    uint64_t base = 0;
    uint32_t at = 0;
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        agora__prepared *pk = k == 0 ? out : &out->parts[k - 1];
        rc = agora__ingest_series_decode(ing, series[k], AGORA__DICOM_DECODE_NORMALIZED,
                                         out->pixels.fd, base, sizes[k], NULL, err);
        for (uint32_t i = 0; i < pk->n_frames && rc == 0; i++, at++) {
            pk->frames[i].offset += base;
            sops[at] = pk->real_sops[i];
            numbers[at] = pk->frame_numbers[i];
            ser[at] = pk->series->series_uid;
        }
        base += sizes[k];
        if (k > 0) {
            out->more_inputs[k - 1] = pk->input;
            out->more_inputs[k - 1].pixels = NULL;
        }
    }
    if (rc == 0)
        rc = agora__pixbuf_seal(&out->pixels, err);
    if (rc != 0) {
        free(sops);
        free(ser);
        free(numbers);
        agora__prepared_free(out);
        return rc;
    }
    free(out->real_sops);
    free(out->frame_numbers);
    out->real_sops = sops;
    out->frame_numbers = numbers;
    out->frame_series = ser;
    out->n_frames = frames;
    out->input.output_bytes = out_bytes;
    out->input.more_series = out->more_inputs;
    out->input.n_more_series = n - 1;
    return 0;
}
