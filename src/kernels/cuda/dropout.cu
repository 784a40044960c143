// CUDA dropout: the CPU's mask bit for bit (Note [dropout mask]): element i is dropped when
// unit_float(word i % 4 of philox(seed, offset + i / 4)) < p, so forward on one device and
// backward on another -- or a CUDA run and a CPU run -- agree exactly.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/philox.cuh"
#include "kernels/dispatch.h"
#include "kernels/dropout.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// One thread per Philox block of four elements. The scaling multiplies in the accumulation type
// (f32 for 16-bit floats) and rounds once, as on the CPU, so kept values match exactly too.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    dropout_kernel(T* __restrict__ out, const T* __restrict__ in, int64_t n, float p, dacc_t<T> scale, uint64_t seed,
                   uint64_t offset) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    const PhiloxOut r = philox(seed, offset + static_cast<uint64_t>(b));
    const int64_t i0 = 4 * b;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (i0 + k >= n) break;
      const bool keep = !(unit_float(r.w[k]) < p);
      out[i0 + k] = keep ? store_as<T>(load_acc(in[i0 + k]) * scale) : store_as<T>(dacc_t<T>(0));
    }
  }
}

}  // namespace

void dropout_apply(Tensor& out, const Tensor& in, double p, double scale, uint64_t seed, uint64_t offset) {
  KIRZL_INTERNAL_ASSERT(out.is_contiguous() && in.is_contiguous() && out.dtype() == in.dtype() && out.numel() == in.numel());
  const int64_t n = in.numel();
  if (n == 0) return;
  cudaStream_t stream = prepare(in);
  dispatch_floating(in.dtype(), "dropout", [&]<typename T>() {
    using D = device_t<T>;
    dropout_kernel<D><<<grid_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(
        dptr<T>(out), dptr<T>(in), n, static_cast<float>(p), static_cast<dacc_t<D>>(scale), seed, offset);
  });
  KIRZL_CUDA_LAUNCH_CHECK();
}

void register_dropout_kernels() {
  KIRZL_REGISTER_KERNEL(dropout_apply, DeviceType::CUDA, &dropout_apply);
}

}  // namespace kirzl::kernels::cuda
