// The collective argument checks shared by the queued (in-process, MPI) and NCCL communicators:
// each check accepts good arguments and rejects bad ones with an Error naming the op, the
// argument, its shape and dtype, and what was expected; and a communicator reports exactly the
// message of the shared check.
#include <gtest/gtest.h>

#include <string>

#include <kirzl/comm.hpp>

#include "comm/collective_checks.h"
#include "support/expect_error.hpp"

using namespace kirzl;
using namespace kirzl::comm::detail;

namespace {

// The message of the Error that `f` throws ("" if none).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

}  // namespace

TEST(CollectiveChecks, TensorMustBeDefinedAndContiguous) {
  EXPECT_NO_THROW(check_tensor("all_reduce", zeros({2, 3}), "tensor"));
  EXPECT_NO_THROW(check_tensor("all_reduce", zeros({0, 3}).t(), "tensor"));  // empty: any strides
  EXPECT_KIRZL_ERROR(check_tensor("all_reduce", Tensor(), "tensor"), ErrorCode::InvalidArgument, "all_reduce: tensor",
                     "undefined");
  EXPECT_KIRZL_ERROR(check_tensor("all_gather", zeros({2, 3}).t(), "in"), ErrorCode::InvalidArgument, "all_gather: in",
                     "contiguous", "f32[3, 2]", "strides", ".contiguous()");
}

TEST(CollectiveChecks, SameDtype) {
  EXPECT_NO_THROW(check_same_dtype("all_gather", zeros({6}), zeros({3})));
  EXPECT_KIRZL_ERROR(check_same_dtype("reduce_scatter", zeros({3}, {.dtype = DType::f64}), zeros({6})),
                     ErrorCode::InvalidArgument, "reduce_scatter: out f64[3]", "in f32[6]", "same dtype");
}

TEST(CollectiveChecks, RootIsARank) {
  EXPECT_NO_THROW(check_root("broadcast", 0, 1, zeros({4})));
  EXPECT_NO_THROW(check_root("broadcast", 3, 4, zeros({4})));
  EXPECT_KIRZL_ERROR(check_root("broadcast", 4, 4, zeros({4})), ErrorCode::InvalidArgument, "broadcast: root 4",
                     "size 4", "f32[4]");
  EXPECT_KIRZL_ERROR(check_root("broadcast", -1, 4, zeros({4})), ErrorCode::InvalidArgument, "root -1");
}

TEST(CollectiveChecks, AllGatherSizes) {
  EXPECT_NO_THROW(check_all_gather_sizes(zeros({6}), zeros({3}), 2));
  EXPECT_NO_THROW(check_all_gather_sizes(zeros({0}), zeros({0}), 3));
  EXPECT_NO_THROW(check_all_gather_sizes(zeros({2, 3}), zeros({3}), 2));  // element counts, not shapes
  EXPECT_KIRZL_ERROR(check_all_gather_sizes(zeros({5}), zeros({3}), 2), ErrorCode::InvalidArgument, "all_gather: out f32[5]",
                     "size() * in.numel() = 2 * 3 = 6", "in is f32[3]");
}

TEST(CollectiveChecks, ReduceScatterSizes) {
  EXPECT_NO_THROW(check_reduce_scatter_sizes(zeros({3}), zeros({9}), 3));
  EXPECT_KIRZL_ERROR(check_reduce_scatter_sizes(zeros({3}), zeros({5}), 2), ErrorCode::InvalidArgument,
                     "reduce_scatter: in f32[5]", "size() * out.numel() = 2 * 3 = 6", "out is f32[3]");
}

TEST(CollectiveChecks, CpuDevice) {
  EXPECT_NO_THROW(check_cpu_device("all_reduce", zeros({2}), "mpi"));
}

TEST(CollectiveChecks, CudaDeviceRejectsCpuTensors) {
  // A CPU tensor handed to the NCCL backend (the wrong-GPU case needs a GPU; the gpu tests cover it).
  EXPECT_KIRZL_ERROR(check_cuda_device("all_reduce", zeros({2}), "tensor", 1, 0), ErrorCode::Unsupported,
                     "all_reduce: the nccl backend needs CUDA tensors on cuda:1", "got tensor f32[2]",
                     "Device::cuda(1)");
}

// The queued communicators call the shared checks: their errors are the checks' messages, word
// for word (the NCCL communicator calls the same functions).
TEST(CollectiveChecks, QueuedCommunicatorReportsTheSharedMessages) {
  auto c = comm::make_in_process_group(2);
  Tensor nc = zeros({2, 3}).t(), in = zeros({3}), out = zeros({5}), t = zeros({4});
  Tensor out6 = zeros({6}, {.dtype = DType::f64});
  EXPECT_EQ(message_of([&] { c[0]->all_reduce(nc); }), message_of([&] { check_tensor("all_reduce", nc, "tensor"); }));
  EXPECT_EQ(message_of([&] { c[0]->broadcast(t, {.root = 2}); }), message_of([&] { check_root("broadcast", 2, 2, t); }));
  EXPECT_EQ(message_of([&] { c[0]->all_gather(out, in); }), message_of([&] { check_all_gather_sizes(out, in, 2); }));
  EXPECT_EQ(message_of([&] { c[0]->reduce_scatter(in, out); }),
            message_of([&] { check_reduce_scatter_sizes(in, out, 2); }));
  EXPECT_EQ(message_of([&] { c[0]->all_gather(out6, in); }),
            message_of([&] { check_same_dtype("all_gather", out6, in); }));
  for (const auto& m : {message_of([&] { c[0]->all_reduce(nc); }), message_of([&] { c[0]->all_gather(out, in); })})
    EXPECT_FALSE(m.empty());
}
