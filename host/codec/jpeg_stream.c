/*
 * T.81 stream structure shared by the JPEG decoders we write ourselves (jpeg_lossless.c,
 * jpeg_ext12.c): see jpeg_stream.h. Everything reads through s->pos against s->len; no segment
 * is trusted beyond the bounds it was checked for here.
 */
#include <string.h>

#include "jpeg_stream.h"

void agora__jpeg_stream_init(agora__jpeg_stream *s, const char *name, const char *sof,
                             const uint8_t *src, size_t len)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->sof = sof;
    s->src = src;
    s->len = len;
    s->pos = 2;
}

int agora__jpeg_fail(const agora__jpeg_stream *s, agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA_EINPUT, "%s stream is invalid: %s", s->name, what);
}

int agora__jpeg_next_marker(agora__jpeg_stream *s, unsigned *marker)
{
    for (;;) {
        while (s->pos < s->len && s->src[s->pos] != 0xFF)
            s->pos++;
        while (s->pos + 1 < s->len && s->src[s->pos + 1] == 0xFF)
            s->pos++;
        if (s->len - s->pos < 2)
            return -1;
        *marker = s->src[s->pos + 1];
        s->pos += 2;
        if (*marker != 0x00)
            return 0;
    }
}

int agora__jpeg_next_segment(agora__jpeg_stream *s, unsigned *marker, const uint8_t **seg,
                             size_t *n, agora__error *err)
{
    for (;;) {
        unsigned m;
        if (agora__jpeg_next_marker(s, &m) < 0)
            return 0;
        *marker = m;
        if (m == 0xD9) {
            *seg = NULL;
            *n = 0;
            return 1;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* standalone markers */
        if (s->len - s->pos < 2)
            return agora__jpeg_fail(s, err, "truncated marker segment");
        unsigned len = (unsigned)s->src[s->pos] << 8 | s->src[s->pos + 1];
        s->pos += 2;
        if (len < 2 || len - 2 > s->len - s->pos)
            return agora__jpeg_fail(s, err, "truncated marker segment");
        *seg = s->src + s->pos;
        *n = len - 2;
        s->pos += *n;
        return 1;
    }
}

int agora__jpeg_is_sof(unsigned m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

int agora__jpeg_wrong_process(unsigned m, const char *want, agora__error *err)
{
    return agora__error_set(err, AGORA_EINPUT,
                            "stream is JPEG process SOF%u, not %s; the transfer syntax does not "
                            "match the data",
                            m - 0xC0, want);
}

int agora__jpeg_parse_sof(agora__jpeg_stream *s, const uint8_t *seg, size_t n,
                          const agora__codec_params *p, unsigned prec_min, unsigned prec_max,
                          unsigned max_comp, agora__error *err)
{
    if (s->have_frame)
        return agora__jpeg_fail(s, err, "more than one frame header (SOF)");
    if (n < 6)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s stream is invalid: truncated frame header (%s)", s->name,
                                s->sof);
    s->precision = seg[0];
    s->height = (unsigned)seg[1] << 8 | seg[2];
    s->width = (unsigned)seg[3] << 8 | seg[4];
    s->ncomp = seg[5];
    if (s->precision < prec_min || s->precision > prec_max) {
        if (prec_min == prec_max)
            return agora__error_set(err, AGORA_EINPUT,
                                    "%s stream is invalid: sample precision is not %u", s->name,
                                    prec_min);
        return agora__error_set(err, AGORA_EINPUT,
                                "%s stream is invalid: sample precision is not %u..%u", s->name,
                                prec_min, prec_max);
    }
    if (s->ncomp < 1 || s->ncomp > max_comp || n < 6 + 3 * (size_t)s->ncomp)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s stream is invalid: component count is not 1..%u or the frame "
                                "header is truncated",
                                s->name, max_comp);
    if (s->height == 0) {
        /* Number of lines defined by a DNL marker after the first scan (T.81 B.2.5): decode for
         * the DICOM Rows; the DNL must agree (checked when it arrives). */
        s->height = p->rows;
        s->dnl_pending = 1;
    }
    if (s->width != p->columns || s->height != p->rows || s->ncomp != p->samples_per_pixel)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s stream is %ux%u with %u components but the DICOM attributes "
                                "say %ux%u with %u samples; the file is inconsistent",
                                s->name, s->width, s->height, s->ncomp, p->columns, p->rows,
                                p->samples_per_pixel);
    return 0;
}

int agora__jpeg_parse_dht(const agora__jpeg_stream *s, const uint8_t *seg, size_t n,
                          unsigned max_class, const char *bad_class, agora__jpeg_dht_fn fn,
                          void *ctx, agora__error *err)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 17)
            return agora__jpeg_fail(s, err, "truncated Huffman table (DHT)");
        unsigned tc = seg[i] >> 4, th = seg[i] & 15;
        unsigned total = 0;
        for (unsigned l = 0; l < 16; l++)
            total += seg[i + 1 + l];
        if (tc > max_class || th > 3)
            return agora__jpeg_fail(s, err, bad_class);
        if (total > 256 || n - i - 17 < total)
            return agora__jpeg_fail(s, err, "truncated Huffman table (DHT)");
        int rc = fn(ctx, tc, th, seg + i + 1, seg + i + 17, total, err);
        if (rc < 0)
            return rc;
        i += 17 + total;
    }
    return 0;
}

int agora__jpeg_parse_dri(agora__jpeg_stream *s, const uint8_t *seg, size_t n, agora__error *err)
{
    if (n < 2)
        return agora__jpeg_fail(s, err, "truncated restart interval (DRI)");
    s->restart_interval = (unsigned)seg[0] << 8 | seg[1];
    return 0;
}

int agora__jpeg_parse_dnl(agora__jpeg_stream *s, const uint8_t *seg, size_t n, unsigned rows,
                          agora__error *err)
{
    if (!s->dnl_pending || s->scans != 1)
        return agora__jpeg_fail(s, err, "unexpected number-of-lines marker (DNL)");
    if (n < 2 || ((unsigned)seg[0] << 8 | seg[1]) != rows)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s DNL marker says %u lines but the DICOM attributes say %u "
                                "rows; the file is inconsistent",
                                s->name, n < 2 ? 0u : ((unsigned)seg[0] << 8 | seg[1]), rows);
    s->dnl_pending = 0;
    return 0;
}

int agora__jpeg_scan_begin(agora__jpeg_stream *s, unsigned max_scans, agora__error *err)
{
    if (++s->scans > max_scans)
        return agora__jpeg_fail(s, err, "too many scans");
    if (s->dnl_pending && s->scans > 1)
        return agora__jpeg_fail(s, err,
                                "frame height 0 but no number-of-lines marker (DNL) "
                                "after the first scan");
    return 0;
}

int agora__jpeg_parse_sos(const agora__jpeg_stream *s, const uint8_t *seg, size_t n, unsigned *ns,
                          agora__error *err)
{
    if (!s->have_frame)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s stream is invalid: scan (SOS) before the frame header (%s)",
                                s->name, s->sof);
    if (n < 1)
        return agora__jpeg_fail(s, err, "truncated scan header (SOS)");
    *ns = seg[0];
    if (*ns < 1 || *ns > s->ncomp || n < 1 + 2 * (size_t)*ns + 3)
        return agora__jpeg_fail(s, err,
                                "scan header (SOS) has an invalid component count or is "
                                "truncated");
    return 0;
}

int agora__jpeg_restart(agora__jpeg_stream *s, agora__jpeg_bits *br, agora__error *err)
{
    s->pos = (size_t)(br->p - s->src);
    unsigned m;
    if (agora__jpeg_next_marker(s, &m) < 0 || m < 0xD0 || m > 0xD7)
        return agora__jpeg_fail(s, err,
                                "missing restart marker (RSTn) at a restart interval boundary");
    agora__jpeg_bits_init(br, s->src + s->pos, s->src + s->len);
    return 0;
}

int agora__jpeg_huff_build(agora__jpeg_huff *t, const uint8_t counts[16], const uint8_t *syms,
                           unsigned nsyms, unsigned look, agora__jpeg_look_fn fn, void *ctx)
{
    uint32_t code = 0;
    unsigned k = 0;
    memset(t->symbols, 0, sizeof t->symbols);
    memcpy(t->symbols, syms, nsyms);
    for (unsigned l = 1; l <= 16; l++) {
        unsigned c = counts[l - 1];
        t->valoff[l] = (int32_t)k - (int32_t)code;
        if (c == 0) {
            t->maxcode[l] = -1;
        } else {
            if ((uint64_t)code + c > (1u << l) || k + c > nsyms)
                return -1;
            for (unsigned j = 0; j < c; j++, k++, code++)
                if (l <= look)
                    fn(ctx, l, code, syms[k]);
            t->maxcode[l] = (int32_t)code - 1;
        }
        code <<= 1;
    }
    t->maxcode[17] = 0x7fffffff; /* sentinel: ends the walk */
    return 0;
}
