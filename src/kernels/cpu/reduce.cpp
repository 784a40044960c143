#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

namespace kirzl::kernels::cpu {

void sum(Tensor& out, const Tensor& x, const std::vector<bool>& reduce) {
  // View x with kept dims first and reduced dims last; each output element then sums one
  // (strided) block, which for_each_row walks without copying x.
  Shape kept_shape, kept_strides, red_shape, red_strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduce[d]) {
      red_shape.push_back(x.size(d));
      red_strides.push_back(x.stride(d));
    } else {
      kept_shape.push_back(x.size(d));
      kept_strides.push_back(x.stride(d));
    }
  }
  const int64_t n_out = kept_shape.numel();
  dispatch_all(x.dtype(), "sum", [&]<typename T>() {
    using Out = T;
    using Acc = std::conditional_t<std::is_floating_point_v<acc_t<T>>, double, int64_t>;
    const T* base = static_cast<const T*>(x.data_ptr());
    Out* o = static_cast<Out*>(out.data_ptr());
    parallel_for(n_out, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(red_shape.numel(), 1)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        int64_t off = 0, r = i;
        for (int64_t d = kept_shape.size() - 1; d >= 0; --d) {
          off += (r % kept_shape[d]) * kept_strides[d];
          r /= kept_shape[d];
        }
        Acc acc = 0;
        std::array<char*, 1> p{reinterpret_cast<char*>(const_cast<T*>(base + off))};
        std::array<Shape, 1> st{red_strides};
        std::array<int64_t, 1> sz{int64_t(sizeof(T))};
        if (red_shape.numel() > 0) {
          // Serial inner walk: the outer loop is already parallel.
          for_each_row<1>(red_shape, p, st, sz, [&](const std::array<char*, 1>& q, const std::array<int64_t, 1>& s, int64_t n) {
            for (int64_t k = 0; k < n; ++k) acc += static_cast<Acc>(static_cast<acc_t<T>>(*reinterpret_cast<const T*>(q[0] + k * s[0])));
          }, /*parallel=*/false);
        }
        if constexpr (std::is_integral_v<Out>) o[i] = static_cast<Out>(acc);
        else o[i] = from_double<Out>(static_cast<double>(acc));
      }
    });
  });
}

}  // namespace kirzl::kernels::cpu
