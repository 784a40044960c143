// Factories: empty, zeros, ones, full, arange, random tensors, from_vector, from_blob.
#include <cmath>
#include <limits>
#include <numbers>

#include "kernels/copy.h"
#include "kernels/dispatch.h"
#include "kirzl/tensor.hpp"

namespace kirzl {

namespace {
void check_shape(const Shape& shape, const char* op) {
  for (int64_t v : shape) KIRZL_CHECK(v >= 0, op, ": negative extent in shape ", shape.str());
}

Tensor finish(Tensor t, const TensorOptions& o) {
  if (o.requires_grad) t.requires_grad_(true);
  return t;
}

// Fills a CPU buffer of doubles with n values from `gen`, then converts to the requested tensor.
// Random tensors are generated on the CPU in f64 and converted, so every dtype and device sees the
// same stream for the same seed.
template <typename Sample>
Tensor random_tensor(const Shape& shape, const TensorOptions& o, Generator* gen, const char* op, Sample sample) {
  check_shape(shape, op);
  Generator& g = gen ? *gen : default_generator();
  const int64_t n = shape.numel();
  const uint64_t blocks = static_cast<uint64_t>((n + 1) / 2);  // two values per Philox block
  const auto [seed, start] = g.reserve(blocks);
  Tensor host = empty(shape, {.dtype = DType::f64});
  double* p = host.data<double>();
  for (uint64_t b = 0; b < blocks; ++b) {
    auto r = Generator::philox(seed, start + b);
    double v0, v1;
    sample(r, v0, v1);
    p[2 * b] = v0;
    if (static_cast<int64_t>(2 * b + 1) < n) p[2 * b + 1] = v1;
  }
  Tensor out = host.to(o.dtype);
  if (!o.device.is_cpu()) out = out.to(o.device);
  return finish(out, o);
}
}  // namespace

Tensor empty(const Shape& shape, const TensorOptions& o) {
  check_shape(shape, "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(shape.numel()) * dtype_size(o.dtype), o.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = o.dtype;
  return finish(Tensor(std::move(impl)), o);
}

Tensor full(const Shape& shape, double value, const TensorOptions& o) {
  Tensor t = empty(shape, {.dtype = o.dtype, .device = o.device});
  kernels::fill(t, value);
  return finish(t, o);
}

Tensor zeros(const Shape& shape, const TensorOptions& o) { return full(shape, 0.0, o); }
Tensor ones(const Shape& shape, const TensorOptions& o) { return full(shape, 1.0, o); }
Tensor zeros_like(const Tensor& t, bool rg) { return zeros(t.shape(), {.dtype = t.dtype(), .device = t.device(), .requires_grad = rg}); }
Tensor ones_like(const Tensor& t, bool rg) { return ones(t.shape(), {.dtype = t.dtype(), .device = t.device(), .requires_grad = rg}); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), options_of(t)); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, options_of(t)); }

Tensor scalar_tensor(double value, const TensorOptions& o) { return full(Shape{}, value, o); }

Tensor arange(double start, double end, double step, const TensorOptions& o) {
  KIRZL_CHECK(step != 0 && std::isfinite(step) && std::isfinite(start) && std::isfinite(end),
              "arange: invalid range start=", start, " end=", end, " step=", step);
  double count = std::ceil((end - start) / step);
  int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor host = empty({n}, {.dtype = DType::f64});
  double* p = host.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = start + static_cast<double>(i) * step;
  Tensor out = host.to(o.dtype);
  if (!o.device.is_cpu()) out = out.to(o.device);
  return finish(out, o);
}

Tensor arange(int64_t end, const TensorOptions& o) { return arange(0.0, static_cast<double>(end), 1.0, o); }

Tensor uniform(const Shape& shape, double low, double high, const TensorOptions& o, Generator* gen) {
  KIRZL_CHECK(low <= high, "uniform: low (", low, ") must not exceed high (", high, ")");
  KIRZL_CHECK(is_floating(o.dtype), "uniform: expected a floating dtype, got ", dtype_name(o.dtype));
  return random_tensor(shape, o, gen, "uniform", [&](const std::array<uint32_t, 4>& r, double& a, double& b) {
    a = low + (high - low) * uint_to_unit_double(r[0], r[1]);
    b = low + (high - low) * uint_to_unit_double(r[2], r[3]);
  });
}

Tensor rand(const Shape& shape, const TensorOptions& o, Generator* gen) { return uniform(shape, 0.0, 1.0, o, gen); }

Tensor normal(const Shape& shape, double mean, double std, const TensorOptions& o, Generator* gen) {
  KIRZL_CHECK(std >= 0, "normal: std must be >= 0, got ", std);
  KIRZL_CHECK(is_floating(o.dtype), "normal: expected a floating dtype, got ", dtype_name(o.dtype));
  return random_tensor(shape, o, gen, "normal", [&](const std::array<uint32_t, 4>& r, double& a, double& b) {
    // Box-Muller: two independent normals from two uniforms; u1 in (0, 1] keeps log finite.
    double u1 = 1.0 - uint_to_unit_double(r[0], r[1]);
    double u2 = uint_to_unit_double(r[2], r[3]);
    double rad = std::sqrt(-2.0 * std::log(u1));
    a = mean + std * rad * std::cos(2.0 * std::numbers::pi * u2);
    b = mean + std * rad * std::sin(2.0 * std::numbers::pi * u2);
  });
}

Tensor randn(const Shape& shape, const TensorOptions& o, Generator* gen) { return normal(shape, 0.0, 1.0, o, gen); }

Tensor randint(int64_t low, int64_t high, const Shape& shape, const TensorOptions& o, Generator* gen) {
  KIRZL_CHECK(low < high, "randint: expected low < high, got [", low, ", ", high, ")");
  const uint64_t range = static_cast<uint64_t>(high - low);
  KIRZL_CHECK(range <= (1ull << 53), "randint: range ", range, " is too large (at most 2^53)");
  return random_tensor(shape, o, gen, "randint", [&](const std::array<uint32_t, 4>& r, double& a, double& b) {
    // 64 random bits per value; modulo bias is below 2^-11 for ranges up to 2^53.
    uint64_t x = (static_cast<uint64_t>(r[0]) << 32) | r[1];
    uint64_t y = (static_cast<uint64_t>(r[2]) << 32) | r[3];
    a = static_cast<double>(low + static_cast<int64_t>(x % range));
    b = static_cast<double>(low + static_cast<int64_t>(y % range));
  });
}

Tensor randperm(int64_t n, Generator* gen) {
  KIRZL_CHECK(n >= 0, "randperm: n must be >= 0, got ", n);
  Generator& g = gen ? *gen : default_generator();
  Tensor out = arange(n);
  int64_t* p = out.data<int64_t>();
  const auto [seed, start] = g.reserve(static_cast<uint64_t>(n));
  // Fisher-Yates with one Philox block per swap.
  for (int64_t i = n - 1; i > 0; --i) {
    auto r = Generator::philox(seed, start + static_cast<uint64_t>(i));
    uint64_t x = (static_cast<uint64_t>(r[0]) << 32) | r[1];
    int64_t j = static_cast<int64_t>(x % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return out;
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, const TensorOptions& o) {
  check_shape(shape, "from_vector");
  KIRZL_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
              " values do not fill shape ", shape.str(), " (", shape.numel(), " elements)");
  Tensor host = empty(shape, {.dtype = dtype_of<T>});
  std::copy(values.begin(), values.end(), host.data<T>());
  Tensor out = host.to(o.dtype);
  if (!o.device.is_cpu()) out = out.to(o.device);
  return finish(out, o);
}

template Tensor from_vector(const std::vector<float>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<double>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<BFloat16>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<Half>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<uint8_t>&, const Shape&, const TensorOptions&);
template Tensor from_vector(const std::vector<uint16_t>&, const Shape&, const TensorOptions&);

Tensor from_blob(void* data, const Shape& shape, const Shape& strides, DType dtype, Device device, Deleter deleter) {
  check_shape(shape, "from_blob");
  KIRZL_CHECK(strides.size() == shape.size(), "from_blob: strides ", strides.str(), " do not match shape ", shape.str());
  KIRZL_CHECK(data != nullptr || shape.numel() == 0, "from_blob: null data for shape ", shape.str());
  int64_t span = 1;
  for (int64_t d = 0; d < shape.size(); ++d) {
    KIRZL_CHECK(strides[d] >= 0, "from_blob: negative strides are not supported, got ", strides.str());
    if (shape[d] > 0) span += (shape[d] - 1) * strides[d];
  }
  if (shape.numel() == 0) span = 0;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::from_blob(data, static_cast<size_t>(span) * dtype_size(dtype), device, std::move(deleter));
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device, Deleter deleter) {
  return from_blob(data, shape, contiguous_strides(shape), dtype, device, std::move(deleter));
}

}  // namespace kirzl
