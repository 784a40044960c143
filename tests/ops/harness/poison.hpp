// Poisoned allocations for the op table: an op allocates its outputs itself (through the public
// API), so the harness cannot fill them before the kernel runs. Instead it fills the caching
// allocator's free blocks: it allocates blocks of the sizes the op is about to ask for (and a
// whole small-pool segment), fills them with 0xFF bytes, and frees them; the allocator hands those
// blocks back for the op's outputs. See Note [poisoned allocations].
#pragma once

#include <cstddef>
#include <vector>

#include <kirzl/kirzl.hpp>

namespace kirzl::testing::op_table {

// Note [poisoned allocations]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// 0xFF in every byte is a NaN in f64, f32, bf16 and f16, -1 in the signed integers and 255 in
// u8, so no op produces it by accident for an element it should write: an index (argmax) is
// never -1, a comparison never 255. The CUDA caching allocator serves a request best-fit from the
// free blocks of the same stream (Note [cuda caching allocator]), so a block of exactly the size
// the op asks for is reused; requests up to 1 MiB are carved from 2 MiB segments, which the
// flood fills whole. The CPU allocator caches blocks of 64 KiB and more by size class (Note [cpu
// caching allocator]), so on the CPU only large outputs are poisoned this way; the harness's own
// test (test_poison.cpp) shows the mechanism catching an unwritten element there.

/// Fills free allocator blocks of `device` with 0xFF bytes: one block of each of `nbytes`, and
/// (flood) two 1 MiB blocks, one small-pool segment. Returns after the fill is enqueued.
inline void poison_free_blocks(Device device, const std::vector<size_t>& nbytes, bool flood = true) {
  std::vector<Tensor> held;  // all alive at once, so that each is a distinct block
  auto take = [&](size_t bytes) {
    if (bytes == 0) return;
    Tensor t = empty({static_cast<int64_t>(bytes)}, {.dtype = DType::u8, .device = device});
    t.fill_(255);
    held.push_back(t);
  };
  for (size_t b : nbytes) take(b);
  if (flood) take(size_t{1} << 20), take(size_t{1} << 20);
  // `held` dies here: the poisoned blocks return to the cache for the op's next allocations.
}

/// Bytes of each tensor, for poison_free_blocks.
inline std::vector<size_t> byte_sizes(const std::vector<Tensor>& ts) {
  std::vector<size_t> r;
  for (const Tensor& t : ts)
    if (t.defined()) r.push_back(static_cast<size_t>(t.numel()) * t.element_size());
  return r;
}

}  // namespace kirzl::testing::op_table
