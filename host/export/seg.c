/*
 * DICOM Segmentation (BINARY) of one stored result's masks: one segment per label value of each
 * mask region, one SEG frame per (segment, source frame) that holds any of the segment's
 * pixels, bit-packed little-endian bit first across frames (PS3.5 §8.1.1), with per-frame plane
 * position and derivation references to the real source instances.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "results.h"

#define T AGORA__DCMW_TAG
#define V AGORA__DCMW_VR

#define MAX_SEGMENTS  4096u               /* segments per SEG */
#define MAX_SEG_PIXEL ((size_t)256 << 20) /* bytes of PixelData */

typedef struct seg_frame {
    uint32_t segment;    /* 1-based SegmentNumber */
    size_t region;       /* index into the mask list */
    uint32_t mask_frame; /* frame within that mask */
    uint32_t value;      /* label value selecting the pixels */
} seg_frame;

typedef struct mask_buf {
    const json_t *region;
    uint8_t *data; /* owned */
    size_t len;
    uint32_t bits, frames, rows, cols, first;
} mask_buf;

static uint32_t px_at(const mask_buf *m, size_t i)
{
    if (m->bits == 1)
        return (m->data[i / 8] >> (i % 8)) & 1u;
    if (m->bits == 8)
        return m->data[i];
    return (uint32_t)m->data[2 * i] | ((uint32_t)m->data[2 * i + 1] << 8);
}

static int load_mask(const char *home, const json_t *result, const json_t *region, mask_buf *m,
                     agora__error *err)
{
    const json_t *mk = json_object_get(region, "mask");
    m->region = region;
    m->bits = (uint32_t)json_integer_value(json_object_get(mk, "bits"));
    m->frames = (uint32_t)json_integer_value(json_object_get(mk, "frames"));
    m->rows = (uint32_t)json_integer_value(json_object_get(mk, "rows"));
    m->cols = (uint32_t)json_integer_value(json_object_get(mk, "columns"));
    m->first = (uint32_t)json_integer_value(json_object_get(mk, "first_frame"));
    if (m->bits != 1 && m->bits != 8 && m->bits != 16)
        return agora__error_set(err, AGORA_EUNSUPPORTED, "a mask of %u bits cannot be exported",
                                m->bits);
    uint64_t px = (uint64_t)m->frames * m->rows * m->cols;
    uint64_t want = m->bits == 1 ? (px + 7) / 8 : px * (m->bits / 8);
    if (want > AGORA__RESULTS_MAX_MASK_BYTES * 2)
        return agora__error_set(err, AGORA_ELIMIT, "a mask is larger than the export limit");
    char path[4096];
    const char *sha = json_string_value(json_object_get(mk, "sha256"));
    int rc = agora__results_mask_path(home, json_string_value(json_object_get(result, "study_uid")),
                                      sha, path, sizeof path, err);
    if (rc != 0)
        return rc;
    rc = agora__read_file(path, (size_t)want + 1, &m->data, &m->len, err);
    if (rc != 0)
        return agora__error_prefix(err, "reading a stored mask");
    uint8_t h[32];
    char hex[65];
    agora__sha256(m->data, m->len, h);
    agora__hex(h, 32, hex);
    if (m->len != want || sha == NULL || strcmp(hex, sha) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "a stored mask does not match its result (size or SHA-256); the "
                                "results home is damaged");
    return 0;
}

/* seen[v] = 1 for every label value v the mask holds (seen: 65536 bytes). */
static void mask_values(const mask_buf *m, uint8_t *seen)
{
    memset(seen, 0, 65536);
    size_t px = (size_t)m->frames * m->rows * m->cols;
    for (size_t i = 0; i < px; i++)
        seen[px_at(m, i)] = 1;
}

/* The coded finding that names this region, or NULL. */
static const json_t *finding_code(const json_t *result, json_int_t region_id)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(result, "findings"), i, f)
    {
        if (json_integer_value(json_object_get(f, "region")) == region_id &&
            json_object_get(f, "region"))
            return json_object_get(f, "code");
    }
    return NULL;
}

/* Copy at most 64 bytes of s into out, never splitting a UTF-8 sequence. */
static void cut64(const char *s, char out[65])
{
    size_t n = strlen(s);
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)s[n] & 0xC0u) == 0x80u)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

static int build(agora__dcmw *w, const agora__export_ctx *ctx, const json_t *result,
                 mask_buf *masks, size_t n_masks, const char *series_uid, agora__error *err)
{
    const agora__export_source *src = ctx->src;
    agora__dcmw_ds *root = agora__dcmw_root(w);
    int rc =
        agora__export_common(root, ctx, result, "SEG", series_uid, 901, "Agora segmentation", err);
    if (rc != 0)
        return rc;
    const json_t *p = json_object_get(result, "plugin");
    const char *pid = json_string_value(json_object_get(p, "id"));
    const char *pver = json_string_value(json_object_get(p, "version"));
    const char *inv = json_string_value(json_object_get(result, "invocation_id"));

    /* Segments: each distinct non-zero value of each mask, in mask then value order. */
    seg_frame *frames = NULL;
    size_t n_frames = 0, cap_frames = 0;
    uint32_t n_segments = 0;
    uint8_t *seen = malloc(65536);
    if (seen == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    uint32_t rows = masks[0].rows, cols = masks[0].cols;
    size_t frame_px = (size_t)rows * cols;
    for (size_t mi = 0; mi < n_masks && rc == 0; mi++) {
        mask_buf *m = &masks[mi];
        const char *fser =
            json_string_value(json_object_get(agora__export_frame_entry(result, m->first), "series_uid"));
        if (fser != NULL &&
            strcmp(fser, json_string_value(json_object_get(result, "series_uid"))) != 0) {
            rc = agora__error_set(err, AGORA_EUNSUPPORTED,
                                  "a mask lies on another series of the study (a study-scope "
                                  "result); SEG export covers masks on the result's first "
                                  "series only");
            break;
        }
        if (m->rows != rows || m->cols != cols || src->series->instances[0].rows != rows ||
            src->series->instances[0].columns != cols) {
            rc =
                agora__error_set(err, AGORA_EINVAL, "a mask's size differs from the source images");
            break;
        }
        mask_values(m, seen);
        json_int_t rid = json_integer_value(json_object_get(m->region, "id"));
        const char *label = json_string_value(json_object_get(m->region, "label"));
        char deflabel[64];
        snprintf(deflabel, sizeof deflabel, "region %lld", (long long)rid);
        uint32_t distinct = 0;
        for (uint32_t v = 1; v < 65536; v++)
            distinct += seen[v];
        const json_t *code = finding_code(result, rid);
        for (uint32_t v = 1; v < 65536 && rc == 0; v++) {
            if (!seen[v])
                continue;
            if (++n_segments > MAX_SEGMENTS) {
                rc = agora__error_set(err, AGORA_ELIMIT, "more than %u segments in one result",
                                      MAX_SEGMENTS);
                break;
            }
            agora__dcmw_ds *sg = agora__dcmw_item(root, T(0x0062, 0x0002));
            agora__dcmw_us1(sg, T(0x0062, 0x0004), (uint16_t)n_segments);
            char text[400], lab[65];
            /* Plugin text, with the view's pseudonyms re-identified (export.h). */
            char *rl = agora__export_reident(ctx->uids, label ? label : deflabel);
            char *rm = code ? agora__export_reident(
                                  ctx->uids, json_string_value(json_object_get(code, "meaning")))
                            : NULL;
            if (rl == NULL || (code && rm == NULL)) {
                free(rl);
                free(rm);
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
                break;
            }
            if (distinct > 1 || v != 1)
                snprintf(text, sizeof text, "%.300s #%u", rl, v);
            else
                snprintf(text, sizeof text, "%.300s", rl);
            free(rl);
            cut64(text, lab);
            agora__dcmw_str(sg, T(0x0062, 0x0005), V('L', 'O'), lab);
            agora__dcmw_code(sg, T(0x0062, 0x0003), "SCT", "49755003",
                             "Morphologically Abnormal Structure");
            if (code)
                agora__dcmw_code(sg, T(0x0062, 0x000F),
                                 json_string_value(json_object_get(code, "scheme")),
                                 json_string_value(json_object_get(code, "code")), rm);
            free(rm);
            if (!code)
                agora__dcmw_code(sg, T(0x0062, 0x000F), "SCT", "52988006", "Lesion");
            agora__dcmw_str(sg, T(0x0062, 0x0008), V('C', 'S'), "AUTOMATIC");
            agora__dcmw_str(sg, T(0x0062, 0x0009), V('L', 'O'), pid);
            agora__dcmw_ds *alg = agora__dcmw_item(sg, T(0x0062, 0x0007));
            agora__dcmw_code(alg, T(0x0066, 0x002F), "DCM", "123110", "Artificial Intelligence");
            agora__dcmw_str(alg, T(0x0066, 0x0036), V('L', 'O'), pid);
            agora__dcmw_str(alg, T(0x0066, 0x0031), V('L', 'O'), pver);
            for (uint32_t f = 0; f < m->frames; f++) {
                size_t base = (size_t)f * frame_px, i = 0;
                while (i < frame_px && px_at(m, base + i) != v)
                    i++;
                if (i == frame_px)
                    continue;
                if (n_frames == cap_frames) {
                    size_t nc = cap_frames ? cap_frames * 2 : 64;
                    seg_frame *nf = realloc(frames, nc * sizeof *nf);
                    if (nf == NULL) {
                        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
                        break;
                    }
                    frames = nf;
                    cap_frames = nc;
                }
                frames[n_frames++] = (seg_frame){n_segments, mi, f, v};
            }
        }
    }
    free(seen);
    if (rc == 0 && n_frames == 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "the result's masks are empty: there is no segment to export");
    if (rc == 0 && (n_frames > 0x7FFFFFFFu || ((n_frames * frame_px + 7) / 8) > MAX_SEG_PIXEL))
        rc = agora__error_set(err, AGORA_ELIMIT, "the segmentation would exceed %zu MiB",
                              MAX_SEG_PIXEL >> 20);
    if (rc != 0) {
        free(frames);
        return rc;
    }

    /* Image and segmentation modules. */
    agora__dcmw_str(root, T(0x0008, 0x0008), V('C', 'S'), "DERIVED\\PRIMARY");
    agora__dcmw_str(root, T(0x0070, 0x0080), V('C', 'S'), "AGORA_SEG");
    agora__dcmw_str(root, T(0x0070, 0x0081), V('L', 'O'), pid);
    agora__dcmw_str(root, T(0x0070, 0x0084), V('P', 'N'), "");
    agora__dcmw_us1(root, T(0x0028, 0x0002), 1);
    agora__dcmw_str(root, T(0x0028, 0x0004), V('C', 'S'), "MONOCHROME2");
    agora__dcmw_us1(root, T(0x0028, 0x0010), (uint16_t)rows);
    agora__dcmw_us1(root, T(0x0028, 0x0011), (uint16_t)cols);
    agora__dcmw_us1(root, T(0x0028, 0x0100), 1);
    agora__dcmw_us1(root, T(0x0028, 0x0101), 1);
    agora__dcmw_us1(root, T(0x0028, 0x0102), 0);
    agora__dcmw_us1(root, T(0x0028, 0x0103), 0);
    agora__dcmw_str(root, T(0x0028, 0x2110), V('C', 'S'), "00");
    agora__dcmw_str(root, T(0x0062, 0x0001), V('C', 'S'), "BINARY");
    agora__dcmw_is(root, T(0x0028, 0x0008), (int64_t)n_frames);
    /* FrameOfReferenceUID came with the copied modules (export_common). */
    agora__dcmw_str(root, T(0x0020, 0x1040), V('L', 'O'), "");

    /* Dimensions: segment number, then position. */
    char dim_uid[65];
    rc = agora__dcmw_uid(ctx->uid_root, inv, "seg.dimension-organization", dim_uid, err);
    if (rc != 0) {
        free(frames);
        return rc;
    }
    agora__dcmw_str(agora__dcmw_item(root, T(0x0020, 0x9221)), T(0x0020, 0x9164), V('U', 'I'),
                    dim_uid);
    static const uint32_t dim_ptr[2][2] = {{T(0x0062, 0x000B), T(0x0062, 0x000A)},
                                           {T(0x0020, 0x0032), T(0x0020, 0x9113)}};
    static const char *const dim_label[2] = {"ReferencedSegmentNumber", "ImagePositionPatient"};
    for (int d = 0; d < 2; d++) {
        agora__dcmw_ds *it = agora__dcmw_item(root, T(0x0020, 0x9222));
        agora__dcmw_str(it, T(0x0020, 0x9164), V('U', 'I'), dim_uid);
        uint8_t at[4], fg[4];
        /* AT: group then element, each little-endian */
        at[0] = (uint8_t)(dim_ptr[d][0] >> 16), at[1] = (uint8_t)(dim_ptr[d][0] >> 24);
        at[2] = (uint8_t)dim_ptr[d][0], at[3] = (uint8_t)(dim_ptr[d][0] >> 8);
        fg[0] = (uint8_t)(dim_ptr[d][1] >> 16), fg[1] = (uint8_t)(dim_ptr[d][1] >> 24);
        fg[2] = (uint8_t)dim_ptr[d][1], fg[3] = (uint8_t)(dim_ptr[d][1] >> 8);
        agora__dcmw_put(it, T(0x0020, 0x9165), V('A', 'T'), at, 4);
        agora__dcmw_put(it, T(0x0020, 0x9167), V('A', 'T'), fg, 4);
        agora__dcmw_str(it, T(0x0020, 0x9421), V('L', 'O'), dim_label[d]);
    }

    /* Shared groups: orientation and pixel measures of the source. */
    const agora__dicom_instance *in0 = &src->series->instances[0];
    if (!in0->has_orientation || !in0->has_spacing) {
        free(frames);
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                "the source images have no patient orientation or pixel "
                                "spacing; a segmentation cannot be placed on them");
    }
    agora__dcmw_ds *sh = agora__dcmw_item(root, T(0x5200, 0x9229));
    agora__dcmw_ds_num(agora__dcmw_item(sh, T(0x0020, 0x9116)), T(0x0020, 0x0037), in0->orientation,
                       6);
    agora__dcmw_ds *pm = agora__dcmw_item(sh, T(0x0028, 0x9110));
    agora__dcmw_ds_num(pm, T(0x0028, 0x0030), in0->pixel_spacing, 2);
    double thick = src->series->median_spacing > 0 ? src->series->median_spacing : 1.0;
    for (uint32_t k = 0; k < src->meta.n_elements; k++) {
        const agora__ingest_element *e = &src->meta.elements[k];
        if (e->tag == T(0x0018, 0x0050) && e->length > 0 && e->length < 32) {
            char b[32];
            memcpy(b, e->value, e->length);
            b[e->length] = '\0';
            double t = strtod(b, NULL);
            if (t > 0 && t < 1e6)
                thick = t;
        }
    }
    agora__dcmw_ds_num(pm, T(0x0018, 0x0050), &thick, 1);

    /* Per-frame groups, references and pixels. */
    uint8_t *ref_used = calloc(src->series->n_instances, 1);
    size_t pix_len = (n_frames * frame_px + 7) / 8;
    uint8_t *pix = calloc(pix_len + 1, 1);
    if (ref_used == NULL || pix == NULL) {
        free(ref_used);
        free(pix);
        free(frames);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < n_frames && rc == 0; k++) {
        const seg_frame *sf = &frames[k];
        const mask_buf *m = &masks[sf->region];
        uint32_t fidx = m->first + sf->mask_frame;
        const char *sop = NULL;
        uint32_t fnum = 0;
        const agora__dicom_series_frame *sfr =
            agora__export_result_frame(src, result, fidx, &sop, &fnum);
        if (sfr == NULL || !sfr->has_position) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "a masked frame is not in the source series or has no "
                                  "position");
            break;
        }
        ref_used[sfr->instance] = 1;
        agora__dcmw_ds *pf = agora__dcmw_item(root, T(0x5200, 0x9230));
        agora__dcmw_ds *der = agora__dcmw_item(pf, T(0x0008, 0x9124));
        agora__dcmw_code(der, T(0x0008, 0x9215), "DCM", "113076", "Segmentation");
        agora__dcmw_ds *si = agora__dcmw_item(der, T(0x0008, 0x2112));
        agora__dcmw_str(si, T(0x0008, 0x1150), V('U', 'I'), src->sop_classes[sfr->instance]);
        agora__dcmw_str(si, T(0x0008, 0x1155), V('U', 'I'), sop);
        if (src->series->instances[sfr->instance].frames > 1)
            agora__dcmw_is(si, T(0x0008, 0x1160), fnum);
        agora__dcmw_code(si, T(0x0040, 0xA170), "DCM", "121322",
                         "Source image for image processing operation");
        uint32_t div[2] = {sf->segment, fidx + 1};
        agora__dcmw_ul(agora__dcmw_item(pf, T(0x0020, 0x9111)), T(0x0020, 0x9157), div, 2);
        agora__dcmw_ds_num(agora__dcmw_item(pf, T(0x0020, 0x9113)), T(0x0020, 0x0032),
                           sfr->position, 3);
        agora__dcmw_us1(agora__dcmw_item(pf, T(0x0062, 0x000A)), T(0x0062, 0x000B),
                        (uint16_t)sf->segment);
        size_t base = (size_t)sf->mask_frame * frame_px, out = k * frame_px;
        for (size_t i = 0; i < frame_px; i++)
            if (px_at(m, base + i) == sf->value)
                pix[(out + i) / 8] |= (uint8_t)(1u << ((out + i) % 8));
    }
    /* Common Instance Reference: the source series and every instance the frames name. */
    agora__dcmw_ds *rs = agora__dcmw_item(root, T(0x0008, 0x1115));
    agora__dcmw_str(rs, T(0x0020, 0x000E), V('U', 'I'),
                    json_string_value(json_object_get(result, "series_uid")));
    for (uint32_t i = 0; i < src->series->n_instances && rc == 0; i++) {
        if (!ref_used[i])
            continue;
        agora__dcmw_ds *ri = agora__dcmw_item(rs, T(0x0008, 0x114A));
        agora__dcmw_str(ri, T(0x0008, 0x1150), V('U', 'I'), src->sop_classes[i]);
        agora__dcmw_str(ri, T(0x0008, 0x1155), V('U', 'I'), src->series->instances[i].sop_uid);
    }
    if (rc == 0)
        agora__dcmw_put(root, T(0x7FE0, 0x0010), V('O', 'B'), pix, pix_len);
    free(pix);
    free(ref_used);
    free(frames);
    return rc;
}

int agora__export_seg(const agora__export_ctx *ctx, const char *home, const json_t *result,
                      const char *dir, int *written, char *path_out, size_t path_size,
                      agora__error *err)
{
    *written = 0;
    const json_t *regions = json_object_get(result, "regions");
    size_t n_masks = 0, i;
    const json_t *r;
    json_array_foreach(regions, i, r) n_masks += json_object_get(r, "mask") != NULL;
    if (n_masks == 0)
        return 0;
    const char *inv = json_string_value(json_object_get(result, "invocation_id"));
    char series_uid[65], sop_uid[65], path[4096];
    int rc = agora__dcmw_uid(ctx->uid_root, inv, "seg.series", series_uid, err);
    if (rc == 0)
        rc = agora__dcmw_uid(ctx->uid_root, inv, "seg.instance", sop_uid, err);
    int pn = snprintf(path, sizeof path, "%s/seg-%s.dcm", dir, inv);
    if (rc == 0 && (pn < 0 || (size_t)pn >= sizeof path))
        rc = agora__error_set(err, AGORA_ELIMIT, "the output directory path is too long");
    if (rc != 0)
        return rc;
    mask_buf *masks = calloc(n_masks, sizeof *masks);
    if (masks == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    size_t k = 0;
    json_array_foreach(regions, i, r)
    {
        if (rc == 0 && json_object_get(r, "mask"))
            rc = load_mask(home, result, r, &masks[k++], err);
    }
    agora__dcmw *w = NULL;
    if (rc == 0 && (w = agora__dcmw_new(0)) == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (rc == 0)
        rc = build(w, ctx, result, masks, n_masks, series_uid, err);
    if (rc == 0)
        rc = agora__dcmw_write_file(w, AGORA__EXPORT_SEG_CLASS, sop_uid, path, err);
    agora__dcmw_free(w);
    for (k = 0; k < n_masks; k++)
        free(masks[k].data);
    free(masks);
    if (rc != 0)
        return rc;
    *written = 1;
    if (path_out && path_size)
        snprintf(path_out, path_size, "%s", path);
    return 0;
}

int agora__export_seg_segments(const char *home, const json_t *result, agora__export_segment **out,
                               size_t *n_out, agora__error *err)
{
    *out = NULL;
    *n_out = 0;
    size_t i, n = 0, cap = 0;
    const json_t *r;
    agora__export_segment *segs = NULL;
    uint8_t *seen = NULL;
    int rc = 0;
    json_array_foreach(json_object_get(result, "regions"), i, r)
    {
        if (json_object_get(r, "mask") == NULL)
            continue;
        mask_buf m = {0};
        if (seen == NULL && (seen = malloc(65536)) == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        if (rc == 0)
            rc = load_mask(home, result, r, &m, err);
        if (rc == 0)
            mask_values(&m, seen);
        free(m.data);
        /* Same order as build(): mask region order, then ascending label value. */
        for (uint32_t v = 1; v < 65536 && rc == 0; v++) {
            if (!seen[v])
                continue;
            if (n == MAX_SEGMENTS) {
                rc = agora__error_set(err, AGORA_ELIMIT, "more than %u segments in one result",
                                      MAX_SEGMENTS);
                break;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                agora__export_segment *ns = realloc(segs, nc * sizeof *ns);
                if (ns == NULL) {
                    rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
                    break;
                }
                segs = ns;
                cap = nc;
            }
            segs[n] = (agora__export_segment){.region = r, .value = v, .number = (uint32_t)n + 1};
            n++;
        }
        if (rc != 0)
            break;
    }
    free(seen);
    if (rc != 0) {
        free(segs);
        return rc;
    }
    *out = segs;
    *n_out = n;
    return 0;
}
