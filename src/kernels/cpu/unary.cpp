#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/gelu_tanh.h"
#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_exp.h"
#include "kernels/dispatch.h"
#include "kernels/unary.h"

namespace kirzl::kernels::cpu {

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;      // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;    // 1/sqrt(2*pi), the normal pdf at 0

// Applies f (acc_t<T> -> acc_t<T>) elementwise; the contiguous case is a plain loop over T.
template <typename T, typename F>
void apply(Tensor& out, const Tensor& x, F f) {
  using A = acc_t<T>;
  map<T, T>(out, [&](T v) { return T(f(static_cast<A>(v))); }, x);
}

template <typename T, typename F>
void apply_grad(Tensor& gx, const Tensor& g, const Tensor& s, F f) {
  using A = acc_t<T>;
  map<T, T, T>(gx, [&](T gv, T sv) { return T(f(static_cast<A>(gv), static_cast<A>(sv))); }, g, s);
}

// Negation without signed-overflow UB (wraps like two's complement).
template <typename T>
T wrap_neg(T v) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(U(0) - static_cast<U>(v)));
}

// Clamp bounds converted to an integer type, saturating at its range.
template <typename T>
T int_bound(double v) {
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

template <typename T>
void integer_unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args) {
  switch (op) {
    case UnaryOp::Neg: return map<T, T>(out, [](T v) { return wrap_neg(v); }, x);
    case UnaryOp::Abs:
      if constexpr (std::is_unsigned_v<T>) return map<T, T>(out, [](T v) { return v; }, x);
      else return map<T, T>(out, [](T v) { return v < 0 ? wrap_neg(v) : v; }, x);
    case UnaryOp::Relu: return map<T, T>(out, [](T v) { return v < T(0) ? T(0) : v; }, x);
    case UnaryOp::Clamp: {
      // Bounds round inwards so that e.g. clamp(x, 0.5) on integers keeps x >= 1.
      const T lo = int_bound<T>(std::ceil(args.p0)), hi = int_bound<T>(std::floor(args.p1));
      return map<T, T>(out, [lo, hi](T v) { return std::min(std::max(v, lo), hi); }, x);
    }
    default: break;
  }
  KIRZL_FAIL(ErrorCode::Internal, "unary: op needs a floating dtype, got ", dtype_name(x.dtype()));
}

template <typename T>
void floating_unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args) {
  using A = acc_t<T>;
  switch (op) {
    case UnaryOp::Neg: return apply<T>(out, x, [](A v) { return -v; });
    case UnaryOp::Exp: return apply<T>(out, x, [](A v) { return vec_exp(v); });
    case UnaryOp::Log: return apply<T>(out, x, [](A v) { return std::log(v); });
    case UnaryOp::Sqrt: return apply<T>(out, x, [](A v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt: return apply<T>(out, x, [](A v) { return A(1) / std::sqrt(v); });
    case UnaryOp::Tanh: return apply<T>(out, x, [](A v) { return std::tanh(v); });
    case UnaryOp::Sigmoid: return apply<T>(out, x, [](A v) { return A(1) / (A(1) + vec_exp(-v)); });
    case UnaryOp::Abs: return apply<T>(out, x, [](A v) { return std::abs(v); });
    // `v < 0 ? 0 : v` (not `v > 0 ? v : 0`) so that NaN propagates.
    case UnaryOp::Relu: return apply<T>(out, x, [](A v) { return v < A(0) ? A(0) : v; });
    case UnaryOp::Gelu:
      return apply<T>(out, x, [](A v) { return A(0.5) * v * (A(1) + std::erf(v * A(kInvSqrt2))); });
    case UnaryOp::GeluTanh: return apply<T>(out, x, [](A v) { return gelu_tanh(v); });  // Note [cpu tanh-GELU]
    case UnaryOp::Pow: {
      const A p = static_cast<A>(args.p0);
      if (args.p0 == 2.0) return apply<T>(out, x, [](A v) { return v * v; });
      if (args.p0 == 0.5) return apply<T>(out, x, [](A v) { return std::sqrt(v); });
      return apply<T>(out, x, [p](A v) { return std::pow(v, p); });
    }
    case UnaryOp::Clamp: {
      const A lo = static_cast<A>(args.p0), hi = static_cast<A>(args.p1);
      // std::max/min return their first argument when comparing with NaN: NaN propagates.
      return apply<T>(out, x, [lo, hi](A v) { return std::min(std::max(v, lo), hi); });
    }
  }
}

}  // namespace

void unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args) {
  dispatch_all(x.dtype(), "unary", [&]<typename T>() {
    if constexpr (std::is_integral_v<T>) integer_unary<T>(op, out, x, args);
    else floating_unary<T>(op, out, x, args);
  });
}

void unary_backward(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& s, const UnaryArgs& args) {
  dispatch_floating(gx.dtype(), "unary backward", [&]<typename T>() {
    using A = acc_t<T>;
    switch (op) {
      case UnaryOp::Neg: return apply_grad<T>(gx, g, s, [](A gv, A) { return -gv; });
      case UnaryOp::Exp: return apply_grad<T>(gx, g, s, [](A gv, A y) { return gv * y; });
      case UnaryOp::Log: return apply_grad<T>(gx, g, s, [](A gv, A x) { return gv / x; });
      case UnaryOp::Sqrt: return apply_grad<T>(gx, g, s, [](A gv, A y) { return gv / (A(2) * y); });
      case UnaryOp::Rsqrt: return apply_grad<T>(gx, g, s, [](A gv, A y) { return A(-0.5) * gv * y * y * y; });
      case UnaryOp::Tanh: return apply_grad<T>(gx, g, s, [](A gv, A y) { return gv * (A(1) - y * y); });
      case UnaryOp::Sigmoid: return apply_grad<T>(gx, g, s, [](A gv, A y) { return gv * y * (A(1) - y); });
      case UnaryOp::Abs:
        return apply_grad<T>(gx, g, s, [](A gv, A x) { return x > A(0) ? gv : (x < A(0) ? -gv : A(0)); });
      case UnaryOp::Relu: return apply_grad<T>(gx, g, s, [](A gv, A y) { return y > A(0) ? gv : A(0); });
      case UnaryOp::Gelu:
        // d/dx x*Phi(x) = Phi(x) + x*phi(x).
        return apply_grad<T>(gx, g, s, [](A gv, A x) {
          A cdf = A(0.5) * (A(1) + std::erf(x * A(kInvSqrt2)));
          A pdf = A(kInvSqrt2Pi) * std::exp(A(-0.5) * x * x);
          return gv * (cdf + x * pdf);
        });
      case UnaryOp::GeluTanh: return apply_grad<T>(gx, g, s, [](A gv, A x) { return gv * gelu_tanh_grad(x); });
      case UnaryOp::Pow: {
        const A p = static_cast<A>(args.p0);
        if (args.p0 == 0.0) return apply_grad<T>(gx, g, s, [](A, A) { return A(0); });
        if (args.p0 == 2.0) return apply_grad<T>(gx, g, s, [](A gv, A x) { return A(2) * gv * x; });
        return apply_grad<T>(gx, g, s, [p](A gv, A x) { return gv * p * std::pow(x, p - A(1)); });
      }
      case UnaryOp::Clamp: {
        // The gradient passes where x lies inside [min, max], boundaries included (as PyTorch).
        const A lo = static_cast<A>(args.p0), hi = static_cast<A>(args.p1);
        return apply_grad<T>(gx, g, s, [lo, hi](A gv, A x) { return (x >= lo && x <= hi) ? gv : A(0); });
      }
    }
  });
}

void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_all(out.dtype(), "where", [&]<typename T>() {
    map<T, uint8_t, T, T>(out, [](uint8_t c, T x, T y) { return c ? x : y; }, cond, a, b);
  });
}

void register_unary_kernels() {
  KIRZL_REGISTER_KERNEL(unary, DeviceType::CPU, &unary);
  KIRZL_REGISTER_KERNEL(unary_backward, DeviceType::CPU, &unary_backward);
  KIRZL_REGISTER_KERNEL(where, DeviceType::CPU, &where);
}

}  // namespace kirzl::kernels::cpu
