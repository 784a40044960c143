// The data-parallel reducer. See include/kirzl/ddp.hpp and Note [bucket order].
#include <functional>
#include <sstream>
#include <unordered_set>

#include "comm/buckets.h"
#include "comm/reducer_impl.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ddp.hpp"

namespace kirzl {

namespace {

std::string mb(size_t bytes) {
  std::ostringstream os;
  os.precision(bytes < (1 << 20) ? 2 : 3);
  os << static_cast<double>(bytes) / (1 << 20) << " MB";
  return os.str();
}

// FNV-1a over the bytes of a parameter's identity: name, dtype, shape.
uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t param_hash(const std::string& name, const Tensor& p) {
  uint64_t h = 1469598103934665603ull;
  h = fnv1a(h, name.data(), name.size());
  DType dt = p.dtype();
  h = fnv1a(h, &dt, sizeof dt);
  for (int64_t d : p.shape()) h = fnv1a(h, &d, sizeof d);
  return h;
}

}  // namespace

namespace comm_hooks {

CommHook allreduce() {
  return [](comm::Communicator& c, Tensor& bucket, const BucketInfo& info) {
    comm::AllReduceOptions o;
    o.op = comm::ReduceOp::Avg;
    o.tag = info.tag;
    o.timeout = info.timeout;
    return CommHookResult{c.all_reduce(bucket, o), {}};
  };
}

namespace {
CommHook compress(DType wire) {
  return [wire](comm::Communicator& c, Tensor& bucket, const BucketInfo& info) {
    Tensor packed = bucket.to(wire);
    comm::AllReduceOptions o;
    o.op = comm::ReduceOp::Avg;
    o.tag = info.tag + " (" + dtype_name(wire) + " compressed)";
    o.timeout = info.timeout;
    comm::Work w = c.all_reduce(packed, o);
    Tensor target = bucket;  // a handle to the same buffer
    return CommHookResult{w, [target, packed]() mutable {
                            NoGradGuard g;
                            target.copy_(packed);
                          }};
  };
}
}  // namespace

CommHook bf16_compress() { return compress(DType::bf16); }
CommHook fp16_compress() { return compress(DType::f16); }

}  // namespace comm_hooks

namespace {
CommHook choose_hook(const DDPOptions& o) {
  KIRZL_CHECK(o.reduce_dtype == DType::f32 || o.reduce_dtype == DType::bf16,
              "DistributedDataParallel: reduce_dtype must be f32 or bf16, got ", dtype_name(o.reduce_dtype));
  KIRZL_CHECK(o.shard != Shard::gradients || (!o.comm_hook && o.reduce_dtype == DType::f32),
              "DistributedDataParallel: shard = gradients reduce-scatters each bucket with ReduceOp::Avg; a comm_hook "
              "or reduce_dtype = bf16 cannot be combined with it (use shard = optimizer, which all-reduces through "
              "the hook)");
  if (o.reduce_dtype == DType::bf16) {
    KIRZL_CHECK(!o.comm_hook, "DistributedDataParallel: reduce_dtype = bf16 and a comm_hook were both given; the hook "
                "decides what goes on the wire (use comm_hooks::bf16_compress() as the hook, or drop reduce_dtype)");
    return comm_hooks::bf16_compress();
  }
  return o.comm_hook ? o.comm_hook : comm_hooks::allreduce();
}
}  // namespace

DistributedDataParallel::Impl::Impl(nn::Module& m, std::shared_ptr<comm::Communicator> c, const DDPOptions& o)
    : module(m),
      comm(std::move(c)),
      opts(o),
      hook(choose_hook(o)),
      timeline(o.timeline_path == "<env>" ? io::Timeline::path_from_env(comm ? comm->rank() : 0) : o.timeline_path,
               comm ? comm->rank() : 0) {
  KIRZL_CHECK(comm != nullptr, "DistributedDataParallel: the communicator is null");
  KIRZL_CHECK(o.bucket_cap_mb > 0 && o.first_bucket_cap_mb > 0, "DistributedDataParallel: bucket caps must be positive, got bucket_cap_mb=",
              o.bucket_cap_mb, " first_bucket_cap_mb=", o.first_bucket_cap_mb);
  for (auto& [name, p] : module.named_parameters())
    if (p.requires_grad()) {
      names.push_back(name);
      params.push_back(p);
    }
  KIRZL_CHECK(!params.empty(), "DistributedDataParallel: the module has no parameters that require grad");
  for (const Tensor& p : params) meta.push_back({p.shape(), p.dtype(), p.device()});
  verify_same_parameters();
  broadcast_state();
  build_buckets();
  if (sharded()) build_shards();
  self = std::make_shared<Impl*>(this);
  for (size_t i = 0; i < params.size(); ++i)
    hook_handles.push_back(params[i].register_post_accumulate_grad_hook([this, i](Tensor&) { on_ready(i); }));
  install_gather_hooks();  // last: nothing throws after it (~Impl removes them; Note [parameter gather overlap])
}

DistributedDataParallel::Impl::~Impl() {
  for (size_t i = 0; i < params.size() && i < hook_handles.size(); ++i) params[i].remove_hook(hook_handles[i]);
  remove_gather_hooks();  // the module may outlive this object
  // An all-gather still writing into the parameters must end before they can be freed; the
  // parameters lose their marks (Note [parameter gather overlap]).
  for (size_t b = 0; b < shards.size(); ++b) {
    try {
      shards[b].gather.synchronize();
    } catch (...) {
    }
    if (shards[b].gather_pending) mark_gather_pending(b, false);
  }
}

// Construction step 1: every rank must hold the same parameters, in the same order.
void DistributedDataParallel::Impl::verify_same_parameters() {
  const int n = comm->size();
  if (n == 1) return;
  std::vector<int64_t> own;
  uint64_t all = 1469598103934665603ull;
  for (size_t i = 0; i < params.size(); ++i) {
    uint64_t h = param_hash(names[i], params[i]);
    own.push_back(static_cast<int64_t>(h));
    all = fnv1a(all, &h, sizeof h);
  }
  // The bucket layout follows from the parameters and the caps: equal caps mean equal layouts.
  for (double cap : {opts.bucket_cap_mb, opts.first_bucket_cap_mb}) all = fnv1a(all, &cap, sizeof cap);
  // Small internal tensors live where the communicator wants them (CUDA for a bare NCCL one);
  // synchronize(): the host reads them next.
  const Device cd = comm->device();
  Tensor mine = from_vector<int64_t>({static_cast<int64_t>(all), static_cast<int64_t>(params.size())}).to(cd);
  Tensor gathered = zeros({2 * static_cast<int64_t>(n)}, {.dtype = DType::i64, .device = cd});
  comm->all_gather(gathered, mine, {}).synchronize();
  auto g = gathered.to_vector<int64_t>();
  std::vector<int> differ;
  for (int r = 0; r < n; ++r)
    if (g[2 * r] != g[0] || g[2 * r + 1] != g[1]) differ.push_back(r);
  if (differ.empty()) return;
  // Find the first parameter that differs from rank 0's: rank 0 broadcasts its per-parameter hashes.
  const int64_t count0 = g[1];
  Tensor theirs = comm->rank() == 0 ? from_vector<int64_t>(own).to(cd) : zeros({count0}, {.dtype = DType::i64, .device = cd});
  comm::BroadcastOptions bo;
  bo.root = 0;
  comm->broadcast(theirs, bo).synchronize();
  auto ref = theirs.to_vector<int64_t>();
  std::ostringstream msg;
  msg << "DistributedDataParallel: the model differs between ranks (ranks";
  for (int r : differ) msg << ' ' << r;
  msg << " differ from rank 0). ";
  bool this_differs = g[2 * comm->rank()] != g[0] || g[2 * comm->rank() + 1] != g[1];
  if (this_differs) {
    size_t i = 0;
    while (i < own.size() && i < ref.size() && own[i] == ref[i]) ++i;
    if (i < own.size())
      msg << "On rank " << comm->rank() << ", parameter #" << i << " '" << names[i] << "' " << params[i].describe()
          << " does not match rank 0's parameter #" << i;
    else
      msg << "Rank " << comm->rank() << " has " << own.size() << " parameters, rank 0 has " << count0;
    msg << " (rank 0 has " << count0 << " parameters, rank " << comm->rank() << " has " << own.size() << ").";
  } else {
    msg << "This rank matches rank 0; the differing ranks name their first mismatching parameter.";
  }
  KIRZL_FAIL(ErrorCode::InvalidArgument, msg.str());
}

// Construction step 2: rank 0's parameters and buffers everywhere.
void DistributedDataParallel::Impl::broadcast_state() {
  if (comm->size() == 1) return;
  NoGradGuard g;
  std::vector<Tensor> state = params;
  for (auto& [n, b] : module.named_buffers()) state.push_back(b);
  broadcast_all(state);
}

void DistributedDataParallel::Impl::broadcast_all(std::vector<Tensor>& tensors) {
  std::vector<std::pair<comm::Work, std::pair<Tensor, Tensor>>> pending;
  for (Tensor& t : tensors) {
    Tensor buf = t.is_contiguous() ? t.detach() : t.detach().contiguous();
    comm::BroadcastOptions bo;
    bo.root = 0;
    bo.tag = "DistributedDataParallel state";
    bo.timeout = opts.timeout;
    pending.push_back({comm->broadcast(buf, bo), {t, buf}});
  }
  for (auto& [w, pair] : pending) {
    w.wait();
    if (!pair.first.is_contiguous()) pair.first.copy_(pair.second);
  }
}

void DistributedDataParallel::Impl::build_buckets() {
  std::vector<ddp_detail::ParamSlot> slots;
  for (auto& p : params) slots.push_back({p.nbytes(), p.dtype(), p.device()});
  auto layout = ddp_detail::assign_buckets(slots, static_cast<size_t>(opts.bucket_cap_mb * (1 << 20)),
                                           static_cast<size_t>(opts.first_bucket_cap_mb * (1 << 20)));
  views.resize(params.size());
  bucket_of.resize(params.size());
  NoGradGuard g;
  for (size_t b = 0; b < layout.size(); ++b) {
    Bucket bk;
    bk.members = layout[b];
    int64_t total = 0;
    for (size_t i : bk.members) total += params[i].numel();
    const Tensor& first = params[bk.members.front()];
    std::string list;
    for (size_t i : bk.members) {
      bucket_of[i] = b;
      bk.info.param_names.push_back(names[i]);
      list += (list.empty() ? "" : ", ") + names[i];
    }
    // Shard::gradients allocates a bucket's buffer when its first gradient arrives and frees it
    // after the reduce-scatter (bind_to_slot_sharded, after_reduction).
    if (!shards_gradients()) {
      bk.buffer = zeros({total}, {.dtype = first.dtype(), .device = first.device()});
      int64_t off = 0;
      for (size_t i : bk.members) {
        Tensor view = bk.buffer.narrow(0, off, params[i].numel()).view(params[i].shape());
        off += params[i].numel();
        Tensor old = params[i].grad();
        if (old.defined()) view.copy_(old);
        params[i].set_grad(view);
        views[i] = view;
      }
    }
    bk.info.index = static_cast<int>(b);
    bk.info.bytes = static_cast<size_t>(total) * dtype_size(first.dtype());
    bk.info.dtype = first.dtype();
    bk.info.timeout = opts.timeout;
    if (list.size() > 120) list = list.substr(0, 117) + "...";
    bk.info.tag = "bucket " + std::to_string(b) + ": " + list + " (" + mb(bk.info.bytes) + ", " + dtype_name(bk.info.dtype) + ")";
    infos.push_back(bk.info);
    buckets.push_back(std::move(bk));
  }
}

// Before each forward that records a graph: fresh readiness, gradients bound to bucket slots.
void DistributedDataParallel::Impl::prepare() {
  // Shard::gradients binds each parameter when its gradient arrives (its bucket's buffer does not
  // exist before); until then a parameter keeps what no_sync() accumulated.
  if (!shards_gradients())
    for (size_t i = 0; i < params.size(); ++i) bind_to_slot(i);
  ready.assign(params.size(), false);
  unused.assign(params.size(), false);
  for (auto& b : buckets) {
    b.pending = b.members.size();
    b.launched = b.completed = false;
    b.result = {};
  }
  next_launch = 0;
  in_backward = false;
  phase = Phase::Prepared;
}

// Parameters added, removed, replaced (e.g. by Module::to after DDP was built) or reshaped since
// construction would no longer be the tensors whose hooks and bucket slots DDP holds.
void DistributedDataParallel::Impl::check_parameters_unchanged() {
  size_t k = 0;
  for (auto& [name, p] : module.named_parameters()) {
    if (!p.requires_grad()) continue;
    KIRZL_CHECK(k < params.size(), "DistributedDataParallel: parameter '", name, "' was added after DDP was "
                "constructed; construct DDP after the model is complete");
    const ParamMeta& was = meta[k];  // its bucket slot: the dtype, device and shape DDP reduces
    KIRZL_CHECK(names[k] == name && p.is_same(params[k]) && p.shape() == was.shape && p.dtype() == was.dtype &&
                    p.device() == was.device,
                "DistributedDataParallel: parameter '", names[k], "' changed after DDP was constructed (now '", name,
                "' ", p.describe(), ", its bucket slot ", dtype_name(was.dtype), was.shape.str(), " on ",
                was.device.str(), "): replaced, reshaped, converted or moved (Module::to). Construct DDP after "
                "moving and changing the model.");
    ++k;
  }
  KIRZL_CHECK(k == params.size(), "DistributedDataParallel: parameter '", k < names.size() ? names[k] : "",
              "' was removed after DDP was constructed (", params.size(), " parameters then, ", k, " now)");
}

// find_unused_parameters: parameters whose accumulator is not reachable from the output.
void DistributedDataParallel::Impl::mark_unused(const Tensor& out) {
  std::unordered_set<const autograd::Node*> seen;
  std::vector<const autograd::Node*> stack;
  if (auto fn = out.grad_fn()) stack.push_back(fn.get());
  while (!stack.empty()) {
    const autograd::Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    for (const auto& e : n->next_edges())
      if (e.fn) stack.push_back(e.fn.get());
  }
  for (size_t i = 0; i < params.size(); ++i) {
    auto edge = autograd::gradient_edge(params[i]);
    unused[i] = !seen.count(edge.fn.get());
  }
}

// Note [rebinding gradients]: the usual loop calls zero_grad() between forward and backward,
// and zero_grad() sets gradients to none by default, so backward may have accumulated into a
// fresh tensor instead of the bucket slot. Move it into the slot (one memcpy) so the bucket
// reduces what the optimizer will read.
void DistributedDataParallel::Impl::bind_to_slot(size_t i) {
  if (shards_gradients()) {
    bind_to_slot_sharded(i);
    return;
  }
  Tensor cur = params[i].grad();
  if (cur.defined() && cur.data_ptr() == views[i].data_ptr() && cur.shape() == views[i].shape()) return;
  NoGradGuard g;
  if (cur.defined()) views[i].copy_(cur);
  else views[i].zero_();
  params[i].set_grad(views[i]);
}

void DistributedDataParallel::Impl::on_ready(size_t i) {
  if (no_sync) return;
  // Note [reducer phases].
  KIRZL_CHECK(phase != Phase::Idle, "DistributedDataParallel: parameter '", names[i], "' received a gradient, but "
              "no forward through DDP prepared this backward. Compute every loss that goes backward from "
              "ddp.forward(x) (ddp(x)); a loss from module.forward() directly is never reduced.");
  KIRZL_CHECK(phase != Phase::Reduced, "DistributedDataParallel: parameter '", names[i], "' received a gradient "
              "after this step's gradients were already reduced: a second backward through one forward "
              "(retain_graph = true), or a loss that reaches the module's parameters outside ddp.forward(). Each "
              "backward needs its own ddp.forward(); to accumulate several backward passes, run all but the last "
              "under no_sync().");
  bind_to_slot(i);
  if (!in_backward) {
    phase = Phase::Backward;
    in_backward = true;
    first_hook_us = timeline.now_us();
    autograd::queue_callback([this] { finalize(); });
    if (opts.find_unused_parameters)
      for (size_t k = 0; k < params.size(); ++k)
        if (unused[k]) {
          bind_to_slot(k);  // a zero gradient when it was set to none
          mark_ready(k);
        }
  }
  mark_ready(i);
  poll_completions();
}

void DistributedDataParallel::Impl::mark_ready(size_t i) {
  KIRZL_CHECK(!ready[i], "DistributedDataParallel: parameter '", names[i], "' was marked ready twice in one "
              "backward (its gradient hook fired again, or find_unused_parameters judged it unused although it "
              "received a gradient); its bucket was already reduced without the second contribution.");
  ready[i] = true;
  Bucket& b = buckets[bucket_of[i]];
  if (--b.pending == 0 && opts.overlap) launch_ready_buckets();
}

// Buckets start in index order on every rank, whatever order their gradients arrive in, so the
// ranks' collectives always match.
void DistributedDataParallel::Impl::launch_ready_buckets() {
  while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
    Bucket& b = buckets[next_launch++];
    b.launch_us = timeline.now_us();
    b.result = shards_gradients() ? reduce_scatter_bucket(next_launch - 1) : hook(*comm, b.buffer, b.info);
    b.launched = true;
    if (shards_gradients()) release_bucket_buffer(b);
  }
}

void DistributedDataParallel::Impl::poll_completions() {
  for (size_t k = 0; k < next_launch; ++k) {
    Bucket& b = buckets[k];
    if (b.launched && !b.completed && b.result.work.is_completed()) {
      b.completed = true;
      b.complete_us = timeline.now_us();
    }
  }
}

void DistributedDataParallel::Impl::finalize() {
  const int64_t backward_end = timeline.now_us();
  std::string missing;
  for (size_t i = 0; i < params.size(); ++i)
    if (!ready[i]) missing += (missing.empty() ? "" : ", ") + names[i];
  if (!missing.empty()) {
    wait_launched_quietly();
    in_backward = false;
    phase = Phase::Idle;
    KIRZL_FAIL(ErrorCode::InvalidArgument, "DistributedDataParallel: these parameters received no gradient in this "
               "backward pass: ", missing, ". If the model uses parameters conditionally, construct DDP with "
               "find_unused_parameters = true.");
  }
  launch_ready_buckets();
  for (Bucket& b : buckets) {
    // NCCL: the compute stream waits for the bucket's event; the host does not block (Note [nccl work]).
    b.result.work.wait();
    if (!b.completed) {
      b.completed = true;
      b.complete_us = timeline.now_us();
    }
    if (b.result.finish) b.result.finish();
  }
  if (sharded()) after_reduction();
  const int64_t done = timeline.now_us();
  int64_t first_launch = buckets.front().launch_us, last_complete = 0;
  for (const Bucket& b : buckets) {
    first_launch = std::min(first_launch, b.launch_us);
    last_complete = std::max(last_complete, b.complete_us);
    timeline.span((shards_gradients() ? "reduce_scatter " : "all_reduce ") + b.info.tag, "comm", b.launch_us,
                  b.complete_us, 1);
  }
  timeline.span("backward", "compute", first_hook_us, backward_end, 0);
  stats.backward_ms = (backward_end - first_hook_us) / 1e3;
  stats.first_launch_ms = (first_launch - first_hook_us) / 1e3;
  stats.comm_ms = (last_complete - first_launch) / 1e3;
  stats.comm_exposed_ms = (done - backward_end) / 1e3;
  stats.comm_hidden_ms = std::max(0.0, stats.comm_ms - stats.comm_exposed_ms);
  stats.buckets = static_cast<int>(buckets.size());
  in_backward = false;
  phase = Phase::Reduced;
}

void DistributedDataParallel::Impl::wait_launched_quietly() {
  for (size_t k = 0; k < next_launch; ++k) try {
      buckets[k].result.work.synchronize();
    } catch (...) {
    }
}


DistributedDataParallel::DistributedDataParallel(nn::Module& module, std::shared_ptr<comm::Communicator> comm,
                                                 const DDPOptions& options)
    : impl_(std::make_unique<Impl>(module, std::move(comm), options)) {}

DistributedDataParallel::DistributedDataParallel(nn::Module& module, const comm::ProcessGroup& group,
                                                 const DDPOptions& options)
    : DistributedDataParallel(module, group.communicator(), options) {}

DistributedDataParallel::~DistributedDataParallel() = default;

Tensor DistributedDataParallel::forward(const Tensor& x) {
  Impl& d = *impl_;
  const bool will_backward = grad_enabled();
  // A sharded optimizer's step left the parameters' all-gathers in flight: wait for all of them
  // now, or, overlapping them with this forward, for the root's own parameters now and for the
  // others in the submodules' hooks (Note [parameter gather overlap]).
  const auto t0 = std::chrono::steady_clock::now();
  d.gather_wait_ns = 0;
  const bool overlap_gathers = will_backward && d.overlaps_gathers();
  if (overlap_gathers) d.wait_gathers(d.root_buckets);
  else d.wait_gathers();
  d.check_parameters_unchanged();
  if (will_backward) d.prepare();
  if (d.opts.broadcast_buffers && d.comm->size() > 1) {
    std::vector<Tensor> bufs = d.module.buffers();
    if (!bufs.empty()) {
      NoGradGuard g;
      d.broadcast_all(bufs);
    }
  }
  int64_t start = d.timeline.now_us();
  Tensor out = d.module(x);
  d.timeline.span("forward", "compute", start, d.timeline.now_us(), 0);
  if (overlap_gathers) d.wait_gathers();  // buckets no module waited for (unused modules)
  d.stats.gather_wait_ms = static_cast<double>(d.gather_wait_ns) / 1e6;
  d.stats.forward_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (will_backward && d.opts.find_unused_parameters) d.mark_unused(out);
  return out;
}

DistributedDataParallel::NoSyncGuard::NoSyncGuard(DistributedDataParallel& ddp) : ddp_(ddp), prev_(ddp.impl_->no_sync) {
  ddp_.impl_->no_sync = true;
}
DistributedDataParallel::NoSyncGuard::~NoSyncGuard() { ddp_.impl_->no_sync = prev_; }

bool DistributedDataParallel::join(bool has_batch) {
  Impl& d = *impl_;
  if (d.comm->size() == 1) return has_batch;
  Tensor flag = full({1}, has_batch ? 1.0 : 0.0, {.dtype = DType::i32, .device = d.comm->device()});
  d.comm->all_reduce(flag, {.op = comm::ReduceOp::Min, .timeout = d.opts.timeout, .tag = "DistributedDataParallel::join"})
      .synchronize();
  return flag.item() > 0;
}

nn::Module& DistributedDataParallel::module() { return impl_->module; }
comm::Communicator& DistributedDataParallel::communicator() { return *impl_->comm; }
const std::vector<BucketInfo>& DistributedDataParallel::buckets() const { return impl_->infos; }
const DDPStepStats& DistributedDataParallel::last_step_stats() const { return impl_->stats; }

std::unique_ptr<io::Timeline::Scope> DistributedDataParallel::trace(const std::string& name) {
  if (!impl_->timeline.enabled()) return nullptr;
  return std::make_unique<io::Timeline::Scope>(impl_->timeline, name, "user", 0);
}

void DistributedDataParallel::write_timeline() { impl_->timeline.write(); }

}  // namespace kirzl
