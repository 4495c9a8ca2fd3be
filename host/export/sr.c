/*
 * Comprehensive 3D SR of one stored result: the TID 1500 Measurement Report that IHE AIR asks
 * for. Tree (PS3.16; codes DCM unless named):
 *
 *   CONTAINER 126000 "Imaging Measurement Report" (TID 1500)
 *     HAS CONCEPT MOD  CODE 121049 Language = en-US (RFC5646)
 *     HAS OBS CONTEXT  CODE 121005 Observer Type = 121007 Device; UIDREF 121012; TEXT 121013-15
 *     HAS CONCEPT MOD  CODE 121058 Procedure reported = the imaging procedure of the modality
 *     CONTAINS CONTAINER 111028 Image Library > 126200 Group > IMAGE per referenced instance
 *     CONTAINS CONTAINER 126010 Imaging Measurements
 *       CONTAINER 125007 Measurement Group, one per
 *         point/box/polygon region (TID 1410): SCOORD 111030 + SELECTED FROM IMAGE,
 *         SEG segment of a mask region (TID 1411): IMAGE 121191 Referenced Segment,
 *         other finding, and the measurements without a region (TID 1501);
 *       each with TEXT 112039 / UIDREF 112040 tracking, CODE 121071 Finding, TID 4019
 *       (TEXT 111001 / 111003), NUM measurements (UCUM), NUM 111012 Certainty of Finding (%).
 *     CONTAINS CONTAINER C0034375 (UMLS) Qualitative Evaluations
 *       CODE 260870009 (SCT) Priority = 103391001 (SCT) Urgent, reason as TEXT 121106 Comment
 *       TEXT 121111 Summary
 *
 * Everything is derived from the result and the real source series, so the same result gives
 * the same bytes. Errors never quote UIDs or plugin text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

#define T AGORA__DCMW_TAG
#define V AGORA__DCMW_VR

#define CONTENT      T(0x0040, 0xA730)
#define MAX_SR_BYTES ((size_t)256 << 20)

/* Coded defaults: a finding the plugin did not code (the SEG uses the same type code). */
#define DEFAULT_FINDING_SCHEME  "SCT"
#define DEFAULT_FINDING_CODE    "52988006"
#define DEFAULT_FINDING_MEANING "Lesion"
/* A local coding scheme for measurements the plugin gave no code: the code value is derived
 * from the name, so equal names get equal codes across results. */
#define LOCAL_SCHEME        "99AGORA"
#define MAX_PRIVATE_SCHEMES 64

typedef struct sr_ctx {
    const agora__export_ctx *ctx;
    const json_t *result;
    const char *pid, *pver, *inv;
    int ascii_only; /* the source's character set is not UTF-8 */
    uint8_t *used;  /* [n_instances]: the SR references source instance i */
    agora__export_segment *segs;
    size_t n_segs;
    char seg_uid[65], seg_series[65];
    /* Private coding schemes ("99..." designators) used, in first-use order: declared in
     * CodingSchemeIdentificationSequence. Designators are SH, <= 16 chars. */
    char private_schemes[MAX_PRIVATE_SCHEMES][17];
    size_t n_private;
    int rc;
    agora__error *err;
} sr_ctx;

static int fail(sr_ctx *c, int code, const char *msg)
{
    if (c->rc == 0)
        c->rc = agora__error_set(c->err, code, "%s", msg);
    return c->rc;
}

/* Plugin text for a DICOM value: a malloc'ed copy (NULL after an error) with the view's
 * pseudonyms re-identified. When the source's character set is not UTF-8 (ISO_IR 192) every
 * non-ASCII sequence becomes '?', since the object keeps the source's SpecificCharacterSet for
 * the copied Patient/Study text. lo: the value goes into a multi-valued VR (LO), where '\' is
 * the value delimiter: it becomes '/'. */
static char *plain(sr_ctx *c, const char *in, int lo)
{
    char *s = agora__export_reident(c->ctx->uids, in ? in : "");
    char *o = s ? malloc(strlen(s) + 1) : NULL;
    if (o == NULL) {
        free(s);
        fail(c, AGORA_ENOMEM, "out of memory");
        return NULL;
    }
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (lo && ch == '\\')
            o[k++] = '/';
        else if (ch < 0x80 || !c->ascii_only)
            o[k++] = (char)ch;
        else if ((ch & 0xC0u) != 0x80u)
            o[k++] = '?'; /* one '?' per sequence: continuation bytes are dropped */
    }
    o[k] = '\0';
    free(s);
    return o;
}

/* A code sequence with plugin-supplied meaning (value and scheme are tokens, checked). */
static agora__dcmw_ds *code(sr_ctx *c, agora__dcmw_ds *ds, uint32_t tag, const char *scheme,
                            const char *value, const char *meaning)
{
    if (c->rc != 0)
        return NULL;
    if (value == NULL || scheme == NULL || strchr(value, '\\') != NULL) {
        fail(c, AGORA_EINVAL, "a code value holds a backslash, which DICOM cannot carry");
        return NULL;
    }
    if (strncmp(scheme, "99", 2) == 0 && strlen(scheme) <= 16) {
        size_t k = 0;
        while (k < c->n_private && strcmp(c->private_schemes[k], scheme) != 0)
            k++;
        if (k == c->n_private && k < MAX_PRIVATE_SCHEMES)
            memcpy(c->private_schemes[c->n_private++], scheme, strlen(scheme) + 1);
    }
    char *m = plain(c, meaning, 1);
    if (m == NULL)
        return NULL;
    agora__dcmw_ds *it = agora__dcmw_code(ds, tag, scheme, value, m[0] ? m : value);
    free(m);
    return it;
}

/* Append a content item to parent's ContentSequence; rel NULL only for the root. */
static agora__dcmw_ds *item(sr_ctx *c, agora__dcmw_ds *parent, const char *rel, const char *vt,
                            const char *scheme, const char *cv, const char *meaning)
{
    if (c->rc != 0)
        return NULL;
    agora__dcmw_ds *it = agora__dcmw_item(parent, CONTENT);
    agora__dcmw_str(it, T(0x0040, 0xA010), V('C', 'S'), rel);
    agora__dcmw_str(it, T(0x0040, 0xA040), V('C', 'S'), vt);
    if (cv)
        code(c, it, T(0x0040, 0xA043), scheme, cv, meaning);
    return it;
}

static agora__dcmw_ds *container(sr_ctx *c, agora__dcmw_ds *parent, const char *scheme,
                                 const char *cv, const char *meaning, const char *tid)
{
    agora__dcmw_ds *it = item(c, parent, "CONTAINS", "CONTAINER", scheme, cv, meaning);
    agora__dcmw_str(it, T(0x0040, 0xA050), V('C', 'S'), "SEPARATE");
    if (tid) {
        agora__dcmw_ds *tp = agora__dcmw_item(it, T(0x0040, 0xA504));
        agora__dcmw_str(tp, T(0x0008, 0x0105), V('C', 'S'), "DCMR");
        agora__dcmw_str(tp, T(0x0040, 0xDB00), V('C', 'S'), tid);
    }
    return it;
}

static void text_item(sr_ctx *c, agora__dcmw_ds *parent, const char *rel, const char *scheme,
                      const char *cv, const char *meaning, const char *value)
{
    agora__dcmw_ds *it = item(c, parent, rel, "TEXT", scheme, cv, meaning);
    char *v = it ? plain(c, value, 0) : NULL;
    if (v)
        agora__dcmw_str(it, T(0x0040, 0xA160), V('U', 'T'), v[0] ? v : "-");
    free(v);
}

static void uid_item(sr_ctx *c, agora__dcmw_ds *parent, const char *rel, const char *cv,
                     const char *meaning, const char *uid)
{
    agora__dcmw_str(item(c, parent, rel, "UIDREF", "DCM", cv, meaning), T(0x0040, 0xA124),
                    V('U', 'I'), uid);
}

static void code_item(sr_ctx *c, agora__dcmw_ds *parent, const char *rel, const char *scheme,
                      const char *cv, const char *meaning, const char *vscheme, const char *vcode,
                      const char *vmeaning)
{
    code(c, item(c, parent, rel, "CODE", scheme, cv, meaning), T(0x0040, 0xA168), vscheme, vcode,
         vmeaning);
}

static void num_item(sr_ctx *c, agora__dcmw_ds *parent, const char *scheme, const char *cv,
                     const char *meaning, double value, const char *ucum)
{
    agora__dcmw_ds *it = item(c, parent, "CONTAINS", "NUM", scheme, cv, meaning);
    agora__dcmw_ds *mv = it ? agora__dcmw_item(it, T(0x0040, 0xA300)) : NULL;
    agora__dcmw_ds_num(mv, T(0x0040, 0xA30A), &value, 1);
    /* Stored units are UCUM already (the results validator parses them). */
    code(c, mv, T(0x0040, 0x08EA), "UCUM", ucum, ucum);
}

/* ReferencedSOPSequence of a source instance (frame number only for multi-frame images). */
static void ref_source(sr_ctx *c, agora__dcmw_ds *it, const agora__dicom_series_frame *f,
                       uint32_t frame_number)
{
    const agora__export_source *src = c->ctx->src;
    agora__dcmw_ds *rs = agora__dcmw_item(it, T(0x0008, 0x1199));
    agora__dcmw_str(rs, T(0x0008, 0x1150), V('U', 'I'), src->sop_classes[f->instance]);
    agora__dcmw_str(rs, T(0x0008, 0x1155), V('U', 'I'),
                    src->series->instances[f->instance].sop_uid);
    if (src->series->instances[f->instance].frames > 1)
        agora__dcmw_is(rs, T(0x0008, 0x1160), frame_number);
    c->used[f->instance] = 1;
}

/* The series frame of a result frame index, failing when the source lacks it. */
static const agora__dicom_series_frame *frame_of(sr_ctx *c, json_int_t index, uint32_t *fnum)
{
    const char *sop = NULL;
    const agora__dicom_series_frame *f =
        index >= 0 && index <= 65535
            ? agora__export_result_frame(c->ctx->src, c->result, (uint32_t)index, &sop, fnum)
            : NULL;
    if (f == NULL)
        fail(c, AGORA_EINVAL, "a frame the result references is not in the source series");
    return f;
}

int agora__export_sr_scoord(const char *kind, const double *p, size_t n, float *out, size_t *n_out,
                            const char **graphic_type)
{
    /* Agora's (0,0) is the centre of the top-left pixel; DICOM's is its top-left corner. */
    if (strcmp(kind, "point") == 0 && n == 1) {
        out[0] = (float)(p[0] + 0.5), out[1] = (float)(p[1] + 0.5);
        *n_out = 2;
        *graphic_type = "POINT";
        return 0;
    }
    if (strcmp(kind, "polygon") == 0 && n >= 3) {
        for (size_t i = 0; i < n; i++)
            out[2 * i] = (float)(p[2 * i] + 0.5), out[2 * i + 1] = (float)(p[2 * i + 1] + 0.5);
        out[2 * n] = out[0], out[2 * n + 1] = out[1];
        *n_out = 2 * (n + 1);
        *graphic_type = "POLYLINE";
        return 0;
    }
    if (strcmp(kind, "box") == 0 && n == 2) {
        /* Corners are pixel centres, inclusive: the outline runs along the outer edges of
         * the covered pixels, from the left/top edge of the first to the right/bottom edge
         * of the last (so its area is the box's pixel count). */
        double l = p[0] < p[2] ? p[0] : p[2], r = p[0] < p[2] ? p[2] : p[0];
        double t = p[1] < p[3] ? p[1] : p[3], b = p[1] < p[3] ? p[3] : p[1];
        const double xy[10] = {l, t, r + 1, t, r + 1, b + 1, l, b + 1, l, t};
        for (size_t i = 0; i < 10; i++)
            out[i] = (float)xy[i];
        *n_out = 10;
        *graphic_type = "POLYLINE";
        return 0;
    }
    return AGORA_EINVAL;
}

/* Measurement group with tracking identifier/UID and TID 4019 algorithm identification. */
static agora__dcmw_ds *group(sr_ctx *c, agora__dcmw_ds *parent, const char *tid,
                             const char *tracking, const char *uid_label)
{
    char uid[65];
    if (c->rc == 0)
        c->rc = agora__dcmw_uid(c->ctx->uid_root, c->inv, uid_label, uid, c->err);
    if (c->rc != 0)
        return NULL;
    agora__dcmw_ds *g = container(c, parent, "DCM", "125007", "Measurement Group", tid);
    text_item(c, g, "HAS OBS CONTEXT", "DCM", "112039", "Tracking Identifier", tracking);
    uid_item(c, g, "HAS OBS CONTEXT", "112040", "Tracking Unique Identifier", uid);
    return g;
}

static void algorithm(sr_ctx *c, agora__dcmw_ds *g)
{
    text_item(c, g, "HAS CONCEPT MOD", "DCM", "111001", "Algorithm Name", c->pid);
    text_item(c, g, "HAS CONCEPT MOD", "DCM", "111003", "Algorithm Version", c->pver);
}

static void finding_item(sr_ctx *c, agora__dcmw_ds *g, const json_t *f)
{
    const json_t *cd = json_object_get(f, "code");
    if (cd)
        code_item(c, g, "CONTAINS", "DCM", "121071", "Finding",
                  json_string_value(json_object_get(cd, "scheme")),
                  json_string_value(json_object_get(cd, "code")),
                  json_string_value(json_object_get(cd, "meaning")));
    else
        code_item(c, g, "CONTAINS", "DCM", "121071", "Finding", DEFAULT_FINDING_SCHEME,
                  DEFAULT_FINDING_CODE, DEFAULT_FINDING_MEANING);
}

static void confidence_item(sr_ctx *c, agora__dcmw_ds *g, const json_t *f)
{
    const json_t *cf = json_object_get(f, "confidence");
    if (f && json_is_number(cf))
        num_item(c, g, "DCM", "111012", "Certainty of Finding", json_number_value(cf) * 100.0, "%");
}

static void measurement_item(sr_ctx *c, agora__dcmw_ds *g, const json_t *m)
{
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *unit = json_string_value(json_object_get(m, "unit"));
    double v = json_number_value(json_object_get(m, "value"));
    const json_t *cd = json_object_get(m, "code");
    if (cd) {
        num_item(c, g, json_string_value(json_object_get(cd, "scheme")),
                 json_string_value(json_object_get(cd, "code")),
                 json_string_value(json_object_get(cd, "meaning")), v, unit);
        return;
    }
    uint8_t h[32];
    char hex[65], cv[17];
    agora__sha256((const uint8_t *)(name ? name : ""), name ? strlen(name) : 0, h);
    agora__hex(h, 8, hex);
    snprintf(cv, sizeof cv, "M%.15s", hex);
    num_item(c, g, LOCAL_SCHEME, cv, name, v, unit);
}

/* The first finding naming region id, or NULL; its index in *index. */
static const json_t *region_finding(const json_t *result, json_int_t id, size_t *index)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(result, "findings"), i, f)
    {
        const json_t *r = json_object_get(f, "region");
        if (json_is_integer(r) && json_integer_value(r) == id) {
            *index = i;
            return f;
        }
    }
    return NULL;
}

static void region_measurements(sr_ctx *c, agora__dcmw_ds *g, json_int_t id)
{
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(c->result, "measurements"), i, m)
    {
        const json_t *r = json_object_get(m, "region");
        if (json_is_integer(r) && json_integer_value(r) == id)
            measurement_item(c, g, m);
    }
}

static void tracking_text(const json_t *region, const char *what, char *out, size_t size)
{
    const char *label = json_string_value(json_object_get(region, "label"));
    long long id = (long long)json_integer_value(json_object_get(region, "id"));
    if (label && label[0])
        snprintf(out, size, "region %lld%s: %s", id, what, label);
    else
        snprintf(out, size, "region %lld%s", id, what);
}

/* The group of a region (what: "" or " label V"): tracking, the region's first finding
 * (marked placed; *finding, or NULL) or the default code, algorithm identification. */
static agora__dcmw_ds *region_group(sr_ctx *c, agora__dcmw_ds *ims, const char *tid,
                                    const json_t *region, const char *what, const char *uid_label,
                                    uint8_t *placed, const json_t **finding)
{
    char tracking[400];
    tracking_text(region, what, tracking, sizeof tracking);
    agora__dcmw_ds *grp = group(c, ims, tid, tracking, uid_label);
    size_t fi = 0;
    *finding = region_finding(c->result, json_integer_value(json_object_get(region, "id")), &fi);
    finding_item(c, grp, *finding);
    if (*finding)
        placed[fi] = 1;
    algorithm(c, grp);
    return grp;
}

/* TID 1410: a point, box or polygon on one frame. */
static void planar_group(sr_ctx *c, agora__dcmw_ds *ims, const json_t *region, uint8_t *placed)
{
    json_int_t id = json_integer_value(json_object_get(region, "id"));
    const char *kind = json_string_value(json_object_get(region, "kind"));
    const json_t *pts = json_object_get(region, "points");
    size_t n = json_array_size(pts), i;
    if (n == 0 || n > 100000)
        return (void)fail(c, AGORA_EINVAL, "a region has no points or too many");
    double *p = malloc(2 * n * sizeof *p);
    float *g = malloc((2 * (n + 1) + 10) * sizeof *g);
    const json_t *pt;
    char label[64];
    size_t nv = 0;
    const char *gt = NULL;
    if (p == NULL || g == NULL) {
        fail(c, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(pts, i, pt)
    {
        p[2 * i] = json_number_value(json_array_get(pt, 0));
        p[2 * i + 1] = json_number_value(json_array_get(pt, 1));
    }
    if (agora__export_sr_scoord(kind, p, n, g, &nv, &gt) != 0) {
        fail(c, AGORA_EINVAL, "a region's kind does not match its points");
        goto out;
    }
    uint32_t fnum = 0;
    const agora__dicom_series_frame *f =
        frame_of(c, json_integer_value(json_object_get(region, "frame")), &fnum);
    if (f == NULL)
        goto out;
    snprintf(label, sizeof label, "sr.tracking:region:%lld", (long long)id);
    const json_t *fd = NULL;
    agora__dcmw_ds *grp = region_group(c, ims, "1410", region, "", label, placed, &fd);
    agora__dcmw_ds *sc = item(c, grp, "CONTAINS", "SCOORD", "DCM", "111030", "Image Region");
    agora__dcmw_str(sc, T(0x0070, 0x0023), V('C', 'S'), gt);
    uint8_t *b = malloc(nv * 4);
    if (b == NULL) {
        fail(c, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < nv; k++) {
        uint32_t u;
        memcpy(&u, &g[k], 4);
        b[4 * k] = (uint8_t)u, b[4 * k + 1] = (uint8_t)(u >> 8);
        b[4 * k + 2] = (uint8_t)(u >> 16), b[4 * k + 3] = (uint8_t)(u >> 24);
    }
    agora__dcmw_put(sc, T(0x0070, 0x0022), V('F', 'L'), b, nv * 4);
    free(b);
    ref_source(c, item(c, sc, "SELECTED FROM", "IMAGE", NULL, NULL, NULL), f, fnum);
    region_measurements(c, grp, id);
    confidence_item(c, grp, fd);
out:
    free(p);
    free(g);
}

/* TID 1411: one SEG segment of a mask region. first: the region's first segment, which
 * carries the region's measurements (they describe the whole region). */
static void volumetric_group(sr_ctx *c, agora__dcmw_ds *ims, const agora__export_segment *s,
                             int first, uint8_t *placed)
{
    json_int_t id = json_integer_value(json_object_get(s->region, "id"));
    char what[32], label[80];
    snprintf(what, sizeof what, " label %u", s->value);
    snprintf(label, sizeof label, "sr.tracking:segment:%u", s->number);
    const json_t *fd = NULL;
    agora__dcmw_ds *grp = region_group(c, ims, "1411", s->region, what, label, placed, &fd);
    agora__dcmw_ds *im = item(c, grp, "CONTAINS", "IMAGE", "DCM", "121191", "Referenced Segment");
    agora__dcmw_ds *rs = agora__dcmw_item(im, T(0x0008, 0x1199));
    agora__dcmw_str(rs, T(0x0008, 0x1150), V('U', 'I'), AGORA__EXPORT_SEG_CLASS);
    agora__dcmw_str(rs, T(0x0008, 0x1155), V('U', 'I'), c->seg_uid);
    agora__dcmw_us1(rs, T(0x0062, 0x000B), (uint16_t)s->number);
    uid_item(c, grp, "CONTAINS", "121232", "Source series for segmentation",
             json_string_value(json_object_get(c->result, "series_uid")));
    if (first)
        region_measurements(c, grp, id);
    confidence_item(c, grp, fd);
}

/* TID 1501: a finding that no region group carries. */
static void finding_group(sr_ctx *c, agora__dcmw_ds *ims, const json_t *f, size_t index)
{
    char tracking[400], label[64];
    const char *m = json_string_value(json_object_get(json_object_get(f, "code"), "meaning"));
    snprintf(tracking, sizeof tracking, "finding %zu: %s", index + 1, m ? m : "");
    snprintf(label, sizeof label, "sr.tracking:finding:%zu", index);
    agora__dcmw_ds *grp = group(c, ims, "1501", tracking, label);
    finding_item(c, grp, f);
    algorithm(c, grp);
    confidence_item(c, grp, f);
}

/* Referenced source instances, plus the SEG, in CurrentRequestedProcedureEvidenceSequence
 * (PS3.3 C.17.2.3: every instance the content references), and the Image Library. */
static void evidence(sr_ctx *c, agora__dcmw_ds *root, agora__dcmw_ds *library)
{
    const agora__export_source *src = c->ctx->src;
    agora__dcmw_ds *st = agora__dcmw_item(root, T(0x0040, 0xA375));
    agora__dcmw_str(st, T(0x0020, 0x000D), V('U', 'I'),
                    json_string_value(json_object_get(c->result, "study_uid")));
    agora__dcmw_ds *se = agora__dcmw_item(st, T(0x0008, 0x1115));
    agora__dcmw_str(se, T(0x0020, 0x000E), V('U', 'I'),
                    json_string_value(json_object_get(c->result, "series_uid")));
    agora__dcmw_ds *lg = container(c, library, "DCM", "126200", "Image Library Group", NULL);
    for (uint32_t i = 0; i < src->series->n_instances; i++) {
        if (!c->used[i])
            continue;
        agora__dcmw_ds *r = agora__dcmw_item(se, T(0x0008, 0x1199));
        agora__dcmw_str(r, T(0x0008, 0x1150), V('U', 'I'), src->sop_classes[i]);
        agora__dcmw_str(r, T(0x0008, 0x1155), V('U', 'I'), src->series->instances[i].sop_uid);
        agora__dcmw_ds *im = item(c, lg, "CONTAINS", "IMAGE", NULL, NULL, NULL);
        agora__dcmw_ds *ir = agora__dcmw_item(im, T(0x0008, 0x1199));
        agora__dcmw_str(ir, T(0x0008, 0x1150), V('U', 'I'), src->sop_classes[i]);
        agora__dcmw_str(ir, T(0x0008, 0x1155), V('U', 'I'), src->series->instances[i].sop_uid);
    }
    if (c->n_segs) {
        agora__dcmw_ds *ss = agora__dcmw_item(st, T(0x0008, 0x1115));
        agora__dcmw_str(ss, T(0x0020, 0x000E), V('U', 'I'), c->seg_series);
        agora__dcmw_ds *r = agora__dcmw_item(ss, T(0x0008, 0x1199));
        agora__dcmw_str(r, T(0x0008, 0x1150), V('U', 'I'), AGORA__EXPORT_SEG_CLASS);
        agora__dcmw_str(r, T(0x0008, 0x1155), V('U', 'I'), c->seg_uid);
    }
}

/* Procedure reported (121058): the imaging procedure analysed (IHE AIR), from CID 100. */
static void procedure(sr_ctx *c, agora__dcmw_ds *root)
{
    const char *mod = c->ctx->src->meta.modality;
    static const struct {
        const char *modality, *scheme, *code, *meaning;
    } procs[] = {
        {"CT", "LN", "25045-6", "CT unspecified body region"},
        {"MR", "LN", "25056-3", "MRI unspecified body region"},
        {"PT", "LN", "44136-0", "PET unspecified body region"},
        {"NM", "LN", "49118-3", "NM unspecified body region"},
    };
    const char *scheme = "SCT", *cv = "363679005", *meaning = "Imaging procedure";
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++)
        if (strcmp(mod, procs[i].modality) == 0)
            scheme = procs[i].scheme, cv = procs[i].code, meaning = procs[i].meaning;
    code_item(c, root, "HAS CONCEPT MOD", "DCM", "121058", "Procedure reported", scheme, cv,
              meaning);
}

static int source_is_utf8(const agora__export_source *src)
{
    for (uint32_t k = 0; k < src->meta.n_elements; k++) {
        const agora__ingest_element *e = &src->meta.elements[k];
        if (e->tag == T(0x0008, 0x0005))
            return e->length >= 10 && memcmp(e->value, "ISO_IR 192", 10) == 0;
    }
    return 0;
}

static void build(sr_ctx *c, agora__dcmw *w, const char *series_uid)
{
    const agora__export_source *src = c->ctx->src;
    const json_t *res = c->result;
    agora__dcmw_ds *root = agora__dcmw_root(w);
    c->rc = agora__export_common(root, c->ctx, res, "SR", series_uid, 902,
                                 "Agora measurement report", c->err);
    if (c->rc != 0)
        return;
    char device[65];
    if ((c->rc = agora__export_device_uid(c->ctx, res, device, c->err)) != 0)
        return;

    /* SR Document Series/General modules. */
    agora__dcmw_seq(root, T(0x0008, 0x1111));
    agora__dcmw_seq(root, T(0x0040, 0xA372));
    agora__dcmw_str(root, T(0x0040, 0xA491), V('C', 'S'), "COMPLETE");
    agora__dcmw_str(root, T(0x0040, 0xA493), V('C', 'S'), "UNVERIFIED");

    /* SR Document Content: the root container. */
    agora__dcmw_str(root, T(0x0040, 0xA040), V('C', 'S'), "CONTAINER");
    agora__dcmw_code(root, T(0x0040, 0xA043), "DCM", "126000", "Imaging Measurement Report");
    agora__dcmw_str(root, T(0x0040, 0xA050), V('C', 'S'), "SEPARATE");
    agora__dcmw_ds *tp = agora__dcmw_item(root, T(0x0040, 0xA504));
    agora__dcmw_str(tp, T(0x0008, 0x0105), V('C', 'S'), "DCMR");
    agora__dcmw_str(tp, T(0x0040, 0xDB00), V('C', 'S'), "1500");

    code_item(c, root, "HAS CONCEPT MOD", "DCM", "121049",
              "Language of Content Item and Descendants", "RFC5646", "en-US",
              "English (United States)");
    code_item(c, root, "HAS OBS CONTEXT", "DCM", "121005", "Observer Type", "DCM", "121007",
              "Device");
    uid_item(c, root, "HAS OBS CONTEXT", "121012", "Device Observer UID", device);
    text_item(c, root, "HAS OBS CONTEXT", "DCM", "121013", "Device Observer Name", c->pid);
    text_item(c, root, "HAS OBS CONTEXT", "DCM", "121014", "Device Observer Manufacturer",
              c->ctx->vendor && c->ctx->vendor[0] ? c->ctx->vendor : "unknown vendor");
    text_item(c, root, "HAS OBS CONTEXT", "DCM", "121015", "Device Observer Model Name", c->pid);
    procedure(c, root);
    agora__dcmw_ds *library = container(c, root, "DCM", "111028", "Image Library", NULL);
    agora__dcmw_ds *ims = container(c, root, "DCM", "126010", "Imaging Measurements", NULL);

    const json_t *findings = json_object_get(res, "findings");
    uint8_t *placed = calloc(json_array_size(findings) + 1, 1);
    if (placed == NULL)
        return (void)fail(c, AGORA_ENOMEM, "out of memory");
    size_t i, n_groups = 0;
    const json_t *r;
    json_array_foreach(json_object_get(res, "regions"), i, r)
    {
        if (json_object_get(r, "mask") != NULL) {
            for (size_t k = 0; k < c->n_segs; k++)
                if (c->segs[k].region == r) {
                    volumetric_group(c, ims, &c->segs[k], k == 0 || c->segs[k - 1].region != r,
                                     placed);
                    n_groups++;
                }
        } else {
            planar_group(c, ims, r, placed);
            n_groups++;
        }
    }
    const json_t *f;
    json_array_foreach(findings, i, f)
    {
        if (!placed[i]) {
            finding_group(c, ims, f, i);
            n_groups++;
        }
    }
    free(placed);
    /* Measurements without a region (frame- or series-level), or an empty result: one TID
     * 1501 group, since TID 1500 wants at least one group. */
    const json_t *m;
    int loose = 0;
    json_array_foreach(json_object_get(res, "measurements"), i, m) loose |=
        !json_is_integer(json_object_get(m, "region"));
    if (loose || n_groups == 0) {
        agora__dcmw_ds *grp = group(c, ims, "1501", "result", "sr.tracking:result");
        algorithm(c, grp);
        json_array_foreach(json_object_get(res, "measurements"), i, m)
        {
            if (!json_is_integer(json_object_get(m, "region")))
                measurement_item(c, grp, m);
        }
    }

    /* The result names these frames; with none (a series-level result) the whole analysed
     * series is the evidence. */
    const json_t *fr;
    uint32_t fnum;
    json_array_foreach(json_object_get(res, "frames"), i, fr)
    {
        const agora__dicom_series_frame *sf =
            frame_of(c, json_integer_value(json_object_get(fr, "frame")), &fnum);
        if (sf)
            c->used[sf->instance] = 1;
    }
    if (json_array_size(json_object_get(res, "frames")) == 0)
        memset(c->used, 1, src->series->n_instances);

    const json_t *tr = json_object_get(res, "triage");
    const char *summary = json_string_value(json_object_get(res, "summary"));
    if (json_is_true(json_object_get(tr, "urgent")) || (summary && summary[0])) {
        agora__dcmw_ds *q = container(c, root, "UMLS", "C0034375", "Qualitative Evaluations", NULL);
        if (json_is_true(json_object_get(tr, "urgent"))) {
            /* A worklist filters on this coded item; the reason rides along as text. */
            code_item(c, q, "CONTAINS", "SCT", "260870009", "Priority", "SCT", "103391001",
                      "Urgent");
            text_item(c, q, "CONTAINS", "DCM", "121106", "Comment",
                      json_string_value(json_object_get(tr, "reason")));
        }
        if (summary && summary[0])
            text_item(c, q, "CONTAINS", "DCM", "121111", "Summary", summary);
    }
    evidence(c, root, library);
    for (size_t k = 0; k < c->n_private; k++) {
        const char *sch = c->private_schemes[k];
        int local = strcmp(sch, LOCAL_SCHEME) == 0;
        agora__dcmw_ds *cs = agora__dcmw_item(root, T(0x0008, 0x0110));
        agora__dcmw_str(cs, T(0x0008, 0x0102), V('S', 'H'), sch);
        agora__dcmw_str(cs, T(0x0008, 0x0115), V('S', 'T'),
                        local ? "Agora measurement names" : "private scheme of the plugin");
        agora__dcmw_str(cs, T(0x0008, 0x0116), V('S', 'T'),
                        local                                 ? "Agora"
                        : c->ctx->vendor && c->ctx->vendor[0] ? c->ctx->vendor
                                                              : "unknown vendor");
    }
}

int agora__export_sr(const agora__export_ctx *ctx, const char *home, const json_t *result,
                     const char *dir, char *path_out, size_t path_size, agora__error *err)
{
    const json_t *p = json_object_get(result, "plugin");
    sr_ctx c = {.ctx = ctx,
                .result = result,
                .pid = json_string_value(json_object_get(p, "id")),
                .pver = json_string_value(json_object_get(p, "version")),
                .inv = json_string_value(json_object_get(result, "invocation_id")),
                .ascii_only = !source_is_utf8(ctx->src),
                .err = err};
    if (c.pid == NULL || c.pver == NULL || c.inv == NULL)
        return agora__error_set(err, AGORA_EINVAL, "the stored result lacks plugin or invocation");
    char series_uid[65], sop_uid[65], path[4096];
    int rc = agora__dcmw_uid(ctx->uid_root, c.inv, "sr.series", series_uid, err);
    if (rc == 0)
        rc = agora__dcmw_uid(ctx->uid_root, c.inv, "sr.instance", sop_uid, err);
    /* The SEG of the same result (seg.c's labels), referenced by the volumetric groups. */
    if (rc == 0)
        rc = agora__dcmw_uid(ctx->uid_root, c.inv, "seg.instance", c.seg_uid, err);
    if (rc == 0)
        rc = agora__dcmw_uid(ctx->uid_root, c.inv, "seg.series", c.seg_series, err);
    int pn = snprintf(path, sizeof path, "%s/sr-%s.dcm", dir, c.inv);
    if (rc == 0 && (pn < 0 || (size_t)pn >= sizeof path))
        rc = agora__error_set(err, AGORA_ELIMIT, "the output directory path is too long");
    if (rc == 0)
        rc = agora__export_seg_segments(home, result, &c.segs, &c.n_segs, err);
    if (rc != 0)
        return rc;
    agora__dcmw *w = agora__dcmw_new(MAX_SR_BYTES);
    c.used = calloc(ctx->src->series->n_instances + 1, 1);
    if (w == NULL || c.used == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (rc == 0) {
        build(&c, w, series_uid);
        rc = c.rc;
    }
    if (rc == 0)
        rc = agora__dcmw_write_file(w, AGORA__EXPORT_SR_CLASS, sop_uid, path, err);
    agora__dcmw_free(w);
    free(c.used);
    free(c.segs);
    if (rc != 0)
        return rc;
    if (path_out && path_size)
        snprintf(path_out, path_size, "%s", path);
    return 0;
}
