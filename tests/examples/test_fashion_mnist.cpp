// The Fashion-MNIST example as a user runs it: flags, the JSON last line, checkpoints and an exact
// resume. Runs build/examples/fashion_mnist on a small slice of the real data.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support/energy_fields.hpp"
#include "examples/example_fixtures.hpp"

namespace fs = std::filesystem;

namespace {

const std::string& kExample = kirzl::testing::kFashionMnistProgram;

using kirzl::testing::ProgramRun;

ProgramRun run(const std::string& args) {
  return kirzl::testing::run_program("OMP_NUM_THREADS=1 " + kExample + " --threads 1 " + args);
}

// The training-loss lines (not the evaluation ones), without the wall-clock fields.
std::vector<std::string> losses(const fs::path& metrics) { return kirzl::testing::metric_steps(metrics, "accuracy"); }

using kirzl::testing::FashionMnistExample;

const std::string kSmall = "--train-limit 1024 --test-limit 500 --batch-size 128 --log-every 1 ";

}  // namespace

TEST_F(FashionMnistExample, LastLineIsTheJsonSummary) {
  ProgramRun r = run(kSmall + "--epochs 1");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string last = r.last_line();
  for (const char* key : {"\"test_accuracy\": ", "\"test_loss\": ", "\"epochs\": 1", "\"seconds\": ", "\"samples_per_second\": ",
                          "\"world_size\": 1"})
    EXPECT_NE(last.find(key), std::string::npos) << key << " missing from " << last;
  EXPECT_EQ(last.front(), '{');
  EXPECT_EQ(last.back(), '}');
}

// Joules per epoch and samples per joule: numbers where the CPU has a readable energy counter,
// otherwise null next to the reason, in the last line and in each epoch's test line of the log.
TEST_F(FashionMnistExample, EnergyFieldsAreNumbersOrNullWithTheReason) {
  const fs::path log = dir_ / "metrics.jsonl";
  ProgramRun r = run(kSmall + "--epochs 2 --metrics " + log.string());
  ASSERT_EQ(r.status, 0) << r.output;
  kirzl::testing::expect_energy_summary(r.last_line(), {"energy_joules", "joules_per_epoch", "samples_per_joule"}, 1);
  EXPECT_NE(r.output.find("fashion_mnist: energy: "), std::string::npos) << r.output;
  std::ifstream in(log);
  int epochs = 0;
  for (std::string l; std::getline(in, l);)
    if (l.find("\"split\":\"test\"") != std::string::npos) {
      ++epochs;
      kirzl::testing::expect_energy_metrics(l, {"joules_per_epoch", "samples_per_joule"});
    }
  EXPECT_EQ(epochs, 2);
}

TEST_F(FashionMnistExample, ResumeContinuesExactly) {
  for (const std::string opt : {"adamw", "sgd"}) {
    SCOPED_TRACE(opt);
    const std::string common = kSmall + "--epochs 3 --optimizer " + opt + " --model mlp ";
    ProgramRun straight = run(common + "--metrics " + (dir_ / (opt + "_a.jsonl")).string());
    ASSERT_EQ(straight.status, 0) << straight.output;
    const fs::path ckpt = dir_ / (opt + ".safetensors");
    ProgramRun first = run(common + "--stop-after 1 --checkpoint " + ckpt.string() + " --metrics " + (dir_ / (opt + "_b.jsonl")).string());
    ASSERT_EQ(first.status, 0) << first.output;
    ASSERT_TRUE(fs::exists(ckpt));
    ProgramRun resumed = run(common + "--resume " + ckpt.string() + " --metrics " + (dir_ / (opt + "_b.jsonl")).string());
    ASSERT_EQ(resumed.status, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("resumed from"), std::string::npos);
    auto a = losses(dir_ / (opt + "_a.jsonl")), b = losses(dir_ / (opt + "_b.jsonl"));
    ASSERT_EQ(a.size(), 3u * 8u);
    EXPECT_EQ(a, b);  // every step's loss, bit for bit (%.9g round-trips f32 and f64 to the printed digits)
    auto acc = [](const ProgramRun& r) { return r.last_line().substr(0, r.last_line().find("\"seconds\"")); };
    EXPECT_EQ(acc(straight), acc(resumed));
  }
}

TEST_F(FashionMnistExample, ResumeRejectsADifferentRun) {
  const fs::path ckpt = dir_ / "c.safetensors";
  ASSERT_EQ(run(kSmall + "--epochs 1 --checkpoint " + ckpt.string()).status, 0);
  ProgramRun r = run(kSmall + "--epochs 1 --model cnn --resume " + ckpt.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("model = mlp"), std::string::npos) << r.output;
}

TEST_F(FashionMnistExample, MissingDataSaysWhatToInstall) {
  ProgramRun r = run("--data-dir " + (dir_ / "none").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("dataset-fashion-mnist"), std::string::npos) << r.output;
}

TEST_F(FashionMnistExample, BadFlagsAreRejected) {
  EXPECT_NE(run("--model resnet").status, 0);
  EXPECT_NE(run("--batch-size").status, 0);
  ProgramRun r = run("--frobnicate");
  EXPECT_NE(r.output.find("unknown flag --frobnicate"), std::string::npos);
}

// The flags are read by examples/args/ (tested in tests/examples/args/); here, what a user sees:
// one line naming the flag and exit status 2, not an uncaught std::stoi exception.
TEST(FashionMnistExampleFlags, BadValueExitsTwoNamingTheFlag) {
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  for (const char* args : {"--epochs abc", "--epochs 12abc", "--batch-size 1e3", "--lr nan", "--seed -1", "--threads 0",
                           "--shard bogus"}) {
    SCOPED_TRACE(args);
    ProgramRun r = run(args);
    expect_flag_error(r, "fashion_mnist", args);
    const std::string flag = std::string(args).substr(0, std::string(args).find(' '));
    EXPECT_EQ(r.output.rfind("fashion_mnist: " + flag + " '", 0), 0u) << "the value is quoted: " << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "one line: " << r.output;
  }
}

TEST(FashionMnistExampleFlags, HelpExitsZeroWithTheDefaults) {
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  ProgramRun r = run("--help");
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
  EXPECT_NE(r.output.find("--epochs INT [default: 10 for mlp, 4 for cnn]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--batch-size INT [default: 128]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--shard none|optimizer|gradients [default: none]"), std::string::npos) << r.output;
}

TEST(FashionMnistExampleFlags, BogusShardNamesTheChoices) {
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  ProgramRun r = run("--shard bogus");
  expect_flag_error(r, "fashion_mnist", "--shard bogus");
  EXPECT_EQ(r.output, "fashion_mnist: --shard 'bogus': expected one of none|optimizer|gradients\n");
}

// A checkpoint path that cannot be written stops the run before the data is read and before the
// first epoch (it used to fail when the first epoch's checkpoint was saved).
TEST_F(FashionMnistExample, UnwritablePathsStopTheRunBeforeTraining) {
  for (const std::string flag : {"--checkpoint", "--metrics"}) {
    SCOPED_TRACE(flag);
    ProgramRun r = run(kSmall + "--epochs 1 " + flag + " /proc/x/y.ckpt");
    ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
    EXPECT_EQ(WEXITSTATUS(r.status), 2) << r.output;
    EXPECT_EQ(r.output, "fashion_mnist: " + flag + " '/proc/x/y.ckpt': the directory '/proc/x' does not exist\n");
    EXPECT_EQ(r.output.find("epoch 1/1"), std::string::npos) << r.output;
  }
  ProgramRun r = run(kSmall + "--epochs 1 --resume " + (dir_ / "none.safetensors").string());
  EXPECT_EQ(WEXITSTATUS(r.status), 2) << r.output;
  EXPECT_NE(r.output.find("--resume '" + (dir_ / "none.safetensors").string() + "': no such file"), std::string::npos)
      << r.output;
}
