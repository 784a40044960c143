// Internal: the ring algorithm — all-reduce as a reduce-scatter followed by an all-gather, each
// n - 1 steps around the ring of ranks, over any point-to-point Transport. See Note [ring all-reduce].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "comm/transport.h"
#include "kirzl/comm.hpp"

namespace kirzl::comm::detail {

// The receive buffer of the ring's reducing steps, kept by a communicator across collectives so
// that an all-reduce neither allocates nor zero-fills it per call: grown on demand, never cleared.
// After a failed collective the transport may still write into it, so its owner drops it then
// (the transport keeps the old buffer alive, Transport::keep_alive).
//
// Note [ring scratch alignment]: the buffer is aligned like tensor storage (kRingScratchAlignment,
// 64 bytes). Open MPI's shared-memory transport copies a large message with one kernel copy from
// the sender's buffer (a tensor: 64-byte aligned) into the receive buffer; from plain `new[]`
// (16 bytes past a 64-byte line) that copy ran misaligned. Measured at 2 ranks
// (bench/RESULTS.md, 2026-12-07, 22:00): 4 MiB 47-52 us faster in two interleaved series, 1 MiB
// within noise.
inline constexpr size_t kRingScratchAlignment = 64;
struct RingScratch {
  std::shared_ptr<std::byte[]> data;
  int64_t bytes = 0;
};

struct RingOptions {
  // Largest message: each segment travels in pieces of at most this many bytes (rounded down to
  // whole elements, at least one), all posted at once, so that a received piece is reduced while
  // the next ones arrive.
  int64_t piece_bytes = int64_t{512} << 10;
  // The caller's scratch to reuse; null: one per call.
  RingScratch* scratch = nullptr;
};

// The ring splits `count` elements into size() segments; segment k is [ring_segment_begin(k),
// ring_segment_begin(k + 1)) — sizes differ by at most one element.
int64_t ring_segment_begin(int64_t count, int size, int k);
// After ring_reduce_scatter, rank `rank` holds the fully reduced segment (rank + 1) % size.
int ring_reduced_segment(int rank, int size);

// In place over `data` (`count` elements of `dtype`, the same count on every rank): afterwards
// segment ring_reduced_segment(rank) holds the reduction over all ranks; the other segments hold
// partial reductions. Avg reduces as Sum (the caller divides). Throws what the transport throws.
void ring_reduce_scatter(Transport& t, void* data, int64_t count, DType dtype, ReduceOp op, const RingOptions& options = {});
// In place: every rank contributes its segment ring_reduced_segment(rank) and receives the others.
void ring_all_gather(Transport& t, void* data, int64_t count, DType dtype, const RingOptions& options = {});
// ring_reduce_scatter then ring_all_gather: every rank ends with the same bits (each segment is
// reduced once, by one rank, then copied).
void ring_all_reduce(Transport& t, void* data, int64_t count, DType dtype, ReduceOp op, const RingOptions& options = {});

// On one node, all-reduces of at least this many bytes use the ring (Note [mpi all-reduce choice]);
// KIRZL_MPI_RING_BYTES changes it (32 KiB).
int64_t ring_min_bytes();
// The ring's largest message over MPI (RingOptions::piece_bytes); KIRZL_MPI_RING_PIECE_BYTES
// changes it (512 KiB).
int64_t ring_piece_bytes();
inline bool use_ring(int size, int64_t bytes) { return size > 1 && bytes >= ring_min_bytes(); }

}  // namespace kirzl::comm::detail
