// Stand-ins for the CUDA convolution kernels in a build without cuDNN.
#include "kernels/conv.h"

namespace kirzl::kernels::cuda {

void conv2d_forward(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dGeometry&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "conv2d: kirzl was built without cuDNN");
}
void conv2d_backward_input(Tensor&, const Tensor&, const Tensor&, const Conv2dGeometry&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "conv2d backward (input): kirzl was built without cuDNN");
}
void conv2d_backward_weight(Tensor&, const Tensor&, const Tensor&, const Conv2dGeometry&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "conv2d backward (weight): kirzl was built without cuDNN");
}

}  // namespace kirzl::kernels::cuda
