/*
 * Transfer syntax table and the one entry point: validate params against out_len, join the
 * frame's fragments, dispatch to the decoder for the syntax. Everything the decoders rely on
 * (sizes bounded, out_len consistent) is checked here once.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_private.h"
#include "refusal.h"

typedef struct syntax {
    const char *uid;
    const char *name;
    agora__codec_decoder decode; /* NULL: known but not decoded here */
} syntax;

static const syntax syntaxes[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian (not compressed)", NULL},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian (not compressed)", NULL},
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", NULL},
    {"1.2.840.10008.1.2.1.99",
     "Deflated Explicit VR Little Endian (dataset deflate, not a pixel codec)", NULL},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian (Retired, not compressed)", NULL},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", agora__codec_jpeg_baseline_decode},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", agora__codec_jpeg_baseline_decode},
    {"1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5) (Retired)", NULL},
    {"1.2.840.10008.1.2.4.53",
     "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (Retired)", NULL},
    {"1.2.840.10008.1.2.4.54",
     "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9) (Retired)", NULL},
    {"1.2.840.10008.1.2.4.55",
     "JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (Retired)", NULL},
    {"1.2.840.10008.1.2.4.56",
     "JPEG Full Progression, Non-Hierarchical (Process 11 & 13) (Retired)", NULL},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)",
     agora__codec_jpeg_lossless_decode},
    {"1.2.840.10008.1.2.4.58", "JPEG Lossless, Non-Hierarchical (Process 15) (Retired)", NULL},
    {"1.2.840.10008.1.2.4.70",
     "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
     agora__codec_jpeg_lossless_decode},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", agora__codec_jpegls_decode},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression",
     agora__codec_jpegls_decode},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)",
     agora__codec_j2k_decode},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", agora__codec_j2k_decode},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)",
     NULL},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component Image Compression", NULL},
    {"1.2.840.10008.1.2.4.94", "JPIP Referenced", NULL},
    {"1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", NULL},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", NULL},
    {"1.2.840.10008.1.2.4.100.1", "Fragmentable MPEG2 Main Profile / Main Level", NULL},
    {"1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", NULL},
    {"1.2.840.10008.1.2.4.101.1", "Fragmentable MPEG2 Main Profile / High Level", NULL},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", NULL},
    {"1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", NULL},
    {"1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", NULL},
    {"1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", NULL},
    {"1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", NULL},
    {"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", NULL},
    {"1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", NULL},
    {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", NULL},
    {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", NULL},
    {"1.2.840.10008.1.2.4.112", "JPEG XL", NULL},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
     agora__codec_j2k_decode},
    {"1.2.840.10008.1.2.4.202",
     "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
     agora__codec_j2k_decode},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression",
     agora__codec_j2k_decode},
    {"1.2.840.10008.1.2.5", "RLE Lossless", agora__codec_rle_decode},
};

static const syntax *find_syntax(const char *uid)
{
    if (uid == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof syntaxes / sizeof syntaxes[0]; i++)
        if (strcmp(syntaxes[i].uid, uid) == 0)
            return &syntaxes[i];
    return NULL;
}

int agora__codec_supported(const char *transfer_syntax_uid)
{
    const syntax *s = find_syntax(transfer_syntax_uid);
    return s != NULL && s->decode != NULL;
}

const char *agora__codec_syntax_name(const char *transfer_syntax_uid)
{
    const syntax *s = find_syntax(transfer_syntax_uid);
    return s ? s->name : NULL;
}

/* Transfer syntax UIDs are at most 64 characters of digits and dots; anything else is echoed
 * only as "(invalid UID)" so a hostile value cannot smuggle text into messages. */
static const char *printable_uid(const char *uid)
{
    size_t n = strnlen(uid, 65);
    if (n == 0 || n > 64 || strspn(uid, "0123456789.") != n)
        return "(invalid UID)";
    return uid;
}

static int check_params(const agora__codec_params *p, size_t out_len, agora__error *err)
{
    if (p->rows == 0 || p->columns == 0 || p->rows > AGORA__CODEC_MAX_DIM ||
        p->columns > AGORA__CODEC_MAX_DIM)
        return agora__error_set(err, AGORA_EINVAL,
                                "frame size %ux%u is out of range 1..%u; check Rows and Columns",
                                p->rows, p->columns, AGORA__CODEC_MAX_DIM);
    if (p->samples_per_pixel != 1 && p->samples_per_pixel != 3 && p->samples_per_pixel != 4)
        return agora__error_set(err, AGORA_EINVAL,
                                "Samples per Pixel %u is not 1, 3 or 4; the image is malformed",
                                p->samples_per_pixel);
    if (p->bits_allocated != 8 && p->bits_allocated != 16 && p->bits_allocated != 32)
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                AGORA_REFUSAL("Bits Allocated %u is not supported for "
                                              "compressed pixel data (only 8, 16 and 32)"),
                                p->bits_allocated);
    if (p->bits_stored == 0 || p->bits_stored > p->bits_allocated)
        return agora__error_set(err, AGORA_EINVAL,
                                "Bits Stored %u is not in 1..Bits Allocated (%u); the image is "
                                "malformed",
                                p->bits_stored, p->bits_allocated);
    if (p->pixel_representation > 1)
        return agora__error_set(err, AGORA_EINVAL,
                                "Pixel Representation %u is not 0 or 1; the image is malformed",
                                p->pixel_representation);
    uint64_t need = (uint64_t)p->rows * p->columns * p->samples_per_pixel * (p->bits_allocated / 8);
    if (need > AGORA__CODEC_MAX_FRAME)
        return agora__error_set(err, AGORA_ELIMIT,
                                "a decoded frame of %llu bytes exceeds the %zu byte limit",
                                (unsigned long long)need, (size_t)AGORA__CODEC_MAX_FRAME);
    if (need != out_len)
        return agora__error_set(err, AGORA_EINVAL,
                                "output buffer is %zu bytes but the frame needs %llu; this is a "
                                "bug in the caller",
                                out_len, (unsigned long long)need);
    return 0;
}

/* Signed samples narrower than their container: codecs hand back the bits_stored-bit two's
 * complement pattern (possibly with stray high bits); make every sample a proper signed value of
 * the container width, which is what consumers of native Pixel Data expect. */
static void sign_extend(uint8_t *out, size_t out_len, unsigned bytes, unsigned bits)
{
    size_t n = out_len / bytes;
    for (size_t i = 0; i < n; i++) {
        uint8_t *d = out + i * bytes;
        uint32_t v = 0;
        for (unsigned b = 0; b < bytes; b++)
            v |= (uint32_t)d[b] << (8 * b);
        agora__codec_put(out, i, bytes, agora__codec_sext(v, bits));
    }
}

int agora__codec_decode_frame(const char *transfer_syntax_uid, const uint8_t *const *fragments,
                              const size_t *fragment_lengths, size_t n_fragments,
                              const agora__codec_params *params, uint8_t *out, size_t out_len,
                              char photometric_out[17], agora__error *err)
{
    if (transfer_syntax_uid == NULL || params == NULL || out == NULL || photometric_out == NULL ||
        (n_fragments > 0 && (fragments == NULL || fragment_lengths == NULL)))
        return agora__error_set(err, AGORA_EINVAL,
                                "codec: NULL argument; this is a bug in the caller");
    photometric_out[0] = '\0';
    const syntax *s = find_syntax(transfer_syntax_uid);
    if (s == NULL)
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                AGORA_REFUSAL("unknown transfer syntax %s; convert the image to "
                                              "an uncompressed or a supported compressed syntax"),
                                printable_uid(transfer_syntax_uid));
    if (s->decode == NULL)
        return agora__error_set(
            err, AGORA_EUNSUPPORTED,
            AGORA_REFUSAL("transfer syntax %s (%s) is not decoded by Agora; convert the image to a "
                          "supported syntax (e.g. with dcmdjpeg or gdcmconv --raw)"),
            s->name, s->uid);
    int rc = check_params(params, out_len, err);
    if (rc < 0)
        return rc;
    /* The photometric value is echoed into photometric_out: bound it to a DICOM CS (16 chars). */
    const char *pm = params->photometric ? params->photometric : "";
    size_t pm_len = strnlen(pm, 17);
    if (pm_len > 16 || strspn(pm, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ") != pm_len)
        return agora__error_set(err, AGORA_EINVAL,
                                "Photometric Interpretation is not a valid code string; the image "
                                "is malformed");
    memcpy(photometric_out, pm, pm_len);
    photometric_out[pm_len] = '\0';

    uint64_t total = 0;
    size_t nonempty = 0, last = 0;
    for (size_t i = 0; i < n_fragments; i++) {
        if (fragment_lengths[i] > 0 && fragments[i] == NULL)
            return agora__error_set(err, AGORA_EINVAL,
                                    "codec: NULL fragment; this is a bug in the caller");
        total += fragment_lengths[i];
        if (total > (uint64_t)SIZE_MAX / 2)
            return agora__error_set(err, AGORA_ELIMIT, "compressed frame is too large");
        if (fragment_lengths[i] > 0) {
            nonempty++;
            last = i;
        }
    }
    if (total == 0)
        return agora__error_set(err, AGORA_EINPUT,
                                "%s frame has no compressed data; the file is truncated or "
                                "malformed",
                                s->name);
    if (nonempty == 1) {
        rc = s->decode(fragments[last], fragment_lengths[last], params, out, out_len,
                       photometric_out, err);
    } else {
        /* A frame split over several fragments: decoders want one contiguous stream. The copy
         * is bounded by the input itself. */
        uint8_t *joined = malloc((size_t)total);
        if (joined == NULL)
            return agora__error_set(err, AGORA_ENOMEM,
                                    "out of memory joining %zu fragments (%llu bytes)", n_fragments,
                                    (unsigned long long)total);
        size_t off = 0;
        for (size_t i = 0; i < n_fragments; i++) {
            if (fragment_lengths[i] == 0)
                continue;
            memcpy(joined + off, fragments[i], fragment_lengths[i]);
            off += fragment_lengths[i];
        }
        rc = s->decode(joined, off, params, out, out_len, photometric_out, err);
        free(joined);
    }
    if (rc < 0) {
        if (err != NULL && err->code == 0)
            agora__error_set(err, rc, "%s decoding failed", s->name);
        return rc;
    }
    if (params->pixel_representation == 1 && params->bits_stored < params->bits_allocated)
        sign_extend(out, out_len, params->bits_allocated / 8, params->bits_stored);
    return 0;
}
