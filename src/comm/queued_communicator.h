// Internal: the part of every CPU-thread backend that is not about moving bytes — argument checks,
// sequence numbers, the per-communicator worker thread that runs collectives in order, the flight
// recorder, and poisoning after a failure.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "comm/collective.h"
#include "comm/flight_recorder.h"
#include "comm/work_state.h"

namespace kirzl::comm::detail {

class QueuedCommunicator : public Communicator {
 public:
  QueuedCommunicator(int rank, int size, std::chrono::milliseconds default_timeout);
  ~QueuedCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::chrono::milliseconds default_timeout() const override { return default_timeout_; }

  Work all_reduce(Tensor& t, const AllReduceOptions& options) override;
  Work broadcast(Tensor& t, const BroadcastOptions& options) override;
  Work all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options) override;
  Work reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options) override;
  Work barrier(const BarrierOptions& options) override;

  const FlightRecorder& recorder() const { return recorder_; }

 protected:
  // One collective as the worker thread sees it. `out` is the tensor written (all_reduce and
  // broadcast: the in-place tensor), `in` the one read by all_gather / reduce_scatter.
  struct Op {
    CollectiveDesc desc;
    Tensor out, in;
    std::function<void(Op&)> body;  // replaces execute() for internal collectives (split)
    std::shared_ptr<WorkState> work;
  };

  // Runs `op` on the worker thread; throws kirzl::Error on failure (which poisons the communicator).
  virtual void execute(Op& op) = 0;
  // While idle, the worker calls poll_idle() every poll_interval() (0: never). The MPI backend
  // answers other ranks' failure notices there.
  virtual std::chrono::milliseconds poll_interval() const { return std::chrono::milliseconds{0}; }
  virtual void poll_idle() {}
  // The device check of the backend (InProcess: CPU only).
  virtual void check_device(const char* op, const Tensor& t) const;
  // check_tensor, then check_device: the checks of every collective's tensor arguments.
  void check_operand(const char* op, const Tensor& t, const char* name) const;
  // Queues `op` (assigning its sequence number) and returns its Work. Throws at once when poisoned.
  // `blocking`: returns only once `op` is done, having run it on this thread where it can (Note
  // [blocking collectives]); throws its failure.
  Work submit(Op op, bool blocking = false);
  // Starts the worker thread; the last statement of every subclass constructor (the worker calls
  // virtual methods, which must not happen before the object is complete).
  void start_worker();
  // Stops the worker: the running collective stops waiting and fails (see closing()), queued ones
  // fail.
  // Subclasses call it first thing in their destructor.
  void stop_worker();
  // True once destruction has begun: a collective in progress stops waiting for other ranks and
  // fails (the backends check it in their wait loops).
  bool closing() const { return closing_.load(std::memory_order_acquire); }
  void begin_close() { closing_.store(true, std::memory_order_release); }
  // Makes later collectives fail at once with `e`'s code.
  void poison(const Error& e);
  std::optional<Error> poison_error() const;
  // Sequence number the next collective will get.
  int64_t next_seq() const;

  FlightRecorder recorder_;

 private:
  std::chrono::milliseconds timeout_of(std::chrono::milliseconds requested) const {
    return requested.count() > 0 ? requested : default_timeout_;
  }
  void loop();
  // Runs one dequeued op: flight recorder, execution, poisoning on failure, completing its Work.
  void run_one(Op& op, const std::optional<Error>& poisoned, bool stopping);
  // Note [inline execution]: runs queued ops in order on the calling thread until `state` is done
  // or the queue is empty; the caller holds exec_->mu.
  void run_inline_until(WorkState& state);

  // Whoever executes ops (the worker, or a waiting caller) holds `mu`, and pops from the queue only
  // while holding it: ops run one at a time, in queue order. `owner` is cleared (under `mu`) when
  // the communicator starts closing, so a late waiter never touches a dying communicator.
  struct Executor {
    std::mutex mu;
    QueuedCommunicator* owner = nullptr;
  };
  std::shared_ptr<Executor> exec_ = std::make_shared<Executor>();

  const int rank_, size_;
  const std::chrono::milliseconds default_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;
  bool stop_ = false;
  int64_t seq_ = 0;
  std::optional<Error> poison_;
  std::atomic<bool> closing_{false};
  std::thread worker_;
};

}  // namespace kirzl::comm::detail
