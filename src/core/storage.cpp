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

namespace {
// Which allocator the memory came from: decides what record_stream and is_pinned do.
enum class Source : uint8_t { External, Cpu, CudaCaching, Pinned };
}  // namespace

struct Storage::Impl {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  Source source = Source::External;
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
    s.impl_->source = Source::Cpu;
    s.impl_->deleter = [nbytes](void* q) { cpu_free(q, nbytes); };
  } else {
    int index = device.index();
    void* p = cuda_rt::malloc(nbytes, index);  // checks the device even for 0 bytes
    s.impl_->data = p;
    s.impl_->source = Source::CudaCaching;
    s.impl_->deleter = [index](void* q) {
      if (q) cuda_rt::free(q, index);
    };
  }
  return s;
}

Storage Storage::allocate_pinned(size_t nbytes) {
  void* p = cuda_rt::malloc_pinned(nbytes, "pin_memory / Storage::allocate_pinned");
  Storage s;
  s.impl_ = std::make_shared<Impl>();
  s.impl_->data = p;
  s.impl_->nbytes = nbytes;
  s.impl_->device = Device::cpu();
  s.impl_->source = Source::Pinned;
  s.impl_->deleter = [](void* q) { cuda_rt::free_pinned(q); };
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

bool Storage::is_pinned() const {
  if (!impl_ || !impl_->device.is_cpu()) return false;
  if (impl_->source == Source::Pinned) return impl_->data != nullptr;
  return impl_->source == Source::External && cuda_rt::is_pinned_pointer(impl_->data);
}

void Storage::record_stream(const cuda::Stream& stream) const {
  KIRZL_CHECK(stream.defined(), "Storage::record_stream: the Stream is empty");
  if (!impl_ || !impl_->data) return;
  if (impl_->source == Source::CudaCaching)
    cuda_rt::record_stream(impl_->data, impl_->device.index(), stream.native_handle(), stream.device());
  else if (impl_->source == Source::Pinned)
    cuda_rt::record_pinned_use(impl_->data, stream.device(), stream.native_handle());
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
  } else if (dst_device.is_cuda() && src_device.is_cpu()) {
    cuda_rt::memcpy(dst, src, nbytes, cuda_rt::CopyKind::HostToDevice, dst_device.index());
  } else if (dst_device.is_cpu() && src_device.is_cuda()) {
    cuda_rt::memcpy(dst, src, nbytes, cuda_rt::CopyKind::DeviceToHost, src_device.index());
  } else if (dst_device == src_device) {
    cuda_rt::memcpy(dst, src, nbytes, cuda_rt::CopyKind::DeviceToDevice, dst_device.index());
  } else {
    cuda_rt::memcpy_peer(dst, dst_device.index(), src, src_device.index(), nbytes, /*blocking=*/true);
  }
}

}  // namespace kirzl
