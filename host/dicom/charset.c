/* Specific Character Set decoding (see charset.h). */
#include "charset.h"

#include <string.h>

#include "charset_tables.h"

/* Code element sets (private ids stored in agora__dicom_charset.g0/g1). */
enum {
    CS_NONE = 0,
    CS_ASCII,                /* ISO-IR 6 (G0) */
    CS_ROMAJI,               /* JIS X 0201 Romaji, ISO-IR 14 (G0); shown as ASCII, see below */
    CS_SB_FIRST,             /* 96-character G1 sets, agora__cs_single order: */
    CS_LATIN1 = CS_SB_FIRST, /* ISO-IR 100 */
    CS_LATIN2,               /* 101 */
    CS_LATIN3,               /* 109 */
    CS_LATIN4,               /* 110 */
    CS_CYRILLIC,             /* 144 */
    CS_ARABIC,               /* 127 */
    CS_GREEK,                /* 126 */
    CS_HEBREW,               /* 138 */
    CS_LATIN5,               /* 148 */
    CS_THAI,                 /* 166 */
    CS_LATIN9,               /* 203 */
    CS_KATAKANA,             /* JIS X 0201 Katakana, ISO-IR 13 (G1) */
    CS_JISX0208,             /* ISO-IR 87 (G0, two bytes) */
    CS_JISX0212,             /* ISO-IR 159 (G0, two bytes) */
    CS_KSX1001,              /* ISO-IR 149 (G1, two bytes) */
    CS_GB2312                /* ISO-IR 58 (G1, two bytes) */
};

#define REPLACEMENT 0xFFFDu

typedef struct term {
    const char *ir; /* the number after "ISO_IR " / "ISO 2022 IR " */
    uint8_t g0, g1;
} term;

/* PS3.3 Tables C.12-2 (single-byte without extensions), C.12-3 (with), C.12-4 (multi-byte). */
static const term terms[] = {
    {"6", CS_ASCII, CS_NONE},       {"100", CS_ASCII, CS_LATIN1}, {"101", CS_ASCII, CS_LATIN2},
    {"109", CS_ASCII, CS_LATIN3},   {"110", CS_ASCII, CS_LATIN4}, {"144", CS_ASCII, CS_CYRILLIC},
    {"127", CS_ASCII, CS_ARABIC},   {"126", CS_ASCII, CS_GREEK},  {"138", CS_ASCII, CS_HEBREW},
    {"148", CS_ASCII, CS_LATIN5},   {"166", CS_ASCII, CS_THAI},   {"203", CS_ASCII, CS_LATIN9},
    {"13", CS_ROMAJI, CS_KATAKANA}, {"87", CS_JISX0208, CS_NONE}, {"159", CS_JISX0212, CS_NONE},
    {"149", CS_NONE, CS_KSX1001},   {"58", CS_NONE, CS_GB2312},
};

void agora__dicom_charset_default(agora__dicom_charset *cs)
{
    cs->mode = AGORA__DICOM_CS_DEFAULT;
    cs->g0 = CS_ASCII;
    cs->g1 = CS_NONE;
    cs->unknown = 0;
}

static int term_is(const uint8_t *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

/* Looks one term up; returns its row or NULL, *iso2022 set for the "ISO 2022 IR" form. Multi-
 * byte sets exist only in the ISO 2022 form. */
static const term *lookup(const uint8_t *s, size_t n, int *iso2022)
{
    static const char p1[] = "ISO_IR ", p2[] = "ISO 2022 IR ";
    const uint8_t *num;
    size_t nn;
    if (n > sizeof p2 - 1 && memcmp(s, p2, sizeof p2 - 1) == 0) {
        *iso2022 = 1;
        num = s + sizeof p2 - 1;
        nn = n - (sizeof p2 - 1);
    } else if (n > sizeof p1 - 1 && memcmp(s, p1, sizeof p1 - 1) == 0) {
        *iso2022 = 0;
        num = s + sizeof p1 - 1;
        nn = n - (sizeof p1 - 1);
    } else {
        return NULL;
    }
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
        if (!term_is(num, nn, terms[i].ir))
            continue;
        int multi = terms[i].g0 == CS_JISX0208 || terms[i].g0 == CS_JISX0212 ||
                    terms[i].g1 == CS_KSX1001 || terms[i].g1 == CS_GB2312;
        if (multi && !*iso2022)
            return NULL;
        return &terms[i];
    }
    return NULL;
}

void agora__dicom_charset_parse(const uint8_t *value, size_t len, agora__dicom_charset *cs)
{
    agora__dicom_charset_default(cs);
    if (value == NULL)
        return;
    size_t start = 0, index = 0, unknown = 0;
    int any2022 = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && value[i] != '\\')
            continue;
        const uint8_t *s = value + start;
        size_t n = i - start;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == 0))
            n--;
        while (n > 0 && s[0] == ' ') {
            s++;
            n--;
        }
        start = i + 1;
        if (n == 0) { /* an empty value 1 means the default repertoire */
            index++;
            continue;
        }
        if (index == 0 &&
            (term_is(s, n, "ISO_IR 192") || term_is(s, n, "GB18030") || term_is(s, n, "GBK"))) {
            /* Stand-alone sets: code extensions are not allowed with them (PS3.5 6.1.2.5.4). */
            cs->mode = term_is(s, n, "ISO_IR 192") ? AGORA__DICOM_CS_UTF8
                       : term_is(s, n, "GBK")      ? AGORA__DICOM_CS_GBK
                                                   : AGORA__DICOM_CS_GB18030;
            return;
        }
        int iso2022 = 0;
        const term *t = lookup(s, n, &iso2022);
        if (t == NULL) {
            unknown++;
        } else {
            any2022 |= iso2022;
            if (index == 0) {
                /* Value 1 sets the state at the start of every value; a multi-byte G0 set
                 * (JIS X 0208) as value 1 is not allowed, ASCII then applies. */
                cs->g0 = (t->g0 == CS_ASCII || t->g0 == CS_ROMAJI) ? t->g0 : CS_ASCII;
                cs->g1 = t->g1;
            }
        }
        index++;
    }
    cs->unknown = unknown > 255 ? 255 : (uint8_t)unknown;
    if (index == 0 || (index == 1 && cs->g1 == CS_NONE && cs->g0 == CS_ASCII && !any2022))
        cs->mode = AGORA__DICOM_CS_DEFAULT;
    else if (index == 1 && !any2022)
        cs->mode = AGORA__DICOM_CS_SINGLE;
    else
        cs->mode = AGORA__DICOM_CS_ISO2022;
}

void agora__dicom_charset_of(const agora__dicom_dataset *ds, const agora__dicom_charset *inherited,
                             agora__dicom_charset *out)
{
    const agora__dicom_element *e =
        ds ? agora__dicom_find(ds, AGORA__DICOM_T_SPECIFIC_CHARSET) : NULL;
    if (e != NULL && e->value != NULL && e->value_len > 0) {
        agora__dicom_charset_parse(e->value, (size_t)e->value_len, out);
        return;
    }
    if (inherited != NULL)
        *out = *inherited;
    else
        agora__dicom_charset_default(out);
}

int agora__dicom_charset_vr(uint16_t vr)
{
    switch (vr) {
    case AGORA__DICOM_VR('P', 'N'):
    case AGORA__DICOM_VR('L', 'O'):
    case AGORA__DICOM_VR('S', 'H'):
    case AGORA__DICOM_VR('S', 'T'):
    case AGORA__DICOM_VR('L', 'T'):
    case AGORA__DICOM_VR('U', 'T'):
    case AGORA__DICOM_VR('U', 'C'):
        return 1;
    default:
        return 0;
    }
}

/* ---- output ---------------------------------------------------------------------------------- */

typedef struct sink {
    char *out;
    size_t size, len;
    size_t replaced;
    int full;
} sink;

static void put_cp(sink *s, uint32_t cp)
{
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | (cp >> 18));
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (s->full || s->len + n + 1 > s->size) {
        s->full = 1; /* stop at a character boundary; the NUL always fits (size >= 1) */
        return;
    }
    memcpy(s->out + s->len, b, n);
    s->len += n;
}

/* A substitution: U+FFFD for bytes that did not decode, counted (a literal U+FFFD of UTF-8 input
 * is a character like any other and goes through put_cp). */
static void put_bad(sink *s)
{
    s->replaced++;
    put_cp(s, REPLACEMENT);
}

/* C0 controls other than the format effectors text VRs allow, and DEL, are not text. */
static void put_ascii(sink *s, uint8_t c)
{
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') || c == 0x7F)
        put_bad(s);
    else
        put_cp(s, c);
}

/* ---- UTF-8 (ISO_IR 192) ---------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (1-4) and its code point, or 0 when the bytes
 * are not one (Unicode Table 3-7: no overlongs, surrogates or code points above U+10FFFF). */
static size_t utf8_one(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        uint8_t t = p[i];
        if (i == 1 ? (t < lo || t > hi) : (t < 0x80 || t > 0xBF))
            return 0;
        v = (v << 6) | (t & 0x3F);
    }
    *cp = v;
    return len;
}

static void decode_utf8(sink *s, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n && !s->full;) {
        uint32_t cp;
        size_t l = utf8_one(in + i, n - i, &cp);
        if (l == 0) {
            put_bad(s);
            i++;
        } else {
            if (cp < 0x80)
                put_ascii(s, (uint8_t)cp);
            else
                put_cp(s, cp);
            i += l;
        }
    }
}

static int valid_utf8(const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_one(in + i, n - i, &cp);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* ---- GB18030 and GBK ------------------------------------------------------------------------- */

static uint32_t gb18030_four(uint32_t index)
{
    if (index >= agora__cs_gb18030_4_end)
        return 0;
    size_t lo = 0, hi = agora__cs_gb18030_4_count;
    while (hi - lo > 1) { /* last run whose first index <= index */
        size_t mid = lo + (hi - lo) / 2;
        if (agora__cs_gb18030_4[mid].index <= index)
            lo = mid;
        else
            hi = mid;
    }
    return agora__cs_gb18030_4[lo].cp + (index - agora__cs_gb18030_4[lo].index);
}

static void decode_gb(sink *s, const uint8_t *in, size_t n, int gbk)
{
    for (size_t i = 0; i < n && !s->full;) {
        uint8_t c = in[i];
        if (c < 0x80) {
            put_ascii(s, c);
            i++;
            continue;
        }
        if (c == 0x80 || c == 0xFF || i + 1 >= n) {
            put_bad(s);
            i++;
            continue;
        }
        uint8_t t = in[i + 1];
        if (t >= 0x40 && t <= 0xFE && t != 0x7F) {
            size_t cell = (size_t)(c - 0x81) * 190 + (size_t)(t < 0x7F ? t - 0x40 : t - 0x41);
            uint16_t cp = agora__cs_gb18030_2[cell];
            if (gbk && !(agora__cs_gbk_defined[cell / 8] & (1u << (cell % 8))))
                cp = 0;
            if (cp)
                put_cp(s, cp);
            else
                put_bad(s);
            i += 2;
            continue;
        }
        if (!gbk && t >= 0x30 && t <= 0x39 && i + 3 < n && in[i + 2] >= 0x81 && in[i + 2] <= 0xFE &&
            in[i + 3] >= 0x30 && in[i + 3] <= 0x39) {
            uint32_t index = (((uint32_t)(c - 0x81) * 10 + (uint32_t)(t - 0x30)) * 126 +
                              (uint32_t)(in[i + 2] - 0x81)) *
                                 10 +
                             (uint32_t)(in[i + 3] - 0x30);
            uint32_t cp;
            if (c >= 0x90 && c <= 0xE3) /* supplementary planes: one linear run from 90 30 81 30 */
                cp = index - 189000u + 0x10000u <= 0x10FFFFu ? index - 189000u + 0x10000u : 0;
            else
                cp = gb18030_four(index);
            if (cp)
                put_cp(s, cp);
            else
                put_bad(s);
            i += 4;
            continue;
        }
        put_bad(s); /* the lead byte alone; the next byte is decoded afresh */
        i++;
    }
}

/* ---- ISO 2022 -------------------------------------------------------------------------------- */

static int two_byte(uint8_t set)
{
    return set == CS_JISX0208 || set == CS_JISX0212 || set == CS_KSX1001 || set == CS_GB2312;
}

static uint16_t table94(uint8_t set, uint8_t r, uint8_t c)
{
    size_t i = (size_t)(r - 0x21) * 94 + (size_t)(c - 0x21);
    switch (set) {
    case CS_JISX0208:
        return agora__cs_jisx0208[i];
    case CS_JISX0212:
        return agora__cs_jisx0212[i];
    case CS_KSX1001:
        return agora__cs_ksx1001[i];
    case CS_GB2312:
        return agora__cs_gb2312[i];
    default:
        return 0;
    }
}

/* An escape sequence at in[0] == ESC: ESC, intermediates 0x20-0x2F, one final 0x30-0x7E.
 * Returns its length (at least 1, at most 4 bytes considered) and sets g0 or g1 when it is
 * one of PS3.3 Tables C.12-3/C.12-4; *known is 0 otherwise (the bytes are consumed either
 * way, so a bad sequence costs one replacement and never leaks its bytes as text). */
static size_t escape(const uint8_t *in, size_t n, uint8_t *g0, uint8_t *g1, int *known)
{
    size_t len = 1;
    while (len < n && len < 3 && in[len] >= 0x20 && in[len] <= 0x2F)
        len++;
    *known = 0;
    if (len >= n || in[len] < 0x30 || in[len] > 0x7E)
        return len; /* truncated or no final byte */
    len++;
    static const struct {
        char seq[4];
        uint8_t g, set; /* g: 0 or 1 */
    } esc[] = {
        {"(B", 0, CS_ASCII},    {"(J", 0, CS_ROMAJI},    {"$B", 0, CS_JISX0208},
        {"$@", 0, CS_JISX0208}, {"$(D", 0, CS_JISX0212}, {")I", 1, CS_KATAKANA},
        {"-A", 1, CS_LATIN1},   {"-B", 1, CS_LATIN2},    {"-C", 1, CS_LATIN3},
        {"-D", 1, CS_LATIN4},   {"-L", 1, CS_CYRILLIC},  {"-G", 1, CS_ARABIC},
        {"-F", 1, CS_GREEK},    {"-H", 1, CS_HEBREW},    {"-M", 1, CS_LATIN5},
        {"-T", 1, CS_THAI},     {"-b", 1, CS_LATIN9},    {"$)C", 1, CS_KSX1001},
        {"$)A", 1, CS_GB2312},
    };
    for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++) {
        size_t l = strlen(esc[i].seq);
        if (l == len - 1 && memcmp(esc[i].seq, in + 1, l) == 0) {
            *known = 1;
            if (esc[i].g == 0)
                *g0 = esc[i].set;
            else
                *g1 = esc[i].set;
            return len;
        }
    }
    return len;
}

typedef struct delims {
    int values; /* '\' separates values */
    int pn;     /* '^' and '=' separate components and groups */
} delims;

static void decode_2022(sink *s, const agora__dicom_charset *cs, delims d, const uint8_t *in,
                        size_t n, uint8_t g1_fallback)
{
    uint8_t g0 = cs->g0, g1 = cs->g1 != CS_NONE ? cs->g1 : g1_fallback;
    const uint8_t g0_init = g0, g1_init = g1;
    for (size_t i = 0; i < n && !s->full;) {
        uint8_t c = in[i];
        if (c == 0x1B) {
            int known;
            i += escape(in + i, n - i, &g0, &g1, &known);
            if (!known)
                put_bad(s);
            continue;
        }
        if (c < 0x80) {
            if (two_byte(g0) && c > 0x20 && c < 0x7F) {
                if (i + 1 < n && in[i + 1] > 0x20 && in[i + 1] < 0x7F) {
                    uint16_t cp = table94(g0, c, in[i + 1]);
                    if (cp)
                        put_cp(s, cp);
                    else
                        put_bad(s);
                    i += 2;
                } else {
                    put_bad(s);
                    i++;
                }
                continue;
            }
            /* A single-byte G0: delimiters and controls return to value 1's sets. JIS X 0201
             * Romaji differs from ASCII only at 0x5C (yen) and 0x7E (overline); 0x5C is DICOM's
             * value delimiter in every set, so both are shown as ASCII, as pydicom does. */
            put_ascii(s, c);
            if ((d.values && c == '\\') || (d.pn && c == '=')) {
                g0 = g0_init;
                g1 = g1_init;
            } else if ((d.pn && c == '^') || c == '\t' || c == '\n' || c == '\f' || c == '\r') {
                g0 = g0_init;
            }
            i++;
            continue;
        }
        if (c < 0xA0 || g1 == CS_NONE) { /* C1 controls; or no G1 set designated */
            put_bad(s);
            i++;
            continue;
        }
        if (two_byte(g1)) {
            if (c < 0xFF && i + 1 < n && in[i + 1] > 0xA0 && in[i + 1] < 0xFF && c > 0xA0) {
                uint16_t cp = table94(g1, (uint8_t)(c & 0x7F), (uint8_t)(in[i + 1] & 0x7F));
                if (cp)
                    put_cp(s, cp);
                else
                    put_bad(s);
                i += 2;
            } else {
                put_bad(s);
                i++;
            }
            continue;
        }
        if (g1 == CS_KATAKANA) {
            if (c >= 0xA1 && c <= 0xDF)
                put_cp(s, 0xFF61u + (uint32_t)(c - 0xA1));
            else
                put_bad(s);
            i++;
            continue;
        }
        uint16_t cp = agora__cs_single[(size_t)(g1 - CS_SB_FIRST) * 96 + (size_t)(c - 0xA0)];
        if (cp)
            put_cp(s, cp);
        else
            put_bad(s);
        i++;
    }
}

size_t agora__dicom_decode_text(const agora__dicom_charset *cs, uint16_t vr, const uint8_t *in,
                                size_t n, char *out, size_t out_size, size_t *replaced)
{
    if (replaced != NULL)
        *replaced = 0;
    if (out == NULL || out_size == 0)
        return 0;
    sink s = {out, out_size, 0, 0, 0};
    agora__dicom_charset def;
    if (cs == NULL) {
        agora__dicom_charset_default(&def);
        cs = &def;
    }
    delims d = {vr != AGORA__DICOM_VR('S', 'T') && vr != AGORA__DICOM_VR('L', 'T') &&
                    vr != AGORA__DICOM_VR('U', 'T') && vr != AGORA__DICOM_VR('U', 'R'),
                vr == AGORA__DICOM_VR('P', 'N')};
    if (in == NULL)
        n = 0;
    switch (cs->mode) {
    case AGORA__DICOM_CS_UTF8:
        decode_utf8(&s, in, n);
        break;
    case AGORA__DICOM_CS_GB18030:
        decode_gb(&s, in, n, 0);
        break;
    case AGORA__DICOM_CS_GBK:
        decode_gb(&s, in, n, 1);
        break;
    case AGORA__DICOM_CS_SINGLE:
        /* No code extensions: an ESC is not an escape here, just a control (U+FFFD). */
        for (size_t i = 0; i < n && !s.full; i++) {
            uint8_t c = in[i];
            if (c < 0x80) {
                put_ascii(&s, c);
            } else if (c < 0xA0) {
                put_bad(&s);
            } else if (cs->g1 < CS_SB_FIRST || cs->g1 > CS_KATAKANA) {
                put_bad(&s);
            } else if (cs->g1 == CS_KATAKANA) {
                if (c >= 0xA1 && c <= 0xDF)
                    put_cp(&s, 0xFF61u + (uint32_t)(c - 0xA1));
                else
                    put_bad(&s);
            } else {
                uint16_t cp =
                    agora__cs_single[(size_t)(cs->g1 - CS_SB_FIRST) * 96 + (size_t)(c - 0xA0)];
                if (cp)
                    put_cp(&s, cp);
                else
                    put_bad(&s);
            }
        }
        break;
    case AGORA__DICOM_CS_ISO2022:
        decode_2022(&s, cs, d, in, n, CS_NONE);
        break;
    case AGORA__DICOM_CS_DEFAULT:
    default:
        if (memchr(in ? (const void *)in : "", 0x1B, n) == NULL && valid_utf8(in, n))
            decode_utf8(&s, in, n);
        else
            decode_2022(&s, cs, d, in, n, CS_LATIN1);
        break;
    }
    s.out[s.len] = '\0';
    if (replaced != NULL)
        *replaced = s.replaced;
    return s.len;
}
