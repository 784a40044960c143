// Copies and conversions: contiguous, clone, to(dtype), to(device), pin_memory, item, to_vector.
#include "core/cuda_runtime.h"
#include "kernels/copy.h"
#include "kernels/dispatch.h"
#include "kirzl/autograd.hpp"
#include "kirzl/tensor.hpp"

namespace kirzl {

namespace {
// A new contiguous CPU tensor in pinned memory (Storage::allocate_pinned).
Tensor empty_pinned(const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate_pinned(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

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

// Note [asynchronous copies]: every host<->device copy is a cudaMemcpyAsync on the current
// stream of the device involved, so it is ordered after the kernels that produced its source and
// before the ones that consume its result. A blocking copy then waits for that stream. A
// non-blocking one returns at once; its pinned host buffer is declared used by the stream
// (Storage::record_stream), so the pinned allocator does not hand the buffer out again before the
// copy has completed, even if the caller drops the tensor early.
Tensor Tensor::to(Device target, bool non_blocking) const {
  check_defined_("to");
  if (target == device()) return *this;
  Device from = device();
  Tensor src = contiguous();  // on the source device (CUDA: the strided copy kernel)
  Tensor out;
  if (target.is_cpu()) {
    int d = from.index();
    if (non_blocking) {
      out = empty_pinned(shape(), dtype());
      cuda_rt::memcpy_async(out.data_ptr(), src.data_ptr(), nbytes(), cuda_rt::CopyKind::DeviceToHost, d);
      out.storage().record_stream(cuda::Stream::current(d));
    } else {
      out = empty(shape(), {.dtype = dtype()});
      cuda_rt::memcpy(out.data_ptr(), src.data_ptr(), nbytes(), cuda_rt::CopyKind::DeviceToHost, d);
    }
  } else if (from.is_cpu()) {
    int d = target.index();
    out = empty(shape(), {.dtype = dtype(), .device = target});
    if (non_blocking && src.is_pinned()) {
      cuda_rt::memcpy_async(out.data_ptr(), src.data_ptr(), nbytes(), cuda_rt::CopyKind::HostToDevice, d);
      src.storage().record_stream(cuda::Stream::current(d));
    } else {
      cuda_rt::memcpy(out.data_ptr(), src.data_ptr(), nbytes(), cuda_rt::CopyKind::HostToDevice, d);
    }
  } else {
    out = empty(shape(), {.dtype = dtype(), .device = target});
    cuda_rt::memcpy_peer(out.data_ptr(), target.index(), src.data_ptr(), from.index(), nbytes(), !non_blocking);
  }
  autograd::record("to_device", out, {*this}, [from](const autograd::GradContext& c) {
    return std::vector<Tensor>{c.grad().to(from)};
  });
  return out;
}

Tensor Tensor::pin_memory() const {
  check_defined_("pin_memory");
  KIRZL_CHECK(device().is_cpu(), "pin_memory: expected a CPU tensor, got ", describe());
  if (is_pinned()) return *this;
  Tensor out = empty_pinned(shape(), dtype());
  kernels::copy(out, *this);
  return out;
}

bool Tensor::is_pinned() const { return defined() && storage().is_pinned(); }

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
