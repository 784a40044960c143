// The Fashion-MNIST example under mpirun: N ranks with the same global batch train the same model
// as one rank (the loss of every step agrees to float tolerance) and report world_size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "kirzl/config.hpp"

#include "examples/example_fixtures.hpp"

namespace fs = std::filesystem;

namespace {

const std::string& kExample = kirzl::testing::kFashionMnistProgram;

using kirzl::testing::json_number;

std::vector<double> losses(const fs::path& metrics) { return kirzl::testing::metric_losses(metrics, "accuracy"); }

using FashionMnistExampleMpi = kirzl::testing::FashionMnistExample;

}  // namespace

TEST_F(FashionMnistExampleMpi, RanksTrainTheSameModelAsOneRank) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  const std::string args = " --threads 1 --train-limit 2048 --test-limit 1000 --epochs 2 --batch-size 128 --log-every 1 --metrics ";
  const auto one = kirzl::testing::run_program(kExample + args + (dir_ / "1.jsonl").string());
  ASSERT_EQ(one.status, 0) << one.output;
  auto ref = losses(dir_ / "1.jsonl");
  ASSERT_EQ(ref.size(), 32u);
  for (int np : {2, 4}) {
    SCOPED_TRACE(np);
    const auto run = kirzl::testing::run_program(kirzl::testing::mpirun_prefix(np) + kExample + args +
                                                 (dir_ / (std::to_string(np) + ".jsonl")).string());
    ASSERT_EQ(run.status, 0) << run.output;
    const std::string& out = run.output;
    EXPECT_EQ(json_number(out, "world_size"), np);
    auto got = losses(dir_ / (std::to_string(np) + ".jsonl"));
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + i)) << "step " << i + 1;
    EXPECT_NEAR(json_number(out, "test_accuracy"), json_number(one.output, "test_accuracy"), 0.005);
  }
}
