// CUDA embedding: row gather forward, deterministic scatter-add backward.
//
// Note [embedding backward order]: the CPU adds g's rows into gw in index order. Here the
// positions are sorted by index with a stable radix sort (cub), so that equal indices keep their
// positions in increasing order; then one block per weight row finds its run of positions by
// binary search and each thread adds its columns over that run in order. No float atomics: the
// result is the same bit for bit on every run, and f32 matches the CPU's order of additions.
//
// Indices outside [0, num) never reach memory: the forward writes a NaN row (zero for integer
// tables), the backward sorts them past every row so that no row picks them up. The op's check
// reports them at the next synchronising point, after these kernels may have run on them (Note
// [device index check]).
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <cstring>
#include <limits>

#include "kernels/cuda/common.cuh"
#include "kernels/dispatch.h"
#include "kernels/embedding.h"

namespace kirzl::kernels::cuda {

namespace {

// Copies rows of `row_units` units of type U (the widest of 16/8/4/2/1 bytes that divides the row
// and the alignment of both pointers).
template <typename U, typename I>
__global__ void gather_rows_kernel(U* __restrict__ out, const U* __restrict__ w, const I* __restrict__ idx, int64_t n,
                                   int64_t num, int64_t row_units, U bad) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t r = static_cast<int64_t>(idx[i]);
    const bool ok = r >= 0 && r < num;
    U* dst = out + i * row_units;
    const U* src = w + (ok ? r : 0) * row_units;
    for (int64_t k = threadIdx.x; k < row_units; k += blockDim.x) dst[k] = ok ? src[k] : bad;
  }
}

template <typename I>
__global__ void make_keys_kernel(uint32_t* __restrict__ keys, int32_t* __restrict__ pos, const I* __restrict__ idx,
                                 int64_t n, int64_t num) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = static_cast<int64_t>(idx[i]);
    keys[i] = (r >= 0 && r < num) ? static_cast<uint32_t>(r) : static_cast<uint32_t>(num);  // bad: sorted last
    pos[i] = static_cast<int32_t>(i);
  }
}

__device__ __forceinline__ int64_t lower_bound(const uint32_t* keys, int64_t n, uint32_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// blockIdx.x: weight row (grid-stride); blockIdx.y: a chunk of blockDim.x columns.
template <typename T>
__global__ void sum_rows_kernel(T* __restrict__ gw, const T* __restrict__ g, const uint32_t* __restrict__ keys,
                                const int32_t* __restrict__ pos, int64_t n, int64_t num, int64_t dim) {
  using A = dacc_t<T>;
  const int64_t j = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t r = blockIdx.x; r < num; r += gridDim.x) {
    const int64_t lo = lower_bound(keys, n, static_cast<uint32_t>(r));
    const int64_t hi = lower_bound(keys, n, static_cast<uint32_t>(r + 1));
    if (lo == hi || j >= dim) continue;
    A acc = load_acc(gw[r * dim + j]);
    for (int64_t p = lo; p < hi; ++p) acc += load_acc(g[static_cast<int64_t>(pos[p]) * dim + j]);
    gw[r * dim + j] = store_as<T>(acc);
  }
}

template <typename F>
void dispatch_index(DType t, const char* op, F&& f) {
  if (t == DType::i32) return f.template operator()<int32_t>();
  if (t == DType::i64) return f.template operator()<int64_t>();
  KIRZL_FAIL(ErrorCode::InvalidArgument, op, ": indices must be i32 or i64 on CUDA, got ", dtype_name(t));
}

}  // namespace

void embedding_forward(Tensor& out, const Tensor& weight, const Tensor& indices) {
  const int64_t n = indices.numel(), num = weight.size(0);
  if (n == 0 || weight.size(1) == 0) return;
  cudaStream_t stream = prepare(weight);
  const int64_t row_bytes = weight.size(1) * static_cast<int64_t>(weight.element_size());
  const uintptr_t align = reinterpret_cast<uintptr_t>(weight.data_ptr()) | reinterpret_cast<uintptr_t>(out.data_ptr());
  int64_t unit = 16;
  while (unit > 1 && (row_bytes % unit != 0 || align % unit != 0)) unit /= 2;
  const int64_t units = row_bytes / unit;
  const unsigned threads = static_cast<unsigned>(std::clamp<int64_t>((units + 31) / 32 * 32, 32, 256));
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(n, int64_t{1} << 30));
  // A bad index's row: NaN for floating tables (in the table's own dtype, repeated across the
  // unit), zero otherwise.
  const bool floating = is_floating(weight.dtype());
  dispatch_index(indices.dtype(), "embedding", [&]<typename I>() {
    const I* idx = static_cast<const I*>(indices.data_ptr());
    auto launch = [&]<typename U>() {
      U bad{};
      if (floating) {
        unsigned char bytes[sizeof(U)];
        Tensor nan_elem = full({1}, std::numeric_limits<double>::quiet_NaN(), TensorOptions{.dtype = weight.dtype()});
        const size_t es = weight.element_size();
        for (size_t b = 0; b < sizeof(U); ++b) bytes[b] = static_cast<const unsigned char*>(nan_elem.data_ptr())[b % es];
        std::memcpy(&bad, bytes, sizeof(U));
      }
      gather_rows_kernel<U, I><<<blocks, threads, 0, stream>>>(static_cast<U*>(out.data_ptr()),
                                                               static_cast<const U*>(weight.data_ptr()), idx, n, num,
                                                               units, bad);
      KIRZL_CUDA_LAUNCH_CHECK();
    };
    switch (unit) {
      case 16: launch.template operator()<int4>(); break;
      case 8: launch.template operator()<int2>(); break;
      case 4: launch.template operator()<int32_t>(); break;
      case 2: launch.template operator()<int16_t>(); break;
      default: launch.template operator()<int8_t>(); break;
    }
  });
}

void embedding_backward(Tensor& gw, const Tensor& g, const Tensor& indices) {
  const int64_t n = indices.numel(), num = gw.size(0), dim = gw.size(1);
  if (n == 0 || dim == 0) return;
  KIRZL_CHECK(n <= INT32_MAX && num < UINT32_MAX, "embedding backward on CUDA: at most 2^31 - 1 indices and 2^32 - 2 rows, got ",
              indices.describe(), " and ", gw.describe());
  cudaStream_t stream = prepare(gw);
  const TensorOptions on_dev{.dtype = DType::i32, .device = gw.device()};
  Tensor keys_in = empty({n}, on_dev), keys_out = empty({n}, on_dev);
  Tensor pos_in = empty({n}, on_dev), pos_out = empty({n}, on_dev);
  auto* kin = static_cast<uint32_t*>(keys_in.data_ptr());
  auto* kout = static_cast<uint32_t*>(keys_out.data_ptr());
  auto* pin = static_cast<int32_t*>(pos_in.data_ptr());
  auto* pout = static_cast<int32_t*>(pos_out.data_ptr());
  dispatch_index(indices.dtype(), "embedding backward", [&]<typename I>() {
    make_keys_kernel<I><<<grid_for(n, 256), 256, 0, stream>>>(kin, pin, static_cast<const I*>(indices.data_ptr()), n, num);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
  // Only the bits that can differ: keys are at most num (the bad-index key).
  int end_bit = 1;
  while (end_bit < 32 && (uint64_t{1} << end_bit) <= static_cast<uint64_t>(num)) ++end_bit;
  size_t temp_bytes = 0;
  KIRZL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, kin, kout, pin, pout, static_cast<int>(n), 0,
                                                   end_bit, stream));
  Tensor temp = empty({static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))},
                      TensorOptions{.dtype = DType::u8, .device = gw.device()});
  KIRZL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data_ptr(), temp_bytes, kin, kout, pin, pout,
                                                   static_cast<int>(n), 0, end_bit, stream));
  dispatch_floating(gw.dtype(), "embedding backward", [&]<typename T0>() {
    using T = device_t<T0>;
    const unsigned threads = static_cast<unsigned>(std::clamp<int64_t>((dim + 31) / 32 * 32, 32, 256));
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(num, int64_t{1} << 30)),
                    static_cast<unsigned>((dim + threads - 1) / threads));
    sum_rows_kernel<T><<<grid, threads, 0, stream>>>(dptr<T0>(gw), dptr<T0>(g), kout, pout, n, num, dim);
    KIRZL_CUDA_LAUNCH_CHECK();
  });
}

void register_embedding_kernels() {
  KIRZL_REGISTER_KERNEL(embedding_forward, DeviceType::CUDA, &embedding_forward);
  KIRZL_REGISTER_KERNEL(embedding_backward, DeviceType::CUDA, &embedding_backward);
}

}  // namespace kirzl::kernels::cuda
