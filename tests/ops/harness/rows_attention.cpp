// Op table rows: causal_attention (include/kirzl/ops/nn.hpp): the reference kernels (small head
// dims, f64) and the CUDA flash kernels (f32/bf16/f16, D in {64, 128}, T not a multiple of the
// tile), contiguous and strided; on CUDA the bf16/f16 rows with D in {64, 128} run in cuDNN's
// fused attention where the build has it (Note [cudnn sdpa]). causal_attention_qkv: the same
// attention from one [B, T, 3C] projection, against the reference applied to its three parts.
#include <cmath>
#include <string>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

/// softmax(q k^T / sqrt(D) + causal mask) v over the last two dims of [..., T, D].
Tensor ref_causal_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  const Shape& s = q_in.shape();
  const int64_t T = s[s.size() - 2], D = s[s.size() - 1], Dv = v_in.shape()[s.size() - 1];
  const int64_t heads = ref::numel_of(s) / std::max<int64_t>(T * D, 1);
  const std::vector<double> q = ref::values(q_in), k = ref::values(k_in), v = ref::values(v_in);
  std::vector<double> out(static_cast<size_t>(heads * T * Dv)), p(static_cast<size_t>(T));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < T; ++i) {
      double m = -INFINITY, z = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += q[(h * T + i) * D + d] * k[(h * T + j) * D + d];
        p[j] = dot / std::sqrt(double(D));
        m = std::max(m, p[j]);
      }
      for (int64_t j = 0; j <= i; ++j) z += (p[j] = std::exp(p[j] - m));
      for (int64_t e = 0; e < Dv; ++e) {
        double acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += p[j] / z * v[(h * T + j) * Dv + e];
        out[(h * T + i) * Dv + e] = acc;
      }
    }
  std::vector<int64_t> os(s.begin(), s.end());
  os.back() = Dv;
  return ref::make(Shape(os), out);
}

/// causal_attention_qkv's reference: qkv [B, T, 3C] split into q, k, v, as [B, H, T, D] heads,
/// attended, back to [B, T, C].
Tensor ref_causal_attention_qkv(const Tensor& qkv_in, int64_t n_head) {
  const int64_t B = qkv_in.shape()[0], T = qkv_in.shape()[1], C = qkv_in.shape()[2] / 3, D = C / n_head;
  const std::vector<double> x = ref::values(qkv_in);
  std::vector<std::vector<double>> parts(3, std::vector<double>(static_cast<size_t>(B * n_head * T * D)));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t p = 0; p < 3; ++p)
        for (int64_t h = 0; h < n_head; ++h)
          for (int64_t d = 0; d < D; ++d)
            parts[p][((b * n_head + h) * T + t) * D + d] = x[(b * T + t) * 3 * C + p * C + h * D + d];
  const Shape hs{B, n_head, T, D};
  const std::vector<double> o =
      ref::values(ref_causal_attention(ref::make(hs, parts[0]), ref::make(hs, parts[1]), ref::make(hs, parts[2])));
  std::vector<double> y(static_cast<size_t>(B * T * C));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < n_head; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) y[(b * T + t) * C + h * D + d] = o[((b * n_head + h) * T + t) * D + d];
  return ref::make(Shape{B, T, C}, y);
}

}  // namespace

void add_attention_rows(std::vector<Row>& rows) {
  struct Att {
    const char* variant;
    Shape shape;
    bool strided;
    std::vector<DType> dtypes;
  };
  const Att atts[] = {
      {"reference_2x3x5x4", {2, 3, 5, 4}, false, float_dtypes()},
      {"reference_3d_strided_2x6x3", {2, 6, 3}, true, float_dtypes()},
      {"flash_d64_1x2x17x64", {1, 2, 17, 64}, false, float_dtypes()},
      {"flash_d64_strided_2x2x33x64", {2, 2, 33, 64}, true, {DType::f32, DType::bf16}},
      {"flash_d128_1x2x100x128", {1, 2, 100, 128}, false, {DType::f32, DType::bf16, DType::f16}},
  };
  for (const Att& a : atts) {
    Row r;
    r.op = "causal_attention";
    r.variant = a.variant;
    for (int i = 0; i < 3; ++i) r.args.push_back(Arg{.shape = a.shape, .strided = a.strided});
    r.dtypes = a.dtypes;
    r.call = [](const Inputs& in) { return causal_attention(in[0], in[1], in[2]); };
    r.reference = [](const Inputs& in) { return ref_causal_attention(in[0], in[1], in[2]); };
    r.tol.reference = 20;
    r.tol.cuda = 100;  // the flash kernels' online softmax sums in tiles
    r.tol.low_precision = 3;
    // The flash kernels promise a fixed order (a second backward gives the same bits); so does
    // cuDNN's deterministic backward, which the bf16/f16 rows run in where the build has it (Note
    // [cudnn sdpa]: where this cuDNN has none for the shape, it takes the other, and this fails).
    r.deterministic = std::string(a.variant).rfind("flash", 0) == 0;
    rows.push_back(r);
  }
  // The reference kernels: one position, 128 positions, and a value head dim other than the
  // query's (D = 8, Dv = 12).
  for (const auto& [variant, sq, sv] : {std::tuple<const char*, Shape, Shape>{"reference_T1_6x1x16", {6, 1, 16}, {6, 1, 16}},
                                        {"reference_T128_6x128x16", {6, 128, 16}, {6, 128, 16}},
                                        {"reference_dv12_6x17x8", {6, 17, 8}, {6, 17, 12}}}) {
    Row r;
    r.op = "causal_attention";
    r.variant = variant;
    r.args = {Arg{.shape = sq}, Arg{.shape = sq}, Arg{.shape = sv}};
    r.dtypes = {DType::f32, DType::f64, DType::bf16};
    r.call = [](const Inputs& in) { return causal_attention(in[0], in[1], in[2]); };
    r.reference = [](const Inputs& in) { return ref_causal_attention(in[0], in[1], in[2]); };
    r.tol = {20, 100, 3};
    rows.push_back(r);
  }
  // Only some of q, k, v require a gradient: the backward computes just those (mask bit 0: q,
  // 1: k, 2: v), for the reference kernels (D = 16) and the flash kernels (D = 64).
  for (int64_t D : {16, 64})
    for (int mask = 1; mask < 7; ++mask) {
      Row r;
      r.op = "causal_attention";
      r.variant = std::string("grads") + (mask & 1 ? "_q" : "") + (mask & 2 ? "_k" : "") + (mask & 4 ? "_v" : "") + "_3x33x" +
                  std::to_string(D);
      for (int i = 0; i < 3; ++i) r.args.push_back(Arg{.shape = {3, 33, D}, .lo = -1, .hi = 1, .grad = bool((mask >> i) & 1)});
      r.dtypes = {DType::f32};
      r.call = [](const Inputs& in) { return causal_attention(in[0], in[1], in[2]); };
      r.reference = [](const Inputs& in) { return ref_causal_attention(in[0], in[1], in[2]); };
      r.tol = {20, 100, 3};
      rows.push_back(r);
    }
  // causal_attention_qkv: the reference kernels (D = 4, 16; f64), the flash kernels and cuDNN on
  // CUDA (D = 64, 128; T = 1, 17, 100), a strided qkv (made contiguous by the op).
  struct Qkv {
    const char* variant;
    Shape shape;
    int64_t n_head;
    bool strided;
    std::vector<DType> dtypes;
  };
  const Qkv qkvs[] = {
      {"reference_2x5x24_h2", {2, 5, 24}, 2, false, float_dtypes()},
      {"reference_strided_1x7x36_h3", {1, 7, 36}, 3, true, float_dtypes()},
      {"T1_2x1x384_h2", {2, 1, 384}, 2, false, {DType::f32, DType::bf16, DType::f16}},
      {"d64_2x17x384_h2", {2, 17, 384}, 2, false, float_dtypes()},
      {"d128_1x100x768_h2", {1, 100, 768}, 2, false, {DType::f32, DType::bf16, DType::f16}},
  };
  for (const Qkv& a : qkvs) {
    Row r;
    r.op = "causal_attention_qkv";
    r.variant = a.variant;
    r.args = {Arg{.shape = a.shape, .strided = a.strided}};
    r.dtypes = a.dtypes;
    const int64_t n_head = a.n_head;
    r.call = [n_head](const Inputs& in) { return causal_attention_qkv(in[0], n_head); };
    r.reference = [n_head](const Inputs& in) { return ref_causal_attention_qkv(in[0], n_head); };
    r.tol.reference = 20;
    r.tol.cuda = 100;
    r.tol.low_precision = 3;
    rows.push_back(r);
  }
}

}  // namespace kirzl::testing::op_table
