// Op table rows: the fused transformer ops (include/kirzl/ops/fused.hpp): residual_layer_norm
// (both results, stacked), bias_gelu, linear_bias_gelu and gelu_mlp (widths that cuBLASLt's
// epilogues take and odd ones that fall back) and linear_cross_entropy (whole, chunked, padded
// classes, ignore_index). Each reference is the unfused composition, computed in float64 loops.
#include <cmath>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

std::vector<double> layer_norm_row(const std::vector<double>& v, const std::vector<double>& w, const std::vector<double>& b) {
  const double n = double(v.size());
  double mu = 0, var = 0;
  for (double e : v) mu += e;
  mu /= n;
  for (double e : v) var += (e - mu) * (e - mu);
  var /= n;
  std::vector<double> y;
  for (size_t j = 0; j < v.size(); ++j) y.push_back((v[j] - mu) / std::sqrt(var + 1e-5) * w[j] + b[j]);
  return y;
}

Tensor ref_residual_layer_norm(const Inputs& in) {
  const Tensor s = ref::zip(in[0], in[1], [](double a, double b) { return a + b; });
  const std::vector<double> w = ref::values(in[2]), b = ref::values(in[3]);
  const Tensor normed = ref::along(s, -1, [&](const std::vector<double>& v) { return layer_norm_row(v, w, b); });
  std::vector<double> both = ref::values(s), nv = ref::values(normed);
  both.insert(both.end(), nv.begin(), nv.end());
  std::vector<int64_t> shape{2};
  for (int64_t e : in[0].shape()) shape.push_back(e);
  return ref::make(Shape(shape), both);
}

/// Mean cross-entropy of hidden [N, C] x weight [V, C]^T over the first `classes` logits.
Tensor ref_linear_cross_entropy(const Inputs& in, int64_t classes, int64_t ignore_index) {
  const std::vector<double> h = ref::values(in[0]), w = ref::values(in[1]), t = ref::values(in[2]);
  const int64_t N = in[0].size(0), C = in[0].size(1), V = classes ? classes : in[1].size(0);
  double total = 0;
  int64_t counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (int64_t(t[n]) == ignore_index) continue;
    std::vector<double> logits(static_cast<size_t>(V));
    double m = -INFINITY, z = 0;
    for (int64_t v = 0; v < V; ++v) {
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += h[n * C + c] * w[v * C + c];
      logits[v] = s, m = std::max(m, s);
    }
    for (double l : logits) z += std::exp(l - m);
    total += -(logits[int64_t(t[n])] - m - std::log(z));
    ++counted;
  }
  return ref::make({}, {total / double(counted)});
}

double gelu_tanh(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); }

/// f(x [M, K] w [N, K]^T + b [N]) for x viewed as rows of K.
std::vector<double> ref_linear(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                               int64_t K, double (*f)(double)) {
  const int64_t M = K ? int64_t(x.size()) / K : 0, N = int64_t(b.size());
  std::vector<double> y(static_cast<size_t>(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b[n];
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = f ? f(s) : s;
    }
  return y;
}

Shape with_last(const Shape& s, int64_t n) {
  std::vector<int64_t> v(s.begin(), s.end());
  v.back() = n;
  return Shape(v);
}

Tensor ref_linear_bias_gelu(const Inputs& in) {
  const int64_t K = in[0].size(-1);
  return ref::make(with_last(in[0].shape(), in[1].size(0)),
                   ref_linear(ref::values(in[0]), ref::values(in[1]), ref::values(in[2]), K, gelu_tanh));
}

Tensor ref_gelu_mlp(const Inputs& in) {
  const int64_t K = in[0].size(-1), H = in[1].size(0);
  std::vector<double> h = ref_linear(ref::values(in[0]), ref::values(in[1]), ref::values(in[2]), K, gelu_tanh);
  return ref::make(with_last(in[0].shape(), in[3].size(0)),
                   ref_linear(h, ref::values(in[3]), ref::values(in[4]), H, nullptr));
}

}  // namespace

void add_fused_rows(std::vector<Row>& rows) {
  for (const auto& [variant, shape, strided] :
       {std::tuple<const char*, Shape, bool>{"odd_3x7x5", {3, 7, 5}, false}, {"strided_5x9", {5, 9}, true},
        {"wide_4x1032", {4, 1032}, false}, {"one_1x1", {1, 1}, false}, {"rows_257x1000", {257, 1000}, false},
        {"rows_3000x17", {3000, 17}, false}, {"gpt2_257x3072", {257, 3072}, false}}) {
    const int64_t C = shape[shape.size() - 1];
    Row r;
    r.op = "residual_layer_norm";
    r.variant = variant;
    r.args = {Arg{.shape = shape, .strided = strided}, Arg{.shape = shape, .strided = strided},
              Arg{.shape = {C}, .lo = 0.5, .hi = 1.5}, Arg{.shape = {C}, .lo = -1, .hi = 1}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) {
      ResidualLayerNormResult res = residual_layer_norm(in[0], in[1], in[2], in[3]);
      return stack({res.sum, res.normed});
    };
    r.reference = ref_residual_layer_norm;
    r.tol.reference = 20;
    r.tol.cuda = 100;
    // The statistics are taken over the sum rounded to the dtype, which the f64 reference does not round.
    r.tol.low_precision = 3;
    r.gradcheck_rtol = 1e-3;
    rows.push_back(r);

    Row g;
    g.op = "bias_gelu";
    g.variant = variant;
    g.args = {Arg{.shape = shape, .strided = strided}, Arg{.shape = {C}, .lo = -1, .hi = 1}};
    g.dtypes = float_dtypes();
    g.call = [](const Inputs& in) { return bias_gelu(in[0], in[1]); };
    g.reference = [](const Inputs& in) {
      return ref::zip(in[0], in[1], [](double x, double b) { return gelu_tanh(x + b); });
    };
    g.tol.reference = g.tol.cuda = 10;
    g.tol.low_precision = 3;  // x + bias is rounded to the dtype first
    g.deterministic = true;    // the bias gradient is summed over rows in a fixed order
    rows.push_back(g);
  }
  // linear_bias_gelu and gelu_mlp: x [.., K], c_fc [H, K], c_proj [C, H]. On CUDA, H a multiple
  // of 8 runs the cuBLASLt epilogues; odd H falls back to the unfused kernels (Note [GEMM
  // epilogues]), so both paths are compared with the CPU.
  struct Mlp {
    const char* variant;
    Shape x;
    int64_t H, C;
    bool strided;
  };
  const Mlp mlps[] = {
      {"odd_2x3x5_h7_c3", {2, 3, 5}, 7, 3, false},
      {"strided_5x9_h16_c9", {5, 9}, 16, 9, true},
      {"epilogue_33x24_h96_c24", {33, 24}, 96, 24, false},
      {"gpt2_width_64x768_h3072_c768", {64, 768}, 3072, 768, false},
  };
  for (const Mlp& m : mlps) {
    const int64_t K = m.x[m.x.size() - 1];
    // At GPT-2's width the sums over K = 768 and H = 3072 terms cancel so much that an elementwise
    // tolerance cannot hold bf16/f16 (a 16-bit rounding of h, times sqrt(H)): those dtypes at that
    // width are compared with an error bound scaled by the sum of |terms| in
    // tests/kernels/cuda/test_gemm_epilogue_cuda.cpp instead.
    const bool wide = m.H > 1024;
    const std::vector<DType> dtypes = wide ? std::vector<DType>{DType::f32, DType::f64} : float_dtypes();
    Row r;
    r.op = "linear_bias_gelu";
    r.variant = m.variant;
    r.args = {Arg{.shape = m.x, .strided = m.strided}, Arg{.shape = {m.H, K}, .lo = -1, .hi = 1},
              Arg{.shape = {m.H}, .lo = -1, .hi = 1}};
    r.dtypes = dtypes;
    r.call = [](const Inputs& in) { return linear_bias_gelu(in[0], in[1], in[2]); };
    r.reference = ref_linear_bias_gelu;
    r.tol.reference = wide ? 100 : 20;
    r.tol.cuda = wide ? 100 : 50;
    // The CPU rounds the pre-activation to the dtype before the GELU; cuBLASLt does not.
    r.tol.low_precision = 5;
    r.gradcheck_rtol = 1e-3;
    rows.push_back(r);

    Row g;
    g.op = "gelu_mlp";
    g.variant = m.variant;
    g.args = {Arg{.shape = m.x, .strided = m.strided}, Arg{.shape = {m.H, K}, .lo = -1, .hi = 1},
              Arg{.shape = {m.H}, .lo = -1, .hi = 1}, Arg{.shape = {m.C, m.H}, .lo = -1, .hi = 1},
              Arg{.shape = {m.C}, .lo = -1, .hi = 1}};
    g.dtypes = dtypes;
    g.call = [](const Inputs& in) { return gelu_mlp(in[0], in[1], in[2], in[3], in[4]); };
    g.reference = ref_gelu_mlp;
    g.tol.reference = wide ? 100 : 20;
    g.tol.cuda = wide ? 100 : 50;
    // Two products in a chain, the first one's result (h) rounded to the dtype: its rounding
    // errors are summed over H terms that cancel.
    g.tol.low_precision = 20;
    g.gradcheck_rtol = 1e-3;
    // At GPT-2's width the second product's cancellation defeats an elementwise bound even in
    // f32: that case is the GPU test's (scaled bound), not a row.
    if (!wide) rows.push_back(g);
  }

  struct Lce {
    const char* variant;
    int64_t N, C, V;
    LinearCrossEntropyOptions o;
  };
  const Lce lces[] = {
      {"odd_7x5_11", 7, 5, 11, {}},
      {"chunked_3_7x5_11", 7, 5, 11, {.chunk_rows = 3}},
      {"padded_classes_8_of_11", 7, 5, 11, {.num_classes = 8}},
      {"ignore_index_3", 9, 5, 6, {.ignore_index = 3}},
      {"large_64x96_1031", 64, 96, 1031, {.chunk_rows = 17}},
  };
  for (const Lce& l : lces) {
    Row r;
    r.op = "linear_cross_entropy";
    r.variant = l.variant;
    const int64_t classes = l.o.num_classes ? l.o.num_classes : l.V;
    r.args = {Arg{.shape = {l.N, l.C}}, Arg{.shape = {l.V, l.C}, .lo = -1, .hi = 1},
              Arg{.shape = {l.N}, .lo = 0, .hi = double(classes), .dtype = DType::i64}};
    r.dtypes = float_dtypes();
    const LinearCrossEntropyOptions o = l.o;
    r.call = [o](const Inputs& in) { return linear_cross_entropy(in[0], in[1], in[2], o); };
    r.reference = [o](const Inputs& in) { return ref_linear_cross_entropy(in, o.num_classes, o.ignore_index); };
    r.tol.reference = r.tol.cuda = 50;
    r.tol.low_precision = 3;  // the logits are rounded to the dtype
    rows.push_back(r);
  }
}

}  // namespace kirzl::testing::op_table
