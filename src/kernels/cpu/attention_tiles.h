// Internal (CPU): the pieces both CPU attention kernels (the T x T probabilities of attention.cpp
// and the flash kernels of flash_attention.cpp) build on: operands widened into zero-padded
// per-thread buffers, blocks of rows with their causal ranges, the softmax of one row, and the
// key-side gradients. Note [cpu attention loops].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

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
// Every row over [0, n): a product over the head dim.
inline Block full_block(int64_t i0, int64_t T, int64_t n) {
  Block b = block_of(i0, T);
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

// The gradients of every key and value of one (batch, head) from dS and P, given row by row
// (query i's rows at ds + i * ds_ld and p + i * p_ld, filled for keys j <= i), q and g widened ([T, q_ld] / [T, g_ld],
// zero-padded to whole column tiles): dk_j = sum over i >= j of dS_ij q_i and dv_j = sum over
// i >= j of P_ij g_i, in ascending i. `write_k(j0, rows, tile)` / `write_v` store rows j0 ..
// j0 + rows - 1 from tile ([rows, D] / [rows, Dv]); either may be empty (that gradient unwanted).
template <typename A>
struct KeyGradients {
  using Write = std::function<void(int64_t j0, int rows, const A* tile)>;
  std::vector<A> dst, pt, tile;  // dS and P transposed ([T, T], key j's row over queries i)

  void run(const A* ds, int64_t ds_ld, const A* p, int64_t p_ld, const A* q, int64_t q_ld, const A* g, int64_t g_ld,
           int64_t T, int64_t D, int64_t Dv, const Write& write_k, const Write& write_v) {
    dst.resize(T * T);
    pt.resize(T * T);
    tile.resize(kRowBlock * std::max(D, Dv));
    // Only the causal triangle (i >= j) of the transposes is ever read.
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        dst[j * T + i] = ds[i * ds_ld + j];
        pt[j * T + i] = p[i * p_ld + j];
      }
    for (int64_t j0 = 0; j0 < T; j0 += kRowBlock) {
      const Block blk = key_block(j0, T);
      if (write_k) {
        rows_times_matrix(tile.data(), D, dst.data() + j0 * T, T, blk.ks, blk.rows, q, q_ld, D);
        write_k(j0, blk.rows, tile.data());
      }
      if (write_v) {
        rows_times_matrix(tile.data(), Dv, pt.data() + j0 * T, T, blk.ks, blk.rows, g, g_ld, Dv);
        write_v(j0, blk.rows, tile.data());
      }
    }
  }
};

}  // namespace kirzl::kernels::cpu::attention_tiles
