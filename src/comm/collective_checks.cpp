// The argument checks shared by every backend. See collective_checks.h.
#include "comm/collective_checks.h"

#include "core/cuda_runtime.h"

namespace kirzl::comm::detail {

void check_tensor(const char* op, const Tensor& t, const char* name) {
  KIRZL_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
  KIRZL_CHECK(t.numel() == 0 || t.is_contiguous(), op, ": ", name, " must be contiguous, got ", t.describe(), " with strides ",
              t.strides().str(), " (call .contiguous() and copy the result back)");
  if (t.device().is_cuda())
    cuda_rt::check_not_capturing(t.device().index(), op,
                                 "a collective is completed and checked by the host (Work::wait), outside the graph");
}

void check_same_dtype(const char* op, const Tensor& out, const Tensor& in) {
  KIRZL_CHECK(out.dtype() == in.dtype(), op, ": out ", out.describe(), " and in ", in.describe(),
              " must have the same dtype");
}

void check_root(const char* op, int root, int size, const Tensor& t) {
  KIRZL_CHECK(root >= 0 && root < size, op, ": root ", root, " is not a rank of this communicator (size ", size, ") for ",
              t.describe());
}

void check_all_gather_sizes(const Tensor& out, const Tensor& in, int size) {
  const int64_t want = static_cast<int64_t>(size) * in.numel();
  KIRZL_CHECK(out.numel() == want, "all_gather: out ", out.describe(), " must have size() * in.numel() = ", size, " * ",
              in.numel(), " = ", want, " elements; in is ", in.describe());
}

void check_reduce_scatter_sizes(const Tensor& out, const Tensor& in, int size) {
  const int64_t want = static_cast<int64_t>(size) * out.numel();
  KIRZL_CHECK(in.numel() == want, "reduce_scatter: in ", in.describe(), " must have size() * out.numel() = ", size, " * ",
              out.numel(), " = ", want, " elements; out is ", out.describe());
}

void check_cpu_device(const char* op, const Tensor& t, const std::string& backend) {
  KIRZL_CHECK_CODE(t.device().is_cpu(), ErrorCode::Unsupported, op, ": the ", backend, " backend needs CPU tensors, got ",
                   t.describe(), " (copy it with .to(Device::cpu()))");
}

void check_cuda_device(const char* op, const Tensor& t, const char* name, int device, int rank) {
  KIRZL_CHECK_CODE(t.device().is_cuda(), ErrorCode::Unsupported, op, ": the nccl backend needs CUDA tensors on cuda:",
                   device, ", got ", name, " ", t.describe(), " (move it with .to(Device::cuda(", device,
                   ")), or use the world from comm::init(), which sends CPU tensors through the host backend)");
  KIRZL_CHECK(t.device().index() == device, op, ": this nccl communicator (rank ", rank, ") runs on cuda:", device,
              ", but ", name, " ", t.describe(), " is on another device");
}

}  // namespace kirzl::comm::detail
