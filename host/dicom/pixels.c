/* Native pixel decoding (PS3.5 8, PS3.3 C.7.6.3) and the bridge to the codec module. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixels.h"
#include "refusal.h"

#ifdef AGORA_DICOM_HAVE_CODEC
#include "codec.h"
#endif

#define T(g, e) AGORA__DICOM_TAG(g, e)

static int get_u(const agora__dicom_dataset *ds, uint32_t tag, int64_t dflt, int required,
                 int64_t *out, const char *kw, agora__error *err)
{
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    if (!e || e->value_len == 0) {
        if (required)
            return agora__error_set(err, AGORA_EINPUT,
                                    "%s is missing; the image cannot be "
                                    "decoded",
                                    kw);
        *out = dflt;
        return 0;
    }
    if (agora__dicom_el_int(e, 0, out))
        return agora__error_set(err, AGORA_EINPUT, "%s is not a valid number", kw);
    return 0;
}

int agora__dicom_pixel_describe(const agora__dicom_file *f, agora__dicom_pixel_desc *d,
                                agora__error *err)
{
    if (!f || !d)
        return agora__error_set(err, AGORA_EINVAL, "NULL argument");
    memset(d, 0, sizeof *d);
    const agora__dicom_dataset *ds = &f->dataset;
    const agora__dicom_element *pd = agora__dicom_find(ds, AGORA__DICOM_T_PIXEL_DATA);
    if (!pd) {
        if (agora__dicom_find(ds, T(0x7FE0, 0x0008)) || agora__dicom_find(ds, T(0x7FE0, 0x0009)))
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL(
                    "Float Pixel Data and Double Float Pixel Data are not supported: plugins "
                    "receive integer pixels; convert the image to integer Pixel Data"));
        return agora__error_set(err, AGORA_EINPUT, "the file has no Pixel Data (7FE0,0010)");
    }
    int64_t rows, cols, spp, ba, bs, hb, pr, pc, nf;
    int rc;
    if ((rc = get_u(ds, T(0x0028, 0x0010), 0, 1, &rows, "Rows", err)) ||
        (rc = get_u(ds, T(0x0028, 0x0011), 0, 1, &cols, "Columns", err)) ||
        (rc = get_u(ds, T(0x0028, 0x0002), 1, 0, &spp, "SamplesPerPixel", err)) ||
        (rc = get_u(ds, T(0x0028, 0x0100), 0, 1, &ba, "BitsAllocated", err)))
        return rc;
    if ((rc = get_u(ds, T(0x0028, 0x0101), ba, 0, &bs, "BitsStored", err)) ||
        (rc = get_u(ds, T(0x0028, 0x0102), bs - 1, 0, &hb, "HighBit", err)) ||
        (rc = get_u(ds, T(0x0028, 0x0103), 0, 0, &pr, "PixelRepresentation", err)) ||
        (rc = get_u(ds, T(0x0028, 0x0006), 0, 0, &pc, "PlanarConfiguration", err)))
        return rc;
    const agora__dicom_element *nfe = agora__dicom_find(ds, T(0x0028, 0x0008));
    nf = 1;
    if (nfe && nfe->value_len && agora__dicom_el_int(nfe, 0, &nf))
        return agora__error_set(err, AGORA_EINPUT, "NumberOfFrames is not a valid number");
    if (nf == 0)
        nf = 1;
    if (rows <= 0 || rows > 65535 || cols <= 0 || cols > 65535)
        return agora__error_set(err, AGORA_EINPUT, "Rows/Columns out of range (1..65535)");
    if (spp != 1 && spp != 3)
        return agora__error_set(
            err, AGORA_EUNSUPPORTED,
            AGORA_REFUSAL("Samples per Pixel %lld is not supported (only 1 or 3)"), (long long)spp);
    if (ba != 1 && ba != 8 && ba != 16 && ba != 32)
        return agora__error_set(
            err, AGORA_EUNSUPPORTED,
            AGORA_REFUSAL("Bits Allocated %lld is not supported (1, 8, 16, 32)"), (long long)ba);
    if (bs < 1 || bs > ba)
        return agora__error_set(err, AGORA_EINPUT,
                                "BitsStored %lld is inconsistent with "
                                "BitsAllocated %lld",
                                (long long)bs, (long long)ba);
    if (hb < bs - 1 || hb >= ba)
        hb = bs - 1; /* DCMTK also falls back to BitsStored-1 for a HighBit out of range */
    if (pr != 0 && pr != 1)
        return agora__error_set(err, AGORA_EINPUT, "PixelRepresentation must be 0 or 1");
    if (nf < 1 || nf > INT32_MAX)
        return agora__error_set(err, AGORA_EINPUT, "NumberOfFrames out of range");
    d->rows = (uint32_t)rows;
    d->columns = (uint32_t)cols;
    d->samples_per_pixel = (uint32_t)spp;
    d->bits_allocated = (uint32_t)ba;
    d->bits_stored = (uint32_t)bs;
    d->high_bit = (uint32_t)hb;
    d->pixel_representation = (uint32_t)pr;
    d->planar_configuration = spp > 1 && pc == 1 ? 1 : 0;
    d->frames = (uint32_t)nf;
    d->pixel_data = pd;
    d->encapsulated = (pd->flags & AGORA__DICOM_EL_ENCAPSULATED) != 0;
    agora__strlcpy(d->transfer_syntax, f->transfer_syntax, sizeof d->transfer_syntax);
    if (agora__dicom_get_string(ds, T(0x0028, 0x0004), 0, d->photometric, sizeof d->photometric))
        agora__strlcpy(d->photometric, spp == 3 ? "RGB" : "MONOCHROME2", sizeof d->photometric);
    uint64_t px = (uint64_t)rows * (uint64_t)cols;
    uint64_t bits = px * (uint64_t)spp * (uint64_t)ba;
    if (strcmp(d->photometric, "YBR_FULL_422") == 0 ||
        strcmp(d->photometric, "YBR_PARTIAL_422") == 0) {
        if (spp != 3 || (cols & 1))
            return agora__error_set(err, AGORA_EINPUT,
                                    "%s needs 3 samples and an even number of columns",
                                    d->photometric);
        bits = px * 2 * (uint64_t)ba; /* Y Y Cb Cr per two pixels */
    }
    d->native_frame_bytes = (bits + 7) / 8;
    if (!d->encapsulated) {
        if (!pd->value && pd->n_items)
            return agora__error_set(err, AGORA_EINPUT, "Pixel Data is a sequence");
        if (ba == 1) {
            if ((bits * (uint64_t)nf + 7) / 8 > pd->value_len)
                return agora__error_set(err, AGORA_EINPUT,
                                        "Pixel Data holds %llu bytes, fewer than %u frames need; "
                                        "the file is truncated",
                                        (unsigned long long)pd->value_len, d->frames);
        } else if (d->native_frame_bytes * (uint64_t)nf > pd->value_len) {
            return agora__error_set(err, AGORA_EINPUT,
                                    "Pixel Data holds %llu bytes, fewer than %u frames of %llu "
                                    "bytes; the file is truncated",
                                    (unsigned long long)pd->value_len, d->frames,
                                    (unsigned long long)d->native_frame_bytes);
        }
    } else if (d->frames > pd->n_fragments) {
        return agora__error_set(err, AGORA_EINPUT,
                                "%u frames but only %u fragments; the file is damaged", d->frames,
                                pd->n_fragments);
    }
    return 0;
}

static int32_t type_for(uint32_t ba, int is_signed)
{
    switch (ba) {
    case 1:
    case 8:
        return is_signed && ba == 8 ? AGORA_PIXEL_I8 : AGORA_PIXEL_U8;
    case 16:
        return is_signed ? AGORA_PIXEL_I16 : AGORA_PIXEL_U16;
    default:
        return is_signed ? AGORA_PIXEL_I32 : AGORA_PIXEL_U32;
    }
}

static int32_t photometric_code(const char *p)
{
    if (strcmp(p, "MONOCHROME1") == 0)
        return AGORA_PHOTOMETRIC_MONOCHROME1;
    if (strcmp(p, "MONOCHROME2") == 0)
        return AGORA_PHOTOMETRIC_MONOCHROME2;
    if (strcmp(p, "RGB") == 0)
        return AGORA_PHOTOMETRIC_RGB;
    return 0;
}

/* Palette Color LUT (PS3.3 C.7.6.3.1.5-6): descriptor and data of one channel. A segmented
 * LUT (C.7.9.2) is expanded into `expanded` (owned by the lut, freed by free_luts). */
typedef struct lut {
    uint32_t entries;
    int32_t first;
    uint32_t bits;
    const agora__dicom_element *data;
    uint16_t *expanded;
} lut;

/* Segment bound: an indirect segment may re-read up to 65535 segments, so cap the work. */
#define MAX_LUT_SEGMENTS (1u << 20)

typedef struct seg_reader {
    const agora__dicom_element *e;
    size_t nwords;
    uint16_t *out;
    uint32_t count, n;
    uint32_t segments;
} seg_reader;

static uint16_t seg_word(const seg_reader *r, size_t i)
{
    const uint8_t *p = r->e->value + i * 2;
    return (r->e->flags & AGORA__DICOM_EL_BIG_ENDIAN) ? (uint16_t)(p[0] << 8 | p[1])
                                                      : (uint16_t)(p[1] << 8 | p[0]);
}

static int seg_fail(agora__error *err, const char *what)
{
    return agora__error_set(
        err, AGORA_EINPUT, "segmented palette color LUT is invalid: %s; the file is corrupt", what);
}

/* Expand one segment at *pos (advanced past it). Opcodes: 0 discrete (values follow), 1 linear
 * (ramp from the last value to y1 over `length` entries), 2 indirect (re-expand `length`
 * segments found at a 32-bit word offset; not nested). Linear values are rounded to nearest,
 * ties to even, as pydicom does. */
static int expand_segment(seg_reader *r, size_t *pos, int allow_indirect, agora__error *err)
{
    if (++r->segments > MAX_LUT_SEGMENTS)
        return seg_fail(err, "too many segments");
    if (r->nwords - *pos < 2)
        return seg_fail(err, "a segment is truncated");
    unsigned op = seg_word(r, *pos), len = seg_word(r, *pos + 1);
    switch (op) {
    case 0:
        if (r->nwords - *pos - 2 < len)
            return seg_fail(err, "a discrete segment is truncated");
        if ((uint64_t)r->count + len > r->n)
            return seg_fail(err, "segments expand beyond the descriptor's entry count");
        for (unsigned i = 0; i < len; i++)
            r->out[r->count++] = seg_word(r, *pos + 2 + i);
        *pos += 2 + (size_t)len;
        return 0;
    case 1: {
        if (r->nwords - *pos < 3)
            return seg_fail(err, "a linear segment is truncated");
        if (r->count == 0)
            return seg_fail(err, "the first segment is linear (it has no start value)");
        if ((uint64_t)r->count + len > r->n)
            return seg_fail(err, "segments expand beyond the descriptor's entry count");
        int64_t y0 = r->out[r->count - 1], y1 = seg_word(r, *pos + 2);
        for (unsigned j = 1; j <= len; j++) {
            int64_t num = (y1 - y0) * j, q = num / len, rem = num % len;
            if (rem < 0) {
                q--;
                rem += len;
            }
            if (2 * rem > (int64_t)len || (2 * rem == (int64_t)len && (q & 1)))
                q++;
            r->out[r->count++] = (uint16_t)(y0 + q);
        }
        *pos += 3;
        return 0;
    }
    case 2: {
        if (!allow_indirect)
            return seg_fail(err, "an indirect segment refers to another indirect segment");
        if (r->nwords - *pos < 4)
            return seg_fail(err, "an indirect segment is truncated");
        if (r->count == 0)
            return seg_fail(err, "the first segment is indirect");
        size_t at = (size_t)seg_word(r, *pos + 2) | (size_t)seg_word(r, *pos + 3) << 16;
        for (unsigned k = 0; k < len; k++) {
            if (at >= r->nwords)
                return seg_fail(err, "an indirect segment points outside the data");
            int rc = expand_segment(r, &at, 0, err);
            if (rc)
                return rc;
        }
        *pos += 4;
        return 0;
    }
    default:
        return seg_fail(err, "a segment has an unknown opcode");
    }
}

static int expand_segmented(const agora__dicom_element *e, uint32_t n, uint16_t **out,
                            agora__error *err)
{
    seg_reader r = {e, (size_t)(e->value_len / 2), NULL, 0, n, 0};
    r.out = malloc((size_t)n * sizeof *r.out);
    if (r.out == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory expanding a palette LUT");
    size_t pos = 0;
    while (pos < r.nwords) {
        int rc = expand_segment(&r, &pos, 1, err);
        if (rc) {
            free(r.out);
            return rc;
        }
    }
    if (r.count != n) {
        free(r.out);
        return agora__error_set(err, AGORA_EINPUT,
                                "segmented palette color LUT expands to %u entries but its "
                                "descriptor says %u; the file is corrupt",
                                r.count, n);
    }
    *out = r.out;
    return 0;
}

static void free_luts(lut l[3])
{
    for (int c = 0; c < 3; c++) {
        free(l[c].expanded);
        l[c].expanded = NULL;
    }
}

static int load_lut(const agora__dicom_dataset *ds, int ch, lut *l, agora__error *err)
{
    static const char *names[3] = {"Red", "Green", "Blue"};
    l->expanded = NULL;
    const agora__dicom_element *seg = agora__dicom_find(ds, T(0x0028, 0x1221 + ch));
    const agora__dicom_element *de = agora__dicom_find(ds, T(0x0028, 0x1101 + ch));
    const agora__dicom_element *da =
        seg && seg->value ? seg : agora__dicom_find(ds, T(0x0028, 0x1201 + ch));
    int64_t n, first, bits;
    if (!de || !da || !da->value || agora__dicom_el_int(de, 0, &n) ||
        agora__dicom_el_int(de, 1, &first) || agora__dicom_el_int(de, 2, &bits))
        return agora__error_set(err, AGORA_EINPUT,
                                "%s palette LUT descriptor or data missing; cannot decode PALETTE "
                                "COLOR",
                                names[ch]);
    if (n == 0)
        n = 65536;
    if (n < 0)
        n &= 0xFFFF;
    if (de->vr == AGORA__DICOM_VR('S', 'S') && first < 0)
        first &= 0xFFFF; /* the first-mapped value is unsigned when read as SS by mistake */
    if (bits != 8 && bits != 16)
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                AGORA_REFUSAL("palette color LUT entries of %lld bits are not "
                                              "supported (PS3.3 allows 8 or 16); convert the "
                                              "image to RGB"),
                                (long long)bits);
    l->entries = (uint32_t)n;
    l->first = (int32_t)first;
    l->bits = (uint32_t)bits;
    l->data = da;
    if (da == seg)
        return expand_segmented(seg, (uint32_t)n, &l->expanded, err);
    uint64_t need = (uint64_t)n * 2;
    if (!(bits == 8 && da->value_len == (uint64_t)n) && da->value_len < need)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s palette LUT data shorter than its "
                                "descriptor",
                                names[ch]);
    return 0;
}

static uint32_t lut_at(const lut *l, int64_t v)
{
    int64_t i = v - l->first;
    if (i < 0)
        i = 0;
    if (i >= (int64_t)l->entries)
        i = (int64_t)l->entries - 1;
    if (l->expanded != NULL)
        return l->bits == 8 ? (l->expanded[i] & 0xFFu) : l->expanded[i];
    const agora__dicom_element *e = l->data;
    if (l->bits == 8 && e->value_len == l->entries)
        return e->value[i];
    const uint8_t *p = e->value + (size_t)i * 2;
    uint32_t w = (e->flags & AGORA__DICOM_EL_BIG_ENDIAN) ? (uint32_t)(p[0] << 8 | p[1])
                                                         : (uint32_t)(p[1] << 8 | p[0]);
    return l->bits == 8 ? (w & 0xFF) : w;
}

static int is_ybr_full(const char *p)
{
    return strcmp(p, "YBR_FULL") == 0 || strcmp(p, "YBR_FULL_422") == 0;
}

int agora__dicom_pixel_format_for(const agora__dicom_file *f, const agora__dicom_pixel_desc *d,
                                  int mode, agora__dicom_pixel_format *fmt, agora__error *err)
{
    memset(fmt, 0, sizeof *fmt);
    uint64_t px = (uint64_t)d->rows * d->columns;
    int is_signed = d->pixel_representation == 1;
    if (mode == AGORA__DICOM_DECODE_RAW) {
        fmt->pixel_type = type_for(d->bits_allocated, is_signed);
        fmt->samples_per_pixel = d->samples_per_pixel;
        fmt->bytes_per_sample = d->bits_allocated == 1 ? 0 : d->bits_allocated / 8;
        agora__strlcpy(fmt->photometric_name, d->photometric, sizeof fmt->photometric_name);
        fmt->photometric = photometric_code(d->photometric);
        if (d->encapsulated) {
            if (d->bits_allocated == 1)
                return agora__error_set(
                    err, AGORA_EUNSUPPORTED,
                    AGORA_REFUSAL(
                        "compressed 1-bit pixel data is not supported; decompress the file "
                        "(dcmdjpeg, dcmdrle or gdcmconv --raw)"));
            fmt->frame_bytes = px * d->samples_per_pixel * fmt->bytes_per_sample;
            if (is_ybr_full(d->photometric) || strncmp(d->photometric, "YBR_", 4) == 0)
                agora__strlcpy(fmt->photometric_name, d->photometric, sizeof fmt->photometric_name);
        } else {
            fmt->frame_bytes = d->native_frame_bytes;
        }
        return 0;
    }
    if (strcmp(d->photometric, "PALETTE COLOR") == 0) {
        if (d->samples_per_pixel != 1 || (d->bits_allocated != 8 && d->bits_allocated != 16))
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("PALETTE COLOR with %u samples of %u bits is not supported (PS3.3 "
                              "requires 1 sample of 8 or 16 bits)"),
                d->samples_per_pixel, d->bits_allocated);
        lut l[3] = {{0}};
        for (int c = 0; c < 3; c++) {
            int rc = load_lut(&f->dataset, c, &l[c], err);
            if (rc) {
                free_luts(l);
                return rc;
            }
        }
        free_luts(l);
        int wide = l[0].bits == 16 || l[1].bits == 16 || l[2].bits == 16;
        fmt->pixel_type = wide ? AGORA_PIXEL_U16 : AGORA_PIXEL_U8;
        fmt->bytes_per_sample = wide ? 2 : 1;
        fmt->samples_per_pixel = 3;
        fmt->photometric = AGORA_PHOTOMETRIC_RGB;
        agora__strlcpy(fmt->photometric_name, "RGB", sizeof fmt->photometric_name);
        fmt->frame_bytes = px * 3 * fmt->bytes_per_sample;
        return 0;
    }
    int32_t pc = photometric_code(d->photometric);
    if (pc == 0 && !is_ybr_full(d->photometric)) {
        /* Compressed YBR_PARTIAL/ICT/RCT: the codecs return RGB. */
        if (!(d->encapsulated && strncmp(d->photometric, "YBR_", 4) == 0))
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("photometric interpretation %s cannot be normalized "
                              "(supported: MONOCHROME1/2, RGB, YBR_FULL, "
                              "YBR_FULL_422, PALETTE COLOR)"),
                d->photometric[0] ? d->photometric : "(empty)");
    }
    if (pc == 0)
        pc = AGORA_PHOTOMETRIC_RGB;
    if ((pc == AGORA_PHOTOMETRIC_RGB) != (d->samples_per_pixel == 3))
        return agora__error_set(err, AGORA_EINPUT, "%s with %u samples per pixel", d->photometric,
                                d->samples_per_pixel);
    if (pc == AGORA_PHOTOMETRIC_RGB && d->bits_allocated == 1)
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                AGORA_REFUSAL("1-bit color data is not supported"));
    fmt->pixel_type = type_for(d->bits_allocated, is_signed);
    fmt->samples_per_pixel = d->samples_per_pixel;
    fmt->bytes_per_sample = d->bits_allocated == 1 ? 1 : d->bits_allocated / 8;
    fmt->photometric = pc;
    agora__strlcpy(fmt->photometric_name, pc == AGORA_PHOTOMETRIC_RGB ? "RGB" : d->photometric,
                   sizeof fmt->photometric_name);
    fmt->frame_bytes = px * fmt->samples_per_pixel * fmt->bytes_per_sample;
    return 0;
}

/* ---- native frames ------------------------------------------------------------------------ */

/* Copy the stored bytes of a frame to out as little-endian. */
static void copy_le(const agora__dicom_pixel_desc *d, const uint8_t *src, uint64_t n, uint8_t *out)
{
    const agora__dicom_element *pd = d->pixel_data;
    int big = (pd->flags & AGORA__DICOM_EL_BIG_ENDIAN) != 0;
    uint32_t unit = d->bits_allocated <= 8 ? (pd->vr == AGORA__DICOM_VR('O', 'W') ? 2 : 1)
                                           : d->bits_allocated / 8;
    if (!big || unit == 1) {
        memcpy(out, src, (size_t)n);
        return;
    }
    /* Word loads through memcpy (alignment-safe) and bswap: the compiler vectorizes these. */
    uint64_t i = 0;
    if (unit == 2) {
        for (; i + 8 <= n; i += 8) {
            uint64_t x;
            memcpy(&x, src + i, 8);
            x = ((x & 0x00FF00FF00FF00FFull) << 8) | ((x >> 8) & 0x00FF00FF00FF00FFull);
            memcpy(out + i, &x, 8);
        }
        for (; i + 2 <= n; i += 2) {
            out[i] = src[i + 1];
            out[i + 1] = src[i];
        }
    } else {
        for (; i + 4 <= n; i += 4) {
            uint32_t w;
            memcpy(&w, src + i, 4);
            w = __builtin_bswap32(w);
            memcpy(out + i, &w, 4);
        }
    }
    for (; i < n; i++)
        out[i] = src[i];
}

/* Mask/shift/sign-extend samples in place (LE, width ba). Sign extension is (v ^ m) - m with m
 * the sign bit, which vectorizes; the common bits-stored == bits-allocated case is a no-op. */
static void normalize_samples(uint8_t *buf, uint64_t n, uint32_t ba, uint32_t bs, uint32_t hb,
                              int is_signed)
{
    uint32_t shift = hb + 1 - bs;
    if (bs == ba && shift == 0)
        return;
    if (ba == 8) {
        uint8_t mask = (uint8_t)((1u << bs) - 1u);
        uint8_t sign = is_signed ? (uint8_t)(1u << (bs - 1)) : 0;
        for (uint64_t i = 0; i < n; i++) {
            uint8_t v = (uint8_t)((buf[i] >> shift) & mask);
            buf[i] = (uint8_t)((v ^ sign) - sign);
        }
    } else if (ba == 16) {
        uint16_t mask = (uint16_t)((1u << bs) - 1u);
        uint16_t sign = is_signed ? (uint16_t)(1u << (bs - 1)) : 0;
        uint16_t *p = (uint16_t *)(void *)buf;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)((p[i] >> shift) & mask);
            p[i] = (uint16_t)((v ^ sign) - sign);
        }
    } else {
        uint32_t mask = bs == 32 ? 0xFFFFFFFFu : (uint32_t)((1ull << bs) - 1u);
        uint32_t sign = is_signed ? (uint32_t)(1ull << (bs - 1)) : 0;
        uint32_t *p = (uint32_t *)(void *)buf;
        for (uint64_t i = 0; i < n; i++) {
            uint32_t v = (p[i] >> shift) & mask;
            p[i] = (v ^ sign) - sign;
        }
    }
}

/* 16-bit samples from the file to normalized LE output in one pass, four samples per 64-bit
 * word (SWAR): byte swap per lane, shift, mask (which also drops bits shifted in from the next
 * lane) and sign extension by multiplying the lane's sign bit with the bits above BitsStored. */
static void copy_norm16(const uint8_t *src, uint8_t *out, uint64_t n, int big, uint32_t bs,
                        uint32_t hb, int is_signed)
{
    uint32_t shift = hb + 1 - bs;
    uint16_t mask = (uint16_t)((1u << bs) - 1u);
    uint64_t m64 = mask * 0x0001000100010001ull;
    uint64_t s64 = is_signed ? (uint64_t)(1u << (bs - 1)) * 0x0001000100010001ull : 0;
    uint64_t ext = (uint16_t)~mask;
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint64_t x;
        memcpy(&x, src + i * 2, 8);
        if (big)
            x = ((x & 0x00FF00FF00FF00FFull) << 8) | ((x >> 8) & 0x00FF00FF00FF00FFull);
        x = (x >> shift) & m64;
        x |= ((x & s64) >> (bs - 1)) * ext;
        memcpy(out + i * 2, &x, 8);
    }
    for (; i < n; i++) {
        uint16_t v = big ? (uint16_t)(src[i * 2] << 8 | src[i * 2 + 1])
                         : (uint16_t)(src[i * 2 + 1] << 8 | src[i * 2]);
        v = (uint16_t)((v >> shift) & mask);
        if (s64 && (v >> (bs - 1)) & 1u)
            v |= (uint16_t)~mask;
        out[i * 2] = (uint8_t)v;
        out[i * 2 + 1] = (uint8_t)(v >> 8);
    }
}

/* Planar (RRR..GGG..BBB) source to interleaved little-endian output, straight from the file's
 * bytes (no frame-sized scratch). */
static void copy_planar_le(const agora__dicom_pixel_desc *d, const uint8_t *src, uint64_t px,
                           uint32_t bps, uint8_t *out)
{
    int big = (d->pixel_data->flags & AGORA__DICOM_EL_BIG_ENDIAN) != 0 && bps > 1;
    const uint8_t *r = src, *g = src + px * bps, *b = src + 2 * px * bps;
    if (bps == 1) {
        for (uint64_t i = 0; i < px; i++) {
            out[i * 3] = r[i];
            out[i * 3 + 1] = g[i];
            out[i * 3 + 2] = b[i];
        }
        return;
    }
    for (uint32_t c = 0; c < 3; c++) {
        const uint8_t *plane = src + (uint64_t)c * px * bps;
        for (uint64_t i = 0; i < px; i++) {
            uint8_t *o = out + (i * 3 + c) * bps;
            const uint8_t *s = plane + i * bps;
            for (uint32_t k = 0; k < bps; k++)
                o[k] = big ? s[bps - 1 - k] : s[k];
        }
    }
}

/* YBR_FULL (interleaved, 8 or 16 bits) to RGB in place (PS3.3 C.7.6.3.1.2). */
static void ybr_to_rgb(uint8_t *buf, uint64_t px, uint32_t bps, uint32_t bs)
{
    double maxv = (double)((1u << bs) - 1u), half = (double)(1u << (bs - 1));
    if (bps == 1) {
        /* 16.16 fixed point of the PS3.3 C.7.6.3.1.2 coefficients, per chroma value. */
        int32_t tr[256], tb[256], tg[256][2];
        for (int c = 0; c < 256; c++) {
            tr[c] = (91881 * (c - 128) + 32768) >> 16;
            tb[c] = (116130 * (c - 128) + 32768) >> 16;
            tg[c][0] = 22554 * (c - 128);
            tg[c][1] = 46802 * (c - 128);
        }
        for (uint64_t i = 0; i < px; i++) {
            uint8_t *p = buf + i * 3;
            int32_t yy = p[0], cb = p[1], cr = p[2];
            int32_t rv = yy + tr[cr];
            int32_t gv = yy - ((tg[cb][0] + tg[cr][1] + 32768) >> 16);
            int32_t bv = yy + tb[cb];
            p[0] = (uint8_t)(rv < 0 ? 0 : rv > 255 ? 255 : rv);
            p[1] = (uint8_t)(gv < 0 ? 0 : gv > 255 ? 255 : gv);
            p[2] = (uint8_t)(bv < 0 ? 0 : bv > 255 ? 255 : bv);
        }
        return;
    }
    for (uint64_t i = 0; i < px; i++) {
        double y, cb, cr;
        if (bps == 1) {
            /* 16.16 fixed point of the PS3.3 C.7.6.3.1.2 coefficients, rounded. */
            int32_t yy = buf[i * 3], b8 = buf[i * 3 + 1] - 128, r8 = buf[i * 3 + 2] - 128;
            int32_t rv = yy + ((91881 * r8 + 32768) >> 16);
            int32_t gv = yy - ((22554 * b8 + 46802 * r8 - 32768) >> 16);
            int32_t bv = yy + ((116130 * b8 + 32768) >> 16);
            buf[i * 3] = (uint8_t)(rv < 0 ? 0 : rv > 255 ? 255 : rv);
            buf[i * 3 + 1] = (uint8_t)(gv < 0 ? 0 : gv > 255 ? 255 : gv);
            buf[i * 3 + 2] = (uint8_t)(bv < 0 ? 0 : bv > 255 ? 255 : bv);
        } else {
            uint16_t *p = (uint16_t *)(void *)buf + i * 3;
            y = p[0];
            cb = p[1] - half;
            cr = p[2] - half;
            double rgb[3] = {y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb};
            for (int c = 0; c < 3; c++)
                p[c] = (uint16_t)(rgb[c] < 0 ? 0 : rgb[c] > maxv ? maxv : lrint(rgb[c]));
        }
    }
}

/* Native YBR_FULL_422 (Y0 Y1 Cb Cr per pixel pair) to full YBR interleaved, expanding backwards
 * in place (the output is 3/2 the input; input occupies the start of buf). */
static void expand_422(uint8_t *buf, uint64_t px, uint32_t bps)
{
    for (uint64_t pair = px / 2; pair-- > 0;) {
        uint8_t in[8];
        memcpy(in, buf + pair * 4 * bps, 4 * bps);
        uint8_t *o = buf + pair * 6 * bps;
        const uint8_t *y0 = in, *y1 = in + bps, *cb = in + 2 * bps, *cr = in + 3 * bps;
        memcpy(o, y0, bps);
        memcpy(o + bps, cb, bps);
        memcpy(o + 2 * bps, cr, bps);
        memcpy(o + 3 * bps, y1, bps);
        memcpy(o + 4 * bps, cb, bps);
        memcpy(o + 5 * bps, cr, bps);
    }
}

/* Indices (LE, width in_bps, at the start of buf) to RGB via the palette, backwards in place. */
static int apply_palette(const agora__dicom_file *f, const agora__dicom_pixel_desc *d, uint8_t *buf,
                         uint64_t px, uint32_t in_bps, uint32_t out_bps, agora__error *err)
{
    lut l[3] = {{0}};
    for (int c = 0; c < 3; c++) {
        int rc = load_lut(&f->dataset, c, &l[c], err);
        if (rc) {
            free_luts(l);
            return rc;
        }
    }
    int is_signed = d->pixel_representation == 1;
    for (uint64_t i = px; i-- > 0;) {
        int64_t v;
        if (in_bps == 1)
            v = is_signed ? (int8_t)buf[i] : buf[i];
        else {
            uint16_t w = (uint16_t)(buf[i * 2] | buf[i * 2 + 1] << 8);
            v = is_signed ? (int16_t)w : w;
        }
        for (int c = 0; c < 3; c++) {
            uint32_t x = lut_at(&l[c], v);
            if (out_bps == 1)
                buf[i * 3 + (uint64_t)c] = (uint8_t)x;
            else {
                uint8_t *o = buf + (i * 3 + (uint64_t)c) * 2;
                /* 8-bit LUTs in a 16-bit output are scaled to the full range. */
                uint32_t y = l[c].bits == 8 ? x * 257u : x;
                o[0] = (uint8_t)y;
                o[1] = (uint8_t)(y >> 8);
            }
        }
    }
    free_luts(l);
    return 0;
}

static int decode_native(const agora__dicom_file *f, const agora__dicom_pixel_desc *d,
                         uint32_t frame, int mode, const agora__dicom_pixel_format *fmt,
                         uint8_t *out, agora__error *err)
{
    const agora__dicom_element *pd = d->pixel_data;
    uint64_t px = (uint64_t)d->rows * d->columns;
    if (d->bits_allocated == 1) {
        uint64_t nbits = px * d->samples_per_pixel;
        uint64_t start = nbits * frame;
        if (mode == AGORA__DICOM_DECODE_RAW) {
            uint64_t nbytes = (nbits + 7) / 8;
            memset(out, 0, (size_t)nbytes);
            for (uint64_t i = 0; i < nbits; i++) {
                uint64_t b = start + i;
                if ((pd->value[b >> 3] >> (b & 7)) & 1u)
                    out[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
        } else {
            for (uint64_t i = 0; i < nbits; i++) {
                uint64_t b = start + i;
                out[i] = (uint8_t)((pd->value[b >> 3] >> (b & 7)) & 1u);
            }
        }
        return 0;
    }
    const uint8_t *src = pd->value + d->native_frame_bytes * frame;
    uint32_t bps = d->bits_allocated / 8;
    int is422 = strcmp(d->photometric, "YBR_FULL_422") == 0;
    if (mode == AGORA__DICOM_DECODE_NORMALIZED && bps == 2 && d->planar_configuration == 0 &&
        d->samples_per_pixel == 1 && strcmp(d->photometric, "PALETTE COLOR") != 0) {
        /* The hot path (CT/MR): swap, shift, mask and sign-extend in one pass; a plain copy
         * when there is nothing to do. */
        if (!(pd->flags & AGORA__DICOM_EL_BIG_ENDIAN) && d->bits_stored == 16) {
            memcpy(out, src, (size_t)d->native_frame_bytes);
            return 0;
        }
        copy_norm16(src, out, px, (pd->flags & AGORA__DICOM_EL_BIG_ENDIAN) != 0, d->bits_stored,
                    d->high_bit, d->pixel_representation == 1);
        return 0;
    }
    if (mode == AGORA__DICOM_DECODE_NORMALIZED && d->planar_configuration == 1 && !is422 &&
        strcmp(d->photometric, "PALETTE COLOR") != 0) {
        copy_planar_le(d, src, px, bps, out);
    } else {
        copy_le(d, src, d->native_frame_bytes, out);
    }
    if (mode == AGORA__DICOM_DECODE_RAW)
        return 0;
    if (is422 && bps > 2)
        return agora__error_set(
            err, AGORA_EUNSUPPORTED,
            AGORA_REFUSAL("32-bit YBR data is not supported; convert the image to RGB"));
    int is_signed = d->pixel_representation == 1;
    if (strcmp(d->photometric, "PALETTE COLOR") == 0) {
        normalize_samples(out, px, d->bits_allocated, d->bits_stored, d->high_bit, 0);
        return apply_palette(f, d, out, px, bps, fmt->bytes_per_sample, err);
    }
    if (is422)
        expand_422(out, px, bps);
    normalize_samples(out, px * d->samples_per_pixel, d->bits_allocated, d->bits_stored,
                      d->high_bit, is_signed);
    if ((is422 || strcmp(d->photometric, "YBR_FULL") == 0)) {
        if (d->bits_allocated > 16)
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("32-bit YBR data is not supported; convert the image to RGB"));
        ybr_to_rgb(out, px, bps, d->bits_stored);
    }
    return 0;
}

static int decode_compressed(const agora__dicom_file *f, const agora__dicom_pixel_desc *d,
                             uint32_t frame, int mode, const agora__dicom_pixel_format *fmt,
                             uint8_t *out, size_t out_len, agora__error *err)
{
#ifdef AGORA_DICOM_HAVE_CODEC
    if (!agora__codec_supported(d->transfer_syntax))
        return agora__error_set(
            err, AGORA_EUNSUPPORTED,
            AGORA_REFUSAL("transfer syntax %s (%s) cannot be decoded by this build; convert the "
                          "image to a supported syntax (e.g. with dcmdjpeg or gdcmconv --raw)"),
            agora__dicom_ts_name(d->transfer_syntax) ? agora__dicom_ts_name(d->transfer_syntax)
                                                     : "unknown",
            d->transfer_syntax);
    uint32_t first, count;
    int rc = agora__dicom_frame_fragments(f, d->pixel_data, d->frames, frame, &first, &count, err);
    if (rc)
        return rc;
    const uint8_t **frags = calloc(count, sizeof *frags);
    size_t *lens = calloc(count, sizeof *lens);
    if (!frags || !lens) {
        free(frags);
        free(lens);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < count; i++) {
        frags[i] = d->pixel_data->fragments[first + i].data;
        lens[i] = d->pixel_data->fragments[first + i].length;
    }
    agora__codec_params cp = {d->rows,
                              d->columns,
                              d->samples_per_pixel,
                              d->bits_allocated,
                              d->bits_stored,
                              d->pixel_representation,
                              d->planar_configuration,
                              d->photometric};
    uint64_t px = (uint64_t)d->rows * d->columns;
    uint32_t bps = d->bits_allocated / 8;
    uint64_t coded = px * d->samples_per_pixel * bps;
    char photo[17] = {0};
    if (coded > out_len) {
        free(frags);
        free(lens);
        return agora__error_set(err, AGORA_EINVAL, "output buffer too small");
    }
    rc = agora__codec_decode_frame(d->transfer_syntax, frags, lens, count, &cp, out, (size_t)coded,
                                   photo, err);
    free(frags);
    free(lens);
    if (rc)
        return rc;
    photo[16] = 0;
    if (mode == AGORA__DICOM_DECODE_RAW)
        return 0;
    if (strcmp(d->photometric, "PALETTE COLOR") == 0) {
        normalize_samples(out, px, d->bits_allocated, d->bits_stored, d->high_bit, 0);
        return apply_palette(f, d, out, px, bps, fmt->bytes_per_sample, err);
    }
    normalize_samples(out, px * d->samples_per_pixel, d->bits_allocated, d->bits_stored,
                      d->high_bit, d->pixel_representation == 1);
    if (is_ybr_full(photo)) {
        if (bps > 2)
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("32-bit YBR data is not supported; convert the image to RGB"));
        ybr_to_rgb(out, px, bps, d->bits_stored);
    } else if (d->samples_per_pixel == 3 && strcmp(photo, "RGB") != 0) {
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                AGORA_REFUSAL("the codec returned %s samples, which cannot be "
                                              "converted to RGB"),
                                photo[0] ? photo : "unknown");
    }
    return 0;
#else
    (void)f;
    (void)frame;
    (void)mode;
    (void)fmt;
    (void)out;
    (void)out_len;
    return agora__error_set(err, AGORA_EUNSUPPORTED,
                            AGORA_REFUSAL("compressed transfer syntax %s (%s) needs the codec "
                                          "module, which this build lacks"),
                            agora__dicom_ts_name(d->transfer_syntax)
                                ? agora__dicom_ts_name(d->transfer_syntax)
                                : "unknown",
                            d->transfer_syntax);
#endif
}

int agora__dicom_decode_frame(const agora__dicom_file *f, const agora__dicom_pixel_desc *d,
                              uint32_t frame, int mode, uint8_t *out, size_t out_len,
                              agora__error *err)
{
    if (!f || !d || !out || !d->pixel_data)
        return agora__error_set(err, AGORA_EINVAL, "NULL argument");
    if (frame >= d->frames)
        return agora__error_set(err, AGORA_EINVAL, "frame %u out of range (%u frames)", frame,
                                d->frames);
    if (mode != AGORA__DICOM_DECODE_RAW && mode != AGORA__DICOM_DECODE_NORMALIZED)
        return agora__error_set(err, AGORA_EINVAL, "unknown decode mode");
    agora__dicom_pixel_format fmt;
    int rc = agora__dicom_pixel_format_for(f, d, mode, &fmt, err);
    if (rc)
        return rc;
    if (out_len < fmt.frame_bytes)
        return agora__error_set(err, AGORA_EINVAL,
                                "output buffer of %zu bytes is smaller than a "
                                "frame (%llu bytes)",
                                out_len, (unsigned long long)fmt.frame_bytes);
    if (d->encapsulated)
        return decode_compressed(f, d, frame, mode, &fmt, out, out_len, err);
    if (mode == AGORA__DICOM_DECODE_NORMALIZED && d->native_frame_bytes > out_len)
        return agora__error_set(err, AGORA_EINVAL, "output buffer too small");
    return decode_native(f, d, frame, mode, &fmt, out, err);
}
