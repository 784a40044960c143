// CUDA copy (any strided/broadcast source into any destination, with dtype conversion) and fill
// (any strides), behind contiguous(), clone(), to(dtype), copy_() and the factories.
#include <cstring>

#include "kernels/copy.h"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cuda {

namespace {

template <typename D, typename S>
struct ConvertFn {
  __device__ __forceinline__ D operator()(S v) const { return convert<D>(v); }
};

template <typename T>
struct FillFn {
  T value;
  __device__ __forceinline__ T operator()() const { return value; }
};

// The host-side value of `value` in T, rounded as the CPU's fill (from_double) rounds it.
template <typename T>
device_t<T> host_value(double value) {
  const T v = from_double<T>(value);
  device_t<T> d;
  static_assert(sizeof(d) == sizeof(v));
  std::memcpy(static_cast<void*>(&d), &v, sizeof(v));
  return d;
}

}  // namespace

void copy(Tensor& dst, const Tensor& src) {
  KIRZL_INTERNAL_ASSERT(dst.device() == src.device() && dst.device().is_cuda());
  if (dst.numel() == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous() && src.numel() == dst.numel()) {
    cudaStream_t stream = prepare(dst);
    KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  dispatch_all(dst.dtype(), "copy", [&]<typename D>() {
    dispatch_all(src.dtype(), "copy", [&]<typename S>() {
      elementwise<D, S>(dst, ConvertFn<device_t<D>, device_t<S>>{}, src);
    });
  });
}

void fill(Tensor& dst, double value) {
  KIRZL_INTERNAL_ASSERT(dst.device().is_cuda());
  dispatch_all(dst.dtype(), "fill", [&]<typename T>() { elementwise<T>(dst, FillFn<device_t<T>>{host_value<T>(value)}); });
}

void register_copy_kernels() {
  KIRZL_REGISTER_KERNEL(copy, DeviceType::CUDA, &copy);
  KIRZL_REGISTER_KERNEL(fill, DeviceType::CUDA, &fill);
}

}  // namespace kirzl::kernels::cuda
