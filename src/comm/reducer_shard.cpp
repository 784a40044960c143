// Sharded data parallelism (DDPOptions::shard): the parameters' flat buffers, this rank's pieces
// for the optimizer, the reduce-scatter of Shard::gradients and the all-gather after step. See
// Note [sharded optimizer] and Note [shard layout].
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>

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
// bucket's buffer from the owners; the next forward waits for it, bucket by bucket as its modules
// run (Note [parameter gather overlap]). Because a piece is a view of
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

// Issued in the order the next forward needs them: buckets hold the parameters in reverse
// registration order, so the last bucket (the first layers) goes first.
void DistributedDataParallel::Impl::start_gathers() {
  NoGradGuard no_grad;
  const int64_t rank = comm->rank();
  for (size_t b = shards.size(); b-- > 0;) {
    BucketShardState& st = shards[b];
    // A copy of this rank's chunk: the all-gather writes the whole buffer, this chunk included.
    st.gather_in = st.params_flat.narrow(0, rank * st.layout.chunk, st.layout.chunk).clone();
    comm::AllGatherOptions o;
    o.timeout = opts.timeout;
    o.tag = "parameters of " + buckets[b].info.tag;
    st.gather = comm->all_gather(st.params_flat, st.gather_in, o);
    st.gather_pending = true;
    gathers_pending = true;
    if (overlaps_gathers()) mark_gather_pending(b, true);
  }
  reduced_since_step = false;
}

void DistributedDataParallel::Impl::mark_gather_pending(size_t b, bool pending) {
  for (size_t i : buckets[b].members) params[i].ensure_autograd_meta().gather_pending = pending;
}

// A bucket's wait, once: the bucket is no longer pending (nor its parameters marked) before the
// wait, so that a failed wait is not retried. A failure also drops every other pending gather
// (the communicator failed; their Works stay, for the destructor to end quietly), so nothing is
// left half-waited or marked, and the error is the communicator's, as without overlap.
void DistributedDataParallel::Impl::wait_gather(size_t b) {
  BucketShardState& st = shards[b];
  if (!st.gather_pending) return;
  st.gather_pending = false;
  mark_gather_pending(b, false);
  const int64_t start = timeline.enabled() ? timeline.now_us() : 0;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    st.gather.wait();
  } catch (...) {
    for (size_t o = 0; o < shards.size(); ++o)
      if (shards[o].gather_pending) {
        shards[o].gather_pending = false;
        mark_gather_pending(o, false);
      }
    gathers_pending = false;
    throw;
  }
  st.gather_in = Tensor();
  gather_wait_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  if (timeline.enabled()) timeline.span("wait " + buckets[b].info.tag + " parameters", "comm", start, timeline.now_us(), 0);
}

void DistributedDataParallel::Impl::wait_gathers(const std::vector<size_t>& bs) {
  if (!gathers_pending) return;
  for (size_t b : bs) wait_gather(b);
}

void DistributedDataParallel::Impl::wait_gathers() {
  if (!gathers_pending) return;
  for (size_t b = shards.size(); b-- > 0;) wait_gather(b);
  gathers_pending = false;
}

// Note [parameter gather overlap]: step() leaves one all-gather per bucket in flight, issued in
// the order the forward uses the buckets (the last bucket first). With
// DDPOptions::overlap_parameter_gather, a forward that records a graph does not wait for all of
// them up front: every submodule below the root gets a forward pre-hook that waits for the
// buckets holding a parameter of its subtree (computed once here; waiting a waited bucket is a
// no-op), so layer k's forward runs while the gathers of layers k+1... are still arriving. The
// root's own parameters are waited before its forward, and whatever no module waited for (an
// unused module) after it, so that no gather is in flight into backward or the next step.
// Evaluation (grad mode off) waits for everything first: without a graph there is no error to
// catch a parameter read too early (below). This relies on modules calling their children
// through operator() (or run_forward_pre_hooks() where a parent reads a child's weights itself,
// as GPT::fused_loss does). A module that does not would read stale parameters, so the safety
// net: the waiting marks each parameter of a pending bucket (AutogradMeta::gather_pending), and
// autograd::record refuses a marked input, naming the op and the fix (one flag test per input of
// a recorded op). The hooks are removed, and the marks cleared, when DDP is destroyed. With NCCL a
// wait makes the compute stream wait for the bucket's gather (Note [nccl work]) without blocking
// the host, so there the layers' kernels queue up at once and the GPU does the interleaving.
void DistributedDataParallel::Impl::install_gather_hooks() {
  if (!overlaps_gathers()) return;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < names.size(); ++i) index.emplace(names[i], i);
  // The buckets of the trained parameters among `m`'s, named below `prefix`, last bucket first.
  auto buckets_of = [&](const std::string& prefix, const nn::Module& m, bool recurse) {
    std::vector<size_t> bs;
    for (const auto& [name, p] : m.named_parameters(recurse)) {
      auto it = index.find(prefix + name);
      if (it != index.end()) bs.push_back(bucket_of[it->second]);
    }
    std::sort(bs.begin(), bs.end(), std::greater<>());
    bs.erase(std::unique(bs.begin(), bs.end()), bs.end());
    return bs;
  };
  root_buckets = buckets_of("", module, false);
  std::unordered_set<const nn::Module*> seen{&module};
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> todo;
  for (const auto& [name, child] : module.named_children()) todo.emplace_back(name + ".", child);
  while (!todo.empty()) {
    auto [prefix, m] = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(m.get()).second) continue;  // a module registered twice: hooked once
    for (const auto& [name, child] : m->named_children()) todo.emplace_back(prefix + name + ".", child);
    std::vector<size_t> bs = buckets_of(prefix, *m, true);
    if (bs.empty()) continue;
    const uint64_t handle = m->register_forward_pre_hook([this, bs](nn::Module&) { wait_gathers(bs); });
    module_hooks.emplace_back(std::move(m), handle);
  }
}

void DistributedDataParallel::Impl::remove_gather_hooks() {
  for (auto& [m, handle] : module_hooks) m->remove_forward_pre_hook(handle);
  module_hooks.clear();
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
    o.blocking = true;
    self.comm->all_reduce(wire, o);
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
