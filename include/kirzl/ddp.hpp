// DistributedDataParallel: the same training loop on N ranks gives the model one rank would
// train on the union of their batches, with gradient communication overlapping backward.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/comm.hpp"
#include "kirzl/io/timeline.hpp"
#include "kirzl/nn/module.hpp"
#include "kirzl/optim/clip.hpp"
#include "kirzl/optim/optimizer.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

namespace ddp_detail {
struct ShardAccess;
}  // namespace ddp_detail

/// What a communication hook is told about the bucket it reduces.
struct BucketInfo {
  int index = 0;  ///< position in bucket order; bucket 0 is reduced first
  std::vector<std::string> param_names;  ///< in bucket order (reverse registration order)
  size_t bytes = 0;           ///< size of the bucket's flat buffer
  DType dtype = DType::f32;   ///< dtype of the gradients in it
  /// "bucket 3: fc2.weight, fc2.bias (1.2 MB, f32)" — passed as the collective's tag.
  std::string tag;
  /// DDPOptions::timeout: hooks pass it on to their collectives (0: the communicator's default).
  std::chrono::milliseconds timeout{0};
};

/// A hook's answer: the collective in flight and what to do once it completed (may be empty).
struct CommHookResult {
  comm::Work work;               ///< the collective in flight
  std::function<void()> finish;  ///< run after work completed (e.g. write a compressed average back); may be empty
};

/// Reduces one bucket across ranks. `bucket` is a flat contiguous tensor holding this rank's
/// summed gradients; when the returned work has completed and `finish` has run, it must hold the
/// average over ranks. Runs on the thread that runs backward.
using CommHook = std::function<CommHookResult(comm::Communicator& comm, Tensor& bucket, const BucketInfo& info)>;

namespace comm_hooks {
/// The default: all_reduce with ReduceOp::Avg.
CommHook allreduce();
/// Casts the bucket to bf16 (or f16), all-reduces the sum (accumulated in f32 by the
/// communicator) and writes the average back: half the bytes on the wire, ~3 significant digits.
CommHook bf16_compress();
CommHook fp16_compress();
}  // namespace comm_hooks

/// What data-parallel training keeps only a share of on each rank (ZeRO, Rajbhandari et al. 2020;
/// Note [sharded optimizer]). With d ranks and Adam in f32 (4 bytes of weights, 4 of gradients and
/// 8 of moments per parameter):
///  - none: every rank holds everything: 16 bytes per parameter;
///  - optimizer (ZeRO-1): each rank keeps the optimizer state (and the f32 master weights of 16-bit
///    parameters) of its shard only: 8 + 8/d bytes; gradients are all-reduced as without sharding;
///  - gradients (ZeRO-2): as optimizer, and each bucket's gradients are reduce-scattered into the
///    owners' shards during backward: the reduced gradient of a parameter exists only on the rank
///    that owns it, 4 + 12/d bytes between steps. During backward a rank holds, beyond that, the
///    full-size gradient buckets being filled or in flight (each is freed when its
///    reduce-scatter is done; Note [ZeRO-2 bucket lifetime]), so a smaller bucket_cap_mb lowers
///    the peak further; bench/RESULTS.md measures both.
enum class Shard { none, optimizer, gradients };

/// How DistributedDataParallel buckets, reduces and shards; every field has a working default:
/// `DistributedDataParallel ddp(model, world, {.shard = Shard::optimizer});`. Validated at
/// construction (Error{InvalidArgument} naming the field).
struct DDPOptions {
  double bucket_cap_mb = 25.0;       ///< cap on a bucket's size (MiB); see Note [bucket order]
  double first_bucket_cap_mb = 1.0;  ///< the first bucket is small so communication starts early
  /// Parameters that took no part in forward are treated as ready with zero gradient. Without it,
  /// such a parameter is an error at the end of backward (naming it), never a hang.
  bool find_unused_parameters = false;
  /// Broadcast buffers (e.g. BatchNorm running statistics) from rank 0 at every forward.
  bool broadcast_buffers = true;
  /// false: every bucket starts only after backward has finished (no overlap). For measuring what
  /// overlap buys; leave it on for training.
  bool overlap = true;
  /// Timeout of each bucket's collective; 0 uses the communicator's default (KIRZL_TIMEOUT).
  std::chrono::milliseconds timeout{0};
  /// Replaces the plain all-reduce (see comm_hooks); empty means comm_hooks::allreduce().
  CommHook comm_hook = {};
  /// The dtype buckets are reduced in: f32 (the gradients' own dtype, no conversion) or bf16 (a
  /// bf16 copy of each bucket is all-reduced and the average written back: half the bytes on the
  /// wire, ~3 significant digits; the same as comm_hook = comm_hooks::bf16_compress()). Other
  /// dtypes, or bf16 together with a comm_hook, are Error{InvalidArgument}.
  DType reduce_dtype = DType::f32;
  /// Sharded data parallelism (see Shard). With optimizer or gradients, build the optimizer with
  /// make_optimizer(). Shard::gradients reduce-scatters with ReduceOp::Avg: comm_hook and a bf16
  /// reduce_dtype are Error{InvalidArgument} with it.
  Shard shard = Shard::none;
  /// With shard: the next forward waits for each bucket's parameter all-gather only when it reaches
  /// a module that uses the bucket (a forward pre-hook on every submodule), so the gathers of later
  /// layers overlap the forward of earlier ones (Note [parameter gather overlap]). Submodules must
  /// then be called through operator() (`(*child)(x)`), or have run_forward_pre_hooks() called
  /// before their parameters are read; a parameter read while its gather is pending is
  /// Error{InvalidArgument}. false: forward() waits for every bucket before the module runs, as
  /// it does anyway without grad mode (evaluation). No effect without shard.
  bool overlap_parameter_gather = true;
  /// Chrome-trace output (forward, backward, each bucket's all-reduce, user scopes); default from
  /// the KIRZL_TIMELINE environment variable (see io::Timeline::path_from_env).
  std::string timeline_path = "<env>";
};

/// Per-step communication figures of the reducer (milliseconds).
struct DDPStepStats {
  double backward_ms = 0;       ///< from the first gradient hook to the end of backward's nodes
  double first_launch_ms = 0;   ///< from the first gradient hook to the first bucket's launch
  double comm_ms = 0;           ///< first bucket launched to last bucket completed
  double comm_exposed_ms = 0;   ///< waited for communication after backward's nodes finished
  double comm_hidden_ms = 0;    ///< comm_ms - comm_exposed_ms: overlapped with backward
  int buckets = 0;              ///< buckets reduced in the step
  /// Sharded: how long the last forward() waited for the parameters' all-gathers (up front, or in
  /// its modules' hooks with DDPOptions::overlap_parameter_gather): the gather time the forward
  /// did not hide. 0 without sharding.
  double gather_wait_ms = 0;
  double forward_ms = 0;        ///< the last forward(), waits included
};

/// Wraps a module for data-parallel training. Construction broadcasts parameters and buffers
/// from rank 0 and verifies that every rank holds the same parameters (names, shapes, dtypes,
/// bucket layout), failing on all ranks with the first difference named. Each parameter's
/// `.grad` becomes a view into its bucket's flat buffer; a post-accumulate-grad hook marks it
/// ready, and a bucket is all-reduced (asynchronously, in bucket order on every rank) as soon as
/// its last gradient arrives. When backward ends, the reducer waits for every bucket; the
/// optimizer then sees averaged gradients.
///
/// On CUDA with the NCCL backend (Note [nccl work] in comm.hpp) each bucket's all-reduce starts on
/// the communicator's stream, ordered after the gradients on the compute stream by an event, and
/// "waits for every bucket" means the compute stream (the current stream of the thread running
/// backward) waits for the buckets' events: the host does not block, and the optimizer step that
/// follows on that stream sees the averaged gradients.
///
/// Every backward either reduces or fails: each loss that goes backward must come from its own
/// `forward()` through DDP. A second backward through one forward (retain_graph), a loss that
/// reaches the parameters through `module.forward()` directly, and parameters added, removed,
/// converted or moved after construction throw Error{InvalidArgument} naming the parameter. To
/// accumulate several backward passes, run all but the last under `no_sync()`.
///
/// Sharded data parallelism (DDPOptions::shard; Note [sharded optimizer]): the loop stays the
/// same, with the optimizer built by DDP over this rank's shard:
///
///     DistributedDataParallel ddp(model, world, {.shard = Shard::gradients});
///     auto opt = ddp.make_optimizer<optim::AdamW>({.lr = 3e-4, .weight_decay = 0.1});
///     for (auto& [x, y] : loader) {
///       Tensor loss = cross_entropy(ddp(x), y);
///       opt->zero_grad();
///       loss.backward();            // buckets all-reduced (optimizer) or reduce-scattered (gradients)
///       ddp.clip_grad_norm_(1.0);   // optional: the global norm over every rank's shard
///       opt->step();                // updates this rank's shard, then all-gathers the parameters
///     }
///
/// Each bucket is split into equal chunks, one per rank (Note [shard layout]); the optimizer's
/// parameters are this rank's pieces of the model's parameters (1-D views into them), so its
/// state, and the f32 master weights of bf16/f16 parameters, exist for the shard only. step()
/// updates the pieces in place and starts an all-gather of every bucket's parameters (the last
/// bucket, the first layers, first); the work in between (zero_grad, the next batch) overlaps
/// them, and so does the next forward(): each submodule's forward pre-hook waits only for the
/// buckets holding its parameters (DDPOptions::overlap_parameter_gather; Note [parameter gather
/// overlap]), so submodules must be called through operator(). synchronize_parameters() waits
/// for all of them. LR schedules, param groups (given over the model's parameters),
/// GradScaler (pass it the same communicator), no_sync accumulation and LAMB (trust ratios from
/// whole-tensor norms summed over the ranks) work as without sharding.
/// With Shard::gradients, a parameter's .grad() is undefined after a reduced backward (the
/// reduced gradients live in the optimizer's pieces): clip with ddp.clip_grad_norm_(), not with
/// optim::clip_grad_norm_(model.parameters()), which would find no gradient.
///
/// Use one DDP object per module; it must outlive every backward through the module. Not
/// thread-safe: drive it from one thread per rank. The optimizer should use
/// `zero_grad(set_to_none=false)` or the default (set to none): both work, the first saves a
/// re-binding of gradient views per step.
class DistributedDataParallel {
 public:
  /// Wraps `module` (not owned; it must outlive this object) for data-parallel training over `comm`.
  DistributedDataParallel(nn::Module& module, std::shared_ptr<comm::Communicator> comm, const DDPOptions& options = {});
  /// Same, over the group's communicator (e.g. the world from comm::init()).
  DistributedDataParallel(nn::Module& module, const comm::ProcessGroup& group, const DDPOptions& options = {});
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  /// Runs the module (its operator(): forward pre-hooks, then forward), preparing the reducer for
  /// the backward that follows.
  Tensor forward(const Tensor& x);
  /// Calls forward(x).
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// While alive, backward passes accumulate gradients locally without communicating (gradient
  /// accumulation); the next backward outside it reduces the accumulated sum.
  class NoSyncGuard {
   public:
    /// Stops communication for `ddp` until destroyed.
    explicit NoSyncGuard(DistributedDataParallel& ddp);
    ~NoSyncGuard();
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool prev_;
  };
  /// A NoSyncGuard for this object: `{ auto guard = ddp.no_sync(); loss.backward(); }`.
  [[nodiscard]] NoSyncGuard no_sync() { return NoSyncGuard(*this); }

  /// Uneven data: call at the top of every step with whether this rank has a batch. Returns true
  /// while every rank has one; the ranks stop together at the first rank that runs out, so none
  /// waits forever in a collective that the others never reach. One 4-byte all-reduce per call:
  ///
  ///     for (auto it = loader.begin(); ddp.join(it != loader.end()); ++it) { ... }
  ///
  /// (DistributedSampler already gives every rank the same number of batches; join() is for data
  /// that cannot be split evenly in advance, e.g. streams or filtered datasets.)
  bool join(bool has_batch);

  /// The optimizer for this DDP: over `groups` (given over the module's parameters, as for an
  /// unsharded optimizer; each parameter at most once) when DDPOptions::shard is none, else over
  /// this rank's pieces of them, in the same groups, so that group indices, LR schedules and
  /// state_dict() entries mean the same on every rank. A sharded optimizer is tied to this
  /// object: its step() updates the shard and starts the parameters' all-gather, its zero_grad()
  /// also clears the parameters' gradients, and step() without a reduced backward since the last
  /// step is Error{InvalidArgument}. Error{InvalidArgument} for a tensor in `groups` that is not
  /// one of the module's trainable parameters, and when this rank's shard has no element of any
  /// group (too small a model for this many ranks). `options` has no default here, so that
  /// `make_optimizer<AdamW>({.lr = 3e-4})` names the overload below unambiguously.
  template <class Opt>
  std::unique_ptr<Opt> make_optimizer(std::vector<optim::ParamGroup> groups, typename Opt::Options options) {
    auto opt = std::make_unique<Opt>(shard_groups(groups), options);
    attach_optimizer(*opt, groups);
    return opt;
  }
  /// make_optimizer over all of the module's trainable parameters in one group.
  template <class Opt>
  std::unique_ptr<Opt> make_optimizer(typename Opt::Options options = {}) {
    return make_optimizer<Opt>({optim::ParamGroup{.params = trainable_parameters()}}, options);
  }

  /// make_optimizer()'s two halves, for an optimizer built another way (the Python binding, an
  /// optimizer class of your own): build it over shard_groups(groups), then attach_optimizer(opt,
  /// groups) before its first step(). shard_groups returns `groups` unchanged without sharding,
  /// and with it this rank's pieces of them (errors as make_optimizer()).
  std::vector<optim::ParamGroup> shard_groups(const std::vector<optim::ParamGroup>& groups) const;
  /// Ties `opt`, built over shard_groups(groups), to this object as make_optimizer() does (does
  /// nothing without sharding). Error{InvalidArgument} when a sharded DDP already has one, or a
  /// parameter of `opt` is not a piece of this rank's shard.
  void attach_optimizer(optim::Optimizer& opt, const std::vector<optim::ParamGroup>& groups);

  /// clip_grad_norm_ over the gradients the optimizer will read: every parameter's without
  /// sharding, this rank's shard's with it (the global norm over all ranks; a collective).
  Tensor clip_grad_norm_(double max_norm, optim::ClipOptions options = {});

  /// Waits for the parameters' all-gathers started by a sharded optimizer's step() (forward()
  /// waits for them too, all at once or module by module: DDPOptions::overlap_parameter_gather).
  /// Call it before reading the parameters outside forward() (saving a checkpoint, reading
  /// weights; with overlap_parameter_gather, calling a submodule through operator() waits for its
  /// own). Does nothing when nothing is in flight.
  void synchronize_parameters();

  /// The module's parameters that DDP reduces (those that require grad), in registration order.
  std::vector<Tensor> trainable_parameters() const;

  /// The wrapped module.
  nn::Module& module();
  /// The communicator the buckets are reduced over.
  comm::Communicator& communicator();
  /// The buckets, in the order they are reduced.
  const std::vector<BucketInfo>& buckets() const;
  /// Figures of the last synchronised backward.
  const DDPStepStats& last_step_stats() const;
  /// Records a user span (e.g. "optimizer step") in the timeline; empty when disabled.
  std::unique_ptr<io::Timeline::Scope> trace(const std::string& name);
  /// Writes the timeline now (it is also written when the DDP object is destroyed).
  void write_timeline();

 private:
  friend struct ddp_detail::ShardAccess;  // the DDP checkpoints (src/io/ddp_checkpoint.cpp) read the shard layout
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kirzl
