// CUDA runtime calls of the core (device memory, pinned memory, copies): the CudaBackend methods
// behind the entry points of core/cuda_runtime.h, which checked the device first (Note [cuda
// backend]). Built only with the CUDA toolkit; a GPU is needed only when one of these is called.
#include "core/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <vector>

#include "core/cuda/allocators.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/current_stream.h"
#include "core/cuda/device_guard.h"
#include "core/cuda/stream_release.h"
#include "kirzl/core/device.hpp"

namespace kirzl::cuda_rt {

Backend& cuda_backend() {
  // Never destroyed, like the allocators: tensors may be freed during static destruction.
  static CudaBackend* backend = new CudaBackend();
  return *backend;
}

int CudaBackend::device_count() const noexcept {
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

void* CudaBackend::malloc(size_t nbytes, int device) {
  if (nbytes == 0) return nullptr;
  return device_allocator(device).allocate(nbytes, stream_ref(current_stream(device), device));
}

void CudaBackend::free(void* ptr, int device) noexcept {
  if (ptr) device_allocator(device).free(ptr);
}

bool CudaBackend::record_stream(void* ptr, int device, void* stream, int stream_device) {
  if (!ptr) return false;
  return device_allocator(device).record_stream(ptr, stream_ref(static_cast<cudaStream_t>(stream), stream_device));
}

void* CudaBackend::malloc_pinned(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  return host_allocator().allocate(nbytes, kPinnedStream);
}

void CudaBackend::free_pinned(void* ptr) noexcept {
  if (ptr) host_allocator().free(ptr);
}

bool CudaBackend::record_pinned_use(void* ptr, int device, void* stream) {
  if (!ptr) return false;
  return host_allocator().record_stream(ptr, stream_ref(static_cast<cudaStream_t>(stream), device));
}

void CudaBackend::forget_stream(void* stream, int device) noexcept {
  if (!stream || device < 0) return;
  const alloc::StreamRef ref = stream_ref(static_cast<cudaStream_t>(stream), device);
  try {
    device_allocator(device).forget_stream(ref);
    host_allocator().forget_stream(ref);
  } catch (const std::exception& e) {  // runs in a destructor: report, never throw
    std::fprintf(stderr, "kirzl: forgetting a destroyed stream in the allocators failed: %s\n", e.what());
  }
  run_stream_release_hooks(stream, device);
}

namespace {
std::mutex& release_hooks_mutex() {
  static auto* mu = new std::mutex;  // never destroyed: streams may die during static destruction
  return *mu;
}
std::vector<StreamReleaseHook>& release_hooks() {
  static auto* hooks = new std::vector<StreamReleaseHook>;
  return *hooks;
}
}  // namespace

void add_stream_release_hook(StreamReleaseHook hook) {
  std::lock_guard<std::mutex> lock(release_hooks_mutex());
  auto& hooks = release_hooks();
  if (std::find(hooks.begin(), hooks.end(), hook) == hooks.end()) hooks.push_back(hook);
}

void run_stream_release_hooks(void* stream, int device) noexcept {
  std::vector<StreamReleaseHook> hooks;
  {
    std::lock_guard<std::mutex> lock(release_hooks_mutex());
    hooks = release_hooks();
  }
  for (StreamReleaseHook h : hooks) h(stream, device);
}

bool CudaBackend::is_pinned_pointer(const void* ptr) noexcept {
  if (!ptr || device_count() == 0) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

void CudaBackend::memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  if (nbytes == 0) return;
  if (kind == CopyKind::DeviceToHost)
    check_not_capturing(device, "copy from the device to the host (Tensor::to(cpu), Tensor::item())",
                        "it waits for the device; read results after Graph::replay() instead");
  else if (kind == CopyKind::HostToDevice)
    check_not_capturing(device, "copy from host memory to the device",
                        "it waits for the copy; copy the next batch into a static input tensor before Graph::replay()");
  DeviceGuard guard(device);
  cudaStream_t s = current_stream(device);
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, to_cuda(kind), s));
  if (kind != CopyKind::DeviceToDevice) KIRZL_CUDA_CHECK(cudaStreamSynchronize(s));
  // A copy to the host is where a result is read (Tensor::to(cpu), item()): a bad index found
  // by work before it is reported here, before the bytes are used (Note [deferred index check]).
  if (kind == CopyKind::DeviceToHost) throw_if_index_error(device);
}

void CudaBackend::memcpy_async(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  if (nbytes == 0) return;
  // A captured copy from pageable memory is invalid, and one from pinned memory would be recorded
  // on the capture stream by the pinned allocator (an event no one may query): refused as well.
  if (kind != CopyKind::DeviceToDevice)
    check_not_capturing(device, "asynchronous copy between host and device memory",
                        "copy the next batch into a static input tensor before Graph::replay() instead");
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, to_cuda(kind), current_stream(device)));
}

void CudaBackend::memcpy_peer(void* dst, int dst_device, const void* src, int src_device, size_t nbytes,
                              bool blocking) {
  if (nbytes == 0) return;
  if (blocking) {
    check_not_capturing(src_device, "blocking copy between devices", "it waits for the device");
    check_not_capturing(dst_device, "blocking copy between devices", "it waits for the device");
  }
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

void* CudaBackend::current_stream_handle(int device) {
  return current_stream(device);
}

void CudaBackend::sync_current_stream_unchecked(int device) {
  DeviceGuard guard(device);
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(current_stream(device)));
}

}  // namespace kirzl::cuda_rt
