// CUDA cross-entropy fused with log-softmax: the forward reads each row of logits once (online
// max/sum, Note [online softmax]) and writes only the row's loss and log-sum-exp; the backward
// reads the logits once more and writes the gradient once. Probabilities are never stored.
//
// Rows: logits [N, C, S...] have N*S rows of C classes, stepping by S (Note [dim rows] of the CPU
// kernels). S == 1 (the [N, C] case): a warp or block per row with 16-byte loads; otherwise a
// thread per row, neighbouring threads on neighbouring positions so that reads coalesce.
//
// A target outside [0, C) that is not ignore_index reaches these kernels through the op on CUDA
// before the deferred check reports it (Note [device index check]), and directly called ones may
// get one too: they read nothing out of range and write NaN for that row's loss and gradient.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/nn_common.cuh"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cuda {

namespace {

struct Rows {
  int64_t rows, n, inner;  // inner == 1: contiguous rows
};

Rows rows_of(const Tensor& logits) {
  if (logits.dim() == 1) return {1, logits.size(0), 1};
  int64_t inner = 1;
  for (int64_t i = 2; i < logits.dim(); ++i) inner *= logits.size(i);
  return {logits.size(0) * inner, logits.size(1), inner};
}

__device__ __forceinline__ int64_t row_base(int64_t r, int64_t n, int64_t inner) {
  return (r / inner) * n * inner + r % inner;
}

// Loss from the row's lse, its target logit and (for smoothing) the sum of its logits:
// -sum_c q_c log p_c with q = (1 - eps) onehot + eps / C and log p_c = x_c - lse.
template <typename A>
__device__ __forceinline__ A row_loss(A lse, A xt, A sum, int64_t n, A eps) {
  const A nll = lse - xt;
  return eps == A(0) ? nll : (A(1) - eps) * nll + eps * (lse - sum / static_cast<A>(n));
}

template <typename T, typename I, bool kWarp>
__global__ void ce_forward_last_kernel(dacc_t<T>* __restrict__ losses, dacc_t<T>* __restrict__ lse_out,
                                       const T* __restrict__ x, const I* __restrict__ targets, int64_t rows, int64_t n,
                                       int64_t ignore_index, dacc_t<T> eps, bool vec) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  __shared__ Online<A> smem_st[32];
  __shared__ A smem_sum[32];
  const int tid = kWarp ? (threadIdx.x & 31) : threadIdx.x;
  const int nth = kWarp ? 32 : blockDim.x;
  const int64_t per_block = kWarp ? blockDim.x / 32 : 1;
  const int64_t first = blockIdx.x * per_block + (kWarp ? threadIdx.x / 32 : 0);
  for (int64_t r = first; r < rows; r += gridDim.x * per_block) {
    const T* xr = x + r * n;
    Online<A> st{-INFINITY, A(0)};
    A sum = 0;
    if (vec) {
      for (int64_t k = tid; k < n / N; k += nth) {
        A v[N];
        load_pack(xr + k * N, v);
        A pm = v[0];
#pragma unroll
        for (int i = 1; i < N; ++i) pm = nan_max(pm, v[i]);
        online_add<T, N>(st, v, N, pm);
        if (eps != A(0)) {
#pragma unroll
          for (int i = 0; i < N; ++i) sum += v[i];
        }
      }
    } else {
      for (int64_t j = tid; j < n; j += nth) {
        const A v[1] = {load_acc(xr[j])};
        online_add<T, 1>(st, v, 1, v[0]);
        sum += v[0];
      }
    }
    st = group_online<kWarp, T>(st, smem_st);
    if (eps != A(0)) sum = group_sum<kWarp>(sum, smem_sum);
    if (tid == 0) {
      // log(0) = -inf for an all -inf row: the loss is then NaN, as on the CPU.
      const A l = st.m == -INFINITY ? A(-INFINITY) : st.m + ::log(st.s);
      lse_out[r] = l;
      const int64_t t = static_cast<int64_t>(targets[r]);
      if (t == ignore_index) losses[r] = 0;
      else if (t < 0 || t >= n) losses[r] = NAN;
      else losses[r] = row_loss(l, load_acc(xr[t]), sum, n, eps);
    }
  }
}

template <typename T, typename I>
__global__ void ce_forward_strided_kernel(dacc_t<T>* __restrict__ losses, dacc_t<T>* __restrict__ lse_out,
                                          const T* __restrict__ x, const I* __restrict__ targets, int64_t rows,
                                          int64_t n, int64_t inner, int64_t ignore_index, dacc_t<T> eps) {
  using A = dacc_t<T>;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = row_base(r, n, inner);
    Online<A> st{-INFINITY, A(0)};
    A sum = 0;
    for (int64_t c = 0; c < n; ++c) {
      const A v[1] = {load_acc(x[b + c * inner])};
      online_add<T, 1>(st, v, 1, v[0]);
      sum += v[0];
    }
    const A l = st.m == -INFINITY ? A(-INFINITY) : st.m + ::log(st.s);
    lse_out[r] = l;
    const int64_t t = static_cast<int64_t>(targets[r]);
    if (t == ignore_index) losses[r] = 0;
    else if (t < 0 || t >= n) losses[r] = NAN;
    else losses[r] = row_loss(l, load_acc(x[b + t * inner]), sum, n, eps);
  }
}

// The gradient of one class: (p_c - eps / C - [c == t] (1 - eps)) * w.
template <typename T>
__device__ __forceinline__ dacc_t<T> ce_grad(dacc_t<T> v, dacc_t<T> l, dacc_t<T> off, dacc_t<T> on, dacc_t<T> w,
                                             bool is_target) {
  return (acc_exp<T>(v - l) - off - (is_target ? on : dacc_t<T>(0))) * w;
}

// The row's weight w = grad * scale, or NaN for an out-of-range target; `skip` for ignored rows.
template <typename T, typename I>
__device__ __forceinline__ dacc_t<T> row_weight(const T* grad, bool per_row, int64_t r, int64_t t, int64_t n,
                                                int64_t ignore_index, dacc_t<T> scale, bool& skip) {
  skip = t == ignore_index;
  if (t < 0 || t >= n) return NAN;
  return load_acc(grad[per_row ? r : 0]) * scale;
}

template <typename T, typename I, bool kWarp>
__global__ void ce_backward_last_kernel(T* __restrict__ gx, const T* __restrict__ x, const I* __restrict__ targets,
                                        const dacc_t<T>* __restrict__ lse, const T* __restrict__ grad, bool per_row,
                                        dacc_t<T> scale, int64_t rows, int64_t n, int64_t ignore_index,
                                        dacc_t<T> eps, bool vec) {
  using A = dacc_t<T>;
  constexpr int N = kPack<T>;
  const int tid = kWarp ? (threadIdx.x & 31) : threadIdx.x;
  const int nth = kWarp ? 32 : blockDim.x;
  const int64_t per_block = kWarp ? blockDim.x / 32 : 1;
  const int64_t first = blockIdx.x * per_block + (kWarp ? threadIdx.x / 32 : 0);
  const A off = eps / static_cast<A>(n), on = A(1) - eps;
  for (int64_t r = first; r < rows; r += gridDim.x * per_block) {
    const T* xr = x + r * n;
    T* out = gx + r * n;
    const int64_t t = static_cast<int64_t>(targets[r]);
    bool skip;
    const A w = row_weight<T, I>(grad, per_row, r, t, n, ignore_index, scale, skip);
    const A l = lse[r];
    if (vec) {
      for (int64_t k = tid; k < n / N; k += nth) {
        A v[N];
        if (skip) {
#pragma unroll
          for (int i = 0; i < N; ++i) v[i] = 0;
        } else {
          load_pack(xr + k * N, v);
#pragma unroll
          for (int i = 0; i < N; ++i) v[i] = ce_grad<T>(v[i], l, off, on, w, k * N + i == t);
        }
        store_pack(out + k * N, v);
      }
    } else {
      for (int64_t j = tid; j < n; j += nth)
        out[j] = store_as<T>(skip ? A(0) : ce_grad<T>(load_acc(xr[j]), l, off, on, w, j == t));
    }
  }
}

template <typename T, typename I>
__global__ void ce_backward_strided_kernel(T* __restrict__ gx, const T* __restrict__ x, const I* __restrict__ targets,
                                           const dacc_t<T>* __restrict__ lse, const T* __restrict__ grad, bool per_row,
                                           dacc_t<T> scale, int64_t rows, int64_t n, int64_t inner,
                                           int64_t ignore_index, dacc_t<T> eps) {
  using A = dacc_t<T>;
  const A off = eps / static_cast<A>(n), on = A(1) - eps;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = row_base(r, n, inner);
    const int64_t t = static_cast<int64_t>(targets[r]);
    bool skip;
    const A w = row_weight<T, I>(grad, per_row, r, t, n, ignore_index, scale, skip);
    const A l = lse[r];
    for (int64_t c = 0; c < n; ++c) {
      const int64_t o = b + c * inner;
      gx[o] = store_as<T>(skip ? A(0) : ce_grad<T>(load_acc(x[o]), l, off, on, w, c == t));
    }
  }
}

template <typename F>
void dispatch_targets(DType t, const char* op, F&& f) {
  if (t == DType::i32) return f.template operator()<int32_t>();
  if (t == DType::i64) return f.template operator()<int64_t>();
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": targets must be i32 or i64 on CUDA, got ", dtype_name(t));
}

}  // namespace

void cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                           int64_t ignore_index, double label_smoothing) {
  const Rows rw = rows_of(logits);
  if (rw.rows == 0) return;
  cudaStream_t stream = prepare(logits);
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<typename T0>() {
    using T = device_t<T0>;
    using A = dacc_t<T>;
    dispatch_targets(targets.dtype(), "cross_entropy", [&]<typename I>() {
      A* lp = static_cast<A*>(losses.data_ptr());
      A* sp = static_cast<A*>(lse.data_ptr());
      const T* xp = dptr<T0>(logits);
      const I* tp = static_cast<const I*>(targets.data_ptr());
      const A eps = static_cast<A>(label_smoothing);
      if (rw.inner == 1) {
        const bool vec = pack_aligned<T>(xp, rw.n);
        const RowLaunch l = row_launch<T>(rw.rows, rw.n);
        if (l.warp)
          ce_forward_last_kernel<T, I, true>
              <<<l.blocks, l.threads, 0, stream>>>(lp, sp, xp, tp, rw.rows, rw.n, ignore_index, eps, vec);
        else
          ce_forward_last_kernel<T, I, false>
              <<<l.blocks, l.threads, 0, stream>>>(lp, sp, xp, tp, rw.rows, rw.n, ignore_index, eps, vec);
      } else {
        ce_forward_strided_kernel<T, I>
            <<<grid_for(rw.rows, 256), 256, 0, stream>>>(lp, sp, xp, tp, rw.rows, rw.n, rw.inner, ignore_index, eps);
      }
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
}

void cross_entropy_backward(Tensor& gx, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& grad, double scale, int64_t ignore_index, double label_smoothing) {
  const Rows rw = rows_of(logits);
  if (rw.rows == 0) return;
  cudaStream_t stream = prepare(logits);
  dispatch_floating(logits.dtype(), "cross_entropy backward", [&]<typename T0>() {
    using T = device_t<T0>;
    using A = dacc_t<T>;
    dispatch_targets(targets.dtype(), "cross_entropy backward", [&]<typename I>() {
      T* out = dptr<T0>(gx);
      const T* xp = dptr<T0>(logits);
      const I* tp = static_cast<const I*>(targets.data_ptr());
      const A* sp = static_cast<const A*>(lse.data_ptr());
      const T* gp = dptr<T0>(grad);
      const bool per_row = grad.numel() != 1;
      const A sc = static_cast<A>(scale), eps = static_cast<A>(label_smoothing);
      if (rw.inner == 1) {
        const bool vec = pack_aligned<T>(xp, rw.n) && pack_aligned<T>(out, rw.n);
        const RowLaunch l = row_launch<T>(rw.rows, rw.n);
        if (l.warp)
          ce_backward_last_kernel<T, I, true><<<l.blocks, l.threads, 0, stream>>>(
              out, xp, tp, sp, gp, per_row, sc, rw.rows, rw.n, ignore_index, eps, vec);
        else
          ce_backward_last_kernel<T, I, false><<<l.blocks, l.threads, 0, stream>>>(
              out, xp, tp, sp, gp, per_row, sc, rw.rows, rw.n, ignore_index, eps, vec);
      } else {
        ce_backward_strided_kernel<T, I><<<grid_for(rw.rows, 256), 256, 0, stream>>>(
            out, xp, tp, sp, gp, per_row, sc, rw.rows, rw.n, rw.inner, ignore_index, eps);
      }
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
}

void register_cross_entropy_kernels() {
  KIRZL_REGISTER_KERNEL(cross_entropy_forward, DeviceType::CUDA, &cross_entropy_forward);
  KIRZL_REGISTER_KERNEL(cross_entropy_backward, DeviceType::CUDA, &cross_entropy_backward);
}

}  // namespace kirzl::kernels::cuda
