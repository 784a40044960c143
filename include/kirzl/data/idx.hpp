// Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
#pragma once

#include <cstdint>
#include <string>

#include "kirzl/tensor.hpp"

namespace kirzl::data {

/// Limits of read_idx, which treats its file as untrusted: `read_idx(path, {.max_bytes = 1 << 20})`.
struct IdxReadOptions {
  /// Largest payload (elements x element size) the reader accepts; bigger headers are rejected
  /// before anything is allocated.
  int64_t max_bytes = int64_t{1} << 32;
};

/// Reads an IDX file (`.gz` or not — detected from the content) into a CPU tensor of the file's
/// element type: 0x08 -> u8, 0x0B -> i16 is unsupported, 0x0C -> i32, 0x0D -> f32, 0x0E -> f64
/// (big-endian values are converted). The file is untrusted: the magic number, the number of
/// dimensions (1..8), every extent and the payload size are checked against `options.max_bytes`
/// and against the file's real length (for gzip, its trailer) before the tensor is allocated, and a
/// short or over-long payload is an error. Every failure is Error{Io} naming the file and the
/// problem; a missing file says so.
Tensor read_idx(const std::string& path, const IdxReadOptions& options = {});

}  // namespace kirzl::data
