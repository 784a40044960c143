// Internal: the state of DistributedDataParallel. The reducer (buckets, readiness, collectives
// during backward) is in reducer.cpp; sharding (Shard::optimizer / Shard::gradients: parameter
// buffers, the optimizer's pieces, the all-gather after step) in reducer_shard.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/shard_layout.h"
#include "kirzl/ddp.hpp"

namespace kirzl {

namespace ddp_detail {
/// Read access to a DDP's state for the DDP checkpoints.
struct ShardAccess {
  static DistributedDataParallel::Impl& impl(DistributedDataParallel& ddp) { return *ddp.impl_; }
};
}  // namespace ddp_detail

struct DistributedDataParallel::Impl {
  struct Bucket {
    std::vector<size_t> members;  // parameter indices, in bucket order
    Tensor buffer;                // flat gradients of all members (Shard::gradients: only during backward)
    BucketInfo info;
    size_t pending = 0;
    bool launched = false;
    bool completed = false;
    CommHookResult result;
    int64_t launch_us = 0, complete_us = 0;
  };

  // What DDP reduces for a parameter, recorded at construction: its slot's shape, dtype, device.
  struct ParamMeta {
    Shape shape;
    DType dtype = DType::f32;
    Device device;
  };

  // Sharding, per bucket (Note [shard layout]).
  struct BucketShardState {
    ddp_detail::BucketShard layout;
    Tensor params_flat;  // padded flat parameters; the bucket's parameters are views into it
    Tensor grad_shard;   // Shard::gradients: this rank's chunk of the reduced gradients
    Tensor gather_in;    // the all-gather's input: a copy of this rank's chunk
    comm::Work gather;   // the all-gather in flight after a step
    bool gather_pending = false;  // `gather` started and nobody waited for it yet
  };

  // One piece of the optimizer's parameters (Note [sharded optimizer]).
  struct Piece {
    size_t param = 0;     // the DDP parameter it belongs to
    int64_t offset = 0;   // its first element in the flattened parameter
    Tensor data;          // 1-D view of the parameter's elements
    Tensor grad;          // 1-D view of its reduced gradient
  };

  nn::Module& module;
  std::shared_ptr<comm::Communicator> comm;
  DDPOptions opts;
  CommHook hook;
  std::vector<std::string> names;
  std::vector<Tensor> params;
  std::vector<ParamMeta> meta;
  std::vector<Tensor> views;      // per parameter: its slot in the bucket buffer
  std::vector<size_t> bucket_of;  // per parameter
  std::vector<uint64_t> hook_handles;
  std::vector<Bucket> buckets;
  std::vector<BucketInfo> infos;
  std::vector<bool> ready, unused;
  size_t next_launch = 0;
  bool no_sync = false;
  // Note [reducer phases]: Idle (no forward has prepared a backward) -> Prepared (ddp.forward with
  // grad enabled) -> Backward (the first gradient hook) -> Reduced (finalize waited for every
  // bucket). Every gradient hook checks the phase, so a backward either reduces or fails: a hook
  // in Reduced is a second backward through one forward (retain_graph) or a loss that reached the
  // parameters outside ddp.forward, a hook in Idle a backward no ddp.forward prepared, and a
  // parameter ready twice in one backward is an error too. Before, mark_ready returned early for
  // a parameter already ready, and the second backward's gradients silently stayed unreduced
  // (ranks diverged by 12.6 on a Linear(4, 3)).
  enum class Phase { Idle, Prepared, Backward, Reduced };
  Phase phase = Phase::Idle;
  bool in_backward = false;
  io::Timeline timeline;
  DDPStepStats stats;
  int64_t first_hook_us = 0;

  // Sharding (reducer_shard.cpp).
  std::vector<BucketShardState> shards;  // per bucket
  std::vector<Piece> pieces;             // this rank's, in bucket order
  bool gathers_pending = false;          // a step started all-gathers that nobody waited for yet
  // Note [parameter gather overlap]: the forward pre-hooks DDP put on the module's submodules
  // (module, handle), and the buckets the root module's own parameters are in.
  std::vector<std::pair<std::shared_ptr<nn::Module>, uint64_t>> module_hooks;
  std::vector<size_t> root_buckets;
  int64_t gather_wait_ns = 0;  // waited in wait_gather since the last forward() began
  bool reduced_since_step = false;       // a reduced backward happened since the last step
  int attached_optimizers = 0;
  // The attached optimizer's parameters as pieces of the unsharded optimizer's (what
  // make_optimizer's groups would give without sharding), for DDP checkpoints: per optimizer
  // parameter, the unsharded index and the piece's first element; per group, its whole parameters.
  struct OptimizerLayout {
    const optim::Optimizer* optimizer = nullptr;
    std::vector<int64_t> whole_index, offset;
    std::vector<Shape> whole_shape;
    std::vector<int64_t> group_sizes;
  };
  OptimizerLayout layout;
  // The optimizers' hooks hold a weak_ptr to this: after DDP is gone they fail instead of using it.
  std::shared_ptr<Impl*> self;

  Impl(nn::Module& m, std::shared_ptr<comm::Communicator> c, const DDPOptions& o);
  ~Impl();

  // reducer.cpp
  void verify_same_parameters();
  void broadcast_state();
  void broadcast_all(std::vector<Tensor>& tensors);
  void build_buckets();
  void prepare();
  void check_parameters_unchanged();
  void mark_unused(const Tensor& out);
  void bind_to_slot(size_t i);
  void on_ready(size_t i);
  void mark_ready(size_t i);
  void launch_ready_buckets();
  void poll_completions();
  void finalize();
  void wait_launched_quietly();

  // reducer_shard.cpp
  bool sharded() const { return opts.shard != Shard::none; }
  bool shards_gradients() const { return opts.shard == Shard::gradients; }
  void build_shards();
  void ensure_bucket_buffer(Bucket& b);
  void release_bucket_buffer(Bucket& b);  // Note [ZeRO-2 bucket lifetime]
  void bind_to_slot_sharded(size_t i);
  CommHookResult reduce_scatter_bucket(size_t b);
  void after_reduction();
  void rebind_piece_grads();
  void start_gathers();
  void install_gather_hooks();
  void remove_gather_hooks();
  void mark_gather_pending(size_t b, bool pending);
  void wait_gather(size_t b);
  void wait_gathers(const std::vector<size_t>& bs);
  void wait_gathers();
  bool overlaps_gathers() const { return sharded() && opts.overlap_parameter_gather; }
  void check_step_allowed(const optim::Optimizer& opt) const;
  void clear_param_grads(bool set_to_none);
};

}  // namespace kirzl
