/*
 * JPEG Lossless, Non-Hierarchical, Huffman (ITU-T T.81 Process 14, Annex H): our own decoder,
 * because Debian 12's libjpeg-turbo (2.1) has no lossless support.
 *
 * Supports SOF3 with precision 2..16, 1..4 components (all sampling factors 1), interleaved and
 * non-interleaved scans, predictors 1..7, point transform, restart intervals, and the SSSS=16
 * difference (32768, no extra bits), and a frame height of 0 defined by a DNL marker after the
 * first scan (T.81 B.2.5: the scan is decoded for the DICOM Rows, and the DNL must then say the
 * same number of lines). Huffman decoding is table-driven: an 11-bit lookahead table
 * resolves code + extra bits in one step for the short codes that dominate medical images, a
 * code-only entry for longer differences, and a canonical-code walk for codes over 11 bits.
 *
 * Memory: one decoder struct (Huffman tables) plus two rows per component; everything else is
 * written straight into the caller's frame buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_private.h"
#include "refusal.h"

#define LOOK      11
#define MAX_COMP  4
#define KIND_SLOW 0 /* code longer than LOOK bits: walk the canonical code */
#define KIND_SYM  1 /* code resolved, SSSS extra bits still to read */
#define KIND_FULL 2 /* code and extra bits resolved: diff is final */

typedef struct hentry {
    int32_t val; /* KIND_FULL: the difference; KIND_SYM: SSSS */
    uint8_t nbits;
    uint8_t kind;
} hentry;

typedef struct htable {
    int defined;
    int32_t maxcode[18]; /* -1 when no code of that length */
    int32_t valoff[18];
    uint8_t symbols[256];
    hentry look[1u << LOOK];
} htable;

typedef struct bitreader {
    const uint8_t *p, *end;
    uint64_t acc; /* next bits, MSB first */
    int n;        /* valid bits in acc */
    int pad;      /* zero bytes fed after a marker or the end of data */
} bitreader;

typedef struct component {
    int id;
    unsigned index; /* position in the frame = sample index in the output pixel */
} component;

typedef struct decoder {
    const uint8_t *src;
    size_t len, pos;
    unsigned precision, width, height, ncomp;
    component comp[MAX_COMP];
    unsigned restart_interval;
    int have_frame;
    int dnl_pending; /* SOF3 said height 0: a DNL marker must follow the first scan */
    htable dc[4];
} decoder;

static int fail(agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA_EINPUT, "JPEG Lossless stream is invalid: %s", what);
}

/* ---- bit reader ---------------------------------------------------------------------------- */

static void br_init(bitreader *br, const uint8_t *p, const uint8_t *end)
{
    br->p = p;
    br->end = end;
    br->acc = 0;
    br->n = 0;
    br->pad = 0;
}

/* Fill acc to more than 56 bits. Stuffed 0xFF00 yields 0xFF; a real marker (or the end of data)
 * is left unconsumed and zero bytes are fed instead, counted in pad so the caller can tell a
 * truncated scan from one that merely ended. */
static inline void br_fill(bitreader *br)
{
    while (br->n <= 56) {
        unsigned b;
        if (br->p < br->end && (b = *br->p) != 0xFF) {
            br->p++;
        } else if (br->p + 1 < br->end && br->p[1] == 0x00) {
            b = 0xFF;
            br->p += 2;
        } else {
            b = 0;
            br->pad++;
        }
        br->acc |= (uint64_t)b << (56 - br->n);
        br->n += 8;
    }
}

static inline unsigned br_peek(const bitreader *br, unsigned k)
{
    return (unsigned)(br->acc >> (64 - k));
}

static inline void br_skip(bitreader *br, unsigned k)
{
    br->acc <<= k;
    br->n -= (int)k;
}

/* Bits consumed beyond the real data (zero padding): > 0 means the scan was truncated. */
static int br_overrun(const bitreader *br)
{
    return br->pad * 8 - br->n > 0;
}

/* ---- Huffman tables ------------------------------------------------------------------------ */

static inline int32_t extend(uint32_t v, unsigned s)
{
    return v < (1u << (s - 1)) ? (int32_t)v - (int32_t)((1u << s) - 1) : (int32_t)v;
}

static int build_table(htable *t, const uint8_t counts[16], const uint8_t *syms, unsigned nsyms,
                       agora__error *err)
{
    uint32_t code = 0;
    unsigned k = 0;
    memset(t->look, 0, sizeof t->look);
    memcpy(t->symbols, syms, nsyms);
    for (unsigned i = 0; i < nsyms; i++)
        if (syms[i] > 16)
            return fail(err, "Huffman table has a difference category above 16");
    for (unsigned l = 1; l <= 16; l++) {
        unsigned c = counts[l - 1];
        t->valoff[l] = (int32_t)k - (int32_t)code;
        if (c == 0) {
            t->maxcode[l] = -1;
        } else {
            if ((uint64_t)code + c > (1u << l))
                return fail(err, "Huffman table has more codes than its lengths allow");
            for (unsigned j = 0; j < c; j++, k++, code++) {
                if (l > LOOK)
                    continue;
                unsigned s = syms[k];
                unsigned shift = LOOK - l;
                for (unsigned e = 0; e < (1u << shift); e++) {
                    hentry *h = &t->look[(code << shift) | e];
                    if (s == 0) {
                        h->kind = KIND_FULL, h->nbits = (uint8_t)l, h->val = 0;
                    } else if (s == 16) {
                        h->kind = KIND_FULL, h->nbits = (uint8_t)l, h->val = 32768;
                    } else if (l + s <= LOOK) {
                        uint32_t extra = e >> (shift - s);
                        h->kind = KIND_FULL, h->nbits = (uint8_t)(l + s), h->val = extend(extra, s);
                    } else {
                        h->kind = KIND_SYM, h->nbits = (uint8_t)l, h->val = (int32_t)s;
                    }
                }
            }
            t->maxcode[l] = (int32_t)code - 1;
        }
        code <<= 1;
    }
    t->maxcode[17] = 0x7fffffff; /* sentinel: ends the walk */
    t->defined = 1;
    return 0;
}

/* Decode one difference. Returns the value; an invalid code yields 0 and sets *bad. */
static inline int32_t decode_diff(bitreader *br, const htable *t, int *bad)
{
    br_fill(br);
    const hentry *h = &t->look[br_peek(br, LOOK)];
    if (h->kind == KIND_FULL) {
        br_skip(br, h->nbits);
        return h->val;
    }
    unsigned s;
    if (h->kind == KIND_SYM) {
        br_skip(br, h->nbits);
        s = (unsigned)h->val;
    } else {
        uint32_t bits16 = br_peek(br, 16);
        unsigned l = LOOK + 1;
        int32_t code = (int32_t)(bits16 >> (16 - l));
        while (l <= 16 && code > t->maxcode[l]) {
            l++;
            code = (int32_t)(bits16 >> (16 - (l <= 16 ? l : 16)));
        }
        if (l > 16) {
            *bad = 1;
            br_skip(br, 16);
            return 0;
        }
        br_skip(br, l);
        s = t->symbols[t->valoff[l] + code];
        if (s == 16)
            return 32768;
        if (s == 0)
            return 0;
    }
    br_fill(br);
    uint32_t v = br_peek(br, s);
    br_skip(br, s);
    return extend(v, s);
}

/* ---- marker parsing ------------------------------------------------------------------------ */

static int rd16(decoder *d, unsigned *v)
{
    if (d->len - d->pos < 2)
        return -1;
    *v = (unsigned)d->src[d->pos] << 8 | d->src[d->pos + 1];
    d->pos += 2;
    return 0;
}

/* Read the next marker, skipping fill bytes (0xFF runs) as T.81 B.1.1.2 allows. */
static int next_marker(decoder *d, unsigned *marker)
{
    for (;;) {
        /* Skip what precedes the marker: unread entropy-coded bytes (including stuffed 0xFF00)
         * and junk, as common decoders tolerate. */
        while (d->pos < d->len && d->src[d->pos] != 0xFF)
            d->pos++;
        while (d->pos + 1 < d->len && d->src[d->pos + 1] == 0xFF)
            d->pos++;
        if (d->len - d->pos < 2)
            return -1;
        *marker = d->src[d->pos + 1];
        d->pos += 2;
        if (*marker != 0x00)
            return 0;
    }
}

static int parse_dht(decoder *d, const uint8_t *seg, size_t n, agora__error *err)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 17)
            return fail(err, "truncated Huffman table (DHT)");
        unsigned tc = seg[i] >> 4, th = seg[i] & 15;
        unsigned total = 0;
        for (unsigned l = 0; l < 16; l++)
            total += seg[i + 1 + l];
        if (tc != 0 || th > 3)
            return fail(err, "Huffman table class/id invalid for a lossless JPEG");
        if (total > 256 || n - i - 17 < total)
            return fail(err, "truncated Huffman table (DHT)");
        int rc = build_table(&d->dc[th], seg + i + 1, seg + i + 17, total, err);
        if (rc < 0)
            return rc;
        i += 17 + total;
    }
    return 0;
}

static int parse_sof3(decoder *d, const uint8_t *seg, size_t n, const agora__codec_params *p,
                      agora__error *err)
{
    if (d->have_frame)
        return fail(err, "more than one frame header (SOF)");
    if (n < 6)
        return fail(err, "truncated frame header (SOF3)");
    d->precision = seg[0];
    d->height = (unsigned)seg[1] << 8 | seg[2];
    d->width = (unsigned)seg[3] << 8 | seg[4];
    d->ncomp = seg[5];
    if (d->precision < 2 || d->precision > 16)
        return fail(err, "sample precision is not 2..16");
    if (d->ncomp < 1 || d->ncomp > MAX_COMP || n < 6 + 3 * (size_t)d->ncomp)
        return fail(err, "component count is not 1..4 or the frame header is truncated");
    if (d->height == 0) {
        /* Number of lines defined later (DNL). The DICOM Rows bound the first scan; the DNL
         * marker must agree (checked when it arrives). */
        d->height = p->rows;
        d->dnl_pending = 1;
    }
    if (d->width != p->columns || d->height != p->rows || d->ncomp != p->samples_per_pixel)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG Lossless stream is %ux%u with %u components but the DICOM "
                                "attributes say %ux%u with %u samples; the file is inconsistent",
                                d->width, d->height, d->ncomp, p->columns, p->rows,
                                p->samples_per_pixel);
    if (d->precision > p->bits_allocated)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG Lossless precision %u exceeds Bits Allocated %u; the file is "
                                "inconsistent",
                                d->precision, p->bits_allocated);
    for (unsigned c = 0; c < d->ncomp; c++) {
        const uint8_t *cs = seg + 6 + 3 * c;
        if (cs[1] != 0x11)
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("JPEG Lossless stream uses subsampled components, which are not "
                              "supported; decompress it with dcmdjpeg or gdcmconv --raw"));
        for (unsigned k = 0; k < c; k++)
            if (d->comp[k].id == cs[0])
                return fail(err, "duplicate component id in the frame header");
        d->comp[c].id = cs[0];
        d->comp[c].index = c;
    }
    d->have_frame = 1;
    return 0;
}

/* ---- scan decoding ------------------------------------------------------------------------- */

static inline void store(uint8_t *out, size_t i, unsigned bytes, unsigned v)
{
    if (bytes == 1) {
        out[i] = (uint8_t)v;
    } else if (bytes == 2) {
        out[2 * i] = (uint8_t)v;
        out[2 * i + 1] = (uint8_t)(v >> 8);
    } else {
        agora__codec_put(out, i, bytes, v);
    }
}

/* At a restart boundary: drop buffered bits, expect RSTn, start a fresh entropy segment. */
static int restart(decoder *d, bitreader *br, agora__error *err)
{
    d->pos = (size_t)(br->p - d->src);
    unsigned m;
    if (next_marker(d, &m) < 0 || m < 0xD0 || m > 0xD7)
        return fail(err, "missing restart marker (RSTn) at a restart interval boundary");
    br_init(br, d->src + d->pos, d->src + d->len);
    return 0;
}

static int decode_scan(decoder *d, const uint8_t *seg, size_t n, const agora__codec_params *p,
                       uint8_t *out, uint16_t *rows, agora__error *err)
{
    if (!d->have_frame)
        return fail(err, "scan (SOS) before the frame header (SOF3)");
    if (n < 1)
        return fail(err, "truncated scan header (SOS)");
    unsigned ns = seg[0];
    if (ns < 1 || ns > d->ncomp || n < 1 + 2 * (size_t)ns + 3)
        return fail(err, "scan header (SOS) has an invalid component count or is truncated");
    const htable *tab[MAX_COMP];
    unsigned cidx[MAX_COMP];
    for (unsigned i = 0; i < ns; i++) {
        unsigned id = seg[1 + 2 * i], td = seg[2 + 2 * i] >> 4;
        unsigned c = 0;
        while (c < d->ncomp && d->comp[c].id != (int)id)
            c++;
        if (c == d->ncomp)
            return fail(err, "scan refers to a component not in the frame header");
        if (td > 3 || !d->dc[td].defined)
            return fail(err, "scan uses an undefined Huffman table");
        tab[i] = &d->dc[td];
        cidx[i] = d->comp[c].index;
    }
    unsigned psv = seg[1 + 2 * ns], pt = seg[3 + 2 * ns] & 15;
    if (psv < 1 || psv > 7)
        return fail(err, "predictor selection value is not 1..7");
    if (pt >= d->precision)
        return fail(err, "point transform is not below the sample precision");

    const unsigned spp = d->ncomp, bytes = p->bits_allocated / 8;
    const unsigned w = d->width, h = d->height;
    const unsigned init = 1u << (d->precision - pt - 1);
    const unsigned ri = d->restart_interval;
    bitreader br;
    br_init(&br, d->src + d->pos, d->src + d->len);
    int bad = 0;
    unsigned mcus_left = ri;
    for (unsigned y = 0; y < h; y++) {
        /* Row mode: first line of the scan or of a restart interval predicts from the left. */
        int first_line = (y == 0);
        unsigned start_x = 0; /* where the first line's reset value applies */
        for (unsigned x = 0; x < w; x++) {
            if (ri != 0) {
                if (mcus_left == 0) {
                    int rc = restart(d, &br, err);
                    if (rc < 0)
                        return rc;
                    mcus_left = ri;
                    first_line = 1;
                    start_x = x;
                }
                mcus_left--;
            }
            for (unsigned i = 0; i < ns; i++) {
                uint16_t *cur = rows + (size_t)cidx[i] * 2 * w + (size_t)(y & 1) * w;
                const uint16_t *prev = rows + (size_t)cidx[i] * 2 * w + (size_t)((y + 1) & 1) * w;
                int32_t diff = decode_diff(&br, tab[i], &bad);
                int32_t pred;
                if (first_line) {
                    pred = x == start_x ? (int32_t)init : cur[x - 1];
                } else if (x == 0) {
                    pred = prev[0];
                } else {
                    int32_t ra = cur[x - 1], rb = prev[x], rc = prev[x - 1];
                    switch (psv) {
                    case 1:
                        pred = ra;
                        break;
                    case 2:
                        pred = rb;
                        break;
                    case 3:
                        pred = rc;
                        break;
                    case 4:
                        pred = ra + rb - rc;
                        break;
                    case 5:
                        pred = ra + ((rb - rc) >> 1);
                        break;
                    case 6:
                        pred = rb + ((ra - rc) >> 1);
                        break;
                    default:
                        pred = (ra + rb) >> 1;
                        break;
                    }
                }
                unsigned v = (unsigned)(pred + diff) & 0xFFFFu;
                cur[x] = (uint16_t)v;
                store(out, ((size_t)y * w + x) * spp + cidx[i], bytes, (v << pt) & 0xFFFFu);
            }
        }
        if (bad)
            return fail(err, "invalid Huffman code in the entropy-coded data");
        if (br_overrun(&br))
            return agora__error_set(err, AGORA_EINPUT,
                                    "JPEG Lossless scan ends after %u of %u rows; the data is "
                                    "truncated",
                                    y, h);
    }
    /* Resume marker parsing after the scan's entropy-coded data. */
    d->pos = (size_t)(br.p - d->src);
    return 0;
}

int agora__codec_jpeg_lossless_decode(const uint8_t *src, size_t src_len,
                                      const agora__codec_params *p, uint8_t *out, size_t out_len,
                                      char photometric_out[17], agora__error *err)
{
    (void)out_len;
    (void)photometric_out;
    if (src_len < 4 || src[0] != 0xFF || src[1] != 0xD8)
        return fail(err, "no start-of-image marker (SOI)");
    decoder *d = calloc(1, sizeof *d);
    /* Two rows per component for the predictors: bounded by the frame width. */
    uint16_t *rows = calloc((size_t)p->columns * 2 * MAX_COMP, sizeof *rows);
    int rc = 0;
    if (d == NULL || rows == NULL) {
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory decoding JPEG Lossless");
        goto done;
    }
    d->src = src;
    d->len = src_len;
    d->pos = 2;
    /* Which samples have been written: every component must be covered by some scan. */
    unsigned scans = 0, covered = 0;
    for (;;) {
        unsigned m, len;
        if (next_marker(d, &m) < 0) {
            if (covered == (1u << d->ncomp) - 1 && d->have_frame && !d->dnl_pending)
                break; /* missing EOI after complete scans: accept, like common decoders */
            rc = fail(err, "stream ends before the image is complete");
            goto done;
        }
        if (m == 0xD9) {
            if (d->dnl_pending) {
                rc = fail(err, "frame height 0 but no number-of-lines marker (DNL) after the "
                               "first scan");
                goto done;
            }
            break;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* standalone markers */
        if (rd16(d, &len) < 0 || len < 2 || len - 2 > d->len - d->pos) {
            rc = fail(err, "truncated marker segment");
            goto done;
        }
        const uint8_t *seg = d->src + d->pos;
        size_t n = len - 2;
        d->pos += n;
        switch (m) {
        case 0xC3:
            rc = parse_sof3(d, seg, n, p, err);
            break;
        case 0xC4:
            rc = parse_dht(d, seg, n, err);
            break;
        case 0xDD:
            if (n < 2) {
                rc = fail(err, "truncated restart interval (DRI)");
                break;
            }
            d->restart_interval = (unsigned)seg[0] << 8 | seg[1];
            break;
        case 0xDC:
            /* DNL: only meaningful right after the first scan of a height-0 frame. */
            if (!d->dnl_pending || scans != 1) {
                rc = fail(err, "unexpected number-of-lines marker (DNL)");
                break;
            }
            if (n < 2 || ((unsigned)seg[0] << 8 | seg[1]) != p->rows) {
                rc = agora__error_set(err, AGORA_EINPUT,
                                      "JPEG Lossless DNL marker says %u lines but the DICOM "
                                      "attributes say %u rows; the file is inconsistent",
                                      n < 2 ? 0u : ((unsigned)seg[0] << 8 | seg[1]), p->rows);
                break;
            }
            d->dnl_pending = 0;
            break;
        case 0xDA:
            if (++scans > 16) {
                rc = fail(err, "too many scans");
                break;
            }
            if (d->dnl_pending && scans > 1) {
                rc = fail(err, "frame height 0 but no number-of-lines marker (DNL) after the "
                               "first scan");
                break;
            }
            rc = decode_scan(d, seg, n, p, out, rows, err);
            if (rc == 0)
                for (unsigned i = 0; i < seg[0]; i++)
                    for (unsigned c = 0; c < d->ncomp; c++)
                        if (d->comp[c].id == seg[1 + 2 * i])
                            covered |= 1u << c;
            break;
        case 0xC0:
        case 0xC1:
        case 0xC2:
        case 0xC5:
        case 0xC6:
        case 0xC7:
        case 0xC9:
        case 0xCA:
        case 0xCB:
        case 0xCD:
        case 0xCE:
        case 0xCF:
            rc = agora__error_set(err, AGORA_EINPUT,
                                  "stream is JPEG process SOF%u, not lossless Huffman (SOF3); the "
                                  "transfer syntax does not match the data",
                                  m - 0xC0);
            break;
        default:
            break; /* APPn, COM, DQT, DAC...: not needed for lossless */
        }
        if (rc < 0)
            goto done;
    }
    if (!d->have_frame || covered != (1u << d->ncomp) - 1)
        rc = fail(err, "stream ends before every component was decoded");
done:
    free(rows);
    free(d);
    return rc;
}
