// CPU flash attention: the same contract as the CUDA kernels (strided [B, H, T, D] inputs and
// outputs, the output plus each row's log-sum-exp, backward from the log-sum-exp: never a T x T
// matrix per (batch, head) saved between them or held while they run), computed in blocks of rows
// in register tiles as the CPU's other attention kernels are (Note [cpu attention loops]). The
// value head dim may differ from the query's here. Parallel over (batch, head) only, so every sum
// runs in one fixed order whatever the thread count.
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
          attend_query_block(blk, qi.data(), D, D, kt.data(), Tp, vw.data(), Dvp, Dv, sc, p.data(), Tp,
                             lp + bh * T + i0, oi.data());
          narrow_rows(O.row(b, h, i0), O.st, oi.data(), Dv, blk.rows, Dv);
        }
      }
    });
  });
}

// Note [flash backward by key chunks]: the backward runs over chunks of kKeyChunk keys, and a
// chunk from key j0 meets every query i >= j0 at once, with the keys as rows (columns c are
// queries i = j0 + c):
//   S^T = k_chunk q^T, P^T_ji = exp(S^T_ji scale - lse_i), dP^T = v_chunk g^T,
//   dS^T_ji = P^T_ji (dP^T_ji - delta_i) scale, with delta_i = g_i . o_i computed once;
// then the chunk's dk_j = dS^T_j q and dv_j = P^T_j g are complete (over queries i >= j), and dq_i
// goes on with the chunk's keys: dS (dS^T turned back, [T - j0, chunk]) times k_chunk, added by
// rows_times_matrix_add to the sum so far. Keys come in ascending order, so every sum adds its
// terms in ascending order from zero, one at a time: dq_i's over keys j <= i, dk_j's and dv_j's
// over queries i >= j, the same sums in the same order as passes over whole rows would make. The
// workspace per thread is the chunk's three [chunk, T] blocks and the widened operands, O(T (D +
// Dv + chunk)): at T = 4096, D = 64 in f32, about 10 MiB, where a row-wise backward holding P
// and dS for all T x T pairs (and their transposes) took 256 MiB.
inline constexpr int64_t kKeyChunk = 64;  // a multiple of kRowBlock and of every kColTile<A>
static_assert(kKeyChunk % kRowBlock == 0 && kKeyChunk % kColTile<float> == 0 && kKeyChunk % kColTile<double> == 0);

void flash_attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out,
                              const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Dv = v.size(3);
  dispatch_floating(q.dtype(), "flash_attention_backward", [&]<typename E>() {
    using A = acc_t<E>;
    constexpr int64_t W = kColTile<A>, Kc = kKeyChunk;
    const auto Q = view4<E>(q), K = view4<E>(k), V = view4<E>(v), O = view4<E>(out), G = view4<E>(g);
    const auto GQ = view4<E>(gq), GK = view4<E>(gk), GV = view4<E>(gv);
    const A sc = static_cast<A>(scale);
    const int64_t Tp = col_tile_padded<A>(T), Dp = col_tile_padded<A>(D), Dvp = col_tile_padded<A>(Dv);
    parallel_rows(B * H, T * T * (D + Dv), [&](int64_t bh0, int64_t bh1) {
      // Widened, zero-padded to whole column tiles where a product reads them as its matrix: q as
      // [D, Tp] (S^T) and [T, Dp] (dk), k as [T, Dp] (S^T's rows, dq), v as [T, Dv] (dP^T's rows),
      // g as [Dv, Tp] (dP^T) and [T, Dvp] (dv). dq's sums so far [T, D]; each query's delta; the
      // chunk's P^T and dS^T ([Kc, Tp]) and dS ([T, Kc]).
      std::vector<A> qt(D * Tp, A(0)), qw(T * Dp, A(0)), kw(T * Dp, A(0)), vw(T * Dv), gt(Dv * Tp, A(0)),
          gw(T * Dvp, A(0)), dq(T * D), delta(T), oi(Dv), pt(Kc * Tp), st(Kc * Tp), s(T * Kc),
          tile(kRowBlock * std::max(D, Dv));
      for (int64_t bh = bh0; bh < bh1; ++bh) {
        const int64_t b = bh / H, h = bh % H;
        const A* l = lse.data<A>() + bh * T;
        transpose_widen(qt.data(), Tp, Q.row(b, h, 0), Q.st, T, D);
        widen_rows(qw.data(), Dp, Q.row(b, h, 0), Q.st, T, D);
        widen_rows(kw.data(), Dp, K.row(b, h, 0), K.st, T, D);
        widen_rows(vw.data(), Dv, V.row(b, h, 0), V.st, T, Dv);
        transpose_widen(gt.data(), Tp, G.row(b, h, 0), G.st, T, Dv);
        widen_rows(gw.data(), Dvp, G.row(b, h, 0), G.st, T, Dv);
        for (int64_t i = 0; i < T; ++i) {  // delta_i = dO_i . O_i = sum_j P_ij dP_ij
          widen_rows(oi.data(), Dv, O.row(b, h, i), O.st, 1, Dv);
          delta[i] = lane_dot(gw.data() + i * Dvp, oi.data(), Dv);
        }
        std::fill(dq.begin(), dq.end(), A(0));
        for (int64_t j0 = 0; j0 < T; j0 += Kc) {
          const int64_t kc = std::min(Kc, T - j0), n = T - j0;  // the chunk's keys; its queries as columns
          for (int64_t r0 = 0; r0 < kc; r0 += kRowBlock) {
            // Keys j0 + r0 .. as rows. Key j0 + r0 + r meets the queries from column r0 + r on, so
            // the products start at the column tile holding column r0 (W divides j0: aligned).
            const Block keys = block_of(r0, kc);
            const int64_t c0 = r0 / W * W;
            A *p0 = pt.data() + r0 * Tp, *s0 = st.data() + r0 * Tp;
            rows_times_matrix(p0 + c0, Tp, kw.data() + (j0 + r0) * Dp, Dp, over(keys, D).ks, keys.rows,
                              qt.data() + j0 + c0, Tp, n - c0);
            rows_times_matrix(s0 + c0, Tp, vw.data() + (j0 + r0) * Dv, Dv, over(keys, Dv).ks, keys.rows,
                              gt.data() + j0 + c0, Tp, n - c0);
            Block causal = keys;  // key j0 + r0 + r over queries i >= j0 + r0 + r: columns [r0 + r, n)
            for (int r = 0; r < keys.rows; ++r) {
              causal.ks[r] = {r0 + r, n};
              A *pr = p0 + r * Tp, *sr = s0 + r * Tp;
              const A *lr = l + j0, *dr = delta.data() + j0;
              for (int64_t c = r0 + r; c < n; ++c) pr[c] = vec_exp(pr[c] * sc - lr[c]);
              for (int64_t c = r0 + r; c < n; ++c) sr[c] = pr[c] * (sr[c] - dr[c]) * sc;
            }
            rows_times_matrix(tile.data(), D, s0, Tp, causal.ks, keys.rows, qw.data() + j0 * Dp, Dp, D);
            narrow_rows(GK.row(b, h, j0 + r0), GK.st, tile.data(), D, keys.rows, D);
            rows_times_matrix(tile.data(), Dv, p0, Tp, causal.ks, keys.rows, gw.data() + j0 * Dvp, Dvp, Dv);
            narrow_rows(GV.row(b, h, j0 + r0), GV.st, tile.data(), Dv, keys.rows, Dv);
          }
          // dS = (dS^T)^T over the causal pairs (chunk key r, query column c >= r), then dq_i +=
          // dS_i k_chunk over the chunk's keys j <= i.
          for (int64_t r = 0; r < kc; ++r)
            for (int64_t c = r; c < n; ++c) s[c * Kc + r] = st[r * Tp + c];
          for (int64_t c0 = 0; c0 < n; c0 += kRowBlock) {
            Block queries = block_of(c0, n);
            for (int r = 0; r < queries.rows; ++r) queries.ks[r] = {0, std::min(c0 + r + 1, kc)};
            rows_times_matrix_add(dq.data() + (j0 + c0) * D, D, s.data() + c0 * Kc, Kc, queries.ks, queries.rows,
                                  kw.data() + j0 * Dp, Dp, D);
          }
        }
        narrow_rows(GQ.row(b, h, 0), GQ.st, dq.data(), D, T, D);
      }
    });
  });
}

void register_flash_attention_kernels() {
  KIRZL_REGISTER_KERNEL(flash_attention_forward, DeviceType::CPU, &flash_attention_forward);
  KIRZL_REGISTER_KERNEL(flash_attention_backward, DeviceType::CPU, &flash_attention_backward);
}

}  // namespace kirzl::kernels::cpu
