// Achieved bandwidth of kirzl's CUDA NN row kernels at GPT-2 sizes, beside the device-to-device
// cudaMemcpyAsync bandwidth measured in the same run:
//   - layer_norm forward + backward, x [16*1024, 768] bf16 with weight and bias;
//   - softmax-cross-entropy forward + backward, logits [8192, 50304] bf16;
//   - softmax forward, [8192, 50304] bf16 and [16*12*1024, 1024] bf16 (attention-like rows);
//   - bias + tanh-GELU forward and backward, [16*1024, 3072] bf16 (GPT-2's MLP).
// Bytes count the minimum traffic of each kernel pair: every input read once and every output
// written once (layer norm fwd: x, w, b read, y written, mean/rstd written; bwd: g, x read, gx
// written, gw/gb written; cross-entropy fwd: logits read; bwd: logits read, gx written). Re-reads
// that the kernels make (from L2 or HBM) are not counted, so the ratio is an honest lower bound.
// Each benchmark iteration times kReps launches with CUDA events on the current stream
// (UseManualTime). Counters: GB/s, memcpy_GB/s and ratio = GB/s / memcpy_GB/s (target on an
// H100: >= 0.75).
#include <benchmark/benchmark.h>

#include <kirzl/config.hpp>
#include <kirzl/kirzl.hpp>

#if KIRZL_HAS_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

#include "core/cuda/current_stream.h"
#include "support/cuda_bandwidth.hpp"
#include "kernels/cross_entropy.h"
#include "kernels/fused_bias_gelu.h"
#include "kernels/layer_norm.h"
#include "kernels/softmax.h"

namespace {

using namespace kirzl;

constexpr int64_t kCopyBytes = int64_t{256} << 20;
constexpr int kReps = 10;

using bench::have_gpu;
void run(benchmark::State& state, int64_t bytes, const std::function<void()>& fn) {
  bench::run_bandwidth(state, bytes, kReps, kCopyBytes, fn);
}

Tensor random_on_gpu(const Shape& s, DType dt, double lo = -3, double hi = 3) {
  return uniform(s, lo, hi, {.dtype = dt}).to(Device::cuda(0));
}

void BM_MemcpyD2D(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Tensor src = zeros({kCopyBytes}, {.dtype = DType::u8, .device = Device::cuda(0)});
  Tensor dst = empty({kCopyBytes}, {.dtype = DType::u8, .device = Device::cuda(0)});
  run(state, 2 * kCopyBytes, [&] {
    BENCH_CUDA_CHECK(
        cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), kCopyBytes, cudaMemcpyDeviceToDevice, cuda_rt::current_stream(0)));
  });
}

// Layer norm forward + backward (all three gradients), GPT-2 124M's [B*T, C].
void BM_LayerNormFwdBwdBf16(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t m = 16 * 1024, n = 768;
  const Device d = Device::cuda(0);
  Tensor x = random_on_gpu({m, n}, DType::bf16), g = random_on_gpu({m, n}, DType::bf16, -1, 1);
  Tensor w = random_on_gpu({n}, DType::bf16, 0.5, 1.5), b = random_on_gpu({n}, DType::bf16, -1, 1);
  Tensor y = empty({m, n}, {.dtype = DType::bf16, .device = d}), gx = empty({m, n}, {.dtype = DType::bf16, .device = d});
  Tensor mean = empty({m}, {.device = d}), rstd = empty({m}, {.device = d});
  Tensor gw = empty({n}, {.dtype = DType::bf16, .device = d}), gb = empty({n}, {.dtype = DType::bf16, .device = d});
  const int64_t row = m * n * 2;
  const int64_t bytes = (row + 2 * n * 2 + row + 2 * m * 4)  // forward
                        + (3 * row + 2 * m * 4 + n * 2 + 2 * n * 2);  // backward: g, x, gx, stats, w, gw, gb
  run(state, bytes, [&] {
    kernels::layer_norm_forward(y, mean, rstd, x, w, b, n, 1e-5);
    kernels::layer_norm_backward(gx, gw, gb, g, x, mean, rstd, w, n);
  });
}

// Fused softmax-cross-entropy forward + backward at GPT-2's vocabulary (padded to 50304).
void BM_CrossEntropyFwdBwdBf16(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t rows = 8192, classes = 50304;
  const Device d = Device::cuda(0);
  Tensor x = random_on_gpu({rows, classes}, DType::bf16, -4, 4);
  Tensor t = randint(0, classes, {rows}, {.dtype = DType::i64}).to(d);
  Tensor losses = empty({rows}, {.device = d}), lse = empty({rows}, {.device = d});
  Tensor grad = full({1}, 1.0 / rows, {.dtype = DType::bf16, .device = d});
  Tensor gx = empty({rows, classes}, {.dtype = DType::bf16, .device = d});
  const int64_t logits = rows * classes * 2;
  const int64_t bytes = (logits + rows * (8 + 4 + 4)) + (2 * logits + rows * (8 + 4));
  run(state, bytes, [&] {
    kernels::cross_entropy_forward(losses, lse, x, t, -100, 0.0);
    kernels::cross_entropy_backward(gx, x, t, lse, grad, 1.0, -100, 0.0);
  });
}

// bias + tanh-GELU (bias_gelu, GPT-2's MLP activation) at [16*1024, 3072] bf16: the forward
// (Note [packed bias-GELU]) and the backward with the bias gradient. Bytes: x read and y written;
// g and x read, gx written; the bias and its gradient once each (the backward's per-chunk partial
// sums are scratch, not counted).
void BM_BiasGeluFwdBf16(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t m = 16 * 1024, n = 3072;
  const Device d = Device::cuda(0);
  Tensor x = random_on_gpu({m, n}, DType::bf16), b = random_on_gpu({n}, DType::bf16, -1, 1);
  Tensor y = empty({m, n}, {.dtype = DType::bf16, .device = d});
  run(state, 2 * m * n * 2 + n * 2, [&] { kernels::bias_gelu_forward(y, x, b, n); });
}

void BM_BiasGeluBwdBf16(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t m = 16 * 1024, n = 3072;
  const Device d = Device::cuda(0);
  Tensor x = random_on_gpu({m, n}, DType::bf16), g = random_on_gpu({m, n}, DType::bf16, -1, 1);
  Tensor b = random_on_gpu({n}, DType::bf16, -1, 1);
  Tensor gx = empty({m, n}, {.dtype = DType::bf16, .device = d}), gb = empty({n}, {.dtype = DType::bf16, .device = d});
  run(state, 3 * m * n * 2 + 2 * n * 2, [&] { kernels::bias_gelu_backward(gx, gb, g, x, b, n); });
}

// Softmax forward along the last dim: args {rows, cols}.
void BM_SoftmaxFwdBf16(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int64_t rows = state.range(0), cols = state.range(1);
  Tensor x = random_on_gpu({rows, cols}, DType::bf16);
  Tensor out = empty({rows, cols}, {.dtype = DType::bf16, .device = Device::cuda(0)});
  run(state, 2 * rows * cols * 2, [&] { kernels::softmax(out, x, 1, false); });
}

}  // namespace

BENCHMARK(BM_MemcpyD2D)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LayerNormFwdBwdBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CrossEntropyFwdBwdBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BiasGeluFwdBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BiasGeluBwdBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SoftmaxFwdBf16)
    ->Args({8192, 50304})
    ->Args({16 * 12 * 1024, 1024})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

#else  // kirzl built without CUDA: the program runs and says why it measured nothing.

namespace {
void BM_CudaNn(benchmark::State& state) { state.SkipWithError("no CUDA device (kirzl was built without CUDA)"); }
}  // namespace
BENCHMARK(BM_CudaNn);

#endif
