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
// caller falls back to the flat ring then (hierarchical_unusable). The three phases run one after
// the other on one transport: a pair of ranks talks in phases 1 and 3 (same node) or in phase 2
// (same local rank), and each phase waits for all of its messages, so they never mix.
#include "comm/hierarchical.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "comm/reduce_ops.h"
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
  Request send(int peer, const std::byte* data, int64_t bytes) override { return base_.send(ranks_.at(peer), data, bytes); }
  Request receive(int peer, std::byte* data, int64_t bytes) override {
    return base_.receive(ranks_.at(peer), data, bytes);
  }
  void wait(std::span<const Request> requests) override { base_.wait(requests); }
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
                             const RingOptions& options) {
  KIRZL_CHECK_CODE(static_cast<int>(map.node_of.size()) == t.size(), ErrorCode::Internal,
                   "hierarchical all-reduce: the node map has ", map.node_of.size(), " ranks, the transport ", t.size());
  if (const auto why = hierarchical_unusable(map))
    KIRZL_FAIL(ErrorCode::Internal, "hierarchical all-reduce: cannot run: ", *why);
  const int me = t.rank();
  const std::vector<int> node = map.members(map.node_of[static_cast<size_t>(me)]);
  const int L = static_cast<int>(node.size());
  const int local = static_cast<int>(std::find(node.begin(), node.end(), me) - node.begin());
  std::vector<int> peers;  // the ranks with my local rank, one per node, in node order
  for (int k = 0; k < map.nodes(); ++k) peers.push_back(map.members(k)[static_cast<size_t>(local)]);

  GroupTransport intra(t, node), inter(t, std::move(peers));
  ring_reduce_scatter(intra, data, count, dtype, op, options);
  const int seg = ring_reduced_segment(local, L);
  const int64_t lo = ring_segment_begin(count, L, seg), hi = ring_segment_begin(count, L, seg + 1);
  auto* shard = static_cast<std::byte*>(data) + lo * static_cast<int64_t>(dtype_size(dtype));
  ring_all_reduce(inter, shard, hi - lo, dtype, op, options);
  ring_all_gather(intra, data, count, dtype, options);
}

}  // namespace kirzl::comm::detail
