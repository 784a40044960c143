// CUDA 2-D max / average pooling over contiguous [planes, H, W] tensors.
//
// Forward: a thread per output element, scanning its window like the CPU (the first maximum wins
// ties, the first NaN wins over numbers). Backward: Note [pool backward gather]: a thread per
// input element adds the gradients of the windows that cover it, in increasing output order, so
// overlapping windows and padding need no atomics and the result is the same on every run.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/pool.h"

namespace kirzl::kernels::cuda {

namespace {

using G = Pool2dGeometry;

__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// The outputs whose window covers input row h: oh in [first, last], clipped to [0, Ho).
__device__ __forceinline__ void covering(int64_t h, int64_t pad, int64_t k, int64_t s, int64_t out, int64_t& first,
                                         int64_t& last) {
  // oh * s - pad <= h < oh * s - pad + k  <=>  (h + pad - k) / s < oh <= (h + pad) / s
  const int64_t hp = h + pad;
  first = hp - k < 0 ? 0 : (hp - k) / s + 1;
  last = imin(hp / s, out - 1);
}

// Divisor of output (oh, ow) of average pooling, as on the CPU.
__device__ __forceinline__ int64_t avg_divisor(const G& g, int64_t oh, int64_t ow, bool include_pad) {
  const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  if (include_pad) return (imin(hs + g.kh, g.H + g.ph) - hs) * (imin(ws + g.kw, g.W + g.pw) - ws);
  return (imin(hs + g.kh, g.H) - imax(hs, 0)) * (imin(ws + g.kw, g.W) - imax(ws, 0));
}

template <typename T>
__global__ void max_pool_forward_kernel(T* __restrict__ out, int64_t* __restrict__ indices, const T* __restrict__ x,
                                        G g) {
  using A = dacc_t<T>;
  const int64_t total = g.planes * g.Ho * g.Wo;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = o % g.Wo, oh = (o / g.Wo) % g.Ho, p = o / (g.Wo * g.Ho);
    const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int64_t h0 = imax(hs, 0), h1 = imin(hs + g.kh, g.H), w0 = imax(ws, 0), w1 = imin(ws + g.kw, g.W);
    const T* xs = x + p * g.H * g.W;
    A best = -INFINITY;
    int64_t arg = h0 * g.W + w0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t c = w0; c < w1; ++c) {
        const A v = load_acc(xs[h * g.W + c]);
        if (v > best || (v != v && best == best)) {
          best = v;
          arg = h * g.W + c;
        }
      }
    out[o] = store_as<T>(best);
    if (indices) indices[o] = arg;
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(T* __restrict__ gx, const T* __restrict__ gout,
                                         const int64_t* __restrict__ indices, G g) {
  using A = dacc_t<T>;
  const int64_t total = g.planes * g.H * g.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, p = i / (g.W * g.H);
    const int64_t self = h * g.W + w;
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.ph, g.kh, g.sh, g.Ho, oh0, oh1);
    covering(w, g.pw, g.kw, g.sw, g.Wo, ow0, ow1);
    A acc = 0;
    const int64_t base = p * g.Ho * g.Wo;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + oh * g.Wo + ow;
        if (indices[o] == self) acc += load_acc(gout[o]);
      }
    gx[i] = store_as<T>(acc);
  }
}

template <typename T>
__global__ void avg_pool_forward_kernel(T* __restrict__ out, const T* __restrict__ x, G g, bool include_pad) {
  using A = dacc_t<T>;
  const int64_t total = g.planes * g.Ho * g.Wo;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = o % g.Wo, oh = (o / g.Wo) % g.Ho, p = o / (g.Wo * g.Ho);
    const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int64_t h0 = imax(hs, 0), h1 = imin(hs + g.kh, g.H), w0 = imax(ws, 0), w1 = imin(ws + g.kw, g.W);
    const T* xs = x + p * g.H * g.W;
    A s = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t c = w0; c < w1; ++c) s += load_acc(xs[h * g.W + c]);
    out[o] = store_as<T>(s / static_cast<A>(avg_divisor(g, oh, ow, include_pad)));
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(T* __restrict__ gx, const T* __restrict__ gout, G g, bool include_pad) {
  using A = dacc_t<T>;
  const int64_t total = g.planes * g.H * g.W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, p = i / (g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.ph, g.kh, g.sh, g.Ho, oh0, oh1);
    covering(w, g.pw, g.kw, g.sw, g.Wo, ow0, ow1);
    A acc = 0;
    const int64_t base = p * g.Ho * g.Wo;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        acc += load_acc(gout[base + oh * g.Wo + ow]) / static_cast<A>(avg_divisor(g, oh, ow, include_pad));
    gx[i] = store_as<T>(acc);
  }
}

}  // namespace

void max_pool2d_forward(Tensor& out, Tensor& indices, const Tensor& x, const Pool2dGeometry& g) {
  const int64_t total = g.planes * g.Ho * g.Wo;
  if (total == 0) return;
  cudaStream_t stream = prepare(x);
  dispatch_floating(x.dtype(), "max_pool2d", [&]<typename T0>() {
    using T = device_t<T0>;
    int64_t* ip = indices.defined() ? static_cast<int64_t*>(indices.data_ptr()) : nullptr;
    max_pool_forward_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(dptr<T0>(out), ip, dptr<T0>(x), g);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void max_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Tensor& indices, const Pool2dGeometry& g) {
  const int64_t total = g.planes * g.H * g.W;
  if (total == 0) return;
  cudaStream_t stream = prepare(grad_x);
  dispatch_floating(grad_x.dtype(), "max_pool2d backward", [&]<typename T0>() {
    using T = device_t<T0>;
    max_pool_backward_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(
        dptr<T0>(grad_x), dptr<T0>(grad_out), static_cast<const int64_t*>(indices.data_ptr()), g);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void avg_pool2d_forward(Tensor& out, const Tensor& x, const Pool2dGeometry& g, bool count_include_pad) {
  const int64_t total = g.planes * g.Ho * g.Wo;
  if (total == 0) return;
  cudaStream_t stream = prepare(x);
  dispatch_floating(x.dtype(), "avg_pool2d", [&]<typename T0>() {
    using T = device_t<T0>;
    avg_pool_forward_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(dptr<T0>(out), dptr<T0>(x), g, count_include_pad);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void avg_pool2d_backward(Tensor& grad_x, const Tensor& grad_out, const Pool2dGeometry& g, bool count_include_pad) {
  const int64_t total = g.planes * g.H * g.W;
  if (total == 0) return;
  cudaStream_t stream = prepare(grad_x);
  dispatch_floating(grad_x.dtype(), "avg_pool2d backward", [&]<typename T0>() {
    using T = device_t<T0>;
    avg_pool_backward_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(dptr<T0>(grad_x), dptr<T0>(grad_out), g,
                                                                          count_include_pad);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void register_pool_kernels() {
  KIRZL_REGISTER_KERNEL(max_pool2d_forward, DeviceType::CUDA, &max_pool2d_forward);
  KIRZL_REGISTER_KERNEL(max_pool2d_backward, DeviceType::CUDA, &max_pool2d_backward);
  KIRZL_REGISTER_KERNEL(avg_pool2d_forward, DeviceType::CUDA, &avg_pool2d_forward);
  KIRZL_REGISTER_KERNEL(avg_pool2d_backward, DeviceType::CUDA, &avg_pool2d_backward);
}

}  // namespace kirzl::kernels::cuda
