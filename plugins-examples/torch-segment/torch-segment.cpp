/*
 * torch-segment — the PyTorch path: the same trained network as onnx-segment, saved as
 * TorchScript (plugins-examples/models/lesion-unet.pt, torch.jit.trace), shipped as the bundle
 * asset "model.pt" and run by Debian's libtorch. The asset's read-only mapping is read through
 * an istream (no file, no copy of the weights outside libtorch's own tensors).
 *
 * Confinement choices (docs/developer-guide.md, "Ship a PyTorch or ONNX model"):
 *   - oneDNN (MKL-DNN) off: it JIT-compiles kernels into executable memory, which the sandbox
 *     refuses (PROT_EXEC is answered with EPERM); ATen's own kernels need none;
 *   - the graph executor's profiling/fusion off: no code generation, the same graph each run;
 *   - intra-op threads = resources.threads (OMP_NUM_THREADS, set by the sandbox), one inter-op
 *     thread: libtorch never starts more threads than the manifest pays for.
 */
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <istream>
#include <streambuf>

#include "../segment/segment.hpp"

namespace
{

const agora_host *host;

/* A read-only streambuf over the asset's mapping (istream needs a mutable pointer type, but
 * only reads through it). */
class MemoryBuf final : public std::streambuf
{
  public:
    MemoryBuf(const void *data, uint64_t size)
    {
        char *p = const_cast<char *>(static_cast<const char *>(data));
        setg(p, p, p + size);
    }

  protected:
    pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override
    {
        char *base = eback(), *target = dir == std::ios_base::beg   ? base + off
                                        : dir == std::ios_base::cur ? gptr() + off
                                                                    : egptr() + off;
        if (target < base || target > egptr())
            return pos_type(off_type(-1));
        setg(base, target, egptr());
        return pos_type(target - base);
    }
    pos_type seekpos(pos_type pos, std::ios_base::openmode which) override
    {
        return seekoff(off_type(pos), std::ios_base::beg, which);
    }
};

class TorchModel final : public segment::Model
{
  public:
    explicit TorchModel(torch::jit::script::Module m) : module_(std::move(m))
    {
    }
    std::string infer(const float *in, uint32_t h, uint32_t w, float *out) override
    {
        torch::NoGradGuard no_grad;
        /* from_blob borrows the plugin's buffer for the duration of the call. */
        at::Tensor x = torch::from_blob(const_cast<float *>(in), {1, 1, (int64_t)h, (int64_t)w});
        at::Tensor y = module_.forward({x}).toTensor().contiguous();
        if (y.numel() != (int64_t)h * w || y.scalar_type() != at::kFloat)
            return "the model returned an unexpected shape (want 1x1xHxW float)";
        std::memcpy(out, y.data_ptr<float>(), (size_t)h * w * sizeof(float));
        return "";
    }

  private:
    torch::jit::script::Module module_;
};

int32_t torch_init(const agora_host *h, void **state)
{
    host = h;
    return segment::init_model(h, state, "model.pt", [](const void *data, uint64_t size) {
        at::globalContext().setUserEnabledMkldnn(false);
        torch::jit::setGraphExecutorOptimize(false);
        at::set_num_threads(segment::threads());
        at::set_num_interop_threads(1);
        MemoryBuf buf(data, size);
        std::istream in(&buf);
        torch::jit::script::Module m = torch::jit::load(in, torch::kCPU);
        m.eval();
        return new TorchModel(std::move(m));
    });
}

int32_t torch_process(void *state, agora_job *job, const agora_image *image)
{
    return segment::segment_series(host, job, image, *static_cast<segment::Model *>(state),
                                   "libtorch");
}

const agora_plugin torch_plugin = {
    sizeof(agora_plugin),
    AGORA_ABI_VERSION,
    "org.agora.examples.torch-segment",
    "1.0.0",
    torch_init,
    torch_process,
    segment::fini_model,
    nullptr,
};

} // namespace

extern "C" AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &torch_plugin;
}
