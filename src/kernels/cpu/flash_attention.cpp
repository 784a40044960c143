// CPU flash attention: the same contract as the CUDA kernels (strided [B, H, T, D] inputs and
// outputs, the output plus each row's log-sum-exp, backward from the log-sum-exp: never a T x T
// matrix per (batch, head) saved between them or held while they run), computed in blocks of rows
// in register tiles as the CPU's other attention kernels are (Note [cpu attention loops]). The
// value head dim may differ from the query's here. Split over threads by (batch, head), and within
// one where there are fewer of them than threads (Note [flash attention threads]); every sum runs
// in one fixed order whatever the split, so the results are the same bits on any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/flash_attention.h"
#include "kirzl/core/parallel.hpp"

namespace kirzl::kernels::cpu {

namespace {

using namespace attention_tiles;

// Element (b, h, t, 0) of a [B, H, T, D] tensor with last-dim stride 1.
template <typename T> struct Strided4 {
  T* base;
  int64_t sb, sh, st;
  T* row(int64_t b, int64_t h, int64_t t) const { return base + b * sb + h * sh + t * st; }
};
template <typename T> Strided4<T> view4(const Tensor& t) {
  return {static_cast<T*>(const_cast<void*>(t.data_ptr())), t.stride(0), t.stride(1), t.stride(2)};
}

// Note [flash attention threads]: the kernels hand whole (batch, head) pairs to threads, each run
// start to end by one thread. Where there are fewer pairs than threads (a batch of one long
// sequence, few heads), each pair is split as well: the forward by blocks of kQueryBlock queries,
// the backward into a pass over its key chunks (dk, dv: Note [flash backward by key chunks]) and
// then a pass over blocks of queries for dq, from the scores recomputed row by row (two of the
// five products once more). Each split makes the same sums as a whole pair does, term by term in
// the same ascending order, every term added by one mul_add (Note [explicit fma]): dq_i over the
// keys in one pass equals dq_i continued chunk by chunk (rows_times_matrix_add), and S_ij =
// q_i . k_j equals S^T_ji = k_j . q_i product by product. So the results are the same bits on any
// thread count (tested). Blocks are handed out in the folded order 0, n - 1, 1, n - 2, ...: with a
// causal mask a late query block and an early key chunk cost the most, and each thread's
// contiguous share of the order then mixes heavy and light ones.
inline constexpr int64_t kQueryBlock = 64;

bool split_pairs(int64_t pairs, int64_t T) { return pairs < get_num_threads() && T > kQueryBlock; }

// Work item k of n in the folded order.
int64_t folded(int64_t k, int64_t n) { return k % 2 == 0 ? k / 2 : n - 1 - k / 2; }

// ---- forward ----

// One pair's k as [D, Tp] and v as [T, Dvp], zero-padded: rows_times_matrix reads whole column
// tiles.
template <typename A> struct KeysValues {
  std::vector<A> kt, vw;
  template <typename E>
  void load(const Strided4<E>& K, const Strided4<E>& V, int64_t b, int64_t h, int64_t T, int64_t D, int64_t Dv) {
    const int64_t Tp = tile_row_stride<A>(T), Dvp = tile_row_stride<A>(Dv);
    kt.assign(D * Tp, A(0));
    vw.assign(T * Dvp, A(0));
    transpose_widen(kt.data(), Tp, K.row(b, h, 0), K.st, T, D);
    widen_rows(vw.data(), Dvp, V.row(b, h, 0), V.st, T, Dv);
  }
};

// Queries [i0, i1) of pair (b, h): outputs and log-sum-exps, a block of kRowBlock at a time; one
// block's probabilities at a time ([kRowBlock, Tp] in p), never the whole T x T.
template <typename A, typename E>
void forward_queries(const KeysValues<A>& kv, const Strided4<E>& Q, const Strided4<E>& O, A* lse, int64_t b,
                     int64_t h, int64_t i0, int64_t i1, int64_t T, int64_t D, int64_t Dv, A sc, std::vector<A>& p) {
  const int64_t Tp = tile_row_stride<A>(T), Dvp = tile_row_stride<A>(Dv);
  p.resize(kRowBlock * (Tp + D + Dv));
  A *qi = p.data() + kRowBlock * Tp, *oi = qi + kRowBlock * D;
  for (int64_t a0 = i0; a0 < i1; a0 += kRowBlock) {
    const Block blk = query_block(a0, T);
    widen_rows(qi, D, Q.row(b, h, a0), Q.st, blk.rows, D);
    attend_query_block(blk, qi, D, D, kv.kt.data(), Tp, kv.vw.data(), Dvp, Dv, sc, p.data(), Tp, lse + a0, oi);
    narrow_rows(O.row(b, h, a0), O.st, oi, Dv, blk.rows, Dv);
  }
}

// ---- backward ----

// One pair's operands widened, zero-padded to whole column tiles where a product reads them as
// its matrix: q as [D, Tp] (S^T) and [T, Dp] (dk; S's rows), k as [T, Dp] (S^T's rows, dq) and,
// for the dq pass only, [D, Tp] (S); v as [T, Dv] (dP^T's rows) and, for the dq pass only,
// [Dv, Tp] (dP); g as [Dv, Tp] (dP^T) and [T, Dvp] (dv; dP's rows); and each query's delta_i =
// dO_i . O_i = sum_j P_ij dP_ij.
template <typename A> struct BackwardOperands {
  int64_t T, D, Dv, Tp, Dp, Dvp;
  std::vector<A> qt, qw, kw, kt, vw, vt, gt, gw, delta;

  BackwardOperands(int64_t t, int64_t d, int64_t dv)
      : T(t), D(d), Dv(dv), Tp(tile_row_stride<A>(t)), Dp(tile_row_stride<A>(d)), Dvp(tile_row_stride<A>(dv)) {}

  template <typename E>
  void load(const Strided4<E>& Q, const Strided4<E>& K, const Strided4<E>& V, const Strided4<E>& O,
            const Strided4<E>& G, int64_t b, int64_t h, bool for_dq_pass) {
    qt.assign(D * Tp, A(0));
    qw.assign(T * Dp, A(0));
    kw.assign(T * Dp, A(0));
    vw.assign(T * Dv, A(0));
    gt.assign(Dv * Tp, A(0));
    gw.assign(T * Dvp, A(0));
    delta.resize(T);
    transpose_widen(qt.data(), Tp, Q.row(b, h, 0), Q.st, T, D);
    widen_rows(qw.data(), Dp, Q.row(b, h, 0), Q.st, T, D);
    widen_rows(kw.data(), Dp, K.row(b, h, 0), K.st, T, D);
    widen_rows(vw.data(), Dv, V.row(b, h, 0), V.st, T, Dv);
    transpose_widen(gt.data(), Tp, G.row(b, h, 0), G.st, T, Dv);
    widen_rows(gw.data(), Dvp, G.row(b, h, 0), G.st, T, Dv);
    if (for_dq_pass) {
      kt.assign(D * Tp, A(0));
      vt.assign(Dv * Tp, A(0));
      transpose_widen(kt.data(), Tp, K.row(b, h, 0), K.st, T, D);
      transpose_widen(vt.data(), Tp, V.row(b, h, 0), V.st, T, Dv);
    }
    std::vector<A> oi(Dv);
    for (int64_t i = 0; i < T; ++i) {
      widen_rows(oi.data(), Dv, O.row(b, h, i), O.st, 1, Dv);
      delta[i] = lane_dot(gw.data() + i * Dvp, oi.data(), Dv);
    }
  }
};

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

// The two element-wise steps of the backward, P_ij = exp(S_ij scale - lse_i) from a recomputed
// score and dS_ij = P_ij (dP_ij - delta_i) scale, defined once for the key chunks and the dq pass,
// whose results must be the same bits (see Note [flash attention threads]).
template <typename A>
inline A probability(A score, A scale, A lse) {
  return vec_exp(score * scale - lse);
}
template <typename A>
inline A score_gradient(A p, A dp, A delta, A scale) {
  return p * (dp - delta) * scale;
}
static_assert(kKeyChunk % kRowBlock == 0 && kKeyChunk % kColTile<float> == 0 && kKeyChunk % kColTile<double> == 0);

// A thread's workspace for key chunks: the chunk's P^T and dS^T ([kKeyChunk, Tp]) and dS
// ([T, kKeyChunk]), and one output tile.
template <typename A> struct ChunkScratch {
  std::vector<A> pt, st, s, tile;
  void fit(const BackwardOperands<A>& o) {
    pt.resize(kKeyChunk * o.Tp);
    st.resize(kKeyChunk * o.Tp);
    s.resize(o.T * kKeyChunk);
    tile.resize(kRowBlock * std::max(o.D, o.Dv));
  }
};

// Keys [j0, j0 + kKeyChunk) of one pair (Note [flash backward by key chunks]): writes their dk
// and dv (rows of gk, gv: the pair's row 0 and row stride); with dq ([T, D], the pair's sums so
// far) also adds the chunk's terms to dq_i of every query i >= j0.
template <typename A, typename E>
void key_chunk(const BackwardOperands<A>& o, const A* lse, A sc, int64_t j0, ChunkScratch<A>& w, E* gk, int64_t gk_st,
               E* gv, int64_t gv_st, A* dq) {
  constexpr int64_t W = kColTile<A>, Kc = kKeyChunk;
  const int64_t T = o.T, D = o.D, Dv = o.Dv, Tp = o.Tp, Dp = o.Dp, Dvp = o.Dvp;
  const int64_t kc = std::min(Kc, T - j0), n = T - j0;  // the chunk's keys; its queries as columns
  w.fit(o);
  for (int64_t r0 = 0; r0 < kc; r0 += kRowBlock) {
    // Keys j0 + r0 .. as rows. Key j0 + r0 + r meets the queries from column r0 + r on, so the
    // products start at the column tile holding column r0 (W divides j0: aligned).
    const Block keys = block_of(r0, kc);
    const int64_t c0 = r0 / W * W;
    A *p0 = w.pt.data() + r0 * Tp, *s0 = w.st.data() + r0 * Tp;
    rows_times_matrix(p0 + c0, Tp, o.kw.data() + (j0 + r0) * Dp, Dp, over(keys, D).ks, keys.rows,
                      o.qt.data() + j0 + c0, Tp, n - c0);
    rows_times_matrix(s0 + c0, Tp, o.vw.data() + (j0 + r0) * Dv, Dv, over(keys, Dv).ks, keys.rows,
                      o.gt.data() + j0 + c0, Tp, n - c0);
    Block causal = keys;  // key j0 + r0 + r over queries i >= j0 + r0 + r: columns [r0 + r, n)
    for (int r = 0; r < keys.rows; ++r) {
      causal.ks[r] = {r0 + r, n};
      A *pr = p0 + r * Tp, *sr = s0 + r * Tp;
      const A *lr = lse + j0, *dr = o.delta.data() + j0;
      for (int64_t c = r0 + r; c < n; ++c) pr[c] = probability(pr[c], sc, lr[c]);
      for (int64_t c = r0 + r; c < n; ++c) sr[c] = score_gradient(pr[c], sr[c], dr[c], sc);
    }
    rows_times_matrix(w.tile.data(), D, s0, Tp, causal.ks, keys.rows, o.qw.data() + j0 * Dp, Dp, D);
    narrow_rows(gk + (j0 + r0) * gk_st, gk_st, w.tile.data(), D, keys.rows, D);
    rows_times_matrix(w.tile.data(), Dv, p0, Tp, causal.ks, keys.rows, o.gw.data() + j0 * Dvp, Dvp, Dv);
    narrow_rows(gv + (j0 + r0) * gv_st, gv_st, w.tile.data(), Dv, keys.rows, Dv);
  }
  if (!dq) return;
  // dS = (dS^T)^T over the causal pairs (chunk key r, query column c >= r), then dq_i += dS_i
  // k_chunk over the chunk's keys j <= i.
  for (int64_t r = 0; r < kc; ++r)
    for (int64_t c = r; c < n; ++c) w.s[c * Kc + r] = w.st[r * Tp + c];
  for (int64_t c0 = 0; c0 < n; c0 += kRowBlock) {
    Block queries = block_of(c0, n);
    for (int r = 0; r < queries.rows; ++r) queries.ks[r] = {0, std::min(c0 + r + 1, kc)};
    rows_times_matrix_add(dq + (j0 + c0) * D, D, w.s.data() + c0 * Kc, Kc, queries.ks, queries.rows,
                          o.kw.data() + j0 * Dp, Dp, D);
  }
}

// dq of queries [i0, i1) of one pair, the dq pass of a split pair (Note [flash attention
// threads]): per block of kRowBlock queries, S = q k^T and dP = g v^T again, P and dS, then
// dq_i = dS_i k over keys j <= i in one pass. p ([kRowBlock, Tp] twice, and a tile) is the
// thread's scratch.
template <typename A, typename E>
void query_dq(const BackwardOperands<A>& o, const A* lse, A sc, int64_t i0, int64_t i1, std::vector<A>& p, E* gq,
              int64_t gq_st) {
  const int64_t T = o.T, D = o.D, Dv = o.Dv, Tp = o.Tp, Dp = o.Dp, Dvp = o.Dvp;
  p.resize(kRowBlock * (2 * Tp + D));
  A *ds = p.data() + kRowBlock * Tp, *tile = ds + kRowBlock * Tp;
  for (int64_t a0 = i0; a0 < i1; a0 += kRowBlock) {
    const Block blk = query_block(a0, T);
    rows_times_matrix(p.data(), Tp, o.qw.data() + a0 * Dp, Dp, over(blk, D).ks, blk.rows, o.kt.data(), Tp,
                      blk.last_end());
    rows_times_matrix(ds, Tp, o.gw.data() + a0 * Dvp, Dvp, over(blk, Dv).ks, blk.rows, o.vt.data(), Tp,
                      blk.last_end());
    for (int r = 0; r < blk.rows; ++r) {
      const int64_t n = blk.ks[r].end;
      A *pr = p.data() + r * Tp, *sr = ds + r * Tp;
      const A l = lse[a0 + r], d = o.delta[a0 + r];
      for (int64_t j = 0; j < n; ++j) pr[j] = probability(pr[j], sc, l);
      for (int64_t j = 0; j < n; ++j) sr[j] = score_gradient(pr[j], sr[j], d, sc);
    }
    rows_times_matrix(tile, D, ds, Tp, blk.ks, blk.rows, o.kw.data(), Dp, D);
    narrow_rows(gq + a0 * gq_st, gq_st, tile, D, blk.rows, D);
  }
}

}  // namespace

void flash_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Dv = v.size(3);
  dispatch_floating(q.dtype(), "flash_attention", [&]<typename E>() {
    using A = acc_t<E>;
    const auto Q = view4<E>(q), K = view4<E>(k), V = view4<E>(v), O = view4<E>(out);
    A* lp = lse.data<A>();
    const A sc = static_cast<A>(scale);
    if (!split_pairs(B * H, T)) {
      parallel_rows(B * H, T * T * (D + Dv), [&](int64_t bh0, int64_t bh1) {
        KeysValues<A> kv;
        std::vector<A> p;
        for (int64_t bh = bh0; bh < bh1; ++bh) {
          kv.load(K, V, bh / H, bh % H, T, D, Dv);
          forward_queries(kv, Q, O, lp + bh * T, bh / H, bh % H, 0, T, T, D, Dv, sc, p);
        }
      });
      return;
    }
    // Fewer pairs than threads: blocks of queries (Note [flash attention threads]).
    std::vector<KeysValues<A>> kvs(B * H);
    for (int64_t bh = 0; bh < B * H; ++bh) kvs[bh].load(K, V, bh / H, bh % H, T, D, Dv);
    const int64_t blocks = (T + kQueryBlock - 1) / kQueryBlock;
    parallel_for(B * H * blocks, 1, [&](int64_t w0, int64_t w1) {
      std::vector<A> p;
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t bh = w / blocks, i0 = folded(w % blocks, blocks) * kQueryBlock;
        forward_queries(kvs[bh], Q, O, lp + bh * T, bh / H, bh % H, i0, std::min(i0 + kQueryBlock, T), T, D, Dv, sc, p);
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
    const BackwardOperands<A> shape(T, D, Dv);
    if (!split_pairs(B * H, T)) {
      parallel_rows(B * H, T * T * (D + Dv), [&](int64_t bh0, int64_t bh1) {
        BackwardOperands<A> o = shape;
        ChunkScratch<A> w;
        std::vector<A> dq(T * D);
        for (int64_t bh = bh0; bh < bh1; ++bh) {
          const int64_t b = bh / H, h = bh % H;
          o.load(Q, K, V, O, G, b, h, false);
          std::fill(dq.begin(), dq.end(), A(0));
          for (int64_t j0 = 0; j0 < T; j0 += kKeyChunk)
            key_chunk(o, lp + bh * T, sc, j0, w, GK.row(b, h, 0), GK.st, GV.row(b, h, 0), GV.st, dq.data());
          narrow_rows(GQ.row(b, h, 0), GQ.st, dq.data(), D, T, D);
        }
      });
      return;
    }
    // Fewer pairs than threads (Note [flash attention threads]): key chunks for dk and dv, then
    // blocks of queries for dq.
    std::vector<BackwardOperands<A>> ops(B * H, shape);
    for (int64_t bh = 0; bh < B * H; ++bh) ops[bh].load(Q, K, V, O, G, bh / H, bh % H, true);
    const int64_t chunks = (T + kKeyChunk - 1) / kKeyChunk, blocks = (T + kQueryBlock - 1) / kQueryBlock;
    parallel_for(B * H * chunks, 1, [&](int64_t w0, int64_t w1) {
      ChunkScratch<A> w;
      for (int64_t item = w0; item < w1; ++item) {
        const int64_t bh = item / chunks, b = bh / H, h = bh % H, j0 = folded(item % chunks, chunks) * kKeyChunk;
        key_chunk<A, E>(ops[bh], lp + bh * T, sc, j0, w, GK.row(b, h, 0), GK.st, GV.row(b, h, 0), GV.st, nullptr);
      }
    });
    parallel_for(B * H * blocks, 1, [&](int64_t w0, int64_t w1) {
      std::vector<A> p;
      for (int64_t item = w0; item < w1; ++item) {
        const int64_t bh = item / blocks, b = bh / H, h = bh % H, i0 = folded(item % blocks, blocks) * kQueryBlock;
        query_dq(ops[bh], lp + bh * T, sc, i0, std::min(i0 + kQueryBlock, T), p, GQ.row(b, h, 0), GQ.st);
      }
    });
  });
}

void register_flash_attention_kernels() {
  KIRZL_REGISTER_KERNEL(flash_attention_forward, DeviceType::CPU, &flash_attention_forward);
  KIRZL_REGISTER_KERNEL(flash_attention_backward, DeviceType::CPU, &flash_attention_backward);
}

}  // namespace kirzl::kernels::cpu
