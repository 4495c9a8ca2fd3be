/*
 * Private to host/codec: the parts of a T.81 stream that the lossless (jpeg_lossless.c) and the
 * 12-bit DCT (jpeg_ext12.c) decoders read the same way: the marker/segment cursor, the frame,
 * scan, DHT, DRI and DNL headers, restart markers, the entropy-coded bit reader and canonical
 * Huffman codes. Each decoder keeps what is its own (component layout, lookahead tables, the
 * sample reconstruction).
 *
 * Every error is set through agora__error with the decoder's name as prefix ("<name> stream is
 * invalid: ..."). The stream borrows src; the caller owns it for the stream's lifetime.
 */
#ifndef AGORA_HOST_CODEC_JPEG_STREAM_H
#define AGORA_HOST_CODEC_JPEG_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "codec_private.h"

typedef struct agora__jpeg_stream {
    const char *name; /* "JPEG Lossless", "12-bit JPEG": error prefix, static storage */
    const char *sof;  /* the frame header's name in errors: "SOF3", "SOF" */
    const uint8_t *src;
    size_t len, pos;
    unsigned precision, width, height, ncomp;
    unsigned restart_interval;
    unsigned scans; /* SOS segments seen */
    int have_frame;
    int dnl_pending; /* SOF said height 0: a DNL marker must follow the first scan */
} agora__jpeg_stream;

/* Cursor just after SOI; the caller has checked src starts with FF D8. */
void agora__jpeg_stream_init(agora__jpeg_stream *s, const char *name, const char *sof,
                             const uint8_t *src, size_t len);

/* "<name> stream is invalid: <what>" as AGORA_EINPUT; returns the negative code. */
int agora__jpeg_fail(const agora__jpeg_stream *s, agora__error *err, const char *what);

/* Read the next marker, skipping fill bytes (0xFF runs, T.81 B.1.1.2) and whatever precedes it
 * (unread entropy-coded bytes, junk, as common decoders tolerate). 0, or -1 at the end. */
int agora__jpeg_next_marker(agora__jpeg_stream *s, unsigned *marker);

/* Next marker with its segment: standalone TEM and RSTn are skipped; EOI (0xD9) comes back with
 * seg NULL. Returns 1 with *marker, *seg (into src) and *n; 0 when the data ends without EOI;
 * negative (err set) for a truncated segment. */
int agora__jpeg_next_segment(agora__jpeg_stream *s, unsigned *marker, const uint8_t **seg,
                             size_t *n, agora__error *err);

/* A frame marker (SOFn) other than DHT, JPG and DAC. */
int agora__jpeg_is_sof(unsigned marker);

/* The error for a frame of another process than the decoder's (`want` names it). */
int agora__jpeg_wrong_process(unsigned marker, const char *want, agora__error *err);

/* The SOF fields every process shares: dimensions, component count (1..max_comp, segment long
 * enough for their 3-byte entries at seg + 6), precision in prec_min..prec_max, a height of 0
 * resolved to the DICOM Rows with a DNL expected, and agreement with the DICOM attributes. */
int agora__jpeg_parse_sof(agora__jpeg_stream *s, const uint8_t *seg, size_t n,
                          const agora__codec_params *p, unsigned prec_min, unsigned prec_max,
                          unsigned max_comp, agora__error *err);

/* A DHT segment's tables, one callback per table (class tc, id th, counts, symbols): classes
 * above max_class or ids above 3 fail with bad_class. The callback returns 0 or an error. */
typedef int (*agora__jpeg_dht_fn)(void *ctx, unsigned tc, unsigned th, const uint8_t counts[16],
                                  const uint8_t *syms, unsigned nsyms, agora__error *err);
int agora__jpeg_parse_dht(const agora__jpeg_stream *s, const uint8_t *seg, size_t n,
                          unsigned max_class, const char *bad_class, agora__jpeg_dht_fn fn,
                          void *ctx, agora__error *err);

int agora__jpeg_parse_dri(agora__jpeg_stream *s, const uint8_t *seg, size_t n, agora__error *err);

/* DNL: only meaningful right after the first scan of a height-0 frame; must say `rows`. */
int agora__jpeg_parse_dnl(agora__jpeg_stream *s, const uint8_t *seg, size_t n, unsigned rows,
                          agora__error *err);

/* Count an SOS (at most max_scans) and refuse a second scan while a DNL is still owed. */
int agora__jpeg_scan_begin(agora__jpeg_stream *s, unsigned max_scans, agora__error *err);

/* The SOS header's component count Ns: after a frame, 1..ncomp, segment long enough for Ns
 * component entries at seg + 1 and Ss/Se/Ah-Al after them. */
int agora__jpeg_parse_sos(const agora__jpeg_stream *s, const uint8_t *seg, size_t n, unsigned *ns,
                          agora__error *err);

/* ---- bit reader over entropy-coded data ----------------------------------------------------- */

typedef struct agora__jpeg_bits {
    const uint8_t *p, *end;
    uint64_t acc; /* next bits, MSB first */
    int n;        /* valid bits in acc */
    int pad;      /* zero bytes fed after a marker or the end of data */
} agora__jpeg_bits;

static inline void agora__jpeg_bits_init(agora__jpeg_bits *br, const uint8_t *p, const uint8_t *end)
{
    br->p = p;
    br->end = end;
    br->acc = 0;
    br->n = 0;
    br->pad = 0;
}

/* Fill acc to more than 56 bits. Stuffed 0xFF00 yields 0xFF; a real marker (or the end of data)
 * is left unconsumed and zero bytes are fed instead, counted in pad so the caller can tell a
 * truncated scan from one that merely ended, and nothing is ever read past end. */
static inline void agora__jpeg_bits_fill(agora__jpeg_bits *br)
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

/* The next k (1..32) bits; valid after a fill while k <= the buffered count. */
static inline unsigned agora__jpeg_bits_peek(const agora__jpeg_bits *br, unsigned k)
{
    return (unsigned)(br->acc >> (64 - k));
}

static inline void agora__jpeg_bits_skip(agora__jpeg_bits *br, unsigned k)
{
    br->acc <<= k;
    br->n -= (int)k;
}

/* Bits consumed beyond the real data (zero padding): > 0 means the scan was truncated. */
static inline int agora__jpeg_bits_overrun(const agora__jpeg_bits *br)
{
    return br->pad * 8 - br->n > 0;
}

/* At a restart boundary: drop buffered bits, expect RSTn, start a fresh entropy segment. */
int agora__jpeg_restart(agora__jpeg_stream *s, agora__jpeg_bits *br, agora__error *err);

/* Sign-extend s (1..16) received bits per T.81 F.2.2.1 (EXTEND). */
static inline int32_t agora__jpeg_extend(uint32_t v, unsigned s)
{
    return v < (1u << (s - 1)) ? (int32_t)v - (int32_t)((1u << s) - 1) : (int32_t)v;
}

/* ---- canonical Huffman codes (T.81 Annex C, F.2.2.3) ---------------------------------------- */

typedef struct agora__jpeg_huff {
    int32_t maxcode[18]; /* -1 when no code of that length; [17] is a sentinel */
    int32_t valoff[18];
    uint8_t symbols[256];
} agora__jpeg_huff;

/* Called for every code of length len <= look with its symbol, so the decoder can fill its own
 * lookahead table. */
typedef void (*agora__jpeg_look_fn)(void *ctx, unsigned len, uint32_t code, unsigned sym);

/* Build the canonical code from a DHT's counts and nsyms (<= 256) symbols. Returns 0, or -1 when
 * the counts give more codes than their lengths allow or than there are symbols. */
int agora__jpeg_huff_build(agora__jpeg_huff *t, const uint8_t counts[16], const uint8_t *syms,
                           unsigned nsyms, unsigned look, agora__jpeg_look_fn fn, void *ctx);

/* Decode a code longer than look bits by walking the canonical code (the lookahead table said
 * so; bits are filled). Returns the symbol, or -1 for an invalid code, after consuming 16 bits
 * so decoding advances. */
static inline int agora__jpeg_huff_slow(const agora__jpeg_huff *t, agora__jpeg_bits *br,
                                        unsigned look)
{
    uint32_t bits16 = agora__jpeg_bits_peek(br, 16);
    unsigned l = look + 1;
    while (l <= 16 && (int32_t)(bits16 >> (16 - l)) > t->maxcode[l])
        l++;
    if (l > 16) {
        agora__jpeg_bits_skip(br, 16);
        return -1;
    }
    int32_t code = (int32_t)(bits16 >> (16 - l));
    agora__jpeg_bits_skip(br, l);
    int32_t i = t->valoff[l] + code;
    if (i < 0 || i > 255)
        return -1;
    return t->symbols[i];
}

#endif
