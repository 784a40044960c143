// CUDA tensors across ranks under mpirun -np 2 and -np 4 (labels mpi and gpu): on a one-GPU
// machine the ranks share the GPU, so init() picks MPI with staged copies (Note [mpi cuda
// staging]); with a GPU per rank it picks NCCL. Either way: collectives on CUDA tensors, and DDP on
// N ranks equal to one process on N times the batch. Every test skips without a GPU.
#include <gtest/gtest.h>

#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>

#include "comm/mpi/mpi_test_main.hpp"
#include "support/cuda_compare.hpp"

using namespace kirzl;
using kirzl::testing::all_close;
namespace nn = kirzl::nn;

namespace {
comm::ProcessGroup& world() { return kirzl::testing::mpi_world(); }
}  // namespace

TEST(MpiCuda, CollectivesOnCudaTensors) {
  KIRZL_REQUIRE_GPU();
  const int n = world().size(), r = world().rank();
  const Device dev = world().device();
  ASSERT_TRUE(dev.is_cuda());
  auto c = world().communicator();
  for (DType dt : {DType::f32, DType::bf16, DType::i32}) {
    for (int64_t len : {int64_t{1}, int64_t{17}, int64_t{100003}}) {
      Tensor t = full({len}, r + 1, {.dtype = dt}).to(dev);
      c->all_reduce(t, {.op = comm::ReduceOp::Sum}).wait();
      EXPECT_TRUE(all_close(t, full({len}, n * (n + 1) / 2, {.dtype = dt}))) << dtype_name(dt) << " n=" << len;
    }
  }
  Tensor b = full({257}, r == 1 ? 5.0 : -1.0).to(dev);
  c->broadcast(b, {.root = 1}).wait();
  EXPECT_TRUE(all_close(b, full({257}, 5.0)));
  Tensor mine = full({3}, r).to(dev);
  Tensor all = empty({3 * static_cast<int64_t>(n)}, {.device = dev});
  kirzl::testing::poison(all);
  c->all_gather(all, mine).wait();
  std::vector<float> expected;
  for (int k = 0; k < n; ++k) expected.insert(expected.end(), 3, static_cast<float>(k));
  EXPECT_EQ(all.to(Device::cpu()).to_vector<float>(), expected);
  Tensor in = arange(0, 4 * n).to(dev), out = empty({4}, {.device = dev});
  kirzl::testing::poison(out);
  c->reduce_scatter(out, in, {.op = comm::ReduceOp::Avg}).wait();
  EXPECT_TRUE(all_close(out, arange(4 * r, 4 * r + 4)));
}

TEST(MpiCuda, DdpOnNRanksEqualsOneProcessWithNTimesTheBatch) {
  KIRZL_REQUIRE_GPU();
  const int n = world().size(), r = world().rank();
  const Device dev = world().device();
  const int64_t per_rank = 4, global = per_rank * n;
  auto make = [&] {
    manual_seed(7);
    auto m = std::make_shared<nn::Sequential>(nn::Flatten(), nn::Linear(12, 16), nn::ReLU(), nn::Linear(16, 8), nn::GELU(),
                                              nn::Linear(8, 3));
    m->to(dev);
    return m;
  };
  auto single = make();  // the reference: this process alone on the global batch
  auto model = make();
  DistributedDataParallel ddp(*model, world(), {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002});
  optim::AdamW opt_single(single->parameters(), {.lr = 1e-2});
  optim::AdamW opt(model->parameters(), {.lr = 1e-2});
  for (int step = 0; step < 15; ++step) {
    Generator g(1000 + step);
    Tensor x = randn({global, 12}, {}, &g).to(dev);
    Tensor y = randint(0, 3, {global}, {.dtype = DType::i64}, &g).to(dev);
    opt_single.zero_grad();
    cross_entropy(single->forward(x), y).backward();
    opt_single.step();
    Tensor out = ddp(x.narrow(0, r * per_rank, per_rank));
    opt.zero_grad();
    cross_entropy(out, y.narrow(0, r * per_rank, per_rank)).backward();
    opt.step();
  }
  auto a = single->parameters(), b = model->parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(all_close(b[i], a[i].to(Device::cpu()), {1e-4, 1e-5})) << "parameter " << i << " on rank " << r;
}

int main(int argc, char** argv) { return kirzl::testing::run_mpi_tests(argc, argv); }
