// Internal (CPU): a few rows times a matrix, with the partial sums held in registers.
//
// Note [rows times matrix]: loops such as `for k: for c: out[c] += x[k] * y[k][c]` keep `out` in
// memory, so each k waits for the previous k's store of the same element to be forwarded back
// (about 10 cycles a step); the vectorised FMAs then run at a fraction of their rate. Here a
// block of up to kRowBlock rows and kColTile<A> columns (two 64-byte vectors) is summed in a
// local array whose size the compiler knows, which it keeps in registers, and each y row loaded
// serves every row of the block. Every output element still adds its terms one at a time in
// ascending k, starting from zero: the same sum, in the same order, as the plain loop. Each term
// is added by mul_add (Note [explicit fma]), so that a sum split over several calls
// (rows_times_matrix_add) gives the bits of one.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/mul_add.h"
#include "kirzl/core/error.hpp"

namespace kirzl::kernels::cpu {

inline constexpr int kRowBlock = 4;  // rows_times_matrix handles 1 to 4 rows
template <typename A>
inline constexpr int64_t kColTile = 128 / static_cast<int64_t>(sizeof(A));

/// The smallest multiple of kColTile<A> that is >= n: the row length a `y` operand must be readable
/// to (pad with zeros).
template <typename A>
constexpr int64_t col_tile_padded(int64_t n) {
  return (n + kColTile<A> - 1) / kColTile<A> * kColTile<A>;
}

/// The row stride to give a matrix that rows_times_matrix reads as y, n columns wide: readable
/// to col_tile_padded<A>(n), plus one 64-byte line where that is a multiple of 512 bytes, so that
/// the stride is then an odd number of cache lines. With a power-of-two stride (T = 1024 or 2048
/// floats) the rows of one column tile fall into a few cache sets and evict each other (the
/// flash kernels 3-7 % slower from T = 256 without the line).
template <typename A>
constexpr int64_t tile_row_stride(int64_t n) {
  const int64_t padded = col_tile_padded<A>(n), line = 64 / static_cast<int64_t>(sizeof(A));
  return padded % (8 * line) == 0 ? padded + line : padded;
}

/// The k range [begin, end) of one row's sum.
struct KRange {
  int64_t begin, end;
};

namespace detail {

// acc[w] += x[k] * y[k * ldy + w] for k in [k0, k1), w < W.
template <typename A, int64_t W>
inline void accumulate_row(A (&acc)[W], const A* x, const A* y, int64_t ldy, int64_t k0, int64_t k1) {
  for (int64_t k = k0; k < k1; ++k) {
    const A xk = x[k];
    const A* yk = y + k * ldy;
    for (int64_t w = 0; w < W; ++w) acc[w] = mul_add(xk, yk[w], acc[w]);
  }
}

template <int R, bool Add, typename A>
void rows_times_matrix_block(A* out, int64_t ldo, const A* x, int64_t ldx, const KRange* ks, const A* y,
                             int64_t ldy, int64_t ncols) {
  constexpr int64_t W = kColTile<A>;
  int64_t lo = ks[0].begin, hi = ks[0].end;  // the k range every row shares
  for (int r = 1; r < R; ++r) {
    lo = std::max(lo, ks[r].begin);
    hi = std::min(hi, ks[r].end);
  }
  hi = std::max(hi, lo);
  for (int64_t c0 = 0; c0 < ncols; c0 += W) {
    const int64_t width = std::min(W, ncols - c0);
    A acc[R][W] = {};
    if constexpr (Add)
      for (int r = 0; r < R; ++r) std::copy(out + r * ldo + c0, out + r * ldo + c0 + width, acc[r]);
    const A* yc = y + c0;
    // Ascending k in every row: its own head, the shared range (each y row loaded once for all
    // rows), its own tail. A row never reads x or y outside its range.
    for (int r = 0; r < R; ++r) accumulate_row(acc[r], x + r * ldx, yc, ldy, ks[r].begin, std::min(lo, ks[r].end));
    for (int64_t k = lo; k < hi; ++k) {
      const A* yk = yc + k * ldy;
      for (int r = 0; r < R; ++r) {
        const A xr = x[r * ldx + k];
        for (int64_t w = 0; w < W; ++w) acc[r][w] = mul_add(xr, yk[w], acc[r][w]);
      }
    }
    for (int r = 0; r < R; ++r) accumulate_row(acc[r], x + r * ldx, yc, ldy, std::max(hi, ks[r].begin), ks[r].end);
    for (int r = 0; r < R; ++r) std::copy(acc[r], acc[r] + width, out + r * ldo + c0);
  }
}

template <bool Add, typename A>
void rows_times_matrix_rows(A* out, int64_t ldo, const A* x, int64_t ldx, const KRange* ks, int rows, const A* y,
                            int64_t ldy, int64_t ncols) {
  switch (rows) {
    case 1: return rows_times_matrix_block<1, Add>(out, ldo, x, ldx, ks, y, ldy, ncols);
    case 2: return rows_times_matrix_block<2, Add>(out, ldo, x, ldx, ks, y, ldy, ncols);
    case 3: return rows_times_matrix_block<3, Add>(out, ldo, x, ldx, ks, y, ldy, ncols);
    case 4: return rows_times_matrix_block<4, Add>(out, ldo, x, ldx, ks, y, ldy, ncols);
    default: KIRZL_FAIL(ErrorCode::Internal, "rows_times_matrix: ", rows, " rows, expected 1 to ", kRowBlock);
  }
}

}  // namespace detail

/// out[r * ldo + c] = sum over k in ks[r] of x[r * ldx + k] * y[k * ldy + c], for r < rows (1 to
/// kRowBlock) and c < ncols; each sum adds its terms in ascending k from zero (Note [rows times
/// matrix]). Every row k in a range of y must be readable up to column col_tile_padded<A>(ncols).
template <typename A>
void rows_times_matrix(A* out, int64_t ldo, const A* x, int64_t ldx, const KRange* ks, int rows, const A* y,
                       int64_t ldy, int64_t ncols) {
  detail::rows_times_matrix_rows<false>(out, ldo, x, ldx, ks, rows, y, ldy, ncols);
}

/// As rows_times_matrix, but each sum goes on from the value already in out: its terms are added
/// to out[r * ldo + c] one at a time in ascending k. So a sum split into consecutive k ranges,
/// one call each in ascending order, gives the same bits as one rows_times_matrix over them all.
template <typename A>
void rows_times_matrix_add(A* out, int64_t ldo, const A* x, int64_t ldx, const KRange* ks, int rows, const A* y,
                           int64_t ldy, int64_t ncols) {
  detail::rows_times_matrix_rows<true>(out, ldo, x, ldx, ks, rows, y, ldy, ncols);
}

}  // namespace kirzl::kernels::cpu
