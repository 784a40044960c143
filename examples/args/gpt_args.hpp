// The flags of examples/gpt.cpp (see Note [pure example parsers] in args.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "args.hpp"

namespace kirzl::examples {

struct GptArgs {
  int64_t steps = 600;
  int64_t batch_size = 32;  // global
  int64_t block_size = 64;
  int64_t n_layer = 4, n_head = 4, n_embd = 128;
  double dropout = 0.0;
  double lr = 3e-3, min_lr = 3e-4, weight_decay = 0.1, grad_clip = 1.0;
  int64_t warmup = 50;  // clamped to --steps, so that a short run keeps the default in range
  std::string data_dir = "/usr/share/games/fortunes";
  std::string cache_dir;  // empty: default_gpt_cache_dir()
  uint64_t seed = 0;
  std::string checkpoint, resume, metrics;
  std::string device = "cpu";
  int threads = 0;  // 0: kirzl's default
  int log_every = 50;
  int64_t eval_every = 200;
  int64_t eval_tokens = 32768;
  int64_t stop_after = 0;  // end this run after N steps, as if interrupted (0: never)
  int64_t sample_tokens = 400;
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 0;         // 0: all
  std::string prompt;
  std::string shard = "none";  // DDPOptions::shard: none, optimizer (ZeRO-1), gradients (ZeRO-2)
  int64_t profile = 0;  // time the kernels of N training steps after 2 warm-up steps (0: no profile)
};

/// Parses gpt's flags, with the rules across flags (--n-embd divisible by --n-head, --min-lr <=
/// --lr); throws ArgsError or HelpRequested, never prints or exits.
GptArgs parse_gpt_args(int argc, const char* const* argv);

/// <temp>/kirzl_gpt_fortunes: --cache-dir when not given.
std::string default_gpt_cache_dir();

/// The up-front path checks of one rank: --resume (every rank reads it); when `builds_corpus`
/// (each node's local rank 0), --data-dir, and --cache-dir, which is created now; --metrics when
/// `writes_files` (rank 0); --checkpoint by rank 0 when the run writes it as one file, by every
/// rank when as a directory (Note [checkpoint forms] in args.hpp). Throws ArgsError.
void check_gpt_paths(const GptArgs& args, bool builds_corpus, bool writes_files,
                     CheckpointForm form = CheckpointForm::file);

}  // namespace kirzl::examples
