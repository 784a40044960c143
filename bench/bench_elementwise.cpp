// Elementwise throughput (f32, contiguous) against std::memcpy of the same traffic.
// Args: {elements, threads}. Bytes processed count every byte read and written, so add moves
// 3 buffers, exp/relu 2, memcpy 2. kirzl ops allocate their result each iteration (as in real use);
// memcpy writes into a preallocated buffer, as does BM_AddKernelOnly (the kernel without the op).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <vector>

#include <kirzl/kirzl.hpp>

#include "kernels/binary.h"
#include "kernels/unary.h"

namespace {

void configure(benchmark::State& state) { kirzl::set_num_threads(static_cast<int>(state.range(1))); }

template <typename Op>
void run_op(benchmark::State& state, int buffers, Op op) {
  configure(state);
  const int64_t n = state.range(0);
  kirzl::Tensor a = kirzl::uniform({n}, -2, 2);
  kirzl::Tensor b = kirzl::uniform({n}, -2, 2);
  for (auto _ : state) {
    kirzl::Tensor out = op(a, b);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * buffers);
}

void BM_Memcpy(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> src(n, 1.0f), dst(n);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 2);
}

void BM_Add(benchmark::State& state) {
  run_op(state, 3, [](const kirzl::Tensor& a, const kirzl::Tensor& b) { return a + b; });
}
// The add kernel alone, into a preallocated output: separates loop speed from allocation (fresh
// pages fault on first touch, which dominates at 1<<24).
void BM_AddKernelOnly(benchmark::State& state) {
  configure(state);
  const int64_t n = state.range(0);
  kirzl::Tensor a = kirzl::uniform({n}, -2, 2), b = kirzl::uniform({n}, -2, 2), out = kirzl::empty({n});
  for (auto _ : state) {
    kirzl::kernels::binary(kirzl::kernels::BinaryOp::Add, out, a, b);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 3);
}
void BM_Exp(benchmark::State& state) {
  run_op(state, 2, [](const kirzl::Tensor& a, const kirzl::Tensor&) { return kirzl::exp(a); });
}
void BM_Relu(benchmark::State& state) {
  run_op(state, 2, [](const kirzl::Tensor& a, const kirzl::Tensor&) { return kirzl::relu(a); });
}

// GPT-2's tanh-GELU, forward then backward (x read, y written; g and x read, gx written: 5
// buffers), through the ops; beside it the same two loops written with std::tanh (the textbook
// form, what the kernels did before Note [cpu tanh-GELU]) over preallocated buffers.
void BM_GeluTanhFwdBwd(benchmark::State& state) {
  configure(state);
  const int64_t n = state.range(0);
  kirzl::Tensor x = kirzl::uniform({n}, -4, 4), g = kirzl::uniform({n}, -1, 1);
  for (auto _ : state) {
    kirzl::Tensor y = kirzl::gelu(x, kirzl::GeluApproximation::Tanh);
    kirzl::Tensor gx = kirzl::empty_like(x);  // what the op's backward allocates
    kirzl::kernels::unary_backward(kirzl::kernels::UnaryOp::GeluTanh, gx, g, x, {});
    benchmark::DoNotOptimize(y.data_ptr());
    benchmark::DoNotOptimize(gx.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 5);
}
void BM_GeluTanhFwdBwdStdTanh(benchmark::State& state) {
  configure(state);
  const int64_t n = state.range(0);
  std::vector<float> x(n), g(n), y(n), gx(n);
  for (int64_t i = 0; i < n; ++i) x[i] = -4.0f + 8.0f * static_cast<float>(i % 4096) / 4096.0f, g[i] = 0.5f;
  const int threads = static_cast<int>(state.range(1));
  for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i];
      y[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i], v2 = v * v;
      const float t = std::tanh(0.7978845608f * (v + 0.044715f * v2 * v));
      const float du = 0.7978845608f * (1.0f + 3 * 0.044715f * v2);
      gx[i] = g[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * int64_t(sizeof(float)) * 5);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "threads"});
  for (int64_t n : {int64_t(1) << 16, int64_t(1) << 20, int64_t(1) << 24})
    for (int64_t threads : {1, 2}) b->Args({n, threads});
  b->UseRealTime();
}

}  // namespace

BENCHMARK(BM_Memcpy)->Apply(sizes);
BENCHMARK(BM_Add)->Apply(sizes);
BENCHMARK(BM_AddKernelOnly)->Apply(sizes);
BENCHMARK(BM_Exp)->Apply(sizes);
BENCHMARK(BM_Relu)->Apply(sizes);
BENCHMARK(BM_GeluTanhFwdBwd)->Apply(sizes);
BENCHMARK(BM_GeluTanhFwdBwdStdTanh)->Apply(sizes);
