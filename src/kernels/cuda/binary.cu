// CUDA binary elementwise kernels (arithmetic and comparisons) with broadcasting.
//
// The op is a runtime field of the functor rather than a template parameter: the branch is
// uniform across the grid, costs a few instructions per element of a memory-bound kernel, and
// keeps the number of kernels (and the build time) per dtype at three instead of 36.
#include "kernels/binary.h"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cuda {

namespace {

template <typename T>
struct ArithFn {
  BinaryOp op;
  __device__ __forceinline__ T operator()(T a, T b) const {
    const auto x = load_acc(a), y = load_acc(b);
    using A = decltype(x);
    switch (op) {
      case BinaryOp::Add: return store_as<T>(x + y);
      case BinaryOp::Sub: return store_as<T>(x - y);
      case BinaryOp::Mul: return store_as<T>(x * y);
      case BinaryOp::Div:
        // An integer division by zero cannot raise from an asynchronous kernel: it yields 0
        // (the CPU kernel throws instead).
        if constexpr (std::is_integral_v<A>) return y == A(0) ? T(0) : store_as<T>(x / y);
        else return store_as<T>(x / y);
      // NaN in either operand propagates, as on the CPU.
      case BinaryOp::Maximum: return store_as<T>((x != x) ? x : (y != y) ? y : (x < y ? y : x));
      case BinaryOp::Minimum: return store_as<T>((x != x) ? x : (y != y) ? y : (y < x ? y : x));
      default: return store_as<T>(x);
    }
  }
};

template <typename T>
struct CompareFn {
  BinaryOp op;
  __device__ __forceinline__ uint8_t operator()(T a, T b) const {
    const auto x = load_acc(a), y = load_acc(b);
    switch (op) {
      case BinaryOp::Eq: return x == y;
      case BinaryOp::Ne: return x != y;
      case BinaryOp::Lt: return x < y;
      case BinaryOp::Le: return x <= y;
      case BinaryOp::Gt: return x > y;
      case BinaryOp::Ge: return x >= y;
      default: return 0;
    }
  }
};

}  // namespace

void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  const bool comparison = op >= BinaryOp::Eq;
  KIRZL_INTERNAL_ASSERT(a.dtype() == b.dtype() && out.dtype() == (comparison ? DType::u8 : a.dtype()));
  KIRZL_INTERNAL_ASSERT(out.device() == a.device() && out.device() == b.device());
  dispatch_all(a.dtype(), "binary", [&]<typename T>() {
    if (comparison) elementwise<uint8_t, T, T>(out, CompareFn<device_t<T>>{op}, a, b);
    else elementwise<T, T, T>(out, ArithFn<device_t<T>>{op}, a, b);
  });
}

void register_binary_kernels() {
  KIRZL_REGISTER_KERNEL(binary, DeviceType::CUDA, &binary);
}

}  // namespace kirzl::kernels::cuda
