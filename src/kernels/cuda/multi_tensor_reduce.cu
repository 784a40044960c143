// Multi-tensor norm (gradient clipping), scaling by a device-side factor, and unscaling with an
// overflow flag (loss scaling) — Note [multi-tensor apply]. None of them reads back to the host.
#include <cmath>
#include <map>

#include "kernels/cuda/multi_tensor_apply.cuh"
#include "kernels/dispatch.h"
#include "kernels/optim_update.h"

namespace kirzl::kernels::cuda {

namespace {

using mt::kIlp;

template <typename T> struct MathOf { using type = float; };
template <> struct MathOf<double> { using type = double; };
template <typename T> using math_t = typename MathOf<T>::type;

enum class NormKind : int { Two, One, Inf, General };

struct Add {
  __device__ double operator()(double a, double b) const { return a + b; }
};
/// max that propagates NaN, as the CPU's MaxAbs.
struct MaxNan {
  __device__ double operator()(double a, double b) const {
    if (isnan(a) || isnan(b)) return nan("");
    return a > b ? a : b;
  }
};

__device__ __forceinline__ double norm_term(double x, NormKind kind, double p) {
  switch (kind) {
    case NormKind::Two: return x * x;
    case NormKind::One:
    case NormKind::Inf: return fabs(x);
    default: return pow(fabs(x), p);
  }
}

template <typename T>
__global__ void __launch_bounds__(mt::kThreads)
    norm_partials_kernel(const __grid_constant__ mt::Meta<1, 0> meta, NormKind kind, double p, double* partials,
                         int64_t chunk_base) {
  __shared__ double scratch[mt::kThreads / 32];
  const int t = meta.block_tensor[blockIdx.x];
  const int64_t start = static_cast<int64_t>(meta.block_chunk[blockIdx.x]) * mt::kChunk;
  const int64_t n = meta.sizes[t] - start < mt::kChunk ? meta.sizes[t] - start : mt::kChunk;
  const T* x = static_cast<const T*>(meta.ptrs[0][t]) + start;
  const bool vec = mt::aligned<T>(x);
  double s = 0.0;
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < n; i += int64_t{blockDim.x} * kIlp) {
    double v[kIlp];
    mt::load(v, x, i, n, vec && i + kIlp <= n);  // zeros past n add nothing to any norm
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const double term = norm_term(v[k], kind, p);
      s = kind == NormKind::Inf ? MaxNan{}(s, term) : s + term;
    }
  }
  s = kind == NormKind::Inf ? mt::block_reduce(s, scratch, MaxNan{}) : mt::block_reduce(s, scratch, Add{});
  if (threadIdx.x == 0) partials[chunk_base + meta.first_chunk[t] + meta.block_chunk[blockIdx.x]] = s;
}

/// One block: the partials in a fixed order, then the root.
__global__ void __launch_bounds__(mt::kThreads)
    norm_finish_kernel(const double* partials, int64_t n, NormKind kind, double p, double* out64, float* out32) {
  __shared__ double scratch[mt::kThreads / 32];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s = kind == NormKind::Inf ? MaxNan{}(s, partials[i]) : s + partials[i];
  s = kind == NormKind::Inf ? mt::block_reduce(s, scratch, MaxNan{}) : mt::block_reduce(s, scratch, Add{});
  if (threadIdx.x == 0) {
    const double total = kind == NormKind::Two ? sqrt(s) : kind == NormKind::General ? pow(s, 1.0 / p) : s;
    *out64 = total;
    *out32 = static_cast<float>(total);
  }
}

template <typename T>
__global__ void __launch_bounds__(mt::kThreads)
    clip_kernel(const __grid_constant__ mt::Meta<1, 0> meta, const double* total, double max_norm) {
  using M = math_t<T>;
  const double norm = *total;
  const double coef = max_norm / (norm + 1e-6);
  if (!isfinite(norm) || !(coef < 1.0)) return;  // as the CPU: unchanged when not clipping
  const M cm = static_cast<M>(coef);
  const int t = meta.block_tensor[blockIdx.x];
  const int64_t start = static_cast<int64_t>(meta.block_chunk[blockIdx.x]) * mt::kChunk;
  const int64_t n = meta.sizes[t] - start < mt::kChunk ? meta.sizes[t] - start : mt::kChunk;
  T* x = static_cast<T*>(meta.ptrs[0][t]) + start;
  const bool vec = mt::aligned<T>(x);
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < n; i += int64_t{blockDim.x} * kIlp) {
    const bool v = vec && i + kIlp <= n;
    M a[kIlp];
    mt::load(a, x, i, n, v);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) a[k] = a[k] * cm;
    mt::store(x, a, i, n, v);
  }
}

template <typename T>
__global__ void __launch_bounds__(mt::kThreads)
    unscale_kernel(const __grid_constant__ mt::Meta<1, 0> meta, math_t<T> inv_scale, float* found_inf) {
  using M = math_t<T>;
  const int t = meta.block_tensor[blockIdx.x];
  const int64_t start = static_cast<int64_t>(meta.block_chunk[blockIdx.x]) * mt::kChunk;
  const int64_t n = meta.sizes[t] - start < mt::kChunk ? meta.sizes[t] - start : mt::kChunk;
  T* x = static_cast<T*>(meta.ptrs[0][t]) + start;
  const bool vec = mt::aligned<T>(x);
  bool bad = false;
  for (int64_t i = threadIdx.x * int64_t{kIlp}; i < n; i += int64_t{blockDim.x} * kIlp) {
    const bool v = vec && i + kIlp <= n;
    M a[kIlp];
    mt::load(a, x, i, n, v);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      bad = bad || !isfinite(a[k]);
      a[k] = a[k] * inv_scale;
    }
    mt::store(x, a, i, n, v);
  }
  // Every writer stores the same value, so the flag does not depend on the order.
  if (bad) *found_inf = 1.0f;
}

/// The tensors grouped by dtype (list order kept within a dtype), checked.
std::map<DType, std::vector<mt::Entry<1, 0>>> by_dtype(const char* who, const std::vector<Tensor>& tensors) {
  std::map<DType, std::vector<mt::Entry<1, 0>>> out;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = tensors[k];
    KIRZL_CHECK(t.defined() && t.device().is_cuda() && t.device() == tensors[0].device() && t.is_contiguous() &&
                    is_floating(t.dtype()),
                who, ": tensor ", k, " is ", t.defined() ? t.describe() : std::string("undefined"),
                "; expected contiguous floating tensors on one CUDA device (", tensors[0].device().str(), ")");
    mt::Entry<1, 0> e;
    e.ptrs[0] = t.data_ptr();
    e.size = t.numel();
    out[t.dtype()].push_back(e);
  }
  return out;
}

}  // namespace

std::pair<Tensor, Tensor> multi_tensor_norm(const std::vector<Tensor>& tensors, double norm_type) {
  const char* who = "clip_grad_norm (CUDA norm)";
  KIRZL_CHECK(!tensors.empty(), who, ": needs at least one tensor to know the device");
  KIRZL_CHECK(norm_type > 0.0, who, ": 'norm_type' must be > 0 (or infinity), got ", norm_type);
  const NormKind kind = std::isinf(norm_type) ? NormKind::Inf
                        : norm_type == 2.0    ? NormKind::Two
                        : norm_type == 1.0    ? NormKind::One
                                              : NormKind::General;
  auto classes = by_dtype(who, tensors);
  const Device dev = tensors[0].device();
  cudaStream_t stream = prepare(tensors[0]);
  int64_t chunks = 0;
  for (const auto& [dt, entries] : classes) chunks += mt::total_chunks(entries);
  Tensor partials = empty({std::max<int64_t>(chunks, 1)}, TensorOptions{.dtype = DType::f64, .device = dev});
  Tensor out64 = empty({}, TensorOptions{.dtype = DType::f64, .device = dev});
  Tensor out32 = empty({}, TensorOptions{.dtype = DType::f32, .device = dev});
  double* part = partials.data<double>();
  int64_t base = 0;
  for (const auto& [dt, entries] : classes) {
    dispatch_floating(dt, who, [&]<typename P>() {
      using T = device_t<P>;
      mt::apply(entries, [&](const mt::Meta<1, 0>& meta, int blocks) {
        norm_partials_kernel<T><<<blocks, mt::kThreads, 0, stream>>>(meta, kind, norm_type, part, base);
        KIRZL_CUDA_LAUNCH_CHECK();
      });
    });
    base += mt::total_chunks(entries);
  }
  norm_finish_kernel<<<1, mt::kThreads, 0, stream>>>(part, chunks, kind, norm_type, out64.data<double>(),
                                                     out32.data<float>());
  KIRZL_CUDA_LAUNCH_CHECK();
  mt::launch_counter().fetch_add(1, std::memory_order_relaxed);
  return {out64, out32};
}

void multi_tensor_clip_by_norm(const std::vector<Tensor>& tensors, const Tensor& total, double max_norm) {
  const char* who = "clip_grad_norm (CUDA scale)";
  if (tensors.empty()) return;
  KIRZL_CHECK(total.defined() && total.numel() == 1 && total.dtype() == DType::f64 &&
                  total.device() == tensors[0].device(),
              who, ": the total norm must be a 1-element f64 tensor on ", tensors[0].device().str(), ", got ",
              total.describe());
  auto classes = by_dtype(who, tensors);
  cudaStream_t stream = prepare(tensors[0]);
  const double* tot = total.data<double>();
  for (const auto& [dt, entries] : classes)
    dispatch_floating(dt, who, [&]<typename P>() {
      using T = device_t<P>;
      mt::apply(entries, [&](const mt::Meta<1, 0>& meta, int blocks) {
        clip_kernel<T><<<blocks, mt::kThreads, 0, stream>>>(meta, tot, max_norm);
        KIRZL_CUDA_LAUNCH_CHECK();
      });
    });
}

void multi_tensor_unscale(const std::vector<Tensor>& tensors, double inv_scale, const Tensor& found_inf,
                          bool reset) {
  const char* who = "GradScaler.unscale_ (CUDA)";
  if (reset) {
    KIRZL_CHECK(found_inf.defined() && found_inf.device().is_cuda() && found_inf.is_contiguous(), who,
                ": found_inf must be a contiguous CUDA tensor, got ", found_inf.describe());
    cudaStream_t s = prepare(found_inf);
    KIRZL_CUDA_CHECK(cudaMemsetAsync(found_inf.data_ptr(), 0, found_inf.numel() * dtype_size(found_inf.dtype()), s));
  }
  if (tensors.empty()) return;
  KIRZL_CHECK(found_inf.defined() && found_inf.numel() == 1 && found_inf.dtype() == DType::f32 &&
                  found_inf.device() == tensors[0].device(),
              who, ": found_inf must be a 1-element f32 tensor on ", tensors[0].device().str(), ", got ",
              found_inf.describe());
  auto classes = by_dtype(who, tensors);
  cudaStream_t stream = prepare(tensors[0]);
  float* flag = found_inf.data<float>();
  for (const auto& [dt, entries] : classes)
    dispatch_floating(dt, who, [&]<typename P>() {
      using T = device_t<P>;
      const math_t<T> inv = static_cast<math_t<T>>(inv_scale);
      mt::apply(entries, [&](const mt::Meta<1, 0>& meta, int blocks) {
        unscale_kernel<T><<<blocks, mt::kThreads, 0, stream>>>(meta, inv, flag);
        KIRZL_CUDA_LAUNCH_CHECK();
      });
    });
}

void register_multi_tensor_reduce_kernels() {
  KIRZL_REGISTER_KERNEL(multi_tensor_norm, DeviceType::CUDA, &multi_tensor_norm);
  KIRZL_REGISTER_KERNEL(multi_tensor_clip_by_norm, DeviceType::CUDA, &multi_tensor_clip_by_norm);
  KIRZL_REGISTER_KERNEL(multi_tensor_unscale, DeviceType::CUDA, &multi_tensor_unscale);
}

}  // namespace kirzl::kernels::cuda
