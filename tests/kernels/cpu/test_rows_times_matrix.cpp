// rows_times_matrix (Note [rows times matrix]): every row block size, column tails, per-row k
// ranges (heads, tails, disjoint, empty), and values outside a row's range or past the output's
// columns that must never reach it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/rows_times_matrix.h"
#include "kirzl/core/error.hpp"

using kirzl::kernels::cpu::col_tile_padded;
using kirzl::kernels::cpu::KRange;
using kirzl::kernels::cpu::kRowBlock;
using kirzl::kernels::cpu::rows_times_matrix;
using kirzl::kernels::cpu::rows_times_matrix_add;

namespace {

// A case: rows x K times K x ncols, y's rows padded to whole tiles and ldo > ncols. Everything a
// row must not read (x outside its range, y's rows outside it, y's padding) is NaN, and the
// output's columns past ncols hold a sentinel that must survive.
template <typename A>
void check_case(int rows, int64_t ncols, const std::vector<KRange>& ks, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << rows << " rows, " << ncols << " columns, seed " << seed);
  int64_t K = 0;
  for (const KRange& r : ks) K = std::max(K, r.end);
  const int64_t ldx = K + 3, ldy = col_tile_padded<A>(ncols) + 5, ldo = ncols + 7;
  const A nan = std::numeric_limits<A>::quiet_NaN(), sentinel = A(-12345);
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<A> x(rows * ldx, nan), y((K + 1) * ldy, nan), out(rows * ldo, sentinel);
  for (int r = 0; r < rows; ++r)
    for (int64_t k = ks[r].begin; k < ks[r].end; ++k) x[r * ldx + k] = static_cast<A>(dist(gen));
  // y's rows that some row reads, up to the padded width; the padding past ncols is NaN unless
  // read (rows_times_matrix reads it, but it must not reach the output).
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < col_tile_padded<A>(ncols); ++c)
      y[k * ldy + c] = c < ncols ? static_cast<A>(dist(gen)) : nan;
  // A y row that no range includes is poisoned whole.
  for (int64_t k = 0; k < K; ++k) {
    bool used = false;
    for (int r = 0; r < rows; ++r) used = used || (k >= ks[r].begin && k < ks[r].end);
    if (!used)
      for (int64_t c = 0; c < ldy; ++c) y[k * ldy + c] = nan;
  }
  rows_times_matrix(out.data(), ldo, x.data(), ldx, ks.data(), rows, y.data(), ldy, ncols);
  for (int r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < ncols; ++c) {
      long double ref = 0, mag = 0;
      for (int64_t k = ks[r].begin; k < ks[r].end; ++k) {
        ref += static_cast<long double>(x[r * ldx + k]) * y[k * ldy + c];
        mag += std::fabs(static_cast<long double>(x[r * ldx + k]) * y[k * ldy + c]);
      }
      const double tol = 2.0 * static_cast<double>(ks[r].end - ks[r].begin + 1) * std::numeric_limits<A>::epsilon() *
                         static_cast<double>(mag);
      ASSERT_NEAR(static_cast<double>(out[r * ldo + c]), static_cast<double>(ref), tol) << "row " << r << " col " << c;
    }
    for (int64_t c = ncols; c < ldo; ++c) ASSERT_EQ(out[r * ldo + c], sentinel) << "row " << r << " col " << c;
  }
}

template <typename A>
void check_all_shapes() {
  const int64_t W = kirzl::kernels::cpu::kColTile<A>;
  uint32_t seed = 1;
  for (int rows = 1; rows <= kRowBlock; ++rows)
    for (int64_t ncols : {int64_t{1}, W - 1, W, W + 1, 2 * W + 3}) {
      // The same range for every row; causal ranges [0, i + 1) of consecutive queries; key
      // ranges [j, T) of consecutive keys; staggered and disjoint; one empty row.
      std::vector<KRange> same(rows, KRange{0, 37}), causal(rows), keys(rows), disjoint(rows), empty(rows, KRange{2, 9});
      for (int r = 0; r < rows; ++r) {
        causal[r] = {0, 13 + r};
        keys[r] = {5 + r, 40};
        disjoint[r] = {10 * r, 10 * r + 4 + r};
      }
      empty[rows - 1] = {6, 6};
      for (const auto& ks : {same, causal, keys, disjoint, empty}) check_case<A>(rows, ncols, ks, seed++);
    }
}

TEST(RowsTimesMatrix, FloatMatchesLongDoubleOverEveryShape) { check_all_shapes<float>(); }
TEST(RowsTimesMatrix, DoubleMatchesLongDoubleOverEveryShape) { check_all_shapes<double>(); }

// Each sum adds its terms in ascending k from zero: the result equals the plain loop's in the same
// order. (Compared with a volatile accumulator so that neither side's compiler reorders the sum.)
TEST(RowsTimesMatrix, AddsInAscendingOrder) {
  // Terms whose sum depends on the order: 1e8, 1, -1e8, 1 in float gives 1 in ascending order
  // (1e8 + 1 rounds to 1e8), 2 in others.
  const float xs[4] = {1e8f, 1.f, -1e8f, 1.f};
  const int64_t W = kirzl::kernels::cpu::kColTile<float>;
  std::vector<float> y(4 * W, 1.f), out(kRowBlock * W, 0.f), x(kRowBlock * 4);
  for (int r = 0; r < kRowBlock; ++r)
    for (int k = 0; k < 4; ++k) x[r * 4 + k] = xs[k];
  const KRange ks[kRowBlock] = {{0, 4}, {0, 4}, {0, 4}, {0, 4}};
  rows_times_matrix(out.data(), W, x.data(), 4, ks, kRowBlock, y.data(), W, W);
  volatile float plain = 0;
  for (float t : xs) plain = plain + t;
  for (float v : out) ASSERT_EQ(v, plain);
  ASSERT_EQ(plain, 1.f);
}

// rows_times_matrix_add goes on from the value in out: a sum split into consecutive k ranges, one
// call each in ascending order (the first a plain rows_times_matrix), gives the bits of one call
// over the whole range, for every row count, column tail and split point (one split per row
// differing, some empty); columns past ncols keep their sentinel.
template <typename A>
void check_split_sums() {
  const int64_t W = kirzl::kernels::cpu::kColTile<A>;
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> dist(-1, 1);
  for (int rows = 1; rows <= kRowBlock; ++rows)
    for (int64_t ncols : {int64_t{1}, W - 1, W, W + 1, 2 * W + 3}) {
      SCOPED_TRACE(::testing::Message() << rows << " rows, " << ncols << " columns");
      const int64_t K = 45, ldx = K + 2, ldy = col_tile_padded<A>(ncols) + 3, ldo = ncols + 5;
      const A sentinel = A(-777);
      std::vector<A> x(rows * ldx), y(K * ldy), whole(rows * ldo, sentinel), split(rows * ldo, sentinel);
      for (A& e : x) e = static_cast<A>(dist(gen));
      for (A& e : y) e = static_cast<A>(dist(gen));
      // Row r sums over [r, K - r); the calls split it at 11 and 30, so a row's middle part may be empty.
      std::vector<KRange> all(rows), first(rows), second(rows), third(rows);
      for (int r = 0; r < rows; ++r) {
        const int64_t b = r, e = K - r, m1 = std::clamp<int64_t>(11 + r, b, e), m2 = std::clamp<int64_t>(30, m1, e);
        all[r] = {b, e};
        first[r] = {b, m1};
        second[r] = {m1, m2};
        third[r] = {m2, e};
      }
      rows_times_matrix(whole.data(), ldo, x.data(), ldx, all.data(), rows, y.data(), ldy, ncols);
      rows_times_matrix(split.data(), ldo, x.data(), ldx, first.data(), rows, y.data(), ldy, ncols);
      rows_times_matrix_add(split.data(), ldo, x.data(), ldx, second.data(), rows, y.data(), ldy, ncols);
      rows_times_matrix_add(split.data(), ldo, x.data(), ldx, third.data(), rows, y.data(), ldy, ncols);
      for (int64_t i = 0; i < rows * ldo; ++i) ASSERT_EQ(split[i], whole[i]) << "element " << i;
      for (int r = 0; r < rows; ++r) ASSERT_EQ(split[r * ldo + ncols], sentinel);
    }
}

TEST(RowsTimesMatrix, FloatSplitSumsGiveTheSameBits) { check_split_sums<float>(); }
TEST(RowsTimesMatrix, DoubleSplitSumsGiveTheSameBits) { check_split_sums<double>(); }

// The add goes on from out's value, then its terms in ascending k: 1e8 then 1, -1e8, 1 gives 1.
TEST(RowsTimesMatrix, AddStartsFromTheOutputsValue) {
  const float xs[3] = {1.f, -1e8f, 1.f};
  const int64_t W = kirzl::kernels::cpu::kColTile<float>;
  std::vector<float> y(3 * W, 1.f), out(W, 1e8f), x(xs, xs + 3);
  const KRange ks[1] = {{0, 3}};
  rows_times_matrix_add(out.data(), W, x.data(), 3, ks, 1, y.data(), W, W);
  for (float v : out) ASSERT_EQ(v, 1.f);
}

TEST(RowsTimesMatrix, MoreRowsThanABlockIsAnError) {
  std::vector<float> buf(1024, 0.f);
  const KRange ks[kRowBlock + 1] = {};
  EXPECT_THROW(rows_times_matrix(buf.data(), 1, buf.data(), 1, ks, kRowBlock + 1, buf.data(), 1, 1), kirzl::Error);
  EXPECT_THROW(rows_times_matrix_add(buf.data(), 1, buf.data(), 1, ks, kRowBlock + 1, buf.data(), 1, 1), kirzl::Error);
}

}  // namespace
