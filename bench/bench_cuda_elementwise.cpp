// Achieved bandwidth of kirzl's CUDA elementwise, reduction and copy kernels on ~64 MiB tensors,
// beside the device-to-device cudaMemcpyAsync bandwidth measured in the same run.
// Bytes count every byte read and written (a D2D copy of N bytes moves 2N). Kernels write into
// preallocated outputs (the kernel alone, without allocation). Each benchmark iteration times
// kReps launches with CUDA events on the current stream (UseManualTime). Counters: GB/s (the
// kernel), memcpy_GB/s (cudaMemcpyAsync of a 64 MiB buffer) and ratio = GB/s / memcpy_GB/s
// (target on an H100: >= 0.85).
#include <benchmark/benchmark.h>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

#if KIRZL_HAS_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>

#include "core/cuda/current_stream.h"
#include "support/cuda_bandwidth.hpp"
#include "kernels/binary.h"
#include "kernels/copy.h"
#include "kernels/reduce.h"
#include "kernels/unary.h"

namespace {

using namespace kirzl;

constexpr int64_t kBytes = int64_t{64} << 20;  // per full-size tensor
constexpr int kReps = 20;

using bench::have_gpu;
void run(benchmark::State& state, int64_t bytes, const std::function<void()>& fn) {
  bench::run_bandwidth(state, bytes, kReps, kBytes, fn);
}

Tensor random_on_gpu(int64_t n, DType dt) { return uniform({n}, -3.0, 3.0, {.dtype = dt}).to(Device::cuda(0)); }

void BM_MemcpyD2D(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Tensor src = zeros({kBytes}, {.dtype = DType::u8, .device = Device::cuda(0)});
  Tensor dst = empty({kBytes}, {.dtype = DType::u8, .device = Device::cuda(0)});
  run(state, 2 * kBytes, [&] {
    BENCH_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), kBytes, cudaMemcpyDeviceToDevice, cuda_rt::current_stream(0)));
  });
}

void BM_Add(benchmark::State& state, DType dt) {
  if (!have_gpu(state)) return;
  const int64_t n = kBytes / dtype_size(dt);
  Tensor a = random_on_gpu(n, dt), b = random_on_gpu(n, dt);
  Tensor out = empty({n}, {.dtype = dt, .device = Device::cuda(0)});
  run(state, 3 * kBytes, [&] { kernels::binary(kernels::BinaryOp::Add, out, a, b); });
}

// GELU of bf16 tensors: the erf form (`gelu`, PyTorch's default) and the tanh form (GPT-2's, Note
// [16-bit tanh-GELU]); until 2026-12-07 only the erf form was measured, so the tanh form's fast
// forward was judged on a kernel it did not touch.
void BM_GeluForwardBf16(benchmark::State& state, kernels::UnaryOp op) {
  if (!have_gpu(state)) return;
  const int64_t n = kBytes / 2;
  Tensor x = random_on_gpu(n, DType::bf16);
  Tensor out = empty({n}, {.dtype = DType::bf16, .device = Device::cuda(0)});
  run(state, 2 * kBytes, [&] { kernels::unary(op, out, x, {}); });
}

void BM_GeluBackwardBf16(benchmark::State& state, kernels::UnaryOp op) {
  if (!have_gpu(state)) return;
  const int64_t n = kBytes / 2;
  Tensor x = random_on_gpu(n, DType::bf16), g = random_on_gpu(n, DType::bf16);
  Tensor gx = empty({n}, {.dtype = DType::bf16, .device = Device::cuda(0)});
  run(state, 3 * kBytes, [&] { kernels::unary_backward(op, gx, g, x, {}); });
}

void BM_SumLastDim(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t cols = state.range(0), rows = kBytes / 4 / cols;
  Tensor x = random_on_gpu(rows * cols, DType::f32).view({rows, cols});
  Tensor out = empty({rows}, {.device = Device::cuda(0)});
  const std::vector<bool> mask{false, true};
  run(state, kBytes + rows * 4, [&] { kernels::sum(out, x, mask); });
}

void BM_CastF32ToBf16(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t n = kBytes / 4;
  Tensor x = random_on_gpu(n, DType::f32);
  Tensor out = empty({n}, {.dtype = DType::bf16, .device = Device::cuda(0)});
  run(state, kBytes + kBytes / 2, [&] { kernels::copy(out, x); });
}

}  // namespace

BENCHMARK(BM_MemcpyD2D)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Add, f32, kirzl::DType::f32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Add, bf16, kirzl::DType::bf16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GeluForwardBf16, erf, kernels::UnaryOp::Gelu)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GeluBackwardBf16, erf, kernels::UnaryOp::Gelu)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GeluForwardBf16, tanh, kernels::UnaryOp::GeluTanh)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GeluBackwardBf16, tanh, kernels::UnaryOp::GeluTanh)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SumLastDim)->Arg(1024)->Arg(768)->Arg(50257)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CastF32ToBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);

#else  // kirzl built without CUDA: the program runs and says why it measured nothing.

namespace {
void BM_CudaElementwise(benchmark::State& state) { state.SkipWithError("no CUDA device (kirzl was built without CUDA)"); }
}  // namespace
BENCHMARK(BM_CudaElementwise);

#endif
