// What the writer and the reader of sharded checkpoints share (internal): file names, the
// checksum, the tiling check, and the index document.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kirzl::io::detail {

inline constexpr const char* kIndexFile = "index.json";
inline constexpr const char* kCompleteFile = "COMPLETE";
inline constexpr const char* kIncomingSuffix = ".incoming";
inline constexpr const char* kPreviousSuffix = ".previous";
/// The safetensors metadata entry of a shard that describes its pieces (Note [shard metadata]).
inline constexpr const char* kShardMetadataKey = "kirzl.shard";
/// Checksum chunk size the writer uses, and the bounds the reader accepts.
inline constexpr uint64_t kChecksumChunkBytes = uint64_t{1} << 20;
inline constexpr uint64_t kMinChecksumChunkBytes = uint64_t{1} << 10;
inline constexpr uint64_t kMaxChecksumChunkBytes = uint64_t{1} << 30;
/// Largest world size the index may claim (its shard list is bounded by this too).
inline constexpr int64_t kMaxWorldSize = 1 << 20;

/// "shard-00002-of-00004.safetensors".
std::string shard_file_name(int rank, int world_size);

/// `dir` without trailing slashes ("/" stays "/").
std::string strip_trailing_slashes(std::string dir);

/// CRC-32 (zlib's polynomial) of `n` bytes.
uint32_t crc32_of(const void* data, size_t n);

/// The CRC-32 of each `chunk`-byte chunk of `n` bytes (the last one may be shorter).
std::vector<uint32_t> chunk_crc32s(const void* data, size_t n, uint64_t chunk);

/// Number of checksum chunks of `nbytes` bytes.
inline uint64_t chunk_count(uint64_t nbytes, uint64_t chunk) { return nbytes / chunk + (nbytes % chunk != 0); }

/// One piece of a key, for the tiling check: who holds it (a rank or a shard number) and which
/// elements.
struct TilePiece {
  int holder = 0;
  int64_t offset = 0;
  int64_t length = 0;
};

/// Empty when `pieces` (sorted here by offset) cover [0, numel) exactly once; otherwise what is
/// wrong, naming the elements and the holders ("rank 2", with `holder` = "rank"). Empty pieces
/// inside [0, numel] take part in nothing; a piece that starts or ends outside it is an error.
std::string tiling_problem(std::vector<TilePiece>& pieces, int64_t numel, const char* holder);

/// The product of `shape`, or -1 when an extent is negative or the product overflows int64.
int64_t checked_numel(const std::vector<int64_t>& shape);

}  // namespace kirzl::io::detail
