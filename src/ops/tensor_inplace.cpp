// Tensor's in-place arithmetic (declared with Tensor in kirzl/tensor.hpp): computed by the ops and
// copied into the tensor, so that src/core does not depend on src/ops.
#include "core/inplace_check.h"
#include "kernels/copy.h"
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  detail::check_inplace(*this, "add_");
  KIRZL_CHECK(other.defined(), "add_: other is undefined");
  KIRZL_CHECK(other.device() == device(), "add_: ", describe(), " and ", other.describe(), " are on different devices");
  NoGradGuard guard;
  Tensor sum = alpha == 1.0 ? add(*this, other) : add(*this, mul(other, alpha));
  KIRZL_CHECK(sum.shape() == shape(), "add_: cannot broadcast ", other.describe(), " into ", describe());
  kernels::copy(*this, sum);
  return *this;
}

Tensor& Tensor::mul_(double value) {
  detail::check_inplace(*this, "mul_");
  NoGradGuard guard;
  Tensor prod = mul(*this, value);
  kernels::copy(*this, prod);
  return *this;
}

}  // namespace kirzl
