// The MPI calls of each collective. See mpi_collectives.h.
//
// Note [mpi collective protocol]: each collective first runs a tiny header all-reduce of
// {seq, signature, -seq, -signature} with MPI_MIN, which gives every rank the minimum and maximum
// of both; equal minimum and maximum mean that all ranks issued the same collective. On a
// mismatch all ranks (they all see it) gather the full headers and fail with the same message
// naming rank 0's collective and the first rank that differs. Only then is the data exchanged, so
// MPI never sees mismatched collectives, and a rank that does not arrive stalls the header phase,
// before any user buffer is handed to MPI. The header all-reduce doubles as the barrier.
//
// Note [fused small all-reduce]: on communicators of at most kFusedMaxRanks ranks, the arrival is
// instead one message from every rank to every other (MPI_Isend/MPI_Irecv, tag kArrivalTag): the
// header (seq and the packed signature), followed, when the collective is an all-reduce of at
// most KIRZL_MPI_FUSED_BYTES / (ranks - 1) bytes (16 KiB at 2 ranks, 5.3 KiB at 4, 2.3 KiB at 8:
// what each rank sends in all stays within the setting), by its data. Every rank then compares
// all headers itself, and a fused all-reduce is done: each rank reduces the ranks' payloads in
// rank order (reduce_sources: bf16/f16 in f32, rounded once), so all get the same bits, and the
// collective costs one exchange instead of two (the header, then the data). Messages differ in
// length, but every receive is sized for the largest (header + limit), so mismatched collectives
// are still reported by kirzl, never by MPI as a truncation; that needs the same limit on every
// rank, which each communicator checks once when it is created (agreed_fused_bytes). Point to
// point rather than the earlier MPI_Iallgather of fixed slots: a message carries only the bytes
// it has, so the limit costs small all-reduces nothing. Measured at 2 ranks (bench/RESULTS.md,
// 2026-12-06, 24 runs each): 4 KiB 11.5-11.9 us fused against 16.4-19.9 us unfused, 16 KiB 16.5
// us against 22.6-25.5 us, 1 KiB 7.6-8.3 against 8.8-9.7 us, 8 bytes unchanged. Larger
// communicators keep the MIN header (all-to-all messages grow with the ranks squared);
// KIRZL_MPI_FUSED_BYTES=0 selects it everywhere.
//
// Note [mpi all-reduce choice]: KIRZL_ALLREDUCE picks the data phase of an all-reduce. auto: when
// the communicator spans nodes with equal numbers of ranks (Note [mpi nodes]), the hierarchical
// all-reduce (Note [hierarchical all-reduce]) from KIRZL_MPI_HIERARCHICAL_BYTES (32 KiB) and
// MPI_Iallreduce below; otherwise kirzl's flat ring (Note [ring all-reduce]) from
// KIRZL_MPI_RING_BYTES (32 KiB) and MPI_Iallreduce below. That threshold is measured
// (bench/RESULTS.md, "All-reduce algorithms"): MPI_Iallreduce, the only MPI all-reduce that keeps
// the deadline (a blocking MPI_Allreduce cannot be abandoned when a rank stalls), lost to the ring
// at every size from 16 KiB at 2 ranks (0.39-0.61 of raw MPI_Allreduce against 0.63-1.24). flat, hierarchical and mpi force one algorithm at every size (for
// benchmarks and tests); hierarchical falls back to the flat ring where the nodes do not allow it,
// saying why once per process on stderr (from rank 0 of the communicator). Every algorithm runs under the same header check and the
// same deadline-polled waits, so mismatches and stalled ranks are reported the same way.
#include "comm/mpi_collectives.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "comm/hierarchical.h"
#include "comm/mpi_check.h"
#include "comm/mpi_tags.h"
#include "comm/mpi_transport.h"
#include "comm/reduce_ops.h"
#include "comm/ring.h"
#include "core/environment.h"

namespace kirzl::comm::detail {

namespace {

constexpr const char* kDataPhase = "exchanging data";

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

// Across nodes, all-reduces of at least this many bytes run hierarchically (KIRZL_MPI_HIERARCHICAL_BYTES).
int64_t hierarchical_min_bytes() {
  static const int64_t v = env::integer("KIRZL_MPI_HIERARCHICAL_BYTES").value_or(int64_t{32} << 10);
  return v;
}

// Note [fused small all-reduce]: up to this many ranks, the arrival carries a payload.
constexpr int kFusedMaxRanks = 8;
constexpr int kHeaderWords = 6;  // seq + CollectiveDesc::pack
constexpr int64_t kDefaultFusedBytes = 16384;
// Note [arrival tail]: an arrival message longer than kArrivalFirstBytes travels as its first
// kArrivalFirstBytes and a tail (tag kArrivalTailTag). Open MPI's shared-memory transport sends a
// message of up to 4 KiB, its own header included (btl_vader_eager_limit), at once and a longer
// one by rendezvous, a round trip more; so without the split an all-reduce of 4 KiB went by
// rendezvous for the sake of its 48-byte header: measured at 2 ranks, 6.4 us as one message, 3.3
// us with the limit raised (bench/RESULTS.md). 64 bytes are left for Open MPI's header. Whether
// there is a tail follows from the signature, so the tails are waited for only once the headers
// agree: ranks that disagree fail naming both sides rather than wait for a tail that never comes.
constexpr int64_t kArrivalFirstBytes = 4096 - 64;

// KIRZL_MPI_FUSED_BYTES (the registry bounds it to [0, 1 MiB]), read once.
int64_t fused_limit() {
  static const int64_t v = env::integer("KIRZL_MPI_FUSED_BYTES").value_or(kDefaultFusedBytes);
  return v;
}

// KIRZL_ALLREDUCE, read once.
const std::string& allreduce_setting() {
  static const std::string v = env::text("KIRZL_ALLREDUCE").value_or("auto");
  return v;
}

}  // namespace

int64_t fused_payload_bytes(int size) {
  if (size <= 1 || size > kFusedMaxRanks) return 0;
  // What each rank sends in all stays within the limit; a multiple of 8 keeps every payload aligned.
  return fused_limit() / (size - 1) / 8 * 8;
}

int64_t arrival_whole_payload_bytes() { return kArrivalFirstBytes - kHeaderWords * int64_t{8}; }

namespace {

// fused_payload_bytes, checked to be the same on every rank of `comm` (collective, blocking, at
// construction): a rank with a larger limit would send arrival messages longer than the others'
// receives, and MPI would fail with a truncation instead of kirzl naming the setting.
int64_t agreed_fused_bytes(MpiRuntime& rt, MPI_Comm comm, int rank, int size) {
  const int64_t mine = fused_payload_bytes(size);
  if (size <= 1 || size > kFusedMaxRanks) return mine;  // 0 on every rank whatever the setting
  int64_t lo_hi[2] = {mine, -mine};  // one MPI_MIN gives the minimum and the maximum
  {
    auto g = rt.guard();
    KIRZL_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, lo_hi, 2, MPI_INT64_T, MPI_MIN, comm));
  }
  if (lo_hi[0] != -lo_hi[1])
    KIRZL_FAIL(ErrorCode::InvalidArgument, "KIRZL_MPI_FUSED_BYTES differs between the ranks of a communicator of ",
               size, " ranks: from ", lo_hi[0], " to ", -lo_hi[1], " bytes (", mine, " on rank ", rank,
               "); set it to the same value on every rank (Note [fused small all-reduce])");
  return mine;
}

}  // namespace

MpiCollectives::MpiCollectives(MpiRuntime& rt, MPI_Comm comm, int rank, int size, NodeMap nodes, WaitAll wait_all)
    : rt_(rt), comm_(comm), rank_(rank), size_(size), wait_all_(std::move(wait_all)), nodes_(std::move(nodes)),
      flat_only_(hierarchical_unusable(nodes_)), fused_bytes_(agreed_fused_bytes(rt, comm, rank, size)) {
  if (allreduce_setting() == "hierarchical" && flat_only_ && rank_ == 0) {
    static std::once_flag said;
    std::call_once(said, [&] {
      std::fprintf(stderr, "kirzl: rank %d: KIRZL_ALLREDUCE=hierarchical: the flat ring instead, as %s\n", rank_,
                   flat_only_->c_str());
    });
  }
}

AllReduceAlgorithm MpiCollectives::all_reduce_algorithm(int64_t bytes) const {
  const std::string& s = allreduce_setting();
  if (size_ <= 1 || s == "mpi") return AllReduceAlgorithm::Mpi;
  if (s == "flat") return AllReduceAlgorithm::Ring;
  if (s == "hierarchical") return flat_only_ ? AllReduceAlgorithm::Ring : AllReduceAlgorithm::Hierarchical;
  if (!flat_only_) return bytes >= hierarchical_min_bytes() ? AllReduceAlgorithm::Hierarchical : AllReduceAlgorithm::Mpi;
  return use_ring(size_, bytes) ? AllReduceAlgorithm::Ring : AllReduceAlgorithm::Mpi;
}

void MpiCollectives::exchange(const CollectiveDesc& d, Tensor& out, const Tensor& in) {
  const auto deadline = Clock::now() + d.timeout;
  switch (d.kind) {
    case OpKind::AllReduce: all_reduce_(out, d, deadline); break;
    case OpKind::Broadcast: broadcast_(out, d, deadline); break;
    case OpKind::AllGather: all_gather_(out, in, d, deadline); break;
    case OpKind::ReduceScatter: reduce_scatter_(out, in, d, deadline); break;
    default: break;
  }
}

void MpiCollectives::all_reduce_(Tensor& t, const CollectiveDesc& d, Clock::time_point deadline) {
  const int n = size_;
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

void MpiCollectives::chunked_allreduce_(void* data, int64_t count, MPI_Datatype type, size_t esize,
                                        const CollectiveDesc& d, Clock::time_point deadline, std::shared_ptr<void> keep) {
  const AllReduceAlgorithm algo = all_reduce_algorithm(count * static_cast<int64_t>(esize));
  if (algo != AllReduceAlgorithm::Mpi) {  // Note [mpi all-reduce choice]
    MpiTransport ring(rt_, comm_, [&](MPI_Request* reqs, int n, bool block, std::shared_ptr<void> hold) {
      return wait_all_(reqs, n, block, deadline, d, kDataPhase, std::move(hold));
    }, std::move(keep));
    const DType dtype = type == MPI_FLOAT ? DType::f32 : d.dtype;
    const RingOptions options{.piece_bytes = std::min(max_count(), ring_piece_bytes()),
                              .scratch = &ring_scratch_};
    try {
      if (algo == AllReduceAlgorithm::Hierarchical)
        hierarchical_all_reduce(ring, nodes_, data, count, dtype, d.op, options, hierarchical_chunk_bytes(nodes_.nodes()));
      else ring_all_reduce(ring, data, count, dtype, d.op, options);
    } catch (...) {
      ring_scratch_ = {};  // MPI may still write into it (the transport keeps it alive)
      throw;
    }
    return;
  }
  const MPI_Op op = mpi_op(d.op);
  for (int64_t lo = 0; lo < count; lo += max_count()) {
    const int c = static_cast<int>(std::min(max_count(), count - lo));
    MPI_Request req;
    {
      auto g = rt_.guard();
      KIRZL_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, static_cast<std::byte*>(data) + lo * esize, c, type, op, comm_, &req));
    }
    wait_(req, deadline, d, kDataPhase, keep);
  }
}

void MpiCollectives::broadcast_(Tensor& t, const CollectiveDesc& d, Clock::time_point deadline) {
  const int64_t bytes = d.bytes();
  auto keep = std::make_shared<Tensor>(t);
  for (int64_t lo = 0; lo < bytes; lo += max_count()) {
    const int c = static_cast<int>(std::min(max_count(), bytes - lo));
    MPI_Request req;
    {
      auto g = rt_.guard();
      KIRZL_MPI_CHECK(MPI_Ibcast(static_cast<std::byte*>(t.data_ptr()) + lo, c, MPI_BYTE, d.root, comm_, &req));
    }
    wait_(req, deadline, d, kDataPhase, keep);
  }
}

void MpiCollectives::all_gather_(Tensor& out, const Tensor& in, const CollectiveDesc& d, Clock::time_point deadline) {
  const int n = size_;
  const int64_t bytes = d.bytes();
  auto* o = static_cast<std::byte*>(out.data_ptr());
  const auto* i = static_cast<const std::byte*>(in.data_ptr());
  if (bytes <= max_count()) {
    MPI_Request req;
    {
      auto g = rt_.guard();
      KIRZL_MPI_CHECK(MPI_Iallgather(i, static_cast<int>(bytes), MPI_BYTE, o, static_cast<int>(bytes), MPI_BYTE, comm_, &req));
    }
    wait_(req, deadline, d, kDataPhase, std::make_shared<std::pair<Tensor, Tensor>>(out, in));
    return;
  }
  // Chunked: gather piece [lo, lo + c) of every rank into a staging buffer, then place it.
  for (int64_t lo = 0; lo < bytes; lo += max_count()) {
    const int64_t c = std::min(max_count(), bytes - lo);
    auto tmp = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(c * n));
    MPI_Request req;
    {
      auto g = rt_.guard();
      KIRZL_MPI_CHECK(MPI_Iallgather(i + lo, static_cast<int>(c), MPI_BYTE, tmp->data(), static_cast<int>(c), MPI_BYTE, comm_, &req));
    }
    wait_(req, deadline, d, kDataPhase, tmp);
    for (int r = 0; r < n; ++r) std::memcpy(o + r * bytes + lo, tmp->data() + r * c, static_cast<size_t>(c));
  }
}

void MpiCollectives::reduce_scatter_(Tensor& out, const Tensor& in, const CollectiveDesc& d, Clock::time_point deadline) {
  const int n = size_;
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
      auto g = rt_.guard();
      KIRZL_MPI_CHECK(MPI_Ireduce_scatter_block(send->data(), recv->data(), static_cast<int>(c), type, mpi_op(d.op), comm_, &req));
    }
    wait_(req, deadline, d, kDataPhase, std::make_shared<std::pair<decltype(send), decltype(recv)>>(send, recv));
    if (d.op == ReduceOp::Avg) divide_by(recv->data(), c, half ? DType::f32 : d.dtype, n);
    auto* dst = static_cast<std::byte*>(out.data_ptr()) + lo * dtype_size(d.dtype);
    if (half) narrow_from_f32(reinterpret_cast<const float*>(recv->data()), d.dtype, dst, c);
    else std::memcpy(dst, recv->data(), static_cast<size_t>(c) * esize);
  }
}

bool MpiCollectives::arrive(const CollectiveDesc& d, Tensor* t) {
  if (size_ == 1) return false;
  if (fused_bytes_ > 0) return arrive_fused_(d, t);
  arrive_min_(d);
  return false;
}

// Every rank's header in the arrival buffer (`slot` bytes apart) against `d`; fails naming both
// sides on a mismatch.
void MpiCollectives::check_headers_(const CollectiveDesc& d, int64_t slot) {
  const size_t stride = static_cast<size_t>(slot / 8);
  const auto* words = reinterpret_cast<const int64_t*>(arrival_.get());
  for (int r = 0; r < size_; ++r) {
    const int64_t* hr = words + stride * static_cast<size_t>(r);
    if (hr[0] != d.seq || CollectiveDesc::unpack(hr + 1, hr[0]).signature() != d.signature())
      fail_mismatch_(d, words, stride);
  }
}

bool MpiCollectives::arrive_fused_(const CollectiveDesc& d, Tensor* t) {
  constexpr int64_t header = kHeaderWords * int64_t{8};
  const int64_t slot = header + fused_bytes_;  // the largest arrival message; a multiple of 8
  // Whether the data travels here is decided by the signature alone, so ranks that agree on the
  // header agree on it too.
  const bool fused = t && d.kind == OpKind::AllReduce && d.count > 0 && d.bytes() <= fused_bytes_;
  if (!arrival_) arrival_ = std::shared_ptr<std::byte[]>(new std::byte[static_cast<size_t>(slot * size_)]);
  // Rank r's message lands at r * slot; this rank's own is written there and sent from there.
  std::byte* all = arrival_.get();
  std::byte* mine = all + slot * rank_;
  auto* h = reinterpret_cast<int64_t*>(mine);
  h[0] = d.seq;
  d.pack(h + 1);
  if (fused) std::memcpy(mine + header, t->data_ptr(), static_cast<size_t>(d.bytes()));
  // The first kArrivalFirstBytes, then the tail (Note [arrival tail]).
  const int64_t sent = header + (fused ? d.bytes() : 0);
  const int64_t first = std::min(sent, kArrivalFirstBytes), tail = sent - first;
  const int64_t first_slot = std::min(slot, kArrivalFirstBytes);
  std::array<MPI_Request, 4 * (kFusedMaxRanks - 1)> reqs;
  int nreq = 0;
  try {
    {
      auto g = rt_.guard();
      for (int p = 0; p < size_; ++p)
        if (p != rank_)
          KIRZL_MPI_CHECK(MPI_Irecv(all + slot * p, static_cast<int>(first_slot), MPI_BYTE, p, kArrivalTag, comm_, &reqs[nreq++]));
      for (int p = 0; p < size_; ++p)
        if (p != rank_) KIRZL_MPI_CHECK(MPI_Isend(mine, static_cast<int>(first), MPI_BYTE, p, kArrivalTag, comm_, &reqs[nreq++]));
      for (int p = 0; tail > 0 && p < size_; ++p)
        if (p != rank_) {
          KIRZL_MPI_CHECK(MPI_Irecv(all + slot * p + first, static_cast<int>(slot - first), MPI_BYTE, p, kArrivalTailTag,
                                    comm_, &reqs[nreq++]));
          KIRZL_MPI_CHECK(MPI_Isend(mine + first, static_cast<int>(tail), MPI_BYTE, p, kArrivalTailTag, comm_, &reqs[nreq++]));
        }
    }
    const int nfirst = 2 * (size_ - 1);
    wait_all_(reqs.data(), nfirst, true, Clock::now() + d.timeout, d, kMpiArrivalPhase, arrival_);
    check_headers_(d, slot);
    if (nreq > nfirst) wait_all_(reqs.data() + nfirst, nreq - nfirst, true, Clock::now() + d.timeout, d, kDataPhase, arrival_);
  } catch (...) {
    // MPI may still write into the buffer, or read from it: it is never freed, nor reused.
    keep_forever(std::move(arrival_));
    throw;
  }
  if (!fused) return false;
  std::array<const void*, kFusedMaxRanks> payloads;
  for (int r = 0; r < size_; ++r) payloads[static_cast<size_t>(r)] = all + slot * r + header;
  reduce_sources(t->data_ptr(), payloads.data(), size_, d.count, d.dtype, d.op);
  return true;
}

void MpiCollectives::arrive_min_(const CollectiveDesc& d) {
  const int64_t sig = d.signature();
  auto h = std::make_shared<std::array<int64_t, 4>>(std::array<int64_t, 4>{d.seq, sig, -d.seq, -sig});
  MPI_Request req;
  {
    auto g = rt_.guard();
    KIRZL_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, h->data(), 4, MPI_INT64_T, MPI_MIN, comm_, &req));
  }
  wait_(req, Clock::now() + d.timeout, d, kMpiArrivalPhase, h);
  const auto& v = *h;
  if (v[0] == -v[2] && v[1] == -v[3]) return;
  // Mismatch: everyone saw it; gather the full headers to name both sides.
  auto all = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(kHeaderWords * size_));
  int64_t mine[kHeaderWords];
  mine[0] = d.seq;
  d.pack(mine + 1);
  {
    auto g = rt_.guard();
    KIRZL_MPI_CHECK(MPI_Iallgather(mine, kHeaderWords, MPI_INT64_T, all->data(), kHeaderWords, MPI_INT64_T, comm_, &req));
  }
  wait_(req, Clock::now() + d.timeout, d, "gathering mismatching headers", all);
  fail_mismatch_(d, all->data(), kHeaderWords);
}

// Every rank holds every rank's header (`stride` words apart): all fail with the same message,
// naming rank 0's collective and the first rank that differs.
void MpiCollectives::fail_mismatch_(const CollectiveDesc& d, const int64_t* headers, size_t stride) {
  const auto desc_of = [&](int r) {
    const int64_t* h = headers + stride * static_cast<size_t>(r);
    CollectiveDesc x = CollectiveDesc::unpack(h + 1, h[0]);
    if (r == rank_) x.tag = d.tag;
    return x;
  };
  const CollectiveDesc d0 = desc_of(0);
  for (int r = 1; r < size_; ++r) {
    const CollectiveDesc dr = desc_of(r);
    if (dr.seq != d0.seq || dr.signature() != d0.signature())
      KIRZL_FAIL(ErrorCode::InvalidArgument, mismatch_message(d0, 0, dr, r));
  }
  KIRZL_FAIL(ErrorCode::Internal, d.str(), ": header check reported a mismatch but the gathered headers agree");
}

}  // namespace kirzl::comm::detail
