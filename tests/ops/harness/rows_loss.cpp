// Op table rows: cross_entropy (every reduction, ignore_index, label smoothing, extra dims, a
// GPT-2-sized vocabulary row) and mse_loss (include/kirzl/ops/nn.hpp).
#include <cmath>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

/// Cross-entropy of logits [N, C, d...] against targets [N, d...].
Tensor ref_cross_entropy(const Tensor& logits_in, const Tensor& targets, const CrossEntropyOptions& o) {
  // [C] logits with a 0-d target: one row.
  const bool one_row = logits_in.dim() == 1;
  const Tensor logits = one_row ? ref::make({1, logits_in.size(0)}, ref::values(logits_in)) : logits_in;
  const Shape& s = logits.shape();
  const int64_t N = s[0], C = s[1], inner = ref::numel_of(s) / std::max<int64_t>(N * C, 1);
  const std::vector<double> x = ref::values(logits), t = ref::values(targets);
  std::vector<double> losses;
  double total = 0;
  int64_t counted = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t target = int64_t(t[n * inner + i]);
      if (target == o.ignore_index) {
        losses.push_back(0);
        continue;
      }
      double m = -INFINITY, z = 0, sum_logp = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, x[(n * C + c) * inner + i]);
      for (int64_t c = 0; c < C; ++c) z += std::exp(x[(n * C + c) * inner + i] - m);
      auto logp = [&](int64_t c) { return x[(n * C + c) * inner + i] - m - std::log(z); };
      for (int64_t c = 0; c < C; ++c) sum_logp += logp(c);
      const double loss = -(1 - o.label_smoothing) * logp(target) - o.label_smoothing / double(C) * sum_logp;
      losses.push_back(loss);
      total += loss;
      ++counted;
    }
  if (o.reduction == Reduction::None) {
    if (one_row) return ref::make({}, losses);
    std::vector<int64_t> out{N};
    for (size_t d = 2; d < size_t(s.size()); ++d) out.push_back(s[d]);
    return ref::make(Shape(out), losses);
  }
  return ref::make({}, {o.reduction == Reduction::Sum ? total : total / double(counted)});
}

}  // namespace

void add_loss_rows(std::vector<Row>& rows) {
  struct Ce {
    const char* variant;
    Shape logits, targets;
    CrossEntropyOptions o;
  };
  const Ce ces[] = {
      {"mean_6x5", {6, 5}, {6}, {}},
      {"sum_6x5", {6, 5}, {6}, {.reduction = Reduction::Sum}},
      {"none_6x5", {6, 5}, {6}, {.reduction = Reduction::None}},
      {"ignore_index_2_9x5", {9, 5}, {9}, {.ignore_index = 2}},
      {"label_smoothing_6x5", {6, 5}, {6}, {.label_smoothing = 0.1}},
      {"extra_dims_2x5x3", {2, 5, 3}, {2, 3}, {}},
      {"vocab_4x50257", {4, 50257}, {4}, {}},
  };
  for (const Ce& c : ces) {
    Row r;
    r.op = "cross_entropy";
    r.variant = c.variant;
    r.args = {Arg{.shape = c.logits, .lo = -4, .hi = 4}, Arg{.shape = c.targets, .lo = 0, .hi = double(c.logits[1]), .dtype = DType::i64}};
    r.dtypes = float_dtypes();
    const CrossEntropyOptions o = c.o;
    r.call = [o](const Inputs& in) { return cross_entropy(in[0], in[1], o); };
    r.reference = [o](const Inputs& in) { return ref_cross_entropy(in[0], in[1], o); };
    r.tol.reference = r.tol.cuda = 20;
    r.tol.low_precision = 2;
    rows.push_back(r);
  }
  // The CUDA kernels' paths: one class, few classes, warp and block rows, aligned and odd class
  // counts up to a GPT-2 vocabulary, the strided [N, C, S] path and [C] logits; every third target
  // ignored (ignore_index -100), label smoothing, per-element and reduced losses.
  for (const Shape& shape : {Shape{1, 1}, Shape{4, 3}, Shape{33, 1000}, Shape{5, 1003}, Shape{6, 5003}, Shape{3, 50304},
                             Shape{3, 5, 7}, Shape{17}})
    for (Reduction red : {Reduction::Mean, Reduction::None}) {
      Shape ts;
      for (int64_t d = 0; d < shape.size(); ++d)
        if (d != (shape.size() == 1 ? 0 : 1)) ts.push_back(shape[d]);
      const int64_t classes = shape.size() == 1 ? shape[0] : shape[1];
      Row r;
      r.op = "cross_entropy";
      r.variant = std::string(red == Reduction::Mean ? "mean" : "none") + "_ignore_third_smooth_" + shape_name(shape);
      const int64_t n = ref::numel_of(ts);
      auto targets = [n, classes] {
        std::vector<double> v;
        for (int64_t i = 0; i < n; ++i) v.push_back(i % 3 == 0 ? -100 : double((i * 7919) % classes));
        return v;
      };
      r.args = {Arg{.shape = shape, .lo = -5, .hi = 5}, Arg{.shape = ts, .dtype = DType::i64, .generate = targets}};
      r.dtypes = {DType::f32, DType::f64, DType::bf16};
      const CrossEntropyOptions o{.ignore_index = -100, .label_smoothing = 0.05, .reduction = red};
      r.call = [o](const Inputs& in) { return cross_entropy(in[0], in[1], o); };
      r.reference = [o](const Inputs& in) { return ref_cross_entropy(in[0], in[1], o); };
      r.tol = {20, 20, 2};
      if (n == 1 && red == Reduction::Mean) r.no_gradcheck = "its only target is ignored: the mean is NaN";
      rows.push_back(r);
    }
  // Every target ignored: the mean is NaN (0 / 0) and the gradient zero, on every device.
  {
    Row r;
    r.op = "cross_entropy";
    r.variant = "all_ignored_4x10";
    r.args = {Arg{.shape = {4, 10}}, Arg{.shape = {4}, .dtype = DType::i64, .values = {-100, -100, -100, -100}}};
    r.dtypes = {DType::f32, DType::f64};
    r.call = [](const Inputs& in) { return cross_entropy(in[0], in[1]); };
    r.reference = [](const Inputs& in) { return ref_cross_entropy(in[0], in[1], {}); };
    r.no_gradcheck = "the loss is NaN (no target counted)";
    rows.push_back(r);
  }
  {
    Row r;
    r.op = "cross_entropy";
    r.variant = "i32_targets_6x5";
    r.args = {Arg{.shape = {6, 5}}, Arg{.shape = {6}, .lo = 0, .hi = 5, .dtype = DType::i32}};
    r.dtypes = {DType::f32, DType::f64};
    r.call = [](const Inputs& in) { return cross_entropy(in[0], in[1]); };
    r.reference = [](const Inputs& in) { return ref_cross_entropy(in[0], in[1], {}); };
    rows.push_back(r);
  }
  for (const auto& [variant, si, st, red] :
       {std::tuple<const char*, Shape, Shape, Reduction>{"mean_3x7x5", {3, 7, 5}, {3, 7, 5}, Reduction::Mean},
        {"sum_broadcast_3x7x5_7x1", {3, 7, 5}, {7, 1}, Reduction::Sum},
        {"none_strided_5x9", {5, 9}, {5, 9}, Reduction::None}}) {
    Row r;
    r.op = "mse_loss";
    r.variant = variant;
    r.args = {Arg{.shape = si, .strided = red == Reduction::None}, Arg{.shape = st}};
    r.dtypes = float_dtypes();
    const Reduction rd = red;
    r.call = [rd](const Inputs& in) { return mse_loss(in[0], in[1], rd); };
    r.reference = [rd](const Inputs& in) {
      Tensor sq = ref::zip(in[0], in[1], [](double a, double b) { return (a - b) * (a - b); });
      if (rd == Reduction::None) return sq;
      return ref::reduce(sq, {}, false, [rd](const std::vector<double>& v) {
        double s = 0;
        for (double e : v) s += e;
        return rd == Reduction::Sum ? s : s / double(v.size());
      });
    };
    r.tol.reference = r.tol.cuda = 20;
    r.tol.low_precision = 2;
    rows.push_back(r);
  }
}

}  // namespace kirzl::testing::op_table
