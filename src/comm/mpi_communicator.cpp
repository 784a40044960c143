// The MPI backend's communicator, which wires together the MPI runtime (mpi_runtime.h), the MPI
// calls of each collective (mpi_collectives.h, with the ring of ring.h) and the failure notices
// (failure_notice.h, carried by mpi_notice_channel.h). It is a QueuedCommunicator: one
// communication thread per communicator owns every MPI call of that communicator. CPU tensors;
// CUDA tensors are staged through host memory.
//
// Note [mpi cuda staging]: no CUDA-aware MPI is assumed. A collective on CUDA tensors first waits,
// on the calling thread, for the caller's current stream (the work that produces the tensor; the
// only host-blocking step, kept for correctness since the copy runs later on another thread). On
// the communication thread the tensors are copied into one pinned host buffer per communicator
// (reused, grown on demand) with async copies on that thread's current stream, reduced by the CPU
// path, and copied back; the Work completes after the copy back has finished, so the result is
// visible to every stream. After a timeout the buffer is abandoned, never freed (MPI may still
// write into it).
//
// Note [mpi timeouts] and Note [mpi departure]: failure_notice.h.
#include "comm/mpi_communicator.h"

#include <thread>

#include "comm/failure_notice.h"
#include "comm/host_staging.h"
#include "comm/job_failure.h"
#include "comm/mpi_check.h"
#include "comm/mpi_collectives.h"
#include "comm/mpi_notice_channel.h"
#include "comm/mpi_runtime.h"
#include "comm/mpi_topology.h"
#include "comm/queued_communicator.h"
#include "kirzl/autograd.hpp"

namespace kirzl::comm::detail {

namespace {

class MpiCommunicator final : public QueuedCommunicator {
 public:
  MpiCommunicator(std::shared_ptr<MpiRuntime> rt, MPI_Comm comm, std::chrono::milliseconds timeout)
      : QueuedCommunicator(mpi_comm_rank(comm), mpi_comm_size(comm), timeout),
        rt_(std::move(rt)),
        comm_(comm),
        collectives_(*rt_, comm_, rank(), size(), mpi_node_map(*rt_, comm_),
                     [this](MPI_Request* reqs, int n, bool block, Clock::time_point deadline,
                            const CollectiveDesc& d, const char* phase, std::shared_ptr<void> keep) {
                       return wait_all_(reqs, n, block, deadline, d, phase, std::move(keep));
                     }) {
    {
      auto g = rt_->guard();
      KIRZL_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    }
    notices_ = std::make_unique<MpiNoticeChannel>(rt_, comm_);
    start_worker();
  }

  ~MpiCommunicator() override {
    stop_worker();
    int finalized = 0;
    MPI_Finalized(&finalized);  // teardown: if it fails, `finalized` stays 0 and the close is tried
    if (finalized) return;
    // Note [mpi departure]
    const bool healthy = !poison_error();
    notices_->close(departure_notice(rank(), recorder_.last_started(), recorder_.where()), rank(), size(), healthy);
    if (healthy) {
      auto g = rt_->guard();
      MPI_Comm_free(&comm_);  // teardown: a failure here leaks the communicator, nothing more
    }
  }

  std::string backend() const override { return "mpi"; }

  std::shared_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub = MPI_COMM_NULL;
    Op op;
    op.desc.kind = OpKind::Split;
    op.desc.tag = "split(color " + std::to_string(color) + ", key " + std::to_string(key) + ")";
    op.body = [this, &sub, color, key](Op& o) {
      collectives_.arrive(o.desc);  // every rank has arrived: the blocking split below cannot hang
      auto g = rt_->guard();
      KIRZL_MPI_CHECK(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &sub));
    };
    submit(std::move(op), /*blocking=*/true);
    if (sub == MPI_COMM_NULL) return nullptr;
    return std::make_shared<MpiCommunicator>(rt_, sub, default_timeout());
  }

 protected:
  void check_device(const char*, const Tensor&) const override {}  // CUDA tensors are staged
  std::chrono::milliseconds poll_interval() const override { return std::chrono::milliseconds(20); }
  void poll_idle() override {
    try {
      poll_notices_(nullptr);
    } catch (const Error& e) {  // an MPI failure or a garbled notice: the next collective fails
      poison(e);
    }
  }

  // Note [mpi cuda staging]: the producer of a CUDA tensor must have finished before the
  // communication thread copies it.
  Work all_reduce(Tensor& t, const AllReduceOptions& options) override {
    sync_producer_(t);
    return QueuedCommunicator::all_reduce(t, options);
  }
  Work broadcast(Tensor& t, const BroadcastOptions& options) override {
    sync_producer_(t);
    return QueuedCommunicator::broadcast(t, options);
  }
  Work all_gather(Tensor& out, const Tensor& in, const AllGatherOptions& options) override {
    sync_producer_(in);
    if (out.defined() && in.defined() && out.device() != in.device()) sync_producer_(out);
    return QueuedCommunicator::all_gather(out, in, options);
  }
  Work reduce_scatter(Tensor& out, const Tensor& in, const ReduceScatterOptions& options) override {
    sync_producer_(in);
    if (out.defined() && in.defined() && out.device() != in.device()) sync_producer_(out);
    return QueuedCommunicator::reduce_scatter(out, in, options);
  }

  void execute(Op& op) override {
    const CollectiveDesc& d = op.desc;
    if (d.kind == OpKind::Barrier || d.count == 0) {
      collectives_.arrive(d);
      return;
    }
    Tensor out = op.out, in = op.in;
    const bool in_place = d.kind == OpKind::AllReduce || d.kind == OpKind::Broadcast;
    const bool staged = staging_.stage(out, in, in_place);
    // A small all-reduce is done on arrival, with copies of its own (Note [fused small all-reduce]).
    if (!collectives_.arrive(d, d.kind == OpKind::AllReduce ? &out : nullptr)) {
      try {
        collectives_.exchange(d, out, in);
      } catch (...) {
        if (staged) staging_.abandon();  // MPI may still write into it
        throw;
      }
    }
    if (op.out.defined() && op.out.device().is_cuda()) HostStaging::to_device(op.out, out.data_ptr());
  }

 private:
  static void sync_producer_(const Tensor& t) {
    if (t.defined() && t.device().is_cuda()) HostStaging::sync_current_stream(t.device().index());
  }

  // Waiting with a deadline, for MpiCollectives (Note [mpi timeouts]); with `block` false, one test.
  bool wait_all_(MPI_Request* reqs, int nreq, bool block, Clock::time_point deadline, const CollectiveDesc& d,
                 const char* phase, std::shared_ptr<void> keep) {
    if (!block) return poll_(reqs, nreq, deadline, d, phase, keep, tests_++);
    const auto start = Clock::now();
    const bool header = phase == kMpiArrivalPhase;
    for (unsigned spin = 0;; ++spin) {
      if (poll_(reqs, nreq, deadline, d, phase, keep, spin)) return true;
      // Note [mpi polling]: nonblocking collectives progress only inside MPI calls, so the data
      // phase polls without sleeping (yielding the core to other threads). The header phase may
      // wait long for a late rank: after 20 ms it backs off to 50 us naps.
      const auto waited = Clock::now() - start;
      if (header && waited > std::chrono::milliseconds(20)) std::this_thread::sleep_for(std::chrono::microseconds(50));
      else if (waited > std::chrono::microseconds(100)) std::this_thread::yield();
    }
  }

  // One poll of a wait, the `poll`-th: tests the requests; while they are incomplete, answers
  // failure notices (every 64th poll) and fails — after handing `keep` to keep_forever — when a
  // rank it needs has departed, the communicator is closing, or the deadline has passed.
  bool poll_(MPI_Request* reqs, int nreq, Clock::time_point deadline, const CollectiveDesc& d, const char* phase,
             std::shared_ptr<void>& keep, unsigned poll) {
    int flag = 0;
    {
      auto g = rt_->guard();
      KIRZL_MPI_CHECK(MPI_Testall(nreq, reqs, &flag, MPI_STATUSES_IGNORE));
    }
    if (flag) return true;
    if ((poll & 63) == 0) {
      poll_notices_(&d);
      for (const Notice& gone : departed_)
        if (departure_blocks(gone, d)) {
          keep_forever(std::move(keep));
          KIRZL_FAIL(ErrorCode::Timeout, departure_message(gone, d, rank(), phase));
        }
    }
    if (closing()) {
      keep_forever(std::move(keep));
      KIRZL_FAIL(ErrorCode::InvalidArgument, d.long_str(), " on rank ", rank(), " was interrupted (", phase,
                 "): its communicator was destroyed");
    }
    if (Clock::now() >= deadline) {
      keep_forever(std::move(keep));
      timed_out_(d, phase);
    }
    return false;
  }

  // Answers queries; collects answers (and other ranks' queries) into `answers_` (see timed_out_)
  // and departures into `departed_`. `current` is the collective in progress (nullptr when idle).
  void poll_notices_(const CollectiveDesc* current) {
    for (Notice& n : notices_->receive()) {
      if (n.kind == NoticeKind::Query) {
        const std::string where = recorder_.where();
        notices_->send(answer_notice(rank(), n, recorder_.last_started(), where), n.from);
        // The group is broken at a collective this rank has not reached: fail fast later.
        if (query_is_ahead(n, current)) poison(Error(ErrorCode::Timeout, query_poison_message(n, rank(), where)));
      }
      // A timed-out rank's query also tells where that rank is.
      (n.kind == NoticeKind::Departure ? departed_ : answers_).push_back(std::move(n));
    }
  }

  [[noreturn]] void timed_out_(const CollectiveDesc& d, const char* phase) {
    answers_.clear();
    notices_->send_to_all(query_notice(rank(), d), rank(), size());
    TimeoutRollCall roll(size(), rank(), d);
    const auto until = Clock::now() + timeout_grace(d.timeout);
    while (!roll.complete() && Clock::now() < until) {
      poll_notices_(&d);
      for (const Notice& a : answers_) roll.hear(a);
      answers_.clear();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const std::string msg = roll.message(phase, backend());
    // Note [abort on failure]: a silent rank will not reach MPI_Finalize either.
    if (!roll.silent().empty()) mark_job_failed(roll.findings(phase, backend()));
    // One report per group: the lowest rank that arrived writes it.
    if (rank() == roll.arrived().front()) write_report(roll.report(msg, backend()) + recorder_.dump(rank()));
    KIRZL_FAIL(ErrorCode::Timeout, msg);
  }

  std::shared_ptr<MpiRuntime> rt_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MpiCollectives collectives_;
  std::unique_ptr<MpiNoticeChannel> notices_;
  std::vector<Notice> answers_;
  std::vector<Notice> departed_;  // Note [mpi departure]
  HostStaging staging_;           // Note [mpi cuda staging]
  unsigned tests_ = 0;            // nonblocking polls so far (wait_all_)
};

}  // namespace

MpiWorld mpi_create_world(std::chrono::milliseconds timeout) {
  auto rt = MpiRuntime::get();
  MpiWorldLayout layout = rt->world();
  MpiWorld w;
  w.comm = std::make_shared<MpiCommunicator>(rt, layout.comm, timeout);
  rt->set_teardown_timeout(w.comm->default_timeout());
  w.local_rank = layout.local_rank;
  w.local_size = layout.local_size;
  w.hosts = std::move(layout.hosts);
  w.info = std::move(layout.info);
  return w;
}

}  // namespace kirzl::comm::detail
