// causal_attention and causal_attention_qkv: scaled-dot-product attention with a causal mask.
// The kernels are chosen in one place, choose_path (Note [attention path]): cuDNN's fused
// attention or the flash kernels on CUDA (Note [flash path], Note [cudnn sdpa]), the flash kernels
// on the CPU, the reference kernels (T x T probabilities saved) where nothing else applies.
#include <cmath>
#include <cstdint>
#include <string>

#include "core/environment.h"
#include "kernels/attention.h"
#include "kernels/attention_cudnn.h"
#include "kernels/flash_attention.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "kirzl/ops/shape_ops.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// [..., T, D] as [1, batch, T, D] (batch the product of the leading dims), over a contiguous
// copy where t is not contiguous: the 4-D view the attention kernels take.
Tensor flattened_heads(const Tensor& t) {
  int64_t batch = 1;
  for (int64_t d = 0; d < t.dim() - 2; ++d) batch *= t.size(d);
  return t.detach().contiguous().reshape({1, batch, t.size(-2), t.size(-1)});
}

// Note [flash path]: attention in the flash kernels saves only the output and one log-sum-exp per
// row, never the T x T matrix. On CUDA they take f32/bf16/f16 with head dim 64 or 128 (and
// Dv == D); on the CPU every dtype and head dims. 4-D q/k/v views with unit last-dim stride (e.g.
// split from [B, T, 3C] and transposed) are read in place; other layouts are made contiguous
// first.
Tensor flash_causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  auto as4 = [](const Tensor& t) { return t.dim() == 4 && t.stride(3) == 1 ? t.detach() : flattened_heads(t); };
  Tensor q4 = as4(q), k4 = as4(k), v4 = as4(v);
  const DType acc = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor out4 = empty(v4.shape(), options_of(q));
  Tensor lse = empty({q4.size(0), q4.size(1), q4.size(2)}, {.dtype = acc, .device = q.device()});
  if (q4.numel() > 0) kernels::flash_attention_forward(out4, lse, q4, k4, v4, scale);
  Tensor out = out4.reshape(v.shape());
  if (!autograd::any_requires_grad({&q, &k, &v})) return out;
  autograd::record("causal_attention", out, {q, k, v},
                   [q4, k4, v4, out4, lse, scale, qs = q.shape(), vs = v.shape()](const autograd::GradContext& c) {
                     // Not differentiable twice: the backward kernels record no graph.
                     Tensor g = c.grad().to(q4.dtype()).contiguous().reshape(out4.shape());
                     Tensor gq = empty(q4.shape(), options_of(q4));
                     Tensor gk = empty(k4.shape(), options_of(q4));
                     Tensor gv = empty(v4.shape(), options_of(q4));
                     if (q4.numel() > 0) kernels::flash_attention_backward(gq, gk, gv, g, out4, lse, q4, k4, v4, scale);
                     return std::vector<Tensor>{c.needs(0) ? gq.reshape(qs) : Tensor(),
                                                c.needs(1) ? gk.reshape(qs) : Tensor(),
                                                c.needs(2) ? gv.reshape(vs) : Tensor()};
                   });
  return out;
}

// Note [attention path]: the kernels causal attention of q ([..., T, D]; Dv the value head dim)
// runs in, following KIRZL_ATTENTION: cuDNN's fused attention (CUDA; Note [cudnn sdpa]), the
// flash kernels (Note [flash path]), or the reference kernels that save the T x T probabilities
// (KIRZL_ATTENTION=reference, or CUDA shapes the others do not take). The one place the choice
// is made, for both ops.
enum class AttentionPath { Cudnn, Flash, Reference };

AttentionPath choose_path(const char* op, const Tensor& q, int64_t Dv) {
  const std::string mode = env::text("KIRZL_ATTENTION").value_or("auto");
  if (mode == "reference") return AttentionPath::Reference;
  if (!q.device().is_cuda()) return AttentionPath::Flash;  // the CPU's flash kernels take every shape
  // cuDNN's support check reads a [B, H, T, D] q; another rank is seen as [1, batch, T, D].
  const Tensor q4 = q.dim() == 4 ? q : flattened_heads(q);
  const int64_t D = q4.size(3);
  const bool flash = kernels::flash_attention_cuda_supports(q4.dtype(), D) && Dv == D;
  if (mode == "flash") return flash ? AttentionPath::Flash : AttentionPath::Reference;
  std::string why;
  if (Dv != D) {
    why = detail::str_cat("the value head dim (", Dv, ") differs from the query's (", D, ")");
  } else if (!kernels::cudnn_attention_support.has_kernel(DeviceType::CUDA)) {
    why = kernels::kNeedsCudnnFrontend;
  } else {
    why = kernels::cudnn_attention_support(q4);
  }
  if (mode == "cudnn")
    KIRZL_CHECK_CODE(why.empty(), ErrorCode::Unsupported, op, ": KIRZL_ATTENTION=cudnn, but cuDNN cannot run ",
                     q4.describe(), ": ", why);
  if (why.empty()) return AttentionPath::Cudnn;
  return flash ? AttentionPath::Flash : AttentionPath::Reference;
}

// A 4-D view cuDNN reads in place: unit last-dim stride, every other stride a multiple of 8
// elements and a 16-byte aligned start (Note [cudnn sdpa]); else a contiguous copy.
Tensor cudnn_operand(const Tensor& t4) {
  bool ok = t4.stride(3) == 1 && reinterpret_cast<uintptr_t>(t4.data_ptr()) % 16 == 0;
  for (int64_t d = 0; ok && d < 3; ++d) ok = t4.stride(d) % 8 == 0;
  return ok ? t4 : t4.contiguous();
}

Tensor cudnn_causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  auto as4 = [](const Tensor& t) { return cudnn_operand(t.dim() == 4 ? t.detach() : flattened_heads(t)); };
  Tensor q4 = as4(q), k4 = as4(k), v4 = as4(v);
  Tensor out4 = empty(q4.shape(), options_of(q));
  Tensor lse = empty({q4.size(0), q4.size(1), q4.size(2)}, {.dtype = DType::f32, .device = q.device()});
  kernels::cudnn_attention_forward(out4, lse, q4, k4, v4, scale);
  Tensor out = out4.reshape(q.shape());
  if (!autograd::any_requires_grad({&q, &k, &v})) return out;
  autograd::record("causal_attention", out, {q, k, v},
                   [q4, k4, v4, out4, lse, scale, qs = q.shape()](const autograd::GradContext& c) {
                     // Not differentiable twice: the backward kernels record no graph.
                     Tensor g = cudnn_operand(c.grad().to(q4.dtype()).contiguous().reshape(q4.shape()));
                     Tensor gq = empty(q4.shape(), options_of(q4));
                     Tensor gk = empty(q4.shape(), options_of(q4));
                     Tensor gv = empty(q4.shape(), options_of(q4));
                     kernels::cudnn_attention_backward(gq, gk, gv, g, out4, lse, q4, k4, v4, scale);
                     return std::vector<Tensor>{c.needs(0) ? gq.reshape(qs) : Tensor(),
                                                c.needs(1) ? gk.reshape(qs) : Tensor(),
                                                c.needs(2) ? gv.reshape(qs) : Tensor()};
                   });
  return out;
}

// The [B, H, T, D] view of part `part` of a contiguous [B, T, parts * H * D] tensor: q, k, v
// (parts 0, 1, 2 of 3) of a qkv projection, strides (T*3C, D, 3C, 1), or (parts = 1) the output or
// its gradient [B, T, C], strides (T*C, D, C, 1). See Note [cudnn sdpa] on the qkv layout.
Tensor head_view(const Tensor& x, int64_t parts, int64_t part, int64_t n_head) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2) / (parts * n_head);
  return x.view({B, T, parts, n_head, D}).select(2, part).transpose(1, 2);
}

// causal_attention_qkv through cuDNN or the flash kernels (`path`): q, k, v are read in place
// from the projection, the output is written straight into [B, T, C] and the three
// gradients straight into one d(qkv): no split, no copies, no out-of-place accumulation (see
// Note [cudnn sdpa] on the qkv layout; the flash kernels take the same strided views).
Tensor fused_causal_attention_qkv(const Tensor& qkv, const Tensor& x, int64_t n_head, double scale, AttentionPath path) {
  const bool cudnn = path == AttentionPath::Cudnn;
  auto operand = [cudnn](const Tensor& t4) { return cudnn ? cudnn_operand(t4) : t4; };
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2) / 3;
  Tensor q4 = operand(head_view(x, 3, 0, n_head)), k4 = operand(head_view(x, 3, 1, n_head)),
         v4 = operand(head_view(x, 3, 2, n_head));
  Tensor y = empty({B, T, C}, options_of(x));
  Tensor out4 = head_view(y, 1, 0, n_head);
  const DType acc = x.dtype() == DType::f64 ? DType::f64 : DType::f32;  // f64 on the CPU only
  Tensor lse = empty({B, n_head, T}, {.dtype = acc, .device = x.device()});
  if (cudnn) kernels::cudnn_attention_forward(out4, lse, q4, k4, v4, scale);
  else kernels::flash_attention_forward(out4, lse, q4, k4, v4, scale);
  if (!autograd::any_requires_grad({&qkv})) return y;
  autograd::record("causal_attention_qkv", y, {qkv},
                   [q4, k4, v4, out4, lse, n_head, scale, cudnn, operand, xs = x.shape()](const autograd::GradContext& c) {
                     // Not differentiable twice: the backward kernels record no graph.
                     Tensor g = c.grad().to(q4.dtype()).contiguous();
                     Tensor g4 = operand(head_view(g, 1, 0, n_head));
                     Tensor dqkv = empty(xs, options_of(q4));
                     Tensor gq = head_view(dqkv, 3, 0, n_head), gk = head_view(dqkv, 3, 1, n_head),
                            gv = head_view(dqkv, 3, 2, n_head);
                     if (cudnn) kernels::cudnn_attention_backward(gq, gk, gv, g4, out4, lse, q4, k4, v4, scale);
                     else kernels::flash_attention_backward(gq, gk, gv, g4, out4, lse, q4, k4, v4, scale);
                     return std::vector<Tensor>{dqkv};
                   });
  return y;
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
  if (batch * T * D > 0) {
    switch (choose_path(op, q, Dv)) {
      case AttentionPath::Cudnn: return cudnn_causal_attention(q, k, v, scale);
      case AttentionPath::Flash: return flash_causal_attention(q, k, v, scale);
      case AttentionPath::Reference: break;
    }
  }
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

Tensor causal_attention_qkv(const Tensor& qkv, int64_t n_head) {
  const char* op = "causal_attention_qkv";
  ops::check_floating(op, qkv, "qkv");
  KIRZL_CHECK(n_head > 0 && qkv.dim() == 3 && qkv.size(2) % (3 * n_head) == 0, op,
              ": expected qkv [B, T, 3C] with C a multiple of n_head = ", n_head, ", got ", qkv.describe());
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, D = C / n_head;
  if (qkv.numel() > 0) {
    Tensor x = qkv.detach().contiguous();
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    switch (const AttentionPath path = choose_path(op, head_view(x, 3, 0, n_head), D)) {
      case AttentionPath::Cudnn:
      case AttentionPath::Flash: return fused_causal_attention_qkv(qkv, x, n_head, scale, path);
      case AttentionPath::Reference: break;
    }
  }
  // The composition: split's three views as heads, causal_attention, heads back to [B, T, C]; the
  // gradient reaches qkv through split's backward as one [B, T, 3C] tensor too.
  std::vector<Tensor> parts = split(qkv, C, 2);
  auto heads = [&](const Tensor& t) { return t.reshape({B, T, n_head, D}).transpose(1, 2); };
  return causal_attention(heads(parts[0]), heads(parts[1]), heads(parts[2])).transpose(1, 2).reshape({B, T, C});
}

}  // namespace kirzl
