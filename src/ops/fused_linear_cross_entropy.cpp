// linear_cross_entropy: the classifier GEMM fused with softmax cross-entropy; the logits'
// gradient is written over the logits in place.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "kernels/index_check.h"
#include "kernels/fused_classifier.h"
#include "kernels/gemm.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/ops/fused.hpp"
#include "kirzl/ops/reduce.hpp"
#include "ops/op_utils.h"

namespace kirzl {

namespace {

// Rejects a target outside [0, V) that is not ignore_index; returns the number not ignored. On
// the targets' device; on CUDA thrown at the next synchronising point unless
// cuda::sync_index_checks(), with the count left on the device (Note [device index check]).
kernels::ValidCount count_valid_targets(const Tensor& targets, int64_t classes, int64_t ignore_index) {
  return kernels::check_op_indices(targets, {.op = index_error::IndexOp::LinearCrossEntropy, .limit = classes,
                                             .has_ignore = true, .ignore = ignore_index});
}

// Rows [r0, r1) of a [N, ...] tensor.
Tensor rows_of(const Tensor& t, int64_t r0, int64_t r1) { return t.slice(0, r0, r1); }

}  // namespace

// Note [linear_cross_entropy in place]: backward turns the saved logits into d logits in place
// (softmax - one-hot, times the upstream gradient / count), so the N x V gradient never needs a
// buffer of its own; the saved logits are therefore consumed by the first backward, and a second
// backward through the same graph (retain_graph) throws instead of reading overwritten values.
Tensor linear_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                            const LinearCrossEntropyOptions& o) {
  const char* op = "linear_cross_entropy";
  ops::check_floating(op, hidden, "hidden");
  ops::check_floating(op, weight, "weight");
  ops::check_defined(op, targets, "targets");
  ops::check_same_device(op, {&hidden, &weight, &targets});
  const std::string all = ops::describe_all({{"hidden", &hidden}, {"weight", &weight}, {"targets", &targets}});
  KIRZL_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1), op,
              ": expected hidden [N, C] and weight [V, C], got ", all);
  KIRZL_CHECK(hidden.dtype() == weight.dtype(), op, ": hidden and weight must share one dtype, got ", all);
  KIRZL_CHECK(targets.dtype() == DType::i32 || targets.dtype() == DType::i64, op,
              ": targets must be class indices of dtype i32 or i64, got ", all);
  KIRZL_CHECK(targets.shape() == Shape{hidden.size(0)}, op, ": targets must be [N] with N = hidden.size(0), got ", all);
  KIRZL_CHECK(o.chunk_rows >= 0, op, ": chunk_rows must be >= 0, got ", o.chunk_rows);
  const int64_t N = hidden.size(0), V = weight.size(0);
  KIRZL_CHECK(V > 0 || N == 0, op, ": weight has no classes, got ", all);
  KIRZL_CHECK(o.num_classes >= 0 && o.num_classes <= V, op, ": num_classes must be in [0, V = ", V,
              "] (0: all of weight's rows), got ", o.num_classes, " for ", all);
  // The GEMM runs over all V rows of weight (V may be padded for alignment); the softmax over the
  // first `classes` columns only (Note [GPT vocabulary padding] in src/nn/gpt.cpp).
  const int64_t classes = o.num_classes > 0 ? o.num_classes : V;
  Tensor hd = hidden.detach(), wd = weight.detach(), tg = targets.detach().contiguous();
  const kernels::ValidCount count = count_valid_targets(tg, classes, o.ignore_index);
  const DType acc = hidden.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor losses = empty({N}, {.dtype = acc, .device = hidden.device()});
  Tensor lse = empty({N}, {.dtype = acc, .device = hidden.device()});
  const int64_t chunk = (o.chunk_rows == 0 || o.chunk_rows >= N) ? N : o.chunk_rows;
  Tensor logits;  // kept for backward only when not chunked
  if (N > 0) {
    Tensor buf = empty({chunk, V}, options_of(hidden));
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t r1 = std::min(N, r0 + chunk);
      Tensor lg = rows_of(buf, 0, r1 - r0), ls = rows_of(losses, r0, r1), ll = rows_of(lse, r0, r1);
      kernels::gemm(lg, rows_of(hd, r0, r1), wd, false, true, 1.0, 0.0);
      kernels::classifier_forward(ls, ll, lg, rows_of(tg, r0, r1), classes, o.ignore_index);
    }
    if (chunk == N) logits = buf;
  }
  // See Note [cross_entropy mean of nothing] in loss.cpp: the mean over no rows is NaN (on the
  // device too: 0 / 0, the losses of ignored rows being 0).
  const Tensor count_dev = count.device.defined() ? count.device.to(acc) : Tensor();
  const double scale = count_dev.defined() ? 1.0
                       : count.host == 0   ? std::numeric_limits<double>::quiet_NaN()
                                           : 1.0 / static_cast<double>(count.host);
  Tensor out;
  {
    NoGradGuard ng;
    if (count_dev.defined()) out = div(sum(losses), count_dev);
    else out = count.host == 0 ? full({}, scale, {.dtype = acc, .device = hidden.device()}) : mul(sum(losses), scale);
  }
  if (!autograd::any_requires_grad({&hidden, &weight})) return out;
  auto consumed = std::make_shared<bool>(false);
  const int64_t ignore = o.ignore_index;
  autograd::record(op, out, {hidden, weight},
                   [hd, wd, tg, lse, logits, consumed, chunk, N, V, classes, ignore, scale,
                    count_dev](const autograd::GradContext& c) {
                     // See Note [linear_cross_entropy in place].
                     KIRZL_CHECK(!*consumed, "linear_cross_entropy: backward ran twice through one graph; its "
                                 "saved logits were overwritten by their gradient in the first");
                     *consumed = true;
                     // With the count on the device the gradient is divided by it here; with
                     // none counted every row is ignored and gets zeros without reading it.
                     Tensor g = count_dev.defined() ? div(c.grad(), count_dev) : c.grad();
                     Tensor gh = c.needs(0) ? empty(hd.shape(), options_of(hd)) : Tensor();
                     Tensor gw = c.needs(1) ? empty(wd.shape(), options_of(wd)) : Tensor();
                     const double s = std::isnan(scale) ? 0.0 : scale;
                     if (N == 0) {
                       if (gw.defined()) gw.zero_();
                       return std::vector<Tensor>{gh, gw};
                     }
                     Tensor buf = logits.defined() ? logits : empty({chunk, V}, options_of(hd));
                     for (int64_t r0 = 0; r0 < N; r0 += chunk) {
                       const int64_t r1 = std::min(N, r0 + chunk);
                       Tensor lg = rows_of(buf, 0, r1 - r0);
                       if (!logits.defined()) kernels::gemm(lg, rows_of(hd, r0, r1), wd, false, true, 1.0, 0.0);
                       kernels::classifier_backward_inplace(lg, rows_of(tg, r0, r1), rows_of(lse, r0, r1), g, s,
                                                            classes, ignore);
                       if (gh.defined()) {
                         Tensor ghr = rows_of(gh, r0, r1);
                         kernels::gemm(ghr, lg, wd, false, false, 1.0, 0.0);
                       }
                       if (gw.defined()) kernels::gemm(gw, lg, rows_of(hd, r0, r1), true, false, 1.0, r0 == 0 ? 0.0 : 1.0);
                     }
                     return std::vector<Tensor>{gh, gw};
                   });
  return out;
}

}  // namespace kirzl
