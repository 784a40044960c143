// Jobs across emulated nodes (label `multinode`; issue #17 item 2): mpirun starts 2 ranks on each
// of 2 nodes that scripts/multinode.sh emulates on this machine (Note [emulated nodes] there):
// ranks on one node share its host name and memory, ranks on different nodes talk TCP over
// links shaped by tc. The tests check that kirzl sees the topology (rank, local rank, local size,
// node count), that data-parallel training across the nodes trains the same model as one process,
// and that a rank stopped on the other node is reported and ends the whole job. They skip, saying
// how to bring the nodes up, when the nodes are not up (scripts/test.sh brings them up as root).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kirzl/config.hpp"

#include "comm/faults/fault_job.hpp"
#include "support/program_run.hpp"

namespace {

using namespace kirzl::testing::faults;
using kirzl::testing::run_program;

const std::string kScript = std::string(KIRZL_SOURCE_DIR) + "/scripts/multinode.sh";
const std::string kTopologyWorker = std::string(KIRZL_BINARY_DIR) + "/tests/topology_worker";
constexpr int kNodes = 2, kRanksPerNode = 2, kRanks = kNodes * kRanksPerNode;

// The mpirun options for the emulated nodes (the script's one definition of them), or "" with
// `why` set when fewer than kNodes nodes are up.
std::string node_args(std::string* why) {
  const auto status = run_program(kScript + " status");
  std::smatch m;
  if (!WIFEXITED(status.status) || WEXITSTATUS(status.status) != 0 ||
      !std::regex_search(status.output, m, std::regex("multinode: ([0-9]+) nodes")) || std::stoi(m[1]) < kNodes) {
    std::string said = status.output;
    while (!said.empty() && said.back() == '\n') said.pop_back();
    *why = "the emulated nodes are not up: run `scripts/multinode.sh up 2` as root (" + said + ")";
    return "";
  }
  const auto args = run_program(kScript + " mpirun-args");
  if (!WIFEXITED(args.status) || WEXITSTATUS(args.status) != 0) {
    *why = "scripts/multinode.sh mpirun-args failed: " + args.output;
    return "";
  }
  return args.output.substr(0, args.output.find('\n'));
}

class Multinode : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
    std::string why;
    args_ = node_args(&why);
    if (args_.empty()) GTEST_SKIP() << why;
  }
  // mpirun of kRanks ranks, kRanksPerNode on each of the first kNodes nodes (the hostfile's slots,
  // filled in order), with the fault tests' timeout and kill bound.
  std::string mpirun() const {
    return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 KIRZL_TIMEOUT=" + std::to_string(kTimeoutSeconds) +
           " OMP_WAIT_POLICY=passive timeout -s KILL " + std::to_string(kKillAfterSeconds) + " " + MPIEXEC_EXECUTABLE +
           " " + args_ + " -np " + std::to_string(kRanks) + " --bind-to none -x KIRZL_TIMEOUT -x OMP_WAIT_POLICY ";
  }
  std::string args_;
};

// Every rank's rank, local rank and local size, its node's host name, and the node count kirzl
// sees from the world's host names: ranks 0-1 on kirzl-node1, 2-3 on kirzl-node2.
TEST_F(Multinode, DetectsRanksLocalRanksAndNodes) {
  ASSERT_TRUE(fs::exists(kTopologyWorker)) << kTopologyWorker;
  const auto r = run_program(mpirun() + kTopologyWorker);
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.output;
  const std::regex line("topology: rank ([0-9]+) of ([0-9]+) local_rank ([0-9]+) local_size ([0-9]+) host (\\S+) nodes ([0-9]+)");
  std::set<int> seen;
  std::istringstream lines(r.output);
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line)) {
      const int rank = std::stoi(m[1]);
      EXPECT_EQ(seen.count(rank), 0u) << "rank " << rank << " reported twice\n" << r.output;
      seen.insert(rank);
      const std::string host = m[5];
      SCOPED_TRACE("rank " + std::to_string(rank));
      EXPECT_EQ(std::stoi(m[2]), kRanks);
      EXPECT_EQ(std::stoi(m[3]), rank % kRanksPerNode);
      EXPECT_EQ(std::stoi(m[4]), kRanksPerNode);
      EXPECT_EQ(host, "kirzl-node" + std::to_string(rank / kRanksPerNode + 1));
      EXPECT_EQ(std::stoi(m[6]), kNodes);
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRanks)) << "every rank reports\n" << r.output;
}

// The Fashion-MNIST example across 2 nodes x 2 ranks with the same global batch trains the same
// model as one process (as tests/examples/test_fashion_mnist_mpi.cpp checks on one node): the
// loss of every step agrees to float tolerance, and so does the test accuracy.
TEST_F(Multinode, DdpAcrossNodesTrainsTheSameModelAsOneProcess) {
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  if (!fs::exists(kDataset)) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const fs::path dir = fs::temp_directory_path() / ("kirzl_multinode_ddp_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string args =
      " --threads 1 --train-limit 2048 --test-limit 1000 --epochs 1 --batch-size 128 --log-every 1 --metrics ";
  const auto one = run_program(kExample + args + (dir / "1.jsonl").string());
  ASSERT_EQ(one.status, 0) << one.output;
  const auto ref = kirzl::testing::metric_losses(dir / "1.jsonl", "accuracy");
  ASSERT_EQ(ref.size(), 16u);
  const auto many = run_program(mpirun() + kExample + args + (dir / "4.jsonl").string());
  ASSERT_EQ(many.status, 0) << many.output;
  EXPECT_EQ(kirzl::testing::json_number(many.output, "world_size"), kRanks);
  const auto got = kirzl::testing::metric_losses(dir / "4.jsonl", "accuracy");
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-4 * (1 + i)) << "step " << i + 1;
  EXPECT_NEAR(kirzl::testing::json_number(many.output, "test_accuracy"),
              kirzl::testing::json_number(one.output, "test_accuracy"), 0.005);
  fs::remove_all(dir);
}

// Rank 3, on kirzl-node2, stops (SIGSTOP) at step 5: the ranks waiting for it time out and name it,
// and the whole job (both nodes) ends non-zero within the timeout plus the bound, no rank left.
TEST_F(Multinode, StoppedRankOnTheOtherNodeIsReportedAndEndsTheJob) {
  expect_fault_ends_job(mpirun(), Fault{"stop", kRanks, stopped});
}

}  // namespace
