// Layer-norm forward, f32, over rows of C: y = (x - mean) * rstd * w + b, also writing the mean
// and rstd of each row (what the backward needs). Kernel variants, fastest last:
//   1  naive: one thread per row, three passes over the row.
//   2  warp per row: each lane strides over the row, warp-shuffle sums; the row is read three
//      times (mean, variance, output), from L1/L2 after the first.
//   3  warp per row, vectorised: float4 loads/stores (C % 4 == 0), the row kept in registers
//      between the passes (C <= 32 * 4 * kMaxPacks).
//
//   make layer_norm_forward && ./layer_norm_forward 3
//
// Validates the chosen kernel against the CPU reference (with poisoned outputs), then times it
// over several block sizes. See README.md for how a kernel goes from here into src/kernels/cuda/.
#include "common.cuh"

namespace {

constexpr float kEps = 1e-5f;

void layer_norm_cpu(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int N, int C) {
  for (int r = 0; r < N; ++r) {
    const float* xr = x + size_t(r) * C;
    double m = 0, v = 0;
    for (int i = 0; i < C; ++i) m += xr[i];
    m /= C;
    for (int i = 0; i < C; ++i) v += (xr[i] - m) * (xr[i] - m);
    v /= C;
    const double s = 1.0 / std::sqrt(v + kEps);
    for (int i = 0; i < C; ++i) y[size_t(r) * C + i] = float((xr[i] - m) * s * w[i] + b[i]);
    mean[r] = float(m), rstd[r] = float(s);
  }
}

__global__ void layer_norm_1(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int N, int C) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= N) return;
  const float* xr = x + size_t(r) * C;
  float m = 0;
  for (int i = 0; i < C; ++i) m += xr[i];
  m /= C;
  float v = 0;
  for (int i = 0; i < C; ++i) v += (xr[i] - m) * (xr[i] - m);
  const float s = rsqrtf(v / C + kEps);
  for (int i = 0; i < C; ++i) y[size_t(r) * C + i] = (xr[i] - m) * s * w[i] + b[i];
  mean[r] = m, rstd[r] = s;
}

__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void layer_norm_2(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int N, int C) {
  const int lane = threadIdx.x % 32, r = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (r >= N) return;
  const float* xr = x + size_t(r) * C;
  float m = 0;
  for (int i = lane; i < C; i += 32) m += xr[i];
  m = warp_sum(m) / C;
  float v = 0;
  for (int i = lane; i < C; i += 32) v += (xr[i] - m) * (xr[i] - m);
  const float s = rsqrtf(warp_sum(v) / C + kEps);
  for (int i = lane; i < C; i += 32) y[size_t(r) * C + i] = (xr[i] - m) * s * w[i] + b[i];
  if (lane == 0) mean[r] = m, rstd[r] = s;
}

constexpr int kMaxPacks = 8;  // float4 packs a lane keeps: C <= 32 * 4 * 8 = 1024

__global__ void layer_norm_3(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int N, int C) {
  const int lane = threadIdx.x % 32, r = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (r >= N) return;
  const int packs = C / 4;
  const float4* xr = reinterpret_cast<const float4*>(x + size_t(r) * C);
  float4 held[kMaxPacks];
  float m = 0;
#pragma unroll
  for (int k = 0; k < kMaxPacks; ++k) {
    const int p = lane + 32 * k;
    if (p < packs) held[k] = xr[p], m += held[k].x + held[k].y + held[k].z + held[k].w;
  }
  m = warp_sum(m) / C;
  float v = 0;
#pragma unroll
  for (int k = 0; k < kMaxPacks; ++k) {
    const int p = lane + 32 * k;
    if (p < packs) {
      const float4 h = held[k];
      v += (h.x - m) * (h.x - m) + (h.y - m) * (h.y - m) + (h.z - m) * (h.z - m) + (h.w - m) * (h.w - m);
    }
  }
  const float s = rsqrtf(warp_sum(v) / C + kEps);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4* yr = reinterpret_cast<float4*>(y + size_t(r) * C);
#pragma unroll
  for (int k = 0; k < kMaxPacks; ++k) {
    const int p = lane + 32 * k;
    if (p < packs) {
      const float4 h = held[k], ww = w4[p], bb = b4[p];
      yr[p] = make_float4((h.x - m) * s * ww.x + bb.x, (h.y - m) * s * ww.y + bb.y, (h.z - m) * s * ww.z + bb.z,
                          (h.w - m) * s * ww.w + bb.w);
    }
  }
  if (lane == 0) mean[r] = m, rstd[r] = s;
}

void launch(int kernel, int block, float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int N, int C) {
  switch (kernel) {
    case 1: layer_norm_1<<<ceil_div(N, block), block>>>(y, mean, rstd, x, w, b, N, C); break;
    case 2: layer_norm_2<<<ceil_div(N * 32, block), block>>>(y, mean, rstd, x, w, b, N, C); break;
    case 3: layer_norm_3<<<ceil_div(N * 32, block), block>>>(y, mean, rstd, x, w, b, N, C); break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int kernel = kernel_number(argc, argv, 3, "layer_norm_forward");
  const int B = 8, T = 1024, C = 768, N = B * T;  // GPT-2 small activations
  const std::vector<float> x = random_floats(size_t(N) * C, -1, 3, 1), w = random_floats(C, 0.5f, 1.5f, 2),
                           b = random_floats(C, -1, 1, 3);
  std::vector<float> y(size_t(N) * C), mean(N), rstd(N);
  layer_norm_cpu(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  float *dx = to_device(x), *dw = to_device(w), *db = to_device(b);
  bool ok = true;
  for (int block : {32, 64, 128, 256, 512, 1024}) {
    float *dy = poisoned_device(y.size()), *dm = poisoned_device(N), *dr = poisoned_device(N);
    launch(kernel, block, dy, dm, dr, dx, dw, db, N, C);
    CUDA_CHECK(cudaGetLastError());
    std::printf("block %4d: ", block);
    ok = validate("y", dy, y, 1e-5f) && validate("           mean", dm, mean, 1e-5f) &&
         validate("           rstd", dr, rstd, 1e-4f) && ok;
    const float ms = time_ms([&] { launch(kernel, block, dy, dm, dr, dx, dw, db, N, C); });
    // Bytes moved: x read, y written (the weights stay in cache).
    const double gbps = 2.0 * double(N) * C * sizeof(float) / (ms * 1e-3) / 1e9;
    std::printf("kernel %d, block %4d: %.4f ms, %.0f GB/s\n", kernel, block, ms, gbps);
    CUDA_CHECK(cudaFree(dy));
    CUDA_CHECK(cudaFree(dm));
    CUDA_CHECK(cudaFree(dr));
  }
  CUDA_CHECK(cudaFree(dx));
  CUDA_CHECK(cudaFree(dw));
  CUDA_CHECK(cudaFree(db));
  return ok ? 0 : 1;
}
