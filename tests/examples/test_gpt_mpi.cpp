// The GPT example under mpirun: 2 ranks with the same global batch train the same model as one
// rank (the loss of every step agrees to float tolerance) and report world_size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/config.hpp"

#include "support/energy_fields.hpp"
#include "examples/example_fixtures.hpp"

namespace fs = std::filesystem;

namespace {

const std::string& kExample = kirzl::testing::kGptProgram;

using kirzl::testing::json_number;

std::vector<double> losses(const fs::path& metrics) { return kirzl::testing::metric_losses(metrics, "val"); }

using GptExampleMpi = kirzl::testing::GptExample;

}  // namespace

TEST_F(GptExampleMpi, TwoRanksTrainTheSameModelAsOneRank) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  const std::string args = " --threads 1 --steps 12 --batch-size 8 --block-size 32 --n-layer 2 --n-head 2 --n-embd 48 "
                           "--warmup 3 --eval-tokens 2048 --sample-tokens 20 --log-every 1 --cache-dir " +
                           (dir_ / "cache").string() + " --metrics ";
  const auto one = kirzl::testing::run_program("OMP_NUM_THREADS=1 " + kExample + args + (dir_ / "1.jsonl").string());
  ASSERT_EQ(one.status, 0) << one.output;
  auto ref = losses(dir_ / "1.jsonl");
  ASSERT_EQ(ref.size(), 12u);
  const auto run = kirzl::testing::run_program(kirzl::testing::mpirun_prefix(2) + kExample + args +
                                               (dir_ / "2.jsonl").string());
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string& out = run.output;
  EXPECT_EQ(json_number(out, "world_size"), 2);
  EXPECT_EQ(json_number(out, "steps"), 12);
  auto got = losses(dir_ / "2.jsonl");
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + i)) << "step " << i + 1;
  EXPECT_NEAR(json_number(out, "val_loss"), json_number(one.output, "val_loss"), 1e-3);
  // Both ranks' energy, gathered as the memory figures are (null with the reason without a meter).
  kirzl::testing::expect_energy_summary(run.summary_line(), {"energy_joules", "joules_per_step", "tokens_per_joule"}, 2);
}
