// embedding: rows of a table picked by integer indices.
#include "kernels/index_check.h"
#include "kernels/embedding.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/nn.hpp"
#include "ops/op_utils.h"

namespace kirzl {

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  const char* op = "embedding";
  ops::check_defined(op, weight, "weight");
  ops::check_defined(op, indices, "indices");
  ops::check_same_device(op, {&weight, &indices});
  KIRZL_CHECK(weight.dim() == 2, op, ": weight must be [num, dim], got ", weight.describe());
  KIRZL_CHECK(indices.dtype() == DType::i32 || indices.dtype() == DType::i64, op,
              ": indices must have dtype i32 or i64, got ", indices.describe());
  KIRZL_CHECK(indices.dim() < kMaxDims, op, ": indices ", indices.describe(), " have too many dims (the result adds one)");
  Tensor idx = indices.detach().contiguous();
  // On the indices' device; on CUDA thrown at the next synchronising point unless
  // cuda::sync_index_checks() (Note [device index check]). The kernels skip bad rows meanwhile.
  kernels::check_op_indices(idx, {.op = index_error::IndexOp::Embedding, .limit = weight.size(0)});

  Tensor w = weight.detach().contiguous();
  Shape out_shape = indices.shape();
  out_shape.push_back(weight.size(1));
  Tensor out = empty(out_shape, options_of(weight));
  if (out.numel() > 0) kernels::embedding_forward(out, w, idx);
  if (!autograd::any_requires_grad({&weight})) return out;
  Shape wshape = weight.shape();
  autograd::record(op, out, {weight}, [idx, wshape](const autograd::GradContext& c) {
    const Tensor& g0 = c.grad();
    Tensor gw = zeros(wshape, options_of(g0));
    Tensor g = g0.contiguous();
    if (g.numel() > 0) kernels::embedding_backward(gw, g, idx);
    return std::vector<Tensor>{gw};
  });
  return out;
}

}  // namespace kirzl
