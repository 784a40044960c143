// The CUDA runtime entry points of a build without the CUDA toolkit: each says so clearly.
#include "core/cuda_runtime.h"
#include "kirzl/core/device.hpp"
#include "kirzl/core/error.hpp"

namespace kirzl {

int cuda::device_count() noexcept { return 0; }

namespace cuda_rt {
namespace {
[[noreturn]] void unavailable(const char* what) {
  KIRZL_FAIL(ErrorCode::Unsupported, what, ": kirzl was built without CUDA (configure with KIRZL_WITH_CUDA=ON/AUTO and the CUDA toolkit)");
}
}  // namespace

void require_device(int, const char* what) { unavailable(what); }
void* malloc(size_t, int) { unavailable("cuda malloc"); }
void free(void*, int) noexcept {}
void memcpy(void*, const void*, size_t, CopyKind, int) { unavailable("cuda memcpy"); }
void fill(void*, DType, size_t, double, int) { unavailable("cuda fill"); }
void cast(void*, DType, const void*, DType, size_t, int) { unavailable("cuda cast"); }
}  // namespace cuda_rt
}  // namespace kirzl
