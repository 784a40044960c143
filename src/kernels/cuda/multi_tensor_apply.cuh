// Internal: launching one kernel over many tensors (the optimizers' fused steps, norms, scaling).
//
// Note [multi-tensor apply]
// A model has a few hundred parameters of very different sizes; one launch per tensor and op
// would cost more in launch latency than the update itself for the small ones. Instead the host
// packs (pointer..., size) of up to kMaxTensors tensors and a (tensor, chunk) pair for each of up
// to kMaxBlocks blocks into one struct passed *by value as the kernel argument* (sm_70+ and CUDA
// 12.1+ allow 32 KiB of parameters; __grid_constant__ keeps it in the parameter bank instead of
// copying it to local memory). Block b processes chunk block_chunk[b] (kChunk elements) of tensor
// block_tensor[b]. When either table is full the kernel is launched and packing continues; a
// tensor cut in the middle continues in slot 0 of the next launch. GPT-2 124M (148 tensors, about
// 1900 chunks) takes one launch per op. Per-tensor scalars (bias corrections) and a global chunk
// index (for per-chunk partial results of reductions) travel in the same struct. Threads handle
// kIlp consecutive elements: one vector load per list where every pointer of the tensor is
// aligned to kIlp elements, element by element otherwise and in the tail.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace kirzl::kernels::cuda::mt {

inline constexpr int kThreads = 512;
inline constexpr int64_t kChunk = 65536;  // elements per block; a multiple of kIlp
inline constexpr int kIlp = 4;

template <int D, int NS>
struct Meta {
  static constexpr int kMaxTensors = 160;
  static constexpr int kMaxBlocks = 2048;
  void* ptrs[D][kMaxTensors];
  int64_t sizes[kMaxTensors];
  double scalars[NS > 0 ? NS : 1][kMaxTensors];
  int32_t first_chunk[kMaxTensors];  // global chunk index (over the whole list) of the tensor's chunk 0
  uint16_t block_tensor[kMaxBlocks];
  int32_t block_chunk[kMaxBlocks];
};

/// Launches issued so far (multi_tensor_launch_count()).
std::atomic<int64_t>& launch_counter();

/// One entry of a list: D pointers (nullptr where a list is absent), element count, scalars.
template <int D, int NS>
struct Entry {
  std::array<void*, D> ptrs{};
  int64_t size = 0;
  std::array<double, (NS > 0 ? NS : 1)> scalars{};
};

/// Total chunks of `entries` (the size of a per-chunk partials buffer).
template <int D, int NS>
int64_t total_chunks(const std::vector<Entry<D, NS>>& entries) {
  int64_t c = 0;
  for (const auto& e : entries) c += (e.size + kChunk - 1) / kChunk;
  return c;
}

/// Packs `entries` into Meta structs and calls launch(meta, num_blocks) for each (see the Note).
/// Entries with size 0 are skipped (they still take no chunk index).
template <int D, int NS, typename Launch>
void apply(const std::vector<Entry<D, NS>>& entries, Launch&& launch) {
  using M = Meta<D, NS>;
  static_assert(sizeof(M) <= 32000, "multi-tensor metadata must fit the 32 KiB kernel parameter space");
  M meta;
  int nt = 0, nb = 0;
  int64_t global_chunk = 0;
  auto fire = [&] {
    launch(meta, nb);
    launch_counter().fetch_add(1, std::memory_order_relaxed);
    nb = 0;
  };
  for (const auto& e : entries) {
    if (e.size == 0) continue;
    for (int d = 0; d < D; ++d) meta.ptrs[d][nt] = e.ptrs[d];
    meta.sizes[nt] = e.size;
    for (int s = 0; s < (NS > 0 ? NS : 1); ++s) meta.scalars[s][nt] = e.scalars[s];
    meta.first_chunk[nt] = static_cast<int32_t>(global_chunk);
    const int64_t chunks = (e.size + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      meta.block_tensor[nb] = static_cast<uint16_t>(nt);
      meta.block_chunk[nb] = static_cast<int32_t>(c);
      ++nb;
      const bool tensor_done = c == chunks - 1;
      if (nb == M::kMaxBlocks || (tensor_done && nt + 1 == M::kMaxTensors)) {
        fire();
        if (tensor_done) {
          nt = -1;
        } else {  // the rest of this tensor continues in slot 0
          for (int d = 0; d < D; ++d) meta.ptrs[d][0] = meta.ptrs[d][nt];
          meta.sizes[0] = meta.sizes[nt];
          for (int s = 0; s < (NS > 0 ? NS : 1); ++s) meta.scalars[s][0] = meta.scalars[s][nt];
          meta.first_chunk[0] = meta.first_chunk[nt];
          nt = 0;
        }
      }
    }
    global_chunk += chunks;
    ++nt;
  }
  if (nb > 0) fire();
}

/// kIlp elements of a list starting at element i of a chunk holding n: one vector load when
/// `vec`, else element by element (zeros past n).
template <typename T>
struct alignas(sizeof(T) * kIlp) Pack {
  T v[kIlp];
};

template <typename A, typename T>
__device__ __forceinline__ void load(A (&dst)[kIlp], const T* src, int64_t i, int64_t n, bool vec) {
  if (vec) {
    Pack<T> p = *reinterpret_cast<const Pack<T>*>(src + i);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) dst[k] = static_cast<A>(load_acc(p.v[k]));
  } else {
#pragma unroll
    for (int k = 0; k < kIlp; ++k) dst[k] = i + k < n ? static_cast<A>(load_acc(src[i + k])) : A(0);
  }
}

template <typename T, typename A>
__device__ __forceinline__ void store(T* dst, const A (&src)[kIlp], int64_t i, int64_t n, bool vec) {
  if (vec) {
    Pack<T> p;
#pragma unroll
    for (int k = 0; k < kIlp; ++k) p.v[k] = store_as<T>(src[k]);
    *reinterpret_cast<Pack<T>*>(dst + i) = p;
  } else {
#pragma unroll
    for (int k = 0; k < kIlp; ++k)
      if (i + k < n) dst[i + k] = store_as<T>(src[k]);
  }
}

/// True when p (or nullptr) allows vector access of kIlp elements of T at chunk starts.
template <typename T>
__device__ __forceinline__ bool aligned(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) % (sizeof(T) * kIlp)) == 0;
}

/// Sum over the block of one value per thread in a fixed tree order (deterministic). Every
/// thread gets the result. `scratch` holds kThreads / 32 values.
template <typename R, typename Op>
__device__ R block_reduce(R v, R* scratch, Op op) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : R(0);
#pragma unroll
    for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace kirzl::kernels::cuda::mt
