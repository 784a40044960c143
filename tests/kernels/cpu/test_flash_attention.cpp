// The CPU flash-attention kernels (src/kernels/cpu/flash_attention.cpp) by themselves: the
// backward's key chunks (Note [flash backward by key chunks]) at and across their boundaries,
// against a plain long-double computation; pairs split across threads (Note [flash attention
// threads]), which must give the same bits; and the backward's workspace, which must grow with
// T, not T^2.
// Their agreement with the reference kernels and strided outputs: tests/ops/test_fused.cpp;
// through causal_attention: tests/ops/test_attention.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>
#include <kirzl/kirzl.hpp>

#include "kernels/flash_attention.h"
#include "support/peak_rss.hpp"

using namespace kirzl;

namespace {

struct Gradients {
  std::vector<long double> q, k, v;
};

// dq, dk, dv of causal attention for one (batch, head) of contiguous q, k [T, D], v, g [T, Dv],
// from the definitions: P = softmax(q k^T scale) over keys j <= i, dP = g v^T, dS = P (dP - rowsum(P dP)) scale,
// dq = dS k, dk = dS^T q, dv = P^T g.
Gradients plain_backward(const double* q, const double* k, const double* v, const double* g, int64_t T, int64_t D,
                         int64_t Dv, long double scale) {
  Gradients r{std::vector<long double>(T * D), std::vector<long double>(T * D), std::vector<long double>(T * Dv)};
  std::vector<long double> p(T), dp(T);
  for (int64_t i = 0; i < T; ++i) {
    long double m = -INFINITY, z = 0, delta = 0;
    for (int64_t j = 0; j <= i; ++j) {
      long double s = 0, t = 0;
      for (int64_t d = 0; d < D; ++d) s += static_cast<long double>(q[i * D + d]) * k[j * D + d];
      for (int64_t e = 0; e < Dv; ++e) t += static_cast<long double>(g[i * Dv + e]) * v[j * Dv + e];
      p[j] = s * scale;
      dp[j] = t;
      m = std::max(m, p[j]);
    }
    for (int64_t j = 0; j <= i; ++j) z += std::exp(p[j] - m);
    for (int64_t j = 0; j <= i; ++j) {
      p[j] = std::exp(p[j] - m) / z;
      delta += p[j] * dp[j];
    }
    for (int64_t j = 0; j <= i; ++j) {
      const long double ds = p[j] * (dp[j] - delta) * scale;
      for (int64_t d = 0; d < D; ++d) {
        r.q[i * D + d] += ds * k[j * D + d];
        r.k[j * D + d] += ds * q[i * D + d];
      }
      for (int64_t e = 0; e < Dv; ++e) r.v[j * Dv + e] += p[j] * g[i * Dv + e];
    }
  }
  return r;
}

}  // namespace

// Key chunks of 64: T below, at and past one chunk, two whole chunks, a chunk of one key, and
// several with a tail; the value head dim differs from the query's (8 and 5), in f64.
TEST(FlashAttentionCpuBackward, MatchesThePlainGradientsAcrossKeyChunks) {
  const int64_t B = 1, H = 2, D = 8, Dv = 5;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t T : {1, 63, 64, 65, 128, 129, 200}) {
    SCOPED_TRACE(::testing::Message() << "T = " << T);
    const TensorOptions f64{.dtype = DType::f64};
    Tensor q = uniform({B, H, T, D}, -2, 2, f64, nullptr), k = uniform({B, H, T, D}, -2, 2, f64, nullptr);
    Tensor v = uniform({B, H, T, Dv}, -1, 1, f64, nullptr), g = uniform({B, H, T, Dv}, -1, 1, f64, nullptr);
    Tensor out = empty({B, H, T, Dv}, f64), lse = empty({B, H, T}, f64);
    kernels::flash_attention_forward.kernel(DeviceType::CPU)(out, lse, q, k, v, scale);
    Tensor gq = empty({B, H, T, D}, f64), gk = empty({B, H, T, D}, f64), gv = empty({B, H, T, Dv}, f64);
    kernels::flash_attention_backward.kernel(DeviceType::CPU)(gq, gk, gv, g, out, lse, q, k, v, scale);
    const auto qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>(),
               gvv = g.to_vector<double>(), dq = gq.to_vector<double>(), dk = gk.to_vector<double>(),
               dv = gv.to_vector<double>();
    for (int64_t h = 0; h < H; ++h) {
      const Gradients want = plain_backward(qv.data() + h * T * D, kv.data() + h * T * D, vv.data() + h * T * Dv,
                                            gvv.data() + h * T * Dv, T, D, Dv, scale);
      for (int64_t e = 0; e < T * D; ++e) {
        ASSERT_NEAR(dq[h * T * D + e], static_cast<double>(want.q[e]), 1e-12) << "dq head " << h << " element " << e;
        ASSERT_NEAR(dk[h * T * D + e], static_cast<double>(want.k[e]), 1e-12) << "dk head " << h << " element " << e;
      }
      for (int64_t e = 0; e < T * Dv; ++e)
        ASSERT_NEAR(dv[h * T * Dv + e], static_cast<double>(want.v[e]), 1e-12) << "dv head " << h << " element " << e;
    }
  }
}

// Fewer (batch, head) pairs than threads: each pair is split by blocks of queries and key chunks
// (Note [flash attention threads]), which must give the bits of the whole pair on one thread, for
// the forward (out, lse) and all three gradients; T past one block, at several, with a tail.
TEST(FlashAttentionCpu, SplitPairsGiveTheBitsOfWholePairs) {
  const int threads = get_num_threads();
  for (auto [dt, B, H, T] : {std::tuple{DType::f32, 1, 1, 65}, {DType::f32, 1, 1, 300}, {DType::f64, 1, 1, 200},
                             {DType::bf16, 1, 1, 129}}) {
    SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " B " << B << " H " << H << " T " << T);
    const int64_t D = 16, Dv = 8;
    const TensorOptions o{.dtype = dt};
    const DType acc = dt == DType::f64 ? DType::f64 : DType::f32;
    Tensor q = uniform({B, H, T, D}, -2, 2, o, nullptr), k = uniform({B, H, T, D}, -2, 2, o, nullptr);
    Tensor v = uniform({B, H, T, Dv}, -1, 1, o, nullptr), g = uniform({B, H, T, Dv}, -1, 1, o, nullptr);
    auto run = [&](int n_threads) {
      set_num_threads(n_threads);
      Tensor out = empty({B, H, T, Dv}, o), lse = empty({B, H, T}, {.dtype = acc});
      kernels::flash_attention_forward.kernel(DeviceType::CPU)(out, lse, q, k, v, 0.25);
      Tensor gq = empty({B, H, T, D}, o), gk = empty({B, H, T, D}, o), gv = empty({B, H, T, Dv}, o);
      kernels::flash_attention_backward.kernel(DeviceType::CPU)(gq, gk, gv, g, out, lse, q, k, v, 0.25);
      std::vector<std::vector<double>> r;
      for (const Tensor& t : {out, lse, gq, gk, gv}) r.push_back(t.to(DType::f64).to_vector<double>());
      return r;
    };
    const auto whole = run(1), split = run(2);
    set_num_threads(threads);
    const char* names[] = {"out", "lse", "dq", "dk", "dv"};
    for (size_t t = 0; t < whole.size(); ++t)
      for (size_t i = 0; i < whole[t].size(); ++i)
        ASSERT_EQ(std::bit_cast<uint64_t>(whole[t][i]), std::bit_cast<uint64_t>(split[t][i])) << names[t] << " element " << i;
  }
}

// The backward's workspace is O(T (D + Dv + chunk)) per thread (Note [flash backward by key
// chunks]): at T = 2048, D = 16 about 3 MiB per (batch, head), two here, where P and dS of a
// row-wise backward and their transposes took 4 T^2 floats, 64 MiB per thread. Measured as the
// growth of the resident-memory high-water mark over the call.
TEST(FlashAttentionCpuBackward, WorkspaceGrowsWithTNotTSquared) {
  using kirzl::testing::proc_status_kib;
  if (!kirzl::testing::reset_peak_rss() || !proc_status_kib("VmHWM"))
    GTEST_SKIP() << "the resident-memory high-water mark cannot be reset here (/proc/self/clear_refs)";
  const int64_t B = 1, H = 2, T = 2048, D = 16;
  Tensor q = uniform({B, H, T, D}, -1, 1, {}, nullptr), k = uniform({B, H, T, D}, -1, 1, {}, nullptr);
  Tensor v = uniform({B, H, T, D}, -1, 1, {}, nullptr), g = uniform({B, H, T, D}, -1, 1, {}, nullptr);
  Tensor out = empty({B, H, T, D}), lse = empty({B, H, T});
  const double scale = 0.25;
  kernels::flash_attention_forward.kernel(DeviceType::CPU)(out, lse, q, k, v, scale);
  // The gradients are written (touched) before the measurement: only the workspace is measured.
  // (On the first backward of the process: freed memory of an earlier call could be reused
  // without growing the resident size; ctest runs each test in a process of its own.)
  Tensor gq = zeros({B, H, T, D}), gk = zeros({B, H, T, D}), gv = zeros({B, H, T, D});
  const int64_t before = *proc_status_kib("VmRSS");
  ASSERT_TRUE(kirzl::testing::reset_peak_rss());
  kernels::flash_attention_backward.kernel(DeviceType::CPU)(gq, gk, gv, g, out, lse, q, k, v, scale);
  const int64_t grown_kib = *proc_status_kib("VmHWM") - before;
  const int64_t t_squared_kib = 4 * T * T * static_cast<int64_t>(sizeof(float)) / 1024;
  RecordProperty("resident_growth_kib", std::to_string(grown_kib));
  EXPECT_LT(grown_kib, t_squared_kib / 4) << "the backward's resident memory grew by " << grown_kib
                                          << " KiB; 4 T^2 floats are " << t_squared_kib << " KiB";
  EXPECT_TRUE(std::isfinite(sum(gq).item<float>()) && std::isfinite(sum(gk).item<float>()));
}
