// f32 GEMM throughput: kirzl::matmul against Eigen called directly, same sizes, same process.
// kirzl maps its row-major tensors into Eigen's GEMM without copies, so the two should match;
// the transposed-operand case checks that a transposed view is not copied either.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <kirzl/kirzl.hpp>

namespace {

void set_flops(benchmark::State& state, int64_t n) {
  state.counters["FLOPS"] = benchmark::Counter(2.0 * double(n) * double(n) * double(n),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_KirzlMatmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  kirzl::Generator gen(1);
  kirzl::Tensor a = kirzl::randn({n, n}, {}, &gen), b = kirzl::randn({n, n}, {}, &gen);
  for (auto _ : state) {
    kirzl::Tensor c = kirzl::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, n);
}

void BM_KirzlMatmulTransposedB(benchmark::State& state) {
  const int64_t n = state.range(0);
  kirzl::Generator gen(1);
  kirzl::Tensor a = kirzl::randn({n, n}, {}, &gen), b = kirzl::randn({n, n}, {}, &gen);
  kirzl::Tensor bt = b.t();  // a view: the kernel maps it column-major
  for (auto _ : state) {
    kirzl::Tensor c = kirzl::matmul(a, bt);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, n);
}

void BM_EigenProduct(benchmark::State& state) {
  const Eigen::Index n = state.range(0);
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, n);
}

}  // namespace

BENCHMARK(BM_KirzlMatmul)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_KirzlMatmulTransposedB)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EigenProduct)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
