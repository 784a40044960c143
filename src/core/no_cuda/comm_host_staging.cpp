// Without CUDA no CUDA tensor exists, so the MPI backend never stages; these only say so.
#include "comm/host_staging.h"
#include "kirzl/core/error.hpp"

namespace kirzl::comm::detail {

HostStaging::~HostStaging() = default;
void* HostStaging::reserve(size_t) { KIRZL_FAIL(ErrorCode::Unsupported, "pinned staging: kirzl was built without CUDA"); }
void HostStaging::to_host(void*, const Tensor&) {
  KIRZL_FAIL(ErrorCode::Unsupported, "pinned staging: kirzl was built without CUDA");
}
void HostStaging::to_device(Tensor&, const void*) {
  KIRZL_FAIL(ErrorCode::Unsupported, "pinned staging: kirzl was built without CUDA");
}
void HostStaging::sync_current_stream(int) {
  KIRZL_FAIL(ErrorCode::Unsupported, "pinned staging: kirzl was built without CUDA");
}
void HostStaging::abandon() {}

}  // namespace kirzl::comm::detail
