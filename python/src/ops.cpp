// Differentiable ops (kirzl/ops/*.hpp) with the C++ names. Small elementwise ops keep the GIL
// (releasing costs more than the op); large ones, GEMMs, convolutions and losses release it.
#include "common.h"

namespace kirzl::python {

namespace {

bool big(const Tensor& t) { return t.numel() >= kReleaseGilAbove; }

Reduction reduction_from(const std::string& r) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  if (r == "none") return Reduction::None;
  KIRZL_FAIL(ErrorCode::InvalidArgument, "reduction must be 'mean', 'sum' or 'none', got '", r, "'");
}

std::array<int64_t, 2> pair_from(const py::object& o) {
  if (py::isinstance<py::int_>(o)) {
    int64_t v = o.cast<int64_t>();
    return {v, v};
  }
  auto v = o.cast<std::vector<int64_t>>();
  KIRZL_CHECK(v.size() == 2, "expected an int or a pair of ints, got ", v.size(), " values");
  return {v[0], v[1]};
}

std::vector<int64_t> dims_from(const py::object& o) {
  if (o.is_none()) return {};
  if (py::isinstance<py::int_>(o)) return {o.cast<int64_t>()};
  return o.cast<std::vector<int64_t>>();
}

py::list tensors_to_list(const std::vector<Tensor>& v) {
  py::list out;
  for (const auto& t : v) out.append(py::cast(t));
  return out;
}

}  // namespace

#define KIRZL_UNARY(name, doc)                                   \
  m.def(                                                         \
      #name,                                                     \
      [](const Tensor& x) {                                      \
        MaybeRelease rel(big(x));                                \
        return name(x);                                          \
      },                                                         \
      py::arg("x"), doc);                                        \
  tensor.def(                                                    \
      #name,                                                     \
      [](const Tensor& x) {                                      \
        MaybeRelease rel(big(x));                                \
        return name(x);                                          \
      },                                                         \
      doc)

#define KIRZL_BINARY(name, doc)                                                                       \
  m.def(                                                                                              \
      #name, [](const Tensor& a, const Tensor& b) { MaybeRelease rel(big(a) || big(b)); return name(a, b); }, \
      py::arg("a"), py::arg("b"), doc);                                                               \
  m.def(#name, [](const Tensor& a, const py::object& b) { return name(a, to_tensor(b)); }, py::arg("a"), py::arg("b"))

#define KIRZL_ARITH(name, doc)                                                                         \
  m.def(                                                                                               \
      #name, [](const Tensor& a, const Tensor& b) { MaybeRelease rel(big(a) || big(b)); return name(a, b); }, \
      py::arg("a"), py::arg("b"), doc);                                                                \
  m.def(#name, [](const Tensor& a, double b) { return name(a, b); }, py::arg("a"), py::arg("b"));      \
  m.def(#name, [](const py::object& a, const py::object& b) { return name(to_tensor(a), to_tensor(b)); }, \
        py::arg("a"), py::arg("b"))

void init_ops(py::module_& m) {
  auto tensor = py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));

  m.def("broadcast_shapes", [](const py::object& a, const py::object& b) {
    return shape_to_py(broadcast_shapes(shape_from_py(a), shape_from_py(b)));
  }, py::arg("a"), py::arg("b"), "Broadcast shape of a and b (NumPy rules).");

  KIRZL_ARITH(add, "a + b with broadcasting and dtype promotion.");
  KIRZL_ARITH(sub, "a - b.");
  KIRZL_ARITH(mul, "a * b.");
  KIRZL_ARITH(div, "a / b.");
  m.def("rsub", &rsub, py::arg("a"), py::arg("b"), "b - a for a scalar b.");
  m.def("rdiv", &rdiv, py::arg("a"), py::arg("b"), "b / a for a scalar b.");
  KIRZL_BINARY(maximum, "Elementwise maximum.");
  KIRZL_BINARY(minimum, "Elementwise minimum.");
  KIRZL_BINARY(eq, "a == b as u8 0/1.");
  KIRZL_BINARY(ne, "a != b as u8.");
  KIRZL_BINARY(lt, "a < b as u8.");
  KIRZL_BINARY(le, "a <= b as u8.");
  KIRZL_BINARY(gt, "a > b as u8.");
  KIRZL_BINARY(ge, "a >= b as u8.");

  KIRZL_UNARY(neg, "-x.");
  KIRZL_UNARY(exp, "e ** x.");
  KIRZL_UNARY(log, "Natural logarithm.");
  KIRZL_UNARY(sqrt, "Square root.");
  KIRZL_UNARY(rsqrt, "1 / sqrt(x).");
  KIRZL_UNARY(tanh, "Hyperbolic tangent.");
  KIRZL_UNARY(sigmoid, "1 / (1 + exp(-x)).");
  KIRZL_UNARY(abs, "|x|.");
  KIRZL_UNARY(relu, "max(x, 0).");

  m.def("pow", &pow, py::arg("x"), py::arg("exponent"), "x ** exponent.");
  tensor.def("pow", &pow, py::arg("exponent"), "x ** exponent.");
  auto gelu_fn = [](const Tensor& x, const std::string& approximate) {
    KIRZL_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be 'none' or 'tanh', got '",
                approximate, "'");
    MaybeRelease rel(big(x));
    return gelu(x, approximate == "tanh" ? GeluApproximation::Tanh : GeluApproximation::None);
  };
  m.def("gelu", gelu_fn, py::arg("x"), py::arg("approximate") = "none", "GELU: exact (erf) or 'tanh' approximation.");
  tensor.def("gelu", gelu_fn, py::arg("approximate") = "none", "GELU: exact (erf) or 'tanh' approximation.");
  auto clamp_fn = [](const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
    return clamp(x, lo.value_or(-std::numeric_limits<double>::infinity()), hi.value_or(std::numeric_limits<double>::infinity()));
  };
  m.def("clamp", clamp_fn, py::arg("x"), py::arg("min") = py::none(), py::arg("max") = py::none(),
        "Limits each element to [min, max].");
  tensor.def("clamp", clamp_fn, py::arg("min") = py::none(), py::arg("max") = py::none(), "Limits every element to [min, max] (either may be None).");
  m.def("where", [](const py::object& c, const py::object& a, const py::object& b) { return where(to_tensor(c), to_tensor(a), to_tensor(b)); },
        py::arg("cond"), py::arg("a"), py::arg("b"), "cond ? a : b (broadcasting).");
  m.def("masked_fill", [](const Tensor& x, const py::object& mask, double v) { return masked_fill(x, to_tensor(mask), v); },
        py::arg("x"), py::arg("mask"), py::arg("value"), "x with `value` where mask is nonzero.");

  // ---- linalg ----
  m.def("matmul", [](const Tensor& a, const Tensor& b) { MaybeRelease rel(a.numel() * b.numel() > 4096); return matmul(a, b); },
        py::arg("a"), py::arg("b"), "NumPy matmul (same floating dtype for both operands).");
  m.def("bmm", [](const Tensor& a, const Tensor& b) { py::gil_scoped_release rel; return bmm(a, b); }, py::arg("a"), py::arg("b"), "Batched product of [B, n, k] and [B, k, m].");
  m.def("linear", [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
          py::gil_scoped_release rel;
          return linear(x, w, b.value_or(Tensor()));
        },
        py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), "x @ weight.T + bias.");
  tensor.def("matmul", [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, py::arg("other"), "NumPy matmul (same floating dtype for both operands).");

  // ---- nn functions ----
  m.def("softmax", [](const Tensor& x, int64_t dim) { MaybeRelease rel(big(x)); return softmax(x, dim); }, py::arg("x"), py::arg("dim") = -1, "Softmax along `dim` (max-subtracted).");
  m.def("log_softmax", [](const Tensor& x, int64_t dim) { MaybeRelease rel(big(x)); return log_softmax(x, dim); }, py::arg("x"), py::arg("dim") = -1, "Log-softmax along `dim`.");
  m.def("cross_entropy",
        [](const Tensor& logits, const py::object& targets, int64_t ignore_index, double label_smoothing, const std::string& reduction) {
          Tensor t = to_tensor(targets);
          CrossEntropyOptions o{.ignore_index = ignore_index, .label_smoothing = label_smoothing, .reduction = reduction_from(reduction)};
          py::gil_scoped_release rel;
          return cross_entropy(logits, t, o);
        },
        py::arg("logits"), py::arg("targets"), py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0,
        py::arg("reduction") = "mean", "Cross-entropy of logits [N, C] against integer targets [N] (fused log_softmax).");
  m.def("mse_loss", [](const Tensor& a, const py::object& b, const std::string& r) { return mse_loss(a, to_tensor(b), reduction_from(r)); },
        py::arg("input"), py::arg("target"), py::arg("reduction") = "mean", "Mean (or sum, or none) of squared differences.");
  m.def("layer_norm",
        [](const Tensor& x, const py::object& shape, const std::optional<Tensor>& w, const std::optional<Tensor>& b, double eps) {
          Shape s = shape_from_py(shape);
          py::gil_scoped_release rel;
          return layer_norm(x, s, w.value_or(Tensor()), b.value_or(Tensor()), eps);
        },
        py::arg("x"), py::arg("normalized_shape"), py::arg("weight") = py::none(), py::arg("bias") = py::none(), py::arg("eps") = 1e-5,
        "Normalises over the trailing `normalized_shape` dims (f32 statistics), then scales by weight and adds bias.");
  m.def("embedding", [](const Tensor& w, const py::object& idx) { return embedding(w, to_tensor(idx)); }, py::arg("weight"), py::arg("indices"), "Rows of `weight` picked by integer `indices`.");
  m.def("dropout", [](const Tensor& x, double p, bool training, Generator* gen) { MaybeRelease rel(big(x)); return dropout(x, p, training, gen); },
        py::arg("x"), py::arg("p"), py::arg("training") = true, py::arg("generator").none(true) = py::none(),
        "Zeroes each element with probability p and scales the rest by 1/(1-p) (identity when not training).");
  m.def("conv2d",
        [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, const py::object& stride, const py::object& padding,
           const py::object& dilation, int64_t groups) {
          Conv2dOptions o{.stride = pair_from(stride), .padding = pair_from(padding), .dilation = pair_from(dilation), .groups = groups};
          py::gil_scoped_release rel;
          return conv2d(x, w, b.value_or(Tensor()), o);
        },
        py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1, py::arg("padding") = 0,
        py::arg("dilation") = 1, py::arg("groups") = 1, "2-D convolution of x [N, Cin, H, W].");
  auto pool = [](bool is_max) {
    return [is_max](const Tensor& x, const py::object& k, const py::object& stride, const py::object& padding, bool cip) {
      Pool2dOptions o{.kernel_size = pair_from(k), .stride = stride.is_none() ? std::array<int64_t, 2>{0, 0} : pair_from(stride),
                      .padding = pair_from(padding), .count_include_pad = cip};
      py::gil_scoped_release rel;
      return is_max ? max_pool2d(x, o) : avg_pool2d(x, o);
    };
  };
  m.def("max_pool2d", pool(true), py::arg("x"), py::arg("kernel_size") = 2, py::arg("stride") = py::none(),
        py::arg("padding") = 0, py::arg("count_include_pad") = true, "Max pooling (stride defaults to kernel_size).");
  m.def("avg_pool2d", pool(false), py::arg("x"), py::arg("kernel_size") = 2, py::arg("stride") = py::none(),
        py::arg("padding") = 0, py::arg("count_include_pad") = true, "Average pooling.");
  m.def("batch_norm",
        [](const Tensor& x, const std::optional<Tensor>& rm, const std::optional<Tensor>& rv, const std::optional<Tensor>& w,
           const std::optional<Tensor>& b, bool training, double momentum, double eps) {
          py::gil_scoped_release rel;
          return batch_norm(x, rm.value_or(Tensor()), rv.value_or(Tensor()), w.value_or(Tensor()), b.value_or(Tensor()),
                            training, momentum, eps);
        },
        py::arg("x"), py::arg("running_mean"), py::arg("running_var"), py::arg("weight") = py::none(),
        py::arg("bias") = py::none(), py::arg("training") = false, py::arg("momentum") = 0.1, py::arg("eps") = 1e-5,
        "Batch normalisation of [N, C, ...]: batch statistics (updating the running ones) when training, else the running ones.");
  m.def("causal_attention", [](const Tensor& q, const Tensor& k, const Tensor& v) { py::gil_scoped_release rel; return causal_attention(q, k, v); },
        py::arg("q"), py::arg("k"), py::arg("v"), "Causal scaled-dot-product attention of [..., T, D] tensors.");
  m.def("causal_attention_qkv", [](const Tensor& qkv, int64_t n_head) { py::gil_scoped_release rel; return causal_attention_qkv(qkv, n_head); },
        py::arg("qkv"), py::arg("n_head"),
        "Causal self-attention of a [B, T, 3C] qkv projection with n_head heads: [B, T, C], one d(qkv) in backward.");

  // ---- reductions ----
  auto red = [](Tensor (*f)(const Tensor&, const Dims&, bool)) {
    return [f](const Tensor& x, const py::object& dim, bool keepdim) { MaybeRelease rel(big(x)); return f(x, dims_from(dim), keepdim); };
  };
  m.def("sum", red(&sum), py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Sum over dims (all when None).");
  m.def("mean", red(&mean), py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Mean over dims.");
  tensor.def("sum", red(&sum), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Sum over dims (all when None).");
  tensor.def("mean", red(&mean), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Mean over dims (all when None).");
  auto var_fn = [](const Tensor& x, const py::object& dim, int64_t correction, bool keepdim) { return var(x, dims_from(dim), correction, keepdim); };
  m.def("var", var_fn, py::arg("x"), py::arg("dim") = py::none(), py::arg("correction") = 1, py::arg("keepdim") = false,
        "Variance over dims, dividing by N - correction (1: unbiased).");
  tensor.def("var", var_fn, py::arg("dim") = py::none(), py::arg("correction") = 1, py::arg("keepdim") = false,
             "Variance over dims, dividing by N - correction (1: unbiased).");
  auto ext = [](bool is_max) {
    return [is_max](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
      if (!dim) return is_max ? max(x) : min(x);
      return is_max ? max(x, *dim, keepdim) : min(x, *dim, keepdim);
    };
  };
  m.def("max", ext(true), py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Largest element (over dim when given).");
  m.def("min", ext(false), py::arg("x"), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Smallest element (over dim when given).");
  tensor.def("max", ext(true), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Largest element (over dim when given).");
  tensor.def("min", ext(false), py::arg("dim") = py::none(), py::arg("keepdim") = false, "Smallest element (over dim when given).");
  m.def("argmax", &argmax, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false, "Index (i64) of the first largest element along `dim`.");
  m.def("argmin", &argmin, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false, "Index (i64) of the first smallest element along `dim`.");
  tensor.def("argmax", &argmax, py::arg("dim"), py::arg("keepdim") = false, "Index (i64) of the first largest element along `dim`.");
  tensor.def("argmin", &argmin, py::arg("dim"), py::arg("keepdim") = false, "Index (i64) of the first smallest element along `dim`.");
  m.def("sum_to", [](const Tensor& x, const py::object& s) { return sum_to(x, shape_from_py(s)); }, py::arg("x"), py::arg("shape"), "Sums `x` down to `shape` (the inverse of broadcasting).");
  tensor.def("softmax", [](const Tensor& x, int64_t dim) { return softmax(x, dim); }, py::arg("dim") = -1, "Softmax along `dim` (max-subtracted).");
  tensor.def("log_softmax", [](const Tensor& x, int64_t dim) { return log_softmax(x, dim); }, py::arg("dim") = -1, "Log-softmax along `dim`.");

  // ---- shape ops ----
  m.def("cat", [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); }, py::arg("tensors"), py::arg("dim") = 0, "Concatenates along an existing dim.");
  m.def("stack", [](const std::vector<Tensor>& ts, int64_t dim) { return stack(ts, dim); }, py::arg("tensors"), py::arg("dim") = 0, "Stacks equal-shaped tensors along a new dim.");
  m.def("split", [](const Tensor& x, const py::object& s, int64_t dim) {
          if (py::isinstance<py::int_>(s)) return tensors_to_list(split(x, s.cast<int64_t>(), dim));
          return tensors_to_list(split(x, s.cast<std::vector<int64_t>>(), dim));
        },
        py::arg("x"), py::arg("split_size_or_sizes"), py::arg("dim") = 0, "Views along dim.");
  m.def("chunk", [](const Tensor& x, int64_t chunks, int64_t dim) { return tensors_to_list(chunk(x, chunks, dim)); },
        py::arg("x"), py::arg("chunks"), py::arg("dim") = 0, "`chunks` nearly equal views along `dim`.");
}

}  // namespace kirzl::python
