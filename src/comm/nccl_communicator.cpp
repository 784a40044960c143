// The NCCL backend: CUDA tensors, collectives on a communication stream per communicator, a
// watchdog thread per communicator. See Note [nccl work] (include/kirzl/comm.hpp) and
// Note [watchdog] (comm/watchdog.h).
//
// Note [nccl header]: at world size > 1 each collective is preceded, on the communication stream,
// by an all-gather of a 6 x int64 header per rank (sequence number and the packed signature of
// CollectiveDesc): host -> device copy of this rank's header from a pinned slot, ncclAllGather,
// device -> host copy of all headers into a pinned slot, an event. The watchdog compares the
// headers once that event has completed (no host thread ever blocks on it). Slots form a ring of
// kSlots; a slot is reused only after the work that used it has been retired.
//
// Note [nccl non-blocking]: every communicator is created non-blocking (ncclConfig_t::blocking =
// 0). Its calls then never block the host: one that has to wait (connection set-up, a peer that
// has not arrived) returns ncclInProgress, and the communicator accepts the next call only once
// ncclCommGetAsyncError no longer says ncclInProgress. settle() does that polling, bounded by the
// collective's timeout and by `aborting_`. Two things follow: ncclCommInitRankConfig gets a
// timeout (a rank that never calls init() no longer hangs the others forever), and nccl_mu_,
// which serialises the NCCL calls of the user threads, is never held across a call that blocks,
// so the watchdog's abort (which needs it, since NCCL calls on one communicator must not run
// concurrently with ncclCommAbort) waits at most for a call that returns at once: abort_ sets
// `aborting_` first, and a thread polling an ncclInProgress under the lock gives up on seeing it.
#include "comm/nccl_communicator.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "comm/collective.h"
#include "comm/collective_checks.h"
#include "comm/flight_recorder.h"
#include "comm/job_failure.h"
#include "comm/nccl_check.h"
#include "comm/watchdog.h"
#include "comm/work_state.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"

namespace kirzl::comm::detail {

namespace {

constexpr int kSlots = 64;
using SteadyClock = std::chrono::steady_clock;

// Note [blocking collectives] on NCCL: the call returns after Work::wait(), which orders the
// caller's current stream after the collective (Note [nccl work]); the host is not blocked.
Work blocking_if(bool blocking, Work w) {
  if (blocking) w.wait();
  return w;
}

// Note [nccl teardown]: true once the CUDA runtime has begun shutting down (at exit, after its
// own atexit handler ran). Nothing CUDA or NCCL may be called then: the process is ending, and
// what is left is reclaimed by the driver.
bool cuda_unloading() {
  int d = 0;
  return cudaGetDevice(&d) == cudaErrorCudartUnloading;
}

// How a call on a non-blocking communicator ended (Note [nccl non-blocking]).
enum class Settled { Done, Failed, TimedOut, Aborted };
struct NcclOutcome {
  Settled how;
  ncclResult_t result;  // the error when Failed
};

// Polls `comm` after a call that returned `r` until it has left ncclInProgress, `deadline` has
// passed, or `aborting` (may be null) is set; an error `r` is Failed at once.
// A call that returned ncclSuccess is polled too: on a non-blocking communicator, ncclCommSplit
// can return ncclSuccess while its work still runs, and the communicator then refuses the next call
// ("Attempt to use communicator before the previous operation returned ncclSuccess"; seen on the
// H200, 2026-12-04, where the split's new communicator was also still null).
NcclOutcome settle(ncclComm_t comm, ncclResult_t r, SteadyClock::time_point deadline, const std::atomic<bool>* aborting) {
  if (r != ncclSuccess && r != ncclInProgress) return {Settled::Failed, r};
  for (int spin = 0;; ++spin) {
    ncclResult_t state = ncclInProgress;
    const ncclResult_t q = ncclCommGetAsyncError(comm, &state);
    r = q != ncclSuccess ? q : state;
    if (r != ncclInProgress) break;
    if (aborting && aborting->load()) return {Settled::Aborted, r};
    if (SteadyClock::now() >= deadline) return {Settled::TimedOut, r};
    if (spin > 64) std::this_thread::sleep_for(std::chrono::microseconds(50));
    else std::this_thread::yield();
  }
  return {r == ncclSuccess ? Settled::Done : Settled::Failed, r};
}

std::string nccl_error_text(ncclComm_t comm, ncclResult_t r) {
  const char* last = ncclGetLastError(comm);
  return std::string(ncclGetErrorString(r)) + (last && *last ? std::string(" (") + last + ")" : std::string());
}

// Aborts `comm` (if any) on a path that is already failing or tearing down: a failed abort is
// reported, never thrown.
void abort_quietly(ncclComm_t comm) noexcept {
  if (comm && ncclCommAbort(comm) != ncclSuccess) std::fprintf(stderr, "kirzl: ncclCommAbort failed (ignored)\n");
}
constexpr int kHeaderWords = 6;  // seq + CollectiveDesc::pack

// Recycled events (creating one per collective costs a few microseconds).
class EventPool {
 public:
  explicit EventPool(int device) : device_(device) {}
  ~EventPool() {
    if (cuda_unloading()) return;  // Note [nccl teardown]
    for (cudaEvent_t e : free_) KIRZL_CUDA_CHECK_NOTHROW(cudaEventDestroy(e));
  }
  cudaEvent_t get() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        cudaEvent_t e = free_.back();
        free_.pop_back();
        return e;
      }
    }
    cuda_rt::DeviceGuard d(device_);
    cudaEvent_t e = nullptr;
    KIRZL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void put(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(e);
  }

 private:
  int device_;
  std::mutex mu_;
  std::vector<cudaEvent_t> free_;
};

// The events of one collective; returned to the pool when the last Work copy and the watchdog
// are done with them.
struct WorkEvents {
  std::shared_ptr<EventPool> pool;
  cudaEvent_t ready = nullptr, header = nullptr, end = nullptr;
  explicit WorkEvents(std::shared_ptr<EventPool> p) : pool(std::move(p)) {
    ready = pool->get();
    end = pool->get();
  }
  ~WorkEvents() {
    for (cudaEvent_t e : {ready, header, end})
      if (e) pool->put(e);
  }
};

bool event_done(cudaEvent_t e) {
  const cudaError_t r = cudaEventQuery(e);
  if (r == cudaSuccess) return true;
  if (r == cudaErrorNotReady) return false;
  (void)cudaGetLastError();
  KIRZL_FAIL(ErrorCode::Cuda, "cudaEventQuery failed: ", cudaGetErrorName(r), " (", cudaGetErrorString(r), ")");
}

std::optional<ncclDataType_t> nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::u8: return ncclUint8;
    case DType::u16: return std::nullopt;  // NCCL has no 16-bit integer type
  }
  return std::nullopt;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;  // integers: sum, then C++ division (truncation), as documented
    case ReduceOp::Min: return ncclMin;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Prod: return ncclProd;
  }
  return ncclSum;
}

std::shared_ptr<Communicator> adopt(ncclComm_t comm, int rank, int size, int device, std::chrono::milliseconds timeout,
                                    std::shared_ptr<void> bootstrap);

class NcclCommunicator final : public Communicator, public std::enable_shared_from_this<NcclCommunicator> {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, std::chrono::milliseconds timeout,
                   std::shared_ptr<void> bootstrap)
      : comm_(comm),
        rank_(rank),
        size_(size),
        device_(device),
        default_timeout_(resolve_timeout(timeout)),
        bootstrap_(std::move(bootstrap)),
        pool_(std::make_shared<EventPool>(device)) {
    cuda_rt::DeviceGuard d(device_);
    int lo = 0, hi = 0;
    KIRZL_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&lo, &hi));
    // Highest priority: communication kernels are scheduled ahead of queued compute kernels, so
    // buckets start as soon as they are ready.
    KIRZL_CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, hi));
    if (size_ > 1) {
      const size_t send = kSlots * kHeaderWords * sizeof(int64_t), recv = send * static_cast<size_t>(size_);
      KIRZL_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&hdr_send_h_), send, cudaHostAllocDefault));
      KIRZL_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&hdr_recv_h_), recv, cudaHostAllocDefault));
      KIRZL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&hdr_send_d_), send));
      KIRZL_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&hdr_recv_d_), recv));
    }
    Watchdog::Backend b;
    b.name = "nccl";
    b.rank = rank_;
    b.size = size_;
    b.async_error = [this]() -> std::optional<std::string> {
      ncclResult_t r = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &r) != ncclSuccess || r == ncclSuccess || r == ncclInProgress) return std::nullopt;
      const char* last = ncclGetLastError(comm_);
      return std::string(ncclGetErrorString(r)) + (last && *last ? std::string(" (") + last + ")" : std::string());
    };
    b.abort = [this] { abort_(); };
    // Note [device choice] (launcher.h): the thread's CUDA calls go to this communicator's device.
    b.thread_start = [device = device_] { KIRZL_CUDA_CHECK(cudaSetDevice(device)); };
    watchdog_ = std::make_shared<Watchdog>(std::move(b), recorder_);
  }

  ~NcclCommunicator() override {
    // Every outstanding collective completes or fails by its timeout (the watchdog aborts it).
    watchdog_->drain();
    const bool failed = watchdog_->failure().has_value() || poison_.has_value();
    watchdog_.reset();
    // Note [nccl teardown]: comm::init() releases the world before the CUDA runtime shuts down;
    // a communicator the user kept alive past that is left to the driver.
    if (cuda_unloading()) return;
    std::lock_guard<std::mutex> lock(nccl_mu_);
    if (aborted_) return;
    // After an abort the header buffers and the stream are left alone (a few KiB): copies queued
    // behind the aborted kernels may still be pending, and waiting for them could hang.
    if (failed) {
      // A failed communicator never blocks in teardown (the ranks' sequences may differ).
      aborted_ = true;
      abort_quietly(comm_);
      return;
    }
    KIRZL_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream_));
    // Non-blocking communicator (Note [nccl non-blocking]): finalize, wait for it within the
    // timeout, then free; if a peer is gone and it does not complete, abort instead.
    const NcclOutcome fin = settle(comm_, ncclCommFinalize(comm_), SteadyClock::now() + default_timeout_, nullptr);
    if (fin.how == Settled::Done) {
      if (ncclCommDestroy(comm_) != ncclSuccess) std::fprintf(stderr, "kirzl: ncclCommDestroy failed (ignored)\n");
    } else {
      std::fprintf(stderr, "kirzl: ncclCommFinalize on rank %d of %d %s; aborting the communicator\n", rank_, size_,
                   fin.how == Settled::TimedOut ? "did not complete in time" : nccl_error_text(comm_, fin.result).c_str());
      abort_quietly(comm_);
      aborted_ = true;
      return;
    }
    if (hdr_send_h_) KIRZL_CUDA_CHECK_NOTHROW(cudaFreeHost(hdr_send_h_));
    if (hdr_recv_h_) KIRZL_CUDA_CHECK_NOTHROW(cudaFreeHost(hdr_recv_h_));
    if (hdr_send_d_) KIRZL_CUDA_CHECK_NOTHROW(cudaFree(hdr_send_d_));
    if (hdr_recv_d_) KIRZL_CUDA_CHECK_NOTHROW(cudaFree(hdr_recv_d_));
    KIRZL_CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream_));
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  std::chrono::milliseconds default_timeout() const override { return default_timeout_; }
  Device device() const override { return Device::cuda(device_); }

  Work all_reduce(Tensor& t, const AllReduceOptions& options) override {
    check_("all_reduce", t, "tensor");
    const ncclDataType_t type = reduce_type_("all_reduce", t);
    CollectiveDesc d = describe_(OpKind::AllReduce, t.dtype(), t.numel(), options.tag, options.timeout);
    d.op = options.op;
    const ncclRedOp_t op = nccl_op(options.op);
    return blocking_if(options.blocking, enqueue_(std::move(d), t, Tensor(), [=, this](cudaStream_t s) {
      return ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), type, op, comm_, s);
    }));
  }

  Work broadcast(Tensor& t, const BroadcastOptions& options) override {
    check_("broadcast", t, "tensor");
    check_root("broadcast", options.root, size_, t);
    CollectiveDesc d = describe_(OpKind::Broadcast, t.dtype(), t.numel(), options.tag, options.timeout);
    d.root = options.root;
    const int root = options.root;
    return blocking_if(options.blocking, enqueue_(std::move(d), t, Tensor(), [=, this](cudaStream_t s) {
      return ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.nbytes()), ncclUint8, root, comm_, s);
    }));
  }

  Work all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options) override {
    check_("all_gather", out, "out");
    check_("all_gather", in, "in");
    check_same_dtype("all_gather", out, in);
    check_all_gather_sizes(out, in, size_);
    CollectiveDesc d = describe_(OpKind::AllGather, in.dtype(), in.numel(), options.tag, options.timeout);
    return blocking_if(options.blocking, enqueue_(std::move(d), out, in, [=, this](cudaStream_t s) {
      return ncclAllGather(in.data_ptr(), out.data_ptr(), static_cast<size_t>(in.nbytes()), ncclUint8, comm_, s);
    }));
  }

  Work reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options) override {
    check_("reduce_scatter", out, "out");
    check_("reduce_scatter", in, "in");
    check_same_dtype("reduce_scatter", out, in);
    const ncclDataType_t type = reduce_type_("reduce_scatter", in);
    check_reduce_scatter_sizes(out, in, size_);
    CollectiveDesc d = describe_(OpKind::ReduceScatter, in.dtype(), out.numel(), options.tag, options.timeout);
    d.op = options.op;
    const ncclRedOp_t op = nccl_op(options.op);
    return blocking_if(options.blocking, enqueue_(std::move(d), out, in, [=, this](cudaStream_t s) {
      return ncclReduceScatter(in.data_ptr(), out.data_ptr(), static_cast<size_t>(out.numel()), type, op, comm_, s);
    }));
  }

  // At size > 1 the header all-gather is the barrier (Note [nccl header]); at size 1 there is
  // nobody to wait for, but the work still orders after the caller's stream.
  Work barrier(const BarrierOptions& options) override {
    CollectiveDesc d = describe_(OpKind::Barrier, DType::u8, 0, options.tag, options.timeout);
    return blocking_if(options.blocking, enqueue_(std::move(d), Tensor(), Tensor(), {}));
  }

  // Blocking and collective, like MPI_Comm_split. The outstanding collectives are drained first,
  // so a rank that never arrives shows up as their timeout rather than a hang in ncclCommSplit.
  std::shared_ptr<Communicator> split(int color, int key) override {
    if (auto f = watchdog_->failure()) throw *f;
    // Its own sequence number and header check: ranks that disagree fail here, not in NCCL.
    CollectiveDesc d = describe_(OpKind::Split, DType::u8, 0,
                                 "split(color " + std::to_string(color) + ", key " + std::to_string(key) + ")", {});
    enqueue_(std::move(d), Tensor(), Tensor(), {}).synchronize();
    watchdog_->drain();
    if (auto f = watchdog_->failure()) throw *f;
    ncclComm_t sub = nullptr;
    {
      cuda_rt::DeviceGuard ds(device_);
      std::lock_guard<std::mutex> lock(nccl_mu_);
      KIRZL_CHECK_CODE(!aborted_, ErrorCode::Nccl, "split: the NCCL communicator was aborted");
      const std::string what = "ncclCommSplit(color " + std::to_string(color) + ", key " + std::to_string(key) + ")";
      const auto deadline = SteadyClock::now() + default_timeout_;
      // The child inherits the parent's non-blocking config (config nullptr): both may be in
      // progress (Note [nccl non-blocking]).
      // `sub` is written by NCCL's own thread when the split completes: read it atomically below.
      const ncclResult_t r = ncclCommSplit(comm_, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &sub, nullptr);
      try {
        check_settled_(what.c_str(), settle(comm_, r, deadline, &aborting_));
        while (color >= 0 && std::atomic_ref<ncclComm_t>(sub).load(std::memory_order_acquire) == nullptr) {
          KIRZL_CHECK_CODE(SteadyClock::now() < deadline, ErrorCode::Timeout, what,
                           ": the new communicator did not appear within the timeout");
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        if (sub) check_settled_(what.c_str(), settle(sub, ncclInProgress, deadline, &aborting_), sub);
      } catch (...) {
        abort_quietly(sub);
        throw;
      }
    }
    if (color < 0 || sub == nullptr) return nullptr;
    int r = 0, n = 0;
    try {
      KIRZL_NCCL_CHECK(ncclCommUserRank(sub, &r));
      KIRZL_NCCL_CHECK(ncclCommCount(sub, &n));
    } catch (...) {
      abort_quietly(sub);
      throw;
    }
    return adopt(sub, r, n, device_, default_timeout_, bootstrap_);
  }

 private:
  void check_(const char* op, const Tensor& t, const char* name) const {
    check_tensor(op, t, name);
    check_cuda_device(op, t, name, device_, rank_);
  }

  ncclDataType_t reduce_type_(const char* op, const Tensor& t) const {
    auto type = nccl_type(t.dtype());
    KIRZL_CHECK_CODE(type.has_value(), ErrorCode::Unsupported, op, ": NCCL cannot reduce ", dtype_name(t.dtype()),
                     " (", t.describe(), "); convert to i32 or f32 first");
    return *type;
  }

  CollectiveDesc describe_(OpKind kind, DType dtype, int64_t count, const std::string& tag,
                           std::chrono::milliseconds timeout) const {
    CollectiveDesc d;
    d.kind = kind;
    d.dtype = dtype;
    d.count = count;
    d.tag = tag;
    d.timeout = timeout.count() > 0 ? timeout : default_timeout_;
    return d;
  }

  // Note [nccl non-blocking]: `aborting_` first, so that a thread waiting for an ncclInProgress
  // call under nccl_mu_ lets go of it at once; no NCCL call holds the lock while it blocks.
  void abort_() {
    // Note [abort on failure]: peers may be stuck in NCCL kernels; the job must not finalise.
    mark_job_failed("the NCCL communicator (rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                    ") was aborted after a failure");
    aborting_ = true;
    std::lock_guard<std::mutex> lock(nccl_mu_);
    if (aborted_) return;
    aborted_ = true;
    abort_quietly(comm_);
  }

  // Throws for a call on `comm` (this communicator unless given) that did not end in success.
  void check_settled_(const char* what, const NcclOutcome& o, ncclComm_t comm = nullptr) const {
    if (o.how == Settled::Done) return;
    const std::string where = std::string(what) + " on rank " + std::to_string(rank_) + " of " + std::to_string(size_);
    if (o.how == Settled::Aborted) KIRZL_FAIL(ErrorCode::Nccl, where, ": the NCCL communicator is being aborted");
    if (o.how == Settled::TimedOut)
      KIRZL_FAIL(ErrorCode::Timeout, where, " was still in progress (ncclInProgress) at its timeout (the collective's, "
                 "else the communicator's ", default_timeout_.count(), " ms, KIRZL_TIMEOUT): a rank may not have arrived");
    KIRZL_FAIL(ErrorCode::Nccl, where, " failed: ", nccl_error_text(comm ? comm : comm_, o.result));
  }

  // An NCCL call on this communicator, settled (Note [nccl non-blocking]); the caller holds nccl_mu_.
  void nccl_call_(const char* what, ncclResult_t r, SteadyClock::time_point deadline) {
    check_settled_(what, settle(comm_, r, deadline, &aborting_));
  }
  // The same for collective `d`, named only when it failed: formatting its name costs about a
  // microsecond, per collective (as on the MPI backend, WorkState keeps the description).
  void nccl_call_(const CollectiveDesc& d, ncclResult_t r, SteadyClock::time_point deadline) {
    const NcclOutcome o = settle(comm_, r, deadline, &aborting_);
    if (o.how != Settled::Done) check_settled_(d.str().c_str(), o);
  }

  // The pinned header slots of collective `seq`.
  int64_t* send_h_(int64_t seq) const { return hdr_send_h_ + (seq % kSlots) * kHeaderWords; }
  int64_t* recv_h_(int64_t seq) const { return hdr_recv_h_ + (seq % kSlots) * kHeaderWords * size_; }

  // Note [nccl header]: enqueued on the communication stream before the data collective.
  void enqueue_header_(const CollectiveDesc& d, WorkEvents& ev, SteadyClock::time_point deadline) {
    const size_t one = kHeaderWords * sizeof(int64_t);
    const int64_t slot = d.seq % kSlots;
    int64_t* h = send_h_(d.seq);
    h[0] = d.seq;
    d.pack(h + 1);
    int64_t* send_d = hdr_send_d_ + slot * kHeaderWords;
    int64_t* recv_d = hdr_recv_d_ + slot * kHeaderWords * size_;
    KIRZL_CUDA_CHECK(cudaMemcpyAsync(send_d, h, one, cudaMemcpyHostToDevice, stream_));
    nccl_call_("ncclAllGather (collective header)", ncclAllGather(send_d, recv_d, kHeaderWords, ncclInt64, comm_, stream_),
               deadline);
    KIRZL_CUDA_CHECK(cudaMemcpyAsync(recv_h_(d.seq), recv_d, one * size_, cudaMemcpyDeviceToHost, stream_));
    ev.header = pool_->get();
    KIRZL_CUDA_CHECK(cudaEventRecord(ev.header, stream_));
  }

  // The header check of collective `d`, for the watchdog: nullopt until the headers are there.
  std::optional<std::string> mismatch_(const CollectiveDesc& d, const WorkEvents& ev) const {
    if (!ev.header || !event_done(ev.header)) return std::nullopt;
    const int64_t* all = recv_h_(d.seq);
    const auto desc_of = [&](int r) {
      CollectiveDesc x = CollectiveDesc::unpack(all + kHeaderWords * r + 1, all[kHeaderWords * r]);
      if (r == rank_) x.tag = d.tag;
      return x;
    };
    const CollectiveDesc d0 = desc_of(0);
    for (int r = 1; r < size_; ++r) {
      const CollectiveDesc dr = desc_of(r);
      if (dr.seq != d0.seq || dr.signature() != d0.signature()) return mismatch_message(d0, 0, dr, r);
    }
    int64_t prev = last_agreed_.load();
    while (prev < d.seq && !last_agreed_.compare_exchange_weak(prev, d.seq)) {
    }
    return std::nullopt;
  }

  std::string arrival_(const WorkEvents& ev) const {
    std::ostringstream os;
    if (size_ == 1) {
      os << "World size 1: no other rank is involved; the device did not finish the work in time (a kernel queued "
            "before it on the caller's stream may be stuck).";
    } else if (ev.header && event_done(ev.header)) {
      os << "Every rank issued this collective (its header exchange completed with matching signatures); the data "
            "phase did not complete (a rank may be stuck in earlier device work, or the network failed).";
    } else {
      os << "At least one rank has not issued this collective (its header exchange did not complete). The last "
            "collective every rank reached is #"
         << last_agreed_.load() << "; each rank's own report (stderr, KIRZL_REPORT) says where it is.";
    }
    return os.str();
  }

  Work enqueue_(CollectiveDesc d, Tensor out, Tensor in, std::function<ncclResult_t(cudaStream_t)> launch) {
    if (auto f = watchdog_->failure()) throw *f;
    if (poison_) throw *poison_;
    d.seq = ++seq_;
    // Note [nccl header]: the slot of seq - kSlots must be retired before it is overwritten.
    while (size_ > 1 && watchdog_->outstanding() >= static_cast<size_t>(kSlots - 1)) {
      if (auto f = watchdog_->failure()) throw *f;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    auto ev = std::make_shared<WorkEvents>(pool_);
    try {
      cuda_rt::DeviceGuard ds(device_);
      cudaStream_t compute = cuda_rt::current_stream(device_);
      KIRZL_CUDA_CHECK(cudaEventRecord(ev->ready, compute));
      KIRZL_CUDA_CHECK(cudaStreamWaitEvent(stream_, ev->ready, 0));
      std::lock_guard<std::mutex> lock(nccl_mu_);
      KIRZL_CHECK_CODE(!aborted_ && !aborting_, ErrorCode::Nccl, d.str(), ": the NCCL communicator was aborted");
      const auto deadline = SteadyClock::now() + d.timeout;
      if (size_ > 1) enqueue_header_(d, *ev, deadline);
      if (launch && d.count > 0) nccl_call_(d, launch(stream_), deadline);
      KIRZL_CUDA_CHECK(cudaEventRecord(ev->end, stream_));
    } catch (const Error& e) {
      // The ranks' sequences may now differ: later collectives fail at once.
      poison_.emplace(e.code(), "the communicator (rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                                    ", nccl) is unusable after an earlier failure: " + e.message());
      throw;
    }
    auto state = std::make_shared<WorkState>();
    state->desc = d;
    const int dev = device_;
    state->stream_wait = [ev, dev] {
      cuda_rt::DeviceGuard ds(dev);
      KIRZL_CUDA_CHECK(cudaStreamWaitEvent(cuda_rt::current_stream(dev), ev->end, 0));
    };
    std::weak_ptr<Watchdog> wd = watchdog_;
    // Note [inline execution], device version: a host-blocking waiter watches the end event
    // itself, so it wakes within microseconds, not at the watchdog's next poll.
    state->help = [ev, wd](WorkState& w) {
      for (int spin = 0;; ++spin) {
        {
          std::lock_guard<std::mutex> lock(w.mu);
          if (w.done) return;
        }
        const cudaError_t r = cudaEventQuery(ev->end);
        if (r != cudaErrorNotReady) {
          if (r != cudaSuccess) (void)cudaGetLastError();
          break;
        }
        if (spin > 64) std::this_thread::sleep_for(std::chrono::microseconds(20));
        else std::this_thread::yield();
      }
      if (auto w2 = wd.lock()) w2->poll_once();
    };
    WatchedWork w;
    w.desc = d;
    w.state = state;
    w.finished = [ev] { return event_done(ev->end); };
    if (size_ > 1) w.mismatch = [this, d, ev] { return mismatch_(d, *ev); };
    w.arrival = [this, ev] { return arrival_(*ev); };
    w.keep = std::make_shared<std::tuple<Tensor, Tensor, std::shared_ptr<WorkEvents>>>(out, in, ev);
    watchdog_->watch(std::move(w));
    return Work(state);
  }

  ncclComm_t comm_;
  const int rank_, size_, device_;
  const std::chrono::milliseconds default_timeout_;
  std::shared_ptr<void> bootstrap_;
  std::shared_ptr<EventPool> pool_;
  cudaStream_t stream_ = nullptr;
  int64_t* hdr_send_h_ = nullptr;
  int64_t* hdr_recv_h_ = nullptr;
  int64_t* hdr_send_d_ = nullptr;
  int64_t* hdr_recv_d_ = nullptr;
  int64_t seq_ = 0;
  mutable std::atomic<int64_t> last_agreed_{0};
  std::optional<Error> poison_;
  std::mutex nccl_mu_;  // NCCL calls of user threads vs. ncclCommAbort from the watchdog
  std::atomic<bool> aborting_{false};  // Note [nccl non-blocking]
  bool aborted_ = false;
  FlightRecorder recorder_;
  std::shared_ptr<Watchdog> watchdog_;  // last: its thread stops first
};

// The communicator object for a created NCCL communicator; aborts `comm` if that fails, so that
// it does not outlive the error.
std::shared_ptr<Communicator> adopt(ncclComm_t comm, int rank, int size, int device, std::chrono::milliseconds timeout,
                                    std::shared_ptr<void> bootstrap) {
  try {
    return std::make_shared<NcclCommunicator>(comm, rank, size, device, timeout, std::move(bootstrap));
  } catch (...) {
    abort_quietly(comm);
    throw;
  }
}

}  // namespace

std::shared_ptr<Communicator> nccl_create(int rank, int size, int device, const BootstrapBroadcast& broadcast,
                                          std::chrono::milliseconds timeout, std::shared_ptr<void> bootstrap) {
  KIRZL_CHECK(rank >= 0 && rank < size, "nccl_create: rank ", rank, " is not in [0, ", size, ")");
  cuda_rt::DeviceGuard ds(device);
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank == 0) KIRZL_NCCL_CHECK(ncclGetUniqueId(&id));
  if (size > 1) {
    KIRZL_CHECK(broadcast != nullptr, "nccl_create: ", size, " ranks need a bootstrap broadcast for the unique id");
    broadcast(&id, sizeof id);
  }
  // Note [nccl non-blocking]: a non-blocking init, so that a rank that never arrives is a
  // timeout that names this rank, not a hang.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  // NCCL's set-up (CUDA context, proxy threads, connections) takes seconds in a fresh process: a
  // collective timeout shorter than kMinInitTimeout (a test's 200 ms, say) would fail a healthy
  // init (the H200 run of 2026-12-04 did), so init waits at least that long.
  constexpr std::chrono::milliseconds kMinInitTimeout{30000};
  const std::chrono::milliseconds limit = std::max(resolve_timeout(timeout), kMinInitTimeout);
  const ncclResult_t r = ncclCommInitRankConfig(&comm, size, id, rank, &config);
  const NcclOutcome o = settle(comm, r, SteadyClock::now() + limit, nullptr);
  if (o.how != Settled::Done) {
    const std::string detail = o.how == Settled::Failed ? nccl_error_text(comm, o.result) : std::string();
    abort_quietly(comm);
    KIRZL_CHECK_CODE(o.how != Settled::TimedOut, ErrorCode::Timeout, "nccl_create: ncclCommInitRankConfig on rank ",
                     rank, " of ", size, " (cuda:", device, ") did not complete within ", limit.count(),
                     " ms (KIRZL_TIMEOUT or the timeout option): a rank may not have called comm::init(), or the "
                     "network between the ranks is blocked");
    KIRZL_FAIL(ErrorCode::Nccl, "nccl_create: ncclCommInitRankConfig on rank ", rank, " of ", size, " (cuda:", device,
               ") failed: ", detail);
  }
  return adopt(comm, rank, size, device, timeout, std::move(bootstrap));
}

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (version unknown)";
  // NCCL >= 2.9: major * 10000 + minor * 100 + patch.
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace kirzl::comm::detail
