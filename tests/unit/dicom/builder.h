/* A tiny DICOM stream builder for the unit tests: writes elements in a chosen encoding. */
#ifndef AGORA_TEST_DICOM_BUILDER_H
#define AGORA_TEST_DICOM_BUILDER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tbuf {
    uint8_t *b;
    size_t n, cap;
    int big;      /* big-endian numbers */
    int explicit; /* explicit VR */
} tbuf;

static inline void tb_put(tbuf *t, const void *p, size_t n)
{
    if (t->n + n > t->cap) {
        size_t nc = (t->n + n) * 2 + 64;
        t->b = realloc(t->b, nc);
        if (!t->b)
            abort();
        t->cap = nc;
    }
    if (n)
        memcpy(t->b + t->n, p, n);
    t->n += n;
}

static inline void tb_u16(tbuf *t, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(t->big ? v >> 8 : v), (uint8_t)(t->big ? v : v >> 8)};
    tb_put(t, b, 2);
}

static inline void tb_u32(tbuf *t, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[t->big ? 3 - i : i] = (uint8_t)(v >> (8 * i));
    tb_put(t, b, 4);
}

static inline int tb_long_vr(const char *vr)
{
    static const char *l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                              "UC", "UN", "UR", "UT", "SV", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (strcmp(vr, l[i]) == 0)
            return 1;
    return 0;
}

/* Element header (tag, VR when explicit, length). */
static inline void tb_hdr(tbuf *t, uint16_t g, uint16_t e, const char *vr, uint32_t len)
{
    tb_u16(t, g);
    tb_u16(t, e);
    if (t->explicit) {
        tb_put(t, vr, 2);
        if (tb_long_vr(vr)) {
            tb_u16(t, 0);
            tb_u32(t, len);
        } else {
            tb_u16(t, (uint16_t)len);
        }
    } else {
        tb_u32(t, len);
    }
}

static inline void tb_el(tbuf *t, uint16_t g, uint16_t e, const char *vr, const void *v,
                         uint32_t len)
{
    tb_hdr(t, g, e, vr, len);
    tb_put(t, v, len);
}

/* Text element padded to even length with a space (NUL for UI). */
static inline void tb_str(tbuf *t, uint16_t g, uint16_t e, const char *vr, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    tb_hdr(t, g, e, vr, n + (n & 1));
    tb_put(t, s, n);
    if (n & 1)
        tb_put(t, strcmp(vr, "UI") == 0 ? "\0" : " ", 1);
}

static inline void tb_us(tbuf *t, uint16_t g, uint16_t e, uint16_t v)
{
    tb_hdr(t, g, e, "US", 2);
    tb_u16(t, v);
}

static inline void tb_item(tbuf *t, uint32_t len)
{
    tb_u16(t, 0xFFFE);
    tb_u16(t, 0xE000);
    tb_u32(t, len);
}

static inline void tb_item_end(tbuf *t)
{
    tb_u16(t, 0xFFFE);
    tb_u16(t, 0xE00D);
    tb_u32(t, 0);
}

static inline void tb_seq_end(tbuf *t)
{
    tb_u16(t, 0xFFFE);
    tb_u16(t, 0xE0DD);
    tb_u32(t, 0);
}

/* Preamble, DICM and a meta group (always Explicit VR LE) naming transfer syntax ts. */
static inline void tb_meta(tbuf *t, const char *ts)
{
    uint8_t pre[128] = {0};
    tb_put(t, pre, 128);
    tb_put(t, "DICM", 4);
    int ob = t->big, oe = t->explicit;
    t->big = 0;
    t->explicit = 1;
    tbuf m = {0};
    m.explicit = 1;
    tb_el(&m, 0x0002, 0x0001, "OB", "\0\1", 2);
    tb_str(&m, 0x0002, 0x0010, "UI", ts);
    tb_hdr(t, 0x0002, 0x0000, "UL", 4);
    tb_u32(t, (uint32_t)m.n);
    tb_put(t, m.b, m.n);
    free(m.b);
    t->big = ob;
    t->explicit = oe;
}

#endif
