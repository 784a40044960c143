// Sharded data parallelism (DDPOptions::shard): the parameters' flat buffers, this rank's pieces
// for the optimizer, the reduce-scatter of Shard::gradients and the all-gather after step. See
// Note [sharded optimizer] and Note [shard layout].
#include <string>

#include "comm/reducer_impl.h"
#include "kirzl/autograd.hpp"

namespace kirzl {

// Note [sharded optimizer]: with DDPOptions::shard, rank r owns chunk r of every bucket (Note
// [shard layout]). At construction every parameter becomes a view into its bucket's flat
// parameter buffer (Tensor::set_data, so the module's handles stay valid), and the optimizer that
// make_optimizer() builds is given 1-D views of this rank's chunks instead of the parameters:
// its state, and the f32 masters of 16-bit parameters, cover the shard alone. Each piece's
// gradient is a view of the reduced gradients: into the all-reduced bucket (Shard::optimizer) or
// into this rank's reduce-scattered chunk (Shard::gradients). step() updates the pieces in place,
// which is the owner's part of the flat parameter buffer, and its post-hook all-gathers every
// bucket's buffer from the owners; the next forward waits for it. Because a piece is a view of
// the very memory the all-gather fills, nothing is copied back. Rules that need the norm of a whole
// tensor (LAMB) sum the pieces' partial norms over the ranks (Optimizer::WholeTensors).


void DistributedDataParallel::Impl::build_shards() {
  const int world = comm->size(), rank = comm->rank();
  std::vector<int64_t> numels;
  for (const Tensor& p : params) numels.push_back(p.numel());
  NoGradGuard no_grad;
  shards.resize(buckets.size());
  for (size_t b = 0; b < buckets.size(); ++b) {
    BucketShardState& st = shards[b];
    st.layout = ddp_detail::shard_bucket(buckets[b].members, numels, rank, world);
    const Tensor& first = params[buckets[b].members.front()];
    st.params_flat = zeros({st.layout.padded}, {.dtype = first.dtype(), .device = first.device()});
    int64_t off = 0;
    for (size_t i : buckets[b].members) {
      Tensor slot = st.params_flat.narrow(0, off, numels[i]).view(params[i].shape());
      slot.copy_(params[i]);
      params[i].set_data(slot);
      off += numels[i];
    }
    if (shards_gradients()) st.grad_shard = zeros({st.layout.chunk}, {.dtype = first.dtype(), .device = first.device()});
    const int64_t chunk_start = static_cast<int64_t>(rank) * st.layout.chunk;
    for (const ddp_detail::ShardPiece& sp : st.layout.pieces) {
      Piece pc;
      pc.param = sp.param;
      pc.offset = sp.param_offset;
      pc.data = st.params_flat.narrow(0, sp.bucket_offset, sp.length);
      pc.grad = shards_gradients() ? st.grad_shard.narrow(0, sp.bucket_offset - chunk_start, sp.length)
                                   : buckets[b].buffer.narrow(0, sp.bucket_offset, sp.length);
      pc.data.set_grad(pc.grad);
      pieces.push_back(std::move(pc));
    }
  }
}

void DistributedDataParallel::Impl::ensure_bucket_buffer(Bucket& b) {
  if (b.buffer.defined()) return;
  const size_t index = static_cast<size_t>(&b - buckets.data());
  const Tensor& first = params[b.members.front()];
  b.buffer = zeros({shards[index].layout.padded}, {.dtype = first.dtype(), .device = first.device()});
  int64_t off = 0;
  for (size_t i : b.members) {
    views[i] = b.buffer.narrow(0, off, params[i].numel()).view(params[i].shape());
    off += params[i].numel();
  }
}

// Shard::gradients: the gradient autograd accumulated (plus what no_sync() accumulated before)
// moves into the bucket's buffer, and the parameter lets go of it, so that after the
// reduce-scatter no full-size gradient is left.
void DistributedDataParallel::Impl::bind_to_slot_sharded(size_t i) {
  NoGradGuard no_grad;
  ensure_bucket_buffer(buckets[bucket_of[i]]);
  Tensor cur = params[i].grad();
  if (cur.defined()) views[i].copy_(cur);
  params[i].set_grad(Tensor());
}

CommHookResult DistributedDataParallel::Impl::reduce_scatter_bucket(size_t b) {
  comm::ReduceScatterOptions o;
  o.op = comm::ReduceOp::Avg;
  o.timeout = opts.timeout;
  o.tag = buckets[b].info.tag;
  return CommHookResult{comm->reduce_scatter(shards[b].grad_shard, buckets[b].buffer, o), {}};
}

// Note [ZeRO-2 bucket lifetime]: a bucket's full-size gradient buffer lives from its first
// gradient until its reduce-scatter is launched; then the reducer lets go of it, and the
// communicator's reference (held until the collective completes: the queued communicators drop
// the op after running it, NCCL's watchdog after its end event) is the last one, so its memory
// returns to the allocator, for the next bucket to reuse, as soon as the bucket is reduced. The
// backward therefore holds the buckets being filled or in flight, not the whole gradient: what
// ZeRO-2 saves over ZeRO-1 at the peak, not only between steps.
void DistributedDataParallel::Impl::release_bucket_buffer(Bucket& b) {
  b.buffer = Tensor();
  for (size_t i : b.members) views[i] = Tensor();
}

void DistributedDataParallel::Impl::after_reduction() {
  if (shards_gradients())
    for (Bucket& b : buckets) release_bucket_buffer(b);
  rebind_piece_grads();
  reduced_since_step = true;
  KIRZL_CHECK(attached_optimizers > 0, "DistributedDataParallel: shard = ",
              shards_gradients() ? "gradients" : "optimizer", " but no optimizer was built with "
              "ddp.make_optimizer<...>(): an optimizer over module.parameters() would not see the sharded gradients "
              "(and would keep the whole optimizer state on every rank)");
}

void DistributedDataParallel::Impl::rebind_piece_grads() {
  for (Piece& pc : pieces) {
    Tensor g = pc.data.grad();
    if (!g.defined() || !g.is_same(pc.grad)) pc.data.set_grad(pc.grad);
  }
}

void DistributedDataParallel::Impl::start_gathers() {
  NoGradGuard no_grad;
  const int64_t rank = comm->rank();
  for (size_t b = 0; b < shards.size(); ++b) {
    BucketShardState& st = shards[b];
    // A copy of this rank's chunk: the all-gather writes the whole buffer, this chunk included.
    st.gather_in = st.params_flat.narrow(0, rank * st.layout.chunk, st.layout.chunk).clone();
    comm::AllGatherOptions o;
    o.timeout = opts.timeout;
    o.tag = "parameters of " + buckets[b].info.tag;
    st.gather = comm->all_gather(st.params_flat, st.gather_in, o);
  }
  gathers_pending = true;
  reduced_since_step = false;
}

void DistributedDataParallel::Impl::wait_gathers() {
  if (!gathers_pending) return;
  gathers_pending = false;  // a failed wait must not be retried on the next forward
  for (BucketShardState& st : shards) {
    st.gather.wait();
    st.gather_in = Tensor();
  }
}

void DistributedDataParallel::Impl::check_step_allowed(const optim::Optimizer& opt) const {
  KIRZL_CHECK(reduced_since_step, opt.name(), ".step(): no reduced backward since the last step (DistributedDataParallel "
              "with shard = ", shards_gradients() ? "gradients" : "optimizer", "): the shard's gradients are those of "
              "the last step. Every step needs a backward outside no_sync() first.");
}

void DistributedDataParallel::Impl::clear_param_grads(bool set_to_none) {
  NoGradGuard no_grad;
  for (Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) p.set_grad(Tensor());
    else g.zero_();
  }
}

std::vector<optim::ParamGroup> DistributedDataParallel::shard_groups(const std::vector<optim::ParamGroup>& groups) const {
  const Impl& d = *impl_;
  if (!d.sharded()) return groups;
  std::vector<std::vector<size_t>> pieces_of(d.params.size());
  for (size_t k = 0; k < d.pieces.size(); ++k) pieces_of[d.pieces[k].param].push_back(k);
  std::vector<bool> seen(d.params.size(), false);
  std::vector<optim::ParamGroup> out;
  size_t total = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    optim::ParamGroup pg{.params = {}, .lr = groups[g].lr, .weight_decay = groups[g].weight_decay};
    for (size_t k = 0; k < groups[g].params.size(); ++k) {
      const Tensor& p = groups[g].params[k];
      size_t i = 0;
      while (i < d.params.size() && !(p.defined() && p.is_same(d.params[i]))) ++i;
      KIRZL_CHECK(i < d.params.size(), "DistributedDataParallel::make_optimizer: parameter ", k, " of param group ", g,
                  " (", p.defined() ? p.describe() : std::string("undefined"), ") is not one of the module's "
                  "trainable parameters");
      KIRZL_CHECK(!seen[i], "DistributedDataParallel::make_optimizer: parameter '", d.names[i],
                  "' appears more than once in the param groups");
      seen[i] = true;
      for (size_t piece : pieces_of[i]) pg.params.push_back(d.pieces[piece].data);
    }
    total += pg.params.size();
    out.push_back(std::move(pg));
  }
  KIRZL_CHECK(total > 0, "DistributedDataParallel::make_optimizer: rank ", d.comm->rank(), "'s shard holds no element of "
              "the given parameters: too few elements per bucket to shard over ", d.comm->size(), " ranks (use fewer "
              "ranks, larger buckets or shard = none)");
  return out;
}

void DistributedDataParallel::attach_optimizer(optim::Optimizer& opt, const std::vector<optim::ParamGroup>& groups) {
  Impl& d = *impl_;
  if (!d.sharded()) return;
  KIRZL_CHECK(d.attached_optimizers == 0, "DistributedDataParallel::make_optimizer: a sharded DDP drives one "
              "optimizer (put several param groups into it instead)");
  // The unsharded optimizer's index of each DDP parameter (shard_groups checked that each is one).
  std::vector<int64_t> unsharded(d.params.size(), -1);
  Impl::OptimizerLayout layout{.optimizer = &opt};
  int64_t next = 0;
  for (const optim::ParamGroup& g : groups) {
    for (const Tensor& p : g.params) {
      for (size_t i = 0; i < d.params.size(); ++i)
        if (p.is_same(d.params[i])) unsharded[i] = next;
      ++next;
    }
    layout.group_sizes.push_back(static_cast<int64_t>(g.params.size()));
  }
  optim::Optimizer::WholeTensors whole;
  for (int64_t g = 0; g < opt.num_groups(); ++g)
    for (const Tensor& t : opt.params(g)) {
      size_t k = 0;
      while (k < d.pieces.size() && !t.is_same(d.pieces[k].data)) ++k;
      KIRZL_CHECK(k < d.pieces.size(), "DistributedDataParallel::make_optimizer: the optimizer's parameter ",
                  t.describe(), " is not a piece of this rank's shard");
      const size_t i = d.pieces[k].param;
      whole.index.push_back(static_cast<int64_t>(i));
      layout.whole_index.push_back(unsharded[i]);
      layout.offset.push_back(d.pieces[k].offset);
      layout.whole_shape.push_back(d.meta[i].shape);
    }
  d.layout = std::move(layout);
  whole.count = static_cast<int64_t>(d.params.size());
  std::weak_ptr<Impl*> weak = d.self;
  auto lock = [weak](const optim::Optimizer& o) -> Impl& {
    std::shared_ptr<Impl*> sp = weak.lock();
    KIRZL_CHECK(sp != nullptr, o.name(), ": the DistributedDataParallel whose shard this optimizer updates was "
                "destroyed; the optimizer cannot be used without it");
    return **sp;
  };
  whole.all_reduce_sum = [lock, &opt](Tensor& sums) {
    Impl& self = lock(opt);
    Tensor wire = sums.to(self.comm->device());
    comm::AllReduceOptions o;
    o.op = comm::ReduceOp::Sum;
    o.timeout = self.opts.timeout;
    o.tag = opt.name() + " whole-tensor norms";
    self.comm->all_reduce(wire, o).wait();
    sums.copy_(wire.to(Device::cpu()));
  };
  opt.set_whole_tensors(std::move(whole));
  opt.register_step_pre_hook([lock](optim::Optimizer& o, bool) { lock(o).check_step_allowed(o); });
  opt.register_step_post_hook([lock](optim::Optimizer& o, bool) { lock(o).start_gathers(); });
  opt.register_zero_grad_post_hook([lock](optim::Optimizer& o, bool set_to_none) {
    lock(o).clear_param_grads(set_to_none);
  });
  ++d.attached_optimizers;
}

Tensor DistributedDataParallel::clip_grad_norm_(double max_norm, optim::ClipOptions options) {
  Impl& d = *impl_;
  if (!d.sharded()) return optim::clip_grad_norm_(d.params, max_norm, options);
  options.group = d.comm.get();
  std::vector<Tensor> shard;
  for (const Impl::Piece& pc : d.pieces) shard.push_back(pc.data);
  return optim::clip_grad_norm_(shard, max_norm, options);
}

void DistributedDataParallel::synchronize_parameters() { impl_->wait_gathers(); }

std::vector<Tensor> DistributedDataParallel::trainable_parameters() const { return impl_->params; }

}  // namespace kirzl
