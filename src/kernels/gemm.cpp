// Device dispatch for the GEMM primitive.
#include "kernels/gemm.h"

namespace kirzl::kernels {

void gemm(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha, double beta) {
  if (out.device().is_cpu()) return cpu::gemm(out, a, b, trans_a, trans_b, alpha, beta);
  KIRZL_FAIL(ErrorCode::Unsupported, "gemm on ", out.device().str(),
             ": CUDA matrix products (cuBLAS) are not implemented yet (out ", out.describe(), ")");
}

}  // namespace kirzl::kernels
