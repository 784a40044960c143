// CPU causal attention (materialising the probabilities): loops per (batch, head) written to
// vectorise, Note [cpu attention loops].
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/cpu/rows_times_matrix.h"
#include "kernels/cpu/vec_exp.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

// Note [cpu attention loops]: every product of a block of rows with a matrix runs in
// rows_times_matrix (Note [rows times matrix]), over operands widened to the accumulation type
// and laid out as the product needs them (k and v transposed for the scores and dP):
//   forward, per block of queries i:  scores q_i k^T, then out_i = p_i v;
//   backward, per block of queries:   dP_i = g_i v^T, dS_i = P_i (dP_i - P_i . dP_i) scale,
//                                     dq_i = dS_i k;
//   backward, per block of keys j:    dk_j = dS^T_j q, dv_j = P^T_j g (over queries i >= j).
// Each of those sums adds its terms in ascending order from zero, as the plain dot products of
// the first version did; the softmax's exponentials are vec_exp's (Note [vec_exp]) and its max,
// its sum and the backward's P_i . dP_i run in lanes (row_reduce.h), all in a fixed order. Sums run over the causal range only (keys j <= i, queries i >= j), so a non-finite
// value outside it cannot reach a row. Parallel over batches only, so every sum runs in one fixed
// order whatever the thread count.

namespace {

// dst[c * ld + r] = src[r * cols + c] for r < rows, c < cols, widened to A (dst's padding untouched).
template <typename A, typename T>
void transpose_widen(A* dst, int64_t ld, const T* src, int64_t src_ld, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld + r] = static_cast<A>(src[r * src_ld + c]);
}

// dst[r * ld + c] = src[r * cols + c], widened to A (dst's padding untouched).
template <typename A, typename T>
void widen_rows(A* dst, int64_t ld, const T* src, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * ld + c] = static_cast<A>(src[r * cols + c]);
}

template <typename T, typename A>
void narrow(T* dst, const A* src, int64_t n) {
  for (int64_t x = 0; x < n; ++x) dst[x] = static_cast<T>(src[x]);
}

// A block of up to kRowBlock consecutive rows starting at `first`, and each row's k range.
struct Block {
  int64_t first;
  int rows;
  KRange ks[kRowBlock];
};
// Queries i: keys j in [0, i]. Keys j: queries i in [j, T).
Block query_block(int64_t i0, int64_t T) {
  Block b{i0, static_cast<int>(std::min<int64_t>(kRowBlock, T - i0)), {}};
  for (int r = 0; r < b.rows; ++r) b.ks[r] = {0, i0 + r + 1};
  return b;
}
Block key_block(int64_t j0, int64_t T) {
  Block b{j0, static_cast<int>(std::min<int64_t>(kRowBlock, T - j0)), {}};
  for (int r = 0; r < b.rows; ++r) b.ks[r] = {j0 + r, T};
  return b;
}
// Every row over [0, n).
Block full_block(int64_t i0, int64_t T, int64_t n) {
  Block b{i0, static_cast<int>(std::min<int64_t>(kRowBlock, T - i0)), {}};
  for (int r = 0; r < b.rows; ++r) b.ks[r] = {0, n};
  return b;
}

}  // namespace

void attention_forward(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2), Dv = v.size(2);
  dispatch_floating(q.dtype(), "causal_attention", [&]<typename T_>() {
    using A = acc_t<T_>;
    const T_ *qp = q.data<T_>(), *kp = k.data<T_>(), *vp = v.data<T_>();
    T_* op = out.data<T_>();
    A* pp = probs.data<A>();
    const A sc = static_cast<A>(scale);
    const int64_t Tp = col_tile_padded<A>(T), Dvp = col_tile_padded<A>(Dv);
    parallel_rows(B, T * T * (D + Dv), [&](int64_t b0, int64_t b1) {
      // k as [D, Tp] and v as [T, Dvp], zero-padded: rows_times_matrix reads whole column tiles.
      std::vector<A> kt(D * Tp, A(0)), vw(T * Dvp, A(0)), qi(kRowBlock * D), oi(kRowBlock * Dv);
      for (int64_t b = b0; b < b1; ++b) {
        transpose_widen(kt.data(), Tp, kp + b * T * D, D, T, D);
        widen_rows(vw.data(), Dvp, vp + b * T * Dv, T, Dv);
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          const Block over_d = full_block(i0, T, D);
          A* p0 = pp + (b * T + i0) * T;
          widen_rows(qi.data(), D, qp + (b * T + i0) * D, blk.rows, D);
          // Scores of every row up to the block's last key; the ones past a row's own are zeroed.
          rows_times_matrix(p0, T, qi.data(), D, over_d.ks, blk.rows, kt.data(), Tp, blk.ks[blk.rows - 1].end);
          for (int r = 0; r < blk.rows; ++r) {
            A* p = p0 + r * T;
            const int64_t n = blk.ks[r].end;
            for (int64_t j = 0; j < n; ++j) p[j] *= sc;
            const A m = lane_max(p, n);
            for (int64_t j = 0; j < n; ++j) p[j] = vec_exp(p[j] - m);
            const A sum = lane_sum(p, n);
            for (int64_t j = 0; j < n; ++j) p[j] /= sum;
            std::fill(p + n, p + T, A(0));  // masked: exactly zero probability
          }
          rows_times_matrix(oi.data(), Dv, p0, T, blk.ks, blk.rows, vw.data(), Dvp, Dv);
          narrow(op + (b * T + i0) * Dv, oi.data(), blk.rows * Dv);
        }
      }
    });
  });
}

void attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& probs, const Tensor& q,
                        const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2), Dv = v.size(2);
  dispatch_floating(q.dtype(), "causal_attention_backward", [&]<typename T_>() {
    using A = acc_t<T_>;
    const T_ *qp = q.data<T_>(), *kp = k.data<T_>(), *vp = v.data<T_>(), *gp = g.data<T_>();
    const A* pp = probs.data<A>();
    T_* gqp = gq.defined() ? gq.data<T_>() : nullptr;
    T_* gkp = gk.defined() ? gk.data<T_>() : nullptr;
    T_* gvp = gv.defined() ? gv.data<T_>() : nullptr;
    const A sc = static_cast<A>(scale);
    const int64_t Tp = col_tile_padded<A>(T), Dp = col_tile_padded<A>(D), Dvp = col_tile_padded<A>(Dv);
    parallel_rows(B, T * T * (D + Dv), [&](int64_t b0, int64_t b1) {
      // Zero-padded to whole column tiles: v as [Dv, Tp]; k, q and g as [T, Dp] / [T, Dvp].
      std::vector<A> vt(Dv * Tp, A(0)), kw(T * Dp, A(0)), qw(T * Dp, A(0)), gw(T * Dvp, A(0));
      // dS row by row ([T, Tp]), then dS and P transposed ([T, T]: key j's row over queries i).
      std::vector<A> ds(T * Tp, A(0)), dst(T * T), pt(T * T), tile(kRowBlock * std::max(D, Dv));
      for (int64_t b = b0; b < b1; ++b) {
        transpose_widen(vt.data(), Tp, vp + b * T * Dv, Dv, T, Dv);
        widen_rows(kw.data(), Dp, kp + b * T * D, T, D);
        widen_rows(qw.data(), Dp, qp + b * T * D, T, D);
        widen_rows(gw.data(), Dvp, gp + b * T * Dv, T, Dv);
        const A* pb = pp + b * T * T;
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          const Block over_dv = full_block(i0, T, Dv);
          A* s0 = ds.data() + i0 * Tp;
          rows_times_matrix(s0, Tp, gw.data() + i0 * Dvp, Dvp, over_dv.ks, blk.rows, vt.data(), Tp,
                            blk.ks[blk.rows - 1].end);
          for (int r = 0; r < blk.rows; ++r) {
            const A* p = pb + (i0 + r) * T;
            A* s = s0 + r * Tp;
            const int64_t n = blk.ks[r].end;
            const A dot = lane_dot(p, s, n);
            for (int64_t j = 0; j < n; ++j) s[j] = p[j] * (s[j] - dot) * sc;
          }
          if (gqp) {
            rows_times_matrix(tile.data(), D, s0, Tp, blk.ks, blk.rows, kw.data(), Dp, D);
            narrow(gqp + (b * T + i0) * D, tile.data(), blk.rows * D);
          }
        }
        if (!gkp && !gvp) continue;
        // Only the causal triangle (i >= j) of the transposes is ever read.
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j <= i; ++j) {
            dst[j * T + i] = ds[i * Tp + j];
            pt[j * T + i] = pb[i * T + j];
          }
        for (int64_t j0 = 0; j0 < T; j0 += kRowBlock) {
          const Block blk = key_block(j0, T);
          if (gkp) {
            rows_times_matrix(tile.data(), D, dst.data() + j0 * T, T, blk.ks, blk.rows, qw.data(), Dp, D);
            narrow(gkp + (b * T + j0) * D, tile.data(), blk.rows * D);
          }
          if (gvp) {
            rows_times_matrix(tile.data(), Dv, pt.data() + j0 * T, T, blk.ks, blk.rows, gw.data(), Dvp, Dv);
            narrow(gvp + (b * T + j0) * Dv, tile.data(), blk.rows * Dv);
          }
        }
      }
    });
  });
}

void register_attention_kernels() {
  KIRZL_REGISTER_KERNEL(attention_forward, DeviceType::CPU, &attention_forward);
  KIRZL_REGISTER_KERNEL(attention_backward, DeviceType::CPU, &attention_backward);
}

}  // namespace kirzl::kernels::cpu
