// The dispatch table's one-time fill and its errors. See Note [kernel registration] in
// kernels/dispatch_table.h.
#include "kernels/dispatch_table.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/without_cuda.h"
#include "kirzl/config.hpp"

namespace kirzl::kernels {

namespace cpu {
void register_kernels();
}
#if KIRZL_HAS_CUDA
namespace cuda {
void register_kernels();
}
#endif

void ensure_kernels_registered() {
  static const bool registered = [] {
    cpu::register_kernels();
#if KIRZL_HAS_CUDA
    cuda::register_kernels();
#endif
    return true;
  }();
  (void)registered;
}

namespace dispatch_detail {

namespace {
const char* device_name(DeviceType device) { return device == DeviceType::CPU ? "CPU" : "CUDA"; }

struct RegisteredNames {
  std::mutex mu;
  std::vector<const char*> names;
};
RegisteredNames& registered_names() {
  static RegisteredNames r;
  return r;
}
}  // namespace

void note_registered(const char* kernel) {
  RegisteredNames& r = registered_names();
  std::lock_guard<std::mutex> lock(r.mu);
  if (std::none_of(r.names.begin(), r.names.end(), [&](const char* n) { return std::strcmp(n, kernel) == 0; }))
    r.names.push_back(kernel);
}

void throw_no_kernel(const char* kernel, DeviceType device, const char* requirement) {
  const char* why = "no kernel is registered for this device type";
  if (device == DeviceType::CUDA && !KIRZL_HAS_CUDA) why = kirzl::detail::kBuiltWithoutCuda;
  else if (device == DeviceType::CUDA && requirement != nullptr) why = requirement;
  KIRZL_FAIL(ErrorCode::Unsupported, kernel, ": no ", device_name(device), " kernel: ", why);
}

void throw_double_registration(const char* kernel, DeviceType device) {
  KIRZL_FAIL(ErrorCode::Internal, kernel, ": a ", device_name(device),
             " kernel is registered already (each backend registers a kernel once)");
}

void throw_no_tensor_argument(const char* kernel) {
  KIRZL_FAIL(ErrorCode::Internal, kernel, ": called without a defined tensor argument to pick the device from");
}

}  // namespace dispatch_detail

std::vector<const char*> registered_kernel_names() {
  ensure_kernels_registered();
  dispatch_detail::RegisteredNames& r = dispatch_detail::registered_names();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.names;
}

}  // namespace kirzl::kernels
