// Stand-ins for the CUDA reference attention kernels in builds without CUDA.
#include "kernels/attention.h"

namespace kirzl::kernels::cuda {

void attention_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "causal_attention: kirzl was built without CUDA");
}
void attention_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, double) {
  KIRZL_FAIL(ErrorCode::Unsupported, "causal_attention backward: kirzl was built without CUDA");
}

}  // namespace kirzl::kernels::cuda
