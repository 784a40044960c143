// CPU causal attention that saves the T x T probabilities (the reference kernels, behind
// KIRZL_ATTENTION=reference; Note [attention path]), in register tiles: Note [cpu attention loops].
#include <algorithm>
#include <cmath>
#include <functional>
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
// (The flash backward makes the same products by chunks of keys, so that it never holds P or dS
// for all T x T pairs: Note [flash backward by key chunks].)
// Each of those sums adds its terms in ascending order from zero, as plain dot products would;
// the softmax's exponentials are vec_exp's (Note [vec_exp]) and its max, its sum and the
// backward's P_i . dP_i run in lanes (row_reduce.h), all in a fixed order. Sums run over the
// causal range only (keys j <= i, queries i >= j), so a non-finite value outside it cannot reach a
// row. Parallel over (batch, head) only, so every sum runs in one fixed order whatever the thread
// count.

using namespace attention_tiles;

namespace {

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

}  // namespace

void attention_forward(Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), T = q.size(1), D = q.size(2), Dv = v.size(2);
  dispatch_floating(q.dtype(), "causal_attention", [&]<typename T_>() {
    using A = acc_t<T_>;
    const T_ *qp = q.data<T_>(), *kp = k.data<T_>(), *vp = v.data<T_>();
    T_* op = out.data<T_>();
    A* pp = probs.data<A>();
    const A sc = static_cast<A>(scale);
    const int64_t Tp = tile_row_stride<A>(T), Dvp = tile_row_stride<A>(Dv);
    parallel_rows(B, T * T * (D + Dv), [&](int64_t b0, int64_t b1) {
      // k as [D, Tp] and v as [T, Dvp], zero-padded: rows_times_matrix reads whole column tiles.
      std::vector<A> kt(D * Tp, A(0)), vw(T * Dvp, A(0)), qi(kRowBlock * D), oi(kRowBlock * Dv);
      for (int64_t b = b0; b < b1; ++b) {
        transpose_widen(kt.data(), Tp, kp + b * T * D, D, T, D);
        widen_rows(vw.data(), Dvp, vp + b * T * Dv, Dv, T, Dv);
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          A* p0 = pp + (b * T + i0) * T;
          A lse[kRowBlock];
          widen_rows(qi.data(), D, qp + (b * T + i0) * D, D, blk.rows, D);
          attend_query_block(blk, qi.data(), D, D, kt.data(), Tp, vw.data(), Dvp, Dv, sc, p0, T, lse, oi.data());
          for (int r = 0; r < blk.rows; ++r)  // masked: exactly zero probability
            std::fill(p0 + r * T + blk.ks[r].end, p0 + (r + 1) * T, A(0));
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
    const int64_t Tp = tile_row_stride<A>(T), Dp = tile_row_stride<A>(D), Dvp = tile_row_stride<A>(Dv);
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
          rows_times_matrix(s0, Tp, gw.data() + i0 * Dvp, Dvp, over(blk, Dv).ks, blk.rows, vt.data(), Tp,
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
