// Training checkpoints: a model's state, optionally an optimizer's, and the training position, in
// one safetensors file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kirzl/nn/module.hpp"
#include "kirzl/optim/optimizer.hpp"

namespace kirzl::io {

/// The training position and free-form configuration stored with a checkpoint.
struct CheckpointInfo {
  int64_t step = 0;   ///< optimizer steps taken so far (saved as metadata "step"; kirzl does not interpret it)
  int64_t epoch = 0;  ///< epochs completed so far, or the current one: the caller's convention ("epoch")
  /// Anything worth keeping with the weights (model name, hyper-parameters, data set, ...).
  std::map<std::string, std::string> config = {};
};

/// The value of the "format" metadata entry that marks a kirzl checkpoint.
inline constexpr const char* kCheckpointFormat = "kirzl-checkpoint-1";

/// Writes `model`'s state_dict() as "model.<name>", `opt`'s state_dict() (when given) as
/// "optim.<name>", and `info` in the safetensors "__metadata__" ("format", "step", "epoch",
/// "optimizer", "config.<key>", and the calling thread's default generator's "rng.seed" and "rng.offset") to
/// `path`, atomically (see save_safetensors). Only reads the
/// model and optimizer. The file is a plain safetensors file: Python's safetensors reads it.
/// Throws Error{Io} when the file cannot be written (a previous file stays intact).
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* opt = nullptr,
                     const CheckpointInfo& info = {});

/// Reads a checkpoint written by save_checkpoint() into `model` (and `opt` when given), in place,
/// and returns its CheckpointInfo. `strict` is Module::load_state_dict's (and entries that are
/// neither "model." nor "optim." are an error only when strict).
///
/// Together the model and optimizer state restore training exactly: continuing from a checkpoint
/// gives bit-identical parameters to never having stopped (same data order assumed). For that it
/// also restores the calling thread's default generator (kirzl::default_generator(), the innermost
/// GeneratorScope's if any) to where it was at save time,
/// so dropout draws the same masks; a file without "rng.*" metadata leaves the generator alone.
///
/// Throws Error{Io} for an unreadable or malformed file or one that is not a kirzl checkpoint;
/// Error{InvalidArgument} when the model's keys or shapes do not match (naming missing,
/// unexpected and mis-shaped keys), when `opt` is given but the file holds no optimizer state or
/// one of another kind, or when the optimizer state does not fit `opt`. Everything is validated
/// before the model changes; if the optimizer state is then rejected, the model's previous values
/// are put back, so on any error neither is changed.
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* opt = nullptr,
                               bool strict = true);

}  // namespace kirzl::io
