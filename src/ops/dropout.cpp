// dropout with a reproducible counter-based mask (Note [dropout mask]).
#include "core/cuda_runtime.h"
#include "kernels/dropout.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  ops::check_floating("dropout", x, "x");
  KIRZL_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got ", p, " for x ", x.describe());
  if (!training || p == 0.0) return x;
  if (x.device().is_cuda())
    cuda_rt::check_not_capturing(x.device().index(), "dropout",
                                 "its mask's Philox seed and offset are drawn on the host and would be baked into the "
                                 "graph, so every replay would drop the same elements; capture with p = 0 or in eval mode");
  Generator& g = gen ? *gen : default_generator();
  // One Philox block per four elements, reserved even for p == 1 so that the stream position
  // depends only on the sequence of calls.
  const Generator::Draw draw = g.reserve(static_cast<uint64_t>((x.numel() + 3) / 4));
  const uint64_t seed = draw.seed, offset = draw.offset;  // plain variables: the backward captures them
  // p == 1 drops everything; scale 0 keeps 0 * inf out of it.
  const double scale = p >= 1.0 ? 0.0 : 1.0 / (1.0 - p);
  Tensor xc = x.detach().contiguous();
  Tensor out = empty(x.shape(), options_of(x));
  if (x.numel() > 0) kernels::dropout_apply(out, xc, p, scale, seed, offset);
  autograd::record("dropout", out, {x}, [p, scale, seed, offset](const autograd::GradContext& c) {
    Tensor gc = c.grad().contiguous();
    Tensor gx = empty(gc.shape(), options_of(gc));
    if (gc.numel() > 0) kernels::dropout_apply(gx, gc, p, scale, seed, offset);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace kirzl
