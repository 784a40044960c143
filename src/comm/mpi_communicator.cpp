// The MPI backend: CPU tensors (CUDA tensors are staged through host memory), one communication
// thread per communicator that owns every MPI call of that communicator.
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
// Note [mpi collective protocol]: each collective first runs a tiny header all-reduce of
// {seq, signature, -seq, -signature} with MPI_MIN, which gives every rank the minimum and maximum
// of both; equal minimum and maximum mean that all ranks issued the same collective. On a
// mismatch all ranks (they all see it) gather the full headers and fail with the same message
// naming rank 0's collective and the first rank that differs. Only then is the data exchanged, so
// MPI never sees mismatched collectives, and a rank that does not arrive stalls the header phase,
// before any user buffer is handed to MPI. The header all-reduce doubles as the barrier.
//
// Note [mpi timeouts] and Note [mpi departure]: failure_notice.h.
#include "comm/mpi_communicator.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "comm/host_staging.h"
#include "comm/failure_notice.h"
#include "comm/job_failure.h"
#include "comm/mpi_check.h"
#include "comm/mpi_notice_channel.h"
#include "comm/mpi_runtime.h"
#include "comm/mpi_transport.h"
#include "comm/queued_communicator.h"
#include "comm/reduce_ops.h"
#include "comm/ring.h"
#include "core/environment.h"
#include "kirzl/autograd.hpp"

namespace kirzl::comm::detail {

namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::u8: return MPI_UINT8_T;
    case DType::u16: return MPI_UINT16_T;
    case DType::bf16:
    case DType::f16: return MPI_FLOAT;  // reduced through f32 staging
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Min: return MPI_MIN;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Prod: return MPI_PROD;
  }
  return MPI_SUM;
}

// Elements per MPI call (counts are int). KIRZL_MPI_MAX_COUNT lowers it, which the tests use to
// exercise the chunked paths.
int64_t max_count() {
  static const int64_t v = [] {
    int64_t def = int64_t{1} << 30;
    return static_cast<int64_t>(env::integer("KIRZL_MPI_MAX_COUNT").value_or(def));
  }();
  return v;
}

constexpr const char* kArrivalPhase = "waiting for the other ranks to arrive";

class MpiCommunicator final : public QueuedCommunicator {
 public:
  MpiCommunicator(std::shared_ptr<MpiRuntime> rt, MPI_Comm comm, std::chrono::milliseconds timeout)
      : QueuedCommunicator(comm_rank(comm), comm_size(comm), timeout), rt_(std::move(rt)), comm_(comm) {
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
    MPI_Finalized(&finalized);
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
      header_(o.desc);  // every rank has arrived: the blocking split below cannot hang
      auto g = rt_->guard();
      KIRZL_MPI_CHECK(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &sub));
    };
    submit(std::move(op)).wait();
    if (sub == MPI_COMM_NULL) return nullptr;
    return std::make_shared<MpiCommunicator>(rt_, sub, default_timeout());
  }

  // For the world's metadata (blocking, on the caller's thread, before any collective).
  MPI_Comm raw() const { return comm_; }
  std::shared_ptr<MpiRuntime> runtime() const { return rt_; }

 protected:
  void check_device(const char*, const Tensor&) const override {}  // CUDA tensors are staged
  std::chrono::milliseconds poll_interval() const override { return std::chrono::milliseconds(20); }
  void poll_idle() override { poll_notices_(nullptr); }

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
    header_(d);
    if (d.kind == OpKind::Barrier || d.count == 0) return;
    Tensor out = op.out, in = op.in;
    const bool out_cuda = out.defined() && out.device().is_cuda(), in_cuda = in.defined() && in.device().is_cuda();
    if (out_cuda || in_cuda) {
      // One pinned buffer: [out | in]; `out` staged only when the collective reads it (in place).
      const size_t ob = out.defined() ? out.nbytes() : 0, ib = in.defined() ? in.nbytes() : 0;
      auto* base = static_cast<std::byte*>(staging_.reserve(ob + ib));
      if (out_cuda) {
        if (d.kind == OpKind::AllReduce || d.kind == OpKind::Broadcast) HostStaging::to_host(base, out);
        out = from_blob(base, out.shape(), out.dtype());
      }
      if (in_cuda) {
        HostStaging::to_host(base + ob, in);
        in = from_blob(base + ob, in.shape(), in.dtype());
      }
    }
    const auto deadline = Clock::now() + d.timeout;
    try {
      switch (d.kind) {
        case OpKind::AllReduce: all_reduce_(out, d, deadline); break;
        case OpKind::Broadcast: broadcast_(out, d, deadline); break;
        case OpKind::AllGather: all_gather_(out, in, d, deadline); break;
        case OpKind::ReduceScatter: reduce_scatter_(out, in, d, deadline); break;
        default: break;
      }
    } catch (...) {
      if (out_cuda || in_cuda) staging_.abandon();  // MPI may still write into it
      throw;
    }
    if (out_cuda) HostStaging::to_device(op.out, out.data_ptr());
  }

 private:
  static void sync_producer_(const Tensor& t) {
    if (t.defined() && t.device().is_cuda()) HostStaging::sync_current_stream(t.device().index());
  }

  static int comm_rank(MPI_Comm c) {
    int r = 0;
    KIRZL_MPI_CHECK(MPI_Comm_rank(c, &r));
    return r;
  }
  static int comm_size(MPI_Comm c) {
    int s = 0;
    KIRZL_MPI_CHECK(MPI_Comm_size(c, &s));
    return s;
  }

  // ---- data phase ----
  void all_reduce_(Tensor& t, const CollectiveDesc& d, Clock::time_point deadline) {
    const int n = size();
    if (is_half_float(d.dtype)) {
      auto buf = std::make_shared<std::vector<float>>(static_cast<size_t>(d.count));
      widen_to_f32(t.data_ptr(), d.dtype, buf->data(), d.count);
      chunked_allreduce_(buf->data(), d.count, MPI_FLOAT, sizeof(float), d, deadline, buf);
      if (d.op == ReduceOp::Avg) divide_by(buf->data(), d.count, DType::f32, n);
      narrow_from_f32(buf->data(), d.dtype, t.data_ptr(), d.count);
    } else {
      chunked_allreduce_(t.data_ptr(), d.count, mpi_type(d.dtype), dtype_size(d.dtype), d, deadline,
                         std::make_shared<Tensor>(t));
      if (d.op == ReduceOp::Avg) divide_by(t.data_ptr(), d.count, d.dtype, n);
    }
  }

  void chunked_allreduce_(void* data, int64_t count, MPI_Datatype type, size_t esize, const CollectiveDesc& d,
                          Clock::time_point deadline, std::shared_ptr<void> keep) {
    if (use_ring(size(), count * static_cast<int64_t>(esize))) {  // Note [ring all-reduce] (ring.cpp)
      MpiTransport ring(*rt_, comm_, [&](MPI_Request* reqs, int n, std::shared_ptr<void> hold) {
        wait_all_(reqs, n, deadline, d, "exchanging data", std::move(hold));
      }, std::move(keep));
      ring_all_reduce(ring, data, count, type == MPI_FLOAT ? DType::f32 : d.dtype, d.op,
                      {.piece_bytes = std::min(max_count(), RingOptions{}.piece_bytes)});
      return;
    }
    const MPI_Op op = mpi_op(d.op);
    for (int64_t lo = 0; lo < count; lo += max_count()) {
      const int c = static_cast<int>(std::min(max_count(), count - lo));
      MPI_Request req;
      {
        auto g = rt_->guard();
        KIRZL_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, static_cast<std::byte*>(data) + lo * esize, c, type, op, comm_, &req));
      }
      wait_(req, deadline, d, "exchanging data", keep);
    }
  }

  void broadcast_(Tensor& t, const CollectiveDesc& d, Clock::time_point deadline) {
    const int64_t bytes = d.bytes();
    auto keep = std::make_shared<Tensor>(t);
    for (int64_t lo = 0; lo < bytes; lo += max_count()) {
      const int c = static_cast<int>(std::min(max_count(), bytes - lo));
      MPI_Request req;
      {
        auto g = rt_->guard();
        KIRZL_MPI_CHECK(MPI_Ibcast(static_cast<std::byte*>(t.data_ptr()) + lo, c, MPI_BYTE, d.root, comm_, &req));
      }
      wait_(req, deadline, d, "exchanging data", keep);
    }
  }

  void all_gather_(Tensor& out, const Tensor& in, const CollectiveDesc& d, Clock::time_point deadline) {
    const int n = size();
    const int64_t bytes = d.bytes();
    auto* o = static_cast<std::byte*>(out.data_ptr());
    const auto* i = static_cast<const std::byte*>(in.data_ptr());
    if (bytes <= max_count()) {
      MPI_Request req;
      {
        auto g = rt_->guard();
        KIRZL_MPI_CHECK(MPI_Iallgather(i, static_cast<int>(bytes), MPI_BYTE, o, static_cast<int>(bytes), MPI_BYTE, comm_, &req));
      }
      wait_(req, deadline, d, "exchanging data", std::make_shared<std::pair<Tensor, Tensor>>(out, in));
      return;
    }
    // Chunked: gather piece [lo, lo + c) of every rank into a staging buffer, then place it.
    for (int64_t lo = 0; lo < bytes; lo += max_count()) {
      const int64_t c = std::min(max_count(), bytes - lo);
      auto tmp = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(c * n));
      MPI_Request req;
      {
        auto g = rt_->guard();
        KIRZL_MPI_CHECK(MPI_Iallgather(i + lo, static_cast<int>(c), MPI_BYTE, tmp->data(), static_cast<int>(c), MPI_BYTE, comm_, &req));
      }
      wait_(req, deadline, d, "exchanging data", tmp);
      for (int r = 0; r < n; ++r) std::memcpy(o + r * bytes + lo, tmp->data() + r * c, static_cast<size_t>(c));
    }
  }

  void reduce_scatter_(Tensor& out, const Tensor& in, const CollectiveDesc& d, Clock::time_point deadline) {
    const int n = size();
    const bool half = is_half_float(d.dtype);
    const size_t esize = half ? sizeof(float) : dtype_size(d.dtype);
    const MPI_Datatype type = mpi_type(d.dtype);
    const int64_t m = d.count;
    // Staged copies: f32 for the 16-bit floats, and per chunk when the block is too large.
    for (int64_t lo = 0; lo < m; lo += max_count()) {
      const int64_t c = std::min(max_count(), m - lo);
      auto send = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(c * n) * esize);
      auto recv = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(c) * esize);
      for (int r = 0; r < n; ++r) {
        const auto* src = static_cast<const std::byte*>(in.data_ptr()) + (r * m + lo) * dtype_size(d.dtype);
        if (half) widen_to_f32(src, d.dtype, reinterpret_cast<float*>(send->data()) + r * c, c);
        else std::memcpy(send->data() + r * c * esize, src, static_cast<size_t>(c) * esize);
      }
      MPI_Request req;
      {
        auto g = rt_->guard();
        KIRZL_MPI_CHECK(MPI_Ireduce_scatter_block(send->data(), recv->data(), static_cast<int>(c), type, mpi_op(d.op), comm_, &req));
      }
      wait_(req, deadline, d, "exchanging data", std::make_shared<std::pair<decltype(send), decltype(recv)>>(send, recv));
      if (d.op == ReduceOp::Avg) divide_by(recv->data(), c, half ? DType::f32 : d.dtype, n);
      auto* dst = static_cast<std::byte*>(out.data_ptr()) + lo * dtype_size(d.dtype);
      if (half) narrow_from_f32(reinterpret_cast<const float*>(recv->data()), d.dtype, dst, c);
      else std::memcpy(dst, recv->data(), static_cast<size_t>(c) * esize);
    }
  }

  // ---- header: Note [mpi collective protocol] ----
  void header_(const CollectiveDesc& d) {
    if (size() == 1) return;
    const int64_t sig = d.signature();
    auto h = std::make_shared<std::array<int64_t, 4>>(std::array<int64_t, 4>{d.seq, sig, -d.seq, -sig});
    MPI_Request req;
    {
      auto g = rt_->guard();
      KIRZL_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, h->data(), 4, MPI_INT64_T, MPI_MIN, comm_, &req));
    }
    const auto deadline = Clock::now() + d.timeout;
    wait_(req, deadline, d, kArrivalPhase, h);
    const auto& v = *h;
    if (v[0] == -v[2] && v[1] == -v[3]) return;
    // Mismatch: everyone saw it; gather the full headers to name both sides.
    const int n = size();
    auto all = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(6 * n));
    int64_t mine[6];
    mine[0] = d.seq;
    d.pack(mine + 1);
    {
      auto g = rt_->guard();
      KIRZL_MPI_CHECK(MPI_Iallgather(mine, 6, MPI_INT64_T, all->data(), 6, MPI_INT64_T, comm_, &req));
    }
    wait_(req, Clock::now() + d.timeout, d, "gathering mismatching headers", all);
    const auto desc_of = [&](int r) {
      CollectiveDesc x = CollectiveDesc::unpack(all->data() + 6 * r + 1, (*all)[6 * r]);
      if (r == rank()) x.tag = d.tag;
      return x;
    };
    const CollectiveDesc d0 = desc_of(0);
    for (int r = 1; r < n; ++r) {
      const CollectiveDesc dr = desc_of(r);
      if (dr.seq != d0.seq || dr.signature() != d0.signature())
        KIRZL_FAIL(ErrorCode::InvalidArgument, mismatch_message(d0, 0, dr, r));
    }
    KIRZL_FAIL(ErrorCode::Internal, d.str(), ": header check reported a mismatch but the gathered headers agree");
  }

  // ---- waiting with a deadline: Note [mpi timeouts] ----
  void wait_(MPI_Request& req, Clock::time_point deadline, const CollectiveDesc& d, const char* phase,
             std::shared_ptr<void> keep) {
    wait_all_(&req, 1, deadline, d, phase, std::move(keep));
  }

  void wait_all_(MPI_Request* reqs, int nreq, Clock::time_point deadline, const CollectiveDesc& d, const char* phase,
                 std::shared_ptr<void> keep) {
    int flag = 0;
    const auto start = Clock::now();
    const bool header = phase == kArrivalPhase;
    for (int spin = 0;; ++spin) {
      {
        auto g = rt_->guard();
        KIRZL_MPI_CHECK(MPI_Testall(nreq, reqs, &flag, MPI_STATUSES_IGNORE));
      }
      if (flag) return;
      if ((spin & 63) == 0) {
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
      const auto now = Clock::now();
      if (now >= deadline) {
        keep_forever(std::move(keep));
        timed_out_(d, phase);
      }
      // Note [mpi polling]: nonblocking collectives progress only inside MPI calls, so the data
      // phase polls without sleeping (yielding the core to other threads). The header phase may
      // wait long for a late rank: after 20 ms it backs off to 50 us naps.
      if (header && now - start > std::chrono::milliseconds(20)) std::this_thread::sleep_for(std::chrono::microseconds(50));
      else if (now - start > std::chrono::microseconds(100)) std::this_thread::yield();
    }
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
  std::unique_ptr<MpiNoticeChannel> notices_;
  std::vector<Notice> answers_;
  std::vector<Notice> departed_;  // Note [mpi departure]
  HostStaging staging_;           // Note [mpi cuda staging]
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
