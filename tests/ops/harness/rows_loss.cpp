// Op table rows: cross_entropy (every reduction, ignore_index, label smoothing, extra dims, a
// GPT-2-sized vocabulary row) and mse_loss (include/kirzl/ops/nn.hpp).
#include <cmath>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

/// Cross-entropy of logits [N, C, d...] against targets [N, d...].
Tensor ref_cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& o) {
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
