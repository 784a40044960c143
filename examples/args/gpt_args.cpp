#include "gpt_args.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace kirzl::examples {

namespace {
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
std::string positive(double v) { return v > 0 ? "" : "a number > 0"; }
std::string non_negative(double v) { return v >= 0 ? "" : "a number >= 0"; }
std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
}  // namespace

GptArgs parse_gpt_args(int argc, const char* const* argv) {
  GptArgs a;
  FlagParser p("gpt", "A character-level GPT on Debian's fortunes, data-parallel on any number of ranks.");
  p.add_int("--steps", a.steps, "optimizer steps of the whole run", 1);
  p.add_int("--batch-size", a.batch_size, "the global batch in windows (split over the ranks)", 1);
  p.add_int("--block-size", a.block_size, "context length in characters", 1);
  p.add_int("--n-layer", a.n_layer, "transformer blocks", 1);
  p.add_int("--n-head", a.n_head, "attention heads (must divide --n-embd)", 1);
  p.add_int("--n-embd", a.n_embd, "model width", 1);
  p.add_double("--dropout", a.dropout, "dropout probability", [](double v) { return v >= 0 && v < 1 ? "" : "a number in [0, 1)"; });
  p.add_double("--lr", a.lr, "peak learning rate", positive);
  p.add_double("--min-lr", a.min_lr, "learning rate at the end of the cosine decay (<= --lr)", non_negative);
  p.add_int("--warmup", a.warmup, "warm-up steps (at most --steps)", 0);
  p.add_double("--weight-decay", a.weight_decay, "AdamW weight decay of the matrices", non_negative);
  p.add_double("--grad-clip", a.grad_clip, "clip the gradient norm to this (0: no clipping)", non_negative);
  p.add_text("--data-dir", a.data_dir, "the fortune files (apt-get install fortunes)");
  p.add_text("--cache-dir", a.cache_dir, "where the token shards are written", "<temp>/kirzl_gpt_fortunes");
  p.add_uint("--seed", a.seed, "seed of the initial model, the data order and the sample");
  p.add_choice("--device", a.device, "where to train", {"cpu", "cuda"});
  p.add_int("--threads", a.threads, "CPU threads per rank", 1, 1'000'000, "kirzl's default");
  p.add_choice("--shard", a.shard,
               "what each rank keeps only its share of: the optimizer state (ZeRO-1), also the gradients (ZeRO-2)",
               shard_choices());
  p.add_text("--checkpoint", a.checkpoint,
             "write a checkpoint here at every evaluation: a file (one process), a directory (several ranks or --shard)",
             "none");
  p.add_text("--resume", a.resume, "continue from this checkpoint (a file or a directory, of any world size and --shard)",
             "none");
  p.add_text("--metrics", a.metrics, "append JSON lines of metrics here", "none");
  p.add_int("--log-every", a.log_every, "a metrics line every N steps", 1);
  p.add_int("--eval-every", a.eval_every, "evaluate (and checkpoint) every N steps", 1);
  p.add_int("--eval-tokens", a.eval_tokens, "validation tokens per evaluation", 1);
  p.add_int("--stop-after", a.stop_after, "end after N steps, as if interrupted", 0, kMax, "0 (never)");
  p.add_int("--sample-tokens", a.sample_tokens, "characters sampled at the end", 0);
  p.add_double("--temperature", a.temperature, "sampling temperature (0: greedy)", non_negative);
  p.add_int("--top-k", a.top_k, "sample from the K likeliest characters (0: all)", 0);
  p.add_text("--prompt", a.prompt, "text the sample starts from", "a fortune's start");
  p.add_int("--profile", a.profile,
            "time the kernels of N training steps, after 2 warm-up steps, and print where the time went (rank 0)", 0,
            kMax, "0 (no profile)");
  p.parse(argc, argv);
  if (a.n_embd % a.n_head != 0)
    throw ArgsError("--n-embd " + std::to_string(a.n_embd) + " must be divisible by --n-head " + std::to_string(a.n_head));
  if (a.min_lr > a.lr)
    throw ArgsError("--min-lr " + number(a.min_lr) + " must be at most --lr " + number(a.lr));
  a.warmup = std::min(a.warmup, a.steps);
  return a;
}

std::string default_gpt_cache_dir() {
  std::error_code ec;
  std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
  return ((ec ? std::filesystem::path("/tmp") : tmp) / "kirzl_gpt_fortunes").string();
}

void check_gpt_paths(const GptArgs& a, bool builds_corpus, bool writes_files, CheckpointForm form) {
  check_input_checkpoint("--resume", a.resume);
  if (form == CheckpointForm::directory) check_output_checkpoint_dir("--checkpoint", a.checkpoint);
  if (builds_corpus) {
    check_input_dir("--data-dir", a.data_dir, "the corpus is Debian's fortunes package: apt-get install fortunes");
    make_output_dir("--cache-dir", a.cache_dir.empty() ? default_gpt_cache_dir() : a.cache_dir);
  }
  if (!writes_files) return;
  if (form == CheckpointForm::file) check_output_file("--checkpoint", a.checkpoint);
  check_output_file("--metrics", a.metrics);
}

}  // namespace kirzl::examples
