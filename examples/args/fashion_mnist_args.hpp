// The flags of examples/fashion_mnist.cpp (see Note [pure example parsers] in args.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "args.hpp"

namespace kirzl::examples {

struct FashionMnistArgs {
  std::string model = "mlp";
  int epochs = 10;  // when --epochs is not given: 10 for the MLP, 4 for the CNN
  int64_t batch_size = 128;  // global
  double lr = 1e-3;
  std::string optimizer = "adamw";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";  // data::kFashionMnistDir
  uint64_t seed = 0;
  std::string checkpoint, resume, metrics;
  std::string device = "cpu";
  int threads = 0;          // 0: kirzl's default
  int64_t train_limit = 0;  // use only the first N training examples (0: all)
  int64_t test_limit = 0;
  int log_every = 50;  // metrics lines every N steps
  int stop_after = 0;  // end this run after N epochs, as if interrupted (0: never; the schedule still spans --epochs)
  std::string shard = "none";  // DDPOptions::shard: none, optimizer (ZeRO-1), gradients (ZeRO-2)
};

/// Parses fashion_mnist's flags; throws ArgsError or HelpRequested, never prints or exits.
FashionMnistArgs parse_fashion_mnist_args(int argc, const char* const* argv);

/// The up-front path checks of one rank: --data-dir and --resume (every rank reads them) and,
/// when `writes_files` (rank 0), --metrics. --checkpoint is checked by rank 0 when the run writes
/// it as one file, by every rank when as a directory, since each rank writes its share (see
/// Note [checkpoint forms] in args.hpp). Throws ArgsError.
void check_fashion_mnist_paths(const FashionMnistArgs& args, bool writes_files,
                               CheckpointForm form = CheckpointForm::file);

}  // namespace kirzl::examples
