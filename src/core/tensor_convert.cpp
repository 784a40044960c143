// Copies and conversions: contiguous, clone, to(dtype), to(device), item, to_vector.
#include "kernels/copy.h"
#include "kernels/dispatch.h"
#include "kirzl/autograd.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

namespace {
// A new contiguous tensor of t's shape with `dtype` on `device`, holding t's values.
Tensor converted_copy(const Tensor& t, DType dtype) {
  Tensor out = empty(t.shape(), {.dtype = dtype, .device = t.device()});
  kernels::copy(out, t);
  return out;
}
}  // namespace

Tensor Tensor::contiguous() const {
  check_defined_("contiguous");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  check_defined_("clone");
  Tensor out = converted_copy(*this, dtype());
  autograd::record("clone", out, {*this}, [](const autograd::GradContext& c) { return std::vector<Tensor>{c.grad()}; });
  return out;
}

Tensor Tensor::to(DType target) const {
  check_defined_("to");
  if (target == dtype()) return *this;
  Tensor out = converted_copy(*this, target);
  if (is_floating(target) && is_floating(dtype())) {
    DType src = dtype();
    autograd::record("to_dtype", out, {*this}, [src](const autograd::GradContext& c) {
      return std::vector<Tensor>{c.grad().to(src)};
    });
  }
  return out;
}

Tensor Tensor::to(Device target) const {
  check_defined_("to");
  if (target == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), {.dtype = dtype(), .device = target});
  copy_bytes(out.data_ptr(), target, src.data_ptr(), src.device(), nbytes());
  Device from = device();
  autograd::record("to_device", out, {*this}, [from](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().to(from)};
  });
  return out;
}

double Tensor::item() const {
  check_defined_("item");
  KIRZL_CHECK(numel() == 1, "item: expected a tensor with one element, got ", describe());
  Tensor t = device().is_cpu() ? *this : detach().contiguous().to(Device::cpu());
  return kernels::dispatch_all(t.dtype(), "item", [&]<typename T>() { return kernels::to_double(*static_cast<T*>(t.data_ptr())); });
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  check_defined_("to_vector");
  Tensor t = detach();
  if (!t.device().is_cpu()) t = t.contiguous().to(Device::cpu());
  t = t.to(dtype_of<T>).contiguous();
  const T* p = static_cast<const T*>(t.data_ptr());
  return std::vector<T>(p, p + t.numel());
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<BFloat16> Tensor::to_vector<BFloat16>() const;
template std::vector<Half> Tensor::to_vector<Half>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<uint16_t> Tensor::to_vector<uint16_t>() const;

}  // namespace kirzl
