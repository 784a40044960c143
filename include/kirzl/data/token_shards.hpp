// Token shards: a binary file of uint16 token ids with a small header, and a sampler of training
// windows from them that gives each data-parallel rank its own share.
//
// Note [token shard format] (version 1; all integers little-endian):
//   offset  size  field
//        0     8  magic: the bytes "KZTOKENS"
//        8     4  version: uint32, 1
//       12     4  vocab_size: uint32 in [1, 65536]; every token is < vocab_size
//       16     8  num_tokens: uint64
//       24     8  reserved: uint64, 0
//       32  2*n   the tokens: uint16 each
// The file is exactly 32 + 2 * num_tokens bytes long.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kirzl/tensor.hpp"

namespace kirzl::data {

inline constexpr char kTokenShardMagic[9] = "KZTOKENS";
inline constexpr uint32_t kTokenShardVersion = 1;
inline constexpr int64_t kTokenShardHeaderBytes = 32;

/// Writes `tokens` as a version-1 token shard at `path`, atomically (a temporary file renamed over
/// `path`; a previous file stays intact on failure). Throws Error{InvalidArgument} when vocab_size
/// is not in [1, 65536] or a token is >= vocab_size (before touching the file system), Error{Io}
/// naming the file when it cannot be written. Thread-safe for distinct paths.
void write_token_shard(const std::string& path, std::span<const uint16_t> tokens, uint32_t vocab_size);

/// A shard read into memory.
struct TokenShard {
  std::vector<uint16_t> tokens;  ///< the token ids in file order, each < vocab_size
  uint32_t vocab_size = 0;       ///< the vocabulary size the file declares, in [1, 65536]
};

/// Reads a token shard. The file is untrusted: its size, magic, version, reserved field and
/// vocab_size are checked, num_tokens against the file's size before anything is allocated, and
/// every token against vocab_size; any problem throws Error{Io} naming the file and what is
/// wrong. `max_vocab` (when > 0) is the caller's vocabulary: a shard declaring a larger one is
/// rejected too. Thread-safe.
TokenShard read_token_shard(const std::string& path, uint32_t max_vocab = 0);

/// The shards of `paths` that rank `rank` of `world_size` reads when whole files are dealt out:
/// paths[rank], paths[rank + world_size], ... Throws Error{InvalidArgument} for a bad rank or when
/// there are fewer files than ranks (a rank would get none).
std::vector<std::string> shards_for_rank(const std::vector<std::string>& paths, int rank, int world_size);

/// One batch of windows: inputs [B, T] and targets [B, T] (the inputs shifted by one), i64, CPU.
struct TokenBatch {
  /// Tokens [B, T]: row b is the window's tokens 0 .. T-1.
  Tensor inputs;
  /// Tokens [B, T]: row b is the window's tokens 1 .. T, the next-token target of each input.
  Tensor targets;
};

/// Window size, batch size, seed and this rank's place in the data-parallel world:
/// `{.block_size = 256, .batch_size = 16, .rank = comm.rank(), .world_size = comm.size()}`.
struct TokenBatchSamplerOptions {
  int64_t block_size = 64;  ///< T: each window holds T + 1 tokens
  int64_t batch_size = 8;   ///< windows per rank per step (the global batch is batch_size * world_size)
  uint64_t seed = 0;        ///< must be the same on every rank
  int rank = 0;             ///< this process's rank, in [0, world_size)
  int world_size = 1;       ///< number of data-parallel ranks sharing each global batch; >= 1
};

/// Random training windows over one token stream, a deterministic function of (seed, step).
///
/// Step s draws one global batch of batch_size * world_size window starts, uniform in
/// [0, n - T - 1], from Philox(seed, counter = s * global + j); rank r takes windows
/// [r * batch_size, (r + 1) * batch_size) of that list. So the ranks' shares are disjoint pieces of
/// one global batch, and their union is exactly the batch that a single process with
/// batch_size * world_size draws for the same seed: data-parallel training sees the same data at
/// any world size. Being indexed by step, the sampler needs no state to resume from a checkpoint.
/// Thread-safe (const methods only).
class TokenBatchSampler {
 public:
  /// Throws Error{InvalidArgument} when the stream is shorter than block_size + 1 tokens or an
  /// option is out of range.
  TokenBatchSampler(std::vector<uint16_t> tokens, const TokenBatchSamplerOptions& options);
  /// This rank's window starts at `step` (batch_size values).
  std::vector<int64_t> offsets(int64_t step) const;
  /// This rank's batch at `step`.
  TokenBatch batch(int64_t step) const;
  /// The windows starting at `offsets` (each must leave room for T + 1 tokens).
  TokenBatch windows(const std::vector<int64_t>& offsets) const;
  /// Length of the token stream the windows are drawn from (all ranks' share alike).
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  /// The options given at construction (validated), e.g. to log or checkpoint the data settings.
  const TokenBatchSamplerOptions& options() const { return options_; }

 private:
  std::vector<uint16_t> tokens_;
  TokenBatchSamplerOptions options_;
};

}  // namespace kirzl::data
