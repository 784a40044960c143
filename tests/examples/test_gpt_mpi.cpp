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
#include "support/program_run.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kExample = std::string(KIRZL_BINARY_DIR) + "/examples/gpt";

using kirzl::testing::json_number;

std::string run(const std::string& cmd, int* status) {
  auto r = kirzl::testing::run_program(cmd);
  *status = r.status;
  return r.output;
}

std::vector<double> losses(const fs::path& metrics) { return kirzl::testing::metric_losses(metrics, "val"); }

}  // namespace

TEST(GptExampleMpi, TwoRanksTrainTheSameModelAsOneRank) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  if (!fs::exists("/usr/share/games/fortunes")) GTEST_SKIP() << "apt-get install fortunes";
  const fs::path dir = fs::temp_directory_path() / ("kirzl_gpt_mpi_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string args = " --threads 1 --steps 12 --batch-size 8 --block-size 32 --n-layer 2 --n-head 2 --n-embd 48 "
                           "--warmup 3 --eval-tokens 2048 --sample-tokens 20 --log-every 1 --cache-dir " +
                           (dir / "cache").string() + " --metrics ";
  int status = 0;
  std::string one = run("OMP_NUM_THREADS=1 " + kExample + args + (dir / "1.jsonl").string(), &status);
  ASSERT_EQ(status, 0) << one;
  auto ref = losses(dir / "1.jsonl");
  ASSERT_EQ(ref.size(), 12u);
  const std::string mpirun = std::string(MPIEXEC_EXECUTABLE) + " -np 2 --oversubscribe --bind-to none -x OMP_WAIT_POLICY=passive ";
  std::string out = run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 " + mpirun + kExample +
                            args + (dir / "2.jsonl").string(),
                        &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(json_number(out, "world_size"), 2);
  EXPECT_EQ(json_number(out, "steps"), 12);
  auto got = losses(dir / "2.jsonl");
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + i)) << "step " << i + 1;
  EXPECT_NEAR(json_number(out, "val_loss"), json_number(one, "val_loss"), 1e-3);
  // Both ranks' energy, gathered as the memory figures are (null with the reason without a meter).
  std::string last = out.substr(0, out.find_last_not_of('\n') + 1);
  last = last.substr(last.rfind('\n') + 1);
  kirzl::testing::expect_energy_summary(last, {"energy_joules", "joules_per_step", "tokens_per_joule"}, 2);
  fs::remove_all(dir);
}
