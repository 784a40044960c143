// Device dispatch for copy and fill.
#include "kernels/copy.h"

namespace kirzl::kernels {

void copy(Tensor& dst, const Tensor& src) {
  KIRZL_INTERNAL_ASSERT(dst.device() == src.device(), "copy across devices must go through Tensor::to");
  if (dst.device().is_cpu()) return cpu::copy(dst, src);
  return cuda::copy(dst, src);
}

void fill(Tensor& dst, double value) {
  if (dst.device().is_cpu()) return cpu::fill(dst, value);
  return cuda::fill(dst, value);
}

}  // namespace kirzl::kernels
