/* The plugin view: allowlisted attributes as (keyword, text) pairs, pseudonymous UIDs, and the
 * burned-in annotation refusal (see deid.h). */
#include "allowlist.h"
#include "charset.h"
#include "deid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))

/* Modalities whose images commonly carry burned-in text (ultrasound, secondary capture, other,
 * external camera, endoscopy, microscopy, slide microscopy, document): refused when they do not
 * state BurnedInAnnotation=NO. */
static const char *const burn_prone[] = {"US", "SC", "OT", "XC", "ES", "GM", "SM", "DOC"};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The element as text into out (NUL-terminated). Returns 0, or -1 when it cannot be shown
 * (binary VR not numeric, non-finite number, too long, not printable UTF-8). */
static int to_text(const char *vr, const uint8_t *v, size_t len, char *out, size_t out_size)
{
    size_t w = 0;
    size_t unit = 0;
    if (strcmp(vr, "US") == 0 || strcmp(vr, "SS") == 0)
        unit = 2;
    else if (strcmp(vr, "UL") == 0 || strcmp(vr, "SL") == 0 || strcmp(vr, "FL") == 0)
        unit = 4;
    else if (strcmp(vr, "FD") == 0)
        unit = 8;
    if (unit != 0) {
        if (len == 0 || len % unit != 0 || len / unit > 16)
            return -1;
        for (size_t i = 0; i < len; i += unit) {
            char num[40];
            if (strcmp(vr, "US") == 0) {
                snprintf(num, sizeof num, "%u", (unsigned)rd16(v + i));
            } else if (strcmp(vr, "SS") == 0) {
                snprintf(num, sizeof num, "%d", (int)(int16_t)rd16(v + i));
            } else if (strcmp(vr, "UL") == 0) {
                snprintf(num, sizeof num, "%lu", (unsigned long)rd32(v + i));
            } else if (strcmp(vr, "SL") == 0) {
                snprintf(num, sizeof num, "%ld", (long)(int32_t)rd32(v + i));
            } else if (strcmp(vr, "FL") == 0) {
                uint32_t bits = rd32(v + i);
                float f;
                memcpy(&f, &bits, 4);
                if (!isfinite(f))
                    return -1;
                snprintf(num, sizeof num, "%.9g", (double)f);
            } else {
                uint64_t bits = (uint64_t)rd32(v + i) | ((uint64_t)rd32(v + i + 4) << 32);
                double d;
                memcpy(&d, &bits, 8);
                if (!isfinite(d))
                    return -1;
                snprintf(num, sizeof num, "%.17g", d);
            }
            size_t n = strlen(num);
            if (w + n + 2 > out_size)
                return -1;
            if (w > 0)
                out[w++] = '\\';
            memcpy(out + w, num, n);
            w += n;
        }
        out[w] = '\0';
        return 0;
    }
    /* Text VRs: trim padding, then require printable UTF-8 (no control characters at all, so no
     * ISO 2022 escapes either) and a bounded length. */
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\0'))
        len--;
    size_t s = 0;
    while (s < len && v[s] == ' ')
        s++;
    if (len - s == 0 || len - s >= out_size)
        return -1;
    for (size_t i = s; i < len; i++)
        if (v[i] < 0x20 || v[i] == 0x7F)
            return -1;
    if (!agora__utf8_valid((const char *)v + s, len - s))
        return -1;
    memcpy(out, v + s, len - s);
    out[len - s] = '\0';
    return 0;
}

int agora__deid_burned_in_check(const char *burned_in, const char *modality, uint32_t flags,
                                agora__error *err)
{
    if (flags & AGORA__DEID_ALLOW_BURNED_IN)
        return 0;
    if (strcmp(burned_in, "YES") == 0)
        return agora__error_set(err, AGORA_EINPUT,
                                "image declares burned-in annotation (BurnedInAnnotation=YES): "
                                "its pixels may show identity; refused unless the clinic policy "
                                "allows burned-in images (--allow-burned-in)");
    if (strcmp(burned_in, "NO") == 0)
        return 0;
    for (size_t i = 0; i < sizeof burn_prone / sizeof burn_prone[0]; i++)
        if (strcmp(modality, burn_prone[i]) == 0)
            return agora__error_set(err, AGORA_EINPUT,
                                    "%s image without BurnedInAnnotation=NO: this modality often "
                                    "has identity burned into the pixels; refused unless the "
                                    "clinic policy allows burned-in images (--allow-burned-in)",
                                    burn_prone[i]);
    return 0;
}

static const agora__deid_allow_group *find_group(const char *option)
{
    for (size_t i = 0; i < agora__deid_allow_groups_count; i++)
        if (strcmp(agora__deid_allow_groups[i].option, option) == 0)
            return &agora__deid_allow_groups[i];
    return NULL;
}

int agora__deid_view_group_size(const char *option)
{
    if (option == NULL)
        return (int)agora__deid_allow_default_count;
    const agora__deid_allow_group *g = find_group(option);
    return g == NULL ? -1 : (int)g->count;
}

void agora__deid_granted_free(agora__deid_granted *view)
{
    if (view == NULL)
        return;
    for (size_t i = 0; i < view->count; i++)
        free(view->attrs[i].value);
    memset(view, 0, sizeof *view);
}

static int has_attr(const agora__deid_granted *v, const char *keyword)
{
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->attrs[i].keyword, keyword) == 0)
            return 1;
    return 0;
}

typedef struct view_ctx {
    agora__deid_get_fn get;
    void *ctx;
    int shift; /* apply the date offset */
    int days;
    agora__dicom_charset cs; /* the dataset's Specific Character Set (0008,0005) */
} view_ctx;

/* A value of a VR that (0008,0005) governs (LO, SH... of the allowlist), decoded to UTF-8 into
 * out. -1 when it is too long, or when any byte did not decode (a value shown in part could
 * mislead; it is left out like any unprintable value). */
static int decode_value(const view_ctx *c, const char *vr, const uint8_t *v, size_t len,
                        uint8_t *out, size_t out_size, size_t *out_len)
{
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\0'))
        len--;
    if (AGORA__DICOM_DECODE_MAX(len) > out_size)
        return -1;
    size_t replaced = 0;
    *out_len = agora__dicom_decode_text(&c->cs, AGORA__DICOM_VR(vr[0], vr[1]), v, len, (char *)out,
                                        out_size, &replaced);
    return replaced == 0 ? 0 : -1;
}

static int add_attr(agora__deid_granted *out, const view_ctx *c, const agora__deid_allow *a,
                    agora__error *err)
{
    if (has_attr(out, a->keyword))
        return 0; /* two groups may list the same attribute (full vs modified dates) */
    char vr[3] = "";
    const uint8_t *bytes = NULL;
    size_t len = 0;
    int got = c->get(c->ctx, a->tag, vr, &bytes, &len);
    if (got < 0)
        return agora__error_set(err, AGORA_EINPUT, "view: cannot read attribute %s", a->keyword);
    if (got == 0 || len == 0)
        return 0;
    if (vr[0] == '\0' || strcmp(vr, "UN") == 0)
        memcpy(vr, a->vr, 3); /* implicit VR with an unknown dictionary entry: trust the list */
    if (strcmp(vr, a->vr) != 0 && !(strcmp(a->vr, "US") == 0 && strcmp(vr, "SS") == 0))
        return 0; /* a VR other than the standard's: the value cannot be interpreted safely */
    /* ISO 2022 escapes take bytes; a value that decodes to at most the cap may be this long. */
    uint8_t decoded[AGORA__DICOM_DECODE_MAX(4 * AGORA__DEID_VIEW_MAX_VALUE)];
    if (agora__dicom_charset_vr(AGORA__DICOM_VR(vr[0], vr[1]))) {
        if (decode_value(c, vr, bytes, len, decoded, sizeof decoded, &len) != 0)
            return 0;
        bytes = decoded;
    }
    char text[AGORA__DEID_VIEW_MAX_VALUE + 1];
    if (to_text(vr, bytes, len, text, sizeof text) != 0)
        return 0; /* not printable or too long: leave it out rather than show a part of it */
    if (c->shift && (strcmp(vr, "DA") == 0 || strcmp(vr, "DT") == 0)) {
        char shifted[AGORA__DEID_VIEW_MAX_VALUE + 1];
        if (agora__deid_shift_dates(text, strlen(text), c->days, shifted, sizeof shifted) != 0)
            return 0; /* an unparsable date is never shown unshifted */
        memcpy(text, shifted, sizeof text);
    }
    if (out->count >= AGORA__DEID_VIEW_MAX_ATTRS)
        return agora__error_set(err, AGORA_ELIMIT, "view: more than %d attributes",
                                AGORA__DEID_VIEW_MAX_ATTRS);
    char *dup = strdup(text);
    if (dup == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "view: out of memory");
    out->attrs[out->count].keyword = a->keyword;
    out->attrs[out->count].value = dup;
    out->count++;
    return 0;
}

/* Read a short text attribute (trimmed) into out; "" when absent or unreadable. */
static void get_text(const view_ctx *c, uint32_t tag, char *out, size_t out_size)
{
    char vr[3] = "";
    const uint8_t *bytes = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (c->get(c->ctx, tag, vr, &bytes, &len) != 1 || bytes == NULL)
        return;
    while (len > 0 && (bytes[len - 1] == ' ' || bytes[len - 1] == '\0'))
        len--;
    size_t s = 0;
    while (s < len && bytes[s] == ' ')
        s++;
    if (len - s >= out_size)
        len = s + out_size - 1;
    memcpy(out, bytes + s, len - s);
    out[len - s] = '\0';
}

static int pseudonym(const view_ctx *c, const uint8_t secret[32], uint32_t tag,
                     agora__deid_uid_kind kind, agora__deid_uidmap *map, char out[65],
                     agora__error *err)
{
    char real[AGORA__DEID_UID_INPUT_MAX + 1];
    get_text(c, tag, real, sizeof real);
    out[0] = '\0';
    if (real[0] == '\0')
        return 0;
    int rc = agora__deid_uid(secret, real, out, err);
    if (rc == 0 && map != NULL)
        rc = agora__deid_uidmap_add(map, kind, out, real, err);
    return rc;
}

int agora__deid_view(agora__deid_get_fn get, void *ctx, const uint8_t secret[32],
                     const char *const *granted, size_t granted_count, uint32_t flags,
                     agora__deid_uidmap *map, agora__deid_granted *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (get == NULL || secret == NULL || (granted == NULL && granted_count > 0))
        return agora__error_set(err, AGORA_EINVAL, "view: missing argument");
    view_ctx c = {get, ctx, 0, 0, {0}};
    {
        char vr[3] = "";
        const uint8_t *bytes = NULL;
        size_t len = 0;
        if (get(ctx, AGORA__DICOM_T_SPECIFIC_CHARSET, vr, &bytes, &len) == 1 && bytes != NULL)
            agora__dicom_charset_parse(bytes, len, &c.cs);
        else
            agora__dicom_charset_default(&c.cs);
    }

    const agora__deid_allow_group *groups[16];
    if (granted_count > sizeof groups / sizeof groups[0])
        return agora__error_set(err, AGORA_ELIMIT, "view: too many options granted");
    for (size_t i = 0; i < granted_count; i++) {
        groups[i] = granted[i] == NULL ? NULL : find_group(granted[i]);
        if (groups[i] == NULL)
            return agora__error_set(err, AGORA_EINVAL,
                                    "view: option '%.64s' gives a plugin nothing it may see; "
                                    "remove it from the manifest or the policy",
                                    granted[i] ? granted[i] : "(null)");
    }

    /* Burned-in identity: refused unless the policy says otherwise. */
    char burned[17], modality[17];
    get_text(&c, TAG(0x0028, 0x0301), burned, sizeof burned);
    get_text(&c, TAG(0x0008, 0x0060), modality, sizeof modality);
    if (agora__deid_burned_in_check(burned, modality, flags, err) != 0)
        return AGORA_EINPUT;

    int rc = 0;
    for (size_t i = 0; rc == 0 && i < agora__deid_allow_default_count; i++)
        rc = add_attr(out, &c, &agora__deid_allow_default[i], err);
    for (size_t g = 0; rc == 0 && g < granted_count; g++) {
        c.shift = strcmp(groups[g]->option, "rtnLongModifDatesOpt") == 0;
        if (c.shift) {
            char pid[AGORA__DEID_VIEW_MAX_VALUE + 1];
            get_text(&c, TAG(0x0010, 0x0020), pid, sizeof pid);
            c.days = agora__deid_date_offset(secret, pid, strlen(pid));
        }
        int full_dates = 0;
        for (size_t k = 0; k < granted_count; k++)
            full_dates |= strcmp(groups[k]->option, "rtnLongFullDatesOpt") == 0;
        if (c.shift && full_dates)
            continue; /* full dates granted too: the real dates are already allowed */
        for (size_t i = 0; rc == 0 && i < groups[g]->count; i++)
            rc = add_attr(out, &c, &groups[g]->items[i], err);
    }
    if (rc == 0)
        rc = pseudonym(&c, secret, TAG(0x0020, 0x000D), AGORA__DEID_UID_STUDY, map, out->study_uid,
                       err);
    if (rc == 0)
        rc = pseudonym(&c, secret, TAG(0x0020, 0x000E), AGORA__DEID_UID_SERIES, map,
                       out->series_uid, err);
    if (rc == 0)
        rc = pseudonym(&c, secret, TAG(0x0008, 0x0018), AGORA__DEID_UID_INSTANCE, map,
                       out->instance_uid, err);
    if (rc != 0)
        agora__deid_granted_free(out);
    return rc;
}
