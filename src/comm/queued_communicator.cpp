// The backend-independent half of a communicator. See queued_communicator.h.
#include "comm/queued_communicator.h"

#include "comm/collective_checks.h"

namespace kirzl::comm::detail {

QueuedCommunicator::QueuedCommunicator(int rank, int size, std::chrono::milliseconds default_timeout)
    : rank_(rank), size_(size), default_timeout_(resolve_timeout(default_timeout)) {}

namespace {
// True on a thread that is executing ops: a collective's body must never help run another.
thread_local bool t_executing = false;
}  // namespace

void QueuedCommunicator::start_worker() {
  exec_->owner = this;
  worker_ = std::thread([this] { loop(); });
}

QueuedCommunicator::~QueuedCommunicator() { stop_worker(); }

void QueuedCommunicator::stop_worker() {
  begin_close();
  {
    // Waits for an inline executor to finish (closing() makes its collective fail fast).
    std::lock_guard<std::mutex> ex(exec_->mu);
    exec_->owner = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !worker_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

void QueuedCommunicator::check_device(const char* op, const Tensor& t) const { check_cpu_device(op, t, backend()); }

void QueuedCommunicator::check_operand(const char* op, const Tensor& t, const char* name) const {
  check_tensor(op, t, name);
  check_device(op, t);
}

void QueuedCommunicator::poison(const Error& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!poison_)
    poison_.emplace(e.code(), "the communicator (rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                                  ", " + backend() + ") is unusable after an earlier failure: " + e.message());
}

std::optional<Error> QueuedCommunicator::poison_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return poison_;
}

int64_t QueuedCommunicator::next_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_ + 1;
}

Work QueuedCommunicator::submit(Op op, bool blocking) {
  auto state = std::make_shared<WorkState>();
  op.work = state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (poison_) throw *poison_;
    KIRZL_CHECK(!stop_, op_kind_name(op.desc.kind), ": the communicator is shutting down");
    op.desc.seq = ++seq_;
    op.desc.timeout = timeout_of(op.desc.timeout);
    state->desc = op.desc;
    state->help = [ex = exec_](WorkState& w) {
      if (t_executing) return;
      std::unique_lock<std::mutex> lock(ex->mu, std::try_to_lock);
      if (!lock || !ex->owner) return;  // the worker is running an op: it will finish ours too
      struct Executing {
        Executing() { t_executing = true; }
        ~Executing() { t_executing = false; }
      } executing;
      ex->owner->run_inline_until(w);
    };
    recorder_.queued(op.desc);
    queue_.push_back(std::move(op));
  }
  Work work(state);
  if (!blocking) {
    cv_.notify_one();
    return work;
  }
  // Note [blocking collectives]: the caller runs it (and whatever was queued before it) itself,
  // without waking the worker, whose wake-up cost about 4 us per collective on 2 cores
  // (bench/RESULTS.md). Where it cannot (the worker or another thread is executing ops, and may
  // stop before reaching this one), the worker is woken after all, and takes it in queue order.
  state->help(*state);
  if (!work.is_completed()) cv_.notify_one();
  work.wait();
  return work;
}

void QueuedCommunicator::loop() {
  t_executing = true;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      const auto interval = poll_interval();
      if (interval.count() > 0) {
        if (!cv_.wait_for(lock, interval, [&] { return stop_ || !queue_.empty(); })) {
          lock.unlock();
          std::unique_lock<std::mutex> ex(exec_->mu, std::try_to_lock);
          if (ex) poll_idle();  // not while a waiter executes an op: both would touch MPI state
          continue;
        }
      } else {
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      }
      if (queue_.empty()) return;
    }
    std::lock_guard<std::mutex> ex(exec_->mu);
    Op op;
    std::optional<Error> poisoned;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) continue;  // a waiting caller ran it (Note [inline execution])
      op = std::move(queue_.front());
      queue_.pop_front();
      poisoned = poison_;
      stopping = stop_;
    }
    run_one(op, poisoned, stopping);
  }
}

void QueuedCommunicator::run_inline_until(WorkState& state) {
  for (;;) {
    {
      std::lock_guard<std::mutex> done(state.mu);
      if (state.done) return;
    }
    Op op;
    std::optional<Error> poisoned;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
      op = std::move(queue_.front());
      queue_.pop_front();
      poisoned = poison_;
      stopping = stop_;
    }
    run_one(op, poisoned, stopping);
  }
}

void QueuedCommunicator::run_one(Op& op, const std::optional<Error>& poisoned, bool stopping) {
  if (poisoned || stopping) {
    Error e = poisoned ? *poisoned
                       : Error(ErrorCode::InvalidArgument, op.desc.str() + " was still queued when its communicator was destroyed");
    recorder_.finished(op.desc.seq, false, e.message());
    op.work->fail(std::make_exception_ptr(e));
    return;
  }
  recorder_.started(op.desc.seq);
  try {
    if (op.body) op.body(op);
    else execute(op);
    recorder_.finished(op.desc.seq, true);
    op.out = Tensor();
    op.in = Tensor();
    op.work->complete();
  } catch (const Error& e) {
    recorder_.finished(op.desc.seq, false, e.message());
    poison(e);
    op.work->fail(std::current_exception());
  } catch (const std::exception& e) {
    Error err(ErrorCode::Internal, op.desc.str() + " failed: " + e.what());
    recorder_.finished(op.desc.seq, false, err.message());
    poison(err);
    op.work->fail(std::make_exception_ptr(err));
  }
}

namespace {
// The fields every collective's description takes from its arguments and options.
template <typename Options>
void describe(CollectiveDesc& d, OpKind kind, DType dtype, int64_t count, const Options& options) {
  d.kind = kind;
  d.dtype = dtype;
  d.count = count;
  d.tag = options.tag;
  d.timeout = options.timeout;
}
}  // namespace

Work QueuedCommunicator::all_reduce(Tensor& t, const AllReduceOptions& options) {
  check_operand("all_reduce", t, "tensor");
  Op op;
  describe(op.desc, OpKind::AllReduce, t.dtype(), t.numel(), options);
  op.desc.op = options.op;
  op.out = t;
  return submit(std::move(op), options.blocking);
}

Work QueuedCommunicator::broadcast(Tensor& t, const BroadcastOptions& options) {
  check_operand("broadcast", t, "tensor");
  check_root("broadcast", options.root, size_, t);
  Op op;
  describe(op.desc, OpKind::Broadcast, t.dtype(), t.numel(), options);
  op.desc.root = options.root;
  op.out = t;
  return submit(std::move(op), options.blocking);
}

Work QueuedCommunicator::all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options) {
  check_operand("all_gather", out, "out");
  check_operand("all_gather", in, "in");
  check_same_dtype("all_gather", out, in);
  check_all_gather_sizes(out, in, size_);
  Op op;
  describe(op.desc, OpKind::AllGather, in.dtype(), in.numel(), options);
  op.out = out;
  op.in = in;
  return submit(std::move(op), options.blocking);
}

Work QueuedCommunicator::reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options) {
  check_operand("reduce_scatter", out, "out");
  check_operand("reduce_scatter", in, "in");
  check_same_dtype("reduce_scatter", out, in);
  check_reduce_scatter_sizes(out, in, size_);
  Op op;
  describe(op.desc, OpKind::ReduceScatter, in.dtype(), out.numel(), options);
  op.desc.op = options.op;
  op.out = out;
  op.in = in;
  return submit(std::move(op), options.blocking);
}

Work QueuedCommunicator::barrier(const BarrierOptions& options) {
  Op op;
  describe(op.desc, OpKind::Barrier, DType::u8, 0, options);
  return submit(std::move(op), options.blocking);
}

}  // namespace kirzl::comm::detail
