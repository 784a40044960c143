// CUDA unary elementwise kernels, their fused gradients, and where(). Formulas and NaN rules
// follow src/kernels/cpu/unary.cpp; the math runs in f32 for 16-bit floats.
#include <cmath>
#include <limits>

#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/gelu_tanh.cuh"
#include "kernels/dispatch.h"
#include "kernels/unary.h"

namespace kirzl::kernels::cuda {

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;     // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/sqrt(2*pi), the normal pdf at 0

// Float and double overloads spelled out, so that f32 never silently runs in f64.
__device__ __forceinline__ float d_exp(float v) { return expf(v); }
__device__ __forceinline__ double d_exp(double v) { return exp(v); }
__device__ __forceinline__ float d_log(float v) { return logf(v); }
__device__ __forceinline__ double d_log(double v) { return log(v); }
__device__ __forceinline__ float d_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double d_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float d_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double d_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float d_erf(float v) { return erff(v); }
__device__ __forceinline__ double d_erf(double v) { return erf(v); }
__device__ __forceinline__ float d_pow(float v, float p) { return powf(v, p); }
__device__ __forceinline__ double d_pow(double v, double p) { return pow(v, p); }
__device__ __forceinline__ float d_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double d_abs(double v) { return fabs(v); }

template <typename T>
struct FloatUnaryFn {
  using A = dacc_t<T>;
  UnaryOp op;
  A p0, p1;
  __device__ __forceinline__ T operator()(T in) const {
    const A v = load_acc(in);
    A r;
    switch (op) {
      case UnaryOp::Neg: r = -v; break;
      case UnaryOp::Exp: r = d_exp(v); break;
      case UnaryOp::Log: r = d_log(v); break;
      case UnaryOp::Sqrt: r = d_sqrt(v); break;
      case UnaryOp::Rsqrt: r = A(1) / d_sqrt(v); break;
      case UnaryOp::Tanh: r = d_tanh(v); break;
      case UnaryOp::Sigmoid: r = A(1) / (A(1) + d_exp(-v)); break;
      case UnaryOp::Abs: r = d_abs(v); break;
      // `v < 0 ? 0 : v` so that NaN propagates.
      case UnaryOp::Relu: r = v < A(0) ? A(0) : v; break;
      case UnaryOp::Gelu: r = A(0.5) * v * (A(1) + d_erf(v * A(kInvSqrt2))); break;
      case UnaryOp::GeluTanh: r = gelu_tanh_forward<T>(v); break;  // Note [16-bit tanh-GELU]
      case UnaryOp::Pow: r = p0 == A(2) ? v * v : p0 == A(0.5) ? d_sqrt(v) : d_pow(v, p0); break;
      // max then min with the bound second: NaN in v propagates, as std::max/min on the CPU.
      case UnaryOp::Clamp: {
        A m = v < p0 ? p0 : v;
        r = p1 < m ? p1 : m;
        break;
      }
      default: r = v; break;
    }
    return store_as<T>(r);
  }
};

template <typename T>
struct IntUnaryFn {
  UnaryOp op;
  T lo, hi;
  __device__ __forceinline__ T operator()(T v) const {
    using U = std::make_unsigned_t<T>;
    switch (op) {
      // Wraps like two's complement (no signed-overflow UB), as on the CPU.
      case UnaryOp::Neg: return static_cast<T>(static_cast<U>(U(0) - static_cast<U>(v)));
      case UnaryOp::Abs:
        if constexpr (std::is_unsigned_v<T>) return v;
        else return v < 0 ? static_cast<T>(static_cast<U>(U(0) - static_cast<U>(v))) : v;
      case UnaryOp::Relu:
        if constexpr (std::is_unsigned_v<T>) return v;
        else return v < T(0) ? T(0) : v;
      case UnaryOp::Clamp: {
        T m = v < lo ? lo : v;
        return hi < m ? hi : m;
      }
      default: return v;
    }
  }
};

template <typename T>
struct UnaryGradFn {
  using A = dacc_t<T>;
  UnaryOp op;
  A p0, p1;
  // s is the saved input x or result y, as unary_backward_saves says.
  __device__ __forceinline__ T operator()(T g_in, T s_in) const {
    const A g = load_acc(g_in), s = load_acc(s_in);
    A r;
    switch (op) {
      case UnaryOp::Neg: r = -g; break;
      case UnaryOp::Exp: r = g * s; break;
      case UnaryOp::Log: r = g / s; break;
      case UnaryOp::Sqrt: r = g / (A(2) * s); break;
      case UnaryOp::Rsqrt: r = A(-0.5) * g * s * s * s; break;
      case UnaryOp::Tanh: r = g * (A(1) - s * s); break;
      case UnaryOp::Sigmoid: r = g * s * (A(1) - s); break;
      case UnaryOp::Abs: r = s > A(0) ? g : (s < A(0) ? -g : A(0)); break;
      case UnaryOp::Relu: r = s > A(0) ? g : A(0); break;
      case UnaryOp::Gelu: {
        // d/dx x*Phi(x) = Phi(x) + x*phi(x).
        const A cdf = A(0.5) * (A(1) + d_erf(s * A(kInvSqrt2)));
        const A pdf = A(kInvSqrt2Pi) * d_exp(A(-0.5) * s * s);
        r = g * (cdf + s * pdf);
        break;
      }
      case UnaryOp::GeluTanh: r = g * gelu_tanh_derivative(s); break;
      case UnaryOp::Pow:
        r = p0 == A(0) ? A(0) : p0 == A(2) ? A(2) * g * s : g * p0 * d_pow(s, p0 - A(1));
        break;
      // The gradient passes where x lies inside [min, max], boundaries included.
      case UnaryOp::Clamp: r = (s >= p0 && s <= p1) ? g : A(0); break;
      default: r = g; break;
    }
    return store_as<T>(r);
  }
};

template <typename T>
struct WhereFn {
  __device__ __forceinline__ T operator()(uint8_t c, T a, T b) const { return c ? a : b; }
};

// Clamp bounds converted to an integer type, saturating at its range (as the CPU's int_bound).
template <typename T>
T int_bound(double v) {
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

}  // namespace

void unary(UnaryOp op, Tensor& out, const Tensor& x, const UnaryArgs& args) {
  KIRZL_INTERNAL_ASSERT(out.dtype() == x.dtype() && out.shape() == x.shape() && out.device() == x.device());
  dispatch_all(x.dtype(), "unary", [&]<typename T>() {
    if constexpr (std::is_integral_v<T>) {
      KIRZL_CHECK(unary_supports_integers(op), "unary: op needs a floating dtype, got ", dtype_name(x.dtype()));
      // Bounds round inwards so that e.g. clamp(x, 0.5) on integers keeps x >= 1.
      const T lo = op == UnaryOp::Clamp ? int_bound<T>(std::ceil(args.p0)) : T(0);
      const T hi = op == UnaryOp::Clamp ? int_bound<T>(std::floor(args.p1)) : T(0);
      elementwise<T, T>(out, IntUnaryFn<T>{op, lo, hi}, x);
    } else {
      using A = dacc_t<device_t<T>>;
      elementwise<T, T>(out, FloatUnaryFn<device_t<T>>{op, static_cast<A>(args.p0), static_cast<A>(args.p1)}, x);
    }
  });
}

void unary_backward(UnaryOp op, Tensor& gx, const Tensor& g, const Tensor& saved, const UnaryArgs& args) {
  KIRZL_INTERNAL_ASSERT(gx.dtype() == g.dtype() && gx.dtype() == saved.dtype());
  dispatch_floating(gx.dtype(), "unary backward", [&]<typename T>() {
    using A = dacc_t<device_t<T>>;
    elementwise<T, T, T>(gx, UnaryGradFn<device_t<T>>{op, static_cast<A>(args.p0), static_cast<A>(args.p1)}, g, saved);
  });
}

void where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  KIRZL_INTERNAL_ASSERT(cond.dtype() == DType::u8 && a.dtype() == out.dtype() && b.dtype() == out.dtype());
  dispatch_all(out.dtype(), "where", [&]<typename T>() { elementwise<T, uint8_t, T, T>(out, WhereFn<device_t<T>>{}, cond, a, b); });
}

void register_unary_kernels() {
  KIRZL_REGISTER_KERNEL(unary, DeviceType::CUDA, &unary);
  KIRZL_REGISTER_KERNEL(unary_backward, DeviceType::CUDA, &unary_backward);
  KIRZL_REGISTER_KERNEL(where, DeviceType::CUDA, &where);
}

}  // namespace kirzl::kernels::cuda
