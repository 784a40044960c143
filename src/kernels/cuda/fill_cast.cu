// The core's CUDA fill and cast (cuda_rt::fill and cast in core/cuda_runtime.h, as CudaBackend
// methods): thin wrappers over the elementwise kernels of kernels/cuda/copy.cu, issued on the
// device's current stream of the calling thread (stream-ordered, like every kernel; no
// device-wide synchronisation).
#include "core/cuda/cuda_backend.h"
#include "kernels/copy.h"
#include "kirzl/tensor.hpp"

namespace kirzl::cuda_rt {

namespace {
// A non-owning contiguous view of `count` elements at `p` on CUDA device `device`.
Tensor view_of(void* p, DType dtype, size_t count, int device) {
  return from_blob(p, Shape{static_cast<int64_t>(count)}, dtype, Device::cuda(device), nullptr);
}
}  // namespace

void CudaBackend::fill(void* dst, DType dtype, size_t count, double value, int device) {
  if (count == 0) return;
  require_device(device, "cuda fill");
  Tensor d = view_of(dst, dtype, count, device);
  kernels::fill(d, value);
}

void CudaBackend::cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device) {
  if (count == 0) return;
  require_device(device, "cuda cast");
  Tensor d = view_of(dst, dst_dtype, count, device);
  const Tensor s = view_of(const_cast<void*>(src), src_dtype, count, device);
  kernels::copy(d, s);
}

}  // namespace kirzl::cuda_rt
