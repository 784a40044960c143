#include <algorithm>

#include "kernels/binary.h"
#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

namespace {
template <typename T, typename F>
void arith(Tensor& out, const Tensor& a, const Tensor& b, F f) {
  using A = acc_t<T>;
  map<T, T, T>(out, [&](T x, T y) { return T(f(static_cast<A>(x), static_cast<A>(y))); }, a, b);
}
template <typename T, typename F>
void compare(Tensor& out, const Tensor& a, const Tensor& b, F f) {
  using A = acc_t<T>;
  map<uint8_t, T, T>(out, [&](T x, T y) { return static_cast<uint8_t>(f(static_cast<A>(x), static_cast<A>(y)) ? 1 : 0); }, a, b);
}
}  // namespace

void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_all(a.dtype(), "binary", [&]<typename T>() {
    using A = acc_t<T>;
    switch (op) {
      case BinaryOp::Add: return arith<T>(out, a, b, [](A x, A y) { return x + y; });
      case BinaryOp::Sub: return arith<T>(out, a, b, [](A x, A y) { return x - y; });
      case BinaryOp::Mul: return arith<T>(out, a, b, [](A x, A y) { return x * y; });
      case BinaryOp::Div:
        if constexpr (std::is_integral_v<A>) {
          // Integer division by zero is undefined behaviour in C++: check first.
          return arith<T>(out, a, b, [](A x, A y) {
            KIRZL_CHECK(y != 0, "div: integer division by zero");
            return static_cast<A>(x / y);
          });
        } else {
          return arith<T>(out, a, b, [](A x, A y) { return x / y; });
        }
      // NaN in either operand propagates (std::max alone drops a NaN in y).
      case BinaryOp::Maximum: return arith<T>(out, a, b, [](A x, A y) { return (x != x) ? x : (y != y) ? y : std::max(x, y); });
      case BinaryOp::Minimum: return arith<T>(out, a, b, [](A x, A y) { return (x != x) ? x : (y != y) ? y : std::min(x, y); });
      case BinaryOp::Eq: return compare<T>(out, a, b, [](A x, A y) { return x == y; });
      case BinaryOp::Ne: return compare<T>(out, a, b, [](A x, A y) { return x != y; });
      case BinaryOp::Lt: return compare<T>(out, a, b, [](A x, A y) { return x < y; });
      case BinaryOp::Le: return compare<T>(out, a, b, [](A x, A y) { return x <= y; });
      case BinaryOp::Gt: return compare<T>(out, a, b, [](A x, A y) { return x > y; });
      case BinaryOp::Ge: return compare<T>(out, a, b, [](A x, A y) { return x >= y; });
    }
  });
}

void register_binary_kernels() {
  KIRZL_REGISTER_KERNEL(binary, DeviceType::CPU, &binary);
}

}  // namespace kirzl::kernels::cpu
