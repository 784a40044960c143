// Classifier loss on CUDA: one block per row. Forward: an online (max, sum) per thread over its
// strided share of the row, merged across the block in a fixed tree order. Backward: the gradient
// written over the logits in place.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/fused_classifier.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr int kThreads = 512;

template <typename A> struct MaxSum {
  A m, s;
};

// Merges two online-softmax states; an empty state has m = -inf and s = 0.
template <typename A> __device__ __forceinline__ MaxSum<A> merge(MaxSum<A> a, MaxSum<A> b) {
  const A m = a.m > b.m ? a.m : b.m;
  if (m == -INFINITY) return {m, A(0)};
  return {m, a.s * exp(a.m - m) + b.s * exp(b.m - m)};
}

template <typename E, typename I>
__global__ void __launch_bounds__(kThreads) classifier_fwd_kernel(dacc_t<E>* __restrict__ losses,
                                                                  dacc_t<E>* __restrict__ lse,
                                                                  const E* __restrict__ logits,
                                                                  const I* __restrict__ targets, int64_t v,
                                                                  int64_t classes, int64_t ignore_index) {
  using A = dacc_t<E>;
  const int64_t r = blockIdx.x;
  const E* row = logits + r * v;  // row stride v; columns [classes, v) are padding, no classes
  MaxSum<A> st{-INFINITY, A(0)};
  for (int64_t j = threadIdx.x; j < classes; j += kThreads) {
    const A x = load_acc(row[j]);
    if (x > st.m) {
      st.s = st.s * exp(st.m - x) + A(1);
      st.m = x;
    } else {
      st.s += exp(x - st.m);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum<A> other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o)};
    st = merge(st, other);
  }
  __shared__ A sm[kThreads / 32], ss[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sm[warp] = st.m;
    ss[warp] = st.s;
  }
  __syncthreads();
  if (warp == 0) {
    st = lane < kThreads / 32 ? MaxSum<A>{sm[lane], ss[lane]} : MaxSum<A>{-INFINITY, A(0)};
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      MaxSum<A> other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o)};
      st = merge(st, other);
    }
    if (lane == 0) {
      const A l = st.m + log(st.s);
      lse[r] = l;
      const int64_t t = static_cast<int64_t>(targets[r]);
      // A target out of range reaches this kernel before the deferred check reports it (Note
      // [device index check]): a NaN loss, never a read outside the row.
      losses[r] = t == ignore_index ? A(0) : (t < 0 || t >= classes) ? A(NAN) : l - load_acc(row[t]);
    }
  }
}

template <typename E, typename I, typename G>
__global__ void __launch_bounds__(kThreads) classifier_bwd_kernel(E* __restrict__ logits, const I* __restrict__ targets,
                                                                  const dacc_t<E>* __restrict__ lse,
                                                                  const G* __restrict__ grad, dacc_t<E> scale,
                                                                  int64_t v, int64_t classes, int64_t ignore_index) {
  using A = dacc_t<E>;
  const int64_t r = blockIdx.x;
  E* row = logits + r * v;
  // A target out of range (reported by the deferred check, Note [device index check]) matches no
  // column: the row gets softmax * gs, and nothing outside it is touched.
  const int64_t t = static_cast<int64_t>(targets[r]);
  if (t == ignore_index) {
    for (int64_t j = threadIdx.x; j < v; j += kThreads) row[j] = store_as<E>(A(0));
    return;
  }
  const A gs = static_cast<A>(load_acc(grad[0])) * scale;
  const A l = lse[r];
  for (int64_t j = threadIdx.x; j < v; j += kThreads) {
    if (j >= classes) {  // padding: no gradient
      row[j] = store_as<E>(A(0));
      continue;
    }
    const A p = exp(load_acc(row[j]) - l);
    row[j] = store_as<E>((p - (j == t ? A(1) : A(0))) * gs);
  }
}

}  // namespace

void classifier_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                        int64_t classes, int64_t ignore_index) {
  const int64_t rows = targets.numel();
  if (rows == 0) return;
  const int64_t v = logits.numel() / rows;
  cudaStream_t stream = prepare(logits);
  dispatch_floating(logits.dtype(), "linear_cross_entropy", [&]<typename T>() {
    using E = device_t<T>;
    using A = dacc_t<E>;
    dispatch_integral(targets.dtype(), "linear_cross_entropy", [&]<typename I>() {
      if constexpr (std::is_same_v<I, int32_t> || std::is_same_v<I, int64_t>) {
        classifier_fwd_kernel<E, I><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
            static_cast<A*>(losses.data_ptr()), static_cast<A*>(lse.data_ptr()), dptr<T>(logits),
            targets.data<I>(), v, classes, ignore_index);
        KIRZL_CUDA_LAUNCH_CHECK();
      } else {
        KIRZL_FAIL(ErrorCode::InvalidArgument, "linear_cross_entropy: targets must be i32 or i64");
      }
    });
  });
}

void classifier_backward_inplace(Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& grad,
                                 double scale, int64_t classes, int64_t ignore_index) {
  const int64_t rows = targets.numel();
  if (rows == 0) return;
  KIRZL_CHECK(grad.numel() == 1 && grad.device() == logits.device(), "linear_cross_entropy backward: expected a "
              "one-element gradient on ", logits.device().str(), ", got ", grad.describe());
  const int64_t v = logits.numel() / rows;
  cudaStream_t stream = prepare(logits);
  Tensor gc = grad.contiguous();
  dispatch_floating(logits.dtype(), "linear_cross_entropy_backward", [&]<typename T>() {
    using E = device_t<T>;
    using A = dacc_t<E>;
    dispatch_integral(targets.dtype(), "linear_cross_entropy_backward", [&]<typename I>() {
      if constexpr (std::is_same_v<I, int32_t> || std::is_same_v<I, int64_t>) {
        dispatch_floating(gc.dtype(), "linear_cross_entropy_backward", [&]<typename G>() {
          classifier_bwd_kernel<E, I, device_t<G>><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
              dptr<T>(logits), targets.data<I>(), static_cast<const A*>(lse.data_ptr()), dptr<G>(gc),
              static_cast<A>(scale), v, classes, ignore_index);
          KIRZL_CUDA_LAUNCH_CHECK();
        });
      } else {
        KIRZL_FAIL(ErrorCode::InvalidArgument, "linear_cross_entropy: targets must be i32 or i64");
      }
    });
  });
}

void register_fused_classifier_kernels() {
  KIRZL_REGISTER_KERNEL(classifier_forward, DeviceType::CUDA, &classifier_forward);
  KIRZL_REGISTER_KERNEL(classifier_backward_inplace, DeviceType::CUDA, &classifier_backward_inplace);
}

}  // namespace kirzl::kernels::cuda
