// Reading and writing tensors in the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON header, then the tensors' bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "kirzl/state_dict.hpp"

namespace kirzl::io {

/// Writes `tensors` (any kirzl dtype, any device, any layout) and string `metadata` to `path` as a
/// safetensors file. Tensors are written in StateDict order; non-contiguous tensors are written
/// as their contiguous copy, non-CPU tensors are copied to the CPU first. The tensors are only
/// read. The header is padded with spaces to a multiple of 8 bytes so that every tensor starts
/// 8-byte aligned.
///
/// Atomic: the bytes go to a uniquely named temporary file in the same directory, which is
/// fsync'ed and then renamed over `path`; the directory is fsync'ed after the rename. On failure
/// the temporary file is removed and a previous file at `path` stays as it was.
///
/// Throws Error{InvalidArgument} for an undefined tensor or a tensor named "__metadata__" (before
/// touching the file system); Error{Io} naming the path and the system's reason when the file
/// cannot be written. Thread-safe for distinct paths (the tensors must not be
/// written by another thread meanwhile).
void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Bounds applied when reading an untrusted file.
struct LoadOptions {
  /// Largest accepted JSON header (the format's reference implementation uses 100 MB).
  uint64_t max_header_bytes = 100'000'000;
};

/// What load_safetensors() returns: the tensors in file-header order and the "__metadata__" map.
struct SafetensorsFile {
  StateDict tensors;                            ///< name -> contiguous CPU tensor, in header order
  std::map<std::string, std::string> metadata;  ///< the "__metadata__" strings; empty when absent
};

/// Reads a safetensors file into new contiguous CPU tensors (owned by the result).
///
/// The file is untrusted: its size, the header length, the JSON, every entry's dtype, shape and
/// data_offsets (inside the buffer, matching the shape's byte size, not overlapping another
/// entry) and the names (unique) are all checked before any tensor is allocated. Every problem
/// throws Error{Io} naming the file, the entry and what is wrong; a well-formed entry of a dtype
/// kirzl has no tensor type for (I8, I16, BOOL, U32, U64, F8_*, C64, ...) or with more than
/// kMaxDims dimensions throws Error{Unsupported} naming it. Thread-safe.
SafetensorsFile load_safetensors(const std::string& path, const LoadOptions& options = {});

/// The JSON header of a safetensors file as stored (padding spaces removed), after checking the
/// header length but without validating the JSON. Throws Error{Io}.
std::string read_safetensors_header(const std::string& path, const LoadOptions& options = {});

/// The safetensors dtype string of a kirzl dtype: "F32", "BF16", "U8", ...
const char* safetensors_dtype_name(DType dtype);

}  // namespace kirzl::io
