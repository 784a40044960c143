// The GPT example as a user runs it: flags, the JSON last line, checkpoints and an exact resume,
// and the message when the corpus is missing. Runs build/examples/gpt briefly with a small model
// on the real corpus (Debian's fortunes package).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
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

const std::string& kExample = kirzl::testing::kGptProgram;

using kirzl::testing::json_number;
using kirzl::testing::ProgramRun;

ProgramRun run(const std::string& args) {
  return kirzl::testing::run_program("OMP_NUM_THREADS=1 " + kExample + " --threads 1 " + args);
}

// The training-loss lines of a metrics log (not the val lines), without the wall-clock fields.
std::vector<std::string> losses(const fs::path& metrics) { return kirzl::testing::metric_steps(metrics, "val"); }

using kirzl::testing::GptExample;

}  // namespace

TEST_F(GptExample, LastLineIsTheJsonSummary) {
  ProgramRun r = run(small_ + "--steps 200 --stop-after 30 --eval-every 1000");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string last = r.last_line();
  ASSERT_EQ(last.front(), '{') << r.output;
  for (const char* key : {"\"example\": \"gpt\"", "\"val_loss\": ", "\"unigram_entropy\": ", "\"tokens_per_second\": ",
                          "\"steps\": 30,", "\"world_size\": 1", "\"seconds\": "})
    EXPECT_NE(last.find(key), std::string::npos) << key << " missing in " << last;
  // The corpus' character distribution: ~3.3 nats for English text with its punctuation.
  EXPECT_GT(json_number(last, "unigram_entropy"), 2.5);
  EXPECT_LT(json_number(last, "unigram_entropy"), 4.0);
  // 30 steps from log(vocab) ~ 4.7 already learn the character frequencies.
  EXPECT_LT(json_number(last, "val_loss"), 4.0);
  EXPECT_GT(json_number(last, "tokens_per_second"), 0);
  EXPECT_NE(r.output.find("unigram entropy"), std::string::npos);
  EXPECT_NE(r.output.find("---- sample"), std::string::npos);
  // The shards and the tokenizer were written where --cache-dir said.
  EXPECT_TRUE(fs::exists(dir_ / "cache" / "fortunes_train.tok"));
  EXPECT_TRUE(fs::exists(dir_ / "cache" / "fortunes.tokenizer"));
}

// Joules per step and tokens per joule: numbers where the CPU has a readable energy counter,
// otherwise null next to the reason, in the last line and in every training line of the log.
TEST_F(GptExample, EnergyFieldsAreNumbersOrNullWithTheReason) {
  const fs::path log = dir_ / "metrics.jsonl";
  ProgramRun r = run(small_ + "--steps 6 --eval-every 4 --log-every 2 --metrics " + log.string());
  ASSERT_EQ(r.status, 0) << r.output;
  kirzl::testing::expect_energy_summary(r.last_line(), {"energy_joules", "joules_per_step", "tokens_per_joule"}, 1);
  EXPECT_NE(r.output.find("gpt: energy: "), std::string::npos) << r.output;
  std::ifstream in(log);
  int lines = 0;
  for (std::string l; std::getline(in, l);)
    if (l.find("\"split\"") == std::string::npos) {
      ++lines;
      kirzl::testing::expect_energy_metrics(l, {"joules_per_step", "tokens_per_joule"});
    }
  EXPECT_EQ(lines, 3);  // steps 2, 4, 6
}

TEST_F(GptExample, ResumingFromACheckpointContinuesExactly) {
  const std::string ckpt = (dir_ / "ckpt.safetensors").string();
  const std::string common = small_ + "--steps 16 --eval-every 8 ";
  ProgramRun whole = run(common + "--metrics " + (dir_ / "whole.jsonl").string());
  ASSERT_EQ(whole.status, 0) << whole.output;
  ProgramRun first = run(common + "--stop-after 8 --checkpoint " + ckpt + " --metrics " + (dir_ / "a.jsonl").string());
  ASSERT_EQ(first.status, 0) << first.output;
  ASSERT_TRUE(fs::exists(ckpt));
  ProgramRun second = run(common + "--resume " + ckpt + " --metrics " + (dir_ / "b.jsonl").string());
  ASSERT_EQ(second.status, 0) << second.output;
  EXPECT_NE(second.output.find("resumed from"), std::string::npos);
  auto w = losses(dir_ / "whole.jsonl"), a = losses(dir_ / "a.jsonl"), b = losses(dir_ / "b.jsonl");
  ASSERT_EQ(w.size(), 16u);
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(a[i], w[i]);
    EXPECT_EQ(b[i], w[8 + i]);  // bit-identical: same data order, same optimizer state
  }
  EXPECT_EQ(json_number(second.last_line(), "val_loss"), json_number(whole.last_line(), "val_loss"));
  // A checkpoint of another model shape says so.
  ProgramRun other = run(small_ + "--steps 16 --n-embd 64 --resume " + ckpt);
  EXPECT_NE(other.status, 0);
  EXPECT_NE(other.output.find("model.n_embd"), std::string::npos) << other.output;
}

TEST_F(GptExample, MissingCorpusSaysWhatToInstall) {
  ProgramRun r = run(small_ + "--steps 2 --data-dir " + (dir_ / "none").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("apt-get install fortunes"), std::string::npos) << r.output;
  ProgramRun bad = run("--steps nope");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("gpt: --steps 'nope': expected an integer"), std::string::npos) << bad.output;
}

// What a user sees of examples/args/ (tested in tests/examples/args/): one line naming the flag
// and exit status 2, help with the defaults and exit status 0.
TEST(GptExampleFlags, BadValuesExitTwoAndHelpZero) {
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  for (const char* args :
       {"--steps abc", "--n-head 0", "--dropout 1", "--temperature inf", "--n-embd 100 --n-head 3", "--shard bogus"}) {
    SCOPED_TRACE(args);
    expect_flag_error(run(args), "gpt", args);
  }
  ProgramRun help = run("--help");
  ASSERT_TRUE(WIFEXITED(help.status));
  EXPECT_EQ(WEXITSTATUS(help.status), 0) << help.output;
  EXPECT_NE(help.output.find("--steps INT [default: 600]"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("--shard none|optimizer|gradients [default: none]"), std::string::npos) << help.output;
  ProgramRun bogus = run("--shard bogus");
  EXPECT_EQ(bogus.output, "gpt: --shard 'bogus': expected one of none|optimizer|gradients\n");
}

// Unwritable output paths stop the run before the corpus is built and before the first step (the
// checkpoint used to fail at the first evaluation).
TEST_F(GptExample, UnwritablePathsStopTheRunBeforeTraining) {
  for (const std::string flag : {"--checkpoint", "--metrics", "--cache-dir"}) {
    SCOPED_TRACE(flag);
    ProgramRun r = run(small_ + "--steps 4 --eval-every 2 " + flag + " /proc/x/y");
    ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
    EXPECT_EQ(WEXITSTATUS(r.status), 2) << r.output;
    EXPECT_EQ(r.output.rfind("gpt: " + flag + " '/proc/x/y'", 0), 0u) << r.output;
    EXPECT_EQ(r.output.find("step "), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "one line: " << r.output;
  }
}
