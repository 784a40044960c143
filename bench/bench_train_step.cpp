// Training throughput on the CPU: the Fashion-MNIST MLP (784-256-128-10) and small CNN
// (conv32-pool-conv64-pool-fc128) with AdamW, batch 128, on data of Fashion-MNIST's shape.
// Reports samples/s; run with --benchmark_min_time=2 for stable figures.
#include <benchmark/benchmark.h>

#include <kirzl/kirzl.hpp>

namespace {

using namespace kirzl;
namespace nn = kirzl::nn;

std::shared_ptr<nn::Module> mlp() { return models::fashion_mlp(); }
std::shared_ptr<nn::Module> cnn() { return models::fashion_cnn(); }

void train(benchmark::State& state, std::shared_ptr<nn::Module> (*make)()) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t batch = 128;
  set_num_threads(threads);
  manual_seed(0);
  auto model = make();
  optim::AdamW opt(model->parameters(), {.lr = 1e-3});
  // A pool of batches, so the loop does not reuse one input from cache.
  std::vector<Tensor> xs, ys;
  Generator g(1);
  for (int i = 0; i < 8; ++i) {
    xs.push_back(rand({batch, 1, 28, 28}, {}, &g));
    ys.push_back(randint(0, 10, {batch}, {.dtype = DType::i64}, &g));
  }
  size_t i = 0;
  for (auto _ : state) {
    opt.zero_grad();
    Tensor loss = cross_entropy((*model)(xs[i % xs.size()]), ys[i % ys.size()]);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data_ptr());
    ++i;
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TrainStepMlp(benchmark::State& s) { train(s, mlp); }
void BM_TrainStepCnn(benchmark::State& s) { train(s, cnn); }

}  // namespace

BENCHMARK(BM_TrainStepMlp)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStepCnn)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);
