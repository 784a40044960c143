// CPU index range check: one pass, stopping at the first bad entry.
#include "kernels/dispatch.h"
#include "kernels/index_check.h"

namespace kirzl::kernels::cpu {

IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore) {
  IndexCheck r;
  dispatch_integral(indices.dtype(), "check_indices", [&]<typename I>() {
    const I* p = indices.data<I>();
    for (int64_t i = 0; i < indices.numel(); ++i) {
      const int64_t v = static_cast<int64_t>(p[i]);
      if (has_ignore && v == ignore) continue;
      if (v < 0 || v >= limit) {
        r.first_bad = i;
        r.bad_value = v;
        return;
      }
      ++r.valid;
    }
  });
  return r;
}

void register_index_check_kernels() {
  KIRZL_REGISTER_KERNEL(check_indices, DeviceType::CPU, &check_indices);
}

}  // namespace kirzl::kernels::cpu
