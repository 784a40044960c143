// Tutorial step 7 (docs/tutorial/07-your-own-cuda-kernel.md): a CUDA kernel for the softplus op
// of step 6, registered in kirzl's kernel dispatch table (src/kernels/dispatch_table.h,
// Note [kernel registration]).
//
// In kirzl this text would be split over three files: the stub declaration (src/kernels/
// softplus.h), this CUDA implementation (src/kernels/cuda/softplus.cu) and the CPU one
// (src/kernels/cpu/softplus.cpp). Here the declaration sits on top so that the file compiles on
// its own; the tutorial's tests compile it with nvcc in a CUDA build. It cannot run without a GPU.
#include <cmath>

#include "kernels/cuda/common.cuh"    // device_t, prepare (device + current stream), grid_for
#include "kernels/dispatch.h"         // dispatch_floating: a C++ type for a runtime dtype
#include "kernels/dispatch_table.h"   // KIRZL_DECLARE_KERNEL, KIRZL_REGISTER_KERNEL

// ---- src/kernels/softplus.h: the stub, declared once with its function-pointer type ----
namespace kirzl::kernels {
/// y = log(1 + exp(x)), elementwise; x and y contiguous, same shape, dtype and device.
KIRZL_DECLARE_KERNEL(tutorial_softplus_forward, void (*)(Tensor& y, const Tensor& x));
}  // namespace kirzl::kernels

// ---- src/kernels/cuda/softplus.cu: the CUDA kernel and its registration ----
namespace kirzl::kernels::cuda {

namespace {

// The math in f32 for bf16/f16 (dacc_t), in the type itself for f32/f64; the same stable form as
// the CPU kernel of step 6, so that both agree to rounding.
__device__ __forceinline__ float softplus_acc(float v) { return fmaxf(v, 0.f) + log1pf(expf(-fabsf(v))); }
__device__ __forceinline__ double softplus_acc(double v) { return fmax(v, 0.0) + log1p(exp(-fabs(v))); }

// One thread per element, in a grid-stride loop: any n works with any grid size.
template <typename T>
__global__ void softplus_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = store_as<T>(softplus_acc(load_acc(x[i])));
}

}  // namespace

// The CUDA implementation behind the stub: same signature as the stub's function-pointer type.
void softplus_forward(Tensor& y, const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return;
  // The launch goes on kirzl's current stream of x's device (Note [current stream]), so it is
  // ordered after whatever produced x, without a host synchronisation.
  cudaStream_t stream = prepare(x);
  constexpr int kThreads = 256;
  dispatch_floating(x.dtype(), "softplus", [&]<typename T>() {
    using D = device_t<T>;
    softplus_kernel<D><<<grid_for(n, kThreads), kThreads, 0, stream>>>(dptr<T>(y), dptr<T>(x), n);
  });
  KIRZL_CUDA_LAUNCH_CHECK();  // a bad launch is a kirzl::Error naming the CUDA error, not a silent no-op
}

// Called from kernels/cuda/register_kernels.cpp (a new kernel file adds its call there).
void register_tutorial_softplus_kernels() {
  KIRZL_REGISTER_KERNEL(tutorial_softplus_forward, DeviceType::CUDA, &softplus_forward);
}

}  // namespace kirzl::kernels::cuda
