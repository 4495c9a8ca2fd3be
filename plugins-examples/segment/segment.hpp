/*
 * What the two AI examples (onnx-segment, torch-segment) share: everything but the framework.
 * A Model turns one normalized CT slice into a lesion probability map; segment_series() feeds it
 * every frame of the series, thresholds the probabilities into a label mask and reports the mask,
 * the lesion's volume in mL and a coded finding with a confidence. The model, its training and
 * its input convention are in plugins-examples/models/ (README.md there).
 *
 * Not part of the SDK: examples keep their helpers next to them. Header-only so that each example
 * stays one shared module.
 */
#ifndef AGORA_EXAMPLES_SEGMENT_HPP
#define AGORA_EXAMPLES_SEGMENT_HPP

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

extern "C" {
#include "../common.h"
}

namespace segment
{

/* The model's input convention (plugins-examples/models/phantom.py, normalize()). */
constexpr float HU_CENTER = 40.0f;
constexpr float HU_SCALE = 200.0f;
constexpr float HU_CLIP = 5.0f;
/* Two 2x2 poolings: the model needs heights and widths divisible by 4. */
constexpr uint32_t ALIGN = 4;
/* Larger frames would make a single slice's buffers exceed what an example should ask for. */
constexpr uint32_t MAX_SIDE = 4096;

/* The asset every example ships its weights as; the name is the manifest's "assets" entry. */
constexpr const char *ASSETS_EXTENSION = AGORA_EXT_ASSETS;

class Model
{
  public:
    virtual ~Model() = default;
    /* in: h*w normalized values, out: h*w probabilities in [0,1]. h, w multiples of ALIGN.
     * Returns an empty string or what went wrong. May throw; the caller catches. */
    virtual std::string infer(const float *in, uint32_t h, uint32_t w, float *out) = 0;
};

/* The number of threads the plugin may use: the sandbox sets OMP_NUM_THREADS to the manifest's
 * resources.threads (docs/developer-guide.md, "Ship a PyTorch or ONNX model"); 1 when unset. */
inline int threads()
{
    const char *s = std::getenv("OMP_NUM_THREADS");
    if (s == nullptr)
        return 1;
    char *end = nullptr;
    long v = std::strtol(s, &end, 10);
    return (end != s && *end == '\0' && v >= 1 && v <= 256) ? (int)v : 1;
}

/* The bytes of asset `name`, read-only and valid until fini. Fills *why on failure. */
inline bool asset(const agora_host *host, const char *name, const void **data, uint64_t *size,
                  std::string *why)
{
    auto ext = static_cast<const agora_assets *>(host->get_extension(host, ASSETS_EXTENSION));
    if (ext == nullptr || !AGORA_HAS(ext, agora_assets, get)) {
        *why = std::string("this host has no ") + ASSETS_EXTENSION +
               " extension (the model ships as a bundle asset; ABI 1.1 hosts have it)";
        return false;
    }
    if (ext->get(host, name, data, size) != AGORA_OK || *data == nullptr || *size == 0) {
        *why = std::string("asset ") + name +
               " is missing: declare it in the manifest's \"assets\" and pack it with --asset " +
               name + "=FILE (dev run: --asset " + name + "=FILE)";
        return false;
    }
    return true;
}

/* The init both examples share: fetch the asset, hand its bytes to `load` (which parses them with
 * the framework and returns a new Model), keep the Model as the plugin state. Catches
 * everything; the state is deleted by fini_model. */
template <class Load>
int32_t init_model(const agora_host *host, void **state, const char *asset_name, Load load)
{
    *state = nullptr;
    try {
        const void *data;
        uint64_t size;
        std::string why;
        if (!asset(host, asset_name, &data, &size, &why)) {
            host->log(host, nullptr, AGORA_LOG_ERROR, why.c_str());
            return AGORA_EINPUT;
        }
        Model *m = load(data, size);
        *state = m;
        return AGORA_OK;
    } catch (const std::exception &e) {
        host->log(host, nullptr, AGORA_LOG_ERROR,
                  (std::string("cannot load ") + asset_name + ": " + e.what()).c_str());
        return AGORA_EINPUT;
    } catch (...) {
        return AGORA_EINTERNAL;
    }
}

inline void fini_model(void *state)
{
    delete static_cast<Model *>(state);
}

inline double now_ms()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/* Run `model` over every frame of a CT series and report the result. Catches everything. */
inline int32_t segment_series(const agora_host *host, agora_job *job, const agora_image *image,
                              Model &model, const char *engine)
{
    try {
        if (std::strcmp(image->modality, "CT") != 0 || image->samples_per_pixel != 1) {
            host->set_error(job, "this model segments grayscale CT (Hounsfield units) only");
            return AGORA_EINPUT;
        }
        const uint32_t rows = image->rows, cols = image->columns, frames = image->frames;
        if (rows == 0 || cols == 0 || frames == 0 || rows > MAX_SIDE || cols > MAX_SIDE) {
            host->set_error(job, "frames must be between 1x1 and 4096x4096 pixels");
            return AGORA_EINPUT;
        }
        const uint32_t bytes = ex_sample_bytes(image->pixel_type);
        const uint32_t h = (rows + ALIGN - 1) / ALIGN * ALIGN,
                       w = (cols + ALIGN - 1) / ALIGN * ALIGN;
        const uint64_t plane = (uint64_t)rows * cols;
        std::vector<float> in((size_t)h * w), prob((size_t)h * w);
        std::vector<uint8_t> labels((size_t)(plane * frames));
        uint64_t voxels = 0;
        double prob_sum = 0, infer_ms = 0;
        for (uint32_t f = 0; f < frames; f++) {
            const agora_frame *fr = host->frame(job, f);
            if (fr == nullptr || bytes == 0 || fr->size_bytes < plane * bytes) {
                host->set_error(job, "frame buffer smaller than rows*columns samples");
                return AGORA_EINPUT;
            }
            double s, b;
            ex_frame_rescale(fr, image, &s, &b);
            /* Padding is air (-1000 HU), what surrounds a body anyway. */
            std::fill(in.begin(), in.end(), -HU_CLIP);
            for (uint32_t y = 0; y < rows; y++)
                for (uint32_t x = 0; x < cols; x++) {
                    double hu =
                        ex_sample(fr->data, image->pixel_type, (uint64_t)y * cols + x) * s + b;
                    float v = (float)((hu - HU_CENTER) / HU_SCALE);
                    in[(size_t)y * w + x] = std::isfinite(v) ? std::clamp(v, -HU_CLIP, HU_CLIP) : 0;
                }
            double t0 = now_ms();
            std::string err = model.infer(in.data(), h, w, prob.data());
            infer_ms += now_ms() - t0;
            if (!err.empty()) {
                host->set_error(job, (std::string(engine) + " inference failed: " + err).c_str());
                return AGORA_EINTERNAL;
            }
            for (uint32_t y = 0; y < rows; y++)
                for (uint32_t x = 0; x < cols; x++) {
                    float p = prob[(size_t)y * w + x];
                    if (p > 0.5f) {
                        labels[f * plane + (uint64_t)y * cols + x] = 1;
                        voxels++;
                        prob_sum += p;
                    }
                }
            if (host->progress(job, 0.9 * (f + 1) / frames) == AGORA_ECANCELLED)
                return AGORA_ECANCELLED;
        }
        char line[160];
        /* The one figure the benchmark reads (tests/bench/ai_sandbox.sh): time inside the model
         * only, so that inside and outside the sandbox measure the same work. */
        std::snprintf(line, sizeof line,
                      "inference: %u frames of %ux%u in %.1f ms (%s, %d thread(s))", frames, cols,
                      rows, infer_ms, engine, threads());
        host->log(host, job, AGORA_LOG_INFO, line);

        int32_t mask_id = AGORA_NONE, rc;
        agora_mask m = {};
        m.struct_size = sizeof m;
        m.n_frames = frames;
        m.rows = rows;
        m.columns = cols;
        m.bits = 8;
        m.labels = labels.data();
        m.label = "lesion (model probability > 0.5)";
        if ((rc = host->add_mask(job, &m, &mask_id)) != AGORA_OK)
            return rc;

        double dz = image->spacing_between_slices;
        if (!std::isfinite(dz) || dz <= 0)
            dz = image->slice_thickness;
        double voxel_ml = image->pixel_spacing[0] * image->pixel_spacing[1] * dz / 1000.0;
        agora_measurement me = {};
        me.struct_size = sizeof me;
        me.frame = AGORA_NONE;
        me.region = mask_id;
        me.name = "lesion voxels";
        me.value = (double)voxels;
        me.unit = "1";
        if ((rc = host->add_measurement(job, &me)) != AGORA_OK)
            return rc;
        bool have_volume = std::isfinite(voxel_ml) && voxel_ml > 0;
        if (have_volume) {
            me.name = "lesion volume";
            me.value = (double)voxels * voxel_ml;
            me.unit = "mL";
            if ((rc = host->add_measurement(job, &me)) != AGORA_OK)
                return rc;
        } else {
            host->log(host, job, AGORA_LOG_WARN, "no pixel or slice spacing: volume not reported");
        }
        /* Confidence: the mean probability the model gave the voxels it called lesion. */
        double confidence = voxels ? prob_sum / (double)voxels : 0.0;
        if (voxels > 0) {
            agora_finding fi = {};
            fi.struct_size = sizeof fi;
            fi.scheme = "SCT";
            fi.code = "4147007";
            fi.meaning = "Mass";
            fi.confidence = std::clamp(confidence, 0.0, 1.0);
            fi.frame = AGORA_NONE;
            fi.region = mask_id;
            if ((rc = host->add_finding(job, &fi)) != AGORA_OK)
                return rc;
        }
        char text[256];
        if (voxels == 0)
            std::snprintf(text, sizeof text, "no lesion found (%s)", engine);
        else if (have_volume)
            std::snprintf(
                text, sizeof text, "lesion of %.2f mL (%llu voxels), confidence %.3f (%s)",
                (double)voxels * voxel_ml, (unsigned long long)voxels, confidence, engine);
        else
            std::snprintf(text, sizeof text, "lesion of %llu voxels, confidence %.3f (%s)",
                          (unsigned long long)voxels, confidence, engine);
        return host->set_summary(job, text);
    } catch (const std::bad_alloc &) {
        host->set_error(job, "out of memory (raise resources.memory_mb in the manifest)");
        return AGORA_ENOMEM;
    } catch (const std::exception &e) {
        host->set_error(job, (std::string(engine) + ": " + e.what()).c_str());
        return AGORA_EINTERNAL;
    } catch (...) {
        host->set_error(job, "unexpected exception");
        return AGORA_EINTERNAL;
    }
}

} // namespace segment

#endif
