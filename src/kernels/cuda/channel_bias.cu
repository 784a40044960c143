// Per-channel bias addition on [N, C, S] (see channel_bias.h).
#include "kernels/cuda/channel_bias.h"
#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cuda {

namespace {

// One block row per (n, c) plane: the channel is read once per block, no division per element.
template <typename T>
__global__ void add_channel_bias_kernel(T* y, const T* bias, int64_t planes, int64_t C, int64_t S) {
  for (int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    const dacc_t<T> b = load_acc(bias[p % C]);
    T* row = y + p * S;
    for (int64_t s = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; s < S; s += int64_t(gridDim.x) * blockDim.x)
      row[s] = store_as<T>(load_acc(row[s]) + b);
  }
}

}  // namespace

void add_channel_bias(Tensor& y, const Tensor& bias) {
  KIRZL_INTERNAL_ASSERT(y.is_contiguous() && bias.is_contiguous() && y.dim() >= 2 && bias.numel() == y.size(1) &&
                            bias.dtype() == y.dtype(),
                        "add_channel_bias: ", y.describe(), " ", bias.describe());
  if (y.numel() == 0) return;
  const int64_t C = y.size(1), planes = y.size(0) * C, S = y.numel() / planes;
  cudaStream_t stream = prepare(y);
  constexpr int kThreads = 256;
  const dim3 grid(grid_for(S, kThreads, 1024), static_cast<unsigned>(std::min<int64_t>(planes, 65535)));
  dispatch_floating(y.dtype(), "conv2d bias", [&]<typename T>() {
    add_channel_bias_kernel<device_t<T>><<<grid, kThreads, 0, stream>>>(dptr<T>(y), dptr<T>(bias), planes, C, S);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace kirzl::kernels::cuda
