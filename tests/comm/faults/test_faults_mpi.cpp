// Fault injection under mpirun (label `faults`), at 2 and 4 ranks: one rank stops (SIGSTOP), is
// killed (SIGKILL), throws an exception nobody catches, issues a mismatched collective, or hangs in
// its own code. In every case the whole job must end, non-zero, within the collective timeout plus a
// few seconds, every rank's process must be gone, and the output must name the faulty rank (Note
// [abort on failure]). The Fashion-MNIST example is also stopped from outside, as a user would find
// it. The same cases run under srun in test_faults_srun.cpp; what they share is in fault_job.hpp.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "kirzl/config.hpp"

#include "comm/faults/fault_job.hpp"

namespace {

using namespace kirzl::testing::faults;

std::string mpirun(int np) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 KIRZL_TIMEOUT=" + std::to_string(kTimeoutSeconds) +
         " OMP_WAIT_POLICY=passive timeout -s KILL " + std::to_string(kKillAfterSeconds) + " " + MPIEXEC_EXECUTABLE +
         " -np " + std::to_string(np) + " --oversubscribe --bind-to none -x KIRZL_TIMEOUT -x OMP_WAIT_POLICY ";
}

class FaultInjection : public ::testing::TestWithParam<Fault> {};

TEST_P(FaultInjection, EveryRankEndsNonZeroWithinTheTimeoutNamingTheRank) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  expect_fault_ends_job(mpirun(GetParam().np), GetParam());
}

// Open MPI's mpirun ends the job itself when a rank dies by a signal, and names it.
std::vector<std::string> killed(int r, int) { return {"rank " + R(r), "signal 9"}; }

INSTANTIATE_TEST_SUITE_P(Mpi, FaultInjection,
                         ::testing::ValuesIn(all_faults(killed)),
                         fault_test_name);

TEST(FaultInjection, HealthyJobEndsZero) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  Scratch s("none");
  const Ended e = run_timed(mpirun(2) + kWorker + " --fault none --steps 10 --pid-dir " + s.dir.string());
  EXPECT_TRUE(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0) << e.output;
  EXPECT_EQ(s.pids().size(), 2u);
}

// A rank stopped in the middle of a hierarchical all-reduce's pipeline (Note [hierarchical
// pipeline]): 4 ranks as 2 emulated nodes, 32 MiB in 256 KiB chunks, rank 3 stopped 20 ms into the
// data. The others' nonblocking tests reach their deadline: the job ends, naming the rank. On a
// loaded machine rank 3 can be stopped before it has even arrived at the collective (seen once in
// the full test run of 2026-12-07, with another test running beside it); that job must end just
// the same, but it is not the case this test is about, so the run is repeated, up to 3 times in
// all, until the stop lands in the data.
TEST(FaultInjection, StoppedMidHierarchicalPipelineEndsTheJob) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  std::string outputs;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    Scratch s("stopmid" + std::to_string(attempt));
    const Ended e = run_timed(
        "KIRZL_EMULATE_NODES=2 KIRZL_ALLREDUCE=hierarchical KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES=262144 " + mpirun(4) +
        "-x KIRZL_EMULATE_NODES -x KIRZL_ALLREDUCE -x KIRZL_MPI_HIERARCHICAL_CHUNK_BYTES " + kWorker +
        " --fault stop-mid --rank 3 --step 2 --steps 4 --elements 8388608 --pid-dir " + s.dir.string());
    expect_job_failed_fast(e, s, 4);
    for (const std::string& text : stopped(3, 4))
      EXPECT_NE(e.output.find(text), std::string::npos) << "missing '" << text << "' in\n" << e.output;
    if (e.output.find("exchanging data") != std::string::npos) return;
    outputs += "--- attempt " + std::to_string(attempt) + ":\n" + e.output;
  }
  ADD_FAILURE() << "rank 3 was never stopped mid-way through the data in 3 attempts:\n" << outputs;
}

// The report: a rank of the example, stopped from outside during training.
TEST(FaultInjection, StoppedRankOfTheExampleEndsTheJob) {
  if (!KIRZL_HAS_MPI) GTEST_SKIP() << "kirzl was built without MPI";
  if (!fs::exists(kExample)) GTEST_SKIP() << kExample << " is not built";
  if (!fs::exists(kDataset)) GTEST_SKIP() << "apt-get install dataset-fashion-mnist";
  const std::string token = "kirzl-fault-" + std::to_string(::getpid());
  expect_stopped_example_ends_job("KIRZL_FAULT_TOKEN=" + token + " " + mpirun(2) + "-x KIRZL_FAULT_TOKEN ",
                                  "OMPI_COMM_WORLD_RANK", token);
}

}  // namespace
