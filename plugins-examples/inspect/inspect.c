/*
 * inspect — the developer's window into exactly what a plugin receives. Every property of the
 * image view and of every frame buffer is reported as a measurement named after it, and every
 * granted attribute as a finding coded in the private scheme "99AGORA-INSPECT" (code = DICOM
 * keyword, meaning = value). Nothing is interpreted: what you see is what the host handed in.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common.h"

static const agora_host *host;

static int32_t inspect_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t num(agora_job *job, const char *name, double value, const char *unit, int32_t frame)
{
    if (!isfinite(value))
        return AGORA_OK; /* NaN means "absent" in the view; the summary lists it */
    agora_measurement m = {sizeof m};
    m.name = name;
    m.value = value;
    m.unit = unit;
    m.frame = frame;
    m.region = AGORA_NONE;
    return host->add_measurement(job, &m);
}

static int32_t text(agora_job *job, const char *key, const char *value)
{
    agora_finding f = {sizeof f};
    f.scheme = "99AGORA-INSPECT";
    f.code = key;
    f.meaning = value[0] != '\0' ? value : "(empty)";
    f.confidence = 1.0;
    f.frame = AGORA_NONE;
    f.region = AGORA_NONE;
    return host->add_finding(job, &f);
}

/* The first sample of a frame buffer as stored (little-endian, the image's pixel type). */
static double first_sample(const agora_frame *fr, int32_t type)
{
    const uint8_t *p = fr->data;
    union {
        uint8_t b[8];
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        double f64;
    } v;
    size_t n = type == AGORA_PIXEL_U8 || type == AGORA_PIXEL_I8     ? 1
               : type == AGORA_PIXEL_U16 || type == AGORA_PIXEL_I16 ? 2
               : type == AGORA_PIXEL_F64                            ? 8
                                                                    : 4;
    if (p == NULL || fr->size_bytes < n)
        return NAN;
    memcpy(v.b, p, n); /* hosts are little-endian (x86_64, aarch64) */
    switch (type) {
    case AGORA_PIXEL_U8:
        return v.b[0];
    case AGORA_PIXEL_I8:
        return (int8_t)v.b[0];
    case AGORA_PIXEL_U16:
        return v.u16;
    case AGORA_PIXEL_I16:
        return v.i16;
    case AGORA_PIXEL_U32:
        return v.u32;
    case AGORA_PIXEL_I32:
        return v.i32;
    case AGORA_PIXEL_F32:
        return v.f32;
    case AGORA_PIXEL_F64:
        return v.f64;
    default:
        return NAN;
    }
}

static int32_t inspect_process(void *state, agora_job *job, const agora_image *im)
{
    (void)state;
    int32_t rc = AGORA_OK;
#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((rc = (x)) != AGORA_OK)                                                                \
            return rc;                                                                             \
    } while (0)
    TRY(num(job, "image.struct_size", im->struct_size, "By", AGORA_NONE));
    TRY(num(job, "image.rows", im->rows, "1", AGORA_NONE));
    TRY(num(job, "image.columns", im->columns, "1", AGORA_NONE));
    TRY(num(job, "image.frames", im->frames, "1", AGORA_NONE));
    TRY(num(job, "image.samples_per_pixel", im->samples_per_pixel, "1", AGORA_NONE));
    TRY(num(job, "image.pixel_type", im->pixel_type, "1", AGORA_NONE));
    TRY(num(job, "image.bits_stored", im->bits_stored, "1", AGORA_NONE));
    TRY(num(job, "image.photometric", im->photometric, "1", AGORA_NONE));
    TRY(num(job, "image.pixel_spacing.row", im->pixel_spacing[0], "mm", AGORA_NONE));
    TRY(num(job, "image.pixel_spacing.column", im->pixel_spacing[1], "mm", AGORA_NONE));
    TRY(num(job, "image.slice_thickness", im->slice_thickness, "mm", AGORA_NONE));
    TRY(num(job, "image.spacing_between_slices", im->spacing_between_slices, "mm", AGORA_NONE));
    TRY(num(job, "image.rescale_slope", im->rescale_slope, "1", AGORA_NONE));
    TRY(num(job, "image.rescale_intercept", im->rescale_intercept, "1", AGORA_NONE));
    TRY(text(job, "image.rescale_type", im->rescale_type));
    TRY(text(job, "image.modality", im->modality));
    TRY(text(job, "image.study_uid", im->study_uid));
    TRY(text(job, "image.series_uid", im->series_uid));

    static const char *axes[] = {"x", "y", "z"};
    for (uint32_t i = 0; i < im->frames; i++) {
        const agora_frame *fr = host->frame(job, i);
        if (fr == NULL) {
            host->set_error(job, "host returned no frame for an index below image.frames");
            return AGORA_EINTERNAL;
        }
        char name[64];
        TRY(num(job, "frame.size_bytes", (double)fr->size_bytes, "By", (int32_t)i));
        TRY(num(job, "frame.first_sample", first_sample(fr, im->pixel_type), "1", (int32_t)i));
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "frame.position.%s", axes[k]);
            TRY(num(job, name, fr->position[k], "mm", (int32_t)i));
        }
        for (int k = 0; k < 6; k++) {
            snprintf(name, sizeof name, "frame.orientation.%d", k);
            TRY(num(job, name, fr->orientation[k], "1", (int32_t)i));
        }
        if (AGORA_HAS(fr, agora_frame, rescale_intercept)) { /* ABI 1.1 */
            TRY(num(job, "frame.rescale_slope", fr->rescale_slope, "1", (int32_t)i));
            TRY(num(job, "frame.rescale_intercept", fr->rescale_intercept, "1", (int32_t)i));
        }
        snprintf(name, sizeof name, "frame[%u].sop_instance_uid", i);
        TRY(text(job, name, fr->sop_instance_uid));
    }

    uint32_t n = host->attr_count(job);
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        TRY(host->attr_at(job, i, &k, &v));
        TRY(text(job, k, v));
    }
    char summary[200];
    snprintf(summary, sizeof summary,
             "%u frame(s), %u granted attribute(s), pixel type %d, photometric %d", im->frames, n,
             im->pixel_type, im->photometric);
    return host->set_summary(job, summary);
#undef TRY
}

static const agora_plugin inspect_plugin = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.examples.inspect",
    .version = "1.0.0",
    .init = inspect_init,
    .process = inspect_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &inspect_plugin;
}
