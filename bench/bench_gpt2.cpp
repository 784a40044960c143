// GPT-2 124M training steps on one GPU: batch 16 x 1024 tokens, bf16 weights with f32 master
// weights in the fused AdamW (lr 6e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on the 2-D
// parameters only), the peer of bench/peers/gpt2_torch.py (run both with bench/run_gpt2_compare.sh).
//
// The model pads its vocabulary (GPTConfig::vocab_padding, 50257 -> 50304 rows of wte, Note [GPT
// vocabulary padding]) so that the output GEMM's leading dimension is a multiple of 128; it is still
// the 50257-class model: the padded classes enter no softmax and their rows stay zero.
//
// Two forward paths over the same models::GPT parameters:
//  - fused: the block written with the fused ops (residual_layer_norm, bias_gelu,
//    linear_cross_entropy; causal_attention runs the flash kernels on CUDA) — models::GPT::fused_loss();
//  - model: models::GPT::loss as the model defines it (plain ops).
// Counters: tokens/s; step time; peak device memory (the caching allocator's peak of allocated
// bytes, warm-up included, so the optimizer's state is counted); MFU = (6 N + 12 L C T) x tokens/s
// over the dense bf16 peak of an H100 SXM, 989.4 TFLOP/s (N: parameters of the true 50257-class
// model without the position embedding, as nanoGPT counts -- the padding's 47 x 768 GEMM rows are
// not useful work; the attention term counts the full T x T products, as PaLM does); energy over
// the timed steps from the GPU's NVML counter (io::EnergyMeter): joules_per_step and
// tokens_per_joule, and the label "energy: <what was measured>". Without the counter those two
// are absent (never 0) and the label says "energy not available: <why>".
//
// BM_gpt2_train_step_graph: the fused step with capturable AdamW captured once as a CUDA graph
// and replayed (cuda::Graph); graph_gain is the eager step time of the same setup, measured in the
// same run just before the capture, over the replay time.
//
// BM_gpt2_step_breakdown: the fused step's device time by kernel family (profiler::Profile).
//
// BM_gpt2_loss_check writes the initial weights (GPT-2 names, safetensors, values exact in bf16;
// wte as GPT-2's [50257, 768], without the padding rows, so the peer's 50257-class model loads it)
// and the batch (int32 [B, T + 1]) to $KIRZL_GPT2_CHECK_DIR (default /tmp/kirzl_gpt2_check), trains
// 10 steps on that batch with the fused path, and writes the losses to kirzl_losses.json there;
// the PyTorch script loads the same files, and run_gpt2_compare.sh compares the two.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <kirzl/core/profiler.hpp>
#include <kirzl/io/energy.hpp>
#include <kirzl/kirzl.hpp>

using namespace kirzl;

namespace {

constexpr int64_t kBatch = 16, kSeq = 1024;
constexpr double kPeakTflops = 989.4;  // H100 SXM5 dense bf16 (NVIDIA's datasheet, without sparsity)

bool have_gpu(benchmark::State& state) {
  if (cuda::is_available()) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

struct Setup {
  std::unique_ptr<models::GPT> model;
  std::unique_ptr<optim::AdamW> opt;
};

// capturable: AdamW keeps its step counts and lr on the device (Note [capturable adam]), as a
// captured step needs.
Setup make_setup(bool capturable = false) {
  manual_seed(1234);
  Setup s;
  s.model = std::make_unique<models::GPT>(models::GPTConfig::gpt2_124m());
  s.model->to(DType::bf16);
  s.model->to(Device::cuda(0));
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : s.model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  s.opt = std::make_unique<optim::AdamW>(
      std::vector<optim::ParamGroup>{{.params = decay, .weight_decay = 0.1}, {.params = no_decay, .weight_decay = 0.0}},
      optim::AdamWOptions{.lr = 6e-4, .betas = {0.9, 0.95}, .eps = 1e-8, .weight_decay = 0.1, .capturable = capturable});
  return s;
}

// Tokens [B, T + 1] (i64, CPU) from a seeded generator.
Tensor random_tokens(int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  return randint(0, vocab, {kBatch, kSeq + 1}, {.dtype = DType::i64}, &gen);
}

Tensor train_step(Setup& s, bool fused, const Tensor& idx, const Tensor& targets) {
  Tensor loss = fused ? s.model->fused_loss(idx, targets) : s.model->loss(idx, targets);
  loss.backward();
  s.opt->step();
  s.opt->zero_grad(true);
  return loss;
}

double flops_per_token(const models::GPT& m) {
  const auto& c = m.config();
  const double n = static_cast<double>(c.num_parameters() - c.block_size * c.n_embd);  // padding not counted
  return 6.0 * n + 12.0 * c.n_layer * c.n_embd * kSeq;
}

void BM_gpt2_train_step(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const bool fused = state.range(0) == 1;
  cuda::reset_peak_memory_stats(0);
  Setup s = make_setup();
  Tensor batch = random_tokens(s.model->config().vocab_size, 7).to(Device::cuda(0));
  Tensor idx = batch.slice(1, 0, kSeq).contiguous(), targets = batch.slice(1, 1, kSeq + 1).contiguous();
  io::EnergyMeter meter({.device = Device::cuda(0)});
  double joules = 0;
  try {
    for (int i = 0; i < 3; ++i) train_step(s, fused, idx, targets);  // warm-up: optimizer state, allocator cache
    cuda::synchronize(0);
    double last = 0;
    // One window over all timed steps: NVML's counter moves in steps of tens of milliseconds.
    const double joules_start = meter.available() ? meter.joules() : 0.0;
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      Tensor loss = train_step(s, fused, idx, targets);
      cuda::synchronize(0);
      state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      last = loss.to(Device::cpu()).to(DType::f64).item();
    }
    if (meter.available()) joules = meter.joules() - joules_start;
    state.counters["last_loss"] = last;
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const double tokens = static_cast<double>(kBatch * kSeq);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MFU"] = benchmark::Counter(flops_per_token(*s.model) * tokens / (kPeakTflops * 1e12),
                                             benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_mem_GB"] = static_cast<double>(cuda::memory_stats(0).peak_allocated_bytes) / 1e9;
  state.counters["peak_reserved_GB"] = static_cast<double>(cuda::memory_stats(0).peak_reserved_bytes) / 1e9;
  if (meter.available() && joules > 0) {
    const double steps = static_cast<double>(state.iterations());
    state.counters["joules_per_step"] = joules / steps;
    state.counters["tokens_per_joule"] = tokens * steps / joules;
    state.SetLabel("energy: " + meter.source());
  } else {
    state.SetLabel("energy not available: " +
                   (meter.available() ? "the counter did not move in " + std::to_string(state.iterations()) + " steps"
                                      : meter.unavailable_reason()));
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The fused step captured once as a CUDA graph (cuda::Graph) and replayed, beside the same step
// run eagerly in the same process with the same capturable AdamW: graph_gain = eager step time /
// replay time. Both time whole steps from the host (launch overhead included, which is what a
// graph removes), synchronising after each.
void BM_gpt2_train_step_graph(benchmark::State& state) {
  if (!have_gpu(state)) return;
  cuda::reset_peak_memory_stats(0);
  Setup s = make_setup(/*capturable=*/true);
  Tensor batch = random_tokens(s.model->config().vocab_size, 7).to(Device::cuda(0));
  // Static inputs: a training loop copies each batch into these before replay().
  Tensor idx = batch.slice(1, 0, kSeq).contiguous(), targets = batch.slice(1, 1, kSeq + 1).contiguous();
  double eager_s = 0, replay_s = 0, last = 0;
  try {
    for (int i = 0; i < 3; ++i) train_step(s, true, idx, targets);  // warm-up: state, plans, allocator cache
    cuda::synchronize(0);
    constexpr int kEagerSteps = 10;
    for (int i = 0; i < kEagerSteps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      train_step(s, true, idx, targets);
      cuda::synchronize(0);
      eager_s += seconds_since(t0) / kEagerSteps;
    }
    Tensor loss;
    cuda::Graph graph;
    graph.capture([&] { loss = train_step(s, true, idx, targets); });
    graph.replay();  // the first launch uploads the graph
    cuda::synchronize(0);
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      graph.replay();
      cuda::synchronize(0);
      const double dt = seconds_since(t0);
      state.SetIterationTime(dt);
      replay_s += dt;
    }
    last = loss.to(Device::cpu()).to(DType::f64).item();
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  replay_s /= static_cast<double>(state.iterations());
  const double tokens = static_cast<double>(kBatch * kSeq);
  state.counters["last_loss"] = last;
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["eager_step_ms"] = eager_s * 1e3;
  state.counters["graph_gain"] = eager_s / replay_s;
  state.counters["MFU"] = benchmark::Counter(flops_per_token(*s.model) * tokens / (kPeakTflops * 1e12),
                                             benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("energy not measured (graph variant)");
  state.counters["peak_mem_GB"] = static_cast<double>(cuda::memory_stats(0).peak_allocated_bytes) / 1e9;
  state.counters["peak_reserved_GB"] = static_cast<double>(cuda::memory_stats(0).peak_reserved_bytes) / 1e9;
}

// Where the fused step's time goes (issue #15's whole-step breakdown): after the warm-up, the timed
// steps run under a profiler::Profile (Note [profiler]), which times every kernel call with CUDA
// events. Counters, per step: ms_<family> (gemm, attention, layer_norm, gelu, classifier,
// optimizer, embedding, elementwise, ...: the device time of that family's kernels), kernels_ms
// (their sum) and kernels_share (kernels_ms over the step's wall time; the rest is copies, the
// allocator and gaps between kernels). The events add host time per kernel call, so this step is
// slower than BM_gpt2_train_step's: read the shares here and the throughput there. The whole table
// (families and the largest kernels) goes to stderr.
void BM_gpt2_step_breakdown(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Setup s = make_setup();
  Tensor batch = random_tokens(s.model->config().vocab_size, 7).to(Device::cuda(0));
  Tensor idx = batch.slice(1, 0, kSeq).contiguous(), targets = batch.slice(1, 1, kSeq + 1).contiguous();
  std::vector<profiler::ProfileRow> families;
  double wall_s = 0, kernels_ms = 0;
  try {
    for (int i = 0; i < 3; ++i) train_step(s, true, idx, targets);
    cuda::synchronize(0);
    profiler::Profile prof;
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      train_step(s, true, idx, targets);
      cuda::synchronize(0);
      const double dt = seconds_since(t0);
      state.SetIterationTime(dt);
      wall_s += dt;
    }
    prof.stop();
    families = prof.by_family();
    kernels_ms = prof.total_device_ms();
    std::fprintf(stderr, "bench_gpt2: the fused step, %lld steps under the profiler\n%s",
                 static_cast<long long>(state.iterations()), prof.table(25).c_str());
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const double steps = static_cast<double>(state.iterations());
  for (const auto& f : families)
    if (f.device == DeviceType::CUDA) state.counters["ms_" + f.name] = f.device_ms / steps;
  state.counters["kernels_ms"] = kernels_ms / steps;
  state.counters["kernels_share"] = wall_s > 0 ? kernels_ms / (wall_s * 1e3) : 0.0;
}

void BM_gpt2_loss_check(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const char* env = std::getenv("KIRZL_GPT2_CHECK_DIR");
  const std::filesystem::path dir = env && *env ? env : "/tmp/kirzl_gpt2_check";
  std::filesystem::create_directories(dir);
  for (auto _ : state) {
    Setup s = make_setup();
    // The bf16 weights, stored as f32: PyTorch starts from exactly these values.
    models::save_gpt2_safetensors((dir / "weights.safetensors").string(), *s.model, {}, DType::f32);
    Tensor tokens = random_tokens(s.model->config().vocab_size, 11);
    {
      Tensor t32 = tokens.to(DType::i32).contiguous();
      std::ofstream f(dir / "batch.i32", std::ios::binary);
      f.write(static_cast<const char*>(t32.data_ptr()), static_cast<std::streamsize>(t32.nbytes()));
      KIRZL_CHECK(f.good(), "bench_gpt2: cannot write ", (dir / "batch.i32").string());
    }
    Tensor dev = tokens.to(Device::cuda(0));
    Tensor idx = dev.slice(1, 0, kSeq).contiguous(), targets = dev.slice(1, 1, kSeq + 1).contiguous();
    std::vector<double> losses;
    for (int i = 0; i <= 10; ++i)
      losses.push_back(train_step(s, true, idx, targets).to(Device::cpu()).to(DType::f64).item());
    std::ofstream j(dir / "kirzl_losses.json");
    j << "{\"framework\": \"kirzl\", \"loss_step0\": " << losses.front() << ", \"loss_step10\": " << losses.back()
      << ", \"losses\": [";
    for (size_t i = 0; i < losses.size(); ++i) j << (i ? ", " : "") << losses[i];
    j << "]}\n";
    state.counters["loss_step0"] = losses.front();
    state.counters["loss_step10"] = losses.back();
  }
}

BENCHMARK(BM_gpt2_train_step)->Arg(1)->Arg(0)->ArgName("fused")->UseManualTime()->Iterations(20)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gpt2_train_step_graph)->UseManualTime()->Iterations(20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gpt2_step_breakdown)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_gpt2_loss_check)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
