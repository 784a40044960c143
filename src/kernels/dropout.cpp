// Device dispatch for dropout kernels.
#include "kernels/dropout.h"

namespace kirzl::kernels {

void dropout_apply(Tensor& out, const Tensor& in, double p, double scale, uint64_t seed, uint64_t offset) {
  if (in.device().is_cpu()) return cpu::dropout_apply(out, in, p, scale, seed, offset);
  return cuda::dropout_apply(out, in, p, scale, seed, offset);
}

}  // namespace kirzl::kernels
