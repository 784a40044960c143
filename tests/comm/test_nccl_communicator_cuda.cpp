// The NCCL backend at world size 1 (label gpu): every collective on CUDA tensors of every dtype
// NCCL has, the stream semantics of Note [nccl work], argument errors, the routed world of
// comm::init() (CPU tensors to the host backend), and DDP on CUDA equal to the plain model.
#include <gtest/gtest.h>

#include <kirzl/config.hpp>
#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>

#include "comm/routed_communicator.h"
#include "support/cuda_compare.hpp"
#include "support/expect_error.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
namespace nn = kirzl::nn;

namespace {

// The NCCL communicator behind the world, or nullptr (the caller skips) when kirzl has no NCCL.
std::shared_ptr<comm::Communicator> world_nccl(comm::ProcessGroup& world) {
  world = comm::init();
  auto* routed = dynamic_cast<comm::detail::RoutedCommunicator*>(world.communicator().get());
  if (!routed) return nullptr;
  // The device backend shares ownership with the world, which lives until exit.
  return std::shared_ptr<comm::Communicator>(world.communicator(), &routed->device_backend());
}

#define KIRZL_REQUIRE_NCCL(c)                                                                                        \
  KIRZL_REQUIRE_GPU();                                                                                               \
  comm::ProcessGroup world_;                                                                                         \
  auto c = world_nccl(world_);                                                                                       \
  if (!c) {                                                                                                          \
    if (KIRZL_HAS_NCCL) FAIL() << "kirzl has NCCL and a GPU, but init() chose " << world_.backend();                \
    GTEST_SKIP() << "kirzl was built without NCCL";                                                                  \
  }

Tensor random_on_gpu(int64_t n, DType dt, uint64_t seed) {
  Generator g(seed);
  Tensor cpu = is_floating(dt) ? randn({n}, {}, &g).to(dt) : randint(0, 100, {n}, {.dtype = dt}, &g);
  return cpu.to(Device::cuda(0));
}

}  // namespace

TEST(NcclCommunicator, AllReduceEveryOpAndDtypeAtWorldSizeOneIsTheIdentity) {
  KIRZL_REQUIRE_NCCL(c);
  EXPECT_EQ(c->backend(), "nccl");
  EXPECT_EQ(c->size(), 1);
  EXPECT_TRUE(c->device().is_cuda());
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8})
    for (comm::ReduceOp op : {comm::ReduceOp::Sum, comm::ReduceOp::Avg, comm::ReduceOp::Min, comm::ReduceOp::Max,
                              comm::ReduceOp::Prod})
      for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{1000003}}) {
        Tensor t = random_on_gpu(n, dt, 11 + n);
        Tensor expected = t.to(Device::cpu());
        c->all_reduce(t, {.op = op, .tag = "identity"}).wait();
        EXPECT_TRUE(all_close(t, expected)) << dtype_name(dt) << " " << comm::to_string(op) << " n=" << n;
      }
}

TEST(NcclCommunicator, BroadcastAllGatherReduceScatterAndBarrier) {
  KIRZL_REQUIRE_NCCL(c);
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::u16}) {
    Tensor t = random_on_gpu(257, dt, 5);
    Tensor before = t.to(Device::cpu());
    c->broadcast(t, {.root = 0}).wait();
    EXPECT_TRUE(all_close(t, before)) << dtype_name(dt);
    Tensor out = empty({257}, {.dtype = dt, .device = Device::cuda(0)});
    kirzl::testing::poison(out);
    c->all_gather(out, t).wait();
    EXPECT_TRUE(all_close(out, before)) << "all_gather " << dtype_name(dt);
    if (dt == DType::u16) continue;
    Tensor rs = empty({257}, {.dtype = dt, .device = Device::cuda(0)});
    kirzl::testing::poison(rs);
    c->reduce_scatter(rs, t, {.op = comm::ReduceOp::Sum}).wait();
    EXPECT_TRUE(all_close(rs, before)) << "reduce_scatter " << dtype_name(dt);
  }
  c->barrier().synchronize();
  Tensor empty_t = empty({0}, {.device = Device::cuda(0)});
  c->all_reduce(empty_t).synchronize();
}

TEST(NcclCommunicator, WaitOrdersTheCurrentStreamAndSynchronizeBlocksTheHost) {
  KIRZL_REQUIRE_NCCL(c);
  // 256 MiB: long enough that the host would notice a missing ordering.
  Tensor t = full({int64_t{1} << 26}, 3.0, {.device = Device::cuda(0)});
  comm::Work w = c->all_reduce(t, {.op = comm::ReduceOp::Max});
  w.wait();             // device-side: does not block
  t.mul_(2.0);          // ordered after the collective on the current stream
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>()[12345], 6.0f);
  w.synchronize();
  EXPECT_TRUE(w.is_completed());
  EXPECT_TRUE(w.succeeded());
  // A collective sees what the current stream wrote just before it.
  Tensor u = zeros({1000003}, {.device = Device::cuda(0)});
  u.fill_(7.0);
  c->all_reduce(u).synchronize();
  EXPECT_EQ(max(u).item(), 7.0);
  EXPECT_EQ(min(u).item(), 7.0);
}

TEST(NcclCommunicator, BadArgumentsAreClearErrors) {
  KIRZL_REQUIRE_NCCL(c);
  Tensor cpu = ones({4});
  EXPECT_KIRZL_ERROR(c->all_reduce(cpu), ErrorCode::Unsupported, "all_reduce", "needs CUDA tensors", "cpu");
  Tensor u16 = zeros({4}, {.dtype = DType::u16, .device = Device::cuda(0)});
  EXPECT_KIRZL_ERROR(c->all_reduce(u16), ErrorCode::Unsupported, "NCCL cannot reduce u16");
  Tensor g = ones({4, 4}, {.device = Device::cuda(0)});
  Tensor strided = g.transpose(0, 1);
  EXPECT_KIRZL_ERROR(c->all_reduce(strided), ErrorCode::InvalidArgument, "contiguous");
  Tensor out = zeros({3}, {.device = Device::cuda(0)});
  EXPECT_KIRZL_ERROR(c->all_gather(out, g), ErrorCode::InvalidArgument, "all_gather", "size() * in.numel()");
  Tensor x = ones({4}, {.device = Device::cuda(0)});
  EXPECT_KIRZL_ERROR(c->broadcast(x, {.root = 1}), ErrorCode::InvalidArgument, "root 1");
  c->all_reduce(x).synchronize();  // argument errors do not poison the communicator
}

TEST(NcclCommunicator, TheWorldRoutesCpuTensorsToTheHostBackend) {
  KIRZL_REQUIRE_NCCL(c);
  auto w = world_.communicator();
  EXPECT_EQ(w->backend(), "nccl+inprocess");
  Tensor cpu = from_vector<float>({1.f, 2.f});
  w->all_reduce(cpu).wait();
  EXPECT_EQ(cpu.to_vector<float>(), (std::vector<float>{1.f, 2.f}));
  Tensor gpu = full({5}, 2.0, {.device = Device::cuda(0)});
  w->all_reduce(gpu, {.op = comm::ReduceOp::Avg}).wait();
  EXPECT_EQ(gpu.to(Device::cpu()).to_vector<float>(), std::vector<float>(5, 2.f));
  w->barrier().wait();
  auto sub = w->split(0, 0);
  ASSERT_NE(sub, nullptr);
  Tensor s = full({3}, 4.0, {.device = Device::cuda(0)});
  sub->all_reduce(s).synchronize();
  EXPECT_EQ(s.to(Device::cpu()).to_vector<float>(), std::vector<float>(3, 4.f));
}

TEST(NcclDDP, OneRankOnCudaTrainsLikeThePlainModel) {
  KIRZL_REQUIRE_NCCL(c);
  const Device dev = Device::cuda(0);
  auto make = [&] {
    manual_seed(5);
    auto m = std::make_shared<nn::Sequential>(nn::Linear(12, 32), nn::ReLU(), nn::Linear(32, 16), nn::GELU(),
                                              nn::Linear(16, 3));
    m->to(dev);
    return m;
  };
  auto plain = make();
  auto wrapped = make();
  DistributedDataParallel ddp(*wrapped, world_.communicator(), {.bucket_cap_mb = 0.001, .first_bucket_cap_mb = 0.0005});
  ASSERT_GT(ddp.buckets().size(), 1u);
  optim::SGD opt_plain(plain->parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::SGD opt_ddp(wrapped->parameters(), {.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 10; ++step) {
    Generator g(200 + step);
    Tensor x = randn({8, 12}, {}, &g).to(dev);
    Tensor y = randint(0, 3, {8}, {.dtype = DType::i64}, &g).to(dev);
    opt_plain.zero_grad();
    cross_entropy(plain->forward(x), y).backward();
    opt_plain.step();
    Tensor out = ddp(x);
    opt_ddp.zero_grad();
    cross_entropy(out, y).backward();
    opt_ddp.step();
  }
  auto a = plain->parameters(), b = wrapped->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(all_close(b[i], a[i].to(Device::cpu()), {1e-6, 1e-6})) << "parameter " << i;
}

TEST(NcclDDP, Bf16ReduceDtypeOnCudaStaysClose) {
  KIRZL_REQUIRE_NCCL(c);
  const Device dev = Device::cuda(0);
  auto make = [&] {
    manual_seed(9);
    auto m = std::make_shared<nn::Sequential>(nn::Linear(12, 16), nn::ReLU(), nn::Linear(16, 3));
    m->to(dev);
    return m;
  };
  auto plain = make(), wrapped = make();
  DistributedDataParallel ddp(*wrapped, world_.communicator(), {.reduce_dtype = DType::bf16});
  Generator g(1);
  Tensor x = randn({6, 12}, {}, &g).to(dev);
  Tensor y = randint(0, 3, {6}, {.dtype = DType::i64}, &g).to(dev);
  cross_entropy(ddp(x), y).backward();
  cross_entropy(plain->forward(x), y).backward();
  auto a = plain->parameters(), b = wrapped->parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    Tensor low = b[i].grad().to(Device::cpu());
    EXPECT_TRUE(all_close(low, a[i].grad().to(Device::cpu()), {1e-2, 1e-3})) << "parameter " << i;
    // The bf16 path wrote back bf16 values.
    EXPECT_TRUE(all_close(low, low.to(DType::bf16).to(DType::f32), {0, 0})) << "parameter " << i;
  }
}
