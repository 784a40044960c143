// Device dispatch for the GEMM primitive.
#include "kernels/gemm.h"

#include "kernels/copy.h"

namespace kirzl::kernels {

namespace {
void check_devices(const char* op, const Tensor& out, const Tensor& a, const Tensor& b) {
  KIRZL_CHECK(a.device() == out.device() && b.device() == out.device(), op,
              ": operands must be on one device, got out ", out.describe(), ", a ", a.describe(), ", b ",
              b.describe());
}
}  // namespace

void gemm(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, double alpha, double beta) {
  check_devices("gemm", out, a, b);
  if (out.device().is_cpu()) return cpu::gemm(out, a, b, trans_a, trans_b, alpha, beta);
  return cuda::gemm(out, a, b, trans_a, trans_b, alpha, beta);
}

void gemm_bias(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  check_devices("gemm_bias", out, a, b);
  KIRZL_CHECK(bias.device() == out.device(), "gemm_bias: bias ", bias.describe(), " is not on out's device (out ",
              out.describe(), ")");
  if (out.device().is_cuda()) return cuda::gemm_bias(out, a, b, bias);
  kernels::copy(out, bias);  // bias broadcast to every row, then out += a b^T
  cpu::gemm(out, a, b, false, true, 1.0, 1.0);
}

}  // namespace kirzl::kernels
