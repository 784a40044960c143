// Internal: the metadata of a kirzl checkpoint (format, step, epoch, optimizer kind, config,
// default generator), written and read alike by the single-file and the DDP checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kirzl/io/checkpoint.hpp"

namespace kirzl::io::detail {

inline constexpr const char* kModelPrefix = "model.";
inline constexpr const char* kOptimPrefix = "optim.";

/// The metadata save_checkpoint writes for `info` and `opt`, with the calling thread's default
/// generator's position.
std::map<std::string, std::string> checkpoint_metadata(const CheckpointInfo& info, const optim::Optimizer* opt);

/// What a checkpoint's metadata says.
struct CheckpointMetadata {
  CheckpointInfo info;
  std::string optimizer;  ///< the optimizer's name; empty when none was saved
  bool has_rng = false;
  int64_t rng_seed = 0, rng_offset = 0;
};

/// Parses and checks the metadata of the checkpoint at `path` (Error{Io}: not a kirzl checkpoint,
/// another format, a missing or malformed integer).
CheckpointMetadata parse_checkpoint_metadata(const std::string& path, const std::map<std::string, std::string>& meta);

/// Puts the calling thread's default generator where the checkpoint's was (nothing without rng.*).
void restore_generator(const CheckpointMetadata& m);

}  // namespace kirzl::io::detail
