/*
 * JPEG Baseline (Process 1) and Extended 8-bit (Process 2 & 4) via libjpeg-turbo from memory.
 *
 * Color: we follow DCMTK's default (dcmdjpeg +cp, "convert if YCbCr photometric"): when the DICOM
 * Photometric Interpretation is YBR_FULL, YBR_FULL_422 or YBR_PARTIAL_422 the stream is decoded
 * as YCbCr and converted to RGB (photometric_out "RGB", chroma upsampled as libjpeg does, full
 * range formula as DCMTK uses even for PARTIAL); for any other
 * photometric (RGB, MONOCHROME*, ...) libjpeg is told the color space is unknown so component
 * values come out exactly as coded, whatever JFIF/Adobe markers claim. This matches dcmdjpeg on
 * the pydicom corpus byte for byte (see tests/integration/codec).
 *
 * 12-bit Extended JPEG (Process 4) goes to our own decoder (jpeg_ext12.c): Debian's
 * libjpeg-turbo is built for 8-bit samples only.
 * Only sequential Huffman frames (SOF0/SOF1) are accepted; progressive and arithmetic streams
 * are not valid for these transfer syntaxes and are refused before libjpeg sees them.
 *
 * libjpeg reports fatal errors through error_exit, which must not return: we longjmp back into
 * this file only, after which the decompressor is destroyed; no jmp_buf escapes this file.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "codec_private.h"
#include "jpeg_ext12.h"
#include "refusal.h"

typedef struct err_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg casts cinfo->err to this */
    jmp_buf jump;
    int truncated;
    char msg[JMSG_LENGTH_MAX];
} err_ctx;

static void on_error_exit(j_common_ptr cinfo)
{
    err_ctx *e = (err_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings: libjpeg keeps going on corrupt data; we note truncation (which would otherwise yield
 * a silently gray-padded image) and stay silent on stderr. */
static void on_emit_message(j_common_ptr cinfo, int level)
{
    err_ctx *e = (err_ctx *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        e->truncated = 1;
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* Find the frame header before libjpeg does, to refuse what it must not decode. Returns the SOF
 * marker (0xC0..0xCF) and its precision, or -1 if none is found. */
static int find_sof(const uint8_t *s, size_t n, unsigned *precision, unsigned *height)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (s[i] != 0xFF)
            return -1;
        unsigned m = s[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            i += 2;
            continue;
        }
        size_t len = (size_t)s[i + 2] << 8 | s[i + 3];
        if (len < 2)
            return -1;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (i + 7 > n)
                return -1;
            *precision = s[i + 4];
            *height = (unsigned)s[i + 5] << 8 | s[i + 6];
            return (int)m;
        }
        if (m == 0xDA || m == 0xD9)
            return -1;
        i += 2 + len;
    }
    return -1;
}

/* The photometric values DCMTK treats as YCbCr-coded JPEG (and converts to RGB). */
static int is_ybr(const char *pm)
{
    return strcmp(pm, "YBR_FULL") == 0 || strcmp(pm, "YBR_FULL_422") == 0 ||
           strcmp(pm, "YBR_PARTIAL_422") == 0;
}

typedef struct job {
    struct jpeg_decompress_struct cinfo;
    err_ctx err;
    JSAMPROW row; /* one output row, only when widening to 16 bits */
} job;

int agora__codec_jpeg_baseline_decode(const uint8_t *src, size_t src_len,
                                      const agora__codec_params *p, uint8_t *out, size_t out_len,
                                      char photometric_out[17], agora__error *err)
{
    (void)out_len;
    if (src_len < 4 || src[0] != 0xFF || src[1] != 0xD8)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG stream has no start-of-image marker; the data is corrupt");
    unsigned precision = 0, height = 0;
    int sof = find_sof(src, src_len, &precision, &height);
    if (sof < 0)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG stream has no frame header (SOF); the data is corrupt or "
                                "truncated");
    if (sof != 0xC0 && sof != 0xC1)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG stream is process SOF%d, not baseline/extended sequential "
                                "Huffman; the transfer syntax does not match the data",
                                sof - 0xC0);
    if (precision == 12)
        return agora__codec_jpeg_ext12_decode(src, src_len, p, out, out_len, photometric_out, err);
    if (height == 0)
        return agora__error_set(
            err, AGORA_EUNSUPPORTED,
            AGORA_REFUSAL("8-bit JPEG stream defines its height with a DNL marker, which the "
                          "system libjpeg does not decode; decompress it with dcmdjpeg"));
    if (precision != 8)
        return agora__error_set(err, AGORA_EINPUT,
                                "JPEG stream has sample precision %u; DCT JPEG is 8 or 12 bits, "
                                "the data is corrupt",
                                precision);
    if (src_len > 0xFFFFFFFFu)
        return agora__error_set(err, AGORA_ELIMIT, "JPEG stream is larger than 4 GiB");

    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory decoding JPEG");
    const unsigned bytes = p->bits_allocated / 8;
    const unsigned spp = p->samples_per_pixel;
    const size_t row_len = (size_t)p->columns * spp;
    int rc = 0;
    j->cinfo.err = jpeg_std_error(&j->err.pub);
    j->err.pub.error_exit = on_error_exit;
    j->err.pub.emit_message = on_emit_message;
    j->err.pub.output_message = on_output_message;
    if (setjmp(j->err.jump)) {
        rc = agora__error_set(err, AGORA_EINPUT, "JPEG stream is corrupt: %s", j->err.msg);
        goto done;
    }
    jpeg_create_decompress(&j->cinfo);
    /* Bound libjpeg's own allocations to what a frame of this size can need. */
    j->cinfo.mem->max_memory_to_use = (long)(row_len * p->rows * 4 + ((size_t)1 << 20));
    jpeg_mem_src(&j->cinfo, src, (unsigned long)src_len);
    if (jpeg_read_header(&j->cinfo, TRUE) != JPEG_HEADER_OK) {
        rc = agora__error_set(err, AGORA_EINPUT, "JPEG stream has no image");
        goto done;
    }
    if (j->cinfo.image_width != p->columns || j->cinfo.image_height != p->rows ||
        (unsigned)j->cinfo.num_components != spp) {
        rc = agora__error_set(err, AGORA_EINPUT,
                              "JPEG stream is %ux%u with %d components but the DICOM attributes "
                              "say %ux%u with %u samples; the file is inconsistent",
                              j->cinfo.image_width, j->cinfo.image_height, j->cinfo.num_components,
                              p->columns, p->rows, spp);
        goto done;
    }
    if (spp == 3 && is_ybr(photometric_out)) {
        j->cinfo.jpeg_color_space = JCS_YCbCr;
        j->cinfo.out_color_space = JCS_RGB;
        agora__strlcpy(photometric_out, "RGB", 17);
    } else if (spp == 1) {
        j->cinfo.jpeg_color_space = JCS_GRAYSCALE;
        j->cinfo.out_color_space = JCS_GRAYSCALE;
    } else {
        j->cinfo.jpeg_color_space = JCS_UNKNOWN;
        j->cinfo.out_color_space = JCS_UNKNOWN;
    }
    /* DCMTK decodes with libjpeg's default (islow) IDCT and fancy upsampling; keep those. */
    j->cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&j->cinfo);
    if ((unsigned)j->cinfo.output_components != spp || j->cinfo.output_width != p->columns ||
        j->cinfo.output_height != p->rows) {
        rc = agora__error_set(err, AGORA_EINPUT, "JPEG output shape differs from the attributes");
        goto done;
    }
    if (bytes != 1) {
        j->row = malloc(row_len);
        if (j->row == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory decoding JPEG");
            goto done;
        }
    }
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        size_t y = j->cinfo.output_scanline;
        JSAMPROW dst = bytes == 1 ? out + y * row_len : j->row;
        if (jpeg_read_scanlines(&j->cinfo, &dst, 1) != 1) {
            rc = agora__error_set(err, AGORA_EINPUT, "JPEG stream ends early");
            goto done;
        }
        if (bytes != 1)
            for (size_t i = 0; i < row_len; i++)
                agora__codec_put(out, y * row_len + i, bytes, j->row[i]);
    }
    if (j->err.truncated) {
        rc = agora__error_set(err, AGORA_EINPUT,
                              "JPEG stream is truncated (the image would be padded); the file is "
                              "incomplete");
        goto done;
    }
    jpeg_finish_decompress(&j->cinfo);
done:
    jpeg_destroy_decompress(&j->cinfo);
    free(j->row);
    free(j);
    return rc;
}
