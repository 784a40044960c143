// Pinned staging buffers of the MPI backend for CUDA tensors (see comm/host_staging.h), on top of
// the core's CUDA runtime calls (core/cuda_runtime.h), so that comm needs no CUDA code of its own
// and core knows nothing of comm. Without CUDA no CUDA tensor exists, so these are never reached
// (the runtime calls would throw Error{Unsupported}).
#include "comm/host_staging.h"

#include <algorithm>

#include "core/cuda_runtime.h"

namespace kirzl::comm::detail {

HostStaging::~HostStaging() {
  if (ptr_) cuda_rt::free_pinned(ptr_);
}

void* HostStaging::reserve(size_t bytes) {
  if (bytes <= capacity_ && ptr_) return ptr_;
  if (ptr_) cuda_rt::free_pinned(ptr_);
  ptr_ = nullptr;
  capacity_ = 0;
  const size_t want = std::max<size_t>(bytes, 1 << 20);
  ptr_ = cuda_rt::malloc_pinned(want, "pinned staging");
  capacity_ = want;
  return ptr_;
}

void HostStaging::abandon() {
  ptr_ = nullptr;
  capacity_ = 0;
}

void HostStaging::to_host(void* dst, const Tensor& src) {
  if (src.nbytes() == 0) return;
  const int dev = src.device().index();
  cuda_rt::memcpy_async(dst, src.data_ptr(), src.nbytes(), cuda_rt::CopyKind::DeviceToHost, dev);
  cuda_rt::sync_current_stream_unchecked(dev);
}

void HostStaging::to_device(Tensor& dst, const void* src) {
  if (dst.nbytes() == 0) return;
  const int dev = dst.device().index();
  cuda_rt::memcpy_async(dst.data_ptr(), src, dst.nbytes(), cuda_rt::CopyKind::HostToDevice, dev);
  cuda_rt::sync_current_stream_unchecked(dev);
}

bool HostStaging::stage(Tensor& out, Tensor& in, bool reads_out) {
  const bool out_cuda = out.defined() && out.device().is_cuda(), in_cuda = in.defined() && in.device().is_cuda();
  if (!out_cuda && !in_cuda) return false;
  const size_t ob = out.defined() ? out.nbytes() : 0, ib = in.defined() ? in.nbytes() : 0;
  auto* base = static_cast<std::byte*>(reserve(ob + ib));
  if (out_cuda) {
    if (reads_out) to_host(base, out);
    out = from_blob(base, out.shape(), out.dtype());
  }
  if (in_cuda) {
    to_host(base + ob, in);
    in = from_blob(base + ob, in.shape(), in.dtype());
  }
  return true;
}

void HostStaging::sync_current_stream(int device) { cuda_rt::sync_current_stream_unchecked(device); }

}  // namespace kirzl::comm::detail
