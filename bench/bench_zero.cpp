// Sharded data parallelism (ZeRO, DDPOptions::shard; Note [sharded optimizer]) on in-process
// ranks (one thread per rank, comm::make_in_process_group): an MLP of 2.4M parameters trained with
// AdamW at 2 and 4 ranks with shard = none, optimizer (ZeRO-1) and gradients (ZeRO-2).
//  - BM_ZeroStep: time per training step (forward + backward + step) and, as counters, what
//    rank 0 holds: optimizer-state bytes, gradient bytes between steps, parameter bytes, and the
//    ratios of step time and of those bytes to shard = none at the same world size (run first).
//  - BM_ShardedSave / BM_ShardedRead: a sharded checkpoint of the model and both Adam moments
//    written by n ranks (each its 1/n of every tensor) and read back whole on one thread, against
//    save_safetensors / load_safetensors of the same bytes on one thread (Arg 1: the raw backend).
//
//   ./build/bench/bench_zero --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
//       --benchmark_report_aggregates_only=true
//
// Iteration counts are fixed (every rank must do the same number of steps), so
// --benchmark_min_time has no effect; repetitions give the spread.
// Files go into a temporary directory that is removed at exit.
#include <benchmark/benchmark.h>

#include <kirzl/ddp.hpp>
#include <kirzl/io/safetensors.hpp>
#include <kirzl/io/sharded_checkpoint.hpp>
#include <kirzl/kirzl.hpp>

#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using namespace kirzl;
namespace nn = kirzl::nn;
namespace fs = std::filesystem;

constexpr int64_t kIn = 256, kHidden = 1024, kOut = 1000, kBatchPerRank = 16;

// 256*1024 + 1024 + 1024*1024 + 1024 + 1024*1000 + 1000 = 2,361,320 parameters.
std::shared_ptr<nn::Module> make_model() {
  return std::make_shared<nn::Sequential>(nn::Linear(kIn, kHidden), nn::GELU(), nn::Linear(kHidden, kHidden),
                                          nn::GELU(), nn::Linear(kHidden, kOut));
}

const char* shard_name(Shard s) { return s == Shard::none ? "none" : s == Shard::optimizer ? "optimizer" : "gradients"; }

// Runs n ranks: rank 0 on the benchmark's thread inside the timing loop, ranks 1..n-1 on threads
// doing the same number of steps (ranks must agree on the collectives). `setup(rank, comm)`
// builds a rank's state and returns its step; each rank does `warmup` untimed steps first.
// Returns rank 0's mean step time in seconds.
double run_ranks(benchmark::State& state, int n, int warmup,
                 const std::function<std::function<void()>(int, std::shared_ptr<comm::Communicator>)>& setup,
                 const std::function<void()>& after_rank0 = {}) {
  auto group = comm::make_in_process_group(n);
  const auto steps = static_cast<int64_t>(state.max_iterations);
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(n);
  for (int r = 1; r < n; ++r)
    threads.emplace_back([&, r] {
      GeneratorScope rng;
      try {
        auto step = setup(r, group[r]);
        for (int64_t i = 0; i < warmup + steps; ++i) step();
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  double seconds = 0;
  try {
    GeneratorScope rng;
    auto step = setup(0, group[0]);
    for (int i = 0; i < warmup; ++i) step();
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) step();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
              static_cast<double>(state.iterations());
    if (after_rank0) after_rank0();
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r)
    if (errors[r]) {
      try {
        std::rethrow_exception(errors[r]);
      } catch (const std::exception& e) {
        state.SkipWithError(("rank " + std::to_string(r) + ": " + e.what()).c_str());
      }
    }
  return seconds;
}

struct Held {
  double step_s = 0, optim_bytes = 0, grad_bytes = 0, param_bytes = 0;
};
std::map<int, Held>& baseline() {  // shard = none, per world size, from the same run
  static std::map<int, Held> b;
  return b;
}

// range(0): ranks; range(1): 0 none, 1 optimizer, 2 gradients.
void BM_ZeroStep(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto shard = static_cast<Shard>(state.range(1));
  set_num_threads(1);
  Held held;
  std::vector<std::shared_ptr<nn::Module>> models(n);
  std::vector<std::unique_ptr<DistributedDataParallel>> ddps(n);
  std::vector<std::unique_ptr<optim::AdamW>> opts(n);
  auto setup = [&](int rank, std::shared_ptr<comm::Communicator> c) -> std::function<void()> {
    manual_seed(0);
    models[rank] = make_model();
    ddps[rank] = std::make_unique<DistributedDataParallel>(*models[rank], c, DDPOptions{.shard = shard});
    opts[rank] = ddps[rank]->make_optimizer<optim::AdamW>({.lr = 1e-3, .weight_decay = 0.1});
    Generator g(static_cast<uint64_t>(rank) + 1);
    auto x = std::make_shared<Tensor>(randn({kBatchPerRank, kIn}, {}, &g));
    auto y = std::make_shared<Tensor>(randint(0, kOut, {kBatchPerRank}, {.dtype = DType::i64}, &g));
    return [&, rank, x, y] {
      Tensor loss = cross_entropy((*ddps[rank])(*x), *y);
      opts[rank]->zero_grad();
      loss.backward();
      opts[rank]->step();
    };
  };
  // What rank 0 holds between steps (after step(), before the next zero_grad()).
  auto measure = [&] {
    ddps[0]->synchronize_parameters();
    for (auto& [key, t] : opts[0]->state_dict())
      if (key.rfind("state.", 0) == 0) held.optim_bytes += static_cast<double>(t.numel() * dtype_size(t.dtype()));
    for (auto& p : models[0]->parameters()) {
      held.param_bytes += static_cast<double>(p.numel() * dtype_size(p.dtype()));
      if (p.grad().defined()) held.grad_bytes += static_cast<double>(p.grad().numel() * dtype_size(p.grad().dtype()));
    }
    // ZeRO-2: the reduced gradients live only in this rank's chunk of every bucket
    // (ceil(numel / n) elements each), which the optimizer's pieces view.
    if (shard == Shard::gradients)
      for (const BucketInfo& b : ddps[0]->buckets()) {
        const auto elems = static_cast<double>(b.bytes / dtype_size(b.dtype));
        held.grad_bytes += std::ceil(elems / n) * static_cast<double>(dtype_size(b.dtype));
      }
  };
  held.step_s = run_ranks(state, n, 2, setup, measure);
  if (shard == Shard::none) baseline()[n] = held;
  state.counters["ranks"] = n;
  state.counters["optim_state_MB_per_rank"] = held.optim_bytes / 1e6;
  state.counters["grad_MB_per_rank"] = held.grad_bytes / 1e6;
  state.counters["param_MB_per_rank"] = held.param_bytes / 1e6;
  if (baseline().count(n) != 0) {
    const Held& b = baseline()[n];
    state.counters["step_time_vs_none"] = held.step_s / b.step_s;
    state.counters["optim_state_vs_none"] = held.optim_bytes / b.optim_bytes;
    state.counters["grad_vs_none"] = held.grad_bytes / b.grad_bytes;
  }
  state.SetLabel(std::string("shard=") + shard_name(shard));
}

// The checkpoint: the model's tensors and two Adam moments of each, f32, in a 2.4M-parameter MLP.
struct CheckpointData {
  std::vector<std::string> keys;
  std::vector<Tensor> tensors;
  int64_t bytes = 0;
};
const CheckpointData& checkpoint_data() {
  static const CheckpointData d = [] {
    CheckpointData c;
    manual_seed(0);
    auto model = make_model();
    for (auto& [name, p] : model->named_parameters())
      for (const char* what : {"model.", "optim.exp_avg.", "optim.exp_avg_sq."}) {
        c.keys.push_back(what + name);
        c.tensors.push_back(randn(p.shape()));
        c.bytes += p.numel() * 4;
      }
    return c;
  }();
  return d;
}

fs::path temp_dir() {
  static const fs::path p = [] {
    fs::path d = fs::temp_directory_path() / ("kirzl_bench_zero_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return p;
}

// Rank `rank`'s 1/n of every tensor (flat ranges; the last rank takes the rest).
std::vector<io::TensorPiece> pieces_of(int rank, int n) {
  const CheckpointData& d = checkpoint_data();
  std::vector<io::TensorPiece> out;
  for (size_t i = 0; i < d.keys.size(); ++i) {
    const Tensor flat = d.tensors[i].reshape({-1});
    const int64_t numel = flat.numel(), per = (numel + n - 1) / n;
    const int64_t begin = std::min(numel, per * rank), end = std::min(numel, per * (rank + 1));
    if (end <= begin) continue;
    io::TensorPiece piece;
    piece.key = d.keys[i];
    piece.shape.assign(d.tensors[i].shape().begin(), d.tensors[i].shape().end());
    piece.offset = begin;
    piece.data = flat.narrow(0, begin, end - begin);
    out.push_back(std::move(piece));
  }
  return out;
}

// range(0): 1 = save_safetensors of everything on one thread; n > 1: save_sharded_checkpoint from n ranks.
void BM_CheckpointSave(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const CheckpointData& d = checkpoint_data();
  if (n == 1) {
    StateDict sd;
    for (size_t i = 0; i < d.keys.size(); ++i) sd.insert(d.keys[i], d.tensors[i]);
    const std::string file = (temp_dir() / "raw.safetensors").string();
    for (auto _ : state) io::save_safetensors(file, sd);
    state.SetLabel("save_safetensors, 1 thread");
  } else {
    const std::string dir = (temp_dir() / ("sharded_" + std::to_string(n))).string();
    run_ranks(state, n, 0, [&](int rank, std::shared_ptr<comm::Communicator> c) -> std::function<void()> {
      auto pieces = std::make_shared<std::vector<io::TensorPiece>>(pieces_of(rank, n));
      return [dir, c, pieces] { io::save_sharded_checkpoint(dir, *c, *pieces, {{"bench", "zero"}}); };
    });
    state.SetLabel("save_sharded_checkpoint, " + std::to_string(n) + " ranks");
  }
  state.counters["MB"] = static_cast<double>(d.bytes) / 1e6;
  state.counters["bytes_per_second"] =
      benchmark::Counter(static_cast<double>(d.bytes), benchmark::Counter::kIsIterationInvariantRate);
}

// range(0): 1 = load_safetensors of the file above; n > 1: ShardedCheckpoint::open + read of every key (one thread).
void BM_CheckpointRead(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const CheckpointData& d = checkpoint_data();
  if (n == 1) {
    const std::string file = (temp_dir() / "raw.safetensors").string();
    if (!fs::exists(file)) return state.SkipWithError("run BM_CheckpointSave/1 first");
    for (auto _ : state) benchmark::DoNotOptimize(io::load_safetensors(file).tensors.size());
    state.SetLabel("load_safetensors");
  } else {
    const std::string dir = (temp_dir() / ("sharded_" + std::to_string(n))).string();
    if (!fs::exists(dir)) return state.SkipWithError("run BM_CheckpointSave first");
    for (auto _ : state) {
      auto ck = io::ShardedCheckpoint::open(dir);
      for (const std::string& key : ck.keys()) benchmark::DoNotOptimize(ck.read(key).numel());
    }
    state.SetLabel("ShardedCheckpoint::read of " + std::to_string(n) + "-rank checkpoint");
  }
  state.counters["MB"] = static_cast<double>(d.bytes) / 1e6;
  state.counters["bytes_per_second"] =
      benchmark::Counter(static_cast<double>(d.bytes), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

// shard = none first at each world size: the ratios compare with it.
BENCHMARK(BM_ZeroStep)
    ->ArgsProduct({{2, 4}, {0, 1, 2}})
    ->ArgNames({"ranks", "shard"})
    ->Iterations(20)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheckpointSave)->Arg(1)->Arg(2)->Arg(4)->ArgName("ranks")->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheckpointRead)->Arg(1)->Arg(2)->Arg(4)->ArgName("ranks")->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(temp_dir(), ec);
  return 0;
}
