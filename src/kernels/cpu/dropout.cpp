// CPU dropout: see Note [dropout mask].
#include <algorithm>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/dropout.h"
#include "kirzl/core/generator.hpp"

namespace kirzl::kernels::cpu {

void dropout_apply(Tensor& out, const Tensor& in, double p, double scale, uint64_t seed, uint64_t offset) {
  const int64_t n = in.numel();
  const int64_t blocks = (n + 3) / 4;
  const float pf = static_cast<float>(p);
  dispatch_floating(in.dtype(), "dropout", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = in.data<T>();
    T* o = out.data<T>();
    const A s = static_cast<A>(scale);
    parallel_for(blocks, kParallelGrain / 4, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const auto r = Generator::philox(seed, offset + static_cast<uint64_t>(b));
        const int64_t end = std::min<int64_t>(n, 4 * b + 4);
        for (int64_t i = 4 * b; i < end; ++i) {
          const bool keep = !(uint_to_unit_float(r[i - 4 * b]) < pf);
          o[i] = keep ? static_cast<T>(static_cast<A>(x[i]) * s) : T(0);
        }
      }
    });
  });
}

void register_dropout_kernels() {
  KIRZL_REGISTER_KERNEL(dropout_apply, DeviceType::CPU, &dropout_apply);
}

}  // namespace kirzl::kernels::cpu
