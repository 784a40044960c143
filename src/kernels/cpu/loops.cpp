#include "kernels/cpu/loops.h"

#include <algorithm>

#include "kirzl/core/parallel.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace kirzl {

void set_num_threads(int n) {
  KIRZL_CHECK(n >= 1, "set_num_threads: expected n >= 1, got ", n);
#if defined(_OPENMP)
  omp_set_num_threads(n);
#endif
}

int get_num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

namespace kernels::cpu {

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  Shape s;
  s.resize(shape.size(), 0);
  const int64_t lead = shape.size() - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) s[lead + d] = t.size(d) == 1 ? 0 : t.stride(d);
  return s;
}

void parallel_rows_impl(int64_t rows, int64_t row_len, const std::function<void(int64_t, int64_t)>& fn) {
  int64_t grain_rows = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_len, 1));
  parallel_for_impl(rows, grain_rows, fn);
}

void parallel_for_impl(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
#if defined(_OPENMP)
  int threads = std::min<int64_t>(omp_get_max_threads(), (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (threads <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  // Exceptions must not escape an OpenMP region: keep the first and rethrow after it.
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    int64_t b = std::min<int64_t>(n, t * chunk), e = std::min<int64_t>(n, b + chunk);
    if (b < e) {
      try {
        fn(b, e);
      } catch (...) {
#pragma omp critical(kirzl_parallel_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
#else
  (void)grain;
  fn(0, n);
#endif
}

}  // namespace kernels::cpu
}  // namespace kirzl
