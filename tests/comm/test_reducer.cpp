// DistributedDataParallel on the in-process backend: N ranks as threads must train exactly like
// one process on the union of their batches.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <thread>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include <kirzl/ddp.hpp>
#include <kirzl/kirzl.hpp>
#include <kirzl/nn/sync_batch_norm.hpp>

#include "support/expect_error.hpp"
#include "support/rank_threads.hpp"

using namespace kirzl;
namespace nn = kirzl::nn;

using kirzl::testing::run_rank_threads;

namespace {

using ModelFactory = std::function<std::shared_ptr<nn::Module>()>;
using OptimFactory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

std::shared_ptr<nn::Module> make_mlp() {
  auto m = std::make_shared<nn::Sequential>(nn::Flatten(), nn::Linear(12, 16), nn::ReLU(), nn::Linear(16, 8),
                                            nn::GELU(), nn::Linear(8, 3));
  return m;
}

std::shared_ptr<nn::Module> make_cnn() {
  return std::make_shared<nn::Sequential>(nn::Conv2d(1, 4, 3, {.padding = {1, 1}}), nn::ReLU(), nn::MaxPool2d(2),
                                          nn::Conv2d(4, 6, 3), nn::ReLU(), nn::Flatten(), nn::Linear(6 * 2 * 2, 3));
}

// The data of step s: a global batch of `global` examples, identical for every caller.
void batch(int step, int64_t global, bool image, Tensor& x, Tensor& y) {
  Generator g(1000 + step);
  x = image ? randn({global, 1, 8, 8}, {}, &g) : randn({global, 12}, {}, &g);
  y = randint(0, 3, {global}, {.dtype = DType::i64}, &g);
}

std::vector<std::vector<float>> snapshot(nn::Module& m) {
  std::vector<std::vector<float>> v;
  for (auto& p : m.parameters()) v.push_back(p.to_vector<float>());
  return v;
}

double max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < a[i].size(); ++k) d = std::max(d, static_cast<double>(std::abs(a[i][k] - b[i][k])));
  return d;
}

// Trains `steps` steps on one process with the global batch; returns the final parameters.
std::vector<std::vector<float>> train_single(const ModelFactory& make, const OptimFactory& make_opt, int steps,
                                             int64_t global, bool image, int accumulate = 1) {
  manual_seed(7);
  auto model = make();
  auto opt = make_opt(model->parameters());
  for (int s = 0; s < steps; ++s) {
    Tensor x, y;
    batch(s, global, image, x, y);
    opt->zero_grad();
    cross_entropy((*model)(x), y).backward();
    opt->step();
  }
  (void)accumulate;
  return snapshot(*model);
}

std::vector<std::vector<float>> train_ddp(int n, const ModelFactory& make, const OptimFactory& make_opt, int steps,
                                          int64_t global, bool image, const DDPOptions& options = {},
                                          bool set_to_none = true) {
  std::vector<std::vector<float>> result;
  manual_seed(7);
  auto reference_init = make()->state_dict();  // what rank 0 starts from
  run_rank_threads(n, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    auto model = make();  // each rank initialises differently...
    if (rank == 0) model->load_state_dict(reference_init);  // ...and DDP broadcasts rank 0's
    DistributedDataParallel ddp(*model, c, options);
    auto opt = make_opt(model->parameters());
    const int64_t b = global / n;
    for (int s = 0; s < steps; ++s) {
      Tensor x, y;
      batch(s, global, image, x, y);
      Tensor xr = x.narrow(0, rank * b, b), yr = y.narrow(0, rank * b, b);
      Tensor out = ddp(xr);
      opt->zero_grad(set_to_none);  // between forward and backward, as in the usual loop (Note [rebinding gradients])
      cross_entropy(out, yr).backward();
      opt->step();
    }
    if (rank == 0) result = snapshot(*model);
  });
  return result;
}

OptimFactory sgd_momentum() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1, .momentum = 0.9}); };
}
// Plain SGD: an update is lr x gradient, so a sum where the average belongs changes every step.
OptimFactory sgd() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions{.lr = 0.1}); };
}
OptimFactory adamw() {
  return [](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions{.lr = 1e-2}); };
}

}  // namespace

TEST(DDP, EquivalentToOneProcessMlpSgdMomentum) {
  auto ref = train_single(make_mlp, sgd_momentum(), 20, 16, false);
  for (int n : {2, 4}) {
    auto got = train_ddp(n, make_mlp, sgd_momentum(), 20, 16, false, {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002});
    EXPECT_LE(max_abs_diff(ref, got), 1e-5) << n << " ranks";
  }
}

// A user-written hook: the sum over ranks, divided by the world size once it has arrived.
CommHook sum_then_divide() {
  return [](comm::Communicator& c, Tensor& bucket, const BucketInfo& info) {
    comm::Work w = c.all_reduce(bucket, {.op = comm::ReduceOp::Sum, .timeout = info.timeout, .tag = info.tag});
    const double n = c.size();
    return CommHookResult{w, [b = bucket, n]() mutable {
                            NoGradGuard g;
                            b.mul_(1.0 / n);
                          }};
  };
}

// The equivalence tests can tell an average from a sum: with plain SGD, a hook that forgets to
// divide moves the parameters far from the single process (AdamW's normalisation would hide it).
TEST(DDP, EquivalenceTellsTheAverageFromTheSum) {
  auto ref = train_single(make_mlp, sgd(), 10, 16, false);
  EXPECT_LE(max_abs_diff(ref, train_ddp(2, make_mlp, sgd(), 10, 16, false)), 1e-5) << "the default averages";
  EXPECT_LE(max_abs_diff(ref, train_ddp(2, make_mlp, sgd(), 10, 16, false, {.comm_hook = sum_then_divide()})), 1e-5)
      << "a user hook that sums, then divides in finish()";
  CommHook sum_only = [](comm::Communicator& c, Tensor& bucket, const BucketInfo& info) {
    return CommHookResult{c.all_reduce(bucket, {.op = comm::ReduceOp::Sum, .timeout = info.timeout, .tag = info.tag}), {}};
  };
  EXPECT_GT(max_abs_diff(ref, train_ddp(2, make_mlp, sgd(), 10, 16, false, {.comm_hook = sum_only})), 1e-3)
      << "a sum where the average belongs must not pass as equivalent";
}

TEST(DDP, EquivalentWithoutOverlapAndWithZeroedGradients) {
  auto ref = train_single(make_mlp, sgd_momentum(), 10, 16, false);
  EXPECT_LE(max_abs_diff(ref, train_ddp(2, make_mlp, sgd_momentum(), 10, 16, false,
                                        {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002, .overlap = false})),
            1e-5)
      << "overlap = false";
  EXPECT_LE(max_abs_diff(ref, train_ddp(2, make_mlp, sgd_momentum(), 10, 16, false, {}, /*set_to_none=*/false)), 1e-5)
      << "zero_grad(false): gradients zeroed in place, not set to none";
}

TEST(DDP, Fp16CompressionStaysCloseToOneProcess) {
  auto ref = train_single(make_mlp, sgd_momentum(), 10, 16, false);
  const double d = max_abs_diff(ref, train_ddp(2, make_mlp, sgd_momentum(), 10, 16, false,
                                               {.comm_hook = comm_hooks::fp16_compress()}));
  EXPECT_LE(d, 5e-3) << "f16 keeps ~3 significant digits of each averaged gradient";
  EXPECT_GT(d, 0.0) << "the gradients really went through f16";
}

TEST(DDP, EquivalentToOneProcessCnnAdamW) {
  auto ref = train_single(make_cnn, adamw(), 20, 8, true);
  for (int n : {2, 4}) {
    auto got = train_ddp(n, make_cnn, adamw(), 20, 8, true);
    EXPECT_LE(max_abs_diff(ref, got), 1e-5) << n << " ranks";
  }
}

TEST(DDP, NoSyncAccumulationEqualsLargeBatch) {
  // Two ranks, each accumulating k = 2 micro-batches of 4 under no_sync: one step on 16 examples.
  auto ref = train_single(make_mlp, sgd_momentum(), 5, 16, false);
  std::vector<std::vector<float>> got;
  manual_seed(7);
  auto init = make_mlp()->state_dict();
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    auto model = make_mlp();
    if (rank == 0) model->load_state_dict(init);
    DistributedDataParallel ddp(*model, c);
    auto opt = sgd_momentum()(model->parameters());
    for (int s = 0; s < 5; ++s) {
      Tensor x, y;
      batch(s, 16, false, x, y);
      opt->zero_grad();
      for (int k = 0; k < 2; ++k) {
        int64_t off = rank * 8 + k * 4;
        Tensor loss = cross_entropy(ddp(x.narrow(0, off, 4)), y.narrow(0, off, 4)) * 0.5;
        if (k == 0) {
          auto guard = ddp.no_sync();
          loss.backward();
        } else {
          loss.backward();
        }
      }
      opt->step();
    }
    if (rank == 0) got = snapshot(*model);
  });
  EXPECT_LE(max_abs_diff(ref, got), 1e-5);
}

namespace {
// A model whose second branch is used only when asked.
class Branchy : public nn::Module {
 public:
  Branchy() {
    a = register_module("a", std::make_shared<nn::Linear>(4, 2));
    b = register_module("b", std::make_shared<nn::Linear>(4, 2));
  }
  Tensor forward(const Tensor& x) override { return use_b ? (*a)(x) + (*b)(x) : (*a)(x); }
  std::shared_ptr<nn::Linear> a, b;
  bool use_b = false;
};
}  // namespace

TEST(DDP, UnusedParametersAreAnErrorOrZeroWithTheOption) {
  run_rank_threads(2, [&](int, std::shared_ptr<comm::Communicator> c) {
    Branchy m;
    DistributedDataParallel ddp(m, c);
    EXPECT_KIRZL_ERROR(sum(ddp(ones({3, 4}))).backward(), ErrorCode::InvalidArgument, "b.weight", "b.bias",
                       "find_unused_parameters");
  });
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    Branchy m;
    DistributedDataParallel ddp(m, c, {.find_unused_parameters = true});
    sum(ddp(full({3, 4}, rank + 1.0))).backward();
    EXPECT_EQ(sum(abs(m.b->weight.grad())).item(), 0.0);
    // d/dW of sum(x W^T): every row of the gradient is the column sum of x: 3 * mean(1, 2).
    EXPECT_NEAR(m.a->weight.grad().to_vector<float>()[0], 4.5, 1e-6);
    m.use_b = true;
    sum(ddp(full({3, 4}, rank + 1.0))).backward();
    EXPECT_NEAR(m.b->weight.grad().to_vector<float>()[0], 4.5, 1e-6);
  });
}

// Note [reducer phases] (issue #14): every backward either reduces or fails. A second backward
// through one forward used to leave the ranks with different gradients (12.6 apart on this model).
TEST(DDP, ASecondBackwardThroughOneForwardIsAnError) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    nn::Linear m(4, 3);
    DistributedDataParallel ddp(m, c);
    Tensor y = ddp(full({2, 4}, rank + 1.0));
    sum(y).backward({}, /*retain_graph=*/true);
    EXPECT_KIRZL_ERROR(sum(y * y).backward(), ErrorCode::InvalidArgument, "parameter '", "already reduced",
                       "retain_graph", "no_sync");
  });
}

TEST(DDP, ALossFromTheModuleOutsideDdpForwardIsAnError) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    nn::Linear m(4, 3);
    DistributedDataParallel ddp(m, c);
    // Before any ddp.forward: nothing prepared this backward.
    EXPECT_KIRZL_ERROR(sum(m.forward(full({2, 4}, rank + 1.0))).backward(), ErrorCode::InvalidArgument,
                       "no forward through DDP", "ddp.forward");
    sum(ddp(full({2, 4}, rank + 1.0))).backward();  // a proper step still works
    EXPECT_KIRZL_ERROR(sum(m.forward(full({2, 4}, rank + 1.0))).backward(), ErrorCode::InvalidArgument,
                       "already reduced", "outside ddp.forward()");
  });
}

TEST(DDP, ParametersChangedAfterConstructionAreAnError) {
  run_rank_threads(2, [&](int, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    nn::Linear m(4, 3);
    DistributedDataParallel ddp(m, c);
    m.to(DType::f64);  // the parameters are converted: DDP's buckets still hold f32 slots
    EXPECT_KIRZL_ERROR(ddp(ones({2, 4}, {.dtype = DType::f64})), ErrorCode::InvalidArgument, "'weight'",
                       "changed after DDP was constructed", "Construct DDP after");
  });
}

TEST(DDP, DifferentModelsAreRejectedNamingTheParameter) {
  std::vector<std::string> messages(2);
  run_rank_threads(2, [&](int r, std::shared_ptr<comm::Communicator> c) {
    nn::Sequential m(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, r == 0 ? 2 : 5));
    try {
      DistributedDataParallel ddp(m, c);
    } catch (const Error& e) {
      messages[r] = e.what();
    }
  });
  EXPECT_NE(messages[1].find("'2.weight'"), std::string::npos) << messages[1];
  EXPECT_NE(messages[1].find("rank 1"), std::string::npos) << messages[1];
  EXPECT_NE(messages[0].find("ranks 1 differ from rank 0"), std::string::npos) << messages[0];
}

TEST(DDP, BucketsOverlapBackwardAndCompressionHooksStayClose) {
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    nn::Sequential m(nn::Linear(64, 256), nn::ReLU(), nn::Linear(256, 256), nn::ReLU(), nn::Linear(256, 64), nn::ReLU(),
                     nn::Linear(64, 4));
    Generator g(rank);
    Tensor x = randn({32, 64}, {}, &g);
    std::vector<float> exact, approx;
    {
      DistributedDataParallel ddp(m, c, {.bucket_cap_mb = 0.1, .first_bucket_cap_mb = 0.01});
      EXPECT_GE(ddp.buckets().size(), 4u);
      EXPECT_EQ(ddp.buckets().front().param_names.front(), "6.bias");  // the last layer comes first
      sum(ddp(x)).backward();
      const auto& st = ddp.last_step_stats();
      EXPECT_EQ(st.buckets, static_cast<int>(ddp.buckets().size()));
      EXPECT_LT(st.first_launch_ms, st.backward_ms) << "the first bucket must start before backward ends";
      exact = m.parameters()[0].grad().to_vector<float>();
    }
    m.zero_grad();
    {
      DistributedDataParallel ddp16(m, c, {.comm_hook = comm_hooks::bf16_compress()});
      sum(ddp16(x)).backward();
      approx = m.parameters()[0].grad().to_vector<float>();
    }
    double err = 0, norm = 0;
    for (size_t i = 0; i < exact.size(); ++i) {
      err += (exact[i] - approx[i]) * (exact[i] - approx[i]);
      norm += exact[i] * exact[i];
    }
    EXPECT_LT(std::sqrt(err / norm), 1e-2);
  });
}

TEST(DDP, EquivalentToOneProcessMlpAdamWAndCnnSgd) {
  auto ref_mlp = train_single(make_mlp, adamw(), 20, 12, false);
  auto ref_cnn = train_single(make_cnn, sgd_momentum(), 20, 12, true);
  for (int n : {2, 3}) {
    EXPECT_LE(max_abs_diff(ref_mlp, train_ddp(n, make_mlp, adamw(), 20, 12, false)), 1e-5) << n << " ranks, MLP";
    EXPECT_LE(max_abs_diff(ref_cnn, train_ddp(n, make_cnn, sgd_momentum(), 20, 12, true)), 1e-5) << n << " ranks, CNN";
  }
}

TEST(DDP, JoinStopsAllRanksAtTheShortestData) {
  std::vector<int> steps(2, 0);
  std::vector<std::vector<float>> params(2);
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(1);
    auto model = make_mlp();
    DistributedDataParallel ddp(*model, c);
    optim::SGD opt(model->parameters(), {.lr = 0.1});
    const int batches = rank == 0 ? 3 : 5;  // uneven: rank 1 has more data
    for (int s = 0; ddp.join(s < batches); ++s) {
      Tensor x, y;
      batch(s, 4, false, x, y);
      opt.zero_grad();
      cross_entropy(ddp(x), y).backward();
      opt.step();
      ++steps[rank];
    }
    params[rank] = model->parameters()[0].to_vector<float>();
  });
  EXPECT_EQ(steps[0], 3);
  EXPECT_EQ(steps[1], 3);
  EXPECT_EQ(params[0], params[1]);
}

TEST(DDP, AnExceptionInOneRanksForwardDoesNotHangTheOthers) {
  std::vector<std::string> errors(2);
  const auto start = std::chrono::steady_clock::now();
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    auto model = make_mlp();
    DistributedDataParallel ddp(*model, c, {.timeout = std::chrono::milliseconds(500)});
    try {
      Tensor x = rank == 1 ? ones({2, 11}) : ones({2, 12});  // rank 1 feeds a wrong shape
      sum(ddp(x)).backward();
    } catch (const Error& e) {
      errors[rank] = e.what();
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(errors[1].find("12"), std::string::npos) << errors[1];  // linear names the expected features
  EXPECT_NE(errors[0].find("Timeout"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("bucket 0"), std::string::npos) << "the timeout names the bucket: " << errors[0];
  EXPECT_LT(seconds, 10.0);
}

TEST(DDP, TimelineShowsTheFirstBucketStartingBeforeBackwardEnds) {
  const auto dir = std::filesystem::temp_directory_path() / ("kirzl_ddp_timeline_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(3);
    nn::Sequential m(nn::Linear(64, 256), nn::ReLU(), nn::Linear(256, 256), nn::ReLU(), nn::Linear(256, 4));
    DistributedDataParallel ddp(m, c, {.bucket_cap_mb = 0.1, .first_bucket_cap_mb = 0.01,
                                       .timeline_path = (dir / ("rank" + std::to_string(rank) + ".json")).string()});
    Generator g(rank);
    for (int s = 0; s < 3; ++s) {
      m.zero_grad();
      sum(ddp(randn({32, 64}, {}, &g))).backward();
      auto scope = ddp.trace("optimizer step");
    }
    ddp.write_timeline();
  });
  std::ifstream in(dir / "rank0.json");
  std::string json((std::istreambuf_iterator<char>(in)), {});
  for (const char* name : {"\"forward\"", "\"backward\"", "all_reduce bucket 0", "\"optimizer step\""})
    EXPECT_NE(json.find(name), std::string::npos) << name << " missing from the trace";
  // Each step's first bucket (k-th "all_reduce bucket 0" span) starts before its backward (k-th
  // "backward" span) ends: communication overlaps backward.
  std::regex span_re(R"re(\{"name": "([^"]*)", "cat": "[^"]*", "ph": "X", "ts": (\d+), "dur": (\d+))re");
  std::vector<std::pair<int64_t, int64_t>> backward, bucket0;
  for (std::sregex_iterator it(json.begin(), json.end(), span_re), end; it != end; ++it) {
    const std::string name = (*it)[1];
    const int64_t ts = std::stoll((*it)[2]), dur = std::stoll((*it)[3]);
    if (name == "backward") backward.push_back({ts, ts + dur});
    if (name.rfind("all_reduce bucket 0:", 0) == 0) bucket0.push_back({ts, ts + dur});
  }
  ASSERT_EQ(backward.size(), 3u);
  ASSERT_EQ(bucket0.size(), 3u);
  for (size_t k = 0; k < 3; ++k) EXPECT_LT(bucket0[k].first, backward[k].second) << "step " << k;
  std::filesystem::remove_all(dir);
}

namespace {
// conv -> batch norm -> relu -> linear, with the norm layer chosen by the caller.
std::shared_ptr<nn::Sequential> bn_model(std::shared_ptr<nn::Module> norm) {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(1, 4, 3));
  m->push_back(std::move(norm));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Linear>(4 * 6 * 6, 3));
  return m;
}
}  // namespace

TEST(SyncBatchNorm, NRanksNormaliseLikeOneProcessWithTheWholeBatch) {
  const int steps = 5, n = 2;
  const int64_t global = 8;
  manual_seed(5);
  auto single = bn_model(std::make_shared<nn::BatchNorm2d>(4));
  StateDict init;  // copies: state_dict() holds handles that training would change
  for (const auto& [name, t] : single->state_dict()) init.insert(name, t.detach().clone());
  optim::SGD ref_opt(single->parameters(), {.lr = 0.1, .momentum = 0.9});
  for (int s = 0; s < steps; ++s) {
    Tensor x, y;
    batch(s, global, true, x, y);
    ref_opt.zero_grad();
    cross_entropy((*single)(x), y).backward();
    ref_opt.step();
  }
  std::vector<StateDict> got(n);
  run_rank_threads(n, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    auto model = bn_model(std::make_shared<nn::SyncBatchNorm>(4, c));
    model->load_state_dict(init);  // BatchNorm2d and SyncBatchNorm share names
    DistributedDataParallel ddp(*model, c);
    optim::SGD opt(model->parameters(), {.lr = 0.1, .momentum = 0.9});
    const int64_t b = global / n;
    for (int s = 0; s < steps; ++s) {
      Tensor x, y;
      batch(s, global, true, x, y);
      opt.zero_grad();
      cross_entropy(ddp(x.narrow(0, rank * b, b)), y.narrow(0, rank * b, b)).backward();
      opt.step();
    }
    got[rank] = model->state_dict();
  });
  for (int r = 0; r < n; ++r)
    for (const auto& [name, t] : single->state_dict()) {
      auto a = t.to(DType::f64).to_vector<double>(), b = got[r].at(name).to(DType::f64).to_vector<double>();
      ASSERT_EQ(a.size(), b.size()) << name;
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << name << "[" << i << "] on rank " << r;
    }
}
