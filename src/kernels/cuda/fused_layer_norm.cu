// residual add + LayerNorm on CUDA. Rows that fit the register path of layer_norm.cu take it
// (Note [layer norm on CUDA]: a warp per row held in registers, 16-byte loads, gw/gb by fixed-order
// partial sums); the others: one warp per row (the row stays in L1 between its passes), weight/bias
// gradients by deterministic row-chunk partial sums (fused_colsum.cuh).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fused_colsum.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/dispatch.h"
#include "kernels/fused_layer_norm.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // warps per block, one row each

template <typename E>
__global__ void residual_ln_fwd_kernel(E* __restrict__ sum, E* __restrict__ y, dacc_t<E>* __restrict__ mean,
                                       dacc_t<E>* __restrict__ rstd, const E* __restrict__ x,
                                       const E* __restrict__ res, const E* __restrict__ w, const E* __restrict__ b,
                                       int64_t m, int64_t n, dacc_t<E> eps) {
  using A = dacc_t<E>;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (r >= m) return;
  const int lane = threadIdx.x % 32;
  const E *xr = x + r * n, *rr = res + r * n;
  E* sr = sum + r * n;
  A acc = 0;
  for (int64_t j = lane; j < n; j += 32) {
    const E s = store_as<E>(load_acc(xr[j]) + load_acc(rr[j]));
    sr[j] = s;
    acc += load_acc(s);
  }
  const A mu = warp_sum(acc) / static_cast<A>(n);
  // Each lane re-reads only what it wrote itself: no barrier needed.
  A var = 0;
  for (int64_t j = lane; j < n; j += 32) {
    const A d = load_acc(sr[j]) - mu;
    var += d * d;
  }
  var = warp_sum(var) / static_cast<A>(n);
  const A rs = A(1) / sqrt(var + eps);
  if (lane == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
  E* yr = y + r * n;
  for (int64_t j = lane; j < n; j += 32) {
    A v = (load_acc(sr[j]) - mu) * rs;
    if (w) v *= load_acc(w[j]);
    if (b) v += load_acc(b[j]);
    yr[j] = store_as<E>(v);
  }
}

template <typename E>
__global__ void residual_ln_bwd_kernel(E* __restrict__ gx, const E* __restrict__ gy, const E* __restrict__ gsum,
                                       const E* __restrict__ sum, const dacc_t<E>* __restrict__ mean,
                                       const dacc_t<E>* __restrict__ rstd, const E* __restrict__ w, int64_t m,
                                       int64_t n) {
  using A = dacc_t<E>;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  if (r >= m) return;
  const int lane = threadIdx.x % 32;
  const E *gr = gy + r * n, *sr = sum + r * n;
  const A mu = mean[r], rs = rstd[r];
  A s1 = 0, s2 = 0;
  for (int64_t j = lane; j < n; j += 32) {
    const A dxh = load_acc(gr[j]) * (w ? load_acc(w[j]) : A(1));
    s1 += dxh;
    s2 += dxh * (load_acc(sr[j]) - mu) * rs;
  }
  s1 = warp_sum(s1) / static_cast<A>(n);
  s2 = warp_sum(s2) / static_cast<A>(n);
  E* out = gx + r * n;
  for (int64_t j = lane; j < n; j += 32) {
    const A dxh = load_acc(gr[j]) * (w ? load_acc(w[j]) : A(1));
    const A xh = (load_acc(sr[j]) - mu) * rs;
    A v = rs * (dxh - s1 - xh * s2);
    if (gsum) v += load_acc(gsum[r * n + j]);
    out[j] = store_as<E>(v);
  }
}

// Partial sums over one row chunk of gy * xhat (weight) and gy (bias), per column.
template <typename E>
__global__ void residual_ln_param_kernel(dacc_t<E>* __restrict__ pw, dacc_t<E>* __restrict__ pb,
                                         const E* __restrict__ gy, const E* __restrict__ sum,
                                         const dacc_t<E>* __restrict__ mean, const dacc_t<E>* __restrict__ rstd,
                                         int64_t m, int64_t n, int64_t rows_per_chunk) {
  using A = dacc_t<E>;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(m, r0 + rows_per_chunk);
  A aw = 0, ab = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const A g = load_acc(gy[r * n + j]);
    aw += g * (load_acc(sum[r * n + j]) - mean[r]) * rstd[r];
    ab += g;
  }
  pw[blockIdx.y * n + j] = aw;
  pb[blockIdx.y * n + j] = ab;
}

}  // namespace

void residual_layer_norm_forward(Tensor& sum, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                                 const Tensor& residual, const Tensor& weight, const Tensor& bias, int64_t n,
                                 double eps) {
  const int64_t m = n == 0 ? 0 : x.numel() / n;
  if (m == 0) return;
  cudaStream_t stream = prepare(x);
  dispatch_floating(x.dtype(), "residual_layer_norm", [&]<typename T>() {
    using E = device_t<T>;
    using A = dacc_t<E>;
    const E* wp = weight.defined() ? dptr<T>(weight) : nullptr;
    const E* bp = bias.defined() ? dptr<T>(bias) : nullptr;
    const bool vec = pack_aligned<E>(x.data_ptr(), n) && pack_aligned<E>(residual.data_ptr(), n) &&
                     pack_aligned<E>(sum.data_ptr(), n) && pack_aligned<E>(y.data_ptr(), n) &&
                     (!wp || pack_aligned<E>(wp, n)) && (!bp || pack_aligned<E>(bp, n));
    if (ln_forward_warp<E, true>(dptr<T>(y), static_cast<A*>(mean.data_ptr()), static_cast<A*>(rstd.data_ptr()),
                                 dptr<T>(x), wp, bp, m, n, static_cast<A>(eps), vec, stream, dptr<T>(sum),
                                 dptr<T>(residual)))
      return;
    residual_ln_fwd_kernel<E><<<static_cast<unsigned>((m + kRowsPerBlock - 1) / kRowsPerBlock), 32 * kRowsPerBlock, 0,
                                stream>>>(
        dptr<T>(sum), dptr<T>(y), static_cast<A*>(mean.data_ptr()), static_cast<A*>(rstd.data_ptr()), dptr<T>(x),
        dptr<T>(residual), weight.defined() ? dptr<T>(weight) : nullptr, bias.defined() ? dptr<T>(bias) : nullptr, m,
        n, static_cast<A>(eps));
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void residual_layer_norm_backward(Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& g_y, const Tensor& g_sum,
                                  const Tensor& sum, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                  int64_t n) {
  const int64_t m = n == 0 ? 0 : sum.numel() / n;
  if (n == 0) return;
  cudaStream_t stream = prepare(sum);
  dispatch_floating(sum.dtype(), "residual_layer_norm_backward", [&]<typename T>() {
    using E = device_t<T>;
    using A = dacc_t<E>;
    const A* mp = static_cast<const A*>(mean.data_ptr());
    const A* rp = static_cast<const A*>(rstd.data_ptr());
    {
      E* gxp = gx.defined() ? dptr<T>(gx) : nullptr;
      const E* wp = weight.defined() ? dptr<T>(weight) : nullptr;
      const E* gsp = g_sum.defined() ? dptr<T>(g_sum) : nullptr;
      const bool vec = pack_aligned<E>(g_y.data_ptr(), n) && pack_aligned<E>(sum.data_ptr(), n) &&
                       (!gxp || pack_aligned<E>(gxp, n)) && (!wp || pack_aligned<E>(wp, n)) &&
                       (!gsp || pack_aligned<E>(gsp, n));
      if (ln_backward_warp<E>(gxp, gw.defined() ? dptr<T>(gw) : nullptr, gb.defined() ? dptr<T>(gb) : nullptr,
                              dptr<T>(g_y), dptr<T>(sum), mp, rp, wp, m, n, vec, sum.device(), stream, gsp))
        return;
    }
    if (gx.defined() && m > 0) {
      residual_ln_bwd_kernel<E><<<static_cast<unsigned>((m + kRowsPerBlock - 1) / kRowsPerBlock), 32 * kRowsPerBlock,
                                  0, stream>>>(dptr<T>(gx), dptr<T>(g_y), g_sum.defined() ? dptr<T>(g_sum) : nullptr,
                                               dptr<T>(sum), mp, rp, weight.defined() ? dptr<T>(weight) : nullptr, m,
                                               n);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
    if (!gw.defined() && !gb.defined()) return;
    const int64_t per = colsum_rows_per_chunk(m);
    const int64_t chunks = std::max<int64_t>(1, (m + per - 1) / per);
    const DType acc = sum.dtype() == DType::f64 ? DType::f64 : DType::f32;
    Tensor pw = empty({chunks, n}, {.dtype = acc, .device = sum.device()});
    Tensor pb = empty({chunks, n}, {.dtype = acc, .device = sum.device()});
    if (m > 0) {
      const dim3 grid(static_cast<unsigned>((n + 255) / 256), static_cast<unsigned>(chunks));
      residual_ln_param_kernel<E><<<grid, 256, 0, stream>>>(static_cast<A*>(pw.data_ptr()),
                                                            static_cast<A*>(pb.data_ptr()), dptr<T>(g_y),
                                                            dptr<T>(sum), mp, rp, m, n, per);
      KIRZL_CUDA_LAUNCH_CHECK();
    } else {
      pw.zero_();
      pb.zero_();
    }
    const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
    if (gw.defined()) {
      colsum_finish_kernel<E, A><<<blocks, 256, 0, stream>>>(dptr<T>(gw), static_cast<const A*>(pw.data_ptr()), chunks, n);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
    if (gb.defined()) {
      colsum_finish_kernel<E, A><<<blocks, 256, 0, stream>>>(dptr<T>(gb), static_cast<const A*>(pb.data_ptr()), chunks, n);
      KIRZL_CUDA_LAUNCH_CHECK();
    }
  });
}

void register_fused_layer_norm_kernels() {
  KIRZL_REGISTER_KERNEL(residual_layer_norm_forward, DeviceType::CUDA, &residual_layer_norm_forward);
  KIRZL_REGISTER_KERNEL(residual_layer_norm_backward, DeviceType::CUDA, &residual_layer_norm_backward);
}

}  // namespace kirzl::kernels::cuda
