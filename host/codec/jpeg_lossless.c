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
#include "jpeg_stream.h"
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
    agora__jpeg_huff canon;
    hentry look[1u << LOOK];
} htable;

typedef struct component {
    int id;
    unsigned index; /* position in the frame = sample index in the output pixel */
} component;

typedef struct decoder {
    agora__jpeg_stream s; /* markers, frame geometry, restart interval, DNL state */
    component comp[MAX_COMP];
    htable dc[4];
} decoder;

static int fail(agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA_EINPUT, "JPEG Lossless stream is invalid: %s", what);
}

/* ---- Huffman tables ------------------------------------------------------------------------ */

/* One code of length l <= LOOK: fill its lookahead entries, resolving the extra bits too when
 * they fit in the LOOK-bit window. */
static void fill_look(void *ctx, unsigned l, uint32_t code, unsigned s)
{
    htable *t = ctx;
    unsigned shift = LOOK - l;
    for (unsigned e = 0; e < (1u << shift); e++) {
        hentry *h = &t->look[(code << shift) | e];
        if (s == 0) {
            h->kind = KIND_FULL, h->nbits = (uint8_t)l, h->val = 0;
        } else if (s == 16) {
            h->kind = KIND_FULL, h->nbits = (uint8_t)l, h->val = 32768;
        } else if (l + s <= LOOK) {
            uint32_t extra = e >> (shift - s);
            h->kind = KIND_FULL, h->nbits = (uint8_t)(l + s), h->val = agora__jpeg_extend(extra, s);
        } else {
            h->kind = KIND_SYM, h->nbits = (uint8_t)l, h->val = (int32_t)s;
        }
    }
}

static int build_table(void *ctx, unsigned tc, unsigned th, const uint8_t counts[16],
                       const uint8_t *syms, unsigned nsyms, agora__error *err)
{
    (void)tc; /* parse_dht admits class 0 (DC) only */
    decoder *d = ctx;
    htable *t = &d->dc[th];
    for (unsigned i = 0; i < nsyms; i++)
        if (syms[i] > 16)
            return fail(err, "Huffman table has a difference category above 16");
    memset(t->look, 0, sizeof t->look);
    if (agora__jpeg_huff_build(&t->canon, counts, syms, nsyms, LOOK, fill_look, t) < 0)
        return fail(err, "Huffman table has more codes than its lengths allow");
    t->defined = 1;
    return 0;
}

/* Decode one difference. Returns the value; an invalid code yields 0 and sets *bad. */
static inline int32_t decode_diff(agora__jpeg_bits *br, const htable *t, int *bad)
{
    agora__jpeg_bits_fill(br);
    const hentry *h = &t->look[agora__jpeg_bits_peek(br, LOOK)];
    if (h->kind == KIND_FULL) {
        agora__jpeg_bits_skip(br, h->nbits);
        return h->val;
    }
    unsigned s;
    if (h->kind == KIND_SYM) {
        agora__jpeg_bits_skip(br, h->nbits);
        s = (unsigned)h->val;
    } else {
        int sym = agora__jpeg_huff_slow(&t->canon, br, LOOK);
        if (sym < 0) {
            *bad = 1;
            return 0;
        }
        s = (unsigned)sym;
        if (s == 16)
            return 32768;
        if (s == 0)
            return 0;
    }
    agora__jpeg_bits_fill(br);
    uint32_t v = agora__jpeg_bits_peek(br, s);
    agora__jpeg_bits_skip(br, s);
    return agora__jpeg_extend(v, s);
}

/* ---- marker parsing ------------------------------------------------------------------------ */

static int parse_dht(decoder *d, const uint8_t *seg, size_t n, agora__error *err)
{
    return agora__jpeg_parse_dht(&d->s, seg, n, 0,
                                 "Huffman table class/id invalid for a lossless JPEG", build_table,
                                 d, err);
}

static int parse_sof3(decoder *d, const uint8_t *seg, size_t n, const agora__codec_params *p,
                      agora__error *err)
{
    int rc = agora__jpeg_parse_sof(&d->s, seg, n, p, 2, 16, MAX_COMP, err);
    if (rc < 0)
        return rc;
    if (d->s.precision > p->bits_allocated)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG Lossless precision %u exceeds Bits Allocated %u; the file is "
                                "inconsistent",
                                d->s.precision, p->bits_allocated);
    for (unsigned c = 0; c < d->s.ncomp; c++) {
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
    d->s.have_frame = 1;
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

static int decode_scan(decoder *d, const uint8_t *seg, size_t n, const agora__codec_params *p,
                       uint8_t *out, uint16_t *rows, agora__error *err)
{
    unsigned ns;
    int st = agora__jpeg_parse_sos(&d->s, seg, n, &ns, err);
    if (st < 0)
        return st;
    const htable *tab[MAX_COMP];
    unsigned cidx[MAX_COMP];
    for (unsigned i = 0; i < ns; i++) {
        unsigned id = seg[1 + 2 * i], td = seg[2 + 2 * i] >> 4;
        unsigned c = 0;
        while (c < d->s.ncomp && d->comp[c].id != (int)id)
            c++;
        if (c == d->s.ncomp)
            return fail(err, "scan refers to a component not in the frame header");
        if (td > 3 || !d->dc[td].defined)
            return fail(err, "scan uses an undefined Huffman table");
        tab[i] = &d->dc[td];
        cidx[i] = d->comp[c].index;
    }
    unsigned psv = seg[1 + 2 * ns], pt = seg[3 + 2 * ns] & 15;
    if (psv < 1 || psv > 7)
        return fail(err, "predictor selection value is not 1..7");
    if (pt >= d->s.precision)
        return fail(err, "point transform is not below the sample precision");

    const unsigned spp = d->s.ncomp, bytes = p->bits_allocated / 8;
    const unsigned w = d->s.width, h = d->s.height;
    const unsigned init = 1u << (d->s.precision - pt - 1);
    const unsigned ri = d->s.restart_interval;
    agora__jpeg_bits br;
    agora__jpeg_bits_init(&br, d->s.src + d->s.pos, d->s.src + d->s.len);
    int bad = 0;
    unsigned mcus_left = ri;
    for (unsigned y = 0; y < h; y++) {
        /* Row mode: first line of the scan or of a restart interval predicts from the left. */
        int first_line = (y == 0);
        unsigned start_x = 0; /* where the first line's reset value applies */
        for (unsigned x = 0; x < w; x++) {
            if (ri != 0) {
                if (mcus_left == 0) {
                    st = agora__jpeg_restart(&d->s, &br, err);
                    if (st < 0)
                        return st;
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
        if (agora__jpeg_bits_overrun(&br))
            return agora__error_set(err, AGORA_EINPUT,
                                    "JPEG Lossless scan ends after %u of %u rows; the data is "
                                    "truncated",
                                    y, h);
    }
    /* Resume marker parsing after the scan's entropy-coded data. */
    d->s.pos = (size_t)(br.p - d->s.src);
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
    agora__jpeg_stream_init(&d->s, "JPEG Lossless", "SOF3", src, src_len);
    /* Which samples have been written: every component must be covered by some scan. */
    unsigned covered = 0;
    for (;;) {
        unsigned m;
        const uint8_t *seg;
        size_t n;
        rc = agora__jpeg_next_segment(&d->s, &m, &seg, &n, err);
        if (rc < 0)
            goto done;
        if (rc == 0) {
            if (covered == (1u << d->s.ncomp) - 1 && d->s.have_frame && !d->s.dnl_pending)
                break; /* missing EOI after complete scans: accept, like common decoders */
            rc = fail(err, "stream ends before the image is complete");
            goto done;
        }
        rc = 0;
        if (m == 0xD9) {
            if (d->s.dnl_pending) {
                rc = fail(err, "frame height 0 but no number-of-lines marker (DNL) after the "
                               "first scan");
                goto done;
            }
            break;
        }
        switch (m) {
        case 0xC3:
            rc = parse_sof3(d, seg, n, p, err);
            break;
        case 0xC4:
            rc = parse_dht(d, seg, n, err);
            break;
        case 0xDD:
            rc = agora__jpeg_parse_dri(&d->s, seg, n, err);
            break;
        case 0xDC:
            rc = agora__jpeg_parse_dnl(&d->s, seg, n, p->rows, err);
            break;
        case 0xDA:
            rc = agora__jpeg_scan_begin(&d->s, 16, err);
            if (rc < 0)
                break;
            rc = decode_scan(d, seg, n, p, out, rows, err);
            if (rc == 0)
                for (unsigned i = 0; i < seg[0]; i++)
                    for (unsigned c = 0; c < d->s.ncomp; c++)
                        if (d->comp[c].id == seg[1 + 2 * i])
                            covered |= 1u << c;
            break;
        default:
            /* APPn, COM, DQT, DAC...: not needed for lossless; another process is refused. */
            if (agora__jpeg_is_sof(m))
                rc = agora__jpeg_wrong_process(m, "lossless Huffman (SOF3)", err);
            break;
        }
        if (rc < 0)
            goto done;
    }
    if (!d->s.have_frame || covered != (1u << d->s.ncomp) - 1)
        rc = fail(err, "stream ends before every component was decoded");
done:
    free(rows);
    free(d);
    return rc;
}
