// A character-level GPT trained on a real English corpus: the Debian `fortunes` package's
// fortune cookies (apt-get install fortunes), data-parallel on any number of ranks.
//
//   ./build/examples/gpt                          # one process, a few minutes on 2 CPU threads
//   mpirun -np 2 ./build/examples/gpt --threads 1
//   mpirun -np 4 ./build/examples/gpt --threads 1 --shard optimizer   # ZeRO-1: a quarter of AdamW's state per rank
//
// The corpus is split by fortune (every tenth one is validation), tokenised by character, and
// written once as token shards (data/token_shards.hpp) that every rank then reads. The val loss
// is printed next to the corpus' unigram entropy: the loss of the best model that ignores context
// (both in nats per character), so the gap is what the transformer learned from context. At the
// end rank 0 samples text. --batch-size is the *global* batch: N ranks take batch/N windows each
// (disjoint shares of the same global batch), so one command trains the same model at any world
// size. --shard optimizer|gradients keeps only a share of the optimizer state (and of the reduced
// gradients) on each rank; a checkpoint of several ranks or of a sharded run is a directory that
// --resume reads at any world size. The last line printed is one JSON object with the final
// figures, with each rank's optimizer-state bytes and peak resident memory, and the energy used in
// training (joules per step, tokens per joule) where the devices have an energy counter.
// --profile N prints where the kernel time of N steps went, by family and by kernel (rank 0).
#include <kirzl/ddp.hpp>
#include <kirzl/io/checkpoint.hpp>
#include <kirzl/io/metrics.hpp>
#include <kirzl/io/progress.hpp>
#include <kirzl/kirzl.hpp>

#include "data_parallel.hpp"
#include "gpt_args.hpp"
#include "path_checks.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace kirzl;
namespace fs = std::filesystem;

using Args = kirzl::examples::GptArgs;

// ---- the corpus ----

// The fortune files of `dir` (plain files; the package's .dat indexes and .u8 links are skipped),
// in name order, split into fortunes at the "%" lines.
std::vector<std::string> read_fortunes(const std::string& dir) {
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat") files.push_back(e.path());
  KIRZL_CHECK_CODE(!files.empty(), ErrorCode::Io, "gpt: no fortune files in '", dir,
                   "'. The corpus is Debian's fortunes package: apt-get install fortunes (or pass --data-dir)");
  std::sort(files.begin(), files.end());
  std::vector<std::string> fortunes;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    KIRZL_CHECK_CODE(in.good(), ErrorCode::Io, "gpt: cannot read '", f.string(), "'");
    std::string cur;
    for (std::string line; std::getline(in, line);) {
      if (line == "%") {
        if (!cur.empty()) fortunes.push_back(cur);
        cur.clear();
      } else {
        cur += line + "\n";
      }
    }
    if (!cur.empty()) fortunes.push_back(cur);
  }
  return fortunes;
}

// -sum p log p of the token frequencies, in nats: the cross-entropy of the best context-free model.
double unigram_entropy(const std::vector<uint16_t>& tokens, int64_t vocab) {
  std::vector<double> count(static_cast<size_t>(vocab), 0.0);
  for (uint16_t t : tokens) count[t] += 1;
  double h = 0, n = static_cast<double>(tokens.size());
  for (double c : count)
    if (c > 0) h -= c / n * std::log(c / n);
  return h;
}

struct Corpus {
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::vector<uint16_t> train, val;
  double entropy = 0;
};

// The first rank of each node builds the shards (train: 9 of every 10 fortunes; val: the 10th) in
// --cache-dir, so a node-local /tmp works on many nodes; on a shared file system the nodes write
// the same bytes atomically. Then every rank reads them.
Corpus load_corpus(const Args& a, const comm::ProcessGroup& world) {
  const fs::path dir = a.cache_dir.empty() ? examples::default_gpt_cache_dir() : a.cache_dir;
  const fs::path train_path = dir / "fortunes_train.tok", val_path = dir / "fortunes_val.tok",
                 tok_path = dir / "fortunes.tokenizer";
  if (world.local_rank() == 0) {
    std::vector<std::string> fortunes = read_fortunes(a.data_dir);
    std::string all, train, val;
    for (size_t i = 0; i < fortunes.size(); ++i) {
      std::string& part = i % 10 == 9 ? val : train;
      part += fortunes[i];
      part += "%\n";  // the separator stays: the model learns where a fortune ends
      all += fortunes[i];
      all += "%\n";
    }
    data::CharTokenizer tok = data::CharTokenizer::from_text(all);
    fs::create_directories(dir);
    const auto vocab = static_cast<uint32_t>(tok.vocab_size());
    data::write_token_shard(train_path.string(), tok.encode(train), vocab);
    data::write_token_shard(val_path.string(), tok.encode(val), vocab);
    tok.save(tok_path.string());
  }
  world.communicator()->barrier({.tag = "token shards written"}).wait();
  Corpus c;
  c.tokenizer = data::Tokenizer::load(tok_path.string());
  const auto vocab = static_cast<uint32_t>(c.tokenizer->vocab_size());
  c.train = data::read_token_shard(train_path.string(), vocab).tokens;
  c.val = data::read_token_shard(val_path.string(), vocab).tokens;
  std::vector<uint16_t> both = c.train;
  both.insert(both.end(), c.val.begin(), c.val.end());
  c.entropy = unigram_entropy(both, c.tokenizer->vocab_size());
  return c;
}

// ---- training ----

// The character vocabulary (about 90 symbols) keeps GPTConfig's default vocab_padding: wte gets 128
// rows, the output GEMM an aligned width, and logits, loss and sampling stay over `vocab` classes.
models::GPTConfig model_config(const Args& a, int64_t vocab) {
  return {.vocab_size = vocab, .block_size = a.block_size, .n_layer = a.n_layer, .n_head = a.n_head,
          .n_embd = a.n_embd, .dropout = a.dropout};
}

// The run's settings that a checkpoint must agree with to be resumed. Not the world size and not
// --shard: a checkpoint resumes at any of them (the global batch keeps the data order).
std::map<std::string, std::string> run_config(const Args& a, const models::GPTConfig& c, const data::Tokenizer& tok) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : c.to_map()) m["model." + k] = v;
  m["batch_size"] = std::to_string(a.batch_size);
  m["steps"] = std::to_string(a.steps);
  m["lr"] = std::to_string(a.lr);
  m["seed"] = std::to_string(a.seed);
  m["tokenizer"] = tok.serialize();
  return m;
}

// Weight decay on the matrices (embeddings included) only, not on biases and LayerNorm gains.
std::vector<optim::ParamGroup> param_groups(const nn::Module& model, double weight_decay) {
  optim::ParamGroup decay{.weight_decay = weight_decay}, no_decay{.weight_decay = 0.0};
  for (const Tensor& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
  return {decay, no_decay};
}

// Mean loss over evenly spaced, non-overlapping val windows (at most eval_tokens tokens); each rank
// scores a contiguous share and the sums meet in one all_reduce.
double evaluate(models::GPT& model, const data::TokenBatchSampler& val, int64_t eval_tokens, int64_t local_batch,
                const comm::ProcessGroup& world, Device dev) {
  NoGradGuard no_grad;
  model.eval();
  const int64_t T = val.options().block_size;
  const int64_t n = std::max<int64_t>(1, std::min(eval_tokens / T, (val.num_tokens() - 1) / T));
  const int64_t stride = (val.num_tokens() - T - 1) / std::max<int64_t>(1, n - 1);
  const int64_t begin = n * world.rank() / world.size(), end = n * (world.rank() + 1) / world.size();
  double loss_sum = 0;
  for (int64_t i = begin; i < end; i += local_batch) {
    std::vector<int64_t> offsets;
    for (int64_t j = i; j < std::min(end, i + local_batch); ++j) offsets.push_back(j * stride);
    data::TokenBatch b = val.windows(offsets);
    loss_sum += model.loss(b.inputs.to(dev), b.targets.to(dev)).item() * static_cast<double>(offsets.size());
  }
  Tensor total = from_vector<double>({loss_sum}, {1});
  world.communicator()->all_reduce(total, {.op = comm::ReduceOp::Sum, .tag = "val loss"}).wait();
  model.train();
  return total.item() / static_cast<double>(n);
}

int run(const Args& args) {
  comm::ProcessGroup world = comm::init();
  const bool lead = world.rank() == 0;
  const examples::CheckpointForm form = examples::checkpoint_form(world.size(), args.shard);
  const bool sharded = args.shard != "none";
  // Wrong paths stop every rank now, not at the first evaluation. See Note [paths checked by every rank].
  examples::check_paths_on_every_rank(world,
                                      [&] { examples::check_gpt_paths(args, world.local_rank() == 0, lead, form); });
  if (args.threads > 0) set_num_threads(args.threads);
  // The world's device: cuda:(local_rank % visible GPUs), so that 2 ranks on one GPU share it
  // (cuda:local_rank named a device that does not exist there).
  const Device dev = args.device == "cuda" ? world.device() : Device::cpu();
  KIRZL_CHECK_CODE(args.device != "cuda" || dev.is_cuda(), ErrorCode::Unsupported, "gpt: --device cuda, but no CUDA "
                   "device is visible here (or kirzl was built without CUDA)");
  KIRZL_CHECK(args.batch_size % world.size() == 0, "gpt: --batch-size ", args.batch_size,
              " (the global batch) must be divisible by the world size ", world.size());
  const int64_t local_batch = args.batch_size / world.size();

  Corpus corpus = load_corpus(args, world);
  const int64_t vocab = corpus.tokenizer->vocab_size();
  const auto n_train = static_cast<int64_t>(corpus.train.size()), n_val = static_cast<int64_t>(corpus.val.size());
  data::TokenBatchSampler train(std::move(corpus.train), {.block_size = args.block_size, .batch_size = local_batch,
                                                          .seed = args.seed, .rank = world.rank(),
                                                          .world_size = world.size()});
  data::TokenBatchSampler val(std::move(corpus.val), {.block_size = args.block_size, .batch_size = local_batch});

  const models::GPTConfig config = model_config(args, vocab);
  manual_seed(args.seed);  // the same initial model on every rank (DDP also broadcasts rank 0's)
  models::GPT model(config);
  model.to(dev);
  DistributedDataParallel ddp(model, world, {.shard = examples::parse_shard(args.shard)});
  // Sharded, DDP builds the optimizer over this rank's shard, in the same two groups.
  const optim::AdamWOptions adamw{.lr = args.lr, .betas = {0.9, 0.95}};
  std::unique_ptr<optim::AdamW> opt = sharded ? ddp.make_optimizer<optim::AdamW>(param_groups(model, args.weight_decay), adamw)
                                              : std::make_unique<optim::AdamW>(param_groups(model, args.weight_decay), adamw);
  optim::CosineWithWarmup schedule(*opt, {.warmup_steps = args.warmup, .total_steps = args.steps, .min_lr = args.min_lr});
  const auto config_map = run_config(args, config, *corpus.tokenizer);

  int64_t step = 0;
  if (!args.resume.empty()) {
    const auto saved = examples::checkpoint_metadata(args.resume);
    for (const auto& [key, value] : config_map) {
      auto it = saved.find("config." + key);
      KIRZL_CHECK(it == saved.end() || it->second == value, "gpt: --resume '", args.resume, "' was written with ",
                  key == "tokenizer" ? "another tokenizer" : key + " = " + it->second, " but this run has ",
                  key == "tokenizer" ? "this corpus' tokenizer" : key + " = " + value);
    }
    // Any world size and --shard: the optimizer state is resharded to this run's.
    step = examples::load_run_checkpoint(args.resume, form, ddp, opt.get()).step;
    for (int64_t s = 0; s < step; ++s) schedule.step();
    if (lead)
      std::printf("resumed from %s (written by %s) at step %lld\n", args.resume.c_str(),
                  examples::checkpoint_origin(saved).c_str(), static_cast<long long>(step));
  }
  io::MetricsLog metrics(lead ? args.metrics : std::string());
  examples::JobEnergy energy(world, dev, "gpt");  // NVML on a GPU, RAPL on the CPU
  if (lead) {
    std::printf("gpt: fortunes corpus, %lld train / %lld val characters, vocabulary %lld, unigram entropy %.4f nats\n",
                static_cast<long long>(n_train), static_cast<long long>(n_val), static_cast<long long>(vocab),
                corpus.entropy);
    std::printf("gpt: %s, %lld parameters; global batch %lld x %lld tokens (%lld windows per rank), %lld steps, "
                "lr %g, %d rank(s), --shard %s, %s\n",
                config.str().c_str(), static_cast<long long>(model.num_parameters()),
                static_cast<long long>(args.batch_size), static_cast<long long>(args.block_size),
                static_cast<long long>(local_batch), static_cast<long long>(args.steps), args.lr, world.size(),
                args.shard.c_str(), dev.str().c_str());
    std::printf("gpt: energy: %s\n", energy.status().c_str());
  }

  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const int64_t end_step = args.stop_after > 0 ? std::min(args.steps, args.stop_after) : args.steps;
  const double tokens_per_step = static_cast<double>(args.batch_size * args.block_size);
  double train_seconds = 0, val_loss = NAN, train_loss = NAN;
  int64_t trained_steps = 0;
  auto save = [&] {  // a file from rank 0, or a directory every rank writes its share of
    if (!args.checkpoint.empty())
      examples::save_run_checkpoint(args.checkpoint, form, ddp, opt.get(), {.step = step, .config = config_map}, world);
    else
      world.communicator()->barrier({.tag = "checkpoint written"}).wait();
  };
  // The bar and the rate cover one stretch of training between evaluations.
  auto new_bar = [&] {
    return std::make_unique<io::ProgressBar>(
        io::ProgressBar::Options{.total_steps = end_step - step, .label = "train", .enabled = lead});
  };
  auto bar = new_bar();
  int64_t stretch_first = step;
  // Energy: this rank's joules over the steps of each metrics line (log_first..step; the
  // evaluations between are left out, carried over in log_joules) and over all training.
  io::EnergyWindow log_window(energy.meter()), train_window(energy.meter());
  int64_t log_first = step;
  double log_joules = 0, train_joules = energy.meter().available() ? 0.0 : NAN;
  auto t0 = std::chrono::steady_clock::now();
  // --profile N: the kernels of N steps after 2 warm-up steps (profiler::Profile, this thread's
  // calls only: the all-reduces of the communication thread are not in it).
  std::unique_ptr<profiler::Profile> prof;
  constexpr int64_t kProfileWarmup = 2;
  while (step < end_step) {
    if (args.profile > 0 && trained_steps == kProfileWarmup && !prof) prof = std::make_unique<profiler::Profile>();
    data::TokenBatch b = train.batch(step);
    Tensor logits = ddp(b.inputs.to(dev));
    Tensor loss = cross_entropy(logits.reshape({-1, vocab}), b.targets.to(dev).reshape({-1}));
    opt->zero_grad();
    loss.backward();  // buckets are all-reduced (reduce-scattered with --shard gradients) while backward runs
    if (args.grad_clip > 0) {
      // Sharded, the norm is over every rank's shard of the gradients (a collective).
      if (sharded)
        ddp.clip_grad_norm_(args.grad_clip);
      else
        optim::clip_grad_norm(model.parameters(), args.grad_clip);
    }
    opt->step();  // sharded: updates this rank's shard and starts the parameters' all-gather
    schedule.step();
    ++step;
    ++trained_steps;
    train_loss = loss.item();
    if (prof && prof->recording() && trained_steps == kProfileWarmup + args.profile) {
      prof->stop();
      if (lead)
        std::printf("---- kernels of steps %lld-%lld (rank 0) ----\n%s----\n",
                    static_cast<long long>(step - args.profile + 1), static_cast<long long>(step),
                    prof->table().c_str());
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = static_cast<double>(step - stretch_first) * tokens_per_step / std::max(secs, 1e-9);
    bar->update(step - stretch_first, train_loss, rate);  // this rank's loss; the rate in tokens/s
    if (step % args.log_every == 0) {
      // The metrics log holds the loss of the global batch: the mean over ranks.
      Tensor global_loss = loss.detach().to(Device::cpu()).to(DType::f64).reshape({1});
      world.communicator()->all_reduce(global_loss, {.op = comm::ReduceOp::Avg, .tag = "loss for the metrics log"}).wait();
      // The job's joules over the window, each counter once: null, never 0, without a counter.
      const double window_joules = energy.job_joules(log_window.finish(0, 0).joules + log_joules);
      const double window_steps = static_cast<double>(step - log_first);
      log_joules = 0;
      log_first = step;
      io::MetricsRecord record{.step = step, .loss = global_loss.item(), .lr = opt->lr(), .elapsed_seconds = elapsed()};
      record.set("tokens_per_second", rate)
          .set("joules_per_step", window_joules / window_steps)
          .set("tokens_per_joule", window_joules > 0 ? window_steps * tokens_per_step / window_joules : NAN);
      if (!energy.available()) record.set("energy", energy.status());
      metrics.log(record);
    }
    if (step % args.eval_every == 0 || step == end_step) {
      // Time spent evaluating, saving and sampling is not training time.
      train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      train_joules += train_window.finish(0, 0).joules;
      log_joules += log_window.finish(0, 0).joules;
      bar->finish();
      if (sharded) ddp.synchronize_parameters();  // evaluate() reads the parameters outside ddp.forward
      val_loss = evaluate(model, val, args.eval_tokens, local_batch, world, dev);
      if (lead) {
        std::printf("step %lld/%lld  train loss %.4f  val loss %.4f  (unigram entropy %.4f)  %.1f s\n",
                    static_cast<long long>(step), static_cast<long long>(args.steps), train_loss, val_loss,
                    corpus.entropy, elapsed());
        std::fflush(stdout);
        metrics.log({.step = step, .loss = val_loss, .elapsed_seconds = elapsed(), .extra = {{"split", "val"}}});
      }
      save();
      if (step < end_step) bar = new_bar();
      stretch_first = step;
      train_window.start();
      log_window.start();
      t0 = std::chrono::steady_clock::now();
    }
  }
  if (trained_steps == 0) val_loss = evaluate(model, val, args.eval_tokens, local_batch, world, dev);
  const auto memory = examples::MemoryFigures::gather(world, *opt);  // before the sample allocates
  std::vector<double> rank_joules;
  const double job_joules = energy.job_joules(train_joules, &rank_joules);
  const double trained_tokens = static_cast<double>(trained_steps) * tokens_per_step;
  const std::string layout = examples::world_layout_json(world);

  if (sharded) ddp.synchronize_parameters();  // the sample reads the parameters outside ddp.forward
  if (lead) {
    Generator gen(args.seed);
    std::vector<uint16_t> prompt = corpus.tokenizer->encode(args.prompt.empty() ? std::string("%\n") : args.prompt);
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    Tensor out = model.generate(from_vector(ids, {1, static_cast<int64_t>(ids.size())}).to(dev), args.sample_tokens,
                                args.temperature, args.top_k, &gen);
    std::vector<int64_t> all = out.to_vector<int64_t>();
    std::printf("---- sample (temperature %g) ----\n%s\n----\n", args.temperature,
                corpus.tokenizer->decode(std::span<const int64_t>(all.data() + ids.size(), all.size() - ids.size())).c_str());
    std::printf("{\"example\": \"gpt\", \"val_loss\": %.4f, \"unigram_entropy\": %.4f, \"train_loss\": %.4f, "
                "\"tokens_per_second\": %.0f, \"steps\": %lld, \"parameters\": %lld, \"world_size\": %d, "
                "\"seconds\": %.2f, \"shard\": \"%s\", %s, %s, \"energy\": %s, \"energy_joules\": %s, "
                "\"joules_per_step\": %s, \"tokens_per_joule\": %s, \"energy_joules_per_rank\": %s}\n",
                val_loss, corpus.entropy, train_loss,
                train_seconds > 0 ? static_cast<double>(trained_steps) * tokens_per_step / train_seconds : 0.0,
                static_cast<long long>(step), static_cast<long long>(model.num_parameters()), world.size(), elapsed(),
                args.shard.c_str(), memory.json().c_str(), layout.c_str(), examples::json_string(energy.status()).c_str(),
                examples::json_number_or_null(job_joules).c_str(),
                examples::json_number_or_null(job_joules / static_cast<double>(trained_steps)).c_str(),
                examples::json_number_or_null(job_joules > 0 ? trained_tokens / job_joules : NAN).c_str(),
                examples::json_list(rank_joules).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kirzl::examples::run_example_main<Args>("gpt", argc, argv, kirzl::examples::parse_gpt_args, [](const Args& args) {
    try {
      return run(args);
    } catch (const kirzl::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  });
}
