// Sharded data parallelism (ZeRO, DDPOptions::shard; Note [sharded optimizer]) on in-process
// ranks (one thread per rank, comm::make_in_process_group): an MLP of 2.4M parameters trained with
// AdamW at 2 and 4 ranks with shard = none, optimizer (ZeRO-1) and gradients (ZeRO-2).
//  - BM_ZeroStep: time per training step (forward + backward + step) and, as counters, what
//    rank 0 holds: optimizer-state bytes, gradient bytes between steps, parameter bytes, and the
//    ratios of step time and of those bytes to shard = none at the same world size (run first).
//    The sharded cases run with the parameters' all-gather overlapped with the next forward
//    (overlap_gather:1, the default; Note [parameter gather overlap]) and waited for before it
//    (overlap_gather:0); counters gather_wait_ms and forward_ms: rank 0's mean forward, and the
//    part of it spent waiting for the all-gathers (DDPStepStats).
//  - BM_ZeroBytesGpt2: the same bytes for GPT-2 124M (models::GPT, AdamW) after one step at 1, 2
//    and 4 ranks, beside the formulas (optimizer state 8/d bytes per parameter, ZeRO-2 gradients
//    4/d), as counters; one step of 1 x 32 tokens per rank (not a timing).
//  - BM_CheckpointSave / BM_CheckpointRead: a sharded checkpoint of the model and both Adam moments
//    written by n ranks (each its 1/n of every tensor) and read back whole on one thread, against
//    save_safetensors / load_safetensors of the same bytes on one thread (Arg 1: the raw backend).
//  - BM_DdpCheckpointSave / BM_DdpCheckpointLoad: io::save_checkpoint(dir, ddp, opt) of the MLP
//    and its AdamW state from n ranks (ZeRO-1 when n > 1), and io::load_checkpoint of the 4-rank
//    checkpoint at n ranks (resharding), rank 0's wall time per collective call; compare with
//    BM_CheckpointSave/1 and BM_CheckpointRead/1 (the same bytes, raw safetensors on one thread).
//
//   ./build/bench/bench_zero --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
//       --benchmark_report_aggregates_only=true
//
// Iteration counts are fixed (every rank must do the same number of steps), so
// --benchmark_min_time has no effect; repetitions give the spread.
// Files go into a temporary directory that is removed at exit.
#include <benchmark/benchmark.h>

#include <kirzl/ddp.hpp>
#include <kirzl/io/ddp_checkpoint.hpp>
#include <kirzl/io/safetensors.hpp>
#include <kirzl/io/sharded_checkpoint.hpp>
#include <kirzl/kirzl.hpp>
#include <kirzl/models/gpt.hpp>

#include <algorithm>
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
std::map<int, Held>& baseline() {  // shard = none, per world size (and bucket cap), from the same run
  static std::map<int, Held> b;
  return b;
}

// What a rank holds between steps (after step(), before the next zero_grad()).
Held held_by(DistributedDataParallel& ddp, nn::Module& model, const optim::Optimizer& opt, Shard shard, int n) {
  Held held;
  ddp.synchronize_parameters();
  for (auto& [key, t] : opt.state_dict())
    if (key.rfind("state.", 0) == 0) held.optim_bytes += static_cast<double>(t.numel() * dtype_size(t.dtype()));
  for (auto& p : model.parameters()) {
    held.param_bytes += static_cast<double>(p.numel() * dtype_size(p.dtype()));
    if (p.grad().defined()) held.grad_bytes += static_cast<double>(p.grad().numel() * dtype_size(p.grad().dtype()));
  }
  // ZeRO-2: the reduced gradients live only in this rank's chunk of every bucket
  // (ceil(numel / n) elements each), which the optimizer's pieces view.
  if (shard == Shard::gradients)
    for (const BucketInfo& b : ddp.buckets()) {
      const auto elems = static_cast<double>(b.bytes / dtype_size(b.dtype));
      held.grad_bytes += std::ceil(elems / n) * static_cast<double>(dtype_size(b.dtype));
    }
  return held;
}

// range(0): ranks; range(1): 0 none, 1 optimizer, 2 gradients; range(2): overlap_parameter_gather;
// range(3): bucket_cap_mb (25, the default: two buckets for this MLP; 1: one bucket per tensor).
void BM_ZeroStep(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto shard = static_cast<Shard>(state.range(1));
  const bool overlap_gather = state.range(2) != 0;
  const auto cap_mb = static_cast<int>(state.range(3));
  const int key = n * 100 + cap_mb;
  set_num_threads(1);
  Held held;
  std::vector<std::shared_ptr<nn::Module>> models(n);
  std::vector<std::unique_ptr<DistributedDataParallel>> ddps(n);
  std::vector<std::unique_ptr<optim::AdamW>> opts(n);
  std::vector<DDPStepStats> forwards;  // rank 0's, per step
  auto setup = [&](int rank, std::shared_ptr<comm::Communicator> c) -> std::function<void()> {
    manual_seed(0);
    models[rank] = make_model();
    ddps[rank] = std::make_unique<DistributedDataParallel>(
        *models[rank], c,
        DDPOptions{.bucket_cap_mb = static_cast<double>(cap_mb), .shard = shard, .overlap_parameter_gather = overlap_gather});
    opts[rank] = ddps[rank]->make_optimizer<optim::AdamW>({.lr = 1e-3, .weight_decay = 0.1});
    Generator g(static_cast<uint64_t>(rank) + 1);
    auto x = std::make_shared<Tensor>(randn({kBatchPerRank, kIn}, {}, &g));
    auto y = std::make_shared<Tensor>(randint(0, kOut, {kBatchPerRank}, {.dtype = DType::i64}, &g));
    return [&, rank, x, y] {
      Tensor loss = cross_entropy((*ddps[rank])(*x), *y);
      if (rank == 0) forwards.push_back(ddps[0]->last_step_stats());
      opts[rank]->zero_grad();
      loss.backward();
      opts[rank]->step();
    };
  };
  held.step_s = run_ranks(state, n, 2, setup, [&] { held = held_by(*ddps[0], *models[0], *opts[0], shard, n); });
  // Rank 0's forwards of the timed steps: how long each waited for the parameters' all-gathers.
  double wait_ms = 0, forward_ms = 0;
  const auto timed = static_cast<size_t>(state.iterations());
  for (size_t i = forwards.size() - std::min(forwards.size(), timed); i < forwards.size(); ++i) {
    wait_ms += forwards[i].gather_wait_ms / static_cast<double>(timed);
    forward_ms += forwards[i].forward_ms / static_cast<double>(timed);
  }
  state.counters["gather_wait_ms"] = wait_ms;
  state.counters["forward_ms"] = forward_ms;
  if (shard == Shard::none) baseline()[key] = held;
  state.counters["ranks"] = n;
  state.counters["optim_state_MB_per_rank"] = held.optim_bytes / 1e6;
  state.counters["grad_MB_per_rank"] = held.grad_bytes / 1e6;
  state.counters["param_MB_per_rank"] = held.param_bytes / 1e6;
  if (baseline().count(key) != 0) {
    const Held& b = baseline()[key];
    state.counters["step_time_vs_none"] = held.step_s / b.step_s;
    state.counters["optim_state_vs_none"] = held.optim_bytes / b.optim_bytes;
    state.counters["grad_vs_none"] = held.grad_bytes / b.grad_bytes;
  }
  state.SetLabel(std::string("shard=") + shard_name(shard) +
                 (shard == Shard::none ? "" : overlap_gather ? ", gather overlapped" : ", gather waited first") +
                 ", buckets of " + std::to_string(cap_mb) + " MB");
}

// shard = none first at each world size (the ratios compare with it), then each shard with the
// gather overlapped and not.
void zero_step_cases(benchmark::internal::Benchmark* b) {
  for (int64_t cap_mb : {25, 1})
    for (int64_t n : {2, 4}) {
      b->Args({n, 0, 1, cap_mb});
      for (int64_t shard : {1, 2})
        for (int64_t overlap_gather : {1, 0}) b->Args({n, shard, overlap_gather, cap_mb});
    }
}

// range(0): ranks; range(1): shard. GPT-2 124M (allocated parameters P, the padded wte rows
// included), AdamW in f32, one step of 1 x 32 tokens per rank, then what rank 0 holds, beside
// the formulas: optimizer state 8 P (none) or 8 P / d bytes; gradients 4 P, or 4 P / d (ZeRO-2).
void BM_ZeroBytesGpt2(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto shard = static_cast<Shard>(state.range(1));
  set_num_threads(1);
  const models::GPTConfig config = models::GPTConfig::gpt2_124m();
  constexpr int64_t kTokens = 32;
  Held held;
  double params = 0;
  std::vector<std::shared_ptr<models::GPT>> gpts(n);
  std::vector<std::unique_ptr<DistributedDataParallel>> ddps(n);
  std::vector<std::unique_ptr<optim::AdamW>> opts(n);
  auto setup = [&](int rank, std::shared_ptr<comm::Communicator> c) -> std::function<void()> {
    manual_seed(0);
    gpts[rank] = std::make_shared<models::GPT>(config);
    ddps[rank] = std::make_unique<DistributedDataParallel>(*gpts[rank], c, DDPOptions{.shard = shard});
    opts[rank] = ddps[rank]->make_optimizer<optim::AdamW>({.lr = 1e-4, .weight_decay = 0.1});
    Generator g(static_cast<uint64_t>(rank) + 1);
    auto idx = std::make_shared<Tensor>(randint(0, config.vocab_size, {1, kTokens}, {.dtype = DType::i64}, &g));
    auto targets = std::make_shared<Tensor>(randint(0, config.vocab_size, {kTokens}, {.dtype = DType::i64}, &g));
    return [&, rank, idx, targets] {
      Tensor logits = (*ddps[rank])(*idx);
      Tensor loss = cross_entropy(logits.reshape({kTokens, logits.size(-1)}), *targets);
      opts[rank]->zero_grad();
      loss.backward();
      opts[rank]->step();
    };
  };
  run_ranks(state, n, 0, setup, [&] {
    held = held_by(*ddps[0], *gpts[0], *opts[0], shard, n);
    for (auto& p : gpts[0]->parameters()) params += static_cast<double>(p.numel());
  });
  const double d = shard == Shard::none ? 1 : n;
  const double optim_formula = 8 * params / d, grad_formula = shard == Shard::gradients ? 4 * params / n : 4 * params;
  state.counters["ranks"] = n;
  state.counters["params_M"] = params / 1e6;
  state.counters["optim_state_MB_per_rank"] = held.optim_bytes / 1e6;
  state.counters["optim_formula_MB"] = optim_formula / 1e6;
  state.counters["optim_vs_formula"] = held.optim_bytes / optim_formula;
  state.counters["grad_MB_per_rank"] = held.grad_bytes / 1e6;
  state.counters["grad_formula_MB"] = grad_formula / 1e6;
  state.counters["grad_vs_formula"] = held.grad_bytes / grad_formula;
  state.counters["param_MB_per_rank"] = held.param_bytes / 1e6;
  state.SetLabel(std::string("GPT-2 124M, shard=") + shard_name(shard));
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

// A rank of the MLP after one AdamW step (so that the moments exist), for the DDP checkpoints;
// ZeRO-1 when n > 1.
struct DdpRank {
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<DistributedDataParallel> ddp;
  std::unique_ptr<optim::AdamW> opt;
};
std::shared_ptr<DdpRank> trained_rank(int rank, int n, std::shared_ptr<comm::Communicator> c) {
  auto r = std::make_shared<DdpRank>();
  manual_seed(0);
  r->model = make_model();
  r->ddp = std::make_unique<DistributedDataParallel>(*r->model, c,
                                                     DDPOptions{.shard = n > 1 ? Shard::optimizer : Shard::none});
  r->opt = r->ddp->make_optimizer<optim::AdamW>({.lr = 1e-3});
  Generator g(static_cast<uint64_t>(rank) + 1);
  Tensor loss = cross_entropy((*r->ddp)(randn({kBatchPerRank, kIn}, {}, &g)),
                              randint(0, kOut, {kBatchPerRank}, {.dtype = DType::i64}, &g));
  loss.backward();
  r->opt->step();
  return r;
}

std::string ddp_checkpoint_dir(int n) { return (temp_dir() / ("ddp_" + std::to_string(n))).string(); }

// range(0): ranks. io::save_checkpoint(dir, ddp, opt) from every rank.
void BM_DdpCheckpointSave(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  set_num_threads(1);
  const std::string dir = ddp_checkpoint_dir(n);
  run_ranks(state, n, 0, [&](int rank, std::shared_ptr<comm::Communicator> c) -> std::function<void()> {
    auto r = trained_rank(rank, n, c);
    return [r, dir] { io::save_checkpoint(dir, *r->ddp, r->opt.get(), {.step = 1}); };
  });
  state.counters["MB"] = static_cast<double>(checkpoint_data().bytes) / 1e6;
  state.counters["bytes_per_second"] = benchmark::Counter(static_cast<double>(checkpoint_data().bytes),
                                                          benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("save_checkpoint(dir, ddp, opt), " + std::to_string(n) + (n > 1 ? " ranks, ZeRO-1" : " rank"));
}

// range(0): ranks. io::load_checkpoint of the 4-rank checkpoint (resharded to n ranks).
void BM_DdpCheckpointLoad(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  set_num_threads(1);
  const std::string dir = ddp_checkpoint_dir(4);
  if (!fs::exists(dir)) return state.SkipWithError("run BM_DdpCheckpointSave/ranks:4 first");
  run_ranks(state, n, 0, [&](int rank, std::shared_ptr<comm::Communicator> c) -> std::function<void()> {
    auto r = trained_rank(rank, n, c);
    return [r, dir] { io::load_checkpoint(dir, *r->ddp, r->opt.get()); };
  });
  state.counters["MB"] = static_cast<double>(checkpoint_data().bytes) / 1e6;
  state.counters["bytes_per_second"] = benchmark::Counter(static_cast<double>(checkpoint_data().bytes),
                                                          benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("load_checkpoint(4-rank dir, ddp, opt), " + std::to_string(n) + (n > 1 ? " ranks, ZeRO-1" : " rank"));
}

}  // namespace

BENCHMARK(BM_ZeroStep)
    ->Apply(zero_step_cases)
    ->ArgNames({"ranks", "shard", "overlap_gather", "bucket_mb"})
    ->Iterations(20)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ZeroBytesGpt2)
    ->ArgsProduct({{1, 2, 4}, {0, 1, 2}})
    ->ArgNames({"ranks", "shard"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheckpointSave)->Arg(1)->Arg(2)->Arg(4)->ArgName("ranks")->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheckpointRead)->Arg(1)->Arg(2)->Arg(4)->ArgName("ranks")->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DdpCheckpointSave)->Arg(1)->Arg(2)->Arg(4)->ArgName("ranks")->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DdpCheckpointLoad)->Arg(1)->Arg(2)->Arg(4)->ArgName("ranks")->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(temp_dir(), ec);
  return 0;
}
