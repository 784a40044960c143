// DistributedDataParallel over the MPI backend, under mpirun -np 2 and -np 4 (label mpi): every
// rank trains its share of each global batch and must end with the parameters that one process
// reaches on the whole batch — which each rank also computes locally as the reference.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include <kirzl/kirzl.hpp>

#include "comm/mpi/mpi_test_main.hpp"

using namespace kirzl;
namespace nn = kirzl::nn;

namespace {

comm::ProcessGroup& world() { return kirzl::testing::mpi_world(); }

using ModelFactory = std::function<std::shared_ptr<nn::Module>()>;
using OptimFactory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

std::shared_ptr<nn::Module> mlp() {
  return std::make_shared<nn::Sequential>(nn::Flatten(), nn::Linear(12, 16), nn::ReLU(), nn::Linear(16, 8), nn::GELU(),
                                          nn::Linear(8, 3));
}
std::shared_ptr<nn::Module> cnn() {
  return std::make_shared<nn::Sequential>(nn::Conv2d(1, 4, 3, {.padding = {1, 1}}), nn::ReLU(), nn::MaxPool2d(2),
                                          nn::Conv2d(4, 6, 3), nn::ReLU(), nn::Flatten(), nn::Linear(6 * 2 * 2, 3));
}
OptimFactory sgd_momentum() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9}); };
}
OptimFactory adamw() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 1e-2}); };
}

void batch(int step, int64_t global, bool image, Tensor& x, Tensor& y) {
  Generator g(1000 + step);
  x = image ? randn({global, 1, 8, 8}, {}, &g) : randn({global, 12}, {}, &g);
  y = randint(0, 3, {global}, {.dtype = DType::i64}, &g);
}

std::vector<Tensor> params_copy(nn::Module& m) {
  std::vector<Tensor> v;
  for (auto& p : m.parameters()) v.push_back(p.detach().clone());
  return v;
}

double max_abs_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, max(abs(a[i] - b[i])).item());
  return d;
}

// One process on the global batch (the reference) and this rank's share under DDP.
double ddp_vs_single(const ModelFactory& make, const OptimFactory& make_opt, bool image, int accumulate = 1) {
  const int n = world().size(), rank = world().rank();
  const int64_t per_rank = 4, global = per_rank * n * accumulate;
  const int steps = 20;
  manual_seed(7);
  auto single = make();
  manual_seed(7 + static_cast<uint64_t>(rank));  // ranks start apart; DDP broadcasts rank 0's
  auto model = make();
  if (rank == 0) model->load_state_dict(single->state_dict());
  auto ref_opt = make_opt(single->parameters());
  DistributedDataParallel ddp(*model, world(), {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002});
  auto opt = make_opt(model->parameters());
  for (int s = 0; s < steps; ++s) {
    Tensor x, y;
    batch(s, global, image, x, y);
    ref_opt->zero_grad();
    cross_entropy((*single)(x), y).backward();
    ref_opt->step();
    opt->zero_grad();
    for (int k = 0; k < accumulate; ++k) {
      const int64_t off = (rank * accumulate + k) * per_rank;
      Tensor loss = cross_entropy(ddp(x.narrow(0, off, per_rank)), y.narrow(0, off, per_rank)) * (1.0 / accumulate);
      if (k + 1 < accumulate) {
        auto guard = ddp.no_sync();
        loss.backward();
      } else {
        loss.backward();
      }
    }
    opt->step();
  }
  return max_abs_diff(params_copy(*single), params_copy(*model));
}

}  // namespace

TEST(MpiDDP, MlpSgdMomentumEqualsOneProcess) { EXPECT_LE(ddp_vs_single(mlp, sgd_momentum(), false), 1e-5); }
TEST(MpiDDP, MlpAdamWEqualsOneProcess) { EXPECT_LE(ddp_vs_single(mlp, adamw(), false), 1e-5); }
TEST(MpiDDP, CnnAdamWEqualsOneProcess) { EXPECT_LE(ddp_vs_single(cnn, adamw(), true), 1e-5); }
TEST(MpiDDP, CnnSgdMomentumEqualsOneProcess) { EXPECT_LE(ddp_vs_single(cnn, sgd_momentum(), true), 1e-5); }
TEST(MpiDDP, NoSyncAccumulationEqualsTheLargeBatch) { EXPECT_LE(ddp_vs_single(mlp, sgd_momentum(), false, 3), 1e-5); }

TEST(MpiDDP, JoinStopsEveryRankAtTheShortestData) {
  manual_seed(1);
  auto model = mlp();
  DistributedDataParallel ddp(*model, world());
  optim::SGD opt(model->parameters(), {.lr = 0.1});
  const int batches = 2 + world().rank();  // rank r has 2 + r batches
  int steps = 0;
  for (int s = 0; ddp.join(s < batches); ++s, ++steps) {
    Tensor x, y;
    batch(s, 4, false, x, y);
    opt.zero_grad();
    cross_entropy(ddp(x), y).backward();
    opt.step();
  }
  EXPECT_EQ(steps, 2);
  // Every rank holds the same parameters afterwards.
  Tensor p = model->parameters()[0].detach().clone(), lo = p.clone(), hi = p.clone();
  world().communicator()->all_reduce(lo, {.op = comm::ReduceOp::Min}).wait();
  world().communicator()->all_reduce(hi, {.op = comm::ReduceOp::Max}).wait();
  EXPECT_EQ(max(abs(hi - lo)).item(), 0.0);
}

TEST(MpiDDP, DifferentModelsFailOnEveryRank) {
  auto c = world().communicator()->split(0, world().rank());  // a fresh communicator for this test
  nn::Sequential m(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, world().rank() == 1 ? 5 : 2));
  try {
    DistributedDataParallel ddp(m, c);
    ADD_FAILURE() << "DDP accepted different models";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("differs between ranks"), std::string::npos) << e.what();
  }
}

int main(int argc, char** argv) { return kirzl::testing::run_mpi_tests(argc, argv); }
