// Internal: which elements of each bucket a rank owns under DDPOptions::shard. See Note [shard layout].
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kirzl::ddp_detail {

/// A run of one parameter's elements that this rank owns.
struct ShardPiece {
  size_t param = 0;           ///< the parameter's index in DDP's order
  int64_t param_offset = 0;   ///< first owned element within the flattened parameter
  int64_t bucket_offset = 0;  ///< the same element's position in the bucket's flat buffer
  int64_t length = 0;         ///< number of elements
};

/// One bucket split over the ranks.
struct BucketShard {
  int64_t numel = 0;                ///< elements of the bucket's parameters together
  int64_t chunk = 0;                ///< elements per rank: ceil(numel / world)
  int64_t padded = 0;               ///< world * chunk: the flat buffers' length (reduce_scatter needs equal chunks)
  int64_t begin = 0, end = 0;       ///< this rank's elements [begin, end) of [0, numel); may be empty
  std::vector<ShardPiece> pieces;   ///< the parameters' runs inside [begin, end), in bucket order
};

// Note [shard layout]: each bucket's flat buffer (its parameters back to back, in bucket order) is
// cut into `world` equal chunks of ceil(numel / world) elements, padded at the end, and rank r owns
// chunk r. Owning a chunk of every bucket (rather than one contiguous range of all parameters)
// lets ZeRO-2 reduce-scatter each bucket as soon as its gradients are ready, and balances the
// work of every bucket's collective over the ranks. A chunk may cut through a parameter: the
// parameter's elements in it form one piece. Every rank computes the same split from the same
// bucket layout, which the construction-time fingerprint already verifies.
BucketShard shard_bucket(const std::vector<size_t>& members, const std::vector<int64_t>& numels, int rank, int world);

}  // namespace kirzl::ddp_detail
