// CPU flash attention: the same contract as the CUDA kernels (strided [B, H, T, D] inputs and
// outputs, the output plus each row's log-sum-exp, backward from the log-sum-exp: never a T x T
// matrix per (batch, head) saved between them), computed in blocks of rows in register tiles as
// the CPU's other attention kernels are (Note [cpu attention loops]). The value head dim may
// differ from the query's here. Parallel over (batch, head) only, so every sum runs in one fixed
// order whatever the thread count.
// Limitation: the backward's per-thread workspace still holds one (batch, head)'s P and dS and
// their transposes, 4 T^2 floats (16 MiB at T = 1024, 256 MiB at T = 4096): transient, never
// saved between forward and backward, but O(T^2). A loop over key blocks outside the query blocks
// (dq accumulated per block in a fixed order) would make it O(T D); not done yet.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/flash_attention.h"

namespace kirzl::kernels::cpu {

namespace {

// Element (b, h, t, 0) of a [B, H, T, D] tensor with last-dim stride 1.
template <typename T> struct Strided4 {
  T* base;
  int64_t sb, sh, st;
  T* row(int64_t b, int64_t h, int64_t t) const { return base + b * sb + h * sh + t * st; }
};
template <typename T> Strided4<T> view4(const Tensor& t) {
  return {static_cast<T*>(const_cast<void*>(t.data_ptr())), t.stride(0), t.stride(1), t.stride(2)};
}

}  // namespace

using namespace attention_tiles;

void flash_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Dv = v.size(3);
  dispatch_floating(q.dtype(), "flash_attention", [&]<typename E>() {
    using A = acc_t<E>;
    const auto Q = view4<E>(q), K = view4<E>(k), V = view4<E>(v), O = view4<E>(out);
    A* lp = lse.data<A>();
    const A sc = static_cast<A>(scale);
    const int64_t Tp = col_tile_padded<A>(T), Dvp = col_tile_padded<A>(Dv);
    parallel_rows(B * H, T * T * (D + Dv), [&](int64_t bh0, int64_t bh1) {
      // k as [D, Tp] and v as [T, Dvp], zero-padded: rows_times_matrix reads whole column tiles.
      // One block's probabilities at a time ([kRowBlock, Tp]): never the whole T x T.
      std::vector<A> kt(D * Tp, A(0)), vw(T * Dvp, A(0)), qi(kRowBlock * D), p(kRowBlock * Tp), oi(kRowBlock * Dv);
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / H, h = bh % H;
        transpose_widen(kt.data(), Tp, K.row(b, h, 0), K.st, T, D);
        widen_rows(vw.data(), Dvp, V.row(b, h, 0), V.st, T, Dv);
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          widen_rows(qi.data(), D, Q.row(b, h, i0), Q.st, blk.rows, D);
          rows_times_matrix(p.data(), Tp, qi.data(), D, full_block(i0, T, D).ks, blk.rows, kt.data(), Tp,
                            blk.last_end());
          for (int r = 0; r < blk.rows; ++r) lp[bh * T + i0 + r] = softmax_row(p.data() + r * Tp, blk.ks[r].end, sc);
          rows_times_matrix(oi.data(), Dv, p.data(), Tp, blk.ks, blk.rows, vw.data(), Dvp, Dv);
          narrow_rows(O.row(b, h, i0), O.st, oi.data(), Dv, blk.rows, Dv);
        }
      }
    });
  });
}

void flash_attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out,
                              const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Dv = v.size(3);
  dispatch_floating(q.dtype(), "flash_attention_backward", [&]<typename E>() {
    using A = acc_t<E>;
    const auto Q = view4<E>(q), K = view4<E>(k), V = view4<E>(v), O = view4<E>(out), G = view4<E>(g);
    const auto GQ = view4<E>(gq), GK = view4<E>(gk), GV = view4<E>(gv);
    const A* lp = lse.data<A>();
    const A sc = static_cast<A>(scale);
    const int64_t Tp = col_tile_padded<A>(T), Dp = col_tile_padded<A>(D), Dvp = col_tile_padded<A>(Dv);
    parallel_rows(B * H, T * T * (D + Dv), [&](int64_t bh0, int64_t bh1) {
      // Zero-padded to whole column tiles: k as [D, Tp] (scores) and [T, Dp] (dq), q as [T, Dp],
      // v as [Dv, Tp], g as [T, Dvp]; P, recomputed from the log-sum-exp, and dS row by row as
      // [T, Tp] (one (batch, head) at a time per thread).
      std::vector<A> kt(D * Tp, A(0)), kw(T * Dp, A(0)), qw(T * Dp, A(0)), vt(Dv * Tp, A(0)), gw(T * Dvp, A(0)),
          p(T * Tp, A(0)), ds(T * Tp, A(0)), oi(Dv), tile(kRowBlock * D);
      KeyGradients<A> keys;
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / H, h = bh % H;
        transpose_widen(kt.data(), Tp, K.row(b, h, 0), K.st, T, D);
        widen_rows(kw.data(), Dp, K.row(b, h, 0), K.st, T, D);
        widen_rows(qw.data(), Dp, Q.row(b, h, 0), Q.st, T, D);
        transpose_widen(vt.data(), Tp, V.row(b, h, 0), V.st, T, Dv);
        widen_rows(gw.data(), Dvp, G.row(b, h, 0), G.st, T, Dv);
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const Block blk = query_block(i0, T);
          A *p0 = p.data() + i0 * Tp, *s0 = ds.data() + i0 * Tp;
          // P_ij = exp(q_i . k_j scale - lse_i), the forward's probabilities again.
          rows_times_matrix(p0, Tp, qw.data() + i0 * Dp, Dp, full_block(i0, T, D).ks, blk.rows, kt.data(), Tp,
                            blk.last_end());
          // dP_ij = g_i . v_j.
          rows_times_matrix(s0, Tp, gw.data() + i0 * Dvp, Dvp, full_block(i0, T, Dv).ks, blk.rows, vt.data(), Tp,
                            blk.last_end());
          for (int r = 0; r < blk.rows; ++r) {
            const int64_t n = blk.ks[r].end;
            A *pr = p0 + r * Tp, *sr = s0 + r * Tp;
            const A l = lp[bh * T + i0 + r];
            for (int64_t j = 0; j < n; ++j) pr[j] = vec_exp(pr[j] * sc - l);
            // delta_i = dO_i . O_i = sum_j P_ij dP_ij; dS_ij = P_ij (dP_ij - delta_i) scale.
            widen_rows(oi.data(), Dv, O.row(b, h, i0 + r), O.st, 1, Dv);
            const A delta = lane_dot(gw.data() + (i0 + r) * Dvp, oi.data(), Dv);
            for (int64_t j = 0; j < n; ++j) sr[j] = pr[j] * (sr[j] - delta) * sc;
          }
          rows_times_matrix(tile.data(), D, s0, Tp, blk.ks, blk.rows, kw.data(), Dp, D);
          narrow_rows(GQ.row(b, h, i0), GQ.st, tile.data(), D, blk.rows, D);
        }
        keys.run(ds.data(), Tp, p.data(), Tp, qw.data(), Dp, gw.data(), Dvp, T, D, Dv,
                 [&](int64_t j0, int rows, const A* t) { narrow_rows(GK.row(b, h, j0), GK.st, t, D, rows, D); },
                 [&](int64_t j0, int rows, const A* t) { narrow_rows(GV.row(b, h, j0), GV.st, t, Dv, rows, Dv); });
      }
    });
  });
}

void register_flash_attention_kernels() {
  KIRZL_REGISTER_KERNEL(flash_attention_forward, DeviceType::CPU, &flash_attention_forward);
  KIRZL_REGISTER_KERNEL(flash_attention_backward, DeviceType::CPU, &flash_attention_backward);
}

}  // namespace kirzl::kernels::cpu
