// Causal attention on the GPU at GPT-2 124M shapes (B 16, H 12, T 1024, D 64, bf16): the flash
// kernels against the reference kernels (T x T probabilities) forward + backward, with achieved
// TFLOP/s; as the raw reference in the same run, a batched bf16 GEMM of the score shape
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

void BM_flash_attention_fwd(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Tensor q = rnd({kB, kH, kT, kD}, 1), k = rnd({kB, kH, kT, kD}, 2), v = rnd({kB, kH, kT, kD}, 3);
  Tensor out = empty_like(q), lse = empty({kB, kH, kT}, {.dtype = DType::f32, .device = q.device()});
  const double scale = 1.0 / std::sqrt(double(kD));
  timed_loop(state, [&] { kernels::flash_attention_forward(out, lse, q, k, v, scale); });
  set_rate(state, fwd_flops());
}

void BM_flash_attention_fwd_bwd(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Tensor q = rnd({kB, kH, kT, kD}, 1), k = rnd({kB, kH, kT, kD}, 2), v = rnd({kB, kH, kT, kD}, 3);
  Tensor g = rnd({kB, kH, kT, kD}, 4);
  Tensor out = empty_like(q), lse = empty({kB, kH, kT}, {.dtype = DType::f32, .device = q.device()});
  Tensor gq = empty_like(q), gk = empty_like(q), gv = empty_like(q);
  const double scale = 1.0 / std::sqrt(double(kD));
  cuda::reset_peak_memory_stats(0);
  timed_loop(state, [&] {
    kernels::flash_attention_forward(out, lse, q, k, v, scale);
    kernels::flash_attention_backward(gq, gk, gv, g, out, lse, q, k, v, scale);
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
BENCHMARK(BM_flash_attention_fwd)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_flash_attention_fwd_bwd)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reference_attention_fwd_bwd)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
