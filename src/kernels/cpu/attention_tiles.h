// Internal (CPU): the pieces both CPU attention kernels (the T x T probabilities of attention.cpp
// and the flash kernels of flash_attention.cpp) build on: operands widened into zero-padded
// per-thread buffers, blocks of rows with their causal ranges, the softmax of one row, and one
// block of queries through the forward. Note [cpu attention loops].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/rows_times_matrix.h"
#include "kernels/cpu/vec_exp.h"

namespace kirzl::kernels::cpu::attention_tiles {

// dst[c * ld + r] = src[r * src_ld + c] for r < rows, c < cols, widened to A (dst's padding untouched).
template <typename A, typename T>
void transpose_widen(A* dst, int64_t ld, const T* src, int64_t src_ld, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld + r] = static_cast<A>(src[r * src_ld + c]);
}

// dst[r * ld + c] = src[r * src_ld + c], widened to A (dst's padding untouched).
template <typename A, typename T>
void widen_rows(A* dst, int64_t ld, const T* src, int64_t src_ld, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * ld + c] = static_cast<A>(src[r * src_ld + c]);
}

// dst[r * dst_ld + c] = src[r * ld + c], narrowed to T.
template <typename T, typename A>
void narrow_rows(T* dst, int64_t dst_ld, const A* src, int64_t ld, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * dst_ld + c] = static_cast<T>(src[r * ld + c]);
}

// A block of up to kRowBlock consecutive rows starting at `first`, and each row's k range.
struct Block {
  int64_t first;
  int rows;
  KRange ks[kRowBlock];
  int64_t last_end() const { return ks[rows - 1].end; }
};
inline Block block_of(int64_t first, int64_t T) {
  return {first, static_cast<int>(std::min<int64_t>(kRowBlock, T - first)), {}};
}
// Queries i attend to keys j in [0, i].
inline Block query_block(int64_t i0, int64_t T) {
  Block b = block_of(i0, T);
  for (int r = 0; r < b.rows; ++r) b.ks[r] = {0, i0 + r + 1};
  return b;
}
// Keys j are attended to by queries i in [j, T).
inline Block key_block(int64_t j0, int64_t T) {
  Block b = block_of(j0, T);
  for (int r = 0; r < b.rows; ++r) b.ks[r] = {j0 + r, T};
  return b;
}
// The rows of b, each over [0, n): a product over the head dim.
inline Block over(Block b, int64_t n) {
  for (int r = 0; r < b.rows; ++r) b.ks[r] = {0, n};
  return b;
}

// p[0, n) holds one query's raw scores; makes it softmax(scores * scale) and returns the natural
// log of the softmax's denominator, the row's log-sum-exp of the scaled scores.
template <typename A>
A softmax_row(A* p, int64_t n, A scale) {
  for (int64_t j = 0; j < n; ++j) p[j] *= scale;
  const A m = lane_max(p, n);
  for (int64_t j = 0; j < n; ++j) p[j] = vec_exp(p[j] - m);
  const A sum = lane_sum(p, n);
  for (int64_t j = 0; j < n; ++j) p[j] /= sum;
  return m + std::log(sum);
}

// One block of queries through the forward: q holds the block's rows ([rows, q_ld]); kt is k
// transposed ([D, kt_ld]), v is [T, v_ld], both zero-padded to whole column tiles. Writes each
// row's probabilities to p (row r at p + r * p_ld, up to its own last key; the columns past it,
// up to the block's last key, hold unspecified values), its log-sum-exp to lse[r], and p v to out
// ([rows, Dv]).
template <typename A>
void attend_query_block(const Block& blk, const A* q, int64_t q_ld, int64_t D, const A* kt, int64_t kt_ld,
                        const A* v, int64_t v_ld, int64_t Dv, A scale, A* p, int64_t p_ld, A* lse, A* out) {
  rows_times_matrix(p, p_ld, q, q_ld, over(blk, D).ks, blk.rows, kt, kt_ld, blk.last_end());
  for (int r = 0; r < blk.rows; ++r) lse[r] = softmax_row(p + r * p_ld, blk.ks[r].end, scale);
  rows_times_matrix(out, Dv, p, p_ld, blk.ks, blk.rows, v, v_ld, Dv);
}

}  // namespace kirzl::kernels::cpu::attention_tiles
