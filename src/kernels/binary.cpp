// Device dispatch for binary elementwise kernels.
#include "kernels/binary.h"

namespace kirzl::kernels {

void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  if (out.device().is_cpu()) return cpu::binary(op, out, a, b);
  return cuda::binary(op, out, a, b);
}

}  // namespace kirzl::kernels
