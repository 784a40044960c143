// Internal: CRC-32 as zlib computes it (reflected polynomial 0xEDB88320, initial value and final
// xor 0xFFFFFFFF), the checksum of the sharded checkpoints. See Note [crc32 folding].
#pragma once

#include <cstddef>
#include <cstdint>

namespace kirzl::io::detail {

// zlib's crc32(0, data, n) for any n, with carry-less multiplication (PCLMULQDQ) where the CPU
// has it and zlib's own code elsewhere.
uint32_t crc32(const void* data, size_t n);

// zlib's code alone (the reference of the tests, and the fallback).
uint32_t crc32_zlib(const void* data, size_t n);

// True when crc32() folds with PCLMULQDQ on this CPU.
bool crc32_uses_clmul();

}  // namespace kirzl::io::detail
