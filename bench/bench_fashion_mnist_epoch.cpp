// One Fashion-MNIST training epoch of the MLP (784-256-128-10, AdamW, batch 128) on the CPU, real
// data through the prefetching DataLoader, against the same epoch in PyTorch measured in the same
// run (bench/peers/fashion_mnist_mlp_torch.py; reported as skipped where torch is not importable).
//
//   ./build/bench/bench_fashion_mnist_epoch
//
// Counter samples_per_second; the ratio kirzl / PyTorch at equal threads is the figure to report.
#include <benchmark/benchmark.h>

#include <kirzl/kirzl.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "peer_run.hpp"

namespace {

using namespace kirzl;
namespace nn = kirzl::nn;

const data::FashionMNIST* train_set() {
  static std::unique_ptr<data::FashionMNIST> ds = [] {
    std::unique_ptr<data::FashionMNIST> d;
    if (std::filesystem::exists(data::kFashionMnistDir)) d = std::make_unique<data::FashionMNIST>();
    return d;
  }();
  return ds.get();
}

void BM_MlpEpochKirzl(benchmark::State& state) {
  const data::FashionMNIST* train = train_set();
  if (!train) return state.SkipWithError("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  set_num_threads(static_cast<int>(state.range(0)));
  manual_seed(0);
  auto model = models::fashion_mlp();
  optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  data::DataLoader loader(*train, {.batch_size = 128, .shuffle = true, .drop_last = true});
  int64_t samples = 0;
  for (auto _ : state) {
    for (auto& [x, y] : loader) {
      Tensor loss = cross_entropy((*model)(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      samples += x.size(0);
    }
  }
  state.counters["samples_per_second"] = benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
}

// Runs the PyTorch peer as a child process and reports its own timing of one epoch.
void BM_MlpEpochPyTorch(benchmark::State& state) {
  const std::string script = std::string(KIRZL_SOURCE_DIR) + "/bench/peers/fashion_mnist_mlp_torch.py";
  kirzl::bench::run_peer(state, "python3 " + script + " --threads " + std::to_string(state.range(0)), "samples_per_second");
}

}  // namespace

BENCHMARK(BM_MlpEpochKirzl)->Arg(1)->Arg(2)->ArgName("threads")->Iterations(2)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_MlpEpochPyTorch)->Arg(1)->Arg(2)->ArgName("threads")->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
