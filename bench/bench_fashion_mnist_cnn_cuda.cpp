// One Fashion-MNIST training epoch of the small CNN (conv32-pool-conv64-pool-fc128, AdamW,
// batch 128) on CUDA device 0, against the same epoch in PyTorch on the same GPU measured in the
// same run (bench/peers/fashion_mnist_cnn_torch.py). Both gather each shuffled batch on the host
// and copy it to the device, so the input pipeline is the same work on both sides.
//
//   ./build/bench/bench_fashion_mnist_cnn_cuda
//
// Counter images_per_second; the ratio kirzl / PyTorch is the figure to report (issue #5).
#include <benchmark/benchmark.h>

#include <kirzl/kirzl.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "peer_run.hpp"

namespace {

using namespace kirzl;

const data::FashionMNIST* train_set() {
  static std::unique_ptr<data::FashionMNIST> ds = [] {
    std::unique_ptr<data::FashionMNIST> d;
    if (std::filesystem::exists(data::kFashionMnistDir)) d = std::make_unique<data::FashionMNIST>();
    return d;
  }();
  return ds.get();
}

void BM_CnnEpochKirzlCuda(benchmark::State& state) {
  if (!cuda::is_available()) return state.SkipWithError("no CUDA device");
  const data::FashionMNIST* train = train_set();
  if (!train) return state.SkipWithError("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  const Device dev = Device::cuda(0);
  manual_seed(0);
  auto model = models::fashion_cnn();
  model->to(dev);
  optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01});
  data::DataLoader loader(*train, {.batch_size = 128, .shuffle = true, .drop_last = true});
  auto step = [&](const Tensor& x, const Tensor& y) {
    Tensor loss = cross_entropy((*model)(x.to(dev)), y.to(dev));
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  };
  int warm = 0;  // warm-up: cuDNN algorithm choice, cuBLASLt heuristics, the caching allocator
  for (auto& [x, y] : loader) {
    step(x, y);
    if (++warm == 10) break;
  }
  int64_t images = 0;
  for (auto _ : state) {
    Tensor last;
    for (auto& [x, y] : loader) {
      last = step(x, y);
      images += x.size(0);
    }
    benchmark::DoNotOptimize(last.item());  // the copy to the host waits for the epoch's last step
  }
  state.counters["images_per_second"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}

void BM_CnnEpochPyTorchCuda(benchmark::State& state) {
  const std::string script = std::string(KIRZL_SOURCE_DIR) + "/bench/peers/fashion_mnist_cnn_torch.py";
  kirzl::bench::run_peer(state, "python3 " + script + " --device cuda", "images_per_second");
}

}  // namespace

BENCHMARK(BM_CnnEpochKirzlCuda)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_CnnEpochPyTorchCuda)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
