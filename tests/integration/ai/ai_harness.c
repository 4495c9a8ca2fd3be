/*
 * ai_harness — the host side of agora.h, implemented directly and with no sandbox, so that a
 * plugin's output and speed outside the sandbox can be compared with agora's inside it (the
 * same .so, the same voxels). It is a test tool, not a host: it trusts the plugin.
 *
 *   ai_harness --plugin P.so --input STUDY.raw [--asset NAME=FILE]... [--threads N]
 *              [--repeat N] [--mask-out FILE]
 *
 * STUDY.raw is written by make_phantoms.py (format in its docstring): int16 Hounsfield units,
 * presented as a CT series of AGORA_PIXEL_I16 frames, slope 1, intercept 0. Assets are mapped
 * read-only, as the sandbox maps them. OMP_NUM_THREADS is set to --threads before the plugin is
 * loaded, as the sandbox does for resources.threads. The plugin's log lines go to stderr; stdout
 * gets one JSON object per run: status, summary, measurements, finding confidence, mask voxels.
 * --mask-out writes the last run's mask bytes (8-bit labels, frames x rows x columns).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <agora/agora.h>

#define MAX_ASSETS 8
#define MAX_MEAS   16

typedef struct asset {
    const char *name;
    const void *data;
    uint64_t size;
} asset;

struct agora_job {
    const agora_image *image;
    agora_frame *frames;
    int32_t status;
    char summary[1024];
    char error[1024];
    struct {
        char name[64];
        double value;
    } meas[MAX_MEAS];
    int n_meas;
    double confidence;
    int n_findings;
    uint8_t *mask;
    size_t mask_bytes;
    int32_t next_region;
};

static asset assets[MAX_ASSETS];
static int n_assets;

static void h_log(const agora_host *h, agora_job *job, int32_t level, const char *msg)
{
    (void)h;
    (void)job;
    fprintf(stderr, "plugin[%d]: %s\n", level, msg);
}

static int32_t assets_get(const agora_host *h, const char *name, const void **data, uint64_t *size)
{
    (void)h;
    for (int i = 0; i < n_assets; i++)
        if (strcmp(assets[i].name, name) == 0) {
            *data = assets[i].data;
            *size = assets[i].size;
            return AGORA_OK;
        }
    return AGORA_EINVAL;
}

static const agora_assets assets_ext = {sizeof(agora_assets), assets_get};

static const void *h_ext(const agora_host *h, const char *id)
{
    (void)h;
    return strcmp(id, AGORA_EXT_ASSETS) == 0 ? &assets_ext : NULL;
}

static const agora_frame *h_frame(agora_job *job, uint32_t i)
{
    return i < job->image->frames ? &job->frames[i] : NULL;
}

static uint32_t h_attr_count(agora_job *job)
{
    (void)job;
    return 0;
}

static int32_t h_attr_at(agora_job *job, uint32_t i, const char **k, const char **v)
{
    (void)job;
    (void)i;
    (void)k;
    (void)v;
    return AGORA_EINVAL;
}

static const char *h_attr_get(agora_job *job, const char *k)
{
    (void)job;
    (void)k;
    return NULL;
}

static int32_t h_finding(agora_job *job, const agora_finding *f)
{
    job->n_findings++;
    job->confidence = f->confidence;
    return AGORA_OK;
}

static int32_t h_measurement(agora_job *job, const agora_measurement *m)
{
    if (job->n_meas == MAX_MEAS || !isfinite(m->value))
        return AGORA_ELIMIT;
    snprintf(job->meas[job->n_meas].name, sizeof job->meas[0].name, "%s", m->name);
    job->meas[job->n_meas++].value = m->value;
    return AGORA_OK;
}

static int32_t h_region(agora_job *job, const agora_region *r, int32_t *id)
{
    (void)r;
    *id = ++job->next_region;
    return AGORA_OK;
}

static int32_t h_mask(agora_job *job, const agora_mask *m, int32_t *id)
{
    const agora_image *im = job->image;
    if (m->rows != im->rows || m->columns != im->columns || (m->bits != 8 && m->bits != 16) ||
        m->first_frame + (uint64_t)m->n_frames > im->frames)
        return AGORA_EINVAL;
    size_t n = (size_t)m->n_frames * m->rows * m->columns * (m->bits / 8);
    uint8_t *copy = malloc(n);
    if (copy == NULL)
        return AGORA_ENOMEM;
    memcpy(copy, m->labels, n);
    free(job->mask);
    job->mask = copy;
    job->mask_bytes = n;
    *id = ++job->next_region;
    return AGORA_OK;
}

static int32_t h_summary(agora_job *job, const char *text)
{
    snprintf(job->summary, sizeof job->summary, "%s", text);
    return AGORA_OK;
}

static void h_error(agora_job *job, const char *msg)
{
    snprintf(job->error, sizeof job->error, "%s", msg);
}

static int32_t h_progress(agora_job *job, double f)
{
    (void)job;
    (void)f;
    return AGORA_OK;
}

static int32_t h_cancelled(agora_job *job)
{
    (void)job;
    return 0;
}

static const agora_host host = {
    sizeof(agora_host), AGORA_ABI_VERSION, h_log,      h_ext,         h_frame,  h_attr_count,
    h_attr_at,          h_attr_get,        h_finding,  h_measurement, h_region, h_mask,
    h_summary,          h_error,           h_progress, h_cancelled,
};

static const void *map_file(const char *path, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        fprintf(stderr, "ai_harness: cannot read %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fprintf(stderr, "ai_harness: cannot map %s: %s\n", path, strerror(errno));
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return p;
}

static int usage(void)
{
    fputs("usage: ai_harness --plugin P.so --input STUDY.raw [--asset NAME=FILE]... [--threads N]\n"
          "                  [--repeat N] [--mask-out FILE]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *plugin = NULL, *input = NULL, *mask_out = NULL;
    long threads = 1, repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--plugin") == 0)
            plugin = v;
        else if (strcmp(a, "--input") == 0)
            input = v;
        else if (strcmp(a, "--mask-out") == 0)
            mask_out = v;
        else if (strcmp(a, "--threads") == 0)
            threads = strtol(v, NULL, 10);
        else if (strcmp(a, "--repeat") == 0)
            repeat = strtol(v, NULL, 10);
        else if (strcmp(a, "--asset") == 0 && strchr(v, '=') != NULL && n_assets < MAX_ASSETS) {
            char *name = strdup(v);
            if (name == NULL)
                return 1;
            char *eq = strchr(name, '=');
            *eq = '\0';
            assets[n_assets].name = name;
            if ((assets[n_assets].data = map_file(eq + 1, &assets[n_assets].size)) == NULL)
                return 1;
            n_assets++;
        } else
            return usage();
    }
    if (plugin == NULL || input == NULL || threads < 1 || threads > 64 || repeat < 1 ||
        repeat > 1000)
        return usage();

    uint64_t in_size;
    const uint8_t *raw = map_file(input, &in_size);
    uint32_t dims[4];
    double spacing[3];
    if (raw == NULL)
        return 1;
    if (in_size < 48 || memcmp(raw, "AGORAW1", 8) != 0) {
        fprintf(stderr, "ai_harness: %s is not an AGORAW1 file (make_phantoms.py)\n", input);
        return 1;
    }
    memcpy(dims, raw + 8, sizeof dims);
    memcpy(spacing, raw + 24, sizeof spacing);
    uint64_t plane = (uint64_t)dims[0] * dims[1];
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0 || dims[2] > 65536 ||
        in_size != 48 + plane * dims[2] * 2) {
        fprintf(stderr, "ai_harness: %s: size does not match its header\n", input);
        return 1;
    }
    agora_image image = {sizeof image};
    image.rows = dims[0];
    image.columns = dims[1];
    image.frames = dims[2];
    image.samples_per_pixel = 1;
    image.pixel_type = AGORA_PIXEL_I16;
    image.bits_stored = 16;
    image.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    image.pixel_spacing[0] = spacing[0];
    image.pixel_spacing[1] = spacing[1];
    image.slice_thickness = spacing[2];
    image.spacing_between_slices = spacing[2];
    image.rescale_slope = 1.0;
    image.rescale_type = "HU";
    image.modality = "CT";
    image.study_uid = "2.25.1";
    image.series_uid = "2.25.2";
    agora_frame *frames = calloc(dims[2], sizeof *frames);
    if (frames == NULL)
        return 1;
    for (uint32_t f = 0; f < dims[2]; f++) {
        frames[f].struct_size = sizeof frames[f];
        frames[f].index = f;
        frames[f].data = raw + 48 + f * plane * 2;
        frames[f].size_bytes = plane * 2;
        frames[f].rescale_slope = 1.0;
        for (int k = 0; k < 3; k++)
            frames[f].position[k] = NAN;
        for (int k = 0; k < 6; k++)
            frames[f].orientation[k] = NAN;
        frames[f].sop_instance_uid = "2.25.3";
    }

    char nt[16];
    snprintf(nt, sizeof nt, "%ld", threads);
    setenv("OMP_NUM_THREADS", nt, 1);
    void *so = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (so == NULL) {
        fprintf(stderr, "ai_harness: dlopen: %s\n", dlerror());
        return 1;
    }
    agora_plugin_entry_fn entry = (agora_plugin_entry_fn)dlsym(so, AGORA_PLUGIN_ENTRY_SYMBOL);
    const agora_plugin *p = entry ? entry(AGORA_ABI_VERSION) : NULL;
    if (p == NULL || p->process == NULL) {
        fprintf(stderr, "ai_harness: %s has no usable agora_plugin_entry\n", plugin);
        return 1;
    }
    void *state = NULL;
    int32_t rc = p->init ? p->init(&host, &state) : AGORA_OK;
    if (rc != AGORA_OK) {
        fprintf(stderr, "ai_harness: init failed (%d)\n", rc);
        return 1;
    }
    int status = 0;
    for (long r = 0; r < repeat; r++) {
        agora_job job = {0};
        job.image = &image;
        job.frames = frames;
        rc = p->process(state, &job, &image);
        uint64_t voxels = 0;
        for (size_t i = 0; i < job.mask_bytes; i++)
            voxels += job.mask[i] != 0;
        printf("{\"status\": %d, \"error\": \"%s\", \"summary\": \"%s\", \"findings\": %d, "
               "\"confidence\": %.6f, \"mask_voxels\": %llu",
               rc, job.error, job.summary, job.n_findings, job.confidence,
               (unsigned long long)voxels);
        for (int m = 0; m < job.n_meas; m++)
            printf(", \"%s\": %.17g", job.meas[m].name, job.meas[m].value);
        printf("}\n");
        if (rc != AGORA_OK)
            status = 1;
        if (r == repeat - 1 && mask_out != NULL && job.mask != NULL) {
            FILE *f = fopen(mask_out, "wb");
            if (f == NULL || fwrite(job.mask, 1, job.mask_bytes, f) != job.mask_bytes ||
                fclose(f) != 0) {
                fprintf(stderr, "ai_harness: cannot write %s\n", mask_out);
                status = 1;
            }
        }
        free(job.mask);
    }
    if (p->fini)
        p->fini(state);
    free(frames);
    return status;
}
