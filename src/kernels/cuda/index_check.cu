// CUDA index range check (Note [device index check]).
#include "kernels/cuda/common.cuh"
#include "kernels/index_check.h"

namespace kirzl::kernels::cuda {

namespace {

// out[0]: valid count, out[1]: first bad position (INT64_MAX: none), out[2]: its value.
__global__ void check_init_kernel(unsigned long long* out) {
  out[0] = 0;
  out[1] = static_cast<unsigned long long>(INT64_MAX);
  out[2] = 0;
}

template <typename I>
__global__ void check_kernel(unsigned long long* out, const I* idx, int64_t n, int64_t limit, bool has_ignore,
                             int64_t ignore) {
  unsigned long long valid = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = static_cast<int64_t>(idx[i]);
    if (has_ignore && v == ignore) continue;
    if (v < 0 || v >= limit) atomicMin(&out[1], static_cast<unsigned long long>(i));
    else ++valid;
  }
  // Integer sums and minima do not depend on the order in which threads arrive.
  for (int o = 16; o > 0; o >>= 1) valid += __shfl_xor_sync(0xffffffffu, valid, o);
  if ((threadIdx.x & 31) == 0 && valid) atomicAdd(&out[0], valid);
}

template <typename I>
__global__ void check_value_kernel(unsigned long long* out, const I* idx) {
  if (out[1] != static_cast<unsigned long long>(INT64_MAX))
    out[2] = static_cast<unsigned long long>(static_cast<int64_t>(idx[out[1]]));
}

}  // namespace

IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore) {
  IndexCheck r;
  const int64_t n = indices.numel();
  if (n == 0) return r;
  cudaStream_t stream = prepare(indices);
  Tensor out = empty({3}, TensorOptions{.dtype = DType::i64, .device = indices.device()});
  auto* op = static_cast<unsigned long long*>(out.data_ptr());
  auto run = [&]<typename I>() {
    const I* p = static_cast<const I*>(indices.data_ptr());
    check_init_kernel<<<1, 1, 0, stream>>>(op);
    KIRZL_CUDA_LAUNCH_CHECK();
    check_kernel<I><<<grid_for(n, 256, 1024), 256, 0, stream>>>(op, p, n, limit, has_ignore, ignore);
    KIRZL_CUDA_LAUNCH_CHECK();
    check_value_kernel<I><<<1, 1, 0, stream>>>(op, p);
    KIRZL_CUDA_LAUNCH_CHECK();
  };
  if (indices.dtype() == DType::i32) run.template operator()<int32_t>();
  else if (indices.dtype() == DType::i64) run.template operator()<int64_t>();
  else KIRZL_FAIL(ErrorCode::InvalidArgument, "check_indices: indices must be i32 or i64 on CUDA, got ", indices.describe());
  int64_t host[3];
  KIRZL_CUDA_CHECK(cudaMemcpyAsync(host, op, sizeof host, cudaMemcpyDeviceToHost, stream));
  KIRZL_CUDA_CHECK(cudaStreamSynchronize(stream));
  r.valid = host[0];
  if (host[1] != INT64_MAX) {
    r.first_bad = host[1];
    r.bad_value = host[2];
  }
  return r;
}

}  // namespace kirzl::kernels::cuda
