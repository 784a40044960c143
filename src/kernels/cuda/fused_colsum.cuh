// Internal: deterministic column sums over rows for the fused kernels' parameter gradients
// (bias, LayerNorm weight/bias): rows are split into fixed chunks; each chunk's partial sum per
// column is written to an f32 scratch [chunks, N], then one thread per column adds the chunks in
// order. No atomics: the same input gives the same bits on every run.
#pragma once

#include "kernels/cuda/common.cuh"

namespace kirzl::kernels::cuda {

/// Rows per chunk for m rows: at most 256 chunks, at least 32 rows each.
inline int64_t colsum_rows_per_chunk(int64_t m) { return std::max<int64_t>(32, (m + 255) / 256); }

/// out[j] = sum over chunks c (in order) of partial[c * n + j] (partials in the accumulation
/// type P: f32, f64 for f64), rounded to T.
template <typename T, typename P>
__global__ void colsum_finish_kernel(T* __restrict__ out, const P* __restrict__ partial, int64_t chunks, int64_t n) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  P acc = 0;
  for (int64_t c = 0; c < chunks; ++c) acc += partial[c * n + j];
  out[j] = store_as<T>(acc);
}

}  // namespace kirzl::kernels::cuda
