// Fault injection under SLURM's srun (labels `faults` and `srun`): the cases of test_faults_mpi.cpp
// with srun starting the ranks instead of mpirun (Note [srun], Note [abort on failure]), at 2 and
// 4 ranks (--overcommit: more tasks than the node's CPUs). Every case must end the step, non-zero,
// within the bound, with every rank's process gone and the faulty rank named. Skips without a
// running SLURM (scripts/slurm-local.sh up brings up one on this machine).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "kirzl/config.hpp"

#include "comm/faults/fault_job.hpp"
#include "support/slurm.hpp"

namespace {

using namespace kirzl::testing::faults;
using kirzl::testing::no_slurm;

// srun of `np` tasks. timeout sends srun SIGTERM (which it passes to the step) before SIGKILL, so
// that a hung step is cancelled rather than left behind; --time is SLURM's own limit on it.
// --mpi=pmix: Open MPI gets its rank from srun through PMIx (Note [srun]), whatever MpiDefault says.
std::string srun(int np) {
  return "KIRZL_TIMEOUT=" + std::to_string(kTimeoutSeconds) + " OMP_WAIT_POLICY=passive timeout -k 10 " +
         std::to_string(kKillAfterSeconds) + " srun --mpi=pmix --time=3 --overcommit -n " + std::to_string(np) + " ";
}

class SrunFaultInjection : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
    if (const std::string why = no_slurm(); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(SrunFaultInjection, EveryRankEndsNonZeroWithinTheTimeoutNamingTheRank) {
  expect_fault_ends_job(srun(GetParam().np), GetParam());
}

// SLURM sees the rank die and cancels the step; srun names the task (SLURM's task number is the rank).
std::vector<std::string> killed(int r, int) { return {"task " + R(r) + ": Killed"}; }

INSTANTIATE_TEST_SUITE_P(Srun, SrunFaultInjection,
                         ::testing::ValuesIn(all_faults(killed)),
                         fault_test_name);

TEST_F(SrunFaultInjection, HealthyJobEndsZeroAsASlurmWorld) {
  Scratch s("srun_none");
  const Ended e = run_timed("KIRZL_VERBOSE=1 " + srun(2) + kWorker + " --fault none --steps 10 --pid-dir " + s.dir.string());
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0) << e.output;
  EXPECT_EQ(s.pids().size(), 2u);
  EXPECT_NE(e.output.find("world size 2 (launcher slurm)"), std::string::npos) << e.output;
}

// The report, under srun: a rank of the example, stopped from outside during training.
TEST_F(SrunFaultInjection, StoppedRankOfTheExampleEndsTheJob) {
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  if (!fs::exists(kDataset)) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const std::string token = "kirzl-srun-fault-" + std::to_string(::getpid());
  expect_stopped_example_ends_job("KIRZL_FAULT_TOKEN=" + token + " " + srun(2), "SLURM_PROCID", token);
}

}  // namespace
