// Internal: the hierarchical (topology-aware) all-reduce — reduce-scatter inside each node, an
// all-reduce of each shard across the nodes among the ranks with the same local rank, and an
// all-gather inside each node — over any point-to-point Transport, with the ring (ring.h) in each
// phase. See Note [hierarchical all-reduce].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "comm/ring.h"
#include "comm/transport.h"
#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

// Where the ranks of a communicator are: node_of[r] is the node of rank r, nodes numbered 0, 1, ...
// in the order of their lowest rank. A node's local ranks are its ranks in increasing order.
struct NodeMap {
  std::vector<int> node_of;

  int nodes() const;
  // The ranks of node `node`, in increasing order.
  std::vector<int> members(int node) const;
  // From any per-rank key (e.g. a host's lowest world rank): equal keys are one node.
  static NodeMap from_keys(const std::vector<int64_t>& keys);
};

// Why the hierarchical all-reduce cannot (or need not) run on `map`, e.g. "the ranks are on one
// node" or "node sizes differ (2, 3)"; nullopt when it can: at least two nodes, each with the same
// number (at least two) of ranks.
std::optional<std::string> hierarchical_unusable(const NodeMap& map);

// The default chunk of the pipeline (Note [hierarchical pipeline]).
inline constexpr int64_t kHierarchicalChunkBytes = int64_t{1} << 20;

// In place over `data` (`count` elements of `dtype`, the same on every rank of `t`, whose ranks are
// those of `map`): afterwards every rank holds the reduction over all ranks, with the same bits on
// every rank. Avg reduces as Sum (the caller divides). Error{Internal} when hierarchical_unusable.
// Throws what the transport throws. The data runs through the three phases in chunks of about
// `chunk_bytes` (the same on every rank; 0: one chunk, the phases one after the other), pipelined
// (Note [hierarchical pipeline]); the bits of the result depend on the chunks.
void hierarchical_all_reduce(Transport& t, const NodeMap& map, void* data, int64_t count, DType dtype, ReduceOp op,
                             const RingOptions& options = {}, int64_t chunk_bytes = kHierarchicalChunkBytes);

// The chunk of the hierarchical all-reduce over MPI across `nodes` nodes: 1 MiB on 2 nodes, 256 KiB
// on more (Note [hierarchical pipeline]); KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES sets it for any count
// (0: no pipeline). The same on every rank of a communicator, whose ranks agree on the nodes.
int64_t hierarchical_chunk_bytes(int nodes);

}  // namespace kirzl::comm::detail
