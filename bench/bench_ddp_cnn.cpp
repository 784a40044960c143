// DDP step time of the Fashion-MNIST CNN (conv32-pool-conv64-pool-fc128, AdamW) with a fixed
// per-rank batch of 64 and one compute thread per rank: run it at 1, 2 and 4 ranks for the
// weak-scaling efficiency t(1) / t(N), with overlap on and off. bench/run_ddp_scaling.sh does
// that and runs the PyTorch DDP (gloo) peer on the same model and batch.
//
//   mpirun -np 2 ./build/bench/bench_ddp_cnn
//
// Every rank runs the same fixed number of iterations (ranks must agree on the collectives); only
// rank 0 reports.
#include <benchmark/benchmark.h>

#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>

#include <memory>
#include <vector>

namespace {

using namespace kirzl;
namespace nn = kirzl::nn;

comm::ProcessGroup& world() {
  static comm::ProcessGroup w = comm::init();
  return w;
}

constexpr int64_t kBatchPerRank = 64;

// mode 0: no DDP (the single-process baseline); 1: DDP with overlap; 2: DDP without overlap.
void BM_CnnStep(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));
  if (mode == 0 && world().size() > 1) return state.SkipWithError("the no-DDP baseline runs at world size 1 only");
  set_num_threads(1);
  manual_seed(0);
  auto model = models::fashion_cnn();
  std::unique_ptr<DistributedDataParallel> ddp;
  if (mode > 0) ddp = std::make_unique<DistributedDataParallel>(*model, world(), DDPOptions{.overlap = mode == 1});
  optim::AdamW opt(model->parameters(), {.lr = 1e-3});
  Generator g(static_cast<uint64_t>(world().rank()) + 1);
  std::vector<Tensor> xs, ys;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(randn({kBatchPerRank, 1, 28, 28}, {}, &g));
    ys.push_back(randint(0, 10, {kBatchPerRank}, {.dtype = DType::i64}, &g));
  }
  double exposed_ms = 0, hidden_ms = 0;
  size_t i = 0;
  for (auto _ : state) {
    const Tensor& x = xs[i % xs.size()];
    Tensor out = ddp ? (*ddp)(x) : (*model)(x);
    Tensor loss = cross_entropy(out, ys[i % ys.size()]);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (ddp) {
      exposed_ms += ddp->last_step_stats().comm_exposed_ms;
      hidden_ms += ddp->last_step_stats().comm_hidden_ms;
    }
    ++i;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["world_size"] = world().size();
  state.counters["images_per_second"] = benchmark::Counter(static_cast<double>(kBatchPerRank * world().size()),
                                                           benchmark::Counter::kIsIterationInvariantRate);
  state.counters["comm_exposed_ms"] = exposed_ms / n;
  state.counters["comm_hidden_ms"] = hidden_ms / n;
}

class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

BENCHMARK(BM_CnnStep)->Arg(0)->Arg(1)->Arg(2)->ArgName("mode")->Iterations(40)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  world();  // MPI starts before Google Benchmark parses its flags
  benchmark::Initialize(&argc, argv);
  if (world().rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    NullReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}
