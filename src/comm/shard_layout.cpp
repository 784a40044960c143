#include "comm/shard_layout.h"

#include <algorithm>

#include "kirzl/core/error.hpp"

namespace kirzl::ddp_detail {

BucketShard shard_bucket(const std::vector<size_t>& members, const std::vector<int64_t>& numels, int rank, int world) {
  KIRZL_CHECK(world >= 1 && rank >= 0 && rank < world, "shard_bucket: rank ", rank, " of ", world);
  BucketShard s;
  for (size_t i : members) s.numel += numels.at(i);
  s.chunk = (s.numel + world - 1) / world;
  s.padded = s.chunk * world;
  s.begin = std::min<int64_t>(s.numel, rank * s.chunk);
  s.end = std::min<int64_t>(s.numel, s.begin + s.chunk);
  int64_t at = 0;  // the current parameter's first element in the bucket
  for (size_t i : members) {
    const int64_t lo = std::max(at, s.begin), hi = std::min(at + numels.at(i), s.end);
    if (lo < hi) s.pieces.push_back({i, lo - at, lo, hi - lo});
    at += numels.at(i);
  }
  return s;
}

}  // namespace kirzl::ddp_detail
