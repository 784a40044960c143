// Internal (CPU): the loop helpers of the optimizer, clipping and loss-scaling kernels
// (kernels/cpu/optim_update.cpp) and of clip_grad_value.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"

namespace kirzl::kernels::cpu {

/// Element type of optimizer state for parameters of type T: double for f64, float otherwise
/// (bf16/f16 parameters are updated in f32).
template <typename T>
using state_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

/// Elements per task when an update loop is split across threads.
inline constexpr int64_t kUpdateGrain = 1 << 15;

/// Runs fn(begin, end) over [0, n), split across OpenMP threads when n is large.
template <typename Fn>
void parallel_elements(int64_t n, Fn&& fn) {
  parallel_for(n, kUpdateGrain, fn);
}

/// Sum over [0, n) of the partial results fn(begin, end) (of type R, value-initialised to zero,
/// with operator+). The range is cut into fixed chunks whose partials are added in order, so the
/// result does not depend on the number of threads.
template <typename R, typename Fn>
R deterministic_sum(int64_t n, Fn&& fn) {
  if (n <= kUpdateGrain) return n > 0 ? fn(int64_t{0}, n) : R{};
  int64_t chunks = (n + kUpdateGrain - 1) / kUpdateGrain;
  std::vector<R> partial(static_cast<size_t>(chunks), R{});
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      int64_t b = c * kUpdateGrain, e = b + kUpdateGrain < n ? b + kUpdateGrain : n;
      partial[c] = fn(b, e);
    }
  });
  R total{};
  for (const R& p : partial) total = total + p;
  return total;
}

}  // namespace kirzl::kernels::cpu
