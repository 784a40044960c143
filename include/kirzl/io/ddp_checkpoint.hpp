// Checkpoints of data-parallel training, sharded (ZeRO) or not, that load at any world size.
//
//     DistributedDataParallel ddp(model, world, {.shard = Shard::optimizer});
//     auto opt = ddp.make_optimizer<optim::AdamW>({.lr = 3e-4});
//     ...
//     io::save_checkpoint("ckpt/latest", ddp, opt.get(), {.step = step, .epoch = epoch});  // every rank
//
//     // later, on any number of ranks, sharded or not:
//     io::CheckpointInfo info = io::load_checkpoint("ckpt/latest", ddp, opt.get());      // every rank
//
// The directory is a sharded checkpoint (kirzl/io/sharded_checkpoint.hpp, docs/checkpoints.md):
// one safetensors file per rank, an index, and a COMPLETE marker written last; the previous
// checkpoint at the path stays intact until the new one is complete. Its keys and metadata are
// those of save_checkpoint(path, model, opt): "model.<name>" and "optim.<entry>" with every tensor
// whole (a sharded optimizer's state under the indices an unsharded optimizer over the same param
// groups would use). So io::consolidate(dir, file) gives a plain checkpoint file that the
// single-process load_checkpoint(file, model, opt) reads, and load_checkpoint(path, ddp, opt)
// reads either form: a directory from any number of ranks, or one file.
#pragma once

#include <string>

#include "kirzl/ddp.hpp"
#include "kirzl/io/checkpoint.hpp"

namespace kirzl::io {

/// Writes the model's state, `opt`'s state (when given) and `info` (as save_checkpoint(path,
/// model, opt, info) does, with the metadata "world_size" and "shard" added) to the directory
/// `dir`. A collective: every rank of the DDP's communicator calls it with the same `dir` (on a
/// file system every rank sees) and `info`. Waits for a sharded optimizer's parameter all-gather
/// first. Each rank writes its shard of the optimizer state (sharded) or a share of the whole
/// tensors (unsharded), so no rank gathers the whole state. `opt` must be the optimizer of this
/// DDP: the one make_optimizer() returned when sharded, one over the module's parameters when not.
/// On failure on any rank every rank throws the same Error (Error{Io} for the file system, naming
/// the failing rank) and the previous checkpoint at `dir` is intact.
void save_checkpoint(const std::string& dir, DistributedDataParallel& ddp, const optim::Optimizer* opt = nullptr,
                     const CheckpointInfo& info = {});

/// Reads a checkpoint written by either save_checkpoint() (a directory written by any number of
/// ranks, sharded or not; or one file, e.g. from io::consolidate or the single-process overload)
/// into the DDP's module and `opt` (when given), resharding the optimizer state to this world
/// size and shard layout, and restores the default generator as the single-process overload does.
/// A collective: every rank calls it with the same arguments. Validates everything before
/// anything changes, and either every rank loads or every rank throws the same Error with the
/// model and optimizer unchanged: Error{Io} for an unreadable, incomplete or damaged checkpoint,
/// Error{InvalidArgument} for one that does not fit (missing, unexpected or mis-shaped model keys
/// when `strict`; another optimizer kind; other param groups; no optimizer state). While loading
/// a rank holds a copy of its model and optimizer state (to put back on failure).
CheckpointInfo load_checkpoint(const std::string& path, DistributedDataParallel& ddp, optim::Optimizer* opt = nullptr,
                               bool strict = true);

}  // namespace kirzl::io
