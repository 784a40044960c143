// Per-call cost of a small op from C++: kirzl::add on 1-element f32 tensors (and, for scale,
// 1024 elements). The Python twin is bench/bench_python_overhead.py; the difference between the
// two is the binding's per-call overhead (goal: < 5 us).
//
//   ./build/bench/bench_op_overhead
#include <benchmark/benchmark.h>

#include <kirzl/kirzl.hpp>

namespace {

void BM_AddSmall(benchmark::State& state) {
  kirzl::Tensor a = kirzl::ones({state.range(0)}), b = kirzl::ones({state.range(0)});
  for (auto _ : state) {
    kirzl::Tensor c = kirzl::add(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
}

void BM_AddSmallRequiresGrad(benchmark::State& state) {
  kirzl::Tensor a = kirzl::ones({1}, {.requires_grad = true}), b = kirzl::ones({1});
  for (auto _ : state) {
    kirzl::Tensor c = kirzl::add(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
}

}  // namespace

BENCHMARK(BM_AddSmall)->Arg(1)->Arg(1024);
BENCHMARK(BM_AddSmallRequiresGrad);
