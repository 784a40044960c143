#include "kirzl/core/device.hpp"

#include <cstdlib>

#include "kirzl/core/error.hpp"

namespace kirzl {

Device::Device(const std::string& spec) {
  if (spec == "cpu") {
    *this = cpu();
    return;
  }
  if (spec == "cuda") {
    *this = cuda(0);
    return;
  }
  if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5) {
    char* end = nullptr;
    long idx = std::strtol(spec.c_str() + 5, &end, 10);
    if (*end == '\0' && idx >= 0 && idx < 1024) {
      *this = cuda(static_cast<int>(idx));
      return;
    }
  }
  KIRZL_FAIL(ErrorCode::InvalidArgument, "Device: cannot parse '", spec, "' (expected \"cpu\", \"cuda\" or \"cuda:N\")");
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index_); }

}  // namespace kirzl
