// The examples with --shard (ZeRO-1, ZeRO-2; issue #16) under mpirun: a sharded run trains the
// same model as plain DDP while holding a share of the optimizer state, and a checkpoint written
// by 2 sharded ranks resumes at 1 and at 4 ranks, continuing where it stopped.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "kirzl/config.hpp"

#include "support/program_run.hpp"

namespace fs = std::filesystem;

namespace {

using kirzl::testing::json_number;
using kirzl::testing::ProgramRun;

// `program args` on `np` ranks (1: without mpirun), one thread each.
ProgramRun run_ranks(const std::string& program, int np, const std::string& args) {
  const std::string exe = std::string(KIRZL_BINARY_DIR) + "/examples/" + program;
  if (np == 1) return kirzl::testing::run_program("OMP_NUM_THREADS=1 " + exe + " --threads 1 " + args);
  return kirzl::testing::run_program(kirzl::testing::mpirun_prefix(np, "-x KIRZL_TIMEOUT=60") + exe + " --threads 1 " +
                                     args);
}

// The step and loss of each training line of a metrics log (not the evaluation lines, which carry
// `skip_key`).
struct StepLoss {
  double step, loss;
};
std::vector<StepLoss> step_losses(const fs::path& metrics, const std::string& skip_key) {
  std::vector<StepLoss> v;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);)
    if (l.find("\"" + skip_key + "\"") == std::string::npos) v.push_back({json_number(l, "step"), json_number(l, "loss")});
  return v;
}

struct Example {
  std::string program;
  std::string data;      // the data set it needs
  std::string skip_key;  // what marks the evaluation lines of its metrics log
  std::string result;    // the final figure of its JSON line
};
// gtest names a failing case by this instead of the struct's bytes.
void PrintTo(const Example& e, std::ostream* os) { *os << e.program; }

class ShardedExampleMpi : public ::testing::TestWithParam<Example> {
 protected:
  void SetUp() override {
    if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
    const Example& e = GetParam();
    if (!fs::exists(std::string(KIRZL_BINARY_DIR) + "/examples/" + e.program)) GTEST_SKIP() << e.program << " is not built";
    if (!fs::exists(e.data)) GTEST_SKIP() << e.data << " is missing (scripts/setup.sh installs it)";
    dir_ = fs::temp_directory_path() /
           ("kirzl_shard_mpi_" + std::to_string(::getpid()) + "_" + e.program + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Tiny runs: fashion_mnist 2 epochs of 16 steps; gpt 16 steps, evaluated (and checkpointed) at 8.
    args_ = e.program == "fashion_mnist"
                ? "--train-limit 2048 --test-limit 1000 --epochs 2 --batch-size 128 --log-every 1 "
                : "--steps 16 --eval-every 8 --batch-size 8 --block-size 32 --n-layer 2 --n-head 2 --n-embd 48 "
                  "--warmup 3 --eval-tokens 2048 --sample-tokens 20 --log-every 1 --cache-dir " +
                      (dir_ / "cache").string() + " ";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string metrics(const std::string& name) const { return "--metrics " + (dir_ / (name + ".jsonl")).string() + " "; }
  std::vector<StepLoss> losses(const std::string& name) const {
    return step_losses(dir_ / (name + ".jsonl"), GetParam().skip_key);
  }
  fs::path dir_;
  std::string args_;
};

}  // namespace

// ZeRO-1 and ZeRO-2 at 2 ranks: the same losses as plain DDP at every step, the same final
// figure, and half the optimizer state on rank 0. Tolerance 1e-6 on losses of ~0.5 to 4.7 (a few
// f32 ulps): each rank's shard takes exactly the per-element AdamW/SGD update that the whole
// tensor takes, and the gradients are the same 2-rank average (reduce-scatter or all-reduce of
// the same two summands); only the order of the global clipping norm's sum may differ (gpt clips).
// Measured: bit-identical on the dev machine.
TEST_P(ShardedExampleMpi, ShardedRunsTrainTheSameModelAsPlainDdp) {
  const Example& e = GetParam();
  ProgramRun plain = run_ranks(e.program, 2, args_ + metrics("none"));
  ASSERT_EQ(plain.status, 0) << plain.output;
  const auto ref = losses("none");
  ASSERT_EQ(ref.size(), e.program == "fashion_mnist" ? 32u : 16u);
  EXPECT_NE(plain.summary_line().find("\"shard\": \"none\""), std::string::npos) << plain.summary_line();
  const double plain_bytes = json_number(plain.summary_line(), "optimizer_state_bytes");
  ASSERT_GT(plain_bytes, 0) << plain.summary_line();
  for (const std::string shard : {"optimizer", "gradients"}) {
    SCOPED_TRACE(shard);
    ProgramRun r = run_ranks(e.program, 2, args_ + metrics(shard) + "--shard " + shard);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.summary_line().find("\"shard\": \"" + shard + "\""), std::string::npos) << r.summary_line();
    const auto got = losses(shard);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i].loss, ref[i].loss, 1e-6) << "step " << i + 1;
    EXPECT_NEAR(json_number(r.summary_line(), e.result), json_number(plain.summary_line(), e.result), 1e-4);  // printed %.4f
    // Rank 0 holds its half of the moments (plus the small per-group entries every rank keeps).
    const double bytes = json_number(r.summary_line(), "optimizer_state_bytes");
    EXPECT_GT(bytes, 0.45 * plain_bytes) << r.summary_line();
    EXPECT_LT(bytes, 0.55 * plain_bytes) << r.summary_line();
    EXPECT_GT(json_number(r.summary_line(), "peak_rss_bytes"), 0) << r.summary_line();
  }
}

// A checkpoint written by 2 ranks with --shard gradients (a directory) resumes at 1 rank without
// sharding and at 4 ranks with it; both continue from the saved step (fashion_mnist: epoch 1,
// step 16; gpt: step 8) and train as the uninterrupted 2-rank run did. Across world sizes the
// gradients are averaged in another order, so the tolerance is the one of "N ranks train the same
// model as one rank" (test_fashion_mnist_mpi, test_gpt_mpi): 1e-4 growing with the step.
TEST_P(ShardedExampleMpi, CheckpointOfTwoShardedRanksResumesAtOneAndFourRanks) {
  const Example& e = GetParam();
  const bool fmnist = e.program == "fashion_mnist";
  const std::string stop = fmnist ? "--stop-after 1 " : "--stop-after 8 ";
  const int saved_step = fmnist ? 16 : 8;
  const std::string ckpt = (dir_ / "ckpt").string();
  ProgramRun whole = run_ranks(e.program, 2, args_ + metrics("whole") + "--shard gradients");
  ASSERT_EQ(whole.status, 0) << whole.output;
  const auto ref = losses("whole");
  ProgramRun first = run_ranks(e.program, 2, args_ + metrics("first") + stop + "--shard gradients --checkpoint " + ckpt);
  ASSERT_EQ(first.status, 0) << first.output;
  ASSERT_TRUE(fs::is_directory(ckpt)) << first.output;
  ASSERT_EQ(losses("first").size(), static_cast<size_t>(saved_step));
  struct Resume {
    int np;
    std::string shard;
  };
  for (const Resume& r : {Resume{1, "none"}, Resume{4, "gradients"}}) {
    SCOPED_TRACE("resumed at " + std::to_string(r.np) + " rank(s), --shard " + r.shard);
    const std::string name = "resumed" + std::to_string(r.np);
    ProgramRun resumed = run_ranks(e.program, r.np, args_ + metrics(name) + "--shard " + r.shard + " --resume " + ckpt);
    ASSERT_EQ(resumed.status, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("resumed from " + ckpt + " (written by 2 ranks, --shard gradients) at " +
                                  (fmnist ? "epoch 1, step 16" : "step 8")),
              std::string::npos)
        << resumed.output;
    EXPECT_EQ(json_number(resumed.summary_line(), "world_size"), r.np);
    const auto got = losses(name);
    ASSERT_EQ(got.size(), ref.size() - saved_step) << resumed.output;
    for (size_t i = 0; i < got.size(); ++i) {
      const StepLoss& want = ref[saved_step + i];
      EXPECT_EQ(got[i].step, want.step);  // the data continue where they stopped
      EXPECT_NEAR(got[i].loss, want.loss, 1e-4 * (1 + saved_step + i)) << "step " << want.step;
    }
    EXPECT_NEAR(json_number(resumed.summary_line(), e.result), json_number(whole.summary_line(), e.result),
                fmnist ? 0.005 : 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, ShardedExampleMpi,
                         ::testing::Values(Example{"fashion_mnist", "/usr/share/datasets/fashion-mnist", "accuracy",
                                                   "test_accuracy"},
                                           Example{"gpt", "/usr/share/games/fortunes", "val", "val_loss"}),
                         [](const ::testing::TestParamInfo<Example>& info) { return info.param.program; });
