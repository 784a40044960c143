// The core's CUDA entry points (core/cuda_runtime.h, kirzl/core/cuda.hpp), compiled in every
// build: each checks what it needs (CUDA, a device) and runs the backend. The one place that knows
// whether this build has CUDA (Note [cuda backend] in core/cuda_backend.h).
#include "core/cuda_backend.h"
#include "core/without_cuda.h"
#include "kirzl/config.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl {

namespace cuda_rt {

#if KIRZL_HAS_CUDA
Backend& cuda_backend();  // src/core/cuda/cuda_runtime.cpp
#endif

Backend* backend() noexcept {
#if KIRZL_HAS_CUDA
  return &cuda_backend();
#else
  return nullptr;
#endif
}

Backend& require_backend(const char* what) {
  Backend* b = backend();
  if (b == nullptr) KIRZL_FAIL(ErrorCode::Unsupported, what, ": ", detail::kBuiltWithoutCuda);
  return *b;
}

Backend& require_device(int index, const char* what) {
  Backend& b = require_backend(what);
  int n = b.device_count();
  KIRZL_CHECK_CODE(n > 0, ErrorCode::Unsupported, what, ": cuda:", index,
                   " requested, but no CUDA device is available on this machine");
  KIRZL_CHECK(index >= 0 && index < n, what, ": cuda:", index, " requested, but only ", n,
              " CUDA device(s) are visible (cuda:0 .. cuda:", n - 1, ")");
  return b;
}

Backend& require_any_device(const char* what) {
  Backend& b = require_backend(what);
  KIRZL_CHECK_CODE(b.device_count() > 0, ErrorCode::Unsupported, what,
                   ": no CUDA device is available on this machine");
  return b;
}

void* malloc(size_t nbytes, int device) { return require_device(device, "cuda malloc").malloc(nbytes, device); }

void free(void* ptr, int device) noexcept {
  if (Backend* b = backend()) b->free(ptr, device);
}

bool record_stream(void* ptr, int device, void* stream, int stream_device) {
  Backend* b = backend();
  return b != nullptr && b->record_stream(ptr, device, stream, stream_device);
}

void* malloc_pinned(size_t nbytes, const char* what) { return require_any_device(what).malloc_pinned(nbytes); }

void free_pinned(void* ptr) noexcept {
  if (Backend* b = backend()) b->free_pinned(ptr);
}

bool record_pinned_use(void* ptr, int device, void* stream) {
  Backend* b = backend();
  return b != nullptr && b->record_pinned_use(ptr, device, stream);
}

void forget_stream(void* stream, int device) noexcept {
  if (Backend* b = backend()) b->forget_stream(stream, device);
}

bool is_pinned_pointer(const void* ptr) noexcept {
  Backend* b = backend();
  return b != nullptr && b->is_pinned_pointer(ptr);
}

void memcpy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  require_device(device, "cuda memcpy").memcpy(dst, src, nbytes, kind, device);
}

void memcpy_async(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  require_device(device, "cuda memcpy_async").memcpy_async(dst, src, nbytes, kind, device);
}

void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, size_t nbytes, bool blocking) {
  require_device(dst_device, "cuda memcpy_peer");
  require_device(src_device, "cuda memcpy_peer").memcpy_peer(dst, dst_device, src, src_device, nbytes, blocking);
}

void* current_stream_handle(int device) {
  return require_device(device, "cuda current stream").current_stream_handle(device);
}

void sync_current_stream_unchecked(int device) {
  require_device(device, "cuda stream synchronize").sync_current_stream_unchecked(device);
}

IndexErrorSlot index_error_slot(int device) {
  return require_device(device, "cuda index check").index_error_slot(device);
}

void throw_if_index_error(int device) {
  if (Backend* b = backend()) b->throw_if_index_error(device);
}

void fill(void* dst, DType dtype, size_t count, double value, int device) {
  require_backend("cuda fill").fill(dst, dtype, count, value, device);
}

void cast(void* dst, DType dst_dtype, const void* src, DType src_dtype, size_t count, int device) {
  require_backend("cuda cast").cast(dst, dst_dtype, src, src_dtype, count, device);
}

}  // namespace cuda_rt

namespace cuda {

int device_count() noexcept {
  const cuda_rt::Backend* b = cuda_rt::backend();
  return b != nullptr ? b->device_count() : 0;
}

void set_device(int device) { cuda_rt::require_device(device, "cuda::set_device").set_device(device); }

int current_device() { return cuda_rt::require_any_device("cuda::current_device").current_device(); }

void synchronize(int device) { cuda_rt::require_device(device, "cuda::synchronize").synchronize(device); }

DeviceProperties device_properties(int device) {
  return cuda_rt::require_device(device, "cuda::device_properties").device_properties(device);
}

MemoryStats memory_stats(int device) {
  return cuda_rt::require_device(device, "cuda::memory_stats").memory_stats(device);
}

void reset_peak_memory_stats(int device) {
  cuda_rt::require_device(device, "cuda::reset_peak_memory_stats").reset_peak_memory_stats(device);
}

void empty_cache() { cuda_rt::require_any_device("cuda::empty_cache").empty_cache(); }

MemoryStats host_memory_stats() { return cuda_rt::require_any_device("cuda::host_memory_stats").host_memory_stats(); }

void empty_host_cache() { cuda_rt::require_any_device("cuda::empty_host_cache").empty_host_cache(); }

MemInfo mem_get_info(int device) { return cuda_rt::require_device(device, "cuda::mem_get_info").mem_get_info(device); }

}  // namespace cuda

}  // namespace kirzl
