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

#include "support/program_run.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kExample = std::string(KIRZL_BINARY_DIR) + "/examples/fashion_mnist";

using kirzl::testing::json_number;

std::string run(const std::string& cmd, int* status) {
  auto r = kirzl::testing::run_program(cmd);
  *status = r.status;
  return r.output;
}

std::vector<double> losses(const fs::path& metrics) { return kirzl::testing::metric_losses(metrics, "accuracy"); }

}  // namespace

TEST(FashionMnistExampleMpi, RanksTrainTheSameModelAsOneRank) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const fs::path dir = fs::temp_directory_path() / ("kirzl_fmnist_mpi_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string args = " --threads 1 --train-limit 2048 --test-limit 1000 --epochs 2 --batch-size 128 --log-every 1 --metrics ";
  int status = 0;
  std::string one = run(kExample + args + (dir / "1.jsonl").string(), &status);
  ASSERT_EQ(status, 0) << one;
  auto ref = losses(dir / "1.jsonl");
  ASSERT_EQ(ref.size(), 32u);
  for (int np : {2, 4}) {
    SCOPED_TRACE(np);
    const std::string mpirun = std::string(MPIEXEC_EXECUTABLE) + " -np " + std::to_string(np) +
                               " --oversubscribe --bind-to none -x OMP_WAIT_POLICY=passive ";
    std::string out = run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + mpirun + kExample + args +
                              (dir / (std::to_string(np) + ".jsonl")).string(),
                          &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_EQ(json_number(out, "world_size"), np);
    auto got = losses(dir / (std::to_string(np) + ".jsonl"));
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + i)) << "step " << i + 1;
    EXPECT_NEAR(json_number(out, "test_accuracy"), json_number(one, "test_accuracy"), 0.005);
  }
  fs::remove_all(dir);
}
