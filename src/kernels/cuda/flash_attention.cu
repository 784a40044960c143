// Flash-style causal attention on CUDA: Q/K/V tiles of 64 rows in shared memory, online softmax,
// f32 accumulation for f32/bf16/f16 inputs; forward saves the output and each row's log-sum-exp,
// backward recomputes the probabilities tile by tile.
//
// Note [flash tiling]: a block of 256 threads owns a 64 x 64 tile of scores; thread (ty, tx),
// ty, tx in [0, 16), holds rows ty + 16 i and columns tx + 16 j (i, j < 4), so the 16 threads of
// a row sit in one half-warp (row reductions are 4 xor-shuffles) and the column-strided reads of a
// [64][D + 1] f32 shared tile hit 16 distinct banks. Output/gradient accumulators are rows
// ty + 16 i by head-dim columns tx + 16 c. The matrix products run on the CUDA cores (FMA), not
// tensor cores: correctness first (see the report of issue #8 for what a tensor-core version needs).
//
// Note [flash backward determinism]: dK/dV and dQ come from two kernels: one block per K tile
// walks the Q tiles at or below the diagonal (dK, dV), one block per Q tile walks the K tiles
// (dQ). Each gradient element is summed by one thread in a fixed order: no atomics, bit-identical
// results from run to run, at the cost of computing the scores and dP twice.
#include <cmath>
#include <initializer_list>

#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/flash_attention.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr int kTile = 64;      // rows of Q and of K/V per tile
constexpr int kThreads = 256;  // 16 x 16 threads, Note [flash tiling]
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// A [B, H, T, D] tensor with unit last-dim stride, read (Operand) or written (Output) in place:
// the strided q, k, v views of a [B, T, 3C] projection, or the output and gradients written
// straight into [B, T, C] and one d(qkv) (causal_attention_qkv, no copies).
template <typename P> struct Strided {
  P* p;
  int64_t sb, sh, st;
  __device__ P* row(int64_t b, int64_t h, int64_t t) const { return p + b * sb + h * sh + t * st; }
};
template <typename E> using Operand = Strided<const E>;
template <typename E> using Output = Strided<E>;

template <typename E> Operand<E> operand(const Tensor& t) {
  return {reinterpret_cast<const E*>(t.data_ptr()), t.stride(0), t.stride(1), t.stride(2)};
}
template <typename E> Output<E> output(Tensor& t) {
  return {reinterpret_cast<E*>(t.data_ptr()), t.stride(0), t.stride(1), t.stride(2)};
}

// Loads rows [t0, t0 + 64) of one (b, h) into a [64][D + 1] f32 tile, times `mul`; rows past T
// are zero.
template <typename E, int D>
__device__ __forceinline__ void load_tile(float* tile, const Operand<E>& x, int64_t b, int64_t h, int t0, int T,
                                          float mul) {
  for (int idx = threadIdx.x; idx < kTile * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    const int t = t0 + r;
    tile[r * (D + 1) + d] = t < T ? load_acc(x.row(b, h, t)[d]) * mul : 0.f;
  }
}

__device__ __forceinline__ float row_max16(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float row_sum16(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// acc[i][c] += sum_j P[ty + 16 i][j] * X[j][tx + 16 c]: P a [64][kTile + 1] tile of scores,
// X a [64][D + 1] tile of V or K (the forward's O += P V, the backward's dQ += dS K).
template <int D>
__device__ __forceinline__ void tile_product_add(float (&acc)[4][D / 16], const float* P, const float* X, int ty,
                                                 int tx) {
#pragma unroll 4
  for (int j = 0; j < kTile; ++j) {
    float x[D / 16];
#pragma unroll
    for (int c = 0; c < D / 16; ++c) x[c] = X[j * (D + 1) + tx + 16 * c];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float pv = P[(ty + 16 * i) * (kTile + 1) + j];
#pragma unroll
      for (int c = 0; c < D / 16; ++c) acc[i][c] = fmaf(pv, x[c], acc[i][c]);
    }
  }
}

// s[i][j] = sum_d A[ty + 16 i][d] * Bm[tx + 16 j][d] over [64][D + 1] tiles.
template <int D>
__device__ __forceinline__ void tile_dot(float (&s)[4][4], const float* A, const float* Bm, int ty, int tx) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
#pragma unroll 8
  for (int d = 0; d < D; ++d) {
    float a[4], bb[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = A[(ty + 16 * i) * (D + 1) + d];
#pragma unroll
    for (int j = 0; j < 4; ++j) bb[j] = Bm[(tx + 16 * j) * (D + 1) + d];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = fmaf(a[i], bb[j], s[i][j]);
  }
}

template <int D> constexpr size_t fwd_smem() { return (3 * kTile * (D + 1) + kTile * (kTile + 1)) * sizeof(float); }

template <typename E, int D>
__global__ void __launch_bounds__(kThreads) flash_fwd_kernel(Output<E> out, float* __restrict__ lse,
                                                             Operand<E> q, Operand<E> k, Operand<E> v, int H, int T,
                                                             float scale) {
  extern __shared__ float smem[];
  float* Qs = smem;
  float* Ks = Qs + kTile * (D + 1);
  float* Vs = Ks + kTile * (D + 1);
  float* Ps = Vs + kTile * (D + 1);  // [64][65]
  constexpr int C = D / 16;
  const int bh = blockIdx.x;
  const int64_t b = bh / H, h = bh % H;
  const int qt = gridDim.y - 1 - blockIdx.y;  // the longest rows first
  const int q0 = qt * kTile;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;

  // Scores in log2 units: exp(s * scale) = exp2(s * scale * log2 e).
  load_tile<E, D>(Qs, q, b, h, q0, T, scale * kLog2e);
  float m[4], l[4], o[4][C];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < C; ++c) o[i][c] = 0.f;
  }
  for (int kt = 0; kt <= qt; ++kt) {
    const int k0 = kt * kTile;
    __syncthreads();  // the previous tile's Ks/Vs/Ps are no longer read
    load_tile<E, D>(Ks, k, b, h, k0, T, 1.f);
    load_tile<E, D>(Vs, v, b, h, k0, T, 1.f);
    __syncthreads();
    float s[4][4];
    tile_dot<D>(s, Qs, Ks, ty, tx);
    if (kt == qt) {  // diagonal tile: mask k > q (this also masks k >= T for rows q < T)
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (tx + 16 * j > ty + 16 * i) s[i][j] = -INFINITY;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float mt = fmaxf(fmaxf(s[i][0], s[i][1]), fmaxf(s[i][2], s[i][3]));
      mt = row_max16(mt);
      const float mn = fmaxf(m[i], mt);  // finite: column 0 of tile 0 is never masked
      const float alpha = exp2f(m[i] - mn);
      float rs = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[i][j] = exp2f(s[i][j] - mn);
        rs += s[i][j];
      }
      rs = row_sum16(rs);
      l[i] = l[i] * alpha + rs;
      m[i] = mn;
#pragma unroll
      for (int c = 0; c < C; ++c) o[i][c] *= alpha;
#pragma unroll
      for (int j = 0; j < 4; ++j) Ps[(ty + 16 * i) * (kTile + 1) + tx + 16 * j] = s[i][j];
    }
    __syncthreads();
    tile_product_add<D>(o, Ps, Vs, ty, tx);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t = q0 + ty + 16 * i;
    if (t >= T) continue;
    const float inv = 1.f / l[i];
    E* orow = out.row(b, h, t);
#pragma unroll
    for (int c = 0; c < C; ++c) orow[tx + 16 * c] = store_as<E>(o[i][c] * inv);
    if (tx == 0) lse[static_cast<int64_t>(bh) * T + t] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// delta[bh, t] = sum_d dO[bh, t, d] * O[bh, t, d]; one warp per row.
template <typename E, int D>
__global__ void flash_delta_kernel(float* __restrict__ delta, Operand<E> g, Operand<E> out, int H, int T,
                                   int64_t rows) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const int64_t bh = row / T, t = row % T;
  const E* gr = g.row(bh / H, bh % H, t);
  const E* orow = out.row(bh / H, bh % H, t);
  float acc = 0.f;
  for (int d = lane; d < D; d += 32) acc = fmaf(load_acc(gr[d]), load_acc(orow[d]), acc);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) delta[row] = acc;
}

// Per-row values of a Q tile: log-sum-exp in log2 units (+inf past T, so p = 0) and delta.
__device__ __forceinline__ void load_row_stats(float* lse_s, float* delta_s, const float* lse, const float* delta,
                                               int64_t bh, int q0, int T) {
  for (int r = threadIdx.x; r < kTile; r += kThreads) {
    const int t = q0 + r;
    lse_s[r] = t < T ? lse[bh * T + t] * kLog2e : INFINITY;
    delta_s[r] = t < T ? delta[bh * T + t] : 0.f;
  }
}

// From the Q tile (rows ty + 16 i) and K tile (cols tx + 16 j): p = softmax probabilities and
// ds = p (dp - delta) scale, masked to k <= q < T.
template <int D>
__device__ __forceinline__ void probs_and_dscores(float (&p)[4][4], float (&ds)[4][4], const float* Qs,
                                                  const float* dOs, const float* Ks, const float* Vs,
                                                  const float* lse_s, const float* delta_s, int q0, int k0, int T,
                                                  float scale, int ty, int tx) {
  tile_dot<D>(p, Qs, Ks, ty, tx);
  tile_dot<D>(ds, dOs, Vs, ty, tx);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = ty + 16 * i;
    const int tq = q0 + r;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int tk = k0 + tx + 16 * j;
      const bool keep = tk <= tq && tq < T;
      const float pv = keep ? exp2f(p[i][j] * scale * kLog2e - lse_s[r]) : 0.f;
      p[i][j] = pv;
      ds[i][j] = pv * (ds[i][j] - delta_s[r]) * scale;
    }
  }
}

template <int D> constexpr size_t dkdv_smem() {
  return (4 * kTile * (D + 1) + 2 * kTile * (kTile + 1) + 2 * kTile) * sizeof(float);
}

template <typename E, int D>
__global__ void __launch_bounds__(kThreads)
    flash_bwd_dkdv_kernel(Output<E> gk, Output<E> gv, Operand<E> q, Operand<E> k, Operand<E> v,
                          Operand<E> g, const float* __restrict__ lse, const float* __restrict__ delta, int H, int T,
                          float scale) {
  extern __shared__ float smem[];
  float* Ks = smem;
  float* Vs = Ks + kTile * (D + 1);
  float* Qs = Vs + kTile * (D + 1);
  float* dOs = Qs + kTile * (D + 1);
  float* Ps = dOs + kTile * (D + 1);   // [64 q][65]
  float* dSs = Ps + kTile * (kTile + 1);
  float* lse_s = dSs + kTile * (kTile + 1);
  float* delta_s = lse_s + kTile;
  constexpr int C = D / 16;
  const int bh = blockIdx.x;
  const int64_t b = bh / H, h = bh % H;
  const int kt = blockIdx.y;  // low K tiles see the most Q tiles: they start first
  const int k0 = kt * kTile;
  const int nt = gridDim.y;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  load_tile<E, D>(Ks, k, b, h, k0, T, 1.f);
  load_tile<E, D>(Vs, v, b, h, k0, T, 1.f);
  float dk[4][C], dv[4][C];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < C; ++c) dk[i][c] = dv[i][c] = 0.f;
  for (int qt = kt; qt < nt; ++qt) {
    const int q0 = qt * kTile;
    __syncthreads();
    load_tile<E, D>(Qs, q, b, h, q0, T, 1.f);
    load_tile<E, D>(dOs, g, b, h, q0, T, 1.f);
    load_row_stats(lse_s, delta_s, lse, delta, bh, q0, T);
    __syncthreads();
    float p[4][4], ds[4][4];
    probs_and_dscores<D>(p, ds, Qs, dOs, Ks, Vs, lse_s, delta_s, q0, k0, T, scale, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        Ps[(ty + 16 * i) * (kTile + 1) + tx + 16 * j] = p[i][j];
        dSs[(ty + 16 * i) * (kTile + 1) + tx + 16 * j] = ds[i][j];
      }
    __syncthreads();
    // dV[kr] += sum_q P[q][kr] dO[q]; dK[kr] += sum_q dS[q][kr] Q[q], kr = ty + 16 i.
#pragma unroll 4
    for (int r = 0; r < kTile; ++r) {
      float go[C], qq[C];
#pragma unroll
      for (int c = 0; c < C; ++c) {
        go[c] = dOs[r * (D + 1) + tx + 16 * c];
        qq[c] = Qs[r * (D + 1) + tx + 16 * c];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float pv = Ps[r * (kTile + 1) + ty + 16 * i];
        const float dsv = dSs[r * (kTile + 1) + ty + 16 * i];
#pragma unroll
        for (int c = 0; c < C; ++c) {
          dv[i][c] = fmaf(pv, go[c], dv[i][c]);
          dk[i][c] = fmaf(dsv, qq[c], dk[i][c]);
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t = k0 + ty + 16 * i;
    if (t >= T) continue;
    E* gkr = gk.row(b, h, t);
    E* gvr = gv.row(b, h, t);
#pragma unroll
    for (int c = 0; c < C; ++c) {
      gkr[tx + 16 * c] = store_as<E>(dk[i][c]);
      gvr[tx + 16 * c] = store_as<E>(dv[i][c]);
    }
  }
}

template <int D> constexpr size_t dq_smem() {
  return (4 * kTile * (D + 1) + kTile * (kTile + 1) + 2 * kTile) * sizeof(float);
}

template <typename E, int D>
__global__ void __launch_bounds__(kThreads)
    flash_bwd_dq_kernel(Output<E> gq, Operand<E> q, Operand<E> k, Operand<E> v, Operand<E> g,
                        const float* __restrict__ lse, const float* __restrict__ delta, int H, int T, float scale) {
  extern __shared__ float smem[];
  float* Qs = smem;
  float* dOs = Qs + kTile * (D + 1);
  float* Ks = dOs + kTile * (D + 1);
  float* Vs = Ks + kTile * (D + 1);
  float* dSs = Vs + kTile * (D + 1);
  float* lse_s = dSs + kTile * (kTile + 1);
  float* delta_s = lse_s + kTile;
  constexpr int C = D / 16;
  const int bh = blockIdx.x;
  const int64_t b = bh / H, h = bh % H;
  const int qt = gridDim.y - 1 - blockIdx.y;
  const int q0 = qt * kTile;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  load_tile<E, D>(Qs, q, b, h, q0, T, 1.f);
  load_tile<E, D>(dOs, g, b, h, q0, T, 1.f);
  load_row_stats(lse_s, delta_s, lse, delta, bh, q0, T);
  float dq[4][C];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < C; ++c) dq[i][c] = 0.f;
  for (int kt = 0; kt <= qt; ++kt) {
    const int k0 = kt * kTile;
    __syncthreads();
    load_tile<E, D>(Ks, k, b, h, k0, T, 1.f);
    load_tile<E, D>(Vs, v, b, h, k0, T, 1.f);
    __syncthreads();
    float p[4][4], ds[4][4];
    probs_and_dscores<D>(p, ds, Qs, dOs, Ks, Vs, lse_s, delta_s, q0, k0, T, scale, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) dSs[(ty + 16 * i) * (kTile + 1) + tx + 16 * j] = ds[i][j];
    __syncthreads();
    tile_product_add<D>(dq, dSs, Ks, ty, tx);  // dQ[qr] += sum_k dS[qr][k] K[k]
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t = q0 + ty + 16 * i;
    if (t >= T) continue;
    E* gqr = gq.row(b, h, t);
#pragma unroll
    for (int c = 0; c < C; ++c) gqr[tx + 16 * c] = store_as<E>(dq[i][c]);
  }
}

struct Dims {
  int64_t B, H, T, D;
};

Dims check_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  KIRZL_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(), op,
              ": expected q, k, v of one shape [B, H, T, D], got ", q.describe(), ", ", k.describe(), ", ",
              v.describe());
  KIRZL_CHECK(q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1, op,
              ": q, k, v need unit stride in the head dim");
  KIRZL_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype() && flash_attention_cuda_supports(q.dtype(), q.size(3)),
              op, ": the CUDA flash kernels take f32, bf16 or f16 with head dim 64 or 128, got ", q.describe());
  const Dims d{q.size(0), q.size(1), q.size(2), q.size(3)};
  KIRZL_CHECK(d.B * d.H < (int64_t{1} << 31) && d.T < (int64_t{1} << 31) / 2, op, ": too large: ", q.describe());
  return d;
}

template <typename F> void dispatch_head_dim(int64_t D, F&& f) {
  if (D == 64) f.template operator()<64>();
  else f.template operator()<128>();
}

template <typename F> void dispatch_flash_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32: f.template operator()<float>(); return;
    case DType::bf16: f.template operator()<__nv_bfloat16>(); return;
    case DType::f16: f.template operator()<__half>(); return;
    default: KIRZL_FAIL(ErrorCode::Internal, "flash_attention: unexpected dtype ", dtype_name(t));
  }
}

template <typename K> void allow_smem(K kernel, size_t bytes) {
  KIRZL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace

void flash_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             double scale) {
  const Dims d = check_dims("flash_attention", q, k, v);
  KIRZL_CHECK(out.shape() == q.shape() && out.dtype() == q.dtype() && out.stride(3) == 1 && lse.is_contiguous() &&
                  lse.dtype() == DType::f32 && lse.numel() == d.B * d.H * d.T,
              "flash_attention: out must have q's shape and dtype with unit last-dim stride, and lse be contiguous f32 "
              "[B, H, T], got ", out.describe(), ", ", lse.describe());
  if (q.numel() == 0) return;
  cudaStream_t stream = prepare(q);
  const dim3 grid(static_cast<unsigned>(d.B * d.H), static_cast<unsigned>((d.T + kTile - 1) / kTile));
  dispatch_flash_dtype(q.dtype(), [&]<typename E>() {
    dispatch_head_dim(d.D, [&]<int D>() {
      auto kernel = flash_fwd_kernel<E, D>;
      allow_smem(kernel, fwd_smem<D>());
      kernel<<<grid, kThreads, fwd_smem<D>(), stream>>>(output<E>(out), lse.data<float>(),
                                                        operand<E>(q), operand<E>(k), operand<E>(v),
                                                        static_cast<int>(d.H), static_cast<int>(d.T),
                                                        static_cast<float>(scale));
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
}

void flash_attention_backward(Tensor& gq, Tensor& gk, Tensor& gv, const Tensor& g, const Tensor& out,
                              const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  const Dims d = check_dims("flash_attention_backward", q, k, v);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gq, &gk, &gv, &out})
    KIRZL_CHECK(t->defined() && t->shape() == q.shape() && t->dtype() == q.dtype() && t->stride(3) == 1,
                "flash_attention_backward: out, gq, gk, gv must have the shape and dtype of q ", q.describe(),
                " with unit last-dim stride, got ", t->describe());
  KIRZL_CHECK(g.shape() == q.shape() && g.dtype() == q.dtype() && g.stride(3) == 1,
              "flash_attention_backward: g must have q's shape and dtype with unit last-dim stride, got ",
              g.describe());
  KIRZL_CHECK(lse.is_contiguous() && lse.dtype() == DType::f32 && lse.numel() == d.B * d.H * d.T,
              "flash_attention_backward: lse must be contiguous f32 [B, H, T], got ", lse.describe());
  if (q.numel() == 0) return;
  cudaStream_t stream = prepare(q);
  const int64_t rows = d.B * d.H * d.T;
  Tensor delta = empty({rows}, {.dtype = DType::f32, .device = q.device()});
  const dim3 grid(static_cast<unsigned>(d.B * d.H), static_cast<unsigned>((d.T + kTile - 1) / kTile));
  const int H = static_cast<int>(d.H), T = static_cast<int>(d.T);
  const float sc = static_cast<float>(scale);
  dispatch_flash_dtype(q.dtype(), [&]<typename E>() {
    dispatch_head_dim(d.D, [&]<int D>() {
      flash_delta_kernel<E, D><<<static_cast<unsigned>((rows + 7) / 8), 256, 0, stream>>>(
          delta.data<float>(), operand<E>(g), operand<E>(out), H, T, rows);
      KIRZL_CUDA_LAUNCH_CHECK();
      auto dkdv = flash_bwd_dkdv_kernel<E, D>;
      allow_smem(dkdv, dkdv_smem<D>());
      dkdv<<<grid, kThreads, dkdv_smem<D>(), stream>>>(
          output<E>(gk), output<E>(gv), operand<E>(q), operand<E>(k),
          operand<E>(v), operand<E>(g), lse.data<float>(), delta.data<float>(), H, T, sc);
      KIRZL_CUDA_LAUNCH_CHECK();
      auto dq = flash_bwd_dq_kernel<E, D>;
      allow_smem(dq, dq_smem<D>());
      dq<<<grid, kThreads, dq_smem<D>(), stream>>>(output<E>(gq), operand<E>(q), operand<E>(k),
                                                   operand<E>(v), operand<E>(g), lse.data<float>(),
                                                   delta.data<float>(), H, T, sc);
      KIRZL_CUDA_LAUNCH_CHECK();
    });
  });
}

void register_flash_attention_kernels() {
  KIRZL_REGISTER_KERNEL(flash_attention_forward, DeviceType::CUDA, &flash_attention_forward);
  KIRZL_REGISTER_KERNEL(flash_attention_backward, DeviceType::CUDA, &flash_attention_backward);
}

}  // namespace kirzl::kernels::cuda
