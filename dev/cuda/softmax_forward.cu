// Softmax forward, f32, over rows of C: y = exp(x - max) / sum(exp(x - max)). Kernel variants:
//   1  naive: one thread per row, three passes (max, sum, write).
//   2  warp per row: lanes stride over the row, warp-shuffle max and sum, then the write pass.
//   3  warp per row, online: one pass keeps a running max and a sum rescaled when the max
//      grows (the "online softmax"), then the write pass: one read of x fewer than 2.
//
//   make softmax_forward && ./softmax_forward 3
#include <cfloat>

#include "common.cuh"

namespace {

void softmax_cpu(float* y, const float* x, int N, int C) {
  for (int r = 0; r < N; ++r) {
    const float* xr = x + size_t(r) * C;
    double m = -INFINITY, s = 0;
    for (int i = 0; i < C; ++i) m = std::fmax(m, xr[i]);
    for (int i = 0; i < C; ++i) s += std::exp(xr[i] - m);
    for (int i = 0; i < C; ++i) y[size_t(r) * C + i] = float(std::exp(xr[i] - m) / s);
  }
}

__global__ void softmax_1(float* y, const float* x, int N, int C) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= N) return;
  const float* xr = x + size_t(r) * C;
  float m = -FLT_MAX, s = 0;
  for (int i = 0; i < C; ++i) m = fmaxf(m, xr[i]);
  for (int i = 0; i < C; ++i) s += expf(xr[i] - m);
  for (int i = 0; i < C; ++i) y[size_t(r) * C + i] = expf(xr[i] - m) / s;
}

__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void softmax_2(float* y, const float* x, int N, int C) {
  const int lane = threadIdx.x % 32, r = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (r >= N) return;
  const float* xr = x + size_t(r) * C;
  float m = -FLT_MAX;
  for (int i = lane; i < C; i += 32) m = fmaxf(m, xr[i]);
  m = warp_max(m);
  float s = 0;
  for (int i = lane; i < C; i += 32) s += expf(xr[i] - m);
  s = warp_sum(s);
  for (int i = lane; i < C; i += 32) y[size_t(r) * C + i] = expf(xr[i] - m) / s;
}

__global__ void softmax_3(float* y, const float* x, int N, int C) {
  const int lane = threadIdx.x % 32, r = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (r >= N) return;
  const float* xr = x + size_t(r) * C;
  float m = -FLT_MAX, s = 0;
  for (int i = lane; i < C; i += 32) {
    const float v = xr[i];
    if (v > m) s *= expf(m - v), m = v;  // rescale the sum to the new max
    s += expf(v - m);
  }
  // Combine the lanes' (max, sum) pairs.
  const float wm = warp_max(m);
  s = warp_sum(s * expf(m - wm));
  for (int i = lane; i < C; i += 32) y[size_t(r) * C + i] = expf(xr[i] - wm) / s;
}

void launch(int kernel, int block, float* y, const float* x, int N, int C) {
  switch (kernel) {
    case 1: softmax_1<<<ceil_div(N, block), block>>>(y, x, N, C); break;
    case 2: softmax_2<<<ceil_div(N * 32, block), block>>>(y, x, N, C); break;
    case 3: softmax_3<<<ceil_div(N * 32, block), block>>>(y, x, N, C); break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int kernel = kernel_number(argc, argv, 3, "softmax_forward");
  const int N = 8 * 1024, C = 1031;  // an odd row length: no lane count divides it
  const std::vector<float> x = random_floats(size_t(N) * C, -8, 8, 1);
  std::vector<float> y(x.size());
  softmax_cpu(y.data(), x.data(), N, C);
  float* dx = to_device(x);
  bool ok = true;
  for (int block : {32, 64, 128, 256, 512, 1024}) {
    float* dy = poisoned_device(y.size());
    launch(kernel, block, dy, dx, N, C);
    CUDA_CHECK(cudaGetLastError());
    std::printf("block %4d: ", block);
    ok = validate("y", dy, y, 1e-5f) && ok;
    const float ms = time_ms([&] { launch(kernel, block, dy, dx, N, C); });
    const double gbps = 2.0 * double(N) * C * sizeof(float) / (ms * 1e-3) / 1e9;
    std::printf("kernel %d, block %4d: %.4f ms, %.0f GB/s\n", kernel, block, ms, gbps);
    CUDA_CHECK(cudaFree(dy));
  }
  CUDA_CHECK(cudaFree(dx));
  return ok ? 0 : 1;
}
