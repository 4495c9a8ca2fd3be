/* Test-only JPEG Lossless encoder: see ljpeg_enc.h. */
#include <stdlib.h>
#include <string.h>

#include "ljpeg_enc.h"

/* One table for every component: 17 categories with code lengths 2..14, so categories 14..16
 * have codes longer than the decoder's 11-bit lookahead. */
static const uint8_t counts[16] = {0, 1, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
static const uint8_t symbols[17] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    uint32_t acc;
    int bits;
} buf;

static void put(buf *b, uint8_t v)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 1024;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    b->p[b->n++] = v;
}

static void put16(buf *b, unsigned v)
{
    put(b, (uint8_t)(v >> 8));
    put(b, (uint8_t)v);
}

static void bits(buf *b, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        b->acc = b->acc << 1 | ((v >> i) & 1);
        if (++b->bits == 8) {
            put(b, (uint8_t)b->acc);
            if ((b->acc & 0xFF) == 0xFF)
                put(b, 0);
            b->acc = 0;
            b->bits = 0;
        }
    }
}

static void flush_ones(buf *b)
{
    while (b->bits != 0)
        bits(b, 1, 1);
}

static void codes(uint16_t code[17], uint8_t len[17])
{
    unsigned c = 0, k = 0;
    for (unsigned l = 1; l <= 16; l++) {
        for (unsigned i = 0; i < counts[l - 1]; i++, k++) {
            code[symbols[k]] = (uint16_t)c++;
            len[symbols[k]] = (uint8_t)l;
        }
        c <<= 1;
    }
}

static void emit_diff(buf *b, int32_t d, const uint16_t code[17], const uint8_t len[17])
{
    d &= 0xFFFF;
    if (d > 32768)
        d -= 65536;
    if (d == 32768) {
        bits(b, code[16], len[16]);
        return;
    }
    unsigned a = (unsigned)(d < 0 ? -d : d), s = 0;
    while (a >> s)
        s++;
    bits(b, code[s], len[s]);
    if (s > 0)
        bits(b, (uint32_t)(d < 0 ? d + (1 << s) - 1 : d) & ((1u << s) - 1), (int)s);
}

size_t ljpeg_encode(const ljpeg_opts *o, const uint16_t *samples, uint8_t **out)
{
    buf b = {0};
    uint16_t code[17];
    uint8_t len[17];
    codes(code, len);
    put16(&b, 0xFFD8);
    put16(&b, 0xFFC4);
    put16(&b, 2 + 1 + 16 + 17);
    put(&b, 0x00);
    for (int i = 0; i < 16; i++)
        put(&b, counts[i]);
    for (int i = 0; i < 17; i++)
        put(&b, symbols[i]);
    if (o->restart_interval) {
        put16(&b, 0xFFDD);
        put16(&b, 4);
        put16(&b, o->restart_interval);
    }
    put16(&b, 0xFFC3);
    put16(&b, 8 + 3 * o->ncomp);
    put(&b, (uint8_t)o->precision);
    put16(&b, o->height);
    put16(&b, o->width);
    put(&b, (uint8_t)o->ncomp);
    for (unsigned c = 0; c < o->ncomp; c++) {
        put(&b, (uint8_t)(c + 1));
        put(&b, 0x11);
        put(&b, 0);
    }
    unsigned nscans = o->interleaved ? 1 : o->ncomp;
    for (unsigned s = 0; s < nscans; s++) {
        unsigned ns = o->interleaved ? o->ncomp : 1;
        put16(&b, 0xFFDA);
        put16(&b, 6 + 2 * ns);
        put(&b, (uint8_t)ns);
        for (unsigned i = 0; i < ns; i++) {
            put(&b, (uint8_t)(o->interleaved ? i + 1 : s + 1));
            put(&b, 0x00);
        }
        put(&b, (uint8_t)o->psv);
        put(&b, 0);
        put(&b, (uint8_t)o->pt);
        unsigned mcus = o->restart_interval, rst = 0;
        int32_t init = 1 << (o->precision - o->pt - 1);
        for (unsigned y = 0; y < o->height; y++) {
            int first = y == 0;
            unsigned start_x = 0;
            for (unsigned x = 0; x < o->width; x++) {
                if (o->restart_interval) {
                    if (mcus == 0) {
                        flush_ones(&b);
                        put(&b, 0xFF);
                        put(&b, (uint8_t)(0xD0 + (rst++ & 7)));
                        mcus = o->restart_interval;
                        first = 1;
                        start_x = x;
                    }
                    mcus--;
                }
                for (unsigned i = 0; i < ns; i++) {
                    unsigned c = o->interleaved ? i : s;
#define S(yy, xx) ((int32_t)(samples[((size_t)(yy)*o->width + (xx)) * o->ncomp + c] >> o->pt))
                    int32_t px = S(y, x), pred;
                    if (first)
                        pred = x == start_x ? init : S(y, x - 1);
                    else if (x == 0)
                        pred = S(y - 1, 0);
                    else {
                        int32_t ra = S(y, x - 1), rb = S(y - 1, x), rc = S(y - 1, x - 1);
                        switch (o->psv) {
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
#undef S
                    emit_diff(&b, px - pred, code, len);
                }
            }
        }
        flush_ones(&b);
    }
    put16(&b, 0xFFD9);
    *out = b.p;
    return b.n;
}
