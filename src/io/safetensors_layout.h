// The validated layout of a safetensors file without its tensors, and the bounded file reader
// behind load_safetensors() (internal): ShardedCheckpoint reads shard headers and byte ranges
// through them, with the same checks of untrusted input.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kirzl/core/error.hpp"
#include "kirzl/io/safetensors.hpp"

namespace kirzl::io::detail {

/// An untrusted string for an error message: quoted, control characters escaped, long ones cut.
std::string shown(std::string_view s);

/// "[2, 3]".
std::string shape_text(const std::vector<int64_t>& shape);

/// A regular file opened for reading at offsets (pread). Every failure throws Error{Io} (or the
/// code given) "<who>: '<path>': <what>".
class FileReader {
 public:
  FileReader(const std::string& path, const std::string& who);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  /// Reads exactly `n` bytes at `offset`; a short file is an error naming `what`.
  void read_at(uint64_t offset, void* dst, size_t n, const std::string& what);

  [[noreturn]] void fail(const std::string& what, ErrorCode code = ErrorCode::Io) const;
  [[noreturn]] void fail_errno(const std::string& what, int err) const;

 private:
  std::string path_, who_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

/// One tensor of a safetensors header, checked: a known dtype, a shape whose byte size fits
/// 64 bits and equals end - begin, [begin, end) inside the data buffer and overlapping no other.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  ///< byte offsets in the data buffer
};

/// A safetensors file's header, validated as load_safetensors() validates it.
struct SafetensorsLayout {
  uint64_t file_size = 0;
  uint64_t data_start = 0;  ///< 8 + header length: where the data buffer starts in the file
  std::vector<SafetensorsEntry> entries;  ///< in header order
  std::map<std::string, std::string> metadata;
};

/// Reads and validates `f`'s header (every check and message of load_safetensors(), including
/// Error{Unsupported} for a dtype or rank kirzl cannot hold) without reading any tensor.
SafetensorsLayout read_safetensors_layout(FileReader& f, const LoadOptions& options);

/// One tensor of a safetensors file to be written: its header entry and byte size.
struct SafetensorsPlanEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
};

/// How save_safetensors() lays out a file (Note [data order]).
struct SafetensorsPlan {
  std::string prefix;         ///< the 8-byte header length and the padded JSON header
  std::vector<size_t> order;  ///< the entries' indices in the order their bytes follow the prefix
};

/// The layout of a safetensors file holding `entries` (header in their order) and `metadata`.
/// Throws Error{InvalidArgument} "<who>: '<path>': ..." for names or metadata that are not UTF-8.
SafetensorsPlan plan_safetensors(const std::vector<SafetensorsPlanEntry>& entries,
                                 const std::map<std::string, std::string>& metadata, const std::string& who,
                                 const std::string& path);

}  // namespace kirzl::io::detail
