// The CUDA runtime entry points of a build without the CUDA toolkit: each says so clearly.
#include "core/cuda_runtime.h"
#include "core/without_cuda.h"
#include "kirzl/core/cuda.hpp"
#include "kirzl/core/device.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl {

int cuda::device_count() noexcept { return 0; }

namespace {
[[noreturn]] void unavailable(const char* what) {
  KIRZL_FAIL(ErrorCode::Unsupported, what, ": ", detail::kBuiltWithoutCuda);
}
}  // namespace

namespace cuda_rt {
void require_device(int, const char* what) { unavailable(what); }
void require_any_device(const char* what) { unavailable(what); }
void* malloc(size_t, int) { unavailable("cuda malloc"); }
void free(void*, int) noexcept {}
bool record_stream(void*, int, void*, int) { return false; }
void* malloc_pinned(size_t, const char* what) { unavailable(what); }
void free_pinned(void*) noexcept {}
bool record_pinned_use(void*, int, void*) { return false; }
void forget_stream(void*, int) noexcept {}
bool is_pinned_pointer(const void*) noexcept { return false; }
void memcpy(void*, const void*, size_t, CopyKind, int) { unavailable("cuda memcpy"); }
void memcpy_async(void*, const void*, size_t, CopyKind, int) { unavailable("cuda memcpy_async"); }
void memcpy_peer(void*, int, const void*, int, size_t, bool) { unavailable("cuda memcpy_peer"); }
void* current_stream_handle(int) { unavailable("cuda current stream"); }
void sync_current_stream_unchecked(int) { unavailable("cuda stream synchronize"); }
IndexErrorSlot index_error_slot(int) { unavailable("cuda index check"); }
void throw_if_index_error(int) {}
void fill(void*, DType, size_t, double, int) { unavailable("cuda fill"); }
void cast(void*, DType, const void*, DType, size_t, int) { unavailable("cuda cast"); }
}  // namespace cuda_rt

namespace cuda {
void set_device(int) { unavailable("cuda::set_device"); }
int current_device() { unavailable("cuda::current_device"); }
void synchronize(int) { unavailable("cuda::synchronize"); }
DeviceProperties device_properties(int) { unavailable("cuda::device_properties"); }
MemoryStats memory_stats(int) { unavailable("cuda::memory_stats"); }
void reset_peak_memory_stats(int) { unavailable("cuda::reset_peak_memory_stats"); }
void empty_cache() { unavailable("cuda::empty_cache"); }
MemoryStats host_memory_stats() { unavailable("cuda::host_memory_stats"); }
void empty_host_cache() { unavailable("cuda::empty_host_cache"); }
MemInfo mem_get_info(int) { unavailable("cuda::mem_get_info"); }
}  // namespace cuda

}  // namespace kirzl
