/*
 * JPEG-LS lossless and near-lossless (ITU-T T.87) via CharLS 2.4's C API, from memory.
 * CharLS writes samples in host byte order (1 byte up to 8 bits, 2 bytes above), interleaved for
 * line/sample interleave modes and plane by plane for interleave mode "none": the latter goes
 * through a bounded scratch buffer and is re-interleaved here. Any HP color transform in the
 * stream is undone by CharLS, so photometric_out stays the input photometric.
 */
#include <stdlib.h>
#include <string.h>

#include <charls/charls.h>

#include "codec_private.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "jpegls.c assumes a little-endian host (CharLS writes samples in host order)"
#endif

static int ls_fail(agora__error *err, const char *step, charls_jpegls_errc ec)
{
    return agora__error_set(err, AGORA_EINPUT, "JPEG-LS stream is invalid (%s): %s", step,
                            charls_get_error_message(ec));
}

int agora__codec_jpegls_decode(const uint8_t *src, size_t src_len, const agora__codec_params *p,
                               uint8_t *out, size_t out_len, char photometric_out[17],
                               agora__error *err)
{
    (void)photometric_out;
    uint8_t *scratch = NULL, *padded = NULL;
    /* CharLS 2.4.1 (Debian 12) can loop forever when the scan data ends without a marker (fixed
     * upstream after 2.4.2). A stream that does not end in EOI gets one appended, in a copy
     * bounded by the input, so truncated data ends in an error instead of a hang. */
    if (src_len < 2 || src[src_len - 2] != 0xFF || src[src_len - 1] != 0xD9) {
        padded = malloc(src_len + 2);
        if (padded == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory decoding JPEG-LS");
        memcpy(padded, src, src_len);
        padded[src_len] = 0xFF;
        padded[src_len + 1] = 0xD9;
        src = padded;
        src_len += 2;
    }
    charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
    if (dec == NULL) {
        free(padded);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory creating a JPEG-LS decoder");
    }
    int rc = 0;
    charls_jpegls_errc ec = charls_jpegls_decoder_set_source_buffer(dec, src, src_len);
    if (ec != CHARLS_JPEGLS_ERRC_SUCCESS) {
        rc = ls_fail(err, "source", ec);
        goto done;
    }
    ec = charls_jpegls_decoder_read_header(dec);
    if (ec != CHARLS_JPEGLS_ERRC_SUCCESS) {
        rc = ls_fail(err, "header", ec);
        goto done;
    }
    charls_frame_info fi;
    charls_interleave_mode ilv;
    if ((ec = charls_jpegls_decoder_get_frame_info(dec, &fi)) != CHARLS_JPEGLS_ERRC_SUCCESS ||
        (ec = charls_jpegls_decoder_get_interleave_mode(dec, &ilv)) != CHARLS_JPEGLS_ERRC_SUCCESS) {
        rc = ls_fail(err, "header", ec);
        goto done;
    }
    if (fi.width != p->columns || fi.height != p->rows ||
        (uint32_t)fi.component_count != p->samples_per_pixel) {
        rc = agora__error_set(err, AGORA_EINPUT,
                              "JPEG-LS stream is %ux%u with %d components but the DICOM attributes "
                              "say %ux%u with %u samples; the file is inconsistent",
                              fi.width, fi.height, fi.component_count, p->columns, p->rows,
                              p->samples_per_pixel);
        goto done;
    }
    unsigned ls_bytes = fi.bits_per_sample <= 8 ? 1 : 2;
    unsigned bytes = p->bits_allocated / 8;
    if (fi.bits_per_sample < 2 || fi.bits_per_sample > 16 || ls_bytes > bytes) {
        rc = agora__error_set(err, AGORA_EINPUT,
                              "JPEG-LS sample precision %d does not fit Bits Allocated %u; the "
                              "file is inconsistent",
                              fi.bits_per_sample, p->bits_allocated);
        goto done;
    }
    size_t need = 0;
    ec = charls_jpegls_decoder_get_destination_size(dec, 0, &need);
    size_t pixels = (size_t)p->rows * p->columns;
    size_t samples = pixels * p->samples_per_pixel;
    if (ec != CHARLS_JPEGLS_ERRC_SUCCESS || need != samples * ls_bytes) {
        rc = ec != CHARLS_JPEGLS_ERRC_SUCCESS
                 ? ls_fail(err, "size", ec)
                 : agora__error_set(err, AGORA_EINPUT, "JPEG-LS decoded size is unexpected");
        goto done;
    }
    int planar = ilv == CHARLS_INTERLEAVE_MODE_NONE && p->samples_per_pixel > 1;
    int direct = !planar && ls_bytes == bytes;
    if (!direct) {
        scratch = malloc(need);
        if (scratch == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory decoding JPEG-LS");
            goto done;
        }
    }
    ec = charls_jpegls_decoder_decode_to_buffer(dec, direct ? out : scratch,
                                                direct ? out_len : need, 0);
    if (ec != CHARLS_JPEGLS_ERRC_SUCCESS) {
        rc = ls_fail(err, "data", ec);
        goto done;
    }
    if (!direct) {
        unsigned spp = p->samples_per_pixel;
        for (size_t i = 0; i < samples; i++) {
            /* Output sample i is pixel i/spp, component i%spp; find it in the scratch layout. */
            size_t k = planar ? (i % spp) * pixels + i / spp : i;
            uint32_t v = ls_bytes == 1
                             ? scratch[k]
                             : (uint32_t)scratch[2 * k] | (uint32_t)scratch[2 * k + 1] << 8;
            agora__codec_put(out, i, bytes, v);
        }
    }
done:
    free(scratch);
    free(padded);
    charls_jpegls_decoder_destroy(dec);
    return rc;
}
