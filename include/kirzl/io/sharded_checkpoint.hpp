// Sharded checkpoints: every rank writes the pieces of the tensors it owns, one directory holds
// them with an index, and any number of ranks (or one process) reads back any range of any tensor.
// The storage layer of ZeRO checkpoints; it knows nothing about models or optimizers.
//
// On disk (docs/checkpoints.md): `dir/shard-RRRRR-of-NNNNN.safetensors` per rank,
// `dir/index.json` (names, dtypes, shapes, which shard holds which range, checksums, metadata) and
// `dir/COMPLETE`, written last. A directory without COMPLETE is never read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/comm.hpp"
#include "kirzl/io/safetensors.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl::io {

/// Elements [offset, offset + data.numel()) of the logical tensor `key`, flattened row-major.
struct TensorPiece {
  /// The logical tensor's name, e.g. "model.fc1.weight" or "optim.state.3.exp_avg".
  std::string key;
  /// The whole tensor's shape (every piece of a key must give the same).
  std::vector<int64_t> shape;
  /// Flat element offset of data[0] in the whole tensor.
  int64_t offset = 0;
  /// 1-D, of the whole tensor's dtype (any kirzl dtype); or, for a key that one rank writes
  /// whole (offset 0), the tensor in its own shape, e.g. a 0-d step counter. CPU or CUDA (copied
  /// to the host); non-contiguous views are written as their contiguous copy. Only read.
  Tensor data;
};

/// The value of the index's "format" entry.
inline constexpr const char* kShardedCheckpointFormat = "kirzl-sharded-checkpoint";
/// The index version this kirzl writes and reads.
inline constexpr int kShardedCheckpointVersion = 1;

/// Collective over `comm`: every rank writes its pieces into `dir`. Together the pieces of each
/// key must tile [0, numel) exactly once: a gap, an overlap, a piece outside the tensor, or ranks
/// disagreeing on a key's shape or dtype is Error{InvalidArgument} on every rank, naming the key
/// and the ranks, and nothing is committed. A key may come whole from one rank (offset 0, all
/// elements), e.g. buffers or scalars; a rank may contribute no pieces. Keys are any UTF-8 text.
/// `metadata` of rank 0 goes into the index (the other ranks' is ignored).
///
/// Atomic (see Note [sharded checkpoint commit]) — the shards and the index are written into
/// `<dir>.incoming`, the COMPLETE marker last after everything is fsync'ed, and only then does
/// the directory replace a previous checkpoint at `dir` (which stays intact and loadable until
/// the new one is complete). Any failure on any rank (a disk that is full or read-only, a bad
/// piece) makes every rank throw the same Error — Error{Io} naming the rank(s) and file(s) that
/// failed, or Error{InvalidArgument} — after the same number of collectives, so no rank hangs;
/// then `dir` is as it was. A `dir` that exists but is not a kirzl sharded checkpoint (other
/// files in it) is refused rather than replaced. The parent of `dir` is created if missing.
///
/// Needs a file system that every rank sees (rank 0 reads the other ranks' shard headers to
/// build the index). Uses the communicator for a few small collectives (all_reduce, broadcast)
/// with its default timeout; rank 0 does the extra work of the commit (reading N shard headers,
/// writing the index), which must fit in that timeout.
void save_sharded_checkpoint(const std::string& dir, comm::Communicator& comm, const std::vector<TensorPiece>& pieces,
                             const std::map<std::string, std::string>& metadata);

/// Bounds and checks applied when opening a checkpoint (its files are untrusted).
struct ShardedOpenOptions {
  /// Largest accepted index.json and safetensors header (the safetensors reference bound).
  uint64_t max_header_bytes = LoadOptions{}.max_header_bytes;
};

/// A sharded checkpoint directory (or a plain safetensors file) opened for reading. A value type:
/// it holds the validated index, no open files; reading is thread-safe.
///
/// Reads a directory written by save_sharded_checkpoint() at any world size, or a plain
/// safetensors file, treated as one shard holding whole tensors — so a consolidated file or an
/// ordinary kirzl checkpoint (save_checkpoint) loads through the same reader.
class ShardedCheckpoint {
 public:
  /// Opens `path` and validates the index and every shard header against it: format and version,
  /// bounded sizes, each shard's byte size, every piece's dtype, length and place in its file,
  /// and that each key's pieces tile it. Reads no tensor data. Throws Error{Io} naming the file
  /// and what is wrong: a missing or damaged file, a directory without the COMPLETE marker
  /// ("incomplete checkpoint"; when `<path>.previous` is a complete checkpoint — a crash during
  /// the final swap — the message says so, and that one is not loaded silently);
  /// Error{Unsupported} for a dtype kirzl has no tensor type for.
  static ShardedCheckpoint open(const std::string& path, const ShardedOpenOptions& options = {});

  /// The path given to open().
  const std::string& path() const { return path_; }
  /// The metadata: rank 0's `metadata` argument, or a plain file's "__metadata__".
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Every key, sorted.
  std::vector<std::string> keys() const;
  /// Whether the checkpoint holds `key`.
  bool contains(const std::string& key) const { return tensors_.count(key) != 0; }
  /// The whole tensor's shape. Unknown key: Error{InvalidArgument}.
  const std::vector<int64_t>& shape(const std::string& key) const;
  /// The tensor's dtype. Unknown key: Error{InvalidArgument}.
  DType dtype(const std::string& key) const;
  /// The tensor's element count (the product of shape()). Unknown key: Error{InvalidArgument}.
  int64_t numel(const std::string& key) const;
  /// The number of ranks that wrote it (1 for a plain file).
  int world_size() const { return world_size_; }

  /// Elements [offset, offset + length) of `key`, flattened row-major, as a new 1-D contiguous
  /// CPU tensor. Reads only the shard files and bytes that hold them (rounded out to the
  /// checksum chunks, 1 MiB by default, whose CRC32 it verifies). Nothing is returned unless
  /// every byte was read and verified: a damaged or truncated shard is Error{Io} naming the file
  /// and the key. An unknown key or a range outside [0, numel): Error{InvalidArgument}.
  Tensor read(const std::string& key, int64_t offset, int64_t length) const;
  /// The whole tensor, in its shape. Errors as read(key, offset, length).
  Tensor read(const std::string& key) const;

  /// Where a key's elements are stored (internal to the reader; exposed for tools and tests).
  struct Piece {
    int shard = 0;                 ///< index into the shard files
    std::string tensor;            ///< the tensor's name in that file
    int64_t offset = 0;            ///< first element of the key it holds
    int64_t length = 0;            ///< elements
    uint64_t file_offset = 0;      ///< where its bytes start in the file
    std::vector<uint32_t> crc32;   ///< per checksum chunk of its bytes; empty: not checksummed
  };
  /// The non-empty pieces of `key` in offset order. Unknown key: Error{InvalidArgument}.
  const std::vector<Piece>& pieces(const std::string& key) const;
  /// The shard files (absolute or relative as `path` was), indexed by Piece::shard.
  const std::vector<std::string>& shard_files() const { return shard_paths_; }

 private:
  struct TensorInfo {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    int64_t numel = 0;
    std::vector<Piece> pieces;
  };
  const TensorInfo& info(const std::string& key, const char* who) const;
  friend class ShardedCheckpointBuilder;

  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorInfo> tensors_;
  std::vector<std::string> shard_paths_;
  std::vector<uint64_t> shard_sizes_;
  uint64_t chunk_bytes_ = 0;  ///< checksum chunk size; 0: no checksums (a plain file)
  int world_size_ = 1;
};

/// Writes one ordinary safetensors file at `out_file` holding every whole tensor of the
/// checkpoint at `dir` (keys unchanged) and its metadata; with include_optimizer = false, keys
/// starting with "optim." are left out. Python's safetensors reads it, and so do
/// load_safetensors() and ShardedCheckpoint::open(). Streams one checksum-verified range at a
/// time (memory: a few MiB, whatever the checkpoint's size). Atomic like save_safetensors(): a
/// previous `out_file` stays intact on failure. `dir` may be a plain safetensors file too.
/// Throws the errors of ShardedCheckpoint::open() and read(), and Error{Io} when `out_file`
/// cannot be written.
void consolidate(const std::string& dir, const std::string& out_file, bool include_optimizer = true);

}  // namespace kirzl::io
