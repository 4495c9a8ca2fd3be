/*
 * JPEG Extended 12-bit (ITU-T T.81 Process 4, DICOM 1.2.840.10008.1.2.4.51): our own sequential
 * DCT decoder, because Debian's libjpeg-turbo is built for 8-bit samples only.
 *
 * Accepts SOF1 (and SOF0, which some encoders write for 12-bit data) with precision 12, Huffman
 * entropy coding, 1..4 components with sampling factors 1..4, interleaved and non-interleaved
 * scans, restart intervals, 8- or 16-bit quantisation tables, and a height defined by a DNL
 * marker after the first scan. Progressive (SOF2) and
 * arithmetic-coded frames are rejected as corrupt: neither is valid for this transfer syntax
 * (jpeg_baseline.c already turns them away before dispatching here).
 *
 * Output matches libjpeg's 12-bit build (which DCMTK's dcmdjpeg uses) sample for sample:
 *   - the inverse DCT is the "islow" Loeffler-Ligtenberg-Moschytz algorithm of IJG's jidctint.c
 *     with the same fixed-point constants (CONST_BITS 13, PASS1_BITS 1 for 12-bit) and rounding,
 *     followed by the same wrap-then-clamp range limiting;
 *   - chroma is upsampled as libjpeg does by default ("fancy" triangle filter for 2:1 horizontal
 *     and 2:1 both ways, replication for other integral factors);
 *   - YCbCr is converted to RGB with libjpeg's table arithmetic, only when the DICOM Photometric
 *     Interpretation says YBR (like jpeg_baseline.c and DCMTK's default); otherwise components
 *     are returned as coded.
 *
 * Memory: one decoder struct, the range-limit table, and one plane of 16-bit samples per
 * component (its block-padded size, bounded by the frame size the caller validated). Everything
 * reads through bounds-checked cursors; truncated data is an error, never padded silently.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_private.h"
#include "jpeg_ext12.h"
#include "jpeg_stream.h"
#include "refusal.h"

#define MAX_COMP  4
#define MAX_SCANS 64
#define LOOK      9

#define MAXJSAMPLE   4095
#define CENTERSAMPLE 2048
#define RANGE_MASK   AGORA__JPEG12_RANGE_MASK

typedef struct htable {
    int defined;
    agora__jpeg_huff canon;
    uint8_t look_len[1u << LOOK]; /* 0: code longer than LOOK bits */
    uint8_t look_sym[1u << LOOK];
} htable;

typedef struct component {
    unsigned id, h, v, tq;
    unsigned bw, bh; /* blocks across/down the component's padded plane */
    unsigned dw, dh; /* downsampled width/height (libjpeg's downsampled_width/height) */
    uint16_t *plane; /* bw*8 x bh*8 samples, owned by the decoder */
    int decoded;
} component;

typedef struct decoder {
    agora__jpeg_stream s; /* markers, frame geometry, restart interval, DNL state */
    unsigned hmax, vmax;
    component comp[MAX_COMP];
    uint16_t qt[4][64]; /* natural (row-major) order */
    int qt_defined[4];
    htable dc[4], ac[4];
    uint16_t range[RANGE_MASK + 1]; /* IDCT_range_limit of libjpeg, indexed by masked value */
} decoder;

/* Zigzag position -> natural (row-major) index, T.81 Figure A.6. */
static const uint8_t zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                   12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                   35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                   58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

static int fail(agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA_EINPUT, "12-bit JPEG stream is invalid: %s", what);
}

/* ---- inverse DCT (IJG jidctint.c "islow", 12-bit constants) --------------------------------- */

#define CONST_BITS      13
#define PASS1_BITS      1
#define FIX_0_298631336 ((int64_t)2446)
#define FIX_0_390180644 ((int64_t)3196)
#define FIX_0_541196100 ((int64_t)4433)
#define FIX_0_765366865 ((int64_t)6270)
#define FIX_0_899976223 ((int64_t)7373)
#define FIX_1_175875602 ((int64_t)9633)
#define FIX_1_501321110 ((int64_t)12299)
#define FIX_1_847759065 ((int64_t)15137)
#define FIX_1_961570560 ((int64_t)16069)
#define FIX_2_053119869 ((int64_t)16819)
#define FIX_2_562915447 ((int64_t)20995)
#define FIX_3_072711026 ((int64_t)25172)

/* Round-half-up arithmetic right shift, libjpeg's DESCALE. 64-bit so hostile coefficients
 * cannot overflow (libjpeg's 32-bit arithmetic gives the same results for valid data). */
static inline int64_t descale(int64_t x, int n)
{
    return (x + ((int64_t)1 << (n - 1))) >> n;
}

void agora__jpeg12_range_table(uint16_t range[RANGE_MASK + 1])
{
    /* libjpeg's prepare_range_limit_table seen from IDCT_range_limit (= table + CENTERJSAMPLE
     * into sample_range_limit): k is the masked IDCT output before the +CENTER level shift. */
    for (unsigned k = 0; k <= RANGE_MASK; k++) {
        unsigned j = k + CENTERSAMPLE;
        unsigned v;
        if (j <= MAXJSAMPLE)
            v = j;
        else if (j < 3u * (MAXJSAMPLE + 1) - CENTERSAMPLE)
            v = MAXJSAMPLE;
        else if (j < 4u * (MAXJSAMPLE + 1))
            v = 0;
        else
            v = j - 4u * (MAXJSAMPLE + 1);
        range[k] = (uint16_t)v;
    }
}

/* One pass of the 1-D LL&M IDCT over 8 values spaced `step` apart. in: dequantised input;
 * returns the 8 outputs (before descaling) in o[] as tmp10+tmp3 ... order of jidctint.c. */
static inline void idct_1d(const int64_t in[8], int64_t o[8])
{
    int64_t z1, z2, z3, z4, z5, tmp0, tmp1, tmp2, tmp3, tmp10, tmp11, tmp12, tmp13;
    /* Even part: the rotator is sqrt(2)*c(-6). */
    z2 = in[2];
    z3 = in[6];
    z1 = (z2 + z3) * FIX_0_541196100;
    tmp2 = z1 + z3 * -FIX_1_847759065;
    tmp3 = z1 + z2 * FIX_0_765366865;
    tmp0 = (in[0] + in[4]) * ((int64_t)1 << CONST_BITS);
    tmp1 = (in[0] - in[4]) * ((int64_t)1 << CONST_BITS);
    tmp10 = tmp0 + tmp3;
    tmp13 = tmp0 - tmp3;
    tmp11 = tmp1 + tmp2;
    tmp12 = tmp1 - tmp2;
    /* Odd part (figure 8 of the paper): tmp0..tmp3 are y7, y5, y3, y1. */
    tmp0 = in[7];
    tmp1 = in[5];
    tmp2 = in[3];
    tmp3 = in[1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    z4 = tmp1 + tmp3;
    z5 = (z3 + z4) * FIX_1_175875602;
    tmp0 = tmp0 * FIX_0_298631336;
    tmp1 = tmp1 * FIX_2_053119869;
    tmp2 = tmp2 * FIX_3_072711026;
    tmp3 = tmp3 * FIX_1_501321110;
    z1 = z1 * -FIX_0_899976223;
    z2 = z2 * -FIX_2_562915447;
    z3 = z3 * -FIX_1_961570560;
    z4 = z4 * -FIX_0_390180644;
    z3 += z5;
    z4 += z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    o[0] = tmp10 + tmp3;
    o[7] = tmp10 - tmp3;
    o[1] = tmp11 + tmp2;
    o[6] = tmp11 - tmp2;
    o[2] = tmp12 + tmp1;
    o[5] = tmp12 - tmp1;
    o[3] = tmp13 + tmp0;
    o[4] = tmp13 - tmp0;
}

void agora__jpeg12_idct_islow(const int32_t coef[64], const uint16_t qt[64],
                              const uint16_t range[RANGE_MASK + 1], uint16_t *out, size_t stride)
{
    int64_t ws[64];
    /* Pass 1: columns, results scaled up by sqrt(8) and 2^PASS1_BITS. */
    for (int c = 0; c < 8; c++) {
        int64_t in[8], o[8];
        for (int r = 0; r < 8; r++)
            in[r] = (int64_t)coef[r * 8 + c] * qt[r * 8 + c];
        idct_1d(in, o);
        for (int r = 0; r < 8; r++)
            ws[r * 8 + c] = descale(o[r], CONST_BITS - PASS1_BITS);
    }
    /* Pass 2: rows, descale by 8 and undo PASS1_BITS, then range-limit as libjpeg does (wrap
     * to 14 bits, then clamp via the table). */
    for (int r = 0; r < 8; r++) {
        int64_t o[8];
        idct_1d(&ws[r * 8], o);
        for (int c = 0; c < 8; c++)
            out[(size_t)r * stride + (size_t)c] =
                range[(size_t)(descale(o[c], CONST_BITS + PASS1_BITS + 3) & RANGE_MASK)];
    }
}

/* ---- Huffman ------------------------------------------------------------------------------- */

static void fill_look(void *ctx, unsigned l, uint32_t code, unsigned sym)
{
    htable *t = ctx;
    unsigned shift = LOOK - l;
    for (unsigned e = 0; e < (1u << shift); e++) {
        t->look_len[(code << shift) | e] = (uint8_t)l;
        t->look_sym[(code << shift) | e] = (uint8_t)sym;
    }
}

static int build_table(htable *t, const uint8_t counts[16], const uint8_t *syms, unsigned nsyms)
{
    memset(t->look_len, 0, sizeof t->look_len);
    if (agora__jpeg_huff_build(&t->canon, counts, syms, nsyms, LOOK, fill_look, t) < 0)
        return -1;
    t->defined = 1;
    return 0;
}

/* Decode one Huffman symbol; -1 on an invalid code (consumes 16 bits so decoding advances). */
static inline int decode_sym(agora__jpeg_bits *br, const htable *t)
{
    agora__jpeg_bits_fill(br);
    unsigned idx = agora__jpeg_bits_peek(br, LOOK);
    if (t->look_len[idx]) {
        agora__jpeg_bits_skip(br, t->look_len[idx]);
        return t->look_sym[idx];
    }
    return agora__jpeg_huff_slow(&t->canon, br, LOOK);
}

/* Read s (0..16) extra bits and sign-extend them. */
static inline int32_t receive_extend(agora__jpeg_bits *br, unsigned s)
{
    if (s == 0)
        return 0;
    agora__jpeg_bits_fill(br);
    uint32_t v = agora__jpeg_bits_peek(br, s);
    agora__jpeg_bits_skip(br, s);
    return agora__jpeg_extend(v, s);
}

/* Decode one 8x8 block's coefficients (natural order) into coef; *dc_pred carries the DC
 * predictor. Returns 0, or -1 on an invalid code or a coefficient outside the 12-bit range. */
static int decode_block(agora__jpeg_bits *br, const htable *dc, const htable *ac, int32_t *dc_pred,
                        int32_t coef[64])
{
    memset(coef, 0, 64 * sizeof coef[0]);
    int s = decode_sym(br, dc);
    if (s < 0 || s > 16)
        return -1;
    int32_t diff = receive_extend(br, (unsigned)s);
    int64_t dcv = (int64_t)*dc_pred + diff;
    /* 12-bit DCT coefficients fit in 16 bits (T.81 F.1.1.5 ranges); anything wider is junk. */
    if (dcv < -32768 || dcv > 32767)
        return -1;
    *dc_pred = (int32_t)dcv;
    coef[0] = (int32_t)dcv;
    for (unsigned k = 1; k < 64;) {
        int rs = decode_sym(br, ac);
        if (rs < 0)
            return -1;
        unsigned r = (unsigned)rs >> 4, sz = (unsigned)rs & 15;
        if (sz == 0) {
            if (r != 15)
                break; /* EOB */
            k += 16;
            continue;
        }
        k += r;
        if (k > 63)
            return -1;
        coef[zigzag[k]] = receive_extend(br, sz);
        k++;
    }
    return 0;
}

int agora__jpeg12_huffman_decode(const uint8_t counts[16], const uint8_t *syms, unsigned nsyms,
                                 const uint8_t *bits, size_t nbytes, int *out, size_t nout)
{
    htable *t = malloc(sizeof *t);
    if (t == NULL)
        return -2;
    int rc = build_table(t, counts, syms, nsyms);
    if (rc == 0) {
        agora__jpeg_bits br;
        agora__jpeg_bits_init(&br, bits, bits + nbytes);
        for (size_t i = 0; i < nout; i++)
            out[i] = decode_sym(&br, t);
        if (agora__jpeg_bits_overrun(&br))
            rc = -3;
    }
    free(t);
    return rc;
}

/* ---- markers ------------------------------------------------------------------------------- */

static int parse_dqt(decoder *d, const uint8_t *seg, size_t n, agora__error *err)
{
    size_t i = 0;
    while (i < n) {
        unsigned pq = seg[i] >> 4, tq = seg[i] & 15;
        if (pq > 1 || tq > 3)
            return fail(err, "quantisation table (DQT) has an invalid precision or id");
        size_t need = 1 + 64 * (size_t)(pq + 1);
        if (n - i < need)
            return fail(err, "truncated quantisation table (DQT)");
        for (unsigned k = 0; k < 64; k++) {
            unsigned q =
                pq ? (unsigned)seg[i + 1 + 2 * k] << 8 | seg[i + 2 + 2 * k] : seg[i + 1 + k];
            d->qt[tq][zigzag[k]] = (uint16_t)q;
        }
        d->qt_defined[tq] = 1;
        i += need;
    }
    return 0;
}

static int add_table(void *ctx, unsigned tc, unsigned th, const uint8_t counts[16],
                     const uint8_t *syms, unsigned nsyms, agora__error *err)
{
    decoder *d = ctx;
    if (build_table(tc ? &d->ac[th] : &d->dc[th], counts, syms, nsyms) < 0)
        return fail(err, "Huffman table (DHT) has more codes than its lengths allow");
    return 0;
}

static int parse_dht(decoder *d, const uint8_t *seg, size_t n, agora__error *err)
{
    return agora__jpeg_parse_dht(&d->s, seg, n, 1, "Huffman table (DHT) has an invalid class or id",
                                 add_table, d, err);
}

static unsigned div_up(unsigned a, unsigned b)
{
    return (unsigned)(((uint64_t)a + b - 1) / b);
}

static int parse_sof(decoder *d, const uint8_t *seg, size_t n, const agora__codec_params *p,
                     agora__error *err)
{
    int rc = agora__jpeg_parse_sof(&d->s, seg, n, p, 12, 12, MAX_COMP, err);
    if (rc < 0)
        return rc;
    if (p->bits_allocated < 16)
        return agora__error_set(err, AGORA_EINPUT,
                                "12-bit JPEG data with Bits Allocated %u; the file is inconsistent",
                                p->bits_allocated);
    d->hmax = d->vmax = 1;
    for (unsigned c = 0; c < d->s.ncomp; c++) {
        const uint8_t *cs = seg + 6 + 3 * c;
        component *k = &d->comp[c];
        k->id = cs[0];
        k->h = cs[1] >> 4;
        k->v = cs[1] & 15;
        k->tq = cs[2];
        if (k->h < 1 || k->h > 4 || k->v < 1 || k->v > 4 || k->tq > 3)
            return fail(err, "component sampling factor is not 1..4 or table id is not 0..3");
        for (unsigned j = 0; j < c; j++)
            if (d->comp[j].id == k->id)
                return fail(err, "duplicate component id in the frame header");
        if (k->h > d->hmax)
            d->hmax = k->h;
        if (k->v > d->vmax)
            d->vmax = k->v;
    }
    unsigned mcux = div_up(d->s.width, 8 * d->hmax), mcuy = div_up(d->s.height, 8 * d->vmax);
    for (unsigned c = 0; c < d->s.ncomp; c++) {
        component *k = &d->comp[c];
        if (d->hmax % k->h || d->vmax % k->v)
            return agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("12-bit JPEG stream uses non-integral chroma sampling ratios, "
                              "which libjpeg does not decode either; re-encode the image"));
        k->dw = div_up(d->s.width * k->h, d->hmax);
        k->dh = div_up(d->s.height * k->v, d->vmax);
        /* Interleaved scans cover whole MCUs, so the plane is padded to MCU multiples. */
        k->bw = mcux * k->h;
        k->bh = mcuy * k->v;
        size_t samples = (size_t)k->bw * 8 * k->bh * 8;
        k->plane = calloc(samples, sizeof *k->plane);
        if (k->plane == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory decoding 12-bit JPEG");
    }
    d->s.have_frame = 1;
    return 0;
}

/* ---- scans --------------------------------------------------------------------------------- */

static int restart(decoder *d, agora__jpeg_bits *br, agora__error *err)
{
    if (agora__jpeg_bits_overrun(br))
        return fail(err, "entropy-coded data ends inside a restart interval; the data is "
                         "truncated");
    return agora__jpeg_restart(&d->s, br, err);
}

static int decode_one(decoder *d, agora__jpeg_bits *br, component *k, const htable *dc,
                      const htable *ac, int32_t *pred, unsigned bx, unsigned by, agora__error *err)
{
    int32_t coef[64];
    if (decode_block(br, dc, ac, pred, coef) < 0)
        return fail(err, "invalid Huffman code or coefficient in the entropy-coded data");
    size_t stride = (size_t)k->bw * 8;
    agora__jpeg12_idct_islow(coef, d->qt[k->tq], d->range,
                             k->plane + (size_t)by * 8 * stride + (size_t)bx * 8, stride);
    return 0;
}

static int decode_scan(decoder *d, const uint8_t *seg, size_t n, agora__error *err)
{
    unsigned ns;
    int rc = agora__jpeg_parse_sos(&d->s, seg, n, &ns, err);
    if (rc < 0)
        return rc;
    component *sc[MAX_COMP];
    const htable *dct[MAX_COMP], *act[MAX_COMP];
    unsigned blocks_in_mcu = 0;
    for (unsigned i = 0; i < ns; i++) {
        unsigned id = seg[1 + 2 * i], td = seg[2 + 2 * i] >> 4, ta = seg[2 + 2 * i] & 15;
        unsigned c = 0;
        while (c < d->s.ncomp && d->comp[c].id != id)
            c++;
        if (c == d->s.ncomp)
            return fail(err, "scan refers to a component not in the frame header");
        for (unsigned j = 0; j < i; j++)
            if (sc[j] == &d->comp[c])
                return fail(err, "scan lists a component twice");
        if (d->comp[c].decoded)
            return fail(err, "a component is coded by more than one sequential scan");
        if (td > 3 || ta > 3 || !d->dc[td].defined || !d->ac[ta].defined)
            return fail(err, "scan uses an undefined Huffman table");
        if (!d->qt_defined[d->comp[c].tq])
            return fail(err, "component uses an undefined quantisation table");
        sc[i] = &d->comp[c];
        dct[i] = &d->dc[td];
        act[i] = &d->ac[ta];
        blocks_in_mcu += d->comp[c].h * d->comp[c].v;
    }
    if (ns > 1 && blocks_in_mcu > 10)
        return fail(err, "an interleaved MCU has more than 10 blocks (T.81 B.2.3)");
    /* Ss, Se, Ah/Al: a sequential scan must be 0, 63, 0. libjpeg only warns and decodes the
     * scan as sequential (some encoders write Se=0), so do the same. */

    int32_t pred[MAX_COMP] = {0};
    const unsigned ri = d->s.restart_interval;
    unsigned left = ri;
    agora__jpeg_bits br;
    agora__jpeg_bits_init(&br, d->s.src + d->s.pos, d->s.src + d->s.len);
    unsigned mcux, mcuy;
    if (ns == 1) {
        /* Non-interleaved: one block per MCU over the component's own block grid. */
        mcux = div_up(sc[0]->dw, 8);
        mcuy = div_up(sc[0]->dh, 8);
    } else {
        mcux = div_up(d->s.width, 8 * d->hmax);
        mcuy = div_up(d->s.height, 8 * d->vmax);
    }
    for (unsigned my = 0; my < mcuy; my++) {
        for (unsigned mx = 0; mx < mcux; mx++) {
            if (ri != 0) {
                if (left == 0) {
                    rc = restart(d, &br, err);
                    if (rc < 0)
                        return rc;
                    memset(pred, 0, sizeof pred);
                    left = ri;
                }
                left--;
            }
            if (ns == 1) {
                rc = decode_one(d, &br, sc[0], dct[0], act[0], &pred[0], mx, my, err);
            } else {
                for (unsigned i = 0; i < ns && rc == 0; i++)
                    for (unsigned v = 0; v < sc[i]->v && rc == 0; v++)
                        for (unsigned h = 0; h < sc[i]->h && rc == 0; h++)
                            rc = decode_one(d, &br, sc[i], dct[i], act[i], &pred[i],
                                            mx * sc[i]->h + h, my * sc[i]->v + v, err);
            }
            if (rc < 0)
                return rc;
        }
        if (agora__jpeg_bits_overrun(&br))
            return agora__error_set(err, AGORA_EINPUT,
                                    "12-bit JPEG scan ends after %u of %u block rows; the data is "
                                    "truncated",
                                    my, mcuy);
    }
    for (unsigned i = 0; i < ns; i++)
        sc[i]->decoded = 1;
    d->s.pos = (size_t)(br.p - d->s.src);
    return 0;
}

/* ---- upsampling and output ----------------------------------------------------------------- */

static inline unsigned plane_at(const component *k, unsigned x, unsigned y)
{
    return k->plane[(size_t)y * k->bw * 8 + x];
}

/* Sample of component k at output pixel (x, y), upsampled as libjpeg 6b's jdsample.c does with
 * do_fancy_upsampling (its default): h2v1 and h2v2 triangle filters when the downsampled width
 * exceeds 2, replication otherwise; edges replicate the last real row/column. */
static unsigned upsampled(const decoder *d, const component *k, unsigned x, unsigned y)
{
    unsigned he = d->hmax / k->h, ve = d->vmax / k->v;
    if (he == 1 && ve == 1)
        return plane_at(k, x, y);
    int fancy = k->dw > 2 && he == 2 && (ve == 1 || ve == 2);
    if (!fancy)
        return plane_at(k, x / he, y / ve);
    unsigned i = x / 2, last = k->dw - 1;
    if (ve == 1) {
        unsigned cur = plane_at(k, i, y);
        if ((x & 1) == 0)
            return i == 0 ? cur : (3 * cur + plane_at(k, i - 1, y) + 1) >> 2;
        return i == last ? cur : (3 * cur + plane_at(k, i + 1, y) + 2) >> 2;
    }
    unsigned r0 = y / 2, rl = k->dh - 1;
    unsigned r1 = (y & 1) == 0 ? (r0 == 0 ? 0 : r0 - 1) : (r0 >= rl ? rl : r0 + 1);
#define COLSUM(c) (3 * plane_at(k, (c), r0) + plane_at(k, (c), r1))
    unsigned cs = COLSUM(i);
    if ((x & 1) == 0)
        return i == 0 ? (cs * 4 + 8) >> 4 : (cs * 3 + COLSUM(i - 1) + 8) >> 4;
    return i == last ? (cs * 4 + 7) >> 4 : (cs * 3 + COLSUM(i + 1) + 7) >> 4;
#undef COLSUM
}

/* libjpeg's jdcolor.c YCbCr->RGB (SCALEBITS 16) for 12-bit samples, clamped to 0..4095. */
#define SCALEBITS 16
#define ONE_HALF  ((int64_t)1 << (SCALEBITS - 1))
#define FIX(x)    ((int64_t)((x) * (1L << SCALEBITS) + 0.5))

static inline unsigned clamp12(int64_t v)
{
    return v < 0 ? 0 : v > MAXJSAMPLE ? MAXJSAMPLE : (unsigned)v;
}

void agora__jpeg12_ycc_to_rgb(unsigned y, unsigned cb, unsigned cr, unsigned rgb[3])
{
    int64_t xb = (int64_t)cb - CENTERSAMPLE, xr = (int64_t)cr - CENTERSAMPLE;
    int64_t r = (FIX(1.40200) * xr + ONE_HALF) >> SCALEBITS;
    int64_t b = (FIX(1.77200) * xb + ONE_HALF) >> SCALEBITS;
    int64_t g = ((-FIX(0.34414)) * xb + ONE_HALF + (-FIX(0.71414)) * xr) >> SCALEBITS;
    rgb[0] = clamp12((int64_t)y + r);
    rgb[1] = clamp12((int64_t)y + g);
    rgb[2] = clamp12((int64_t)y + b);
}

static int is_ybr(const char *pm)
{
    return strcmp(pm, "YBR_FULL") == 0 || strcmp(pm, "YBR_FULL_422") == 0 ||
           strcmp(pm, "YBR_PARTIAL_422") == 0;
}

static void emit(const decoder *d, const agora__codec_params *p, uint8_t *out, int ycc)
{
    const unsigned spp = d->s.ncomp, bytes = p->bits_allocated / 8;
    for (unsigned y = 0; y < d->s.height; y++)
        for (unsigned x = 0; x < d->s.width; x++) {
            size_t at = ((size_t)y * d->s.width + x) * spp;
            unsigned s[MAX_COMP];
            for (unsigned c = 0; c < spp; c++)
                s[c] = upsampled(d, &d->comp[c], x, y);
            if (ycc) {
                unsigned rgb[3];
                agora__jpeg12_ycc_to_rgb(s[0], s[1], s[2], rgb);
                s[0] = rgb[0], s[1] = rgb[1], s[2] = rgb[2];
            }
            for (unsigned c = 0; c < spp; c++)
                agora__codec_put(out, at + c, bytes, s[c]);
        }
}

int agora__codec_jpeg_ext12_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                                   uint8_t *out, size_t out_len, char photometric_out[17],
                                   agora__error *err)
{
    (void)out_len;
    if (src_len < 4 || src[0] != 0xFF || src[1] != 0xD8)
        return fail(err, "no start-of-image marker (SOI)");
    decoder *d = calloc(1, sizeof *d);
    if (d == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory decoding 12-bit JPEG");
    agora__jpeg12_range_table(d->range);
    agora__jpeg_stream_init(&d->s, "12-bit JPEG", "SOF", src, src_len);
    int rc = 0;
    for (;;) {
        unsigned m;
        const uint8_t *seg;
        size_t n;
        rc = agora__jpeg_next_segment(&d->s, &m, &seg, &n, err);
        if (rc < 0)
            goto done;
        if (rc == 0 || m == 0xD9) {
            rc = 0; /* a missing EOI after complete scans is accepted, like libjpeg */
            break;
        }
        rc = 0;
        switch (m) {
        case 0xC0:
        case 0xC1:
            rc = parse_sof(d, seg, n, p, err);
            break;
        case 0xC4:
            rc = parse_dht(d, seg, n, err);
            break;
        case 0xDB:
            rc = parse_dqt(d, seg, n, err);
            break;
        case 0xDD:
            rc = agora__jpeg_parse_dri(&d->s, seg, n, err);
            break;
        case 0xDC:
            rc = agora__jpeg_parse_dnl(&d->s, seg, n, p->rows, err);
            break;
        case 0xDA:
            rc = agora__jpeg_scan_begin(&d->s, MAX_SCANS, err);
            if (rc == 0)
                rc = decode_scan(d, seg, n, err);
            break;
        default:
            /* APPn, COM, ...: not needed; another process is refused. */
            if (agora__jpeg_is_sof(m))
                rc = agora__jpeg_wrong_process(m, "sequential Huffman DCT", err);
            break;
        }
        if (rc < 0)
            goto done;
    }
    if (!d->s.have_frame) {
        rc = fail(err, "stream has no frame header (SOF)");
        goto done;
    }
    if (d->s.dnl_pending) {
        rc = fail(err, "frame height 0 but no number-of-lines marker (DNL) after the first scan");
        goto done;
    }
    for (unsigned c = 0; c < d->s.ncomp; c++)
        if (!d->comp[c].decoded) {
            rc = fail(err, "stream ends before every component was decoded");
            goto done;
        }
    int ycc = d->s.ncomp == 3 && is_ybr(photometric_out);
    emit(d, p, out, ycc);
    if (ycc)
        agora__strlcpy(photometric_out, "RGB", 17);
done:
    for (unsigned c = 0; c < MAX_COMP; c++)
        free(d->comp[c].plane);
    free(d);
    return rc;
}
