// Matrix products: matmul (numpy semantics), bmm and linear, all on the GEMM primitive.
#include "kernels/gemm.h"
#include "kernels/gemm_epilogue.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/linalg.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

void check_operands(const char* op, const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  ops::check_defined(op, a, an);
  ops::check_defined(op, b, bn);
  ops::check_same_device(op, {&a, &b});
  KIRZL_CHECK(a.dtype() == b.dtype(), op, ": expected same dtype, got ", ops::describe_all({{an, &a}, {bn, &b}}),
              " (convert one with .to(dtype))");
  KIRZL_CHECK(is_floating(a.dtype()), op, ": expected a floating dtype (f32, f64, bf16, f16), got ",
              ops::describe_all({{an, &a}, {bn, &b}}));
}

Tensor transposed(const Tensor& t) { return t.transpose(-1, -2); }

// t [..., k] as [rows, k] (explicit rows: reshape cannot infer -1 when k == 0).
Tensor as_rows(const Tensor& t) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) rows *= t.size(d);
  return t.reshape({rows, t.size(-1)});
}

// Product of a [..., M, K] and b [..., K, N] (both >= 2-D, inner dims checked) with broadcast
// batch dims.
Tensor batched_product(const char* op, const Tensor& a, const Tensor& b) {
  const int64_t na = a.dim() - 2, nb = b.dim() - 2, n = std::max(na, nb);
  Shape batch;
  for (int64_t i = 0; i < n; ++i) {
    int64_t da = i < n - na ? 1 : a.size(i - (n - na));
    int64_t db = i < n - nb ? 1 : b.size(i - (n - nb));
    KIRZL_CHECK(da == db || da == 1 || db == 1, op, ": batch dimensions cannot be broadcast together (",
                ops::describe_all({{"a", &a}, {"b", &b}}), ")");
    batch.push_back(da == 1 ? db : da);
  }
  Shape sa = batch, sb = batch, so = batch;
  sa.push_back(a.size(-2));
  sa.push_back(a.size(-1));
  sb.push_back(b.size(-2));
  sb.push_back(b.size(-1));
  so.push_back(a.size(-2));
  so.push_back(b.size(-1));
  Tensor out = empty(so, options_of(a));
  kernels::gemm(out, a.detach().expand(sa), b.detach().expand(sb), false, false, 1.0, 0.0);
  if (autograd::any_requires_grad({&a, &b})) {
    Shape a_shape = a.shape(), b_shape = b.shape();
    Tensor ad = a.detach(), bd = b.detach();
    autograd::record(op, out, {a, b}, [a_shape, b_shape, ad, bd](const autograd::GradContext& c) {
      Tensor ga, gb;
      if (c.needs(0)) ga = sum_to(matmul(c.grad(), transposed(bd)), a_shape);
      if (c.needs(1)) gb = sum_to(matmul(transposed(ad), c.grad()), b_shape);
      return std::vector<Tensor>{ga, gb};
    });
  }
  return out;
}

// The calling thread's TF32 permission (see AllowTF32Guard): thread-local, so no thread can
// change another's numerics.
thread_local bool t_allow_tf32 = false;

}  // namespace

AllowTF32Guard::AllowTF32Guard(bool allow) : previous_(t_allow_tf32) { t_allow_tf32 = allow; }
AllowTF32Guard::~AllowTF32Guard() { t_allow_tf32 = previous_; }
bool tf32_allowed() noexcept { return t_allow_tf32; }

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands("matmul", a, b, "a", "b");
  KIRZL_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least one dimension, got ",
              ops::describe_all({{"a", &a}, {"b", &b}}));
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  KIRZL_CHECK(ka == kb, "matmul: inner dimensions do not match: a ", a.describe(), " has ", ka, " columns but b ",
              b.describe(), " has ", kb, " rows");
  // A 1-D operand becomes a matrix (a: one row, b: one column); the added dim is removed at the end.
  Tensor a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  Tensor b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  Tensor out;
  if (b2.dim() == 2 && a2.dim() > 2 && a2.is_contiguous()) {
    // Stacked rows times one matrix: one large GEMM (and one for each gradient) instead of a batch.
    Shape s = a2.shape();
    s[s.size() - 1] = b2.size(1);
    out = batched_product("matmul", as_rows(a2), b2).view(s);
  } else {
    out = batched_product("matmul", a2, b2);
  }
  if (a.dim() == 1) out = out.squeeze(-2);
  if (b.dim() == 1) out = out.squeeze(-1);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands("bmm", a, b, "a", "b");
  KIRZL_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-D tensors [B, n, k] and [B, k, m], got ",
              ops::describe_all({{"a", &a}, {"b", &b}}));
  KIRZL_CHECK(a.size(0) == b.size(0), "bmm: batch sizes differ: a ", a.describe(), ", b ", b.describe());
  KIRZL_CHECK(a.size(2) == b.size(1), "bmm: inner dimensions do not match: a ", a.describe(), " has ", a.size(2),
              " columns but b ", b.describe(), " has ", b.size(1), " rows");
  return batched_product("bmm", a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands("linear", x, weight, "input", "weight");
  KIRZL_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out_features, in_features], got ", weight.describe());
  KIRZL_CHECK(x.dim() >= 1, "linear: input must have at least one dimension, got ", x.describe());
  const int64_t in = weight.size(1), out_features = weight.size(0);
  KIRZL_CHECK(x.size(-1) == in, "linear: input has ", x.size(-1), " features but weight expects ", in, " (",
              ops::describe_all({{"input", &x}, {"weight", &weight}}), ")");
  if (bias.defined()) {
    ops::check_same_device("linear", {&x, &bias});
    KIRZL_CHECK(bias.dtype() == x.dtype(), "linear: expected same dtype, got ",
                ops::describe_all({{"input", &x}, {"bias", &bias}}));
    KIRZL_CHECK(bias.dim() == 1 && bias.size(0) == out_features, "linear: bias must be [", out_features, "] (",
                ops::describe_all({{"weight", &weight}, {"bias", &bias}}), ")");
  }
  Tensor x2 = as_rows(x);
  Tensor y = empty({x2.size(0), out_features}, options_of(x));
  // With a bias: one fused call (on CUDA the cuBLASLt bias epilogue) instead of a copy and a GEMM.
  if (bias.defined()) kernels::gemm_bias(y, x2.detach(), weight.detach(), bias.detach().contiguous());
  else kernels::gemm(y, x2.detach(), weight.detach(), false, true, 1.0, 0.0);
  if (autograd::any_requires_grad({&x2, &weight, &bias})) {
    Tensor xd = x2.detach(), wd = weight.detach();
    autograd::record("linear", y, {x2, weight, bias}, [xd, wd](const autograd::GradContext& c) {
      const Tensor& g = c.grad();
      Tensor gx, gw, gb;
      if (c.needs(0)) gx = matmul(g, wd);
      // Weight and bias gradients in one GEMM whose epilogue sums the bias gradient (CUDA:
      // cuBLASLt's BGRADB, Note [GEMM epilogues]) where the device has that kernel and no second
      // derivative is being built (the kernel records no graph), when KIRZL_GEMM_EPILOGUES is on.
      if (c.needs(1) && c.needs(2) && !g.requires_grad() && g.dtype() == xd.dtype() && kernels::gemm_epilogues_enabled() &&
          kernels::gemm_bgradb.has_kernel(g.device().type()) && g.size(0) > 0 && g.size(1) > 0 && xd.size(1) > 0) {
        gw = empty(wd.shape(), options_of(wd));
        gb = empty({wd.size(0)}, options_of(wd));
        kernels::gemm_bgradb(gw, gb, g.contiguous(), xd);
        return std::vector<Tensor>{gx, gw, gb};
      }
      if (c.needs(1)) gw = matmul(g.t(), xd);
      if (c.needs(2)) gb = sum(g, {0});
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  Shape s = x.shape();
  s[s.size() - 1] = out_features;
  return y.view(s);
}

}  // namespace kirzl
