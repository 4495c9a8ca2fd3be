/*
 * stats — per-series statistics of the rescaled values (slope * stored + intercept): count,
 * minimum, maximum, mean, standard deviation, median, 5th and 95th percentiles; one measurement
 * per statistic. Colour images: all samples of all channels together.
 *
 * Percentiles use a histogram of stored values for 8/16-bit data (exact, one pass, 256 KiB) and
 * are omitted for 32-bit and floating-point data (logged), which would need a copy of the volume.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common.h"

static const agora_host *host;

static int32_t stats_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t add(agora_job *job, const char *name, double value, const char *unit)
{
    agora_measurement m = {sizeof m};
    m.name = name;
    m.value = value;
    m.unit = unit;
    m.frame = AGORA_NONE;
    m.region = AGORA_NONE;
    return host->add_measurement(job, &m);
}

/* Stored value at a given rank (0-based) in the histogram; offset maps bins to values. */
static double hist_rank(const uint64_t *hist, size_t bins, int64_t offset, uint64_t rank)
{
    uint64_t seen = 0;
    for (size_t b = 0; b < bins; b++) {
        seen += hist[b];
        if (seen > rank)
            return (double)((int64_t)b + offset);
    }
    return (double)((int64_t)bins - 1 + offset);
}

static int32_t stats_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    uint32_t sb = ex_sample_bytes(image->pixel_type);
    if (sb == 0) {
        host->set_error(job, "unknown pixel type");
        return AGORA_EINPUT;
    }
    uint64_t per_frame = (uint64_t)image->rows * image->columns * image->samples_per_pixel;
    int use_hist = sb <= 2 && image->pixel_type != AGORA_PIXEL_F32;
    int is_signed = image->pixel_type == AGORA_PIXEL_I8 || image->pixel_type == AGORA_PIXEL_I16;
    size_t bins = sb == 1 ? 256 : 65536;
    int64_t offset = is_signed ? -(int64_t)(bins / 2) : 0;
    uint64_t *hist = NULL;
    if (use_hist) {
        hist = calloc(bins, sizeof *hist);
        if (hist == NULL)
            return AGORA_ENOMEM;
    }

    /* Statistics are gathered on stored values and mapped through one rescale at the end, so
     * a series whose frames differ in rescale is refused rather than reported wrong. */
    for (uint32_t f = 0; f < image->frames; f++) {
        double fs, fb;
        const agora_frame *fr = host->frame(job, f);
        if (fr == NULL)
            break;
        ex_frame_rescale(fr, image, &fs, &fb);
        if (fs != image->rescale_slope || fb != image->rescale_intercept) {
            free(hist);
            host->set_error(job, "the frames of this series differ in rescale slope or "
                                 "intercept; stats maps one rescale over the whole series, so "
                                 "run it on a series whose frames share one");
            return AGORA_EINPUT;
        }
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0.0, sumsq = 0.0;
    uint64_t n = 0;
    for (uint32_t f = 0; f < image->frames; f++) {
        const agora_frame *fr = host->frame(job, f);
        if (fr == NULL || fr->size_bytes < per_frame * sb) {
            free(hist);
            host->set_error(job, "frame buffer smaller than rows*columns*samples");
            return AGORA_EINPUT;
        }
        for (uint64_t i = 0; i < per_frame; i++) {
            double v = ex_sample(fr->data, image->pixel_type, i);
            if (!isfinite(v))
                continue;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
            sumsq += v * v;
            n++;
            if (hist != NULL)
                hist[(size_t)((int64_t)v - offset)]++;
        }
        if ((f & 15) == 15 && host->progress(job, (double)(f + 1) / image->frames) ==
                                  AGORA_ECANCELLED) {
            free(hist);
            return AGORA_ECANCELLED;
        }
    }
    if (n == 0) {
        free(hist);
        host->set_error(job, "the series has no finite samples");
        return AGORA_EINPUT;
    }

    /* Rescale is linear, so statistics of stored values map through it (a negative slope swaps
     * minimum and maximum). */
    double s = image->rescale_slope, b = image->rescale_intercept;
    double mean = sum / (double)n;
    double var = sumsq / (double)n - mean * mean;
    double sd = sqrt(var > 0 ? var : 0) * fabs(s);
    double rmin = s >= 0 ? lo * s + b : hi * s + b;
    double rmax = s >= 0 ? hi * s + b : lo * s + b;
    const char *unit = ex_rescaled_unit(image);

    int32_t rc = AGORA_OK;
    if (rc == AGORA_OK)
        rc = add(job, "sample count", (double)n, "1");
    if (rc == AGORA_OK)
        rc = add(job, "minimum", rmin, unit);
    if (rc == AGORA_OK)
        rc = add(job, "maximum", rmax, unit);
    if (rc == AGORA_OK)
        rc = add(job, "mean", mean * s + b, unit);
    if (rc == AGORA_OK)
        rc = add(job, "standard deviation", sd, unit);
    if (rc == AGORA_OK && hist != NULL) {
        double med = hist_rank(hist, bins, offset, (n - 1) / 2);
        double p5 = hist_rank(hist, bins, offset, (uint64_t)((double)(n - 1) * 0.05));
        double p95 = hist_rank(hist, bins, offset, (uint64_t)((double)(n - 1) * 0.95));
        if (s < 0) {
            double t = p5;
            p5 = p95;
            p95 = t;
        }
        rc = add(job, "median", med * s + b, unit);
        if (rc == AGORA_OK)
            rc = add(job, "5th percentile", p5 * s + b, unit);
        if (rc == AGORA_OK)
            rc = add(job, "95th percentile", p95 * s + b, unit);
    } else if (rc == AGORA_OK) {
        host->log(host, job, AGORA_LOG_INFO,
                  "percentiles skipped: only computed for 8- and 16-bit integer data");
    }
    free(hist);
    if (rc != AGORA_OK)
        return rc;
    char text[160];
    snprintf(text, sizeof text, "%llu samples, mean %.2f, range %.2f..%.2f %s",
             (unsigned long long)n, mean * s + b, rmin, rmax, unit);
    return host->set_summary(job, text);
}

static const agora_plugin stats_plugin = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.examples.stats",
    .version = "1.0.0",
    .init = stats_init,
    .process = stats_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &stats_plugin;
}
