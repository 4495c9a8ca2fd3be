/*
 * onnx-segment — a trained network running real inference with OpenCV's DNN module: the ONNX
 * model (plugins-examples/models/lesion-unet.onnx) ships as the bundle asset "model.onnx",
 * reached through the org.agora.assets/1 extension and parsed from the read-only mapping, so the
 * weights are verified once per install and never copied to a file. Everything after the
 * framework call is shared with torch-segment (../segment/segment.hpp).
 *
 * Threads: cv::setNumThreads(resources.threads), read from OMP_NUM_THREADS that the sandbox sets.
 * Memory: the network's activations for one slice (about 40 floats per pixel) plus one byte per
 * voxel for the mask.
 */
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "../segment/segment.hpp"

namespace
{

const agora_host *host;

class OnnxModel final : public segment::Model
{
  public:
    explicit OnnxModel(cv::dnn::Net net) : net_(std::move(net))
    {
    }
    std::string infer(const float *in, uint32_t h, uint32_t w, float *out) override
    {
        int shape[4] = {1, 1, (int)h, (int)w};
        /* A header over the plugin's buffer: blobFromImage would copy it once more. */
        cv::Mat blob(4, shape, CV_32F, const_cast<float *>(in));
        net_.setInput(blob);
        cv::Mat res = net_.forward();
        if (res.dims != 4 || res.total() != (size_t)h * w || res.type() != CV_32F)
            return "the model returned an unexpected shape (want 1x1xHxW float)";
        std::memcpy(out, res.ptr<float>(), (size_t)h * w * sizeof(float));
        return "";
    }

  private:
    cv::dnn::Net net_;
};

int32_t onnx_init(const agora_host *h, void **state)
{
    host = h;
    return segment::init_model(h, state, "model.onnx", [](const void *data, uint64_t size) {
        cv::setNumThreads(segment::threads());
        cv::dnn::Net net = cv::dnn::readNetFromONNX(static_cast<const char *>(data), (size_t)size);
        net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
        net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
        return new OnnxModel(std::move(net));
    });
}

int32_t onnx_process(void *state, agora_job *job, const agora_image *image)
{
    return segment::segment_series(host, job, image, *static_cast<segment::Model *>(state),
                                   "OpenCV DNN");
}

const agora_plugin onnx_plugin = {
    sizeof(agora_plugin),
    AGORA_ABI_VERSION,
    "org.agora.examples.onnx-segment",
    "1.0.0",
    onnx_init,
    onnx_process,
    segment::fini_model,
    nullptr,
};

} // namespace

extern "C" AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &onnx_plugin;
}
