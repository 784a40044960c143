// Without CUDA: the multi-tensor kernels of kernels/optim_update.h throw Unsupported.
#include "kernels/optim_update.h"

#include "kirzl/core/error.hpp"

namespace kirzl::kernels::cuda {

#define KIRZL_NO_CUDA(op) KIRZL_FAIL(ErrorCode::Unsupported, op, ": kirzl was built without CUDA")

void multi_tensor_sgd(const OptimLists&, const std::vector<uint8_t>&, const SgdArgs&) { KIRZL_NO_CUDA("SGD.step"); }
void multi_tensor_adam(const OptimLists&, const std::vector<int64_t>&, const AdamArgs&) {
  KIRZL_NO_CUDA("Adam.step");
}
void multi_tensor_lamb(const OptimLists&, const std::vector<int64_t>&, const LambArgs&) {
  KIRZL_NO_CUDA("LAMB.step");
}
std::pair<Tensor, Tensor> multi_tensor_norm(const std::vector<Tensor>&, double) {
  KIRZL_NO_CUDA("clip_grad_norm");
}
void multi_tensor_clip_by_norm(const std::vector<Tensor>&, const Tensor&, double) { KIRZL_NO_CUDA("clip_grad_norm"); }
void multi_tensor_unscale(const std::vector<Tensor>&, double, const Tensor&, bool) { KIRZL_NO_CUDA("GradScaler.unscale_"); }
int64_t multi_tensor_launch_count() { return 0; }

#undef KIRZL_NO_CUDA

}  // namespace kirzl::kernels::cuda
