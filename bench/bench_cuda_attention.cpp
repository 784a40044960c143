// Causal attention on the GPU at GPT-2 124M shapes (B 16, H 12, T 1024, D 64, bf16): cuDNN's fused
// attention (tensor cores; Note [cudnn sdpa]) and the flash kernels (CUDA cores) against the
// reference kernels (T x T probabilities), forward and forward + backward, with achieved TFLOP/s;
// cuDNN also in the qkv layout that training uses (q, k, v and their gradients as views of one
// [B, T, 3C] tensor, the output as [B, T, C]); as the raw reference in the same run, a batched bf16 GEMM of the score shape
// (q k^T, [B H, T, D] x [B H, D, T]) through kernels::gemm, i.e. the tensor-core rate this shape
// can reach.
//
// FLOPs counted (the usual flash-attention convention): forward 4 B H T^2 D / 2 (two T x T x D
// products, half of them masked away by causality), backward 2.5 x forward (five products).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>

#include <kirzl/core/cuda.hpp>
#include <kirzl/kirzl.hpp>

#include "kernels/attention.h"
#include "kernels/attention_cudnn.h"
#include "kernels/flash_attention.h"
#include "kernels/gemm.h"

using namespace kirzl;

namespace {

constexpr int64_t kB = 16, kH = 12, kT = 1024, kD = 64;

double fwd_flops() { return 4.0 * kB * kH * kT * kT * kD / 2.0; }

bool have_gpu(benchmark::State& state) {
  if (cuda::is_available()) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

Tensor rnd(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return randn(s, {.dtype = DType::f32}, &gen).to(DType::bf16).to(Device::cuda(0));
}

// Times `body` per iteration with the device drained before and after (manual time).
template <typename F> void timed_loop(benchmark::State& state, F&& body) {
  body();  // warm-up: kernel attributes, allocator cache
  cuda::synchronize(0);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    body();
    cuda::synchronize(0);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

void set_rate(benchmark::State& state, double flops_per_iter) {
  state.counters["TFLOP/s"] =
      benchmark::Counter(flops_per_iter * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
}

bool have_cudnn(benchmark::State& state) {
  if (!have_gpu(state)) return false;
  if (kernels::cudnn_attention_forward.has_kernel(DeviceType::CUDA)) return true;
  state.SkipWithError(kernels::kNeedsCudnnFrontend);
  return false;
}

// The two implementations with the log-sum-exp interface: kirzl's flash kernels (CUDA cores) and
// cuDNN's fused attention (tensor cores).
enum class Impl { flash, cudnn };

bool available(benchmark::State& state, Impl impl) { return impl == Impl::cudnn ? have_cudnn(state) : have_gpu(state); }

void forward(Impl impl, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  if (impl == Impl::cudnn) kernels::cudnn_attention_forward(out, lse, q, k, v, scale);
  else kernels::flash_attention_forward(out, lse, q, k, v, scale);
}

void backward(Impl impl, Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out, const Tensor& lse,
              const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  if (impl == Impl::cudnn) kernels::cudnn_attention_backward(gq, gk, gv, g, out, lse, q, k, v, scale);
  else kernels::flash_attention_backward(gq, gk, gv, g, out, lse, q, k, v, scale);
}

void BM_attention_fwd(benchmark::State& state, Impl impl) {
  if (!available(state, impl)) return;
  Tensor q = rnd({kB, kH, kT, kD}, 1), k = rnd({kB, kH, kT, kD}, 2), v = rnd({kB, kH, kT, kD}, 3);
  Tensor out = empty_like(q), lse = empty({kB, kH, kT}, {.dtype = DType::f32, .device = q.device()});
  const double scale = 1.0 / std::sqrt(double(kD));
  timed_loop(state, [&] { forward(impl, out, lse, q, k, v, scale); });
  set_rate(state, fwd_flops());
}

void BM_attention_fwd_bwd(benchmark::State& state, Impl impl) {
  if (!available(state, impl)) return;
  Tensor q = rnd({kB, kH, kT, kD}, 1), k = rnd({kB, kH, kT, kD}, 2), v = rnd({kB, kH, kT, kD}, 3);
  Tensor g = rnd({kB, kH, kT, kD}, 4);
  Tensor out = empty_like(q), lse = empty({kB, kH, kT}, {.dtype = DType::f32, .device = q.device()});
  Tensor gq = empty_like(q), gk = empty_like(q), gv = empty_like(q);
  const double scale = 1.0 / std::sqrt(double(kD));
  cuda::reset_peak_memory_stats(0);
  timed_loop(state, [&] {
    forward(impl, out, lse, q, k, v, scale);
    backward(impl, gq, gk, gv, g, out, lse, q, k, v, scale);
  });
  set_rate(state, 3.5 * fwd_flops());
  state.counters["peak_GB"] = cuda::memory_stats(0).peak_allocated_bytes / 1e9;
}

// The qkv layout: q, k, v and dq, dk, dv as the [B, H, T, D] views of [B, T, 3C] tensors, the
// output and its gradient as views of [B, T, C] ones (what causal_attention_qkv runs).
void BM_cudnn_attention_qkv_layout_fwd_bwd(benchmark::State& state) {
  if (!have_cudnn(state)) return;
  const int64_t C = kH * kD;
  auto heads = [&](const Tensor& x, int64_t parts, int64_t part) {
    return x.view({kB, kT, parts, kH, kD}).select(2, part).transpose(1, 2);
  };
  Tensor qkv = rnd({kB, kT, 3 * C}, 1), y = empty({kB, kT, C}, {.dtype = DType::bf16, .device = qkv.device()});
  Tensor g = rnd({kB, kT, C}, 4), dqkv = empty_like(qkv);
  Tensor q = heads(qkv, 3, 0), k = heads(qkv, 3, 1), v = heads(qkv, 3, 2), out = heads(y, 1, 0), g4 = heads(g, 1, 0);
  Tensor gq = heads(dqkv, 3, 0), gk = heads(dqkv, 3, 1), gv = heads(dqkv, 3, 2);
  Tensor lse = empty({kB, kH, kT}, {.dtype = DType::f32, .device = q.device()});
  const double scale = 1.0 / std::sqrt(double(kD));
  cuda::reset_peak_memory_stats(0);
  timed_loop(state, [&] {
    kernels::cudnn_attention_forward(out, lse, q, k, v, scale);
    kernels::cudnn_attention_backward(gq, gk, gv, g4, out, lse, q, k, v, scale);
  });
  set_rate(state, 3.5 * fwd_flops());
  state.counters["peak_GB"] = cuda::memory_stats(0).peak_allocated_bytes / 1e9;
}

void BM_reference_attention_fwd_bwd(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Tensor q = rnd({kB * kH, kT, kD}, 1), k = rnd({kB * kH, kT, kD}, 2), v = rnd({kB * kH, kT, kD}, 3);
  Tensor g = rnd({kB * kH, kT, kD}, 4);
  Tensor out = empty_like(q), probs = empty({kB * kH, kT, kT}, {.dtype = DType::f32, .device = q.device()});
  Tensor gq = empty_like(q), gk = empty_like(q), gv = empty_like(q);
  const double scale = 1.0 / std::sqrt(double(kD));
  cuda::reset_peak_memory_stats(0);
  try {
    timed_loop(state, [&] {
      kernels::attention_forward(out, probs, q, k, v, scale);
      kernels::attention_backward(gq, gk, gv, g, probs, q, k, v, scale);
    });
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  set_rate(state, 3.5 * fwd_flops());
  state.counters["peak_GB"] = cuda::memory_stats(0).peak_allocated_bytes / 1e9;
}

// Raw reference: the score GEMM of the same shape, unmasked (its full 2 B H T^2 D FLOPs).
void BM_gemm_score_shape(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Tensor q = rnd({kB * kH, kT, kD}, 1), k = rnd({kB * kH, kT, kD}, 2);
  Tensor s = empty({kB * kH, kT, kT}, {.dtype = DType::bf16, .device = q.device()});
  timed_loop(state, [&] { kernels::gemm(s, q, k, false, true, 1.0, 0.0); });
  set_rate(state, 2.0 * kB * kH * kT * kT * kD);
}

BENCHMARK(BM_gemm_score_shape)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_attention_fwd, flash, Impl::flash)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_attention_fwd_bwd, flash, Impl::flash)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_attention_fwd, cudnn, Impl::cudnn)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_attention_fwd_bwd, cudnn, Impl::cudnn)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_cudnn_attention_qkv_layout_fwd_bwd)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reference_attention_fwd_bwd)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
