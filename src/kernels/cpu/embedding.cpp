// CPU embedding: gather rows; the backward adds rows back in index order. It is parallel over
// blocks of columns, never over indices, so repeated indices are summed in one fixed order.
#include <algorithm>
#include <type_traits>
#include <vector>
#include <cstring>

#include "kernels/cpu/loops.h"
#include "kernels/dispatch.h"
#include "kernels/embedding.h"

namespace kirzl::kernels::cpu {

void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices) {
  const int64_t dim = weight.size(1), n = indices.numel();
  const size_t row_bytes = static_cast<size_t>(dim) * weight.element_size();
  const char* w = static_cast<const char*>(weight.data_ptr());
  char* o = static_cast<char*>(out.data_ptr());
  dispatch_integral(indices.dtype(), "embedding", [&]<typename I>() {
    const I* idx = indices.data<I>();
    parallel_rows(n, dim, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        std::memcpy(o + i * row_bytes, w + static_cast<int64_t>(idx[i]) * row_bytes, row_bytes);
    });
  });
}

void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices) {
  const int64_t dim = gw.size(1), n = indices.numel();
  dispatch_floating(gw.dtype(), "embedding_backward", [&]<typename T>() {
    using A = acc_t<T>;
    dispatch_integral(indices.dtype(), "embedding_backward", [&]<typename I>() {
      const I* idx = indices.data<I>();
      const T* gp = g.data<T>();
      T* out = gw.data<T>();
      // 16-bit gradients are summed in the accumulation type and rounded once, as the CUDA kernel
      // does: rounding after every addition drifted by several bf16 ulps on rows hit often.
      std::vector<A> wide;
      A* acc = nullptr;
      if constexpr (!std::is_same_v<T, A>) {
        wide.assign(out, out + gw.numel());
        acc = wide.data();
      }
      constexpr int64_t kBlock = 256;
      const int64_t blocks = (dim + kBlock - 1) / kBlock;
      parallel_rows(blocks, n * kBlock, [&](int64_t begin, int64_t end) {
        for (int64_t blk = begin; blk < end; ++blk) {
          const int64_t j0 = blk * kBlock, j1 = std::min(dim, j0 + kBlock);
          for (int64_t i = 0; i < n; ++i) {
            const int64_t row = static_cast<int64_t>(idx[i]) * dim;
            const T* src = gp + i * dim;
            if constexpr (std::is_same_v<T, A>) {
              for (int64_t j = j0; j < j1; ++j) out[row + j] += src[j];
            } else {
              for (int64_t j = j0; j < j1; ++j) acc[row + j] += static_cast<A>(src[j]);
            }
          }
        }
      });
      if constexpr (!std::is_same_v<T, A>)
        for (int64_t k = 0; k < gw.numel(); ++k) out[k] = static_cast<T>(acc[k]);
    });
  });
}

void register_embedding_kernels() {
  KIRZL_REGISTER_KERNEL(embedding_forward, DeviceType::CPU, &embedding_forward);
  KIRZL_REGISTER_KERNEL(embedding_backward, DeviceType::CPU, &embedding_backward);
}

}  // namespace kirzl::kernels::cpu
