/*
 * threshold — a real (if simple) segmentation: voxels whose rescaled value lies in a window are
 * foreground; 3-D connected components (6-connectivity) are found across frames; the largest
 * components (up to 255, ranked by size) are returned as a label mask; the largest gets a
 * bounding-box region on its central frame and its volume in mL.
 *
 * Window: CT uses [200, 3000] HU (bone); other modalities use Otsu's threshold on the stored
 * values (no upper bound). Memory: two bytes per voxel plus a queue that is at most four bytes
 * per voxel of the largest component.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"

#define MAX_LABELS 255

static const agora_host *host;

typedef struct component {
    uint64_t seed;
    uint64_t size;
} component;

typedef struct queue {
    uint32_t *v;
    uint64_t cap, head, tail; /* ring buffer; capacity grows by doubling */
} queue;

static int q_push(queue *q, uint32_t x)
{
    if (q->tail - q->head == q->cap) {
        uint64_t ncap = q->cap ? q->cap * 2 : 4096;
        uint32_t *nv = malloc(ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        for (uint64_t i = 0; i < q->cap; i++)
            nv[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = nv;
        q->tail = q->tail - q->head;
        q->head = 0;
        q->cap = ncap;
    }
    q->v[q->tail++ % q->cap] = x;
    return 0;
}

static uint32_t q_pop(queue *q)
{
    return q->v[q->head++ % q->cap];
}

static int32_t threshold_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

/* Otsu's threshold over a 256-bin histogram of stored values between lo and hi. */
static double otsu(const agora_image *image, agora_job *job, double lo, double hi)
{
    uint64_t hist[256] = {0};
    uint64_t per = (uint64_t)image->rows * image->columns;
    double scale = hi > lo ? 255.0 / (hi - lo) : 0.0;
    for (uint32_t f = 0; f < image->frames; f++) {
        const agora_frame *fr = host->frame(job, f);
        for (uint64_t i = 0; i < per; i++)
            hist[(int)((ex_sample(fr->data, image->pixel_type, i) - lo) * scale)]++;
    }
    uint64_t total = per * image->frames;
    double sum = 0;
    for (int i = 0; i < 256; i++)
        sum += i * (double)hist[i];
    double sumb = 0, best = -1;
    uint64_t wb = 0;
    int besti = 128;
    for (int i = 0; i < 256; i++) {
        wb += hist[i];
        if (wb == 0 || wb == total)
            continue;
        sumb += i * (double)hist[i];
        double mb = sumb / wb, mf = (sum - sumb) / (total - wb);
        double between = (double)wb * (double)(total - wb) * (mb - mf) * (mb - mf);
        if (between > best) {
            best = between;
            besti = i;
        }
    }
    return lo + (besti + 0.5) / (scale > 0 ? scale : 1.0);
}

/* Breadth-first flood of the component containing seed. state: 1 = unvisited foreground,
 * 2 = visited. When out is not NULL, writes label there. Returns the size or 0 on OOM. */
static uint64_t flood(uint8_t *state, uint8_t *out, uint8_t label, uint64_t seed, uint32_t cols,
                      uint32_t rows, uint32_t frames, queue *q, uint64_t bbox[6])
{
    uint64_t plane = (uint64_t)rows * cols, size = 0;
    q->head = q->tail = 0;
    state[seed] = 2;
    if (q_push(q, (uint32_t)seed) != 0)
        return 0;
    while (q->head != q->tail) {
        uint64_t v = q_pop(q);
        size++;
        if (out != NULL)
            out[v] = label;
        uint64_t z = v / plane, y = (v % plane) / cols, x = v % cols;
        if (bbox != NULL) {
            bbox[0] = x < bbox[0] ? x : bbox[0];
            bbox[1] = y < bbox[1] ? y : bbox[1];
            bbox[2] = z < bbox[2] ? z : bbox[2];
            bbox[3] = x > bbox[3] ? x : bbox[3];
            bbox[4] = y > bbox[4] ? y : bbox[4];
            bbox[5] = z > bbox[5] ? z : bbox[5];
        }
        uint64_t nb[6];
        int n = 0;
        if (x > 0)
            nb[n++] = v - 1;
        if (x + 1 < cols)
            nb[n++] = v + 1;
        if (y > 0)
            nb[n++] = v - cols;
        if (y + 1 < rows)
            nb[n++] = v + cols;
        if (z > 0)
            nb[n++] = v - plane;
        if (z + 1 < frames)
            nb[n++] = v + plane;
        for (int k = 0; k < n; k++) {
            if (state[nb[k]] == 1) {
                state[nb[k]] = 2;
                if (q_push(q, (uint32_t)nb[k]) != 0)
                    return 0;
            }
        }
    }
    return size;
}

static int cmp_size_desc(const void *a, const void *b)
{
    const component *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

static int32_t threshold_process(void *st, agora_job *job, const agora_image *image)
{
    (void)st;
    if (image->samples_per_pixel != 1) {
        host->set_error(job, "threshold needs a grayscale series (samples per pixel = 1)");
        return AGORA_EINPUT;
    }
    uint64_t plane = (uint64_t)image->rows * image->columns;
    uint64_t n = plane * image->frames;
    if (n == 0 || n > UINT32_MAX) {
        host->set_error(job, "series too large for this example (more than 2^32 voxels)");
        return AGORA_EINPUT;
    }
    double s = image->rescale_slope, b = image->rescale_intercept;
    double wlo, whi;
    int is_ct = strcmp(image->modality, "CT") == 0;
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t f = 0; f < image->frames; f++) {
        const agora_frame *fr = host->frame(job, f);
        if (fr == NULL || fr->size_bytes < plane * ex_sample_bytes(image->pixel_type)) {
            host->set_error(job, "frame buffer smaller than rows*columns");
            return AGORA_EINPUT;
        }
        for (uint64_t i = 0; i < plane; i++) {
            double v = ex_sample(fr->data, image->pixel_type, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    if (!isfinite(lo) || !isfinite(hi)) {
        host->set_error(job, "the series has non-finite samples");
        return AGORA_EINPUT;
    }
    if (is_ct) {
        wlo = 200.0;
        whi = 3000.0;
    } else {
        wlo = otsu(image, job, lo, hi) * s + b;
        whi = INFINITY;
    }

    uint8_t *state = calloc(n, 1);
    if (state == NULL)
        return AGORA_ENOMEM;
    for (uint32_t f = 0; f < image->frames; f++) {
        const agora_frame *fr = host->frame(job, f);
        double fs, fb; /* the window is in physical units: map each frame through its own */
        ex_frame_rescale(fr, image, &fs, &fb);
        for (uint64_t i = 0; i < plane; i++) {
            double v = ex_sample(fr->data, image->pixel_type, i) * fs + fb;
            state[f * plane + i] = v >= wlo && v <= whi;
        }
    }
    if (host->progress(job, 0.3) == AGORA_ECANCELLED) {
        free(state);
        return AGORA_ECANCELLED;
    }

    /* Pass 1: find every component's seed and size. */
    component *comps = NULL;
    size_t ncomps = 0, capcomps = 0;
    queue q = {0};
    for (uint64_t v = 0; v < n; v++) {
        if (state[v] != 1)
            continue;
        uint64_t size = flood(state, NULL, 0, v, image->columns, image->rows, image->frames, &q,
                              NULL);
        if (size == 0)
            goto oom;
        if (ncomps == capcomps) {
            size_t nc = capcomps ? capcomps * 2 : 256;
            component *c = realloc(comps, nc * sizeof *c);
            if (c == NULL)
                goto oom;
            comps = c;
            capcomps = nc;
        }
        comps[ncomps].seed = v;
        comps[ncomps].size = size;
        ncomps++;
    }
    if (host->progress(job, 0.6) == AGORA_ECANCELLED) {
        free(state);
        free(comps);
        free(q.v);
        return AGORA_ECANCELLED;
    }
    qsort(comps, ncomps, sizeof *comps, cmp_size_desc);
    size_t kept = ncomps < MAX_LABELS ? ncomps : MAX_LABELS;

    /* Pass 2: label the kept components by rank (1 = largest). */
    uint8_t *labels = calloc(n, 1);
    if (labels == NULL)
        goto oom;
    for (uint64_t v = 0; v < n; v++)
        state[v] = state[v] != 0;
    uint64_t bbox[6] = {UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0, 0};
    for (size_t c = 0; c < kept; c++) {
        if (flood(state, labels, (uint8_t)(c + 1), comps[c].seed, image->columns, image->rows,
                  image->frames, &q, c == 0 ? bbox : NULL) == 0) {
            free(labels);
            goto oom;
        }
    }
    free(state);
    state = NULL;
    free(q.v);
    q.v = NULL;

    int32_t rc, mask_id = AGORA_NONE, box_id = AGORA_NONE;
    agora_mask m = {sizeof m};
    m.first_frame = 0;
    m.n_frames = image->frames;
    m.rows = image->rows;
    m.columns = image->columns;
    m.bits = 8;
    m.labels = labels;
    m.label = "threshold components (1 = largest)";
    rc = host->add_mask(job, &m, &mask_id);
    free(labels);
    if (rc != AGORA_OK)
        goto done;

    agora_measurement me = {sizeof me};
    me.frame = AGORA_NONE;
    me.region = mask_id;
    me.name = "component count";
    me.value = (double)ncomps;
    me.unit = "1";
    rc = host->add_measurement(job, &me);
    if (rc != AGORA_OK || ncomps == 0)
        goto done;

    double dz = image->spacing_between_slices;
    if (!isfinite(dz) || dz <= 0)
        dz = image->slice_thickness;
    double voxel_mm3 = image->pixel_spacing[0] * image->pixel_spacing[1] * dz;
    uint32_t mid = (uint32_t)((bbox[2] + bbox[5]) / 2);
    double pts[4] = {(double)bbox[0], (double)bbox[1], (double)bbox[3], (double)bbox[4]};
    agora_region r = {sizeof r};
    r.kind = AGORA_REGION_BOX;
    r.frame = mid;
    r.points = pts;
    r.n_points = 2;
    r.label = "largest component (bounding box on its central frame)";
    rc = host->add_region(job, &r, &box_id);
    if (rc != AGORA_OK)
        goto done;
    me.region = box_id;
    me.name = "largest component voxels";
    me.value = (double)comps[0].size;
    me.unit = "1";
    rc = host->add_measurement(job, &me);
    if (rc == AGORA_OK && isfinite(voxel_mm3) && voxel_mm3 > 0) {
        me.name = "largest component volume";
        me.value = (double)comps[0].size * voxel_mm3 / 1000.0;
        me.unit = "mL";
        rc = host->add_measurement(job, &me);
    } else if (rc == AGORA_OK) {
        host->log(host, job, AGORA_LOG_WARN, "no voxel spacing: volume not reported");
    }
    if (rc == AGORA_OK) {
        char text[200];
        if (isfinite(whi))
            snprintf(text, sizeof text,
                     "%zu component(s) with values in [%.1f, %.1f]; largest has %llu voxels",
                     ncomps, wlo, whi, (unsigned long long)comps[0].size);
        else
            snprintf(text, sizeof text,
                     "%zu component(s) with values >= %.1f (Otsu); largest has %llu voxels", ncomps,
                     wlo, (unsigned long long)comps[0].size);
        rc = host->set_summary(job, text);
    }
done:
    free(comps);
    return rc;
oom:
    free(state);
    free(comps);
    free(q.v);
    host->set_error(job, "out of memory (raise resources.memory_mb in the manifest)");
    return AGORA_ENOMEM;
}

static const agora_plugin threshold_plugin = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.examples.threshold",
    .version = "1.0.0",
    .init = threshold_init,
    .process = threshold_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &threshold_plugin;
}
