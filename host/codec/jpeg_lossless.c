/* Decoder placeholder until the real one lands in this branch. */
#include "codec_private.h"

int agora__codec_jpeg_lossless_decode(const uint8_t *src, size_t src_len,
                                      const agora__codec_params *p, uint8_t *out, size_t out_len,
                                      char photometric_out[17], agora__error *err)
{
    (void)src;
    (void)src_len;
    (void)p;
    (void)out;
    (void)out_len;
    (void)photometric_out;
    return agora__error_set(err, AGORA_EUNSUPPORTED, "decoder not built yet");
}
