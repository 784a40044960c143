// Causal attention forward + backward on the CPU (the flash kernels, the default, and the
// reference kernels that save the probabilities; Note [cpu attention loops]) against PyTorch's scaled_dot_product_attention(is_causal=True) at
// the same shapes and thread count, measured in the same run (bench/peers/attention_torch.py;
// reported as skipped where torch is not importable).
//
//   ./build/bench/bench_attention
//
// Counter calls_per_second (one forward + backward of a [B, H, T, D] q, k, v); kirzl / PyTorch
// at equal shapes and threads is the figure to report. gflops counts the causal half of the
// products only: 6 B H T^2 D flops per call.
#include <benchmark/benchmark.h>

#include <kirzl/kirzl.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "peer_run.hpp"

namespace {

using namespace kirzl;

double flops_per_call(const benchmark::State& state) {
  return 6.0 * static_cast<double>(state.range(0) * state.range(1) * state.range(2) * state.range(2) * state.range(3));
}

// Arg 5: 0 runs the CPU's default kernels (flash: no T x T matrix saved), 1 the reference kernels
// that save the probabilities (KIRZL_ATTENTION=reference; Note [attention path]).
void BM_CausalAttentionKirzl(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(4)));
  if (state.range(5) != 0) setenv("KIRZL_ATTENTION", "reference", 1);
  else unsetenv("KIRZL_ATTENTION");
  manual_seed(0);
  const Shape shape{state.range(0), state.range(1), state.range(2), state.range(3)};
  Tensor q = randn(shape, {.requires_grad = true});
  Tensor k = randn(shape, {.requires_grad = true});
  Tensor v = randn(shape, {.requires_grad = true});
  Tensor g = randn(shape);
  for (auto _ : state) {
    for (Tensor* p : {&q, &k, &v}) p->set_grad(Tensor());
    Tensor y = causal_attention(q, k, v);
    y.backward(g);
    benchmark::DoNotOptimize(q.grad().data_ptr());
  }
  const auto calls = static_cast<double>(state.iterations());
  state.counters["calls_per_second"] = benchmark::Counter(calls, benchmark::Counter::kIsRate);
  state.counters["gflops"] = benchmark::Counter(calls * flops_per_call(state) * 1e-9, benchmark::Counter::kIsRate);
  unsetenv("KIRZL_ATTENTION");
}

// Runs the PyTorch peer as a child process and reports its own timing.
void BM_CausalAttentionPyTorch(benchmark::State& state) {
  const std::string script = std::string(KIRZL_SOURCE_DIR) + "/bench/peers/attention_torch.py";
  const char* flags[] = {"--batch", "--heads", "--seq", "--head-dim", "--threads"};
  std::string args;
  for (int i = 0; i < 5; ++i) args += std::string(" ") + flags[i] + " " + std::to_string(state.range(i));
  kirzl::bench::run_peer(state, "python3 " + script + args, "calls_per_second");
  state.counters["gflops"] = state.counters["calls_per_second"] * flops_per_call(state) * 1e-9;
}

// {B, H, T, D, threads}: the GPT example's attention (batch 32, 4 heads of 32, context 64) and
// GPT-2 124M's heads (12 of 64) at context 256, each on 1 and 2 threads, and at GPT-2's full
// context of 1024 on 2 (where the flash backward's key chunks matter most); and one head of 2048,
// on 1 and 2 threads (fewer (batch, head) pairs than threads: Note [flash attention threads]).
const std::vector<std::vector<int64_t>> kShapes = {
    {32, 4, 64, 32, 1}, {4, 12, 256, 64, 1}, {32, 4, 64, 32, 2}, {4, 12, 256, 64, 2}, {1, 12, 1024, 64, 2},
    {1, 1, 2048, 64, 1}, {1, 1, 2048, 64, 2}};

void kirzl_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "H", "T", "D", "threads", "reference"});
  for (const auto& s : kShapes)
    for (int64_t reference : {0, 1}) b->Args({s[0], s[1], s[2], s[3], s[4], reference});
}
void peer_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "H", "T", "D", "threads"});
  for (const auto& s : kShapes) b->Args(s);
}

}  // namespace

BENCHMARK(BM_CausalAttentionKirzl)->Apply(kirzl_shapes)->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CausalAttentionPyTorch)->Apply(peer_shapes)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
