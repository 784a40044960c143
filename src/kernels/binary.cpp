// Device dispatch for binary elementwise kernels.
#include "kernels/binary.h"

namespace kirzl::kernels {

void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  if (out.device().is_cpu()) return cpu::binary(op, out, a, b);
  KIRZL_FAIL(ErrorCode::Unsupported, "binary elementwise op on ", out.device().str(),
             ": CUDA kernels for elementwise ops are not implemented yet");
}

}  // namespace kirzl::kernels
