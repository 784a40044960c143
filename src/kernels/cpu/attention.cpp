// CPU causal attention that saves the T x T probabilities (the reference kernels, behind
// KIRZL_ATTENTION=reference; Note [attention path]), in register tiles: Note [cpu attention loops].
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

// Note [cpu attention loops]: both CPU kernel sets (these, which save the T x T probabilities,
// and the flash kernels of flash_attention.cpp, which save one log-sum-exp per row and recompute
// the probabilities in backward) run every product of a block of rows with a matrix in
// rows_times_matrix (Note [rows times matrix]), over operands widened to the accumulation type
// and laid out as the product needs them (attention_tiles.h; k and v transposed for the scores
// and dP):
//   forward, per block of queries i:  scores q_i k^T, then out_i = p_i v;
//   backward, per block of queries:   dP_i = g_i v^T, dS_i = P_i (dP_i - P_i . dP_i) scale,
//                                     dq_i = dS_i k;
//   backward, per block of keys j:    dk_j = dS^T_j q, dv_j = P^T_j g (over queries i >= j).
// Each of those sums adds its terms in ascending order from zero, as plain dot products would;
// the softmax's exponentials are vec_exp's (Note [vec_exp]) and its max, its sum and the
// backward's P_i . dP_i run in lanes (row_reduce.h), all in a fixed order. Sums run over the
// causal range only (keys j <= i, queries i >= j), so a non-finite value outside it cannot reach a
// row. Parallel over (batch, head) only, so every sum runs in one fixed order whatever the thread
// count.

using namespace attention_tiles;

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
        widen_rows(vw.data(), Dvp, vp + b * T * Dv, Dv, T, Dv);
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          A* p0 = pp + (b * T + i0) * T;
          widen_rows(qi.data(), D, qp + (b * T + i0) * D, D, blk.rows, D);
          // Scores of every row up to the block's last key; the ones past a row's own are zeroed.
          rows_times_matrix(p0, T, qi.data(), D, full_block(i0, T, D).ks, blk.rows, kt.data(), Tp, blk.last_end());
          for (int r = 0; r < blk.rows; ++r) {
            softmax_row(p0 + r * T, blk.ks[r].end, sc);
            std::fill(p0 + r * T + blk.ks[r].end, p0 + (r + 1) * T, A(0));  // masked: exactly zero probability
          }
          rows_times_matrix(oi.data(), Dv, p0, T, blk.ks, blk.rows, vw.data(), Dvp, Dv);
          narrow_rows(op + (b * T + i0) * Dv, Dv, oi.data(), Dv, blk.rows, Dv);
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
      // Zero-padded to whole column tiles: v as [Dv, Tp]; k, q and g as [T, Dp] / [T, Dvp]; dS
      // row by row as [T, Tp].
      std::vector<A> vt(Dv * Tp, A(0)), kw(T * Dp, A(0)), qw(T * Dp, A(0)), gw(T * Dvp, A(0)), ds(T * Tp, A(0)),
          tile(kRowBlock * D);
      KeyGradients<A> keys;
      for (int64_t b = b0; b < b1; ++b) {
        transpose_widen(vt.data(), Tp, vp + b * T * Dv, Dv, T, Dv);
        widen_rows(kw.data(), Dp, kp + b * T * D, D, T, D);
        widen_rows(qw.data(), Dp, qp + b * T * D, D, T, D);
        widen_rows(gw.data(), Dvp, gp + b * T * Dv, Dv, T, Dv);
        const A* pb = pp + b * T * T;
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          // dP_ij = g_i . v_j; dS_ij = P_ij (dP_ij - P_i . dP_i) scale, in place in ds.
          A* s0 = ds.data() + i0 * Tp;
          rows_times_matrix(s0, Tp, gw.data() + i0 * Dvp, Dvp, full_block(i0, T, Dv).ks, blk.rows, vt.data(), Tp,
                            blk.last_end());
          for (int r = 0; r < blk.rows; ++r) {
            const A* p = pb + (i0 + r) * T;
            A* s = s0 + r * Tp;
            const int64_t n = blk.ks[r].end;
            const A dot = lane_dot(p, s, n);
            for (int64_t j = 0; j < n; ++j) s[j] = p[j] * (s[j] - dot) * sc;
          }
          if (gqp) {
            rows_times_matrix(tile.data(), D, s0, Tp, blk.ks, blk.rows, kw.data(), Dp, D);
            narrow_rows(gqp + (b * T + i0) * D, D, tile.data(), D, blk.rows, D);
          }
        }
        typename KeyGradients<A>::Write write_k, write_v;
        if (gkp) write_k = [&](int64_t j0, int rows, const A* t) { narrow_rows(gkp + (b * T + j0) * D, D, t, D, rows, D); };
        if (gvp) write_v = [&](int64_t j0, int rows, const A* t) { narrow_rows(gvp + (b * T + j0) * Dv, Dv, t, Dv, rows, Dv); };
        if (write_k || write_v) keys.run(ds.data(), Tp, pb, T, qw.data(), Dp, gw.data(), Dvp, T, D, Dv, write_k, write_v);
      }
    });
  });
}

void register_attention_kernels() {
  KIRZL_REGISTER_KERNEL(attention_forward, DeviceType::CPU, &attention_forward);
  KIRZL_REGISTER_KERNEL(attention_backward, DeviceType::CPU, &attention_backward);
}

}  // namespace kirzl::kernels::cpu
