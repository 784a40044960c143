// causal_attention: scaled-dot-product attention with a causal mask. CPU: the reference kernel
// (T x T probabilities saved). CUDA: the flash kernels where they apply (see Note [flash path]).
#include <cmath>
#include <string>

#include "kernels/attention.h"
#include "kernels/flash_attention.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// Note [flash path]: on CUDA, for f32/bf16/f16 with head dim 64 or 128 (and Dv == D), attention
// runs in the flash kernels: only the output and one log-sum-exp per row are saved, never the
// T x T matrix. 4-D q/k/v views with unit last-dim stride (e.g. split from [B, T, 3C] and
// transposed) are read in place; other layouts are made contiguous first. Other head dims and
// f64 use the reference kernels below, explicitly.
Tensor flash_causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  auto as4 = [](const Tensor& t) {
    if (t.dim() == 4 && t.stride(3) == 1) return t.detach();
    Tensor c = t.detach().contiguous();
    int64_t batch = 1;
    for (int64_t d = 0; d < t.dim() - 2; ++d) batch *= t.size(d);
    return c.reshape({1, batch, t.size(-2), t.size(-1)});
  };
  Tensor q4 = as4(q), k4 = as4(k), v4 = as4(v);
  const DType acc = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor out4 = empty(q4.shape(), options_of(q));
  Tensor lse = empty({q4.size(0), q4.size(1), q4.size(2)}, {.dtype = acc, .device = q.device()});
  if (q4.numel() > 0) kernels::flash_attention_forward(out4, lse, q4, k4, v4, scale);
  Tensor out = out4.reshape(q.shape());
  if (!autograd::any_requires_grad({&q, &k, &v})) return out;
  autograd::record("causal_attention", out, {q, k, v},
                   [q4, k4, v4, out4, lse, scale, qs = q.shape()](const autograd::GradContext& c) {
                     // Not differentiable twice: the backward kernels record no graph.
                     Tensor g = c.grad().to(q4.dtype()).contiguous().reshape(q4.shape());
                     Tensor gq = empty(q4.shape(), options_of(q4));
                     Tensor gk = empty(q4.shape(), options_of(q4));
                     Tensor gv = empty(q4.shape(), options_of(q4));
                     if (q4.numel() > 0) kernels::flash_attention_backward(gq, gk, gv, g, out4, lse, q4, k4, v4, scale);
                     return std::vector<Tensor>{c.needs(0) ? gq.reshape(qs) : Tensor(),
                                                c.needs(1) ? gk.reshape(qs) : Tensor(),
                                                c.needs(2) ? gv.reshape(qs) : Tensor()};
                   });
  return out;
}

}  // namespace

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  const char* op = "causal_attention";
  ops::check_floating(op, q, "q");
  ops::check_floating(op, k, "k");
  ops::check_floating(op, v, "v");
  ops::check_same_device(op, {&q, &k, &v});
  const std::string all = ops::describe_all({{"q", &q}, {"k", &k}, {"v", &v}});
  KIRZL_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), op, ": q, k and v must share one dtype, got ", all);
  KIRZL_CHECK(q.dim() >= 2, op, ": q, k, v must be [..., T, D], got ", all);
  bool lead_match = k.shape() == q.shape() && v.dim() == q.dim();
  for (int64_t d = 0; lead_match && d < q.dim() - 1; ++d) lead_match = v.size(d) == q.size(d);
  KIRZL_CHECK(lead_match, op, ": expected k with the shape of q and v of shape [..., T, Dv] matching q's leading dims, got ",
              all);

  const int64_t T = q.size(-2), D = q.size(-1), Dv = v.size(-1);
  int64_t batch = 1;
  for (int64_t d = 0; d < q.dim() - 2; ++d) batch *= q.size(d);
  const double scale = D > 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0;
  if (q.device().is_cuda() && Dv == D && kernels::flash_attention_cuda_supports(q.dtype(), D))
    return flash_causal_attention(q, k, v, scale);
  Tensor qc = q.detach().contiguous().reshape({batch, T, D});
  Tensor kc = k.detach().contiguous().reshape({batch, T, D});
  Tensor vc = v.detach().contiguous().reshape({batch, T, Dv});
  const DType acc = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor probs = empty({batch, T, T}, {.dtype = acc, .device = q.device()});
  Tensor out3 = empty({batch, T, Dv}, options_of(q));
  if (batch * T > 0) kernels::attention_forward(out3, probs, qc, kc, vc, scale);
  Tensor out = out3.reshape(v.shape());
  if (!autograd::any_requires_grad({&q, &k, &v})) return out;
  autograd::record(op, out, {q, k, v}, [qc, kc, vc, probs, scale, qs = q.shape(), vs = v.shape()](const autograd::GradContext& c) {
    // Not differentiable twice: the backward kernel records no graph.
    Tensor g = c.grad().to(qc.dtype()).contiguous().reshape(vc.shape());
    Tensor gq = c.needs(0) ? empty(qc.shape(), options_of(qc)) : Tensor();
    Tensor gk = c.needs(1) ? empty(kc.shape(), options_of(kc)) : Tensor();
    Tensor gv = c.needs(2) ? empty(vc.shape(), options_of(vc)) : Tensor();
    if (g.numel() > 0 || qc.numel() > 0) kernels::attention_backward(gq, gk, gv, g, probs, qc, kc, vc, scale);
    return std::vector<Tensor>{gq.defined() ? gq.reshape(qs) : gq, gk.defined() ? gk.reshape(qs) : gk,
                               gv.defined() ? gv.reshape(vs) : gv};
  });
  return out;
}

}  // namespace kirzl
