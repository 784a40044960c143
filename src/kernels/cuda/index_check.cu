// CUDA index range check, eager or deferred (Note [device index check], Note [deferred index
// check]).
#include "core/cuda_runtime.h"
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

// The deferred check's last step, one thread: publishes the lowest bad position found by
// check_kernel, if any, into the device's record (first error wins: the claim is a device-memory
// compare-and-swap; the fence makes the fields visible to the host before `ready`).
template <typename I>
__global__ void publish_kernel(const unsigned long long* out, const I* idx, index_error::IndexErrorRecord e,
                               index_error::IndexErrorRecord* record, int* claim) {
  if (out[1] == static_cast<unsigned long long>(INT64_MAX)) return;
  e.position = static_cast<int64_t>(out[1]);
  e.value = static_cast<int64_t>(idx[out[1]]);
  index_error::publish_index_error(
      record, e, [claim] { return atomicCAS(claim, 0, 1) == 0; }, [] { __threadfence_system(); });
}

// Launches init and check on `stream`; out as in check_init_kernel.
template <typename I>
void launch_check(unsigned long long* op, const I* p, int64_t n, int64_t limit, bool has_ignore, int64_t ignore,
                  cudaStream_t stream) {
  check_init_kernel<<<1, 1, 0, stream>>>(op);
  KIRZL_CUDA_LAUNCH_CHECK();
  check_kernel<I><<<grid_for(n, 256, 1024), 256, 0, stream>>>(op, p, n, limit, has_ignore, ignore);
  KIRZL_CUDA_LAUNCH_CHECK();
}

}  // namespace

Tensor check_indices_deferred(const Tensor& indices, const IndexCheckSpec& spec, const index_error::IndexErrorRecord& e) {
  cudaStream_t stream = prepare(indices);
  const int64_t n = indices.numel();
  const TensorOptions i64{.dtype = DType::i64, .device = indices.device()};
  Tensor out = n > 0 ? empty({3}, i64) : zeros({3}, i64);  // the kernels initialise it
  if (n > 0) {
    const cuda_rt::IndexErrorSlot slot = cuda_rt::index_error_slot(indices.device().index());
    auto* op = static_cast<unsigned long long*>(out.data_ptr());
    auto run = [&]<typename I>() {
      const I* p = static_cast<const I*>(indices.data_ptr());
      launch_check<I>(op, p, n, spec.limit, spec.has_ignore, spec.ignore, stream);
      publish_kernel<I><<<1, 1, 0, stream>>>(op, p, e, slot.record, slot.claim);
      KIRZL_CUDA_LAUNCH_CHECK();
    };
    if (indices.dtype() == DType::i32) run.template operator()<int32_t>();
    else if (indices.dtype() == DType::i64) run.template operator()<int64_t>();
    else KIRZL_FAIL(ErrorCode::InvalidArgument, "check_indices: indices must be i32 or i64 on CUDA, got ", indices.describe());
  }
  // out[0] holds the valid count (a u64 that fits an i64).
  return out.slice(0, 0, 1).reshape({});
}

IndexCheck check_indices(const Tensor& indices, int64_t limit, bool has_ignore, int64_t ignore) {
  IndexCheck r;
  const int64_t n = indices.numel();
  if (n == 0) return r;
  cudaStream_t stream = prepare(indices);
  Tensor out = empty({3}, TensorOptions{.dtype = DType::i64, .device = indices.device()});
  auto* op = static_cast<unsigned long long*>(out.data_ptr());
  auto run = [&]<typename I>() {
    const I* p = static_cast<const I*>(indices.data_ptr());
    launch_check<I>(op, p, n, limit, has_ignore, ignore, stream);
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

void register_index_check_kernels() {
  KIRZL_REGISTER_KERNEL(check_indices, DeviceType::CUDA, &check_indices);
  KIRZL_REGISTER_KERNEL(check_indices_deferred, DeviceType::CUDA, &check_indices_deferred);
}

}  // namespace kirzl::kernels::cuda
