#include "kirzl/core/storage.hpp"

#include <cstdlib>
#include <cstring>

#include "core/cuda_runtime.h"
#include "kirzl/core/allocator.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl {

// Note [cpu alignment]: 64 bytes is a cache line and the widest SIMD load (AVX-512), so any
// contiguous tensor that starts a storage can be read with aligned vector loads. The CPU
// allocator (core/allocator.hpp) guarantees it.

struct Storage::Impl {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  Deleter deleter;
  ~Impl() {
    if (deleter) deleter(data);
  }
};

Storage Storage::allocate(size_t nbytes, Device device) {
  Storage s;
  s.impl_ = std::make_shared<Impl>();
  s.impl_->nbytes = nbytes;
  s.impl_->device = device;
  if (device.is_cpu()) {
    s.impl_->data = cpu_allocate(nbytes);
    s.impl_->deleter = [nbytes](void* q) { cpu_free(q, nbytes); };
  } else {
    int index = device.index();
    void* p = nbytes == 0 ? nullptr : cuda_rt::malloc(nbytes, index);
    s.impl_->data = p;
    s.impl_->deleter = [index](void* q) {
      if (q) cuda_rt::free(q, index);
    };
  }
  return s;
}

Storage Storage::from_blob(void* data, size_t nbytes, Device device, Deleter deleter) {
  Storage s;
  s.impl_ = std::make_shared<Impl>();
  s.impl_->data = data;
  s.impl_->nbytes = nbytes;
  s.impl_->device = device;
  s.impl_->deleter = std::move(deleter);
  return s;
}

void* Storage::data() const { return impl_ ? impl_->data : nullptr; }
size_t Storage::nbytes() const { return impl_ ? impl_->nbytes : 0; }
Device Storage::device() const { return impl_ ? impl_->device : Device::cpu(); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
  } else if (dst_device.is_cuda() && src_device.is_cpu()) {
    cuda_rt::memcpy(dst, src, nbytes, cuda_rt::CopyKind::HostToDevice, dst_device.index());
  } else if (dst_device.is_cpu() && src_device.is_cuda()) {
    cuda_rt::memcpy(dst, src, nbytes, cuda_rt::CopyKind::DeviceToHost, src_device.index());
  } else {
    cuda_rt::memcpy(dst, src, nbytes, cuda_rt::CopyKind::DeviceToDevice, dst_device.index());
  }
}

}  // namespace kirzl
