/*
 * JPEG 2000 (Part 1) and High-Throughput JPEG 2000 (Part 15, decoded by OpenJPEG >= 2.5) via
 * OpenJPEG from memory: a custom opj_stream whose read/skip/seek work over the caller's buffer.
 * Accepts a raw codestream (what DICOM requires) and, leniently, a JP2-wrapped one.
 *
 * OpenJPEG's message handlers are pointed at a per-call context, so nothing reaches stderr and
 * the last error text ends up in err. Samples come out as int32 per component; we store the low
 * bits_allocated bits (two's complement for signed streams), which also copes with files whose
 * J2K signedness disagrees with Pixel Representation. YBR_ICT / YBR_RCT name the codestream's
 * multi-component transform, which OpenJPEG undoes while decoding, so photometric_out becomes
 * "RGB" (what PS3.3 says the decompressed data is, and what GDCM reports). A stream labelled so
 * but coded without the transform is still RGB data in practice, so it is reported the same.
 *
 * Subsampled chroma (SIZ XRsiz/YRsiz of 2 on components 2 and 3, what DICOM calls YBR_FULL_422
 * for JPEG 2000) is upsampled to full resolution by replication, and the samples stay YBR (the
 * caller converts them). Subsampling under any other photometric (MONOCHROME, RGB, YBR_ICT,
 * YBR_RCT, whose component transform needs equal-size components) is refused: upsampling would
 * produce colours the file does not define.
 */
#include <stdlib.h>
#include <string.h>

#include <openjpeg.h>

#include "codec_private.h"
#include "refusal.h"

typedef struct mem_stream {
    const uint8_t *data;
    size_t len, pos;
    char msg[256]; /* last OpenJPEG error message */
} mem_stream;

static OPJ_SIZE_T ms_read(void *buf, OPJ_SIZE_T n, void *user)
{
    mem_stream *m = user;
    if (m->pos >= m->len)
        return (OPJ_SIZE_T)-1;
    size_t k = m->len - m->pos < n ? m->len - m->pos : n;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

static OPJ_OFF_T ms_skip(OPJ_OFF_T n, void *user)
{
    mem_stream *m = user;
    if (n < 0) {
        if ((uint64_t)-n > m->pos)
            return -1;
        m->pos -= (size_t)-n;
        return n;
    }
    if ((uint64_t)n > m->len - m->pos)
        n = (OPJ_OFF_T)(m->len - m->pos);
    m->pos += (size_t)n;
    return n;
}

static OPJ_BOOL ms_seek(OPJ_OFF_T off, void *user)
{
    mem_stream *m = user;
    if (off < 0 || (uint64_t)off > m->len)
        return OPJ_FALSE;
    m->pos = (size_t)off;
    return OPJ_TRUE;
}

static void on_error(const char *msg, void *user)
{
    mem_stream *m = user;
    agora__strlcpy(m->msg, msg, sizeof m->msg);
    size_t n = strlen(m->msg);
    while (n > 0 && (m->msg[n - 1] == '\n' || m->msg[n - 1] == '\r'))
        m->msg[--n] = '\0';
}

static void on_quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* OpenJPEG allocates per-tile coding parameters (kilobytes each) while reading the header, before
 * we can compare the image with the DICOM attributes; a hostile SIZ with 1x1 tiles would make
 * that gigabytes. So we read SIZ ourselves (s must start with SOC+SIZ) and bound the tile and
 * component counts first. */
#define MAX_TILES 4096u
static int check_siz(const uint8_t *s, size_t n, agora__error *err)
{
    if (n < 4 + 38 || s[0] != 0xFF || s[1] != 0x4F || s[2] != 0xFF || s[3] != 0x51)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG 2000 codestream does not start with SOC+SIZ; the data is "
                                "corrupt");
    const uint8_t *z = s + 4; /* Lsiz */
    uint64_t xsiz = be32(z + 4), ysiz = be32(z + 8), xo = be32(z + 12), yo = be32(z + 16);
    uint64_t xt = be32(z + 20), yt = be32(z + 24), xto = be32(z + 28), yto = be32(z + 32);
    unsigned csiz = (unsigned)z[36] << 8 | z[37];
    if (xt == 0 || yt == 0 || xsiz <= xo || ysiz <= yo || xto > xo || yto > yo || xsiz <= xto ||
        ysiz <= yto)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG 2000 image/tile geometry (SIZ) is invalid");
    uint64_t tiles = ((xsiz - xto + xt - 1) / xt) * ((ysiz - yto + yt - 1) / yt);
    if (tiles > MAX_TILES || csiz == 0 || csiz > AGORA__CODEC_MAX_SPP)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG 2000 stream has %llu tiles and %u components (limits %u and "
                                "%u); the data is corrupt or not a DICOM image",
                                (unsigned long long)tiles, csiz, MAX_TILES, AGORA__CODEC_MAX_SPP);
    return 0;
}

/* The contiguous codestream box (jp2c) of a JP2 file: walk the top-level boxes as OpenJPEG does.
 * Returns its content offset, or 0 when there is none. */
static size_t find_jp2c(const uint8_t *s, size_t n, size_t *len)
{
    size_t off = 0;
    while (n - off >= 8) {
        uint64_t box = be32(s + off), hdr = 8;
        if (box == 1) {
            if (n - off < 16)
                return 0;
            box = (uint64_t)be32(s + off + 8) << 32 | be32(s + off + 12);
            hdr = 16;
        } else if (box == 0) {
            box = n - off; /* extends to the end */
        }
        if (box < hdr || box > n - off)
            return 0;
        if (memcmp(s + off + 4, "jp2c", 4) == 0) {
            *len = (size_t)(box - hdr);
            return off + (size_t)hdr;
        }
        off += (size_t)box;
    }
    return 0;
}

static const uint8_t jp2_sig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 13, 10, 0x87, 10};

int agora__codec_j2k_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                            uint8_t *out, size_t out_len, char photometric_out[17],
                            agora__error *err)
{
    (void)out_len;
    OPJ_CODEC_FORMAT fmt;
    if (src_len >= 12 && memcmp(src, jp2_sig, 12) == 0)
        fmt = OPJ_CODEC_JP2;
    else if (src_len >= 4 && src[0] == 0xFF && src[1] == 0x4F && src[2] == 0xFF && src[3] == 0x51)
        fmt = OPJ_CODEC_J2K;
    else
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG 2000 frame is neither a codestream (SOC+SIZ) nor JP2; the "
                                "data is corrupt");

    int rc;
    if (fmt == OPJ_CODEC_JP2) {
        size_t cs_len = 0, cs = find_jp2c(src, src_len, &cs_len);
        rc = cs == 0
                 ? agora__error_set(err, AGORA_EINPUT,
                                    "JP2 file has no codestream box (jp2c); the data is corrupt")
                 : check_siz(src + cs, cs_len, err);
    } else {
        rc = check_siz(src, src_len, err);
    }
    if (rc < 0)
        return rc;
    mem_stream *m = calloc(1, sizeof *m);
    if (m == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory decoding JPEG 2000");
    m->data = src;
    m->len = src_len;
    opj_codec_t *codec = opj_create_decompress(fmt);
    opj_stream_t *st = opj_stream_create(64 * 1024, OPJ_TRUE);
    opj_image_t *img = NULL;
    if (codec == NULL || st == NULL) {
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory creating a JPEG 2000 decoder");
        goto done;
    }
    opj_set_error_handler(codec, on_error, m);
    opj_set_warning_handler(codec, on_quiet, m);
    opj_set_info_handler(codec, on_quiet, m);
    opj_stream_set_user_data(st, m, NULL);
    opj_stream_set_user_data_length(st, (OPJ_UINT64)src_len);
    opj_stream_set_read_function(st, ms_read);
    opj_stream_set_skip_function(st, ms_skip);
    opj_stream_set_seek_function(st, ms_seek);
    opj_dparameters_t dp;
    opj_set_default_decoder_parameters(&dp);
    /* Strict mode: a truncated codestream is an error, not a silently blurred partial image.
     * No worker threads, whatever OPJ_NUM_THREADS says: the runner decodes under a seccomp
     * policy, and callers parallelize across frames themselves. */
    if (!opj_setup_decoder(codec, &dp) || !opj_decoder_set_strict_mode(codec, OPJ_TRUE) ||
        !opj_codec_set_threads(codec, 0) || !opj_read_header(st, codec, &img) || img == NULL) {
        rc = agora__error_set(err, AGORA_EINPUT, "JPEG 2000 header is invalid: %s",
                              m->msg[0] ? m->msg : "unreadable");
        goto done;
    }
    /* Check the geometry before decoding: it bounds everything OpenJPEG will allocate. */
    unsigned w = img->x1 - img->x0, h = img->y1 - img->y0;
    if (w != p->columns || h != p->rows || img->numcomps != p->samples_per_pixel) {
        rc = agora__error_set(err, AGORA_EINPUT,
                              "JPEG 2000 stream is %ux%u with %u components but the DICOM "
                              "attributes say %ux%u with %u samples; the file is inconsistent",
                              w, h, img->numcomps, p->columns, p->rows, p->samples_per_pixel);
        goto done;
    }
    int ybr =
        strcmp(photometric_out, "YBR_FULL") == 0 || strcmp(photometric_out, "YBR_FULL_422") == 0;
    for (unsigned c = 0; c < img->numcomps; c++) {
        const opj_image_comp_t *ic = &img->comps[c];
        if ((ic->dx != 1 || ic->dy != 1) && !(ybr && img->numcomps == 3 && c > 0)) {
            rc = agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("JPEG 2000 stream has subsampled components but its Photometric "
                              "Interpretation is not YBR_FULL or YBR_FULL_422, so upsampling "
                              "would invent colours; check the file's photometric, or "
                              "decompress it with gdcmconv --raw"));
            goto done;
        }
        if (ic->dx > 4 || ic->dy > 4) {
            rc = agora__error_set(
                err, AGORA_EUNSUPPORTED,
                AGORA_REFUSAL("JPEG 2000 chroma subsampling beyond 4:1 is not supported; "
                              "decompress the image with gdcmconv --raw"));
            goto done;
        }
        if (ic->prec < 1 || ic->prec > p->bits_allocated) {
            rc = agora__error_set(err, AGORA_EINPUT,
                                  "JPEG 2000 component precision %u exceeds Bits Allocated %u; "
                                  "the file is inconsistent",
                                  ic->prec, p->bits_allocated);
            goto done;
        }
    }
    if (!opj_decode(codec, st, img) || !opj_end_decompress(codec, st)) {
        rc = agora__error_set(err, AGORA_EINPUT, "JPEG 2000 data is corrupt: %s",
                              m->msg[0] ? m->msg : "decoding failed");
        goto done;
    }
    for (unsigned c = 0; c < img->numcomps; c++) {
        const opj_image_comp_t *ic = &img->comps[c];
        /* A component covers the reference grid divided by its subsampling (T.800 B.2). */
        unsigned cx0 = (img->x0 + ic->dx - 1) / ic->dx, cy0 = (img->y0 + ic->dy - 1) / ic->dy;
        unsigned cw = (img->x1 + ic->dx - 1) / ic->dx - cx0;
        unsigned ch = (img->y1 + ic->dy - 1) / ic->dy - cy0;
        if (ic->data == NULL || ic->w != cw || ic->h != ch) {
            rc = agora__error_set(err, AGORA_EINPUT,
                                  "JPEG 2000 decoding produced an incomplete component");
            goto done;
        }
    }
    const unsigned bytes = p->bits_allocated / 8, spp = img->numcomps;
    const size_t pixels = (size_t)w * h;
    for (unsigned c = 0; c < spp; c++) {
        const opj_image_comp_t *ic = &img->comps[c];
        const OPJ_INT32 *d = ic->data;
        if (ic->dx != 1 || ic->dy != 1) {
            /* Replicate each chroma sample over the pixels it covers on the reference grid;
             * with an odd image offset the first pixels precede the first sample: clamp. */
            unsigned cx0 = (img->x0 + ic->dx - 1) / ic->dx, cy0 = (img->y0 + ic->dy - 1) / ic->dy;
            for (unsigned y = 0; y < h; y++) {
                unsigned sy = (img->y0 + y) / ic->dy;
                sy = sy < cy0 ? 0 : sy - cy0 >= ic->h ? ic->h - 1 : sy - cy0;
                for (unsigned x = 0; x < w; x++) {
                    unsigned sx = (img->x0 + x) / ic->dx;
                    sx = sx < cx0 ? 0 : sx - cx0 >= ic->w ? ic->w - 1 : sx - cx0;
                    uint32_t v = (uint32_t)d[(size_t)sy * ic->w + sx];
                    agora__codec_put(out, ((size_t)y * w + x) * spp + c, bytes, v);
                }
            }
            continue;
        }
        if (bytes == 1) {
            for (size_t i = 0; i < pixels; i++)
                out[i * spp + c] = (uint8_t)d[i];
        } else {
            for (size_t i = 0; i < pixels; i++)
                agora__codec_put(out, i * spp + c, bytes, (uint32_t)d[i]);
        }
    }
    if (spp == 3 &&
        (strcmp(photometric_out, "YBR_ICT") == 0 || strcmp(photometric_out, "YBR_RCT") == 0))
        agora__strlcpy(photometric_out, "RGB", 17);
done:
    if (img != NULL)
        opj_image_destroy(img);
    if (st != NULL)
        opj_stream_destroy(st);
    if (codec != NULL)
        opj_destroy_codec(codec);
    free(m);
    return rc;
}
