// Op table rows: the binary elementwise ops, comparisons, where and masked_fill
// (include/kirzl/ops/elementwise.hpp): same odd shapes, numpy broadcasting both ways, a 0-d
// operand, strided and misaligned operands, empty, one large odd size, and the integer dtypes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

struct Binary {
  const char* name;
  Tensor (*call)(const Tensor&, const Tensor&);
  double (*ref)(double, double);
  bool integers;  // also on i32/i64 (exact)
};

const Binary kBinary[] = {
    {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double a, double b) { return a + b; }, true},
    {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double a, double b) { return a - b; }, true},
    {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double a, double b) { return a * b; }, true},
    {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double a, double b) { return a / b; }, false},
    {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
     [](double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); }, true},
    {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
     [](double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b); }, true},
};

const Binary kCompare[] = {
    {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, [](double a, double b) { return double(a == b); }, true},
    {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, [](double a, double b) { return double(a != b); }, true},
    {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, [](double a, double b) { return double(a < b); }, true},
    {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }, [](double a, double b) { return double(a <= b); }, true},
    {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, [](double a, double b) { return double(a > b); }, true},
    {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, [](double a, double b) { return double(a >= b); }, true},
};

struct Pair {
  const char* variant;
  Arg a, b;
};

// b of div stays away from 0: its lo/hi are overridden below.
const Pair kPairs[] = {
    {"odd_3x7x5", {.shape = {3, 7, 5}}, {.shape = {3, 7, 5}}},
    {"broadcast_3x1x5_4x1", {.shape = {3, 1, 5}}, {.shape = {4, 1}}},
    {"broadcast_9x17_17", {.shape = {9, 17}}, {.shape = {17}}},
    {"scalar_257", {.shape = {}}, {.shape = {257}}},
    {"strided_5x9", {.shape = {5, 9}, .strided = true}, {.shape = {5, 9}, .strided = true}},
    {"misaligned_4099", {.shape = {4099}, .misaligned = true}, {.shape = {4099}}},
    {"empty_0x3", {.shape = {0, 3}}, {.shape = {1, 3}}},
    {"large_1000003", {.shape = {1000003}}, {.shape = {1000003}}},
};

Row binary_row(const Binary& op, const Pair& p, std::vector<DType> dtypes, bool differentiable, bool integer_values) {
  Row r;
  r.op = op.name;
  r.variant = p.variant;
  Arg a = p.a, b = p.b;
  if (integer_values) a.lo = b.lo = -20, a.hi = b.hi = 20;
  if (std::string(op.name) == "div") b.lo = 0.5, b.hi = 3;
  r.args = {a, b};
  r.dtypes = std::move(dtypes);
  auto call = op.call;
  auto f = op.ref;
  r.call = [call](const Inputs& in) { return call(in[0], in[1]); };
  r.reference = [f](const Inputs& in) { return ref::zip(in[0], in[1], f); };
  r.differentiable = differentiable;
  return r;
}

}  // namespace

void add_binary_rows(std::vector<Row>& rows) {
  for (const Binary& op : kBinary)
    for (const Pair& p : kPairs) {
      rows.push_back(binary_row(op, p, float_dtypes(), true, false));
      if (op.integers && (p.variant == std::string("odd_3x7x5") || p.variant == std::string("broadcast_3x1x5_4x1") ||
                          p.variant == std::string("large_1000003") || p.variant == std::string("misaligned_4099"))) {
        Row r = binary_row(op, p, {DType::i32, DType::i64}, false, true);
        r.op += "_int";
        rows.push_back(r);
        // Unsigned: values in [0, 15), so that products fit u8; no sub (it would wrap).
        if (std::string(op.name) != "sub") {
          Row u = binary_row(op, p, {DType::u8, DType::u16}, false, true);
          u.op += "_uint";
          u.args[0].lo = u.args[1].lo = 0;
          u.args[0].hi = u.args[1].hi = 15;
          rows.push_back(u);
        }
      }
    }
  // NaN against numbers: maximum/minimum propagate NaN (and so do the arithmetic ops).
  for (const Binary& op : kBinary) {
    Pair p{"specials_7", {.shape = {7}, .specials = true}, {.shape = {7}}};
    Row r = binary_row(op, p, {DType::f32, DType::bf16}, true, false);
    r.no_gradcheck = "NaN and infinities have no finite differences";
    rows.push_back(r);
  }
  // Ties of maximum/minimum: b equals a wherever b was negative; the gradient is split evenly
  // there, on every device alike.
  for (const Binary& op : {kBinary[4], kBinary[5]}) {
    Row r = binary_row(op, kPairs[0], float_dtypes(), true, false);
    r.variant = "ties_3x7x5";
    r.call = [call = op.call](const Inputs& in) { return call(in[0], where(lt(in[1], 0.0 * in[1]), in[0], in[1])); };
    r.reference = [f = op.ref](const Inputs& in) {
      return ref::zip(in[0], in[1], [f](double a, double b) { return f(a, b < 0 ? a : b); });
    };
    r.no_gradcheck = "at ties maximum/minimum are not differentiable (the even split is a convention)";
    rows.push_back(r);
  }
  // Mixed dtypes: an i32 operand is promoted to the floating one on the device; the result is u8.
  {
    Row r;
    r.op = "lt_mixed";
    r.variant = "i32_vs_float_100";
    r.args = {Arg{.shape = {100}, .lo = 0, .hi = 5, .dtype = DType::i32}, Arg{.shape = {100}, .lo = -1, .hi = 6}};
    r.dtypes = {DType::f32, DType::bf16};
    r.call = [](const Inputs& in) {
      Tensor y = lt(in[0], in[1]);
      EXPECT_EQ(y.dtype(), DType::u8) << y.describe();
      return y;
    };
    r.reference = [](const Inputs& in) { return ref::zip(in[0], in[1], [](double a, double b) { return double(a < b); }); };
    r.differentiable = false;
    rows.push_back(r);
  }
  // In place into a strided view (Tensor::add_ on every other column of a buffer): the kernel
  // writes only the view's elements and leaves the gaps alone.
  {
    Row r;
    r.op = "add_inplace";
    r.variant = "strided_out_7x9";
    r.args = {Arg{.shape = {7, 9}}, Arg{.shape = {7, 9}}};
    r.dtypes = {DType::f32, DType::bf16, DType::i32};
    r.call = [](const Inputs& in) {
      NoGradGuard no_grad;
      Tensor buf = full({7, 18}, 123.0, {.dtype = in[0].dtype(), .device = in[0].device()});
      Tensor view = buf.slice(1, 1, 18, 2);
      view.copy_(in[0]);
      view.add_(in[1]);
      return buf;
    };
    r.reference = [](const Inputs& in) {
      const std::vector<double> a = ref::values(in[0]), b = ref::values(in[1]);
      std::vector<double> out(7 * 18, 123.0);
      for (int64_t i = 0; i < 7; ++i)
        for (int64_t j = 0; j < 9; ++j) out[i * 18 + 2 * j + 1] = a[i * 9 + j] + b[i * 9 + j];
      return ref::make({7, 18}, out);
    };
    r.differentiable = false;
    rows.push_back(r);
  }
  // Comparisons: small integer values in a floating dtype, so that ties (eq) occur.
  for (const Binary& op : kCompare)
    for (const Pair& p : {kPairs[0], kPairs[1], kPairs[4]}) {
      Row r = binary_row(op, p, {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::u8}, false, true);
      r.args[0].lo = r.args[1].lo = 0;  // u8 too
      r.call = [call = op.call](const Inputs& in) {
        // Round floats to integers first, so that equal values actually occur.
        auto ints = [](const Tensor& t) { return is_floating(t.dtype()) ? t.to(DType::i64).to(t.dtype()) : t; };
        return call(ints(in[0]), ints(in[1]));
      };
      r.reference = [f = op.ref](const Inputs& in) {
        auto ints = [](const Tensor& t) { return ref::map(t, [](double v) { return std::trunc(v); }); };
        return ref::zip(ints(in[0]), ints(in[1]), f);
      };
      rows.push_back(r);
    }
  // where(cond, a, b), all three broadcast; cond is u8.
  for (const auto& [variant, sc, sa, sb] : {std::tuple<const char*, Shape, Shape, Shape>{"odd_3x7x5", {3, 7, 5}, {3, 7, 5}, {3, 7, 5}},
                                            {"broadcast_3x1x5_4x1_scalar", {3, 1, 5}, {4, 1}, {}},
                                            {"broadcast_17_9x17_9x1", {17}, {9, 17}, {9, 1}}}) {
    Row r;
    r.op = "where";
    r.variant = variant;
    r.args = {Arg{.shape = sc, .lo = 0, .hi = 2, .dtype = DType::u8}, Arg{.shape = sa}, Arg{.shape = sb}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) { return where(in[0], in[1], in[2]); };
    r.reference = [](const Inputs& in) {
      return ref::zip(in, [](const std::vector<double>& v) { return v[0] != 0 ? v[1] : v[2]; });
    };
    rows.push_back(r);
  }
  for (const auto& [variant, sx, sm] : {std::tuple<const char*, Shape, Shape>{"odd_3x7x5", {3, 7, 5}, {3, 7, 5}},
                                        {"broadcast_3x7x5_7x1", {3, 7, 5}, {7, 1}}}) {
    Row r;
    r.op = "masked_fill";
    r.variant = variant;
    r.args = {Arg{.shape = sx}, Arg{.shape = sm, .lo = 0, .hi = 2, .dtype = DType::u8}};
    r.dtypes = float_dtypes();
    r.call = [](const Inputs& in) { return masked_fill(in[0], in[1], -7.5); };
    r.reference = [](const Inputs& in) {
      return ref::zip(in[0], in[1], [](double x, double m) { return m != 0 ? -7.5 : x; });
    };
    rows.push_back(r);
  }
}

}  // namespace kirzl::testing::op_table
