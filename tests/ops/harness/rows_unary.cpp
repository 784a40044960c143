// Op table rows: the unary elementwise ops (include/kirzl/ops/elementwise.hpp), each on an odd
// size, a 3-D odd shape, a strided view, an empty tensor, a 0-d tensor and one large odd size
// (the vectorised kernels' bulk and tail: 1000003 elements, not a multiple of any pack).
#include <cmath>

#include "ops/harness/op_table.hpp"
#include "ops/harness/reference.hpp"

namespace kirzl::testing::op_table {

namespace {

struct Unary {
  const char* name;
  Tensor (*call)(const Tensor&);
  double (*ref)(double);
  double lo, hi;  // input range: inside the domain, away from kinks where gradients jump
  double tol = 1;  // reference tolerance multiplier
};

double gelu_erf(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

const Unary kUnary[] = {
    {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -2, 2},
    {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -2, 2},
    {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.1, 3},
    {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.1, 3},
    {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.1, 3},
    {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -2, 2},
    {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }, -3, 3},
    {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, -2, 2},
    {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return std::isnan(x) || x > 0 ? x : 0; }, -2, 2},
    {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_erf, -3, 3},
    {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::Tanh); }, gelu_tanh, -3, 3},
    {"pow_2", [](const Tensor& x) { return pow(x, 2.0); }, [](double x) { return x * x; }, -2, 2},
    {"pow_3", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return x * x * x; }, -2, 2},
    {"pow_half", [](const Tensor& x) { return pow(x, 0.5); }, [](double x) { return std::sqrt(x); }, 0.1, 3},
    {"pow_neg1_5", [](const Tensor& x) { return pow(x, -1.5); }, [](double x) { return std::pow(x, -1.5); }, 0.1, 3},
    {"pow_0", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, -2, 2},
    {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
     [](double x) { return std::isnan(x) ? x : std::min(std::max(x, -0.5), 0.7); }, -2, 2},
    {"add_scalar", [](const Tensor& x) { return add(x, 2.5); }, [](double x) { return x + 2.5; }, -2, 2},
    {"sub_scalar", [](const Tensor& x) { return sub(x, 2.5); }, [](double x) { return x - 2.5; }, -2, 2},
    {"mul_scalar", [](const Tensor& x) { return mul(x, -1.5); }, [](double x) { return x * -1.5; }, -2, 2},
    {"div_scalar", [](const Tensor& x) { return div(x, 4.0); }, [](double x) { return x / 4.0; }, -2, 2},
    {"rsub", [](const Tensor& x) { return rsub(x, 1.0); }, [](double x) { return 1.0 - x; }, -2, 2},
    {"rdiv", [](const Tensor& x) { return rdiv(x, 2.0); }, [](double x) { return 2.0 / x; }, 0.5, 3},
};

struct ShapeCase {
  const char* variant;
  Shape shape;
  bool strided = false, misaligned = false, specials = false;
};

const ShapeCase kShapes[] = {
    {"odd_257", {257}},
    {"odd_3x7x5", {3, 7, 5}},
    {"strided_5x9", {5, 9}, true},
    {"empty_2x0x3", {2, 0, 3}},
    {"scalar", {}},
    {"large_1000003", {1000003}},
    {"misaligned_4099", {4099}, false, true},
    {"specials_7", {7}, false, false, true},
};

}  // namespace

void add_unary_rows(std::vector<Row>& rows) {
  for (const Unary& u : kUnary)
    for (const ShapeCase& s : kShapes) {
      Row r;
      r.op = u.name;
      r.variant = s.variant;
      r.args = {Arg{.shape = s.shape, .lo = u.lo, .hi = u.hi, .strided = s.strided, .misaligned = s.misaligned,
                    .specials = s.specials}};
      if (s.specials) r.no_gradcheck = "NaN and infinities have no finite differences";
      r.dtypes = float_dtypes();
      auto call = u.call;
      auto f = u.ref;
      r.call = [call](const Inputs& in) { return call(in[0]); };
      r.reference = [f](const Inputs& in) { return ref::map(in[0], f); };
      r.tol.reference = u.tol;
      rows.push_back(r);
    }
  // Integer variants of the ops that keep integers integral: exact, signed and unsigned, with
  // clamp bounds that are not integers (rounded toward zero) or far outside the dtype's range.
  struct IntOp {
    const char* name;
    Tensor (*call)(const Tensor&);
    double (*ref)(double);
    bool signed_only;
  };
  const IntOp int_ops[] = {
      {"neg_int", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, true},
      {"abs_int", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, false},
      {"relu_int", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, false},
      {"clamp_int", [](const Tensor& x) { return clamp(x, -3.5, 20.2); },
       [](double x) { return std::trunc(std::min(std::max(x, -3.5), 20.2)); }, false},
      {"clamp_int_wide", [](const Tensor& x) { return clamp(x, -1e30, 1e30); }, [](double x) { return x; }, false},
  };
  for (const IntOp& op : int_ops)
    for (bool is_signed : {true, false}) {
      if (op.signed_only && !is_signed) continue;
      for (const ShapeCase& s : {kShapes[0], kShapes[5], kShapes[6]}) {
        Row r;
        r.op = op.name;
        r.variant = std::string(is_signed ? "signed_" : "unsigned_") + s.variant;
        r.args = {Arg{.shape = s.shape, .lo = is_signed ? -40.0 : 0.0, .hi = 60, .misaligned = s.misaligned}};
        r.dtypes = is_signed ? std::vector<DType>{DType::i32, DType::i64} : std::vector<DType>{DType::u8, DType::u16};
        auto call = op.call;
        auto f = op.ref;
        r.call = [call](const Inputs& in) { return call(in[0]); };
        r.reference = [f](const Inputs& in) { return ref::map(in[0], f); };
        r.differentiable = false;
        rows.push_back(r);
      }
    }
}

}  // namespace kirzl::testing::op_table
