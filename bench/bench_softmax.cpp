// Softmax, cross-entropy and layer-norm CPU kernels against memcpy of the same bytes.
// Bytes processed count reads + writes, as for the memcpy reference (2x the bytes copied).
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include <kirzl/kirzl.hpp>

#include "kernels/softmax.h"

using namespace kirzl;

namespace {

// Reference: copies `bytes` (one read, one write of each byte) -> 2 * bytes processed.
void BM_memcpy(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) * static_cast<size_t>(state.range(1)) * sizeof(float);
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(bytes));
}

void BM_softmax_f32(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = randn({rows, cols});
  for (auto _ : state) {
    Tensor y = softmax(x, -1);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(x.nbytes()));
}

// The kernel alone, into an output allocated once: separates the kernel from the cost of
// faulting in a fresh output buffer every iteration (the op above allocates one per call).
void BM_softmax_kernel_f32(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = randn({rows, cols});
  Tensor y = empty({rows, cols});
  for (auto _ : state) {
    kernels::softmax(y, x, 1, false);
    benchmark::DoNotOptimize(y.data_ptr());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(x.nbytes()));
}

// Forward (reads logits) + backward (reads logits, writes the gradient): 3x the logits' bytes.
void BM_cross_entropy_fwd_bwd_f32(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = randn({rows, cols}, {.requires_grad = true});
  Tensor t = randint(0, cols, {rows});
  for (auto _ : state) {
    x.set_grad(Tensor());
    Tensor loss = cross_entropy(x, t);
    loss.backward();
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 3 * static_cast<int64_t>(x.nbytes()));
}

void BM_layer_norm_f32(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = randn({rows, cols});
  Tensor w = ones({cols}), b = zeros({cols});
  for (auto _ : state) {
    Tensor y = layer_norm(x, {cols}, w, b);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(x.nbytes()));
}

}  // namespace

BENCHMARK(BM_memcpy)->Args({4096, 1024})->Args({256, 32768})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_softmax_f32)->Args({4096, 1024})->Args({256, 32768})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_softmax_kernel_f32)->Args({4096, 1024})->Args({256, 32768})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_cross_entropy_fwd_bwd_f32)->Args({4096, 1024})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_layer_norm_f32)->Args({4096, 1024})->Unit(benchmark::kMicrosecond)->UseRealTime();
