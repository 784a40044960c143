// The hierarchical all-reduce. See hierarchical.h.
//
// Note [hierarchical all-reduce]: with N nodes of L ranks each, a flat ring sends 2 (NL - 1) / NL
// of the data per rank, and N of its NL links cross nodes, each carrying that much: the slow links
// carry 2 (NL - 1) / NL per node and set the pace. Instead:
//   1. reduce-scatter inside each node (ring over the node's L ranks, shared memory): local rank l
//      holds node segment s(l) = ring_reduced_segment(l, L), reduced over its node;
//   2. all-reduce of that segment across the nodes (ring over the N ranks with local rank l, one
//      per node): 2 (N - 1) / N of 1/L of the data per rank, L such rings in parallel, so each
//      node sends 2 (N - 1) / N of the data once across the slow links;
//   3. all-gather inside each node (ring): every rank holds every reduced segment.
// Every element is reduced once per phase by one rank, in an order fixed by the ranks alone, then
// only copied, so every rank ends with the same bits (as in Note [ring all-reduce]). The result can
// differ from the flat ring's in the last bits (another summation order). All nodes must have the
// same number of ranks (otherwise the ranks with a given local rank do not span all nodes); the
// caller falls back to the flat ring then (hierarchical_unusable). The data goes through the three
// phases in chunks, pipelined (Note [hierarchical pipeline]).
//
// Note [hierarchical pipeline]: run one after the other, the phases leave the slow links idle while
// the node copies and reduces (phases 1 and 3): across 2 emulated nodes at 64 MiB, 0.87 s where the
// link alone needs 0.54 s (bench/RESULTS.md). So the data is cut into chunks of about
// KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES (sizes differ by at most one element; the same on every rank;
// by default 1 MiB on 2 nodes and 256 KiB on more: on 2 emulated nodes without link latency, 256
// KiB to 1 MiB were the fastest of 256 KiB to 8 MiB; with 200 us of latency 1 MiB beat 256 KiB by
// ~10 % on 2 nodes, while on 3 and 4 nodes 256 KiB beat 1 MiB by 1.2-1.5x at 4-64 MiB and 128 KiB
// lost to both: bench/RESULTS.md, 2026-12-06 and 2026-12-07), and the phases run in lanes, each a nonblocking ring
// schedule (ring_schedule.h) that runs its chunks one at a time, in chunk order: phase 1 in one
// lane (chunk k + 1 starts when chunk k has ended; in place, it may run any number of chunks
// ahead), phase 2 in two lanes (the even and the odd chunks; chunk k starts when phase 1 of chunk k
// and chunk k - 2 have ended, so the link has the next chunk's messages queued while a ring step
// waits for its peer's), phase 3 in one (chunk k after phase 2 of chunk k and phase 3 of the chunk
// before). So while chunk k crosses the nodes, chunk k + 1 is reduce-scattered and chunk k - 1
// all-gathered inside the node. One thread drives them (no second thread issues MPI calls): it
// advances each lane in turn, those across the nodes first (the slow link gets its next message
// soonest), and each advance tests its messages without blocking (Transport::test, which makes the
// checks of a wait: the deadline, departed ranks, a closing communicator — a stalled or departed
// rank fails the collective as before, never a hang); when no lane can advance it yields the core.
// Each lane has its own channel (an MPI tag): between two ranks, the messages of two lanes are
// posted in an order that depends on timing, and must never match each other's receives; within a
// lane every rank posts the chunks' steps in the same order. Each chunk is a hierarchical
// all-reduce of its own, so every element is still reduced in an order fixed by the ranks, the node
// map and the chunk size alone, and every rank gets the same bits (another chunk size can change
// the last bits). Three reducing lanes are in flight at once: the scratch holds a receive buffer
// for each, kept alive by the transport after a failure. A chunk of 0 gives one chunk: the phases
// one after the other.
#include "comm/hierarchical.h"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "comm/reduce_ops.h"
#include "comm/ring_schedule.h"
#include "core/environment.h"
#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

namespace {

// A sub-group of a transport's ranks as a transport of its own: rank i of the group is rank
// ranks[i] of the base.
class GroupTransport final : public Transport {
 public:
  GroupTransport(Transport& base, std::vector<int> ranks) : base_(base), ranks_(std::move(ranks)) {
    const auto it = std::find(ranks_.begin(), ranks_.end(), base_.rank());
    KIRZL_INTERNAL_ASSERT(it != ranks_.end(), "hierarchical all-reduce: rank ", base_.rank(), " is not in its group");
    me_ = static_cast<int>(it - ranks_.begin());
  }
  int rank() const override { return me_; }
  int size() const override { return static_cast<int>(ranks_.size()); }
  Request send(int peer, const std::byte* data, int64_t bytes, int channel = 0) override {
    return base_.send(ranks_.at(peer), data, bytes, channel);
  }
  Request receive(int peer, std::byte* data, int64_t bytes, int channel = 0) override {
    return base_.receive(ranks_.at(peer), data, bytes, channel);
  }
  void wait(std::span<const Request> requests) override { base_.wait(requests); }
  bool test(std::span<const Request> requests) override { return base_.test(requests); }
  void keep_alive(std::shared_ptr<void> buffer) override { base_.keep_alive(std::move(buffer)); }

 private:
  Transport& base_;
  std::vector<int> ranks_;
  int me_ = 0;
};

}  // namespace

int NodeMap::nodes() const { return node_of.empty() ? 0 : *std::max_element(node_of.begin(), node_of.end()) + 1; }

std::vector<int> NodeMap::members(int node) const {
  std::vector<int> m;
  for (int r = 0; r < static_cast<int>(node_of.size()); ++r)
    if (node_of[r] == node) m.push_back(r);
  return m;
}

NodeMap NodeMap::from_keys(const std::vector<int64_t>& keys) {
  std::map<int64_t, int> index;
  NodeMap m;
  for (int64_t k : keys) m.node_of.push_back(index.emplace(k, static_cast<int>(index.size())).first->second);
  return m;
}

std::optional<std::string> hierarchical_unusable(const NodeMap& map) {
  const int n = map.nodes();
  if (n <= 1) return "the ranks are on one node";
  std::vector<int> sizes(static_cast<size_t>(n));
  for (int node : map.node_of) ++sizes[static_cast<size_t>(node)];
  if (std::adjacent_find(sizes.begin(), sizes.end(), std::not_equal_to<>()) != sizes.end()) {
    std::ostringstream s;
    s << "the nodes have different numbers of ranks (";
    for (int i = 0; i < n; ++i) s << (i ? ", " : "") << sizes[static_cast<size_t>(i)];
    s << ")";
    return s.str();
  }
  if (sizes[0] == 1) return "every node has one rank (the flat ring is the same)";
  return std::nullopt;
}

void hierarchical_all_reduce(Transport& t, const NodeMap& map, void* data, int64_t count, DType dtype, ReduceOp op,
                             const RingOptions& options, int64_t chunk_bytes) {
  KIRZL_CHECK_CODE(static_cast<int>(map.node_of.size()) == t.size(), ErrorCode::Internal,
                   "hierarchical all-reduce: the node map has ", map.node_of.size(), " ranks, the transport ", t.size());
  if (const auto why = hierarchical_unusable(map))
    KIRZL_FAIL(ErrorCode::Internal, "hierarchical all-reduce: cannot run: ", *why);
  if (count == 0) return;
  const int me = t.rank();
  const std::vector<int> node = map.members(map.node_of[static_cast<size_t>(me)]);
  const int L = static_cast<int>(node.size()), N = map.nodes();
  const int local = static_cast<int>(std::find(node.begin(), node.end(), me) - node.begin());
  std::vector<int> peers;  // the ranks with my local rank, one per node, in node order
  for (int k = 0; k < N; ++k) peers.push_back(map.members(k)[static_cast<size_t>(local)]);
  GroupTransport intra(t, node), inter(t, std::move(peers));

  // Note [hierarchical pipeline]: the chunks, [chunk_begin(c), chunk_begin(c + 1)).
  const int64_t esize = static_cast<int64_t>(dtype_size(dtype));
  const int64_t nchunks = std::clamp<int64_t>(chunk_bytes > 0 ? (count * esize + chunk_bytes - 1) / chunk_bytes : 1, 1, count);
  const auto chunk_begin = [&](int64_t c) { return count / nchunks * c + count % nchunks * c / nchunks; };
  const int64_t largest = count / nchunks + 1;
  const int seg = ring_reduced_segment(local, L);  // this rank's node segment of each chunk

  // The lanes of the pipeline, each a ring schedule on a channel of its own that runs its chunks
  // one at a time, in chunk order: the reduce-scatter in the node (every chunk), kCrossing lanes
  // across the nodes (chunk c in lane c % kCrossing), the all-gather in the node (every chunk).
  constexpr int kCrossing = 2;
  struct Lane {
    int phase;  // 0, 1, 2: the phases of Note [hierarchical all-reduce]
    int channel;
    int64_t next;  // the next chunk to start; the lane's chunks are next, next + stride, ...
    int64_t stride;
    std::byte* scratch = nullptr;
    std::optional<RingSchedule> ring;
  };
  Lane lanes[kCrossing + 2] = {{1, 1, 0, kCrossing, nullptr, std::nullopt},
                               {1, 3, 1, kCrossing, nullptr, std::nullopt},
                               {0, 0, 0, 1, nullptr, std::nullopt},
                               {2, 2, 0, 1, nullptr, std::nullopt}};
  static_assert(kCrossing + 2 <= Transport::kChannels);

  // A receive buffer for each reducing lane, in one scratch.
  const auto aligned = [](int64_t bytes) { return (bytes + 63) / 64 * 64; };
  const int64_t intra_scratch = aligned(RingSchedule::scratch_bytes(largest, L, dtype));
  const int64_t inter_scratch = aligned(RingSchedule::scratch_bytes(largest / L + 1, N, dtype));
  const int64_t need = intra_scratch + kCrossing * inter_scratch;
  RingScratch own;
  RingScratch& scratch = options.scratch ? *options.scratch : own;
  if (scratch.bytes < need) scratch = {std::shared_ptr<std::byte[]>(new std::byte[static_cast<size_t>(need)]), need};
  t.keep_alive(scratch.data);
  lanes[kCrossing].scratch = scratch.data.get();
  for (int i = 0; i < kCrossing; ++i) lanes[i].scratch = scratch.data.get() + intra_scratch + i * inter_scratch;

  auto* base = static_cast<std::byte*>(data);
  int64_t scattered = 0, gathered = 0;              // chunks through phase 1, phase 3 (in order)
  std::vector<char> crossed(static_cast<size_t>(nchunks));  // chunks through phase 2 (in any order)
  const auto ready = [&](const Lane& l) {
    if (l.next >= nchunks || l.ring) return false;
    return l.phase == 0 || (l.phase == 1 ? scattered > l.next : crossed[static_cast<size_t>(l.next)] != 0);
  };
  const auto start = [&](Lane& l) {
    const int64_t lo = chunk_begin(l.next), n = chunk_begin(l.next + 1) - lo;
    std::byte* chunk = base + lo * esize;
    if (l.phase == 1) {
      const int64_t slo = ring_segment_begin(n, L, seg), shi = ring_segment_begin(n, L, seg + 1);
      l.ring.emplace(inter, RingSchedule::Kind::AllReduce, chunk + slo * esize, shi - slo, dtype, op, l.channel,
                     options.piece_bytes, l.scratch);
    } else {
      l.ring.emplace(intra, l.phase == 0 ? RingSchedule::Kind::ReduceScatter : RingSchedule::Kind::AllGather, chunk, n,
                     dtype, op, l.channel, options.piece_bytes, l.scratch);
    }
  };
  while (gathered < nchunks) {
    bool progressed = false;
    for (Lane& l : lanes) {  // the slow lanes across the nodes first
      if (ready(l)) {
        start(l);
        progressed = true;
      }
      if (!l.ring) continue;
      progressed = l.ring->advance() || progressed;
      if (!l.ring->done()) continue;
      l.ring.reset();
      if (l.phase == 0) ++scattered;
      else if (l.phase == 1) crossed[static_cast<size_t>(l.next)] = 1;
      else ++gathered;
      l.next += l.stride;
      progressed = true;
    }
    // Nothing to do until a message moves: let the other ranks' threads (and MPI's) run. (Naps of
    // 20 us after 200 us idle instead measured no different, 2 x 2 emulated nodes, 2026-12-06.)
    if (!progressed) std::this_thread::yield();
  }
}

int64_t hierarchical_chunk_bytes(int nodes) {
  static const std::optional<int64_t> set = env::integer("KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES");
  if (set) return *set;
  return nodes <= 2 ? kHierarchicalChunkBytes : kHierarchicalChunkBytes / 4;  // Note [hierarchical pipeline]
}

}  // namespace kirzl::comm::detail
