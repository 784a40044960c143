// DDP checkpoints (kirzl/io/ddp_checkpoint.hpp, Note [DDP checkpoint keys]): written by N
// in-process ranks, sharded or not, they load at any M ranks and any shard setting, and training
// continues as if it never stopped; consolidated, they load into one process; a checkpoint that
// does not fit is the same error on every rank, with nothing changed.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <kirzl/ddp.hpp>
#include <kirzl/io/ddp_checkpoint.hpp>
#include <kirzl/io/sharded_checkpoint.hpp>
#include <kirzl/kirzl.hpp>

#include "io/sharded_checkpoint_cases.hpp"
#include "support/rank_threads.hpp"
#include "support/param_diff.hpp"

using namespace kirzl;
using kirzl::testing::TempDir;

using kirzl::testing::run_rank_threads;

namespace {

constexpr int kGlobalBatch = 12;  // divisible by 1, 2, 3 and 4 ranks

std::shared_ptr<nn::Module> make_model() {
  return std::make_shared<nn::Sequential>(nn::Linear(12, 16), nn::GELU(), nn::Linear(16, 7), nn::ReLU(),
                                          nn::Linear(7, 3));
}

// Steps [from, to) of AdamW over a fixed global batch per step, this rank's share of it.
void train_steps(DistributedDataParallel& ddp, optim::Optimizer& opt, int rank, int n, int from, int to) {
  const int64_t per_rank = kGlobalBatch / n;
  for (int step = from; step < to; ++step) {
    Generator g(1000 + step);
    Tensor x = randn({kGlobalBatch, 12}, {}, &g).narrow(0, per_rank * rank, per_rank);
    Tensor y = randint(0, 3, {kGlobalBatch}, {.dtype = DType::i64}, &g).narrow(0, per_rank * rank, per_rank);
    opt.zero_grad();
    cross_entropy(ddp(x), y).backward();
    opt.step();
  }
  ddp.synchronize_parameters();
}

std::vector<std::vector<float>> params_of(nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (auto& p : m.parameters()) out.push_back(p.to_vector<float>());
  return out;
}

using kirzl::testing::max_diff;

const optim::AdamWOptions kAdamW{.lr = 0.01, .weight_decay = 0.1};

// 10 uninterrupted steps on n unsharded ranks (rank 0's parameters): what every resumed run
// must end at. Runs at other world sizes sum the gradients in another order, so they agree with
// it to rounding (measured: 5e-8; asserted: 1e-6), and the same world size and layout exactly.
std::vector<std::vector<float>> reference(int n = 1) {
  std::vector<std::vector<float>> out;
  run_rank_threads(n, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c);
    auto opt = ddp.make_optimizer<optim::AdamW>(kAdamW);
    train_steps(ddp, *opt, rank, n, 0, 10);
    if (rank == 0) out = params_of(*model);
  });
  return out;
}

// Steps 0-4 on n ranks with `shard`, then save_checkpoint(dir).
void first_half(int n, Shard shard, const std::string& dir) {
  run_rank_threads(n, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(7);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.bucket_cap_mb = 0.0005, .first_bucket_cap_mb = 0.0002, .shard = shard});
    auto opt = ddp.make_optimizer<optim::AdamW>(kAdamW);
    train_steps(ddp, *opt, rank, n, 0, 5);
    io::save_checkpoint(dir, ddp, opt.get(), {.step = 5, .epoch = 1, .config = {{"run", "test"}}});
  });
}

// A fresh model (other seed) on m ranks with `shard` loads `path`, then steps 5-9; every rank's
// final parameters.
std::vector<std::vector<std::vector<float>>> second_half(int m, Shard shard, const std::string& path) {
  std::vector<std::vector<std::vector<float>>> out(m);
  run_rank_threads(m, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(99);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.bucket_cap_mb = 0.0003, .first_bucket_cap_mb = 0.0001, .shard = shard});
    auto opt = ddp.make_optimizer<optim::AdamW>({.lr = 0.5});
    io::CheckpointInfo info = io::load_checkpoint(path, ddp, opt.get());
    EXPECT_EQ(info.step, 5);
    EXPECT_EQ(info.epoch, 1);
    EXPECT_EQ(info.config.at("run"), "test");
    EXPECT_DOUBLE_EQ(opt->lr(), 0.01) << "the group's lr comes from the checkpoint";
    train_steps(ddp, *opt, rank, m, 5, 10);
    out[rank] = params_of(*model);
  });
  return out;
}

const char* shard_name(Shard s) { return s == Shard::none ? "none" : s == Shard::optimizer ? "ZeRO-1" : "ZeRO-2"; }

// Loads `dir` into ddp and opt, which must fail with Error{code} and leave the model as it was;
// returns the error's message.
std::string load_fails(const std::string& dir, nn::Module& model, DistributedDataParallel& ddp,
                       optim::Optimizer* opt, ErrorCode code) {
  const auto before = params_of(model);
  std::string message;
  try {
    io::load_checkpoint(dir, ddp, opt);
    ADD_FAILURE() << "the checkpoint " << dir << " loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.message();
    message = e.message();
  }
  EXPECT_EQ(max_diff(params_of(model), before), 0.0) << "the model is unchanged";
  return message;
}

}  // namespace

TEST(DdpCheckpoint, WrittenAtTwoShardedRanksContinuesAtAnyWorldSizeAndShardSetting) {
  const auto want = reference();
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt";
  first_half(2, Shard::gradients, dir);
  const io::ShardedCheckpoint ck = io::ShardedCheckpoint::open(dir);
  EXPECT_EQ(ck.world_size(), 2);
  EXPECT_EQ(ck.metadata().at("shard"), "gradients");
  EXPECT_EQ(ck.shape("optim.state.0.exp_avg"), (std::vector<int64_t>{16, 12})) << "state under whole shapes";
  for (int m : {1, 2, 3, 4})
    for (Shard shard : {Shard::none, Shard::optimizer, Shard::gradients}) {
      SCOPED_TRACE(std::to_string(m) + " ranks, " + shard_name(shard));
      auto got = second_half(m, shard, dir);
      for (int r = 0; r < m; ++r) EXPECT_LE(max_diff(got[r], want), 1e-6) << "rank " << r;
    }
}

// The case: written by 4 ranks, resumed at 1, 2 and 3, it continues as the
// uninterrupted 4-rank run does.
TEST(DdpCheckpoint, WrittenAtFourRanksContinuesLikeTheUninterruptedFourRankRun) {
  const auto four = reference(4), one = reference(1);
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt";
  first_half(4, Shard::optimizer, dir);
  for (int m : {1, 2, 3, 4}) {
    SCOPED_TRACE(std::to_string(m) + " ranks");
    auto got = second_half(m, m == 4 ? Shard::optimizer : Shard::gradients, dir);
    for (int r = 0; r < m; ++r) {
      EXPECT_LE(max_diff(got[r], four), m == 4 ? 0.0 : 1e-6) << "rank " << r;
      EXPECT_LE(max_diff(got[r], one), 1e-6) << "rank " << r;
    }
  }
}

TEST(DdpCheckpoint, AnUnshardedCheckpointReshardsAndAConsolidatedOneLoadsInOneProcess) {
  const auto want = reference();
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt", file = tmp / "one.safetensors";
  first_half(3, Shard::none, dir);
  {  // the write is spread: every rank's file holds whole tensors of the model and the optimizer
    const io::ShardedCheckpoint ck = io::ShardedCheckpoint::open(dir);
    std::vector<int> model_entries(3, 0), state_entries(3, 0);
    for (const std::string& key : ck.keys())
      for (const auto& piece : ck.pieces(key)) {
        EXPECT_EQ(piece.length, ck.numel(key)) << key << " is written whole by one rank";
        if (key.rfind("model.", 0) == 0) ++model_entries.at(piece.shard);
        if (key.rfind("optim.state.", 0) == 0) ++state_entries.at(piece.shard);
      }
    for (int r = 0; r < 3; ++r) {
      EXPECT_GE(model_entries[r], 2) << "rank " << r;
      EXPECT_GE(state_entries[r], 2 * 3) << "rank " << r;
    }
  }
  auto got = second_half(4, Shard::optimizer, dir);
  EXPECT_LE(max_diff(got[0], want), 1e-6);

  // consolidate -> the single-process loader and the plain optimizer continue alike.
  io::consolidate(dir, file);
  manual_seed(99);
  auto model = make_model();
  optim::AdamW opt(model->parameters(), {.lr = 0.5});
  io::CheckpointInfo info = io::load_checkpoint(file, *model, &opt);
  EXPECT_EQ(info.step, 5);
  for (int step = 5; step < 10; ++step) {
    Generator g(1000 + step);
    Tensor x = randn({kGlobalBatch, 12}, {}, &g);
    Tensor y = randint(0, 3, {kGlobalBatch}, {.dtype = DType::i64}, &g);
    opt.zero_grad();
    cross_entropy((*model)(x), y).backward();
    opt.step();
  }
  EXPECT_LE(max_diff(params_of(*model), want), 1e-6);
  // ... and the consolidated file loads into a sharded DDP too.
  got = second_half(3, Shard::gradients, file);
  EXPECT_LE(max_diff(got[2], want), 1e-6);
}

TEST(DdpCheckpoint, ACheckpointThatDoesNotFitIsTheSameErrorOnEveryRankAndChangesNothing) {
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt";
  first_half(2, Shard::optimizer, dir);
  std::vector<std::string> messages(3);
  run_rank_threads(3, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(99);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.shard = Shard::gradients});
    auto opt = ddp.make_optimizer<optim::SGD>({.lr = 0.1});
    messages[rank] = load_fails(dir, *model, ddp, opt.get(), ErrorCode::InvalidArgument);  // AdamW state into SGD
    // Two param groups here, one in the checkpoint.
    auto model2 = make_model();
    DistributedDataParallel ddp2(*model2, c, {.shard = Shard::optimizer});
    std::vector<optim::ParamGroup> groups(2);
    auto params = ddp2.trainable_parameters();
    for (size_t i = 0; i < params.size(); ++i) groups[i % 2].params.push_back(params[i]);
    auto opt2 = ddp2.make_optimizer<optim::AdamW>(groups, {});
    const std::string groups_message = load_fails(dir, *model2, ddp2, opt2.get(), ErrorCode::InvalidArgument);
    EXPECT_NE(groups_message.find("param group"), std::string::npos) << groups_message;
  });
  for (int r = 0; r < 3; ++r) {
    EXPECT_NE(messages[r].find("AdamW"), std::string::npos) << messages[r];
    EXPECT_EQ(messages[r], messages[0]) << "every rank reports the same error";
  }
}

// A checkpoint that only some ranks can take (here: it holds a layer that the model lacks, which
// only rank 1 refuses, being strict) fails on every rank naming rank 1, and no rank's model
// changes (Note [checkpoint load without backups]: all ranks check before any loads).
TEST(DdpCheckpoint, ACheckpointThatFitsSomeRanksOnlyChangesNoRank) {
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt";
  run_rank_threads(1, [&](int, std::shared_ptr<comm::Communicator> c) {
    manual_seed(5);
    nn::Sequential bigger(nn::Linear(12, 16), nn::GELU(), nn::Linear(16, 7), nn::ReLU(), nn::Linear(7, 3),
                          nn::Linear(3, 3));
    DistributedDataParallel ddp(bigger, c);
    io::save_checkpoint(dir, ddp, nullptr, {.step = 3});
  });
  std::vector<std::string> messages(3);
  run_rank_threads(3, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(99);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c);
    const auto before = params_of(*model);
    try {
      io::load_checkpoint(dir, ddp, nullptr, /*strict=*/rank == 1);
      ADD_FAILURE() << "rank " << rank << " loaded";
    } catch (const Error& e) {
      messages[rank] = e.message();
    }
    EXPECT_EQ(max_diff(params_of(*model), before), 0.0) << "rank " << rank << "'s model changed";
  });
  for (int r = 0; r < 3; ++r) {
    EXPECT_NE(messages[r].find("failed on rank 1 of 3; nothing was loaded"), std::string::npos) << messages[r];
    EXPECT_NE(messages[r].find("unexpected keys: 5.bias, 5.weight"), std::string::npos) << messages[r];
    EXPECT_EQ(messages[r], messages[0]) << "every rank reports the same error";
  }
}

TEST(DdpCheckpoint, AFailedSaveLeavesThePreviousCheckpoint) {
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt";
  first_half(2, Shard::gradients, dir);
  const auto before = io::ShardedCheckpoint::open(dir).read("model.0.weight").to_vector<float>();
  // The second save's optimizer is not the one make_optimizer() returned on rank 1: every rank fails.
  std::vector<int> failed(2, 0);
  run_rank_threads(2, [&](int rank, std::shared_ptr<comm::Communicator> c) {
    manual_seed(5);
    auto model = make_model();
    DistributedDataParallel ddp(*model, c, {.shard = Shard::optimizer});
    auto opt = ddp.make_optimizer<optim::AdamW>(kAdamW);
    optim::AdamW stranger(model->parameters(), {});
    try {
      io::save_checkpoint(dir, ddp, rank == 1 ? &stranger : opt.get(), {.step = 9});
    } catch (const Error& e) {
      failed[rank] = 1;
      EXPECT_NE(e.message().find("rank 1"), std::string::npos) << e.message();
    }
  });
  EXPECT_EQ(failed, (std::vector<int>{1, 1}));
  const io::ShardedCheckpoint ck = io::ShardedCheckpoint::open(dir);
  EXPECT_EQ(ck.metadata().at("step"), "5");
  EXPECT_EQ(ck.read("model.0.weight").to_vector<float>(), before);
}

// A damaged shard (one flipped bit in rank 1's optimizer piece) or a broken index: every rank
// throws the same Error{Io} naming the file, and no rank's model or optimizer changed.
TEST(DdpCheckpoint, ADamagedShardOrIndexIsAnIoErrorOnEveryRankAndLoadsNothing) {
  TempDir tmp("ddp_ckpt");
  const std::string dir = tmp / "ckpt";
  first_half(2, Shard::optimizer, dir);
  const std::string shard1 = (std::filesystem::path(dir) / "shard-00001-of-00002.safetensors").string();
  {
    const io::ShardedCheckpoint ck = io::ShardedCheckpoint::open(dir);
    const auto& pieces = ck.pieces("optim.state.0.exp_avg");
    ASSERT_EQ(pieces.size(), 2u);
    ASSERT_EQ(pieces[1].shard, 1);
    std::fstream f(shard1, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(pieces[1].file_offset + 4 * 5 + 2);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x08);
    f.seekp(at);
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
  }
  auto try_load = [&](const std::string& expected_file) {
    std::vector<std::string> messages(3);
    run_rank_threads(3, [&](int rank, std::shared_ptr<comm::Communicator> c) {
      manual_seed(99);
      auto model = make_model();
      DistributedDataParallel ddp(*model, c, {.shard = Shard::gradients});
      auto opt = ddp.make_optimizer<optim::AdamW>({.lr = 0.5});
      messages[rank] = load_fails(dir, *model, ddp, opt.get(), ErrorCode::Io);
      EXPECT_DOUBLE_EQ(opt->lr(), 0.5) << "the optimizer is unchanged";
      for (const auto& [key, t] : opt->state_dict())
        EXPECT_NE(key.rfind("state.", 0), 0u) << "optimizer state appeared: " << key;
    });
    for (int r = 0; r < 3; ++r) {
      EXPECT_NE(messages[r].find(expected_file), std::string::npos) << messages[r];
      EXPECT_EQ(messages[r], messages[0]) << "every rank reports the same error";
    }
  };
  try_load(shard1);
  // The index cut short: not valid JSON.
  const std::string index = (std::filesystem::path(dir) / "index.json").string();
  std::filesystem::resize_file(index, std::filesystem::file_size(index) / 2);
  try_load(index);
}
