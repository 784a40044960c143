// CUDA runtime calls of the core (device memory, pinned memory, copies). Built only with the CUDA
// toolkit; a GPU is needed only when one of these is called.
#include "core/cuda_runtime.h"

#include <cstdio>
#include <cuda_runtime.h>

#include "core/cuda/allocators.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"
#include "kirzl/core/device.hpp"

namespace kirzl {

int cuda::device_count() noexcept {
  // Asked once: the answer cannot change in a process, and cudaGetDeviceCount is not free.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // no driver / no device: clear the sticky error
      return 0;
    }
    return n;
  }();
  return count;
}

namespace cuda_rt {
namespace {

cudaMemcpyKind to_cuda(CopyKind kind) {
  return kind == CopyKind::HostToDevice   ? cudaMemcpyHostToDevice
         : kind == CopyKind::DeviceToHost ? cudaMemcpyDeviceToHost
                                          : cudaMemcpyDeviceToDevice;
}

// Pinned blocks belong to no stream; every stream that uses one is recorded (record_pinned_use),
// so reuse always waits for the copies that used it.
constexpr alloc::StreamRef kPinnedStream{0, -1};

// Later work on `waiting` (device wd) runs after the work queued so far on `waited` (device vd).
void stream_wait_stream(cudaStream_t waiting, int wd, cudaStream_t waited, int vd) {
  cudaEvent_t e = nullptr;
  {
    DeviceGuard guard(vd);
    KIRZL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    KIRZL_CUDA_CHECK(cudaEventRecord(e, waited));
  }
  DeviceGuard guard(wd);
  cudaError_t err = cudaStreamWaitEvent(waiting, e, 0);
  // Destroying an event whose wait is enqueued is allowed: CUDA frees it once it completes.
  KIRZL_CUDA_CHECK_NOTHROW(cudaEventDestroy(e));
  KIRZL_CUDA_CHECK(err);
}

}  // namespace

void require_device(int index, const char* what) {
  int n = cuda::device_count();
  KIRZL_CHECK_CODE(n > 0, ErrorCode::Unsupported, what, ": cuda:", index,
                   " requested, but no CUDA device is available on this machine");
  KIRZL_CHECK(index >= 0 && index < n, what, ": cuda:", index, " requested, but only ", n,
              " CUDA device(s) are visible (cuda:0 .. cuda:", n - 1, ")");
}

void require_any_device(const char* what) {
  KIRZL_CHECK_CODE(cuda::device_count() > 0, ErrorCode::Unsupported, what,
                   ": no CUDA device is available on this machine");
}

void* malloc(size_t nbytes, int device) {
  require_device(device, "cuda malloc");
  if (nbytes == 0) return nullptr;
  return device_allocator(device).allocate(nbytes, stream_ref(current_stream(device), device));
}

void free(void* ptr, int device) noexcept {
  if (ptr) device_allocator(device).free(ptr);
}

bool record_stream(void* ptr, int device, void* stream, int stream_device) {
  if (!ptr) return false;
  return device_allocator(device).record_stream(ptr, stream_ref(static_cast<cudaStream_t>(stream), stream_device));
}

void* malloc_pinned(size_t nbytes, const char* what) {
  require_any_device(what);
  if (nbytes == 0) return nullptr;
  return host_allocator().allocate(nbytes, kPinnedStream);
}

void free_pinned(void* ptr) noexcept {
  if (ptr) host_allocator().free(ptr);
}

bool record_pinned_use(void* ptr, int device, void* stream) {
  if (!ptr) return false;
  return host_allocator().record_stream(ptr, stream_ref(static_cast<cudaStream_t>(stream), device));
}

void forget_stream(void* stream, int device) noexcept {
  if (!stream || device < 0) return;
  const alloc::StreamRef ref = stream_ref(static_cast<cudaStream_t>(stream), device);
  try {
    device_allocator(device).forget_stream(ref);
    host_allocator().forget_stream(ref);
  } catch (const std::exception& e) {  // runs in a destructor: report, never throw
    std::fprintf(stderr, "kirzl: forgetting a destroyed stream in the allocators failed: %s\n", e.what());
  }
}

bool is_pinned_pointer(const void* ptr) noexcept {
  if (!ptr || cuda::device_count() == 0) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  require_device(device, "cuda memcpy");
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  cudaStream_t s = current_stream(device);
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, to_cuda(kind), s));
  if (kind != CopyKind::DeviceToDevice) KIRZL_CUDA_CHECK(cudaStreamSynchronize(s));
  // A copy to the host is where a result is read (Tensor::to(cpu), item()): a bad index found
  // by work before it is reported here, before the bytes are used (Note [deferred index check]).
  if (kind == CopyKind::DeviceToHost) throw_if_index_error(device);
}

void memcpy_async(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  require_device(device, "cuda memcpy_async");
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, to_cuda(kind), current_stream(device)));
}

void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, size_t nbytes, bool blocking) {
  require_device(dst_device, "cuda memcpy_peer");
  require_device(src_device, "cuda memcpy_peer");
  if (nbytes == 0) return;
  cudaStream_t ss = current_stream(src_device);
  cudaStream_t ds = current_stream(dst_device);
  // The destination block may have been in use on the destination's stream until just now
  // (stream-ordered reuse): the copy, on the source's stream, waits for that stream first.
  stream_wait_stream(ss, src_device, ds, dst_device);
  {
    DeviceGuard guard(src_device);
    KIRZL_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, ss));
  }
  // Work the caller queues next on the destination device sees the bytes.
  stream_wait_stream(ds, dst_device, ss, src_device);
  if (blocking) {
    DeviceGuard guard(src_device);
    KIRZL_CUDA_CHECK(cudaStreamSynchronize(ss));
  }
}

void* current_stream_handle(int device) {
  require_device(device, "cuda current stream");
  return current_stream(device);
}

void sync_current_stream_unchecked(int device) {
  require_device(device, "cuda stream synchronize");
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(current_stream(device)));
}

}  // namespace cuda_rt
}  // namespace kirzl
