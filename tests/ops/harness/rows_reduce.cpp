// Op table rows: reductions (include/kirzl/ops/reduce.hpp) over all dims, subsets of dims with
// and without keepdim, strided and empty inputs, one large odd size (the two-stage CUDA sum), and
// the extrema with their indices.
#include <cmath>
#include <iterator>
#include <limits>
#include <string>
#include <tuple>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

double ref_sum(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return s;
}
double ref_mean(const std::vector<double>& v) { return ref_sum(v) / double(v.size()); }
double ref_var(const std::vector<double>& v, int64_t correction) {
  const double m = ref_mean(v);
  double s = 0;
  for (double e : v) s += (e - m) * (e - m);
  return s / double(int64_t(v.size()) - correction);
}
// Extrema propagate NaN (the first NaN is the extremum), else the first largest/smallest wins.
size_t ref_arg_extremum(const std::vector<double>& v, bool largest) {
  size_t k = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) return i;
    if (largest ? v[i] > v[k] : v[i] < v[k]) k = i;
  }
  return k;
}
double ref_max(const std::vector<double>& v) { return v[ref_arg_extremum(v, true)]; }
double ref_min(const std::vector<double>& v) { return v[ref_arg_extremum(v, false)]; }
double ref_argmax(const std::vector<double>& v) { return double(ref_arg_extremum(v, true)); }
double ref_argmin(const std::vector<double>& v) { return double(ref_arg_extremum(v, false)); }

struct Reduction {
  const char* variant;
  Arg x;
  Dims dims;
  bool keepdim;
};

Row reduce_row(const char* op, const Reduction& r, std::function<Tensor(const Tensor&, const Dims&, bool)> call,
               std::function<double(const std::vector<double>&)> f) {
  Row row;
  row.op = op;
  row.variant = r.variant;
  row.args = {r.x};
  row.dtypes = float_dtypes();
  row.call = [call, d = r.dims, k = r.keepdim](const Inputs& in) { return call(in[0], d, k); };
  row.reference = [f, d = r.dims, k = r.keepdim](const Inputs& in) { return ref::reduce(in[0], d, k, f); };
  return row;
}

/// The dims of a 4-bit mask, as a name ("dims_0_2", "dims_none") and a list.
std::pair<std::string, Dims> mask_dims(int bits) {
  std::string name = "dims";
  Dims dims;
  for (int64_t d = 0; d < 4; ++d)
    if ((bits >> d) & 1) dims.push_back(d), name += "_" + std::to_string(d);
  return {bits ? name : "dims_none", dims};
}

/// sum over every subset of the dims of 4-D shapes (contiguous, permuted, stepped), and the
/// layouts that take each CUDA path (two stages, rows, columns, split columns, split rows); the
/// values are small integers so that every dtype sums them exactly.
void add_reduce_layout_rows(std::vector<Row>& rows) {
  const std::vector<DType> all = {DType::f32, DType::bf16, DType::f64, DType::i32, DType::i64, DType::u8};
  const Shape shapes[] = {{3, 5, 7, 11}, {2, 1, 33, 65}, {40, 3, 1, 129}};
  for (size_t si = 0; si < std::size(shapes); ++si)
    for (int bits = 1; bits < 16; ++bits)
      for (int layout = 0; layout < (si == 0 ? 3 : 1); ++layout) {  // contiguous, permuted, stepped
        auto [name, dims] = mask_dims(bits);
        Row r;
        r.op = "sum";
        r.variant = std::string(layout == 1 ? "permuted_" : layout == 2 ? "stepped_" : "") + name + "_" + shape_name(shapes[si]);
        r.args = {Arg{.shape = shapes[si], .lo = 0, .hi = 20, .strided = layout == 2, .integral = true}};
        r.dtypes = all;
        const bool permute = layout == 1;
        r.call = [dims, permute](const Inputs& in) { return sum(permute ? in[0].permute({2, 0, 3, 1}) : in[0], dims); };
        r.reference = [dims, permute](const Inputs& in) {
          Tensor x = in[0].to(DType::f64);
          if (permute) x = ref::make(x.permute({2, 0, 3, 1}).shape(), ref::strided_values(x.permute({2, 0, 3, 1})));
          return ref::reduce(x, dims, false, ref_sum);
        };
        r.deterministic = true;
        rows.push_back(r);
      }
  struct Layout {
    const char* variant;
    Shape shape;
    Dims dims;
  };
  const Layout layouts[] = {
      {"rows_1000x1003", {1000, 1003}, {1}},        {"columns_4097x33", {4097, 33}, {0}},
      {"split_columns_3x100003x5", {3, 100003, 5}, {1}}, {"split_rows_7x150001", {7, 150001}, {1}},
      {"one_1x1", {1, 1}, {0, 1}},                  {"empty_rows_0x5", {0, 5}, {0}},
  };
  for (const Layout& l : layouts)
    for (bool misaligned : {false, true}) {
      if (misaligned && ref::numel_of(l.shape) <= 1) continue;
      Row r;
      r.op = "sum";
      r.variant = std::string(misaligned ? "misaligned_" : "") + l.variant;
      r.args = {Arg{.shape = l.shape, .lo = 0, .hi = 20, .misaligned = misaligned, .integral = true}};
      r.dtypes = {DType::f32, DType::bf16, DType::f16, DType::f64, DType::i64};
      // Sums of 10^5 values in [0, 20) exceed f16's range (65504).
      if (ref::numel_of(l.shape) > 1000000) r.dtypes = {DType::f32, DType::bf16, DType::f64, DType::i64};
      const Dims dims = l.dims;
      r.call = [dims](const Inputs& in) { return sum(in[0], dims); };
      r.reference = [dims](const Inputs& in) { return ref::reduce(in[0], dims, false, ref_sum); };
      r.tol.low_precision = 2;
      r.deterministic = true;
      rows.push_back(r);
    }
}

/// max/min/argmax/argmin along every dim with ties (small integers) and with NaN; and one long
/// vector with a late maximum, a tie after it, and NaNs.
void add_extremum_tie_rows(std::vector<Row>& rows) {
  const Shape shapes[] = {{3, 5, 7, 11}, {2, 1, 4099, 3}, {1, 9000}};
  using Fn = Tensor (*)(const Tensor&, int64_t, bool);
  const std::tuple<const char*, Fn, double (*)(const std::vector<double>&), bool> ops[] = {
      {"max_dim", [](const Tensor& x, int64_t d, bool k) { return max(x, d, k); }, ref_max, true},
      {"min_dim", [](const Tensor& x, int64_t d, bool k) { return min(x, d, k); }, ref_min, true},
      {"argmax", [](const Tensor& x, int64_t d, bool k) { return argmax(x, d, k); }, ref_argmax, false},
      {"argmin", [](const Tensor& x, int64_t d, bool k) { return argmin(x, d, k); }, ref_argmin, false},
  };
  for (const auto& [op, fn, f, differentiable] : ops)
    for (const Shape& shape : shapes)
      for (int64_t dim = 0; dim < shape.size(); ++dim)
        for (int kind = 0; kind < 3; ++kind) {  // ties in floats and signed ints, ties in u8, NaN
          Row r;
          r.op = op;
          r.variant = std::string(kind == 0 ? "ties_dim" : kind == 1 ? "ties_u8_dim" : "nan_dim") + std::to_string(dim) + "_" +
                      shape_name(shape);
          r.args = {Arg{.shape = shape, .lo = kind == 1 ? 0.0 : -3.0, .hi = kind == 1 ? 4.0 : 3.0, .specials = kind == 2,
                        .integral = true}};
          r.dtypes = kind == 0 ? std::vector<DType>{DType::f32, DType::bf16, DType::f64, DType::i32, DType::i64}
                     : kind == 1 ? std::vector<DType>{DType::u8}
                                 : std::vector<DType>{DType::f32, DType::bf16, DType::f64};
          r.call = [fn, dim](const Inputs& in) { return fn(in[0], dim, false); };
          r.reference = [f, dim](const Inputs& in) { return ref::reduce(in[0], {dim}, false, f); };
          r.differentiable = differentiable;
          r.no_gradcheck = "ties and NaN: the extremum is not differentiable there (the first one gets the gradient)";
          rows.push_back(r);
        }
  // The long vector: values in [-3, 3), a clear maximum at 777777 and a tie at 900001 (the first
  // must win); the NaN variant has NaNs at 654321 and 999999 (the first NaN wins).
  for (bool with_nan : {false, true}) {
    auto values = [with_nan] {
      std::vector<double> v(1000003);
      uint64_t state = 14;
      for (double& e : v) state = state * 6364136223846793005ULL + 1442695040888963407ULL, e = double(int64_t(state >> 61)) - 3;
      v[777777] = v[900001] = 50;
      if (with_nan) v[654321] = v[999999] = NAN;
      return v;
    };
    for (const auto& [op, fn, f, differentiable] : ops) {
      Row r;
      r.op = op;
      r.variant = with_nan ? "long_nan_1000003" : "long_ties_1000003";
      r.args = {Arg{.shape = {1000003}, .generate = values}};
      r.dtypes = {DType::f32};
      r.call = [fn](const Inputs& in) { return fn(in[0], 0, false); };
      r.reference = [f](const Inputs& in) { return ref::reduce(in[0], {0}, false, f); };
      r.differentiable = differentiable;
      rows.push_back(r);
    }
  }
}

}  // namespace

void add_reduce_rows(std::vector<Row>& rows) {
  const Reduction sums[] = {
      {"all_3x7x5", {.shape = {3, 7, 5}}, {}, false},
      {"dims_0_2_3x7x5", {.shape = {3, 7, 5}}, {0, 2}, false},
      {"last_keepdim_strided_5x9", {.shape = {5, 9}, .strided = true}, {-1}, true},
      {"middle_4x257x3", {.shape = {4, 257, 3}}, {1}, false},
      {"all_scalar", {.shape = {}}, {}, false},
      {"all_large_1000003", {.shape = {1000003}}, {}, false},
      {"rows_large_300x4099", {.shape = {300, 4099}}, {1}, false},
  };
  for (const Reduction& r : sums) {
    Row row = reduce_row("sum", r, [](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }, ref_sum);
    row.tol.reference = row.tol.cuda = 50;  // sums of up to 10^6 terms in another order
    row.deterministic = true;
    rows.push_back(row);
    Row m = reduce_row("mean", r, [](const Tensor& x, const Dims& d, bool k) { return mean(x, d, k); }, ref_mean);
    m.tol = row.tol;
    // f16 over 1000003 elements: found by this table when mean divided by the count as an f16
    // scalar (inf, so every mean was 0); mean now sums and divides 16-bit floats in f32.
    rows.push_back(m);
  }
  {
    Row row = reduce_row("sum", {"empty_0x3", {.shape = {0, 3}}, {0}, false},
                         [](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }, ref_sum);
    rows.push_back(row);
    Row ints = reduce_row("sum_int", {"dims_0_2_3x7x5", {.shape = {3, 7, 5}, .lo = -50, .hi = 50}, {0, 2}, false},
                          [](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }, ref_sum);
    ints.dtypes = {DType::i32, DType::i64, DType::u8};
    ints.args[0].lo = 0;
    ints.differentiable = false;
    rows.push_back(ints);
  }
  for (int64_t correction : {0, 1})
    for (const Reduction& r : {sums[0], sums[1], sums[2], sums[6]}) {
      Row row = reduce_row(correction ? "var" : "var_population", r,
                           [correction](const Tensor& x, const Dims& d, bool k) { return var(x, d, correction, k); },
                           [correction](const std::vector<double>& v) { return ref_var(v, correction); });
      row.tol.reference = row.tol.cuda = 50;
      row.tol.low_precision = 2;
      rows.push_back(row);
    }
  // Extrema: all dims (0-d result) and along one dim; the gradient goes to the first extremal
  // element. The indices are compared exactly.
  for (Reduction r : {sums[0], sums[2], sums[5]}) {
    r.dims = {}, r.keepdim = false;  // max(x) / min(x): over everything
    rows.push_back(reduce_row("max", r, [](const Tensor& x, const Dims&, bool) { return max(x); }, ref_max));
    rows.push_back(reduce_row("min", r, [](const Tensor& x, const Dims&, bool) { return min(x); }, ref_min));
  }
  const Reduction along[] = {
      {"dim1_3x7x5", {.shape = {3, 7, 5}}, {1}, false},
      {"dim0_keepdim_strided_5x9", {.shape = {5, 9}, .strided = true}, {0}, true},
      {"dim1_large_300x4099", {.shape = {300, 4099}}, {1}, false},
  };
  for (const Reduction& r : along) {
    const int64_t d = r.dims[0];
    const bool k = r.keepdim;
    rows.push_back(reduce_row("max_dim", r, [d](const Tensor& x, const Dims&, bool k) { return max(x, d, k); }, ref_max));
    rows.push_back(reduce_row("min_dim", r, [d](const Tensor& x, const Dims&, bool k) { return min(x, d, k); }, ref_min));
    Row am = reduce_row("argmax", r, [d](const Tensor& x, const Dims&, bool k) { return argmax(x, d, k); }, ref_argmax);
    am.differentiable = false;
    rows.push_back(am);
    Row an = reduce_row("argmin", r, [d](const Tensor& x, const Dims&, bool k) { return argmin(x, d, k); }, ref_argmin);
    an.differentiable = false;
    rows.push_back(an);
    (void)k;
  }
  add_reduce_layout_rows(rows);
  add_extremum_tie_rows(rows);
  // sum_to: the inverse of broadcasting (the backward of every broadcasting op).
  Row st;
  st.op = "sum_to";
  st.variant = "3x7x5_to_7x1";
  st.args = {Arg{.shape = {3, 7, 5}}};
  st.dtypes = float_dtypes();
  st.call = [](const Inputs& in) { return sum_to(in[0], {7, 1}); };
  st.reference = [](const Inputs& in) {
    return ref::reduce(in[0], {0, 2}, true, ref_sum).reshape({7, 1});
  };
  rows.push_back(st);
}

}  // namespace kirzl::testing::op_table
