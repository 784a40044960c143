// Unary elementwise ops and their gradients.
#include "kirzl/autograd.hpp"
#include "kirzl/ops/elementwise.hpp"
#include "ops/op_utils.h"

namespace kirzl {

Tensor neg(const Tensor& x) {
  ops::check_defined("neg", x, "x");
  return mul(x, -1.0);
}

}  // namespace kirzl
