// kirzl::comm: collectives between ranks (processes or threads) and the process-group bootstrap.
//
// A Communicator moves tensors between the ranks of a group: all_reduce, broadcast, all_gather,
// reduce_scatter, barrier. Every collective is asynchronous: it returns a Work at once and runs on
// the communicator's own thread; Work::wait() blocks and re-throws what failed.
//
// Rules shared by every collective (all backends):
//  - Ordering / thread safety: every rank issues the same collectives in the same order, from one
//    thread per communicator at a time (issuing from two threads at once is an error by the caller).
//    Work objects may be waited on, copied and polled from any thread.
//  - Tensors are borrowed, not owned: a Communicator keeps a handle to each tensor until its Work
//    completes, but the caller must not modify (or read, for in-place outputs) the memory until
//    then. Tensors must be contiguous and on the CPU for the InProcess and MPI backends.
//  - All kirzl dtypes work (f32 f64 bf16 f16 i32 i64 u8 u16). bf16/f16 are reduced in f32 and
//    rounded once at the end. Integer sums and products wrap around (two's complement); Avg on
//    integer dtypes is the wrapped sum divided by size() with C++ integer division (truncation).
//  - Zero-length tensors are fine (the collective still synchronises and is checked).
//  - Failing loudly: every collective carries a sequence number (#1, #2, ... per communicator) and
//    a signature (op, dtype, count, root). When ranks disagree, all of them fail at once with
//    Error{InvalidArgument} naming both sides. A collective that does not complete within its
//    timeout fails with Error{Timeout} naming it, its size, its tag and the ranks that did not
//    arrive; the communicator is then poisoned: later collectives throw at once. While the program
//    runs, the library never calls exit() or abort(): failures surface through Work::wait(). At
//    the end of a multi-rank job it does (Note [abort on failure], src/comm/job_failure.h): when a
//    rank gave no answer, or MPI or NCCL failed, the world's teardown calls MPI_Abort instead of
//    MPI_Finalize (which would wait for ever for that rank), so the launcher ends every rank,
//    non-zero, within the timeout plus a few seconds; a finalise that waits longer than the timeout
//    for a rank aborts too; and an exception that escapes main() on any rank is reported with the
//    rank ("kirzl: rank R of N: aborting the job (MPI_Abort): uncaught exception: ...") and aborts
//    the job. A rank that will finish much later than the others (e.g. rank 0 writing a large
//    final checkpoint) must do so within the timeout too. A collective's timeout starts
//    when it starts running on the communicator's thread (after the collectives queued before it).
//    KIRZL_TIMEOUT (seconds) sets the default (300 s); on a timeout, a report of every reachable
//    rank's recent collectives goes to stderr and to the file named by KIRZL_REPORT.
//  - Argument errors (Error{InvalidArgument} naming the op, shapes and dtypes) are thrown by the
//    call itself, before the collective is issued; such a call does not count as a collective.
//
// Backends: "inprocess" (make_in_process_group; ranks are threads), "mpi" (init() under an MPI
// launcher) and "nccl" (init() when kirzl has NCCL and every local rank has its own GPU). CUDA
// tensors are rejected by "inprocess" (Error{Unsupported}), staged through pinned host memory by
// "mpi" (Note [mpi cuda staging]), and moved GPU to GPU by "nccl", which rejects CPU tensors.
//
// Note [nccl work] — what the NCCL backend does differently (the rules above hold otherwise):
//  - A collective is enqueued at once on the communicator's own CUDA stream, which first waits
//    (device-side) for the work queued so far on the caller's current stream of the tensor's
//    device. The call never blocks the host.
//  - Work::wait() (timeout 0) makes the caller's *current stream* wait for the collective and
//    returns without blocking the host (as in PyTorch): kernels issued afterwards on that stream
//    see the result. Work::synchronize() and Work::wait(positive timeout) block the host.
//  - A watchdog thread per communicator completes works as their end events complete, and fails
//    them (ncclCommAbort, then Error{Timeout} or Error{Nccl} with the same report as the CPU
//    backends) when one exceeds its timeout (KIRZL_TIMEOUT) or NCCL reports an asynchronous
//    error. The timeout of a collective starts when the one before it on the stream completed.
//  - Signature check: at world size > 1 each collective is preceded by a 16-byte-per-rank NCCL
//    all-gather of its (sequence number, signature) on the same stream, copied to pinned host
//    memory; the watchdog compares the headers and fails every rank with the mismatch named. This
//    costs one tiny extra NCCL launch per collective (none at world size 1) and detects mismatches
//    even when the mismatched data collective itself hangs.
//  - bf16/f16 are reduced by NCCL in their own precision (not through f32); u16 has no NCCL type
//    and is rejected by all_reduce/reduce_scatter (broadcast/all_gather move bytes and accept it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/core/device.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::comm {

/// How all_reduce and reduce_scatter combine the ranks' elements.
enum class ReduceOp { Sum, Avg, Min, Max, Prod };

/// "sum", "avg", "min", "max", "prod".
const char* to_string(ReduceOp op);

/// Options of Communicator::all_reduce.
struct AllReduceOptions {
  ReduceOp op = ReduceOp::Sum;  ///< how the ranks' elements are combined
  /// How long to wait for the other ranks; 0 = the communicator's default_timeout().
  std::chrono::milliseconds timeout{0};
  /// Free text shown in errors and reports, e.g. "bucket 3: fc.weight, fc.bias".
  std::string tag{};
  /// Note [blocking collectives]: true makes the call return only once the collective has
  /// finished, as if Work::wait() were called on its result: a failure is thrown by the call
  /// itself, and the Work returned is already complete. On the CPU backends ("mpi",
  /// "inprocess") the collective then runs on the calling thread, and the communication thread
  /// is not woken: a few microseconds less per collective than `all_reduce(t).wait()`, which
  /// matters for small tensors (norms, flags, statistics). Collectives queued before it still run
  /// first, in order. false: the collective starts on the communication thread at once and
  /// runs while the caller goes on (what data-parallel training overlaps with backward).
  bool blocking = false;
};

/// Options of Communicator::broadcast.
struct BroadcastOptions {
  int root = 0;  ///< the rank whose tensor is copied to every rank
  std::chrono::milliseconds timeout{0};  ///< 0 = the communicator's default_timeout()
  std::string tag{};                     ///< shown in errors and reports
  bool blocking = false;                 ///< return once done (Note [blocking collectives])
};

/// Options of Communicator::all_gather.
struct AllGatherOptions {
  std::chrono::milliseconds timeout{0};  ///< 0 = the communicator's default_timeout()
  std::string tag{};                     ///< shown in errors and reports
  bool blocking = false;                 ///< return once done (Note [blocking collectives])
};

/// Options of Communicator::reduce_scatter.
struct ReduceScatterOptions {
  ReduceOp op = ReduceOp::Sum;           ///< how the ranks' elements are combined
  std::chrono::milliseconds timeout{0};  ///< 0 = the communicator's default_timeout()
  std::string tag{};                     ///< shown in errors and reports
  bool blocking = false;                 ///< return once done (Note [blocking collectives])
};

/// Options of Communicator::barrier.
struct BarrierOptions {
  std::chrono::milliseconds timeout{0};  ///< 0 = the communicator's default_timeout()
  std::string tag{};                     ///< shown in errors and reports
  bool blocking = false;                 ///< return once done (Note [blocking collectives])
};

namespace detail {
struct WorkState;
}

/// The handle of an asynchronous collective. A value type: copies share one state, so any copy
/// can wait. Thread-safe: wait() and is_completed() may be called from any thread, concurrently.
/// A default-constructed Work is already completed successfully.
class Work {
 public:
  Work() = default;
  /// A handle to a backend's work (internal: communicators make them).
  explicit Work(std::shared_ptr<detail::WorkState> state) : state_(std::move(state)) {}

  /// Blocks until the collective has finished. Re-throws its failure (a kirzl::Error with the
  /// original code, e.g. Timeout or Mpi) on every call. With timeout 0 it waits as long as the
  /// collective's own timeout allows (the backend fails the collective when that passes); with a
  /// positive timeout it throws Error{Timeout} if the collective is still running after that long
  /// (the collective itself keeps running and the Work stays valid).
  /// NCCL work (Note [nccl work]): with timeout 0, wait() does not block the host; it makes the
  /// caller's current CUDA stream wait for the collective and re-throws a failure already known.
  void wait(std::chrono::milliseconds timeout = std::chrono::milliseconds{0}) const;
  /// Blocks the host until the collective has finished, on every backend (for CPU backends the same
  /// as wait()); bounded by the collective's own timeout. Re-throws its failure.
  void synchronize() const;
  /// True when the collective has finished, successfully or not. Never blocks.
  bool is_completed() const;
  /// True when the collective finished successfully.
  bool succeeded() const;

 private:
  void synchronize_for(std::chrono::milliseconds timeout) const;
  std::shared_ptr<detail::WorkState> state_;
};

/// A group of ranks that run collectives together. Obtain one from init() (world),
/// make_in_process_group() or split(). Held by shared_ptr; destroying it waits for the collective
/// in progress (bounded by its timeout) and fails the ones still queued.
class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  /// This rank's index in [0, size()).
  virtual int rank() const = 0;
  /// Number of ranks in the group.
  virtual int size() const = 0;
  /// "inprocess", "mpi", ...
  virtual std::string backend() const = 0;
  /// The timeout used when an options struct says 0.
  virtual std::chrono::milliseconds default_timeout() const = 0;
  /// Where this communicator's tensors must live: the CPU for "inprocess" and "mpi" ("mpi" also
  /// accepts CUDA tensors, staged), CUDA:i for "nccl". Small internal tensors (flags, headers of
  /// the reducer) are made there.
  virtual Device device() const { return Device::cpu(); }

  /// Reduces `t` element-wise over all ranks, in place: afterwards every rank's `t` holds the
  /// result. Bitwise identical on every rank for InProcess (reduced in rank order) and for MPI from
  /// 32 KiB (a ring that reduces each element once, then copies it); smaller MPI all-reduces use
  /// MPI_Iallreduce. `t` must stay alive and untouched until the Work completes.
  virtual Work all_reduce(Tensor& t, const AllReduceOptions& options = {}) = 0;
  /// Copies root's `t` into every other rank's `t`, in place. Same dtype and numel on every rank.
  /// Throws Error{InvalidArgument} for a root outside [0, size()).
  virtual Work broadcast(Tensor& t, const BroadcastOptions& options = {}) = 0;
  /// Concatenates every rank's `in`: `out` (size() * in.numel() elements, same dtype) receives rank
  /// r's elements at offset r * in.numel(). `in` and `out` must not overlap. Shapes are free; only
  /// the element counts matter.
  virtual Work all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options = {}) = 0;
  /// Reduces `in` (size() * out.numel() elements) over all ranks and gives rank r the block
  /// [r * out.numel(), (r + 1) * out.numel()) of the result in `out`. `in` and `out` must not overlap.
  virtual Work reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options = {}) = 0;
  /// Completes when every rank has reached it.
  virtual Work barrier(const BarrierOptions& options = {}) = 0;

  /// Splits the group, like MPI_Comm_split: ranks with the same `color` form a new communicator,
  /// ordered by (`key`, old rank). Collective over this communicator (every rank calls it, in the
  /// same position of its sequence of collectives); blocks until done. A negative color takes no
  /// part in any sub-group and returns nullptr. The new communicator is independent of this one
  /// (own sequence numbers, own thread) and shares ownership of whatever backend state it needs.
  virtual std::shared_ptr<Communicator> split(int color, int key) = 0;
};

/// Options of make_in_process_group().
struct InProcessOptions {
  /// Default timeout of the collectives; 0 = KIRZL_TIMEOUT (seconds) if set, else 300 s.
  std::chrono::milliseconds timeout{0};
};

/// `n` communicators whose ranks are threads of this process (communicator r is rank r): real
/// collective semantics at any size, deterministic results (reductions run in rank order). Each
/// communicator is meant to be driven by its own thread. Throws Error{InvalidArgument} for n < 1.
///
/// Random numbers: without more, all threads share the process's default generator and take its
/// numbers in whatever order the scheduler runs them. To have each rank thread draw (dropout,
/// randn, module initialisation, checkpoints' rng.*) exactly as a process of its own would, open a
/// kirzl::GeneratorScope at the top of each rank thread (Note [per-thread default generator]):
///
///   auto group = kirzl::comm::make_in_process_group(n);
///   for (int r = 0; r < n; ++r)
///     threads.emplace_back([&, r] {
///       kirzl::GeneratorScope rng;   // seed 0, like a new process; manual_seed() re-seeds it
///       train(*group[r]);
///     });
std::vector<std::shared_ptr<Communicator>> make_in_process_group(int n, const InProcessOptions& options = {});

/// Options of init().
struct InitOptions {
  /// "auto": NCCL when kirzl has NCCL, a GPU is visible and every rank on a node gets its own GPU
  /// (local_size <= visible GPUs); otherwise MPI when a launcher says world size > 1 (CUDA tensors
  /// staged), else a size-1 in-process group. "nccl" (Error{Unsupported} when kirzl was built
  /// without NCCL or cannot use it here, saying why), "mpi" (MPI even at world size 1) or
  /// "inprocess" (size 1 only). The environment variable KIRZL_BACKEND, when set, overrides
  /// "auto" (not an explicit choice). KIRZL_VERBOSE=1 prints which backend was chosen and why.
  std::string backend = "auto";
  /// Default timeout of the world's collectives; 0 = KIRZL_TIMEOUT (seconds) if set, else 300 s.
  std::chrono::milliseconds timeout{0};
  /// Share the node's cores among its ranks: when several ranks run on one node, init() sets the
  /// CPU kernels' threads (set_num_threads) to the cores this process may use divided by the
  /// ranks on the node, at least 1, unless OMP_NUM_THREADS is set. Without it every rank takes
  /// every core (4 ranks on 2 cores ran 29x slower than one). A later set_num_threads() wins.
  bool share_cores = true;
};

/// The world: which rank this process is, where it runs, and its communicator. A cheap value type
/// (copies share the communicator). Thread-safe to read.
class ProcessGroup {
 public:
  ProcessGroup() = default;
  /// This process's rank, in [0, size()).
  int rank() const { return rank_; }
  /// Number of ranks in the world.
  int size() const { return size_; }
  /// This process's index among the ranks on its node.
  int local_rank() const { return local_rank_; }
  /// How many ranks share this process's node.
  int local_size() const { return local_size_; }
  /// The device this rank should compute on: CUDA:(local_rank % visible GPUs) when kirzl has
  /// CUDA and a GPU is present, else the CPU.
  Device device() const { return device_; }
  /// The world communicator (shared; never null for a group returned by init()).
  std::shared_ptr<Communicator> communicator() const { return comm_; }
  /// The communicator's backend ("inprocess", "mpi", "nccl", "nccl+mpi" for a routed world; "none" without one).
  std::string backend() const;
  /// Host name of every rank, indexed by rank.
  const std::vector<std::string>& hosts() const { return hosts_; }
  /// The launcher that was detected ("openmpi", "pmix", "pmi", "slurm", "kirzl" or "none").
  const std::string& launcher() const { return launcher_; }

  /// Forwarders to communicator().
  Work all_reduce(Tensor& t, const AllReduceOptions& options = {}) const { return comm_->all_reduce(t, options); }
  /// See Communicator::broadcast.
  Work broadcast(Tensor& t, const BroadcastOptions& options = {}) const { return comm_->broadcast(t, options); }
  /// See Communicator::barrier.
  Work barrier(const BarrierOptions& options = {}) const { return comm_->barrier(options); }

 private:
  friend struct ProcessGroupBuilder;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  Device device_ = Device::cpu();
  std::shared_ptr<Communicator> comm_;
  std::vector<std::string> hosts_;
  std::string launcher_ = "none";
};

/// Sets up the world once per process and returns it; later calls return the same group (their
/// options are ignored). Finds rank and size from the launcher's environment: KIRZL_RANK /
/// KIRZL_WORLD_SIZE / KIRZL_LOCAL_RANK (explicit override), Open MPI (OMPI_COMM_WORLD_*), PMIx
/// (PMIX_RANK), PMI (PMI_RANK / PMI_SIZE), SLURM (SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID).
/// No launcher: world size 1. World size > 1 uses MPI (initialised with thread support and
/// finalised at process exit); a build without MPI throws Error{Unsupported}. With
/// KIRZL_VERBOSE=1, rank 0 prints the backend, world size, hosts, devices and a preflight
/// all-reduce bandwidth. Thread-safe.
ProcessGroup init(const InitOptions& options = {});

}  // namespace kirzl::comm
