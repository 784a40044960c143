#include <cstring>

#include "kernels/copy.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

namespace {
template <typename D, typename S>
inline D convert(S v) {
  if constexpr (std::is_same_v<D, S>) return v;
  else if constexpr (std::is_same_v<D, BFloat16> || std::is_same_v<D, Half>) return D(static_cast<float>(static_cast<acc_t<S>>(v)));
  else return static_cast<D>(static_cast<acc_t<S>>(v));
}
}  // namespace

void copy(Tensor& dst, const Tensor& src) {
  KIRZL_INTERNAL_ASSERT(dst.device() == src.device(), "copy across devices must go through Tensor::to");
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape()) {
    std::memcpy(dst.data_ptr(), src.data_ptr(), dst.nbytes());
    return;
  }
  dispatch_all(dst.dtype(), "copy", [&]<typename D>() {
    dispatch_all(src.dtype(), "copy", [&]<typename S>() {
      std::array<char*, 2> base{static_cast<char*>(dst.data_ptr()), static_cast<char*>(src.data_ptr())};
      std::array<Shape, 2> strides{dst.strides(), broadcast_strides(src, dst.shape())};
      std::array<int64_t, 2> sizes{int64_t(sizeof(D)), int64_t(sizeof(S))};
      for_each_row<2>(dst.shape(), base, strides, sizes,
                      [](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
                        if (s[0] == int64_t(sizeof(D)) && s[1] == int64_t(sizeof(S))) {
                          D* d = reinterpret_cast<D*>(p[0]);
                          const S* q = reinterpret_cast<const S*>(p[1]);
                          for (int64_t i = 0; i < n; ++i) d[i] = convert<D>(q[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i)
                            *reinterpret_cast<D*>(p[0] + i * s[0]) = convert<D>(*reinterpret_cast<const S*>(p[1] + i * s[1]));
                        }
                      });
    });
  });
}

void fill(Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill", [&]<typename T>() {
    const T v = from_double<T>(value);
    std::array<char*, 1> base{static_cast<char*>(dst.data_ptr())};
    std::array<Shape, 1> strides{dst.strides()};
    std::array<int64_t, 1> sizes{int64_t(sizeof(T))};
    for_each_row<1>(dst.shape(), base, strides, sizes, [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
    });
  });
}

void register_copy_kernels() {
  KIRZL_REGISTER_KERNEL(copy, DeviceType::CPU, &copy);
  KIRZL_REGISTER_KERNEL(fill, DeviceType::CPU, &fill);
}

}  // namespace kirzl::kernels::cpu
