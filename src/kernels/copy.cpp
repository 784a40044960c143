// Device dispatch for copy and fill.
#include "kernels/copy.h"

#include "core/cuda_runtime.h"

namespace kirzl::kernels {

void copy(Tensor& dst, const Tensor& src) {
  KIRZL_INTERNAL_ASSERT(dst.device() == src.device(), "copy across devices must go through Tensor::to");
  if (dst.device().is_cpu()) return cpu::copy(dst, src);
  // CUDA: contiguous same-shape copies and casts have kernels; strided ones come with the CUDA op kernels.
  KIRZL_CHECK_CODE(dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape(), ErrorCode::Unsupported,
                   "copy: strided or broadcasting copies on CUDA are not implemented yet (dst ", dst.describe(),
                   ", src ", src.describe(), ")");
  if (dst.dtype() == src.dtype())
    copy_bytes(dst.data_ptr(), dst.device(), src.data_ptr(), src.device(), dst.nbytes());
  else
    cuda_rt::cast(dst.data_ptr(), dst.dtype(), src.data_ptr(), src.dtype(), static_cast<size_t>(dst.numel()),
                  dst.device().index());
}

void fill(Tensor& dst, double value) {
  if (dst.device().is_cpu()) return cpu::fill(dst, value);
  KIRZL_CHECK_CODE(dst.is_contiguous(), ErrorCode::Unsupported,
                   "fill: strided fills on CUDA are not implemented yet (", dst.describe(), ")");
  cuda_rt::fill(dst.data_ptr(), dst.dtype(), static_cast<size_t>(dst.numel()), value, dst.device().index());
}

}  // namespace kirzl::kernels
