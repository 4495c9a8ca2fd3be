/*
 * Helpers shared by the example plugins (not part of the SDK): reading one sample of any
 * AGORA_PIXEL_* type as a double in stored units.
 */
#ifndef AGORA_EXAMPLES_COMMON_H
#define AGORA_EXAMPLES_COMMON_H

#include <stdint.h>
#include <string.h>

#include <agora/agora.h>

/* Bytes per sample of a pixel type, 0 if unknown. */
static inline uint32_t ex_sample_bytes(int32_t type)
{
    switch (type) {
    case AGORA_PIXEL_U8:
    case AGORA_PIXEL_I8:
        return 1;
    case AGORA_PIXEL_U16:
    case AGORA_PIXEL_I16:
        return 2;
    case AGORA_PIXEL_U32:
    case AGORA_PIXEL_I32:
    case AGORA_PIXEL_F32:
        return 4;
    case AGORA_PIXEL_F64:
        return 8;
    default:
        return 0;
    }
}

/* Sample i of a buffer of the given type (little-endian host assumed, as the ABI states). */
static inline double ex_sample(const void *data, int32_t type, uint64_t i)
{
    const uint8_t *p = (const uint8_t *)data;
    switch (type) {
    case AGORA_PIXEL_U8:
        return p[i];
    case AGORA_PIXEL_I8:
        return (int8_t)p[i];
    case AGORA_PIXEL_U16: {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        return v;
    }
    case AGORA_PIXEL_I16: {
        int16_t v;
        memcpy(&v, p + 2 * i, 2);
        return v;
    }
    case AGORA_PIXEL_U32: {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case AGORA_PIXEL_I32: {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case AGORA_PIXEL_F32: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return (double)v;
    }
    case AGORA_PIXEL_F64: {
        double v;
        memcpy(&v, p + 8 * i, 8);
        return v;
    }
    default:
        return 0.0;
    }
}

/* The rescale of one frame: its own since ABI 1.1 (frames of one series may differ, e.g. an
 * enhanced CT or a PET series), the image's on an older host. */
static inline void ex_frame_rescale(const agora_frame *fr, const agora_image *image, double *slope,
                                    double *intercept)
{
    if (AGORA_HAS(fr, agora_frame, rescale_intercept)) {
        *slope = fr->rescale_slope;
        *intercept = fr->rescale_intercept;
    } else {
        *slope = image->rescale_slope;
        *intercept = image->rescale_intercept;
    }
}

/* The UCUM unit of rescaled values: Hounsfield units for CT, arbitrary units otherwise. */
static inline const char *ex_rescaled_unit(const agora_image *image)
{
    if (strcmp(image->modality, "CT") == 0 ||
        (image->rescale_type != NULL && strcmp(image->rescale_type, "HU") == 0))
        return "[hnsf'U]";
    return "[arb'U]";
}

#endif
